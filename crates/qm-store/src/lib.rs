//! The storage interface every backend implements: ledger entries, tree hashes, checkpoints, projection rows.
//!
//! A backend stores bytes it is given; it never interprets an entry. One `commit` is one durable
//! transaction: entries, their tree hashes and the projection rows they changed land together or not at all.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub use qm_ledger::Hash;

/// One ledger entry as stored: its canonical bytes and the tree hashes its append created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEntry {
    pub seq: u64,
    pub idempotency_key: String,
    pub bytes: Vec<u8>,
    /// The stored tree hashes this entry's append created (see `qm_ledger::Frontier::push`).
    pub hashes: Vec<Hash>,
}

/// A projection row change: `value: None` deletes the row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowChange {
    pub kind: String,
    pub key: String,
    pub value: Option<String>,
}

/// One storage-condition reading, kept outside the ledger and covered by the digest entry `digest_seq`.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredReading {
    pub location: String,
    pub at_ms: i64,
    pub temperature_c: Option<f64>,
    pub humidity_pct: Option<f64>,
    pub digest_seq: u64,
}

/// One door event as its source reported it (a door terminal, an access-control system), kept
/// outside the ledger and covered by the digest entry `digest_seq` (docs/access.md). `location` and
/// `badge` are what the site's configuration mapped the door and the card to, when it knew them;
/// `proof` how a terminal's user proved who they are (`pin`, `duress`, `wrong_pin`, `unknown`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredDoorEvent {
    pub source: String,
    pub event_id: String,
    pub at_ms: i64,
    pub door: String,
    pub card: Option<String>,
    pub kind: String,
    pub location: Option<String>,
    pub badge: Option<String>,
    pub proof: Option<String>,
    pub digest_seq: u64,
}

/// Which door events to read: of one place (`location: Some`), or those whose door no place is
/// mapped to (`None`), in a time range (milliseconds since the epoch, inclusive), newest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DoorQuery {
    pub location: Option<String>,
    pub from_ms: i64,
    pub to_ms: i64,
    pub limit: usize,
}

/// A credential's Argon2id hash set (`hash: Some`) or removed (`None`), kept outside the ledger in
/// the store's credentials table. `subject` is `badge:<badge>` or `token:<id>`; `kind` is `pin`,
/// `password` or `token`; `seq` the ledger entry that recorded the change.
#[derive(Clone, PartialEq, Eq)]
pub struct CredentialChange {
    pub subject: String,
    pub kind: String,
    pub hash: Option<String>,
    pub seq: u64,
}

impl std::fmt::Debug for CredentialChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CredentialChange")
            .field("subject", &self.subject)
            .field("kind", &self.kind)
            .field("hash", &self.hash.as_ref().map(|_| "<redacted>"))
            .field("seq", &self.seq)
            .finish()
    }
}

/// Everything one durable transaction writes.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Commit {
    pub entries: Vec<StoredEntry>,
    pub rows: Vec<RowChange>,
    pub readings: Vec<StoredReading>,
    pub door_events: Vec<StoredDoorEvent>,
    /// Credentials the entries record being set or revoked, written with them.
    pub credentials: Vec<CredentialChange>,
}

/// A notification waiting to be delivered, or delivered (the outbox, outside the ledger: see
/// docs/notifications.md). Derived from ledger entry `seq`; `id` is stable across retries and
/// re-derivation (a receiver deduplicates by it), so putting the same message twice keeps one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxMessage {
    pub id: String,
    pub seq: u64,
    /// `email`, `webhook` or `web`.
    pub channel: String,
    /// An e-mail address, a webhook's name, or a badge (`web`).
    pub target: String,
    pub subject: String,
    /// The text of an e-mail, or the JSON payload of a webhook.
    pub body: String,
    pub created_ms: i64,
    pub attempts: u32,
    /// When the next attempt is due (milliseconds since the epoch).
    pub next_ms: i64,
    pub last_error: Option<String>,
    pub delivered_ms: Option<i64>,
}

/// Which outbox messages to read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutboxQuery {
    pub channel: Option<String>,
    pub target: Option<String>,
    /// Only those not delivered yet.
    pub pending_only: bool,
    /// Only those due by this time (and not delivered), soonest first; otherwise newest first.
    pub due_by_ms: Option<i64>,
    pub limit: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCheckpoint {
    pub size: u64,
    pub note: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path} is not a Quartermaster database{detail}")]
    NotOurs { path: String, detail: String },
    #[error("{path} has schema version {found}; this build of qm understands up to {supported}: use a newer qm")]
    TooNew { path: String, found: i64, supported: i64 },
    #[error("{0} already exists; refusing to overwrite it")]
    Exists(String),
    #[error("{0} does not exist; create it with `qm init`")]
    Missing(String),
    #[error("the ledger already holds entry {seq}; another writer appended first")]
    Conflict { seq: u64 },
    #[error("stored data is damaged: {0}")]
    Damaged(String),
    #[error("database error: {0}")]
    Backend(String),
    /// The database cannot be reached (connection refused or lost, server shutting down). Nothing
    /// can be read or written until it is back; the caller may retry.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Opens (or, with `create`, creates) the store at a location. The binary chooses the backends and
