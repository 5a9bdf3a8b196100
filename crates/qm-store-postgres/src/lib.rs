//! The PostgreSQL store: one database (or one schema in it), versioned migrations that run on open,
//! triggers that refuse to edit history, one transaction per `commit`.
//!
//! Durability: PostgreSQL's default `synchronous_commit = on` makes `COMMIT` return only after the
//! transaction's WAL is flushed to disk, so an acknowledged movement survives a crash or power cut.
//! That is what we need, and the only setting that loses acknowledged commits is `off`: a session
//! that finds `off` (set by an administrator on the server, database or role) switches itself back
//! to `on`. Stricter settings (`remote_write`, `remote_apply` with a synchronous standby) are kept.
//! The server's own `fsync` and `full_page_writes` must stay on (their defaults); see docs/storage.md.
//!
//! By stage: `connect` (URL, sessions, errors), `schema` (migrations, recognising our schema),
//! `write` (the commit's transaction), `read` (the `EntrySource` half), `tiles` (the tile format),
//! `baseline` (`qm bench`'s raw-insert figure); here, the store itself and its `Store` half.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod baseline;
mod connect;
mod mirror;
mod outbox;
mod read;
mod schema;
pub mod scratch;
pub mod tiles;
mod witness;
mod write;

pub use baseline::raw_insert_rate;
use connect::*;
pub use connect::{describe, is_url, redacted};
use read::*;
use schema::*;
pub use schema::{APPLICATION, MIGRATIONS};
use write::*;

use postgres::types::{ToSql, Type};
use postgres::{Client, Config, NoTls, Row};
use qm_store::{
    Commit, CredentialChange, DoorQuery, Hash, Result, StoreError, StoredCheckpoint, StoredDoorEvent, StoredEntry, StoredReading,
};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;

pub struct PostgresStore {
    /// `Store`'s readers take `&self`, the client needs `&mut`: one connection, borrowed per call.
    client: RefCell<Client>,
    /// The URL without its password, for messages.
    shown: String,
    /// The URL as given (with its password; never shown), to reconnect after the server went away.
    url: String,
    /// The statement that reads a few tiles, prepared once per session: planning it took longer
    /// than running it (0.6 ms against 0.14 ms, 89 times per verify of 361,245 entries).
    tiles_statement: RefCell<Option<postgres::Statement>>,
    /// The open tile's entries as this store last committed them, so that the commit completing it
    /// need not read them back (see [`OpenTile`]).
    open_tile: Option<OpenTile>,
}

/// The records of the open tile's entries `256·tile .. next`, as the last commit through this
/// store left them. Valid for a commit whose entries start at `next`: the seqs before it are this
/// store's, committed; had another writer appended since, `next` would be taken and the commit a
/// `Conflict` before its tiles are written.
struct OpenTile {
    tile: u64,
    next: u64,
    records: Vec<u8>,
}

