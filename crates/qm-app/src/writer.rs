//! The pipelined writer: a thread with its own connection that encodes, hashes and commits staged
//! batches in order, holding projection rows back during a burst (see ARCHITECTURE.md, step 4).

use super::*;

/// Work for the writer thread, done in order.
pub(crate) enum Job {
    /// A batch: its rows and readings, and its entries still to be encoded, hashed and appended.
    Commit(Commit, Vec<std::sync::Arc<[Envelope]>>, std::sync::mpsc::Sender<Durable>),
    /// A checkpoint over entries already durable; nobody waits for it.
    Checkpoint(StoredCheckpoint),
}

/// Encodes envelopes in order, puts their leaves on the tree's edge and adds the stored entries.
pub(crate) fn append_entries(
    frontier: &mut Frontier,
    envelopes: &[std::sync::Arc<[Envelope]>],
    entries: &mut Vec<StoredEntry>,
) -> std::result::Result<(), String> {
    for env in envelopes.iter().flat_map(|seg| seg.iter()) {
        if env.seq != frontier.size() {
            return Err(format!("entry {} was staged where the tree holds {} entries", env.seq, frontier.size()));
        }
        let bytes = encode(env).map_err(|e| match e {
            AppError::Internal(m) => m,
            other => other.to_string(),
        })?;
        // The rules split what may be split (qm_core::decide::fit); this is the last guard: an entry
        // a tlog-tiles bundle cannot carry is never written, and the whole commit with it.
        if bytes.len() > qm_core::decide::fit::ENTRY_BYTES_MAX {
            return Err(format!(
                "entry {} ({}) encodes to {} bytes, more than a ledger entry may hold ({}); nothing was recorded",
                env.seq,
                env.event.type_name(),
                bytes.len(),
                qm_core::decide::fit::ENTRY_BYTES_MAX
            ));
        }
        let hashes = frontier.push(leaf_hash(&bytes));
        entries.push(StoredEntry { seq: env.seq, idempotency_key: env.idempotency_key.clone(), bytes, hashes });
    }
    Ok(())
}

pub(crate) fn writer_stopped() -> StoreError {
    StoreError::Backend("the writer thread stopped".into())
}

/// The writer's answer to a batch: once durable, the tree's edge after it.
pub(crate) type Durable = qm_store::Result<Frontier>;

