//! The one thread that owns the `Site`: requests arrive over a channel; consecutive writes share one
//! durable commit (group commit), pipelined through the site's writer thread: batch N+1 is checked
//! and staged while batch N is being made durable, and N's callers are answered only once it is
//! durable (`Site::submit` / `Site::finish`). A checkpoint is signed now and then and at shutdown.

use qm_app::{AppError, Denial, Outcome, Request, Site, Ticket};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

/// Most writes committed together in one transaction.
pub const BATCH_MAX: usize = 256;
/// Requests waiting for the worker before senders wait too (back-pressure).
pub const QUEUE_MAX: usize = 4096;
/// While a batch is being made durable and nothing else is queued, how long the worker waits for
/// it before looking for new work again.
const IN_FLIGHT_POLL: Duration = Duration::from_micros(250);

/// A read or other work on the site; given an error instead when the books cannot be trusted yet
/// (a commit failed and the database is still away, see `Site::ensure_fresh`).
type Call = Box<dyn FnOnce(Result<&mut Site, AppError>) + Send>;

/// Answers one request of a batch once it is durable.
type Reply = Box<dyn FnOnce(Result<Outcome, AppError>) + Send>;

/// Stages on the site; a ticket to finish and its caller's answer, or nothing (already answered).
type Stage = Box<dyn FnOnce(Result<&mut Site, AppError>) -> Option<(Ticket, Reply)> + Send>;

enum Job {
    Execute(Box<Request>, oneshot::Sender<Result<Outcome, AppError>>),
    /// Waits for the batches in flight to be durable, then runs: sees only what is recorded.
    Call(Call),
    /// Runs at once, even while a batch is in flight: for reads whose answer a batch that might
    /// still fail cannot make wrong (who a signed-in person is, a credential's hash).
    Peek(Call),
    /// Stages a batch of its own and hands it to the writer as `Execute` does (door events): answered
    /// once durable, while the next one is staged.
    Submit(Stage),
    /// A denied attempt to record: gathered, and committed with others (see `qm_app::act`).
    Denial(Denial),
    /// Record the denials gathered so far (sent by a ticker).
    FlushDenials,
    Shutdown(oneshot::Sender<()>),
}

/// How often the denials the site has gathered are recorded (`qm_app::act`: alike attempts in one
/// gathering are one entry saying how many and over what time, so a flood of bad sign-ins costs one
/// durable commit per gathering, not one each, and stays in the ledger). They are also recorded
/// before any read that waits for what is recorded (`Job::Call`), and at shutdown.
pub const DENIALS_EVERY: Duration = Duration::from_millis(200);

/// Records the denials gathered; failed sign-ins once their summary is due, or all at shutdown.
fn flush_denials(site: &mut Site, all: bool) {
    let r = if all { site.flush_all_denials() } else { site.flush_denials() };
    if let Err(e) = r {
        tracing::error!("could not record the gathered denials in the ledger: {e}");
    }
}

