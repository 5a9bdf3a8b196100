//! The SQLite store: one file, WAL mode, `synchronous=FULL`, versioned migrations that run on open.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use qm_store::{
    Commit, CredentialChange, DoorQuery, Hash, Result, RowChange, StoreError, StoredCheckpoint, StoredDoorEvent, StoredEntry, StoredReading,
};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use std::path::Path;

mod mirror;
mod outbox;
mod witness;

/// Page size of new databases. The ledger is read front to back by `verify` and backups, and
/// appended at the end; 16 KiB pages (SQLite's default is 4 KiB) mean a quarter of the reads and
/// b-tree cells for the same bytes: `verify` of the bench organization took 15–20 % less time, at
/// 0.50–0.57 of raw SHA-256 against 0.45–0.52 (BENCHMARKS.md). Existing files keep the size they
/// were created with; the raw-insert baseline of `qm bench` uses the same size.
const PAGE_SIZE: i64 = 16384;

/// Marks a file as ours (`PRAGMA application_id`): "QMLG".
pub const APPLICATION_ID: i64 = 0x514D_4C47;

/// Migrations in order; index + 1 is the schema version they bring the file to.
/// Released migrations are never edited (a tidy test pins their hashes).
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_ledger.sql", include_str!("../migrations/0001_ledger.sql")),
    ("0002_readings.sql", include_str!("../migrations/0002_readings.sql")),
    ("0003_credentials.sql", include_str!("../migrations/0003_credentials.sql")),
    ("0004_no_replace.sql", include_str!("../migrations/0004_no_replace.sql")),
    ("0005_outbox.sql", include_str!("../migrations/0005_outbox.sql")),
    ("0006_door_events.sql", include_str!("../migrations/0006_door_events.sql")),
    ("0007_witness.sql", include_str!("../migrations/0007_witness.sql")),
    ("0008_mirror.sql", include_str!("../migrations/0008_mirror.sql")),
];

/// A `Connection` is used by one thread at a time (Rust's `Send` without `Sync`), so SQLite need
/// not lock a mutex on every call: multi-thread mode, as rusqlite's default flags choose too.
const NO_MUTEX: OpenFlags = OpenFlags::SQLITE_OPEN_NO_MUTEX;

pub struct SqliteStore {
    conn: Connection,
    path: String,
}

fn be(e: rusqlite::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl SqliteStore {
    /// Creates a new database file; refuses if it exists.
    pub fn create(path: &Path) -> Result<SqliteStore> {
        if path.exists() {
            return Err(StoreError::Exists(path.display().to_string()));
        }
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | NO_MUTEX).map_err(be)?;
        // Before anything writes the header: the page size is fixed when the file is created.
        conn.pragma_update(None, "page_size", PAGE_SIZE).map_err(be)?;
        conn.pragma_update(None, "application_id", APPLICATION_ID).map_err(be)?;
        Self::setup(conn, path)
    }

    /// Opens an existing database, migrating it forward if it is older than this build.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        if !path.exists() {
            return Err(StoreError::Missing(path.display().to_string()));
        }
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | NO_MUTEX).map_err(be)?;
        let shown = path.display().to_string();
        // A file that is not SQLite at all fails on its first read, with "file is not a database".
        let app_id: i64 = conn
            .query_row("PRAGMA application_id", [], |r| r.get(0))
            .map_err(|e| StoreError::NotOurs { path: shown.clone(), detail: format!(": {e}") })?;
        if app_id != APPLICATION_ID {
            return Err(StoreError::NotOurs { path: shown, detail: format!(" (application id {app_id:#x})") });
        }
        Self::setup(conn, path)
    }

    fn setup(conn: Connection, path: &Path) -> Result<SqliteStore> {
        let shown = path.display().to_string();
        // WAL lets readers (a backup, `qm stock`) run beside the writer; FULL makes every commit durable
        // before it returns, so an acknowledged movement survives a power cut.
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(be)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!("could not switch {shown} to WAL mode (got {mode})")));
        }
        conn.pragma_update(None, "synchronous", "FULL").map_err(be)?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(be)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(be)?;
        let mut store = SqliteStore { conn, path: shown };
        store.migrate()?;
        Ok(store)
    }

    fn migrate(&mut self) -> Result<()> {
        let version: i64 = self.conn.query_row("PRAGMA user_version", [], |r| r.get(0)).map_err(be)?;
        let supported = MIGRATIONS.len() as i64;
        if version > supported {
            return Err(StoreError::TooNew { path: self.path.clone(), found: version, supported });
        }
        for (i, (_, sql)) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.transaction().map_err(be)?;
            tx.execute_batch(sql).map_err(be)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64).map_err(be)?;
            tx.commit().map_err(be)?;
        }
        Ok(())
    }

    pub fn path(&self) -> &str {
        &self.path
    }

    /// The connection, for backups and for tests that damage the file on purpose.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// The baseline for `qm bench`: inserts `rows` rows of `row_bytes` bytes (with the same index on a