/// hands this to the application service, which knows the `Store` trait alone (`qm-backends`).
pub type Opener = fn(db: &str, create: bool) -> Result<Box<dyn Store>>;

/// What an auditor reads: a ledger's entries with their stored tree hashes, its signed checkpoints,
/// the readings its digests cover and the projection rows kept beside it. A site's own store is one;
/// a parent's mirror of a child's ledger is another, audited by the same code (`qm_app::verify`).
pub trait EntrySource: Send {
    fn entry_count(&self) -> Result<u64>;
    /// Entries with `seq` in `[from, from + limit)`, in order.
    fn read_entries(&self, from: u64, limit: usize) -> Result<Vec<StoredEntry>>;
    /// Calls `f(seq, idempotency_key, bytes, hashes)` for every entry with `seq` in `[from, to)`, in
    /// order, with borrowed data (no copy per entry); `f` returns false to stop. For the verifier,
    /// backups and the benches. `hashes` are the entry's *stored* tree hashes: all of them, or those
    /// above the levels the store derives (see [`EntrySource::derived_hash_levels`]).
    #[allow(clippy::type_complexity)]
    fn scan_range(&self, from: u64, to: u64, f: &mut dyn FnMut(u64, &str, &[u8], &[u8]) -> bool) -> Result<()>;
    /// [`EntrySource::scan_range`] from `from` to the end of the ledger.
    #[allow(clippy::type_complexity)]
    fn scan_entries(&self, from: u64, f: &mut dyn FnMut(u64, &str, &[u8], &[u8]) -> bool) -> Result<()> {
        self.scan_range(from, u64::MAX, f)
    }
    /// [`EntrySource::scan_range`] without the idempotency keys: what re-hashing the tree needs.
    #[allow(clippy::type_complexity)]
    fn scan_tree(&self, from: u64, to: u64, f: &mut dyn FnMut(u64, &[u8], &[u8]) -> bool) -> Result<()> {
        self.scan_range(from, to, &mut |seq, _, bytes, hashes| f(seq, bytes, hashes))
    }
    /// Another connection to the same database, for reading in parallel (the verifier hashes
    /// ranges of the ledger on several threads). `None` when the backend cannot give one.
    fn open_reader(&self) -> Result<Option<Box<dyn EntrySource>>> {
        Ok(None)
    }
    /// How many of each entry's tree hashes, from the leaf up, the store derives from the entries
    /// on reading instead of storing them: the scans pass the others only. Zero (the default): it
    /// stores them all. PostgreSQL: 9, every hash inside one tile of 256 entries (see its `tiles`).
    fn derived_hash_levels(&self) -> usize {
        0
    }
    /// The tree hashes of the given entries (all of them, derived or stored), in order.
    fn read_entry_hashes(&self, seqs: &[u64]) -> Result<Vec<Vec<Hash>>>;
    /// All checkpoints, by size.
    fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>>;
    /// The readings a digest entry covers, in the order they were written.
    fn readings_of_digest(&self, digest_seq: u64) -> Result<Vec<StoredReading>>;
    /// The door events a digest entry covers, in the order they were written.
    fn door_events_of_digest(&self, digest_seq: u64) -> Result<Vec<StoredDoorEvent>>;
    /// Calls `f(kind, key, value)` for every stored projection row.
    fn for_each_row(&self, f: &mut dyn FnMut(&str, &str, &str) -> std::result::Result<(), String>) -> Result<()>;
}

