//! The pipelined writer as the site sees it: starting and stopping the writer thread, handing a
//! staged batch over (`submit`) and acknowledging it once durable (`finish`).

use crate::*;

impl Site {
    /// Starts the writer thread (pipelined group commit). Without it, `submit` commits in place.
    pub fn start_writer(&mut self) -> Result<()> {
        self.start_writer_with(ROWS_IDLE)
    }

    /// [`Site::start_writer`] with the idle time after which held-back rows are written on their own
    /// (tests hold them for longer, to see the ledger's tail replayed).
    pub fn start_writer_with(&mut self, rows_idle: std::time::Duration) -> Result<()> {
        if self.writer.is_some() {
            return Ok(());
        }
        let mut store = (self.stores)(&self.db, false)?;
        let frontier = self.frontier.clone();
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let busy_nanos = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let busy = busy_nanos.clone();
        let handle = std::thread::Builder::new()
            .name("qm-writer".into())
            .spawn(move || write_in_order(store.as_mut(), frontier, &rx, &busy, rows_idle))
            .map_err(|e| AppError::Internal(format!("starting the writer thread: {e}")))?;
        self.writer = Some(Writer { jobs: Some(tx), handle: Some(handle), busy_nanos });
        Ok(())
    }

    /// Stops the writer thread, if one runs: it commits what is queued and writes the rows it
    /// held back, then ends; later commits are made in place until a writer is started again.
    pub fn stop_writer(&mut self) {
        self.writer = None;
    }

    /// How long the writer thread has spent committing so far (zero without one).
    pub fn writer_busy(&self) -> std::time::Duration {
        let nanos = self.writer.as_ref().map_or(0, |w| w.busy_nanos.load(std::sync::atomic::Ordering::Relaxed));
        std::time::Duration::from_nanos(nanos)
    }

    /// Validates a batch against the books as the earlier batches left them and hands its commit to
    /// the writer; returns at once. Call `finish` on tickets in the order they were submitted.
    pub fn submit(&mut self, reqs: Vec<Request>) -> Ticket {
        let (results, accepted, commit) = self.stage_batch(&reqs);
        self.ticket(results, accepted, commit)
    }

    /// [`Site::submit`] for one request with data kept outside the ledger (door events): `attach`
    /// adds that data to the commit once the request is decided and new (not a retry), knowing the
    /// entries' sequence numbers. `record_with_data` is this, finished at once.
    pub(crate) fn submit_with_data(&mut self, req: &Request, attach: impl FnOnce(&Outcome, &mut Commit)) -> Ticket {
        let mut attach = Some(attach);
        self.submit_parts(std::slice::from_ref(req), |_, o, commit| {
            if let Some(f) = attach.take() {
                f(o, commit)
            }
        })
    }

    /// Several requests that are one (the parts of a batch too large for one ledger entry), staged
    /// into one commit, all or nothing: a part refused discards the parts staged before it. The
    /// ticket's result is one outcome spanning every part. `attach` is told which part it is given.
    pub(crate) fn submit_parts(&mut self, parts: &[Request], mut attach: impl FnMut(usize, &Outcome, &mut Commit)) -> Ticket {
        if let Err(e) = self.ensure_fresh() {
            return self.ticket(vec![Err(e)], vec![], None);
        }
        let mut commit = Commit::default();
        let mut outcomes: Vec<Outcome> = Vec::with_capacity(parts.len());
        for (i, req) in parts.iter().enumerate() {
            let staged = self.stage_request(req, &mut commit, &HashMap::new(), &[], None);
            match staged {
                Ok(o) => {
                    if !o.replayed {
                        attach(i, &o, &mut commit);
                    }
                    outcomes.push(o);
                }
                Err(e) => {
                    // Parts staged before it are in the books: read them again without those.
                    if i > 0 || matches!(e, AppError::Internal(_)) {
                        self.resync();
                    }
                    return self.ticket(vec![Err(e)], vec![], None);
                }
            }
        }
        let merged = Outcome::spanning(outcomes);
        let accepted = if merged.replayed { vec![] } else { vec![0] };
        let commit = self.has_staged(&commit).then_some(commit);
        self.ticket(vec![Ok(merged)], accepted, commit)
    }

    /// A staged batch's ticket: its commit (if anything was staged) handed to the writer.
    fn ticket(&mut self, results: Vec<Result<Outcome>>, accepted: Vec<usize>, commit: Option<Commit>) -> Ticket {
        let mut ticket = Ticket { results, accepted, done: None, id: 0, door_ids: None, answered: None };
        let Some(commit) = commit else { return ticket };
        let commit = Commit { rows: self.touched_rows(), ..commit };
        for i in &ticket.accepted {
            if let Some(Ok(o)) = ticket.results.get(*i) {
                if let Some(k) = o.entries.first().map(|e| e.idempotency_key.clone()) {
                    self.in_flight.insert(k, o.clone());
                }
            }
        }
        ticket.done = Some(self.hand_over(commit));
        self.last_ticket += 1;
        ticket.id = self.last_ticket;
        ticket
    }

