//! The one thread that owns the `Site`: requests arrive over a channel; consecutive writes share one
//! durable commit (group commit); a checkpoint is signed now and then and at shutdown.

use qm_app::{AppError, Outcome, Request, Site};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Most writes committed together in one transaction.
pub const BATCH_MAX: usize = 256;
/// Requests waiting for the worker before senders wait too (back-pressure).
pub const QUEUE_MAX: usize = 4096;

/// A read or other work on the site; given an error instead when the books cannot be trusted yet
/// (a commit failed and the database is still away, see `Site::ensure_fresh`).
type Call = Box<dyn FnOnce(Result<&mut Site, AppError>) + Send>;

enum Job {
    Execute(Box<Request>, oneshot::Sender<Result<Outcome, AppError>>),
    Call(Call),
    Shutdown(oneshot::Sender<()>),
}

/// A cheap, cloneable handle to the site's worker.
#[derive(Clone)]
pub struct SiteHandle {
    tx: mpsc::Sender<Job>,
}

fn stopped() -> AppError {
    AppError::Internal("the server is shutting down; nothing was recorded".into())
}

impl SiteHandle {
    /// Runs a command (alone or batched with concurrent ones) and returns once it is durable.
    pub async fn execute(&self, req: Request) -> Result<Outcome, AppError> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Job::Execute(Box::new(req), tx)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Runs `f` on the worker thread with the site, in order with the writes before it.
    pub async fn call<T: Send + 'static>(&self, f: impl FnOnce(&mut Site) -> T + Send + 'static) -> Result<T, AppError> {
        let (tx, rx) = oneshot::channel();
        let job: Call = Box::new(move |site| {
            let _ = tx.send(site.map(f));
        });
        self.tx.send(Job::Call(job)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Asks the worker to finish what is queued, checkpoint and stop; waits for it.
    pub async fn shutdown(&self) {
        let (tx, rx) = oneshot::channel();
        if self.tx.send(Job::Shutdown(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

/// Starts the worker thread that owns `site`.
pub fn spawn(site: Site, checkpoint_every_s: u64) -> (SiteHandle, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(QUEUE_MAX);
    let every = Duration::from_secs(checkpoint_every_s.max(1));
    let join = std::thread::Builder::new().name("qm-site".into()).spawn(move || run(site, rx, every)).unwrap_or_else(|e| {
        // Without the thread there is no server; the handle then reports "shutting down" to every request.
        tracing::error!("cannot start the site worker thread: {e}");
        std::thread::spawn(|| {})
    });
    (SiteHandle { tx }, join)
}

fn checkpoint(site: &mut Site) {
    match site.checkpoint_if_grown() {
        Ok(Some(_)) => tracing::debug!(size = site.size(), "checkpoint signed"),
        Ok(None) => {}
        Err(e) => tracing::warn!("checkpoint failed: {e}"),
    }
}

fn call(site: &mut Site, f: Call) {
    match site.ensure_fresh() {
        Ok(()) => f(Ok(site)),
        Err(e) => f(Err(e)),
    }
}

fn run(mut site: Site, mut rx: mpsc::Receiver<Job>, every: Duration) {
    let mut last_checkpoint = Instant::now();
    let mut pending: Option<Job> = None;
    loop {
        let job = match pending.take() {
            Some(j) => j,
            None => match rx.blocking_recv() {
                Some(j) => j,
                None => break,
            },
        };
        match job {
            Job::Call(f) => call(&mut site, f),
            Job::Shutdown(done) => {
                checkpoint(&mut site);
                let _ = done.send(());
                return;
            }
            Job::Execute(req, reply) => {
                let mut reqs = vec![*req];
                let mut replies = vec![reply];
                while reqs.len() < BATCH_MAX {
                    match rx.try_recv() {
                        Ok(Job::Execute(r, tx)) => {
                            reqs.push(*r);
                            replies.push(tx);
                        }
                        // A read (or a sign-in check) that arrived while the batch was gathering is
                        // concurrent with it, so answering it first is a valid order; it then does
                        // not split the batch into small commits.
                        Ok(Job::Call(f)) => call(&mut site, f),
                        Ok(other) => {
                            pending = Some(other);
                            break;
                        }
                        Err(_) => break,
                    }
                }
                let results = site.execute_batch(reqs);
                for (result, reply) in results.into_iter().zip(replies) {
                    let _ = reply.send(result);
                }
                if last_checkpoint.elapsed() >= every {
                    checkpoint(&mut site);
                    last_checkpoint = Instant::now();
                }
            }
        }
    }
    checkpoint(&mut site);
}