/// A thread with its own connection that commits staged batches in order, so that validating the
/// next batch (CPU) overlaps committing the previous one (the disk) on a two-core machine.
pub(crate) struct Writer {
    pub(crate) jobs: Option<std::sync::mpsc::Sender<Job>>,
    pub(crate) handle: Option<std::thread::JoinHandle<()>>,
    /// Time the writer thread has spent committing, in nanoseconds (for the benchmarks).
    pub(crate) busy_nanos: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the queue lets the thread finish the commits it has, then end.
        self.jobs.take();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// The pipelined writer writes a batch's projection rows with a later commit once this many
/// entries have gone by without them: at most this many entries are replayed when a site stopped in
/// the middle of a burst is opened again.
pub const ROWS_DEFERRED_AT_MOST: u64 = 20_000;
/// ... and writes them on their own once no commit has come for this long.
pub const ROWS_IDLE: std::time::Duration = std::time::Duration::from_millis(20);
/// A long pipelined burst signs a checkpoint at least this often (entries), not only at its end.
pub const CHECKPOINT_AT_MOST: u64 = 50_000;

/// Projection rows the writer has not written yet: the last change of each row, in key order (rows
/// written in key order touch the B-tree's pages in order), and how far they bring the stored rows.
#[derive(Default)]
pub(crate) struct DeferredRows {
    rows: std::collections::BTreeMap<(String, String), Option<String>>,
    through: u64,
    entries: u64,
}

impl DeferredRows {
    fn add(&mut self, rows: Vec<RowChange>, through: u64, entries: u64) {
        for r in rows {
            self.rows.insert((r.kind, r.key), r.value);
        }
        self.through = through;
        self.entries += entries;
    }
    fn take(&mut self) -> Vec<RowChange> {
        self.entries = 0;
        std::mem::take(&mut self.rows).into_iter().map(|((kind, key), value)| RowChange { kind, key, value }).collect()
    }
    /// Writes the rows on their own (`Store::catch_up_rows`). On failure they are kept for the next
    /// try: written rows must always bring the stored ones all the way from where they were.
    fn catch_up(&mut self, store: &mut dyn Store) -> bool {
        let (through, entries) = (self.through, self.entries);
        let rows = self.take();
        match store.catch_up_rows(&rows, through) {
            Ok(_) => true,
            Err(e) => {
                tracing_free_log(&format!("writing projection rows through entry {through}: {e}"));
                self.add(rows, through, entries);
                false
            }
        }
    }
}

/// The writer thread: commits batches in the order they were staged, each durable before its reply.
/// During a burst (the next batch arrives within `ROWS_IDLE`) the batches' projection rows are held
/// back and merged, so a row changed by many batches is written once: with a commit once
/// `ROWS_DEFERRED_AT_MOST` entries have gone by, or on their own once the queue has been idle for
/// `ROWS_IDLE`, and when the queue closes. Opening a site replays the entries its rows do not cover.
pub(crate) fn write_in_order(
    store: &mut dyn Store,
    mut frontier: Frontier,
    jobs: &std::sync::mpsc::Receiver<Job>,
    busy: &std::sync::atomic::AtomicU64,
    rows_idle: std::time::Duration,
) {
    use std::sync::mpsc::RecvTimeoutError;
    // After a failed commit every later batch fails too: they were validated on top of it.
    let mut failed: Option<String> = None;
    let mut deferred = DeferredRows::default();
    // After a failed catch-up the rows wait for the next commit (not the next idle moment: the
    // database may be away, and nothing would come of trying every 20 ms).
    let mut try_when_idle = true;
    loop {
        let job = if deferred.rows.is_empty() || !try_when_idle {
            match jobs.recv() {
                Ok(job) => job,
                Err(_) => break,
            }
        } else {
            match jobs.recv_timeout(rows_idle) {
                Ok(job) => job,
                Err(RecvTimeoutError::Timeout) => {
                    try_when_idle = deferred.catch_up(store);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
        };
        match job {
            Job::Commit(mut commit, unencoded, reply) => {
                try_when_idle = true;
                let started = std::time::Instant::now();
                let r = match &failed {
                    Some(m) => Err(StoreError::Backend(format!("an earlier commit failed: {m}"))),
                    None => {
                        // Encoded and hashed here, in order: the tree's edge is this thread's own.
                        let mut next = frontier.clone();
                        let encoded = append_entries(&mut next, &unencoded, &mut commit.entries).map_err(StoreError::Backend);
                        let rows = std::mem::take(&mut commit.rows);
                        match commit.entries.last().map(|e| e.seq + 1) {
                            Some(through) => deferred.add(rows, through, commit.entries.len() as u64),
                            None => deferred.add(rows, deferred.through, 0),
                        }
                        // Rows are written all together or not at all: the stored rows always
                        // match the ledger at one size.
                        if deferred.entries >= ROWS_DEFERRED_AT_MOST || commit.entries.is_empty() {
                            commit.rows = deferred.take();
                        }
                        encoded.and_then(|()| store.commit(&commit)).map(|()| {
                            frontier = next;
                            frontier.clone()
                        })
                    }
                };
                busy.fetch_add(started.elapsed().as_nanos() as u64, std::sync::atomic::Ordering::Relaxed);
                if let Err(e) = &r {
                    failed.get_or_insert_with(|| e.to_string());
                    // They include the failed batch's; the books are re-read from the store.
                    deferred = DeferredRows::default();
                }
                let _ = reply.send(r);
            }
            Job::Checkpoint(cp) => {
                if failed.is_none() {
                    if let Err(e) = store.add_checkpoint(&cp) {
                        tracing_free_log(&format!("storing checkpoint {}: {e}", cp.size));
                    }
                }
            }
        }
    }
    if failed.is_none() && !deferred.rows.is_empty() {
        deferred.catch_up(store);
    }
}