fn deny(site: &mut Site, d: Denial) {
    if let Err(e) = site.deny(d) {
        tracing::error!("could not record the gathered denials in the ledger: {e}");
    }
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

    /// Runs `f` on the worker thread in order with the writes, as a write: `f` stages a batch of its
    /// own and hands it to the writer (`Site::submit_door_events`), and the site stages the next
    /// while it is made durable. Returns `f`'s value and the batch's outcome once durable (`None`:
    /// `f` handed nothing over).
    pub async fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Site) -> Result<(Option<Ticket>, T), AppError> + Send + 'static,
    ) -> Result<(Option<Outcome>, T), AppError> {
        let (tx, rx) = oneshot::channel();
        let job: Stage = Box::new(move |site| match site.and_then(f) {
            Err(e) => {
                let _ = tx.send(Err(e));
                None
            }
            Ok((None, value)) => {
                let _ = tx.send(Ok((None, value)));
                None
            }
            Ok((Some(ticket), value)) => Some((
                ticket,
                Box::new(move |r: Result<Outcome, AppError>| {
                    let _ = tx.send(r.map(|o| (Some(o), value)));
                }) as Reply,
            )),
        });
        self.tx.send(Job::Submit(job)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Runs `f` on the worker thread at once, without waiting for batches in flight (see `Job::Peek`).
    pub async fn peek<T: Send + 'static>(&self, f: impl FnOnce(&mut Site) -> T + Send + 'static) -> Result<T, AppError> {
        let (tx, rx) = oneshot::channel();
        let job: Call = Box::new(move |site| {
            let _ = tx.send(site.map(f));
        });
        self.tx.send(Job::Peek(job)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }

    /// Hands a denied attempt to the worker, to be recorded with others; does not wait.
    pub async fn deny(&self, d: Denial) {
        if self.tx.send(Job::Denial(d)).await.is_err() {
            tracing::error!("could not record a denial: the server is shutting down");
        }
    }

    /// Asks the worker to record the denials it has gathered and to sign a checkpoint that is due
    /// (the ticker calls this every 200 ms).
    pub async fn flush_denials(&self) -> bool {
        self.tx.send(Job::FlushDenials).await.is_ok()
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
pub fn spawn(site: Site, checkpoint_every_s: u64, due_every_ms: u64) -> (SiteHandle, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(QUEUE_MAX);
    let every = Duration::from_secs(checkpoint_every_s.max(1));
    let due = Duration::from_millis(due_every_ms.max(100));
    let join = std::thread::Builder::new().name("qm-site".into()).spawn(move || run(site, rx, every, due)).unwrap_or_else(|e| {
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

type Replies = Vec<Reply>;

fn reply_by(tx: oneshot::Sender<Result<Outcome, AppError>>) -> Reply {
    Box::new(move |r| {
        let _ = tx.send(r);
    })
}

/// Answers the callers of a batch once it is durable. A failed commit stops the writer thread; it
/// is started again once the books are re-read.
fn finish(site: &mut Site, (ticket, replies): (Ticket, Replies)) {
    for (result, reply) in site.finish(ticket).into_iter().zip(replies) {
        reply(result);
    }
    if !site.writer_running() && !site.is_stale() {
        if let Err(e) = site.start_writer() {
            tracing::warn!("the pipelined writer did not start again ({e}); committing batch by batch");
        }
    }
}

/// How often, by default, the worker looks for what is due (docs/incidents.md; `Config::due_every_ms`).
pub const ESCALATION_CHECK_EVERY: Duration = Duration::from_secs(30);

/// Records what the site's clock makes due (as the site itself) once `every` has passed.
fn escalations_due(site: &mut Site, in_flight: &mut Option<(Ticket, Replies)>, last: &mut Instant, every: Duration) {
    if last.elapsed() < every {
        return;
    }
    *last = Instant::now();
    if let Some(fl) = in_flight.take() {
        finish(site, fl);
    }
    match site.escalate_due(crate::auth::now()) {
        Ok(done) if !done.is_empty() => tracing::info!(count = done.len(), "incidents escalated: nobody acknowledged them in time"),
        Ok(_) => {}
        Err(e) => tracing::warn!("escalating overdue incidents failed (tried again later): {e}"),
    }
}

/// Signs a checkpoint once `every` has passed since the last, after answering the batch in flight.
fn checkpoint_due(site: &mut Site, in_flight: &mut Option<(Ticket, Replies)>, last: &mut Instant, every: Duration) {
    if last.elapsed() >= every {
        if let Some(fl) = in_flight.take() {
            finish(site, fl);
        }
        checkpoint(site);
        *last = Instant::now();
    }
}

/// What the worker does on a clock: checkpoints at most every `every`, overdue incidents every
/// `ESCALATION_CHECK_EVERY` (the first look at the first tick after start).
struct Timers {
    checkpoint: Instant,
    escalation: Instant,
    every: Duration,
    due: Duration,
}

impl Timers {
    fn new(every: Duration, due: Duration) -> Timers {
        let escalation = Instant::now().checked_sub(due).unwrap_or_else(Instant::now);
        Timers { checkpoint: Instant::now(), escalation, every, due }
    }

    fn checkpoint_due(&mut self, site: &mut Site, in_flight: &mut Option<(Ticket, Replies)>) {
        checkpoint_due(site, in_flight, &mut self.checkpoint, self.every);
    }

    /// The ticker (every 200 ms): denials gathered are recorded, overdue incidents escalated, and a
    /// checkpoint due is signed even when no write follows, so no entry waits longer than
    /// `checkpoint_every_s` for one.
    fn tick(&mut self, site: &mut Site, in_flight: &mut Option<(Ticket, Replies)>) {
        flush_denials(site, false);
        escalations_due(site, in_flight, &mut self.escalation, self.due);
        self.checkpoint_due(site, in_flight);
    }
}

/// Writes queued behind `first`, up to `BATCH_MAX`, to stage and commit together; the first other
/// job that would split the batch is left in `pending`.
fn gather(
    site: &mut Site,
    rx: &mut mpsc::Receiver<Job>,
    (req, reply): (Request, oneshot::Sender<Result<Outcome, AppError>>),
    pending: &mut Option<Job>,
) -> (Vec<Request>, Replies) {
    let mut reqs = vec![req];
    let mut replies = vec![reply_by(reply)];
    while reqs.len() < BATCH_MAX {
        match rx.try_recv() {
            Ok(Job::Execute(r, tx)) => {
                reqs.push(*r);
                replies.push(reply_by(tx));
            }
            // A sign-in check that arrived while the batch was gathering is concurrent with it, so
            // answering it first is a valid order; it then does not split the batch into small commits.
            Ok(Job::Peek(f)) => call(site, f),
            Ok(Job::Denial(d)) => deny(site, d),
            Ok(other) => {
                *pending = Some(other);
                break;
            }
            Err(_) => break,
        }
    }
    (reqs, replies)
}

/// A batch just handed to the writer goes in flight; the one before it is durable by now or soon,
/// and is answered.
fn in_flight_next(site: &mut Site, in_flight: &mut Option<(Ticket, Replies)>, next: (Ticket, Replies), timers: &mut Timers) {
    if let Some(fl) = in_flight.replace(next) {
        finish(site, fl);
    }
    timers.checkpoint_due(site, in_flight);
}

fn run(mut site: Site, mut rx: mpsc::Receiver<Job>, every: Duration, due: Duration) {
    if let Err(e) = site.start_writer() {
        // Without it every batch is committed directly: slower, still correct.
        tracing::warn!("the pipelined writer did not start ({e}); committing batch by batch");
    }
    let mut timers = Timers::new(every, due);
    let mut pending: Option<Job> = None;
    // The batch being made durable by the writer thread while the next one is gathered and staged.
    let mut in_flight: Option<(Ticket, Replies)> = None;
    loop {
        let job = match pending.take() {
            Some(j) => j,
            None if in_flight.is_some() => match rx.try_recv() {
                Ok(j) => j,
                Err(mpsc::error::TryRecvError::Empty) => {
                    // Nothing else to stage yet: wait for the batch in flight a little at a time and
                    // answer it once durable; a job arriving meanwhile is staged while it is written.
                    if in_flight.as_mut().is_some_and(|f| f.0.wait(IN_FLIGHT_POLL)) {
                        if let Some(f) = in_flight.take() {
                            finish(&mut site, f);
                        }
                    }
                    continue;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
            },
            None => match rx.blocking_recv() {
                Some(j) => j,
                None => break,
            },
        };
        match job {
            Job::Peek(f) => call(&mut site, f),
            Job::Denial(d) => deny(&mut site, d),
            Job::Submit(f) => {
                let staged = match site.ensure_fresh() {
                    Ok(()) => f(Ok(&mut site)),
                    Err(e) => f(Err(e)),
                };
                if let Some((ticket, reply)) = staged {
                    in_flight_next(&mut site, &mut in_flight, (ticket, vec![reply]), &mut timers);
                }
            }
            Job::FlushDenials => timers.tick(&mut site, &mut in_flight),
            Job::Call(f) => {
                if let Some(fl) = in_flight.take() {
                    finish(&mut site, fl);
                }
                flush_denials(&mut site, false);
                // Reads that wait for what is recorded also see what another process appended (not
                // peeks: sign-in checks stay one lookup).
                if let Err(e) = site.catch_up_external() {
                    tracing::warn!("reading entries another process appended: {e}");
                }
                call(&mut site, f)
            }
            Job::Shutdown(done) => {
                if let Some(fl) = in_flight.take() {
                    finish(&mut site, fl);
                }
                flush_denials(&mut site, true);
                site.stop_writer();
                checkpoint(&mut site);
                let _ = done.send(());
                return;
            }
            Job::Execute(req, reply) => {
                let (reqs, replies) = gather(&mut site, &mut rx, (*req, reply), &mut pending);
                let ticket = site.submit(reqs);
                in_flight_next(&mut site, &mut in_flight, (ticket, replies), &mut timers);
            }
        }
    }
    if let Some(fl) = in_flight.take() {
        finish(&mut site, fl);
    }
    flush_denials(&mut site, true);
    site.stop_writer();
    checkpoint(&mut site);
}