impl PostgresStore {
    /// Creates the schema in an existing, empty database (or schema, via `search_path` in the URL's
    /// `options`); refuses if our schema is already there.
    pub fn create(url: &str) -> Result<PostgresStore> {
        let mut store = Self::connect(url)?;
        let shown = store.shown.clone();
        let client = store.client.get_mut();
        let encoding: String = client.query_one("SHOW server_encoding", &[]).map_err(be)?.get(0);
        if !encoding.eq_ignore_ascii_case("UTF8") {
            return Err(StoreError::Backend(format!(
                "{shown} uses the {encoding} encoding; Quartermaster needs a UTF8 database (CREATE DATABASE … ENCODING 'UTF8')"
            )));
        }
        let mut tx = client.transaction().map_err(be)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).map_err(be)?;
        match inspect(&mut tx, &shown)? {
            Found::Ours(_) => return Err(StoreError::Exists(shown)),
            Found::Empty => {}
        }
        tx.batch_execute(SCHEMA_TABLE).map_err(be)?;
        tx.commit().map_err(be)?;
        store.migrate()?;
        Ok(store)
    }

    /// Opens an existing schema, migrating it forward if it is older than this build.
    pub fn open(url: &str) -> Result<PostgresStore> {
        let mut store = Self::connect(url)?;
        let shown = store.shown.clone();
        {
            let client = store.client.get_mut();
            let mut tx = client.transaction().map_err(be)?;
            if let Found::Empty = inspect(&mut tx, &shown)? {
                return Err(StoreError::Missing(shown));
            }
        }
        store.migrate()?;
        Ok(store)
    }

    fn connect(url: &str) -> Result<PostgresStore> {
        let shown = redacted(url);
        let cfg = config(url, &shown)?;
        let client = session(&cfg, &shown)?;
        Ok(PostgresStore {
            client: RefCell::new(client),
            shown,
            url: url.to_string(),
            tiles_statement: RefCell::new(None),
            open_tile: None,
        })
    }

    /// A new session when the server closed the old one (it restarted, or a network cut ended it).
    /// The transaction that was open on the old session is gone with it; the caller reports that.
    fn reconnect_if_closed(&self, client: &mut Client) -> Result<()> {
        if !client.is_closed() {
            return Ok(());
        }
        *client = session(&config(&self.url, &self.shown)?, &self.shown)?;
        // Prepared statements belonged to the old session.
        self.tiles_statement.replace(None);
        Ok(())
    }

    /// The URL without its password.
    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Runs `f` with the connection, for tests that damage the database on purpose and for tools.
    pub fn with_client<T>(&self, f: impl FnOnce(&mut Client) -> T) -> Result<T> {
        let mut c = self.client()?;
        Ok(f(&mut c))
    }

    fn client(&self) -> Result<std::cell::RefMut<'_, Client>> {
        let mut c = self
            .client
            .try_borrow_mut()
            .map_err(|_| StoreError::Backend("the PostgreSQL connection is busy: a callback called back into the store".into()))?;
        self.reconnect_if_closed(&mut c)?;
        Ok(c)
    }

    /// Streams the rows of `sql` through a portal in a read-only snapshot, `fetch` at a time;
    /// `f` returns false to stop.
    fn stream(&self, sql: &str, params: &[&(dyn ToSql + Sync)], fetch: i32, f: &mut dyn FnMut(&Row) -> Result<bool>) -> Result<()> {
        let mut client = self.client()?;
        let mut tx =
            client.build_transaction().isolation_level(postgres::IsolationLevel::RepeatableRead).read_only(true).start().map_err(be)?;
        let portal = tx.bind(sql, params).map_err(be)?;
        loop {
            let rows = tx.query_portal(&portal, fetch).map_err(be)?;
            for r in &rows {
                if !f(r)? {
                    return tx.commit().map_err(be);
                }
            }
            if rows.len() < fetch as usize {
                return tx.commit().map_err(be);
            }
        }
    }
}