    /// Takes the tree edge the writer replied with, if it is ahead of ours: edges come in commit
    /// order, but a commit made meanwhile through `execute` may already have brought a later one.
    pub(crate) fn adopt(&mut self, edge: Option<Frontier>) {
        if let Some(edge) = edge.filter(|e| e.size() > self.frontier.size()) {
            self.frontier = edge;
        }
    }

    /// Hands a staged commit to the writer (with the entries it is to encode), or commits it here
    /// and now when there is no writer; the receiver gets the tree's edge once it is durable.
    pub(crate) fn hand_over(&mut self, commit: Commit) -> std::sync::mpsc::Receiver<Durable> {
        let (reply, done) = std::sync::mpsc::channel();
        let unencoded = std::mem::take(&mut self.unencoded);
        match self.writer.as_ref().and_then(|w| w.jobs.as_ref()) {
            Some(jobs) => {
                if let Err(e) = jobs.send(Job::Commit(commit, unencoded, reply)) {
                    // The writer is gone, with any rows it held back: the batch fails, and the books
                    // (which hold it) are re-read now, before anything is staged on top of it.
                    if let Job::Commit(_, _, reply) = e.0 {
                        let _ = reply.send(Err(writer_stopped()));
                    }
                    self.resync();
                }
            }
            None => {
                let r = self.store.commit(&commit).map(|()| self.frontier.clone());
                if r.is_err() {
                    // The books hold the batch that failed: re-read them before the next one is staged
                    // on top of it (`finish` then tells the caller).
                    self.resync();
                }
                let _ = reply.send(r);
            }
        }
        done
    }

    /// Waits until a submitted batch is durable and returns its results; signs one checkpoint for it
    /// when the key is here and no later batch is with the writer yet (that one's will cover it). If
    /// the commit failed, every accepted request in it fails, the books are reloaded from the store,
    /// and the durable ledger is signed if it outgrew its latest checkpoint.
    pub fn finish(&mut self, mut ticket: Ticket) -> Vec<Result<Outcome>> {
        let outcome = match (ticket.answered.take(), ticket.done.take()) {
            (Some(answer), _) => answer.map(Some),
            (None, None) => Ok(None),
            (None, Some(rx)) => rx.recv().unwrap_or_else(|_| Err(writer_stopped())).map(Some),
        };
        for i in &ticket.accepted {
            if let Some(Ok(o)) = ticket.results.get(*i) {
                if let Some(e) = o.entries.first() {
                    self.in_flight.remove(&e.idempotency_key);
                }
            }
        }
        self.doors_landed(ticket.door_ids.take());
        match outcome {
            Ok(edge) => {
                let edge_moved = edge.is_some();
                self.adopt(edge);
                // One checkpoint per burst: while a later batch is already with the writer, its
                // checkpoint will cover this one (every checkpoint costs a write now and an Ed25519
                // check in every verify). The latest batch handed over is always signed, and a
                // long burst at least every `CHECKPOINT_AT_MOST` entries.
                let latest = ticket.id == self.last_ticket;
                let due = self.frontier.size() >= self.signed_at + CHECKPOINT_AT_MOST;
                if self.key.is_some() && edge_moved && (latest || due) {
                    self.signed_at = self.frontier.size();
                    // Through the writer when there is one, so that two connections never contend.
                    match self.sign(self.frontier.size(), self.frontier.root()) {
                        Ok(cp) => {
                            let queued =
                                self.writer.as_ref().and_then(|w| w.jobs.as_ref()).map(|j| j.send(Job::Checkpoint(cp.clone())).is_ok());
                            if queued != Some(true) {
                                if let Err(e) = self.store.add_checkpoint(&cp) {
                                    tracing_free_log(&format!("storing checkpoint {}: {e}", cp.size));
                                }
                            }
                        }
                        Err(e) => tracing_free_log(&format!("signing a checkpoint after commit: {e}")),
                    }
                }
            }
            Err(msg) => {
                self.in_flight.clear();
                self.door_in_flight.clear();
                let first_key = ticket
                    .accepted
                    .first()
                    .and_then(|i| ticket.results.get(*i))
                    .and_then(|r| r.as_ref().ok())
                    .and_then(|o| o.entries.first())
                    .map(|e| e.idempotency_key.clone())
                    .unwrap_or_default();
                if let Some(err) = self.commit_failed(msg, &first_key) {
                    for i in ticket.accepted {
                        ticket.results[i] = Err(same_error(&err));
                    }
                }
                // Earlier batches of the burst were durable and left their checkpoint to this one.
                if !self.is_stale() {
                    if let Err(e) = self.checkpoint_if_grown() {
                        tracing_free_log(&format!("signing a checkpoint after a failed commit: {e}"));
                    }
                }
            }
        }
        ticket.results
    }

    /// Whether commits go through the pipelined writer thread (a failed commit stops it).
    pub fn writer_running(&self) -> bool {
        self.writer.is_some()
    }
}