/// text key as the ledger) into a scratch file with the same page size and connection settings,
/// `batch` rows per transaction; returns rows per second. A later call appends to the same table.
pub fn raw_insert_rate(path: &Path, rows: usize, row_bytes: usize, batch: usize) -> Result<f64> {
    let mut conn = Connection::open(path).map_err(be)?;
    conn.pragma_update(None, "page_size", PAGE_SIZE).map_err(be)?;
    let _: String = conn.query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0)).map_err(be)?;
    conn.pragma_update(None, "synchronous", "FULL").map_err(be)?;
    // A later round appends to the rows of the earlier ones, as the ledger grows.
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS raw (seq INTEGER PRIMARY KEY, idem TEXT NOT NULL, bytes BLOB NOT NULL);
         CREATE INDEX IF NOT EXISTS raw_idem ON raw(idem);",
    )
    .map_err(be)?;
    let mut seq: i64 = conn.query_row("SELECT coalesce(max(seq) + 1, 0) FROM raw", [], |r| r.get(0)).map_err(be)?;
    let end = seq + rows as i64;
    let payload = vec![b'x'; row_bytes];
    let start = std::time::Instant::now();
    while seq < end {
        let tx = conn.transaction().map_err(be)?;
        {
            let mut st = tx.prepare_cached("INSERT INTO raw (seq, idem, bytes) VALUES (?1, ?2, ?3)").map_err(be)?;
            for _ in 0..batch.max(1) {
                st.execute(params![seq, format!("k-{seq}"), payload]).map_err(be)?;
                seq += 1;
            }
        }
        tx.commit().map_err(be)?;
    }
    Ok(rows as f64 / start.elapsed().as_secs_f64().max(1e-9))
}

impl SqliteStore {
    /// Runs a scan whose first three columns are seq, bytes and hashes, borrowing each row.
    #[allow(clippy::type_complexity)]
    fn scan(&self, sql: &str, from: u64, to: u64, f: &mut dyn FnMut(u64, &rusqlite::Row, &[u8], &[u8]) -> Result<bool>) -> Result<()> {
        let mut st = self.conn.prepare_cached(sql).map_err(be)?;
        let bound = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        let mut rows = st.query(params![bound(from), bound(to)]).map_err(be)?;
        while let Some(r) = rows.next().map_err(be)? {
            let seq = r.get::<_, i64>(0).map_err(be)? as u64;
            let bytes = r.get_ref(1).map_err(be)?.as_blob().map_err(|e| StoreError::Damaged(format!("entry {seq}: bytes: {e}")))?;
            let hashes = r.get_ref(2).map_err(be)?.as_blob().map_err(|e| StoreError::Damaged(format!("entry {seq}: hashes: {e}")))?;
            if !f(seq, r, bytes, hashes)? {
                break;
            }
        }
        Ok(())
    }
}

/// Applies row changes inside a transaction (the caller commits).
fn write_rows(tx: &rusqlite::Transaction, rows: &[RowChange]) -> Result<()> {
    let mut up = tx
        .prepare_cached(
            "INSERT INTO projection (kind, key, value) VALUES (?1, ?2, ?3) ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value",
        )
        .map_err(be)?;
    let mut del = tx.prepare_cached("DELETE FROM projection WHERE kind = ?1 AND key = ?2").map_err(be)?;
    for r in rows {
        match &r.value {
            Some(v) => up.execute(params![r.kind, r.key, v]).map_err(be)?,
            None => del.execute(params![r.kind, r.key]).map_err(be)?,
        };
    }
    Ok(())
}