impl qm_store::Store for PostgresStore {
    fn backend(&self) -> &'static str {
        "postgres"
    }

    fn commit(&mut self, commit: &Commit) -> Result<()> {
        // Taken now, put back only if this commit lands: a failed one leaves no cache behind. A
        // commit without entries leaves the open tile as it was.
        if commit.entries.is_empty() {
            return self.commit_with(commit, None, &mut None);
        }
        let cached = self.open_tile.take();
        let mut open_after = None;
        self.commit_with(commit, cached, &mut open_after)?;
        self.open_tile = open_after;
        Ok(())
    }

    fn catch_up_rows(&mut self, rows: &[qm_store::RowChange], through: u64) -> Result<bool> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(be)?;
        // Durable like a commit: if the server lost these rows in a crash while this process goes on,
        // its next rows (changes since these only) would be written over older ones.
        // The row lock orders this against another writer's rows (`commit` takes it first too).
        let stored: Option<String> = tx
            .query_opt("SELECT value FROM projection WHERE kind = 'meta' AND key = 'next_seq' FOR UPDATE", &[])
            .map_err(be)?
            .map(|r| r.try_get(0))
            .transpose()
            .map_err(be)?;
        if qm_store::rows_cover(stored.as_deref())? > through {
            return Ok(false);
        }
        write_rows(&mut tx, rows)?;
        tx.commit().map_err(be)?;
        Ok(true)
    }

    fn find_idempotency_key(&self, key: &str) -> Result<Option<(u64, u64)>> {
        let row = self.client()?.query_one("SELECT first, last FROM qm_key_range($1)", &[&key]).map_err(be)?;
        let (a, b): (Option<i64>, Option<i64>) = (row.get(0), row.get(1));
        Ok(match (a, b) {
            (Some(a), Some(b)) => Some((seq_of(a)?, seq_of(b)?)),
            _ => None,
        })
    }

    fn used_idempotency_keys(&self, keys: &[&str]) -> Result<HashSet<String>> {
        if keys.is_empty() {
            return Ok(HashSet::new());
        }
        let rows = self.client()?.query("SELECT qm_used_keys($1)", &[&keys]).map_err(be)?;
        rows.iter().map(|r| r.try_get::<_, String>(0).map_err(be)).collect()
    }

    fn add_checkpoint(&mut self, cp: &StoredCheckpoint) -> Result<()> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(be)?;
        // The checkpoint signs entries that are already durable; it needs no flush of its own (a lost
        // checkpoint is re-signed from the same entries), so it does not wait for the WAL flush.
        tx.batch_execute("SET LOCAL synchronous_commit = off").map_err(be)?;
        tx.execute("INSERT INTO checkpoints (size, note) VALUES ($1, $2) ON CONFLICT (size) DO NOTHING", &[&seq_param(cp.size)?, &cp.note])
            .map_err(be)?;
        tx.commit().map_err(be)
    }

    fn readings(&self, location: &str, from_ms: i64, to_ms: i64, limit: usize) -> Result<Vec<StoredReading>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .client()?
            .query(
                "SELECT location, at_ms, temperature_c, humidity_pct, digest_seq FROM readings
                 WHERE location = $1 AND at_ms >= $2 AND at_ms <= $3 ORDER BY at_ms, id LIMIT $4",
                &[&location, &from_ms, &to_ms, &limit],
            )
            .map_err(be)?;
        rows.iter().map(reading_row).collect()
    }

    fn door_events(&self, q: &DoorQuery) -> Result<Vec<StoredDoorEvent>> {
        let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
        let place = if q.location.is_some() { "location = $1" } else { "location IS NULL AND $1::text IS NULL" };
        let sql = format!(
            "SELECT {DOOR_COLUMNS} FROM door_events WHERE {place} AND at_ms >= $2 AND at_ms <= $3 ORDER BY at_ms DESC, id DESC LIMIT $4"
        );
        let rows = self.client()?.query(&sql, &[&q.location, &q.from_ms, &q.to_ms, &limit]).map_err(be)?;
        rows.iter().map(door_row).collect()
    }

    fn door_event_ids(&self, source: &str, ids: &[&str]) -> Result<HashSet<String>> {
        let rows = self
            .client()?
            .query("SELECT event_id FROM door_events WHERE source = $1 AND event_id = ANY($2)", &[&source, &ids])
            .map_err(be)?;
        rows.iter().map(|r| r.try_get::<_, String>(0).map_err(be)).collect()
    }

    fn credential(&self, subject: &str, kind: &str) -> Result<Option<String>> {
        let rows = self.client()?.query("SELECT hash FROM credentials WHERE subject = $1 AND kind = $2", &[&subject, &kind]).map_err(be)?;
        rows.first().map(|r| r.try_get(0).map_err(be)).transpose()
    }

    fn all_credentials(&self) -> Result<Vec<CredentialChange>> {
        let rows = self.client()?.query("SELECT subject, kind, hash, seq FROM credentials ORDER BY subject, kind", &[]).map_err(be)?;
        rows.iter()
            .map(|r| {
                Ok(CredentialChange {
                    subject: r.try_get(0).map_err(be)?,
                    kind: r.try_get(1).map_err(be)?,
                    hash: r.try_get(2).map_err(be)?,
                    seq: r.try_get::<_, i64>(3).map_err(be)? as u64,
                })
            })
            .collect()
    }

    fn put_credentials(&mut self, changes: &[CredentialChange]) -> Result<()> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(be)?;
        write_credentials(&mut tx, changes)?;
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