/// The one storage interface, for SQLite and PostgreSQL alike: what a site writes, on top of what an
/// auditor reads.
pub trait Store: EntrySource + Send {
    /// "sqlite" or "postgres", for messages and benchmarks.
    fn backend(&self) -> &'static str;
    /// Appends entries and applies row changes in one durable transaction.
    fn commit(&mut self, commit: &Commit) -> Result<()>;
    /// Writes projection rows that lag behind the ledger (the pipelined writer defers them during a
    /// burst of commits and writes them when it falls idle): `rows` bring the stored rows from
    /// whatever entry they covered up to `through` (their `meta/next_seq` row says so). They are
    /// written only if the stored rows do not already cover more than `through` (another writer
    /// wrote newer ones), all or nothing. SQLite writes them without an fsync of their own (a crash
    /// that loses them ends this process too, and the next open replays the ledger's tail);
    /// PostgreSQL commits them durably (its server can lose an unflushed commit while this process
    /// goes on, and the next rows, changes since these only, would then land on older ones).
    /// Returns whether they were written.
    fn catch_up_rows(&mut self, rows: &[RowChange], through: u64) -> Result<bool>;
    /// Runs `f` with every read it makes through this store seeing one snapshot of the database,
    /// where the backend can give one (SQLite: one read transaction). Opening a site reads the rows,
    /// the entry count and the checkpoints; without a snapshot, another process committing between
    /// those reads makes them disagree. The default runs `f` as it is.
    fn in_snapshot(&self, f: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        f()
    }
    /// The first and last entry written under an idempotency key, if any.
    fn find_idempotency_key(&self, key: &str) -> Result<Option<(u64, u64)>>;
    /// Which of these idempotency keys are already used: one round trip for a whole batch.
    fn used_idempotency_keys(&self, keys: &[&str]) -> Result<std::collections::HashSet<String>>;
    /// Stores a signed checkpoint. It need not be durable on its own: a checkpoint is re-derivable
    /// from durable entries, and the next commit makes it durable.
    fn add_checkpoint(&mut self, checkpoint: &StoredCheckpoint) -> Result<()>;
    /// Readings of one place in a time range (milliseconds since the epoch, inclusive), oldest first.
    fn readings(&self, location: &str, from_ms: i64, to_ms: i64, limit: usize) -> Result<Vec<StoredReading>>;
    /// Door events by the query, newest first.
    fn door_events(&self, query: &DoorQuery) -> Result<Vec<StoredDoorEvent>>;
    /// Which of these event ids of `source` are already stored (a source's events are idempotent by id).
    fn door_event_ids(&self, source: &str, ids: &[&str]) -> Result<std::collections::HashSet<String>>;
    /// The hash of a credential (`subject`, `kind`: see [`CredentialChange`]), if one is set.
    fn credential(&self, subject: &str, kind: &str) -> Result<Option<String>>;
    /// Every credential, for a backup made `--with-credentials` (never for an export).
    fn all_credentials(&self) -> Result<Vec<CredentialChange>>;
    /// Writes credentials on their own (a restore of a backup that holds them), in one transaction.
    fn put_credentials(&mut self, changes: &[CredentialChange]) -> Result<()>;
    /// How many ledger entries the outbox has been derived from (none yet: `None`).
    fn outbox_cursor(&self) -> Result<Option<u64>>;
    /// Adds messages (one already there under the same id is kept as it is) and moves the cursor to
    /// `cursor`, in one durable transaction: a crash leaves both or neither.
    fn outbox_put(&mut self, messages: &[OutboxMessage], cursor: u64) -> Result<()>;
    /// Records an attempt: `attempts`, `next_ms`, `last_error` and `delivered_ms` of the message with
    /// this id. Durable before it returns (a delivered message is never sent again after a restart).
    fn outbox_update(&mut self, message: &OutboxMessage) -> Result<()>;
    /// Messages by the query.
    fn outbox(&self, query: &OutboxQuery) -> Result<Vec<OutboxMessage>>;

    /// The latest checkpoint this site cosigned for a child's log (it is their witness), by origin.
    fn witnessed(&self, origin: &str) -> Result<Option<Witnessed>>;
    /// Every log this site witnesses, with the latest checkpoint it cosigned.
    fn witnessed_all(&self) -> Result<Vec<Witnessed>>;
    /// Records `new` as the latest checkpoint cosigned for its origin, if the one held is still of
    /// size `old` (none held: 0), in one transaction; false (nothing written) if it is not.
    fn witness_advance(&mut self, old: u64, new: &Witnessed) -> Result<bool>;
    /// Keeps two signed checkpoints of one log that contradict each other (never updated or deleted).
    fn add_fork_evidence(&mut self, evidence: &ForkEvidence) -> Result<()>;
    fn fork_evidence(&self) -> Result<Vec<ForkEvidence>>;
    /// Keeps a witness's cosignature of this site's checkpoint of size `size` (the note signature line).
    fn add_cosignature(&mut self, cosignature: &Cosignature) -> Result<()>;
    /// The cosignatures kept, oldest first.
    fn cosignatures(&self) -> Result<Vec<Cosignature>>;