/// `Store::catch_up_rows` in one write transaction: the stored rows' coverage is read under the lock.
fn catch_up(conn: &mut Connection, rows: &[RowChange], through: u64) -> Result<bool> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).map_err(be)?;
    let stored: Option<String> =
        tx.query_row("SELECT value FROM projection WHERE kind = 'meta' AND key = 'next_seq'", [], |r| r.get(0)).optional().map_err(be)?;
    if qm_store::rows_cover(stored.as_deref())? > through {
        return Ok(false);
    }
    write_rows(&tx, rows)?;
    tx.commit().map_err(be)?;
    Ok(true)
}

fn reading_row(r: &rusqlite::Row) -> rusqlite::Result<StoredReading> {
    Ok(StoredReading {
        location: r.get(0)?,
        at_ms: r.get(1)?,
        temperature_c: r.get(2)?,
        humidity_pct: r.get(3)?,
        digest_seq: r.get::<_, i64>(4)? as u64,
    })
}

const DOOR_COLUMNS: &str = "source, event_id, at_ms, door, card, kind, location, badge, proof, digest_seq";

fn door_row(r: &rusqlite::Row) -> rusqlite::Result<StoredDoorEvent> {
    Ok(StoredDoorEvent {
        source: r.get(0)?,
        event_id: r.get(1)?,
        at_ms: r.get(2)?,
        door: r.get(3)?,
        card: r.get(4)?,
        kind: r.get(5)?,
        location: r.get(6)?,
        badge: r.get(7)?,
        proof: r.get(8)?,
        digest_seq: r.get::<_, i64>(9)? as u64,
    })
}

impl qm_store::EntrySource for SqliteStore {
    fn entry_count(&self) -> Result<u64> {
        let n: Option<i64> = self.conn.query_row("SELECT max(seq) FROM entries", [], |r| r.get(0)).map_err(be)?;
        Ok(n.map(|n| n as u64 + 1).unwrap_or(0))
    }
    fn read_entries(&self, from: u64, limit: usize) -> Result<Vec<StoredEntry>> {
        // A sequence number no entry can have (SQLite integers stop at 2^63 - 1) reads nothing, never wraps.
        let (Ok(from), Ok(limit)) = (i64::try_from(from), i64::try_from(limit)) else { return Ok(vec![]) };
        let mut st =
            self.conn.prepare_cached("SELECT seq, idem, bytes, hashes FROM entries WHERE seq >= ?1 ORDER BY seq LIMIT ?2").map_err(be)?;
        let rows = st
            .query_map(params![from, limit], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, Vec<u8>>(2)?, r.get::<_, Vec<u8>>(3)?))
            })
            .map_err(be)?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, idem, bytes, hashes) = row.map_err(be)?;
            let seq = seq as u64;
            out.push(StoredEntry { seq, idempotency_key: idem, bytes, hashes: qm_store::blob_to_hashes(seq, &hashes)? });
        }
        Ok(out)
    }
    fn scan_range(&self, from: u64, to: u64, f: &mut dyn FnMut(u64, &str, &[u8], &[u8]) -> bool) -> Result<()> {
        self.scan(
            "SELECT seq, bytes, hashes, idem FROM entries WHERE seq >= ?1 AND seq < ?2 ORDER BY seq",
            from,
            to,
            &mut |seq, r, bytes, hashes| {
                let idem =
                    r.get_ref(3).map_err(be)?.as_str().map_err(|e| StoreError::Damaged(format!("entry {seq}: idempotency key: {e}")))?;
                Ok(f(seq, idem, bytes, hashes))
            },
        )
    }
    fn scan_tree(&self, from: u64, to: u64, f: &mut dyn FnMut(u64, &[u8], &[u8]) -> bool) -> Result<()> {
        self.scan(
            "SELECT seq, bytes, hashes FROM entries WHERE seq >= ?1 AND seq < ?2 ORDER BY seq",
            from,
            to,
            &mut |seq, _, bytes, hashes| Ok(f(seq, bytes, hashes)),
        )
    }
    fn open_reader(&self) -> Result<Option<Box<dyn qm_store::EntrySource>>> {
        // (Mapping the file with `mmap_size` was measured: slower than read(2) here, and it turns I/O
        // errors into signals.)
        Ok(Some(Box::new(SqliteStore::open(Path::new(&self.path))?)))
    }
    fn read_entry_hashes(&self, seqs: &[u64]) -> Result<Vec<Vec<Hash>>> {
        let mut st = self.conn.prepare_cached("SELECT hashes FROM entries WHERE seq = ?1").map_err(be)?;
        seqs.iter()
            .map(|s| {
                let blob: Option<Vec<u8>> = st.query_row(params![i64::try_from(*s).unwrap_or(-1)], |r| r.get(0)).optional().map_err(be)?;
                match blob {
                    Some(b) => qm_store::blob_to_hashes(*s, &b),
                    None => Err(StoreError::Damaged(format!("entry {s} is missing"))),
                }
            })
            .collect()
    }
    fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>> {
        let mut st = self.conn.prepare_cached("SELECT size, note FROM checkpoints ORDER BY size").map_err(be)?;
        let rows = st.query_map([], |r| Ok(StoredCheckpoint { size: r.get::<_, i64>(0)? as u64, note: r.get(1)? })).map_err(be)?;
        rows.collect::<std::result::Result<Vec<_>, _>>().map_err(be)
    }
    fn readings_of_digest(&self, digest_seq: u64) -> Result<Vec<StoredReading>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT location, at_ms, temperature_c, humidity_pct, digest_seq FROM readings WHERE digest_seq = ?1 ORDER BY rowid",
            )
            .map_err(be)?;
        let rows = st.query_map(params![digest_seq as i64], reading_row).map_err(be)?;
        rows.collect::<std::result::Result<Vec<_>, _>>().map_err(be)
    }
    fn door_events_of_digest(&self, digest_seq: u64) -> Result<Vec<StoredDoorEvent>> {
        let sql = format!("SELECT {DOOR_COLUMNS} FROM door_events WHERE digest_seq = ?1 ORDER BY rowid");
        let mut st = self.conn.prepare_cached(&sql).map_err(be)?;
        let rows = st.query_map(params![digest_seq as i64], door_row).map_err(be)?;
        rows.collect::<std::result::Result<Vec<_>, _>>().map_err(be)
    }
    fn for_each_row(&self, f: &mut dyn FnMut(&str, &str, &str) -> std::result::Result<(), String>) -> Result<()> {
        let mut st = self.conn.prepare_cached("SELECT kind, key, value FROM projection ORDER BY kind, key").map_err(be)?;
        let mut rows = st.query([]).map_err(be)?;
        while let Some(r) = rows.next().map_err(be)? {
            let kind: String = r.get(0).map_err(be)?;
            let key: String = r.get(1).map_err(be)?;
            let value: String = r.get(2).map_err(be)?;
            f(&kind, &key, &value).map_err(StoreError::Damaged)?;
        }
        Ok(())
    }
}