    /// How many of a child's entries this site holds as its mirror (held from 0, without gaps).
    fn mirror_next(&self, origin: &str) -> Result<u64>;
    /// The leaf hashes of a child's mirrored entries `[from, to)`.
    fn mirror_leaves(&self, origin: &str, from: u64, to: u64) -> Result<Vec<Hash>>;
    /// Adds a child's entries from `start` (bytes and leaf hash), durably and in one transaction;
    /// those already held are skipped. Refused if `start` is past the next entry held.
    fn mirror_add(&mut self, origin: &str, start: u64, entries: &[(Vec<u8>, Hash)]) -> Result<()>;
    /// The bytes of a child's mirrored entries `[from, from + n)` (fewer at the end).
    fn mirror_entries(&self, origin: &str, from: u64, n: usize) -> Result<Vec<Vec<u8>>>;
    /// The latest checkpoint of a child mirrored whole (entries stored and verified).
    fn mirrored(&self, origin: &str) -> Result<Option<Mirrored>>;
    fn mirrored_all(&self) -> Result<Vec<Mirrored>>;
    /// Records `new` as its origin's mirror checkpoint if it is larger than the one held (a mirror
    /// checkpoint never goes back); false (nothing written) if it is not.
    fn mirror_advance(&mut self, new: &Mirrored) -> Result<bool>;
}

/// The latest checkpoint of a child's log that this site holds every entry of, verified, and
/// cosigned as its mirror (docs/sites.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mirrored {
    pub origin: String,
    pub size: u64,
    /// The child's signed checkpoint of that size.
    pub note: String,
    /// The cosignature line this site gave it as mirror.
    pub cosignature: String,
    pub at_ms: i64,
}

/// The latest checkpoint a witness cosigned for a log (docs/sites.md).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Witnessed {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
    /// The signed note as the log sent it.
    pub note: String,
    /// The cosignature line the witness gave it.
    pub cosignature: String,
    pub at_ms: i64,
}

/// Two signed checkpoints of one log that cannot both be true: the one cosigned before and the
/// one offered that contradicts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForkEvidence {
    pub origin: String,
    pub held_note: String,
    pub offered_note: String,
    pub reason: String,
    pub at_ms: i64,
}

/// A witness's cosignature of one of this site's checkpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cosignature {
    pub size: u64,
    /// The witness's key name.
    pub witness: String,
    /// The note signature line, `— <name> <base64>`.
    pub line: String,
    pub at_ms: i64,
}

/// How many entries stored projection rows cover, from the value of their `meta/next_seq` row
/// (none stored: zero). For `Store::catch_up_rows`.
pub fn rows_cover(next_seq: Option<&str>) -> Result<u64> {
    match next_seq {
        None => Ok(0),
        Some(v) => v.parse().map_err(|_| StoreError::Damaged(format!("stored next_seq {v:?} is not a number"))),
    }
}

/// An entry's tree hashes as stored: 32 bytes each, one after the other.
pub fn hashes_to_blob(hashes: &[Hash]) -> Vec<u8> {
    hashes.iter().flat_map(|h| h.iter().copied()).collect()
}

/// The tree hashes of entry `seq` from their stored bytes; `Damaged` when they are not whole hashes.
pub fn blob_to_hashes(seq: u64, blob: &[u8]) -> Result<Vec<Hash>> {
    if !blob.len().is_multiple_of(32) {
        return Err(StoreError::Damaged(format!("entry {seq}: stored tree hashes are {} bytes, not a multiple of 32", blob.len())));
    }
    Ok(blob
        .chunks_exact(32)
        .map(|c| {
            let mut h = [0u8; 32];
            h.copy_from_slice(c);
            h
        })
        .collect())
}

/// Reads tree hashes through a store, for proofs and for loading the frontier.
pub struct StoreHashes<'a>(pub &'a dyn EntrySource);

impl qm_ledger::HashReader for StoreHashes<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> std::result::Result<Vec<Hash>, qm_ledger::LedgerError> {
        let located: Vec<(u64, usize)> = indexes.iter().map(|i| qm_ledger::locate_stored_hash(*i)).collect();
        let seqs: Vec<u64> = located.iter().map(|(n, _)| *n).collect();
        let per_entry = self.0.read_entry_hashes(&seqs).map_err(|e| qm_ledger::LedgerError::HashStore(e.to_string()))?;
        located
            .iter()
            .zip(per_entry)
            .map(|((n, pos), hashes)| {
                hashes
                    .get(*pos)
                    .copied()
                    .ok_or_else(|| qm_ledger::LedgerError::HashStore(format!("entry {n} has no stored hash at position {pos}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_round_trip_and_a_damaged_blob_is_reported() {
        let h = vec![[1u8; 32], [2u8; 32]];
        assert_eq!(blob_to_hashes(3, &hashes_to_blob(&h)).unwrap(), h);
        assert!(blob_to_hashes(3, &[]).unwrap().is_empty());
        let e = blob_to_hashes(3, &[0u8; 33]).unwrap_err();
        assert!(matches!(&e, StoreError::Damaged(m) if m.contains("entry 3") && m.contains("33 bytes")), "{e}");
    }
}