impl qm_store::Store for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
    }

    fn commit(&mut self, commit: &Commit) -> Result<()> {
        let tx = self.conn.transaction().map_err(be)?;
        {
            let mut ins = tx.prepare_cached("INSERT INTO entries (seq, idem, bytes, hashes) VALUES (?1, ?2, ?3, ?4)").map_err(be)?;
            for e in &commit.entries {
                ins.execute(params![e.seq as i64, e.idempotency_key, e.bytes, qm_store::hashes_to_blob(&e.hashes)]).map_err(
                    |err| match err {
                        rusqlite::Error::SqliteFailure(f, _) if f.code == rusqlite::ErrorCode::ConstraintViolation => {
                            StoreError::Conflict { seq: e.seq }
                        }
                        other => be(other),
                    },
                )?;
            }
            let mut reading = tx
                .prepare_cached(
                    "INSERT INTO readings (location, at_ms, temperature_c, humidity_pct, digest_seq) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(be)?;
            for r in &commit.readings {
                reading.execute(params![r.location, r.at_ms, r.temperature_c, r.humidity_pct, r.digest_seq as i64]).map_err(be)?;
            }
            let mut door = tx
                .prepare_cached(&format!("INSERT INTO door_events ({DOOR_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"))
                .map_err(be)?;
            for d in &commit.door_events {
                let p = params![d.source, d.event_id, d.at_ms, d.door, d.card, d.kind, d.location, d.badge, d.proof, d.digest_seq as i64];
                door.execute(p).map_err(be)?;
            }
        }
        write_rows(&tx, &commit.rows)?;
        write_credentials(&tx, &commit.credentials)?;
        tx.commit().map_err(be)
    }

    fn catch_up_rows(&mut self, rows: &[RowChange], through: u64) -> Result<bool> {
        // Rows are re-derived from the ledger if lost: no fsync of their own (the next commit's covers them).
        self.conn.pragma_update(None, "synchronous", "NORMAL").map_err(be)?;
        let r = catch_up(&mut self.conn, rows, through);
        self.conn.pragma_update(None, "synchronous", "FULL").map_err(be)?;
        r
    }

    fn in_snapshot(&self, f: &mut dyn FnMut() -> Result<()>) -> Result<()> {
        // A deferred transaction that only reads: its snapshot is taken at the first read and held
        // until the end, while writers on other connections go on appending to the WAL.
        self.conn.execute_batch("BEGIN DEFERRED").map_err(be)?;
        let r = f();
        let end = self.conn.execute_batch(if r.is_ok() { "COMMIT" } else { "ROLLBACK" }).map_err(be);
        r.and(end)
    }

    fn find_idempotency_key(&self, key: &str) -> Result<Option<(u64, u64)>> {
        let row: (Option<i64>, Option<i64>) = self
            .conn
            .prepare_cached("SELECT min(seq), max(seq) FROM entries WHERE idem = ?1")
            .map_err(be)?
            .query_row(params![key], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(be)?;
        Ok(match row {
            (Some(a), Some(b)) => Some((a as u64, b as u64)),
            _ => None,
        })
    }

    fn used_idempotency_keys(&self, keys: &[&str]) -> Result<std::collections::HashSet<String>> {
        let mut used = std::collections::HashSet::new();
        // SQLite allows 32766 parameters; stay far below.
        for chunk in keys.chunks(500) {
            let marks = vec!["?"; chunk.len()].join(",");
            let mut st = self.conn.prepare_cached(&format!("SELECT DISTINCT idem FROM entries WHERE idem IN ({marks})")).map_err(be)?;
            let rows = st.query_map(rusqlite::params_from_iter(chunk.iter()), |r| r.get::<_, String>(0)).map_err(be)?;
            for r in rows {
                used.insert(r.map_err(be)?);
            }
        }
        Ok(used)
    }

    fn add_checkpoint(&mut self, cp: &StoredCheckpoint) -> Result<()> {
        // The checkpoint signs entries that are already durable; it needs no flush of its own
        // (a lost checkpoint is re-signed from the same entries), so it skips the fsync.
        self.conn.pragma_update(None, "synchronous", "NORMAL").map_err(be)?;
        let r = self.conn.execute(
            "INSERT INTO checkpoints (size, note) VALUES (?1, ?2) ON CONFLICT (size) DO NOTHING",
            params![cp.size as i64, cp.note],
        );
        self.conn.pragma_update(None, "synchronous", "FULL").map_err(be)?;
        r.map_err(be)?;
        Ok(())
    }

    fn readings(&self, location: &str, from_ms: i64, to_ms: i64, limit: usize) -> Result<Vec<StoredReading>> {
        let mut st = self
            .conn
            .prepare_cached(
                "SELECT location, at_ms, temperature_c, humidity_pct, digest_seq FROM readings WHERE location = ?1 AND at_ms >= ?2 AND at_ms <= ?3 ORDER BY at_ms LIMIT ?4",
            )
            .map_err(be)?;
        let rows = st.query_map(params![location, from_ms, to_ms, limit as i64], reading_row).map_err(be)?;
        rows.collect::<std::result::Result<Vec<_>, _>>().map_err(be)
    }

    fn door_events(&self, q: &DoorQuery) -> Result<Vec<StoredDoorEvent>> {
        let place = if q.location.is_some() { "location = ?1" } else { "location IS NULL AND ?1 IS NULL" };
        let sql = format!(
            "SELECT {DOOR_COLUMNS} FROM door_events WHERE {place} AND at_ms >= ?2 AND at_ms <= ?3 ORDER BY at_ms DESC, rowid DESC LIMIT ?4"
        );
        let mut st = self.conn.prepare_cached(&sql).map_err(be)?;
        let rows = st.query_map(params![q.location, q.from_ms, q.to_ms, q.limit as i64], door_row).map_err(be)?;
        rows.collect::<std::result::Result<Vec<_>, _>>().map_err(be)
    }

    fn door_event_ids(&self, source: &str, ids: &[&str]) -> Result<std::collections::HashSet<String>> {
        // A few queries for the whole batch: up to 500 ids each, against the unique index.
        let mut out = std::collections::HashSet::new();
        for chunk in ids.chunks(500) {
            let marks: Vec<String> = (0..chunk.len()).map(|i| format!("?{}", i + 2)).collect();
            let sql = format!("SELECT event_id FROM door_events WHERE source = ?1 AND event_id IN ({})", marks.join(", "));
            let mut st = self.conn.prepare_cached(&sql).map_err(be)?;
            let mut values: Vec<&dyn rusqlite::ToSql> = vec![&source];
            values.extend(chunk.iter().map(|id| id as &dyn rusqlite::ToSql));
            let rows = st.query_map(values.as_slice(), |r| r.get::<_, String>(0)).map_err(be)?;
            for r in rows {
                out.insert(r.map_err(be)?);
            }
        }
        Ok(out)
    }

    fn credential(&self, subject: &str, kind: &str) -> Result<Option<String>> {
        let mut st = self.conn.prepare_cached("SELECT hash FROM credentials WHERE subject = ?1 AND kind = ?2").map_err(be)?;
        st.query_row(params![subject, kind], |r| r.get(0)).optional().map_err(be)
    }

    fn all_credentials(&self) -> Result<Vec<CredentialChange>> {
        let mut st = self.conn.prepare_cached("SELECT subject, kind, hash, seq FROM credentials ORDER BY subject, kind").map_err(be)?;
        let rows = st
            .query_map([], |r| {
                Ok(CredentialChange { subject: r.get(0)?, kind: r.get(1)?, hash: r.get(2)?, seq: r.get::<_, i64>(3)? as u64 })
            })
            .map_err(be)?;
        rows.collect::<std::result::Result<Vec<_>, _>>().map_err(be)
    }

    fn put_credentials(&mut self, changes: &[CredentialChange]) -> Result<()> {
        let tx = self.conn.transaction().map_err(be)?;
        write_credentials(&tx, changes)?;
        tx.commit().map_err(be)
    }

    fn outbox_cursor(&self) -> Result<Option<u64>> {
        self.outbox_cursor_of()
    }

    fn outbox_put(&mut self, messages: &[qm_store::OutboxMessage], cursor: u64) -> Result<()> {
        self.outbox_put_all(messages, cursor)
    }

    fn outbox_update(&mut self, message: &qm_store::OutboxMessage) -> Result<()> {
        self.outbox_update_one(message)
    }

    fn outbox(&self, query: &qm_store::OutboxQuery) -> Result<Vec<qm_store::OutboxMessage>> {
        self.outbox_query(query)
    }

    fn mirror_next(&self, origin: &str) -> Result<u64> {
        self.mirror_next_of(origin)
    }

    fn mirror_leaves(&self, origin: &str, from: u64, to: u64) -> Result<Vec<qm_store::Hash>> {
        self.mirror_leaves_of(origin, from, to)
    }

    fn mirror_add(&mut self, origin: &str, start: u64, entries: &[(Vec<u8>, qm_store::Hash)]) -> Result<()> {
        self.mirror_add_to(origin, start, entries)
    }

    fn mirror_entries(&self, origin: &str, from: u64, n: usize) -> Result<Vec<Vec<u8>>> {
        self.mirror_entries_of(origin, from, n)
    }

    fn mirrored(&self, origin: &str) -> Result<Option<qm_store::Mirrored>> {
        self.mirrored_one(origin)
    }

    fn mirrored_all(&self) -> Result<Vec<qm_store::Mirrored>> {
        self.mirrored_every()
    }

    fn mirror_advance(&mut self, new: &qm_store::Mirrored) -> Result<bool> {
        self.mirror_advance_to(new)
    }

    fn witnessed(&self, origin: &str) -> Result<Option<qm_store::Witnessed>> {
        self.witnessed_one(origin)
    }

    fn witnessed_all(&self) -> Result<Vec<qm_store::Witnessed>> {
        self.witnessed_every()
    }

    fn witness_advance(&mut self, old: u64, new: &qm_store::Witnessed) -> Result<bool> {
        self.witness_advance_to(old, new)
    }

    fn add_fork_evidence(&mut self, evidence: &qm_store::ForkEvidence) -> Result<()> {
        self.add_fork_evidence_one(evidence)
    }

    fn fork_evidence(&self) -> Result<Vec<qm_store::ForkEvidence>> {
        self.fork_evidence_all()
    }

    fn add_cosignature(&mut self, cosignature: &qm_store::Cosignature) -> Result<()> {
        self.add_cosignature_one(cosignature)
    }

    fn cosignatures(&self) -> Result<Vec<qm_store::Cosignature>> {
        self.cosignatures_all()
    }
}

/// Sets or removes credentials inside the caller's transaction.
fn write_credentials(tx: &rusqlite::Transaction, changes: &[CredentialChange]) -> Result<()> {
    if changes.is_empty() {
        return Ok(());
    }
    let mut put = tx
        .prepare_cached(
            "INSERT INTO credentials (subject, kind, hash, seq) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (subject, kind) DO UPDATE SET hash = excluded.hash, seq = excluded.seq",
        )
        .map_err(be)?;
    let mut del = tx.prepare_cached("DELETE FROM credentials WHERE subject = ?1 AND kind = ?2").map_err(be)?;
    for c in changes {
        match &c.hash {
            Some(h) => put.execute(params![c.subject, c.kind, h, c.seq as i64]).map_err(be)?,
            None => del.execute(params![c.subject, c.kind]).map_err(be)?,
        };
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use qm_store::{EntrySource, Store};

    fn entry(seq: u64) -> StoredEntry {
        StoredEntry { seq, idempotency_key: format!("k{seq}"), bytes: vec![b'x'; 10], hashes: vec![[seq as u8; 32]] }
    }

    #[test]
    fn reads_in_a_snapshot_do_not_see_a_commit_made_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut writer = SqliteStore::create(&path).unwrap();
        writer.commit(&Commit { entries: vec![entry(0)], ..Commit::default() }).unwrap();
        let reader = SqliteStore::open(&path).unwrap();
        let mut seen = vec![];
        reader
            .in_snapshot(&mut || {
                seen.push(reader.entry_count()?);
                // Another connection (another process, in life) commits between two reads.
                writer.commit(&Commit { entries: vec![entry(1)], ..Commit::default() })?;
                seen.push(reader.entry_count()?);
                Ok(())
            })
            .unwrap();
        assert_eq!(seen, vec![1, 1], "both reads see the snapshot taken at the first");
        assert_eq!(reader.entry_count().unwrap(), 2, "after the snapshot ends, the commit is there");
        // An error inside ends the transaction too: the connection is usable afterwards.
        let failed = reader.in_snapshot(&mut || Err(StoreError::Backend("stop".into())));
        assert!(failed.is_err());
        assert_eq!(reader.entry_count().unwrap(), 2);
    }

    #[test]
    fn an_entry_cannot_be_replaced_deleted_or_updated_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut store = SqliteStore::create(&path).unwrap();
        store.commit(&Commit { entries: vec![entry(0), entry(1)], ..Commit::default() }).unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        // INSERT OR REPLACE once swapped an entry's bytes past the no-delete trigger.
        for sql in [
            "INSERT OR REPLACE INTO entries (seq, idem, bytes, hashes) VALUES (0, 'k0', x'00', x'00')",
            "REPLACE INTO entries (seq, idem, bytes, hashes) VALUES (1, 'k1', x'00', x'00')",
            "UPDATE entries SET bytes = x'00' WHERE seq = 0",
            "DELETE FROM entries WHERE seq = 1",
        ] {
            let e = conn.execute(sql, []).unwrap_err().to_string();
            assert!(e.contains("ledger entries are never"), "{sql}: {e}");
        }
        let kept = store.read_entries(0, 10).unwrap();
        assert_eq!(kept.iter().map(|e| e.bytes.clone()).collect::<Vec<_>>(), vec![vec![b'x'; 10], vec![b'x'; 10]]);
        // A taken sequence number is still a conflict for the store, and the next one still commits.
        assert!(matches!(store.commit(&Commit { entries: vec![entry(1)], ..Commit::default() }), Err(StoreError::Conflict { seq: 1 })));
        store.commit(&Commit { entries: vec![entry(2)], ..Commit::default() }).unwrap();
        // A sequence number no entry can have reads nothing (it once wrapped to a negative integer).
        assert!(store.read_entries(1 << 63, 5).unwrap().is_empty());
    }
}
