//! The PostgreSQL store: one database (or one schema in it), versioned migrations that run on open,
//! triggers that refuse to edit history, one transaction per `commit`.
//!
//! Durability: PostgreSQL's default `synchronous_commit = on` makes `COMMIT` return only after the
//! transaction's WAL is flushed to disk, so an acknowledged movement survives a crash or power cut.
//! That is what we need, and the only setting that loses acknowledged commits is `off`: a session
//! that finds `off` (set by an administrator on the server, database or role) switches itself back
//! to `on`. Stricter settings (`remote_write`, `remote_apply` with a synchronous standby) are kept.
//! The server's own `fsync` and `full_page_writes` must stay on (their defaults); see docs/storage.md.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod scratch;
pub mod tiles;

use postgres::types::{ToSql, Type};
use postgres::{Client, Config, NoTls, Row};
use qm_store::{Commit, CredentialChange, Hash, Result, StoreError, StoredCheckpoint, StoredEntry, StoredReading};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;

/// Marks a schema as ours: the `application` column of `qm_schema`.
pub const APPLICATION: &str = "quartermaster";

/// Key of the advisory lock taken while creating or migrating a schema ("QMLG", as SQLite's application id).
const MIGRATION_LOCK: i64 = 0x514D_4C47;

/// Migrations in order; index + 1 is the schema version they bring the database to.
/// Released migrations are never edited (a tidy test pins their hashes).
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_ledger.sql", include_str!("../migrations/0001_ledger.sql")),
    ("0002_readings.sql", include_str!("../migrations/0002_readings.sql")),
    ("0003_tiles.sql", include_str!("../migrations/0003_tiles.sql")),
    ("0004_credentials.sql", include_str!("../migrations/0004_credentials.sql")),
];

/// The version table, created with the first migration. It never changes: it is how we recognise our
/// schema and how far it has been migrated (one row per applied migration).
const SCHEMA_TABLE: &str = "CREATE TABLE qm_schema (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    application text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)";

/// Rows fetched per round trip when streaming projection rows.
const FETCH_ROWS: i32 = 2048;

/// Ledger tiles fetched per round trip when streaming entries: 4,096 entries, the verifier's chunk.
const FETCH_TILES: i32 = 16;

/// True when `db` names a PostgreSQL database rather than a file.
/// The baseline for `qm bench`: inserts `rows` rows of `row_bytes` bytes into a scratch table of the
/// same database (a text key with an index, as the ledger has), `batch` rows per transaction with one
/// array insert each — the way `commit` writes; returns rows per second. Round 0 starts the table
/// afresh, later rounds append to it (as the ledger grows), and the last (`last`) drops it.
pub fn raw_insert_rate(url: &str, rows: usize, row_bytes: usize, batch: usize, round: usize, last: bool) -> Result<f64> {
    let store = PostgresStore::connect(url)?;
    let mut client = store.client.into_inner();
    if round == 0 {
        client.batch_execute("DROP TABLE IF EXISTS qm_bench_raw").map_err(be)?;
    }
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS qm_bench_raw (seq BIGINT PRIMARY KEY, idem TEXT NOT NULL, bytes BYTEA NOT NULL);
             CREATE INDEX IF NOT EXISTS qm_bench_raw_idem ON qm_bench_raw (idem);",
        )
        .map_err(be)?;
    let mut seq: i64 = client.query_one("SELECT coalesce(max(seq) + 1, 0) FROM qm_bench_raw", &[]).map_err(be)?.get(0);
    let end = seq + rows as i64;
    let payload = vec![b'x'; row_bytes];
    let start = std::time::Instant::now();
    while seq < end {
        let n = batch.max(1);
        let seqs: Vec<i64> = (seq..seq + n as i64).collect();
        let idems: Vec<String> = seqs.iter().map(|s| format!("k-{s}")).collect();
        let bytes: Vec<&[u8]> = seqs.iter().map(|_| payload.as_slice()).collect();
        let mut tx = client.transaction().map_err(be)?;
        tx.execute(
            "INSERT INTO qm_bench_raw (seq, idem, bytes) SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bytea[])",
            &[&seqs, &idems, &bytes],
        )
        .map_err(be)?;
        tx.commit().map_err(be)?;
        seq += n as i64;
    }
    let rate = rows as f64 / start.elapsed().as_secs_f64().max(1e-9);
    if last {
        client.batch_execute("DROP TABLE qm_bench_raw").map_err(be)?;
    }
    Ok(rate)
}

/// The URL parsed, with our application name and a connect timeout unless it sets its own.
fn config(url: &str, shown: &str) -> Result<Config> {
    let mut cfg = Config::from_str(url).map_err(|e| StoreError::Backend(format!("{shown}: not a PostgreSQL URL: {e}")))?;
    if cfg.get_application_name().is_none() {
        cfg.application_name("quartermaster");
    }
    if cfg.get_connect_timeout().is_none() {
        cfg.connect_timeout(std::time::Duration::from_secs(10));
    }
    Ok(cfg)
}

/// Opens a session and makes sure its commits are durable.
fn session(cfg: &Config, shown: &str) -> Result<Client> {
    // A server that answers with an error (no such database, bad password) is not "unavailable".
    let unavailable = |e: postgres::Error| {
        let m = format!("connecting to {shown}: {}", describe(&e));
        if e.as_db_error().is_some() && !is_unavailable(&e) {
            StoreError::Backend(m)
        } else {
            StoreError::Unavailable(m)
        }
    };
    let mut client = cfg.connect(NoTls).map_err(unavailable)?;
    // Durability (see the module comment): `on` is PostgreSQL's default and what we need; only
    // `off` acknowledges commits before they are on disk, so a session that inherits it refuses it.
    let sync: String = client.query_one("SHOW synchronous_commit", &[]).map_err(be)?.get(0);
    if sync.eq_ignore_ascii_case("off") {
        client.batch_execute("SET synchronous_commit = on").map_err(be)?;
    }
    Ok(client)
}

pub fn is_url(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

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

fn be(e: postgres::Error) -> StoreError {
    if is_unavailable(&e) {
        StoreError::Unavailable(describe(&e))
    } else {
        StoreError::Backend(describe(&e))
    }
}

/// The connection is gone or the server is going away (SQLSTATE classes 08 connection exception and
/// 57P operator intervention: shutdown, crash, not accepting connections yet), as opposed to an error
/// in what we asked.
fn is_unavailable(e: &postgres::Error) -> bool {
    match e.as_db_error() {
        Some(db) => {
            let code = db.code().code();
            code.starts_with("08") || code.starts_with("57P")
        }
        None => e.is_closed() || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>()),
    }
}

/// An error with the server's message, detail and hint (the default display says only "db error").
pub fn describe(e: &postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => {
            let mut s = format!("{} ({})", db.message(), db.code().code());
            if let Some(d) = db.detail() {
                s.push_str(&format!("; {d}"));
            }
            if let Some(h) = db.hint() {
                s.push_str(&format!("; hint: {h}"));
            }
            s
        }
        None => e.to_string(),
    }
}

/// The URL as shown in messages: user, hosts, ports and database, never the password.
pub fn redacted(url: &str) -> String {
    let Ok(cfg) = Config::from_str(url) else { return "<unparsable PostgreSQL URL>".into() };
    let hosts: Vec<String> = cfg
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = match h {
                postgres::config::Host::Tcp(s) => s.clone(),
                #[cfg(unix)]
                postgres::config::Host::Unix(p) => p.display().to_string(),
            };
            match cfg.get_ports().get(i).or(cfg.get_ports().first()) {
                Some(p) => format!("{host}:{p}"),
                None => host,
            }
        })
        .collect();
    let user = cfg.get_user().map(|u| format!("{u}@")).unwrap_or_default();
    let db = cfg.get_dbname().unwrap_or_default();
    format!("postgresql://{user}{}/{db}", hosts.join(","))
}

/// What the connected schema holds.
enum Found {
    /// Nothing of ours and no tables at all.
    Empty,
    /// Our version table, at this version.
    Ours(i64),
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

    fn migrate(&mut self) -> Result<()> {
        let supported = MIGRATIONS.len() as i64;
        let shown = self.shown.clone();
        let client = self.client.get_mut();
        loop {
            // One transaction per migration, under a lock, re-reading the version inside it: two
            // processes opening an old schema at once migrate it once.
            let mut tx = client.transaction().map_err(be)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).map_err(be)?;
            let version = match inspect(&mut tx, &shown)? {
                Found::Ours(v) => v,
                Found::Empty => return Err(StoreError::Missing(shown)),
            };
            if version > supported {
                return Err(StoreError::TooNew { path: shown, found: version, supported });
            }
            let Some((name, sql)) = MIGRATIONS.get(version as usize) else { return Ok(()) };
            tx.batch_execute(sql).map_err(|e| StoreError::Backend(format!("migration {name}: {}", describe(&e))))?;
            tx.execute(
                "INSERT INTO qm_schema (version, name, application) VALUES ($1, $2, $3)",
                &[&((version + 1) as i32), name, &APPLICATION],
            )
            .map_err(be)?;
            tx.commit().map_err(be)?;
        }
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

impl PostgresStore {
    /// `commit`'s transaction; `cached` is the open tile as this store left it, and `open_after`
    /// receives it as this commit leaves it, when known.
    fn commit_with(&self, commit: &Commit, cached: Option<OpenTile>, open_after: &mut Option<OpenTile>) -> Result<()> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(be)?;
        // Each table is written with one statement over arrays (one round trip however large the batch).
        if !commit.entries.is_empty() {
            let seqs = commit.entries.iter().map(|e| seq_param(e.seq)).collect::<Result<Vec<i64>>>()?;
            let idems: Vec<&str> = commit.entries.iter().map(|e| e.idempotency_key.as_str()).collect();
            // Claiming the seqs first: ON CONFLICT DO NOTHING + RETURNING tells exactly which seq was
            // already taken (by another writer, or twice in this batch) without parsing an error; the
            // transaction is then dropped. Once claimed, only this transaction writes them to tiles.
            let inserted: HashSet<i64> = tx
                .query(
                    "INSERT INTO entry_keys (seq, idem) SELECT * FROM unnest($1::bigint[], $2::text[])
                     ON CONFLICT (seq) DO NOTHING RETURNING seq",
                    &[&seqs, &idems],
                )
                .map_err(be)?
                .iter()
                .map(|r| r.get(0))
                .collect();
            if inserted.len() != seqs.len() {
                let mut seen = HashSet::new();
                let seq = seqs.iter().find(|s| !inserted.contains(s) || !seen.insert(**s)).copied().unwrap_or_default();
                return Err(StoreError::Conflict { seq: seq as u64 });
            }
            *open_after = write_tiles(&mut tx, &commit.entries, cached)?;
        }
        if !commit.readings.is_empty() {
            let r = &commit.readings;
            let locations: Vec<&str> = r.iter().map(|x| x.location.as_str()).collect();
            let at: Vec<i64> = r.iter().map(|x| x.at_ms).collect();
            let t: Vec<Option<f64>> = r.iter().map(|x| x.temperature_c).collect();
            let h: Vec<Option<f64>> = r.iter().map(|x| x.humidity_pct).collect();
            let d = r.iter().map(|x| seq_param(x.digest_seq)).collect::<Result<Vec<i64>>>()?;
            // WITH ORDINALITY + ORDER BY keeps the identity column in the order the readings came.
            tx.execute(
                "INSERT INTO readings (location, at_ms, temperature_c, humidity_pct, digest_seq)
                 SELECT l, a, t, h, d FROM unnest($1::text[], $2::bigint[], $3::float8[], $4::float8[], $5::bigint[])
                      WITH ORDINALITY AS u(l, a, t, h, d, n) ORDER BY n",
                &[&locations, &at, &t, &h, &d],
            )
            .map_err(be)?;
        }
        if !commit.rows.is_empty() {
            // Every writer of rows locks `meta/next_seq` first (see `catch_up_rows`), so that two
            // of them never wait for each other's rows in opposite orders.
            tx.execute("SELECT 1 FROM projection WHERE kind = 'meta' AND key = 'next_seq' FOR UPDATE", &[]).map_err(be)?;
        }
        write_rows(&mut tx, &commit.rows)?;
        write_credentials(&mut tx, &commit.credentials)?;
        // Returns once the WAL is flushed (synchronous_commit = on, see the module comment).
        tx.commit().map_err(be)
    }

    /// Calls `f(tile, records)` for tiles `first..=last` in order, each decompressed in place (one
    /// buffer for all), `FETCH_TILES` per round trip; `f` returns false to stop.
    fn for_each_tile(&self, first: u64, last: u64, f: &mut dyn FnMut(u64, &[u8]) -> Result<bool>) -> Result<()> {
        // Full tiles, and the open tile's entries as one tile of the same format: one statement, so
        // one snapshot (a commit sealing a tile meanwhile is seen entirely or not at all).
        const SQL: &str = concat!(
            "SELECT tile, data FROM tiles WHERE tile >= $1 AND tile <= $2 UNION ALL SELECT seq / 256, ",
            open_tile!(),
            " FROM open_entries WHERE seq >= $3 AND seq < $4 GROUP BY seq / 256 ORDER BY 1"
        );
        let last = last.min(i64::MAX as u64 / tiles::TILE - 1);
        let (first_seq, end_seq) = (seq_param(first * tiles::TILE)?, seq_param((last + 1) * tiles::TILE)?);
        let (first, last) = (seq_param(first)?, seq_param(last)?);
        let mut buf = vec![];
        let mut one = |r: &Row| -> Result<bool> {
            let (tile, records) = tile_row(r, &mut buf)?;
            f(tile, records)
        };
        if last.saturating_sub(first) < FETCH_TILES as i64 {
            // A few tiles (the verifier's chunk is 16): one prepared statement in one round trip,
            // without the portal and transaction a long scan needs (four round trips).
            let rows = {
                let mut client = self.client()?;
                let cached = self.tiles_statement.borrow().clone();
                let statement = match cached {
                    Some(s) => s,
                    None => {
                        let s = client.prepare_typed(SQL, &[Type::INT8; 4]).map_err(be)?;
                        self.tiles_statement.replace(Some(s.clone()));
                        s
                    }
                };
                client.query(&statement, &[&first, &last, &first_seq, &end_seq]).map_err(be)?
            };
            for r in &rows {
                if !one(r)? {
                    break;
                }
            }
            return Ok(());
        }
        self.stream(SQL, &[&first, &last, &first_seq, &end_seq], FETCH_TILES, &mut one)
    }
}

/// Looks at the current schema: ours (at which version), empty, or someone else's (an error).
fn inspect(tx: &mut postgres::Transaction<'_>, shown: &str) -> Result<Found> {
    let schema: Option<String> = tx.query_one("SELECT current_schema()", &[]).map_err(be)?.get(0);
    let Some(schema) = schema else {
        return Err(StoreError::Backend(format!("{shown}: no schema to work in (search_path names no existing schema)")));
    };
    let columns: Vec<String> = tx
        .query("SELECT column_name::text FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'qm_schema'", &[&schema])
        .map_err(be)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if columns.is_empty() {
        let tables: Vec<String> = tx
            .query(
                "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1 LIMIT 5",
                &[&schema],
            )
            .map_err(be)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if tables.is_empty() {
            return Ok(Found::Empty);
        }
        return Err(StoreError::NotOurs {
            path: shown.to_string(),
            detail: format!(" (schema {schema} holds other tables: {}; give an empty database or schema)", tables.join(", ")),
        });
    }
    for needed in ["version", "application"] {
        if !columns.iter().any(|c| c == needed) {
            return Err(StoreError::NotOurs {
                path: shown.to_string(),
                detail: format!(" (its table {schema}.qm_schema has no column {needed})"),
            });
        }
    }
    let row = tx
        .query_one("SELECT max(version)::bigint, count(*) FILTER (WHERE application <> $1) FROM qm_schema", &[&APPLICATION])
        .map_err(|e| StoreError::NotOurs { path: shown.to_string(), detail: format!(": {}", describe(&e)) })?;
    let version: Option<i64> = row.get(0);
    let foreign: i64 = row.get(1);
    if foreign > 0 {
        return Err(StoreError::NotOurs {
            path: shown.to_string(),
            detail: format!(" ({schema}.qm_schema belongs to another application)"),
        });
    }
    Ok(Found::Ours(version.unwrap_or(0)))
}

fn seq_of(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Damaged(format!("negative sequence number {v}")))
}

fn seq_param(seq: u64) -> Result<i64> {
    i64::try_from(seq).map_err(|_| StoreError::Backend(format!("sequence number {seq} does not fit a bigint")))
}

fn reading_row(r: &Row) -> Result<StoredReading> {
    Ok(StoredReading {
        location: r.try_get(0).map_err(be)?,
        at_ms: r.try_get(1).map_err(be)?,
        temperature_c: r.try_get(2).map_err(be)?,
        humidity_pct: r.try_get(3).map_err(be)?,
        digest_seq: seq_of(r.try_get(4).map_err(be)?)?,
    })
}

/// The row changes of a commit as one set of upserts and one of deletes, with the last change of each
/// (kind, key) winning: the same end state as applying them one by one, in two statements.
fn collapse_rows(rows: &[qm_store::RowChange]) -> (Vec<&qm_store::RowChange>, Vec<&qm_store::RowChange>) {
    let mut last: HashMap<(&str, &str), usize> = HashMap::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        last.insert((r.kind.as_str(), r.key.as_str()), i);
    }
    let mut upserts = vec![];
    let mut deletes = vec![];
    for (i, r) in rows.iter().enumerate() {
        if last.get(&(r.kind.as_str(), r.key.as_str())) != Some(&i) {
            continue;
        }
        if r.value.is_some() {
            upserts.push(r);
        } else {
            deletes.push(r);
        }
    }
    (upserts, deletes)
}

/// The open tile's entries, in a query grouped by tile, as one tile's data of format `0x00`.
macro_rules! open_tile {
    () => {
        "decode('00', 'hex') || string_agg(qm_record(seq, idem, bytes, hashes), ''::bytea ORDER BY seq)"
    };
}
use open_tile;

/// A row of (tile, data) as its records, decompressed into `buf` when needed.
fn tile_row<'a>(r: &'a Row, buf: &'a mut Vec<u8>) -> Result<(u64, &'a [u8])> {
    let tile = seq_of(r.try_get(0).map_err(be)?)?;
    let data: &[u8] = r.try_get(1).map_err(|e| StoreError::Damaged(format!("ledger tile {tile}: {e}")))?;
    Ok((tile, tiles::unseal(tile, data, buf)?))
}

/// Writes a commit's entries, whose seqs the transaction has just claimed. Those that complete a
/// tile go into it, compressed, with the tile's earlier entries (from `cached` when it holds them,
/// else read from `open_entries`; removed there once the tile exists); the others become rows of
/// `open_entries` until their tile is complete. A tile is written once and never again. Returns
/// the open tile as this commit leaves it, when known.
fn write_tiles(tx: &mut postgres::Transaction, entries: &[StoredEntry], cached: Option<OpenTile>) -> Result<Option<OpenTile>> {
    // Only the hashes above each entry's tile are stored; the rest are derived when read.
    let hashes: Vec<Vec<u8>> =
        entries.iter().map(|e| qm_store::hashes_to_blob(e.hashes.get(tiles::DERIVED_LEVELS..).unwrap_or_default())).collect();
    let mut by_tile: BTreeMap<u64, Vec<tiles::Record>> = BTreeMap::new();
    for (e, hashes) in entries.iter().zip(&hashes) {
        let rec = tiles::Record { seq: e.seq, idem: &e.idempotency_key, bytes: &e.bytes, hashes };
        by_tile.entry(tiles::tile_of(e.seq)).or_default().push(rec);
    }
    let mut open: Vec<tiles::Record> = vec![];
    let (mut sealed, mut sealed_data): (Vec<i64>, Vec<Vec<u8>>) = (vec![], vec![]);
    // Sealed tiles some of whose entries came from earlier commits: those rows leave `open_entries`.
    let mut emptied: Vec<i64> = vec![];
    let mut open_after = None;
    let mut cached = cached;
    for (tile, mut recs) in by_tile {
        recs.sort_by_key(|r| r.seq);
        let (start, end) = (tile * tiles::TILE, (tile + 1) * tiles::TILE);
        let (first_new, last_new) = (recs.first().map_or(start, |r| r.seq), recs.last().map_or(start, |r| r.seq));
        // The tile's entries before this commit's (their records and how many), when known without asking.
        let known: Option<(Vec<u8>, u64)> = match cached.take() {
            Some(c) if c.tile == tile && c.next == first_new => Some((c.records, c.next - start)),
            _ if first_new == start => Some((vec![], 0)),
            _ => None,
        };
        let completes = last_new + 1 == end;
        let earlier = match known {
            Some(records) => Some(records),
            None if completes => {
                let rows = tx
                    .query(
                        "SELECT seq, idem, bytes, hashes FROM open_entries WHERE seq >= $1 AND seq < $2 ORDER BY seq",
                        &[&seq_param(start)?, &seq_param(end)?],
                    )
                    .map_err(be)?;
                let mut records = vec![];
                let n = rows.len() as u64;
                for r in &rows {
                    let rec = tiles::Record {
                        seq: seq_of(r.try_get(0).map_err(be)?)?,
                        idem: r.try_get(1).map_err(be)?,
                        bytes: r.try_get(2).map_err(be)?,
                        hashes: r.try_get(3).map_err(be)?,
                    };
                    rec.put(&mut records);
                }
                Some((records, n))
            }
            None => None,
        };
        // How many entries the tile holds with this commit's, when its earlier ones are known.
        let count = earlier.as_ref().map(|(_, n)| n + recs.len() as u64);
        let merged = earlier.map(|(e, _)| tiles::merge(tile, &e, &recs)).transpose()?;
        match merged {
            Some(records) if completes && count == Some(tiles::TILE) => {
                if records.len() > tiles::MAX_RECORDS_BYTES {
                    return Err(StoreError::Backend(format!(
                        "ledger tile {tile} would hold {} bytes of entries, more than the {} a tile may: these entries are too large",
                        records.len(),
                        tiles::MAX_RECORDS_BYTES
                    )));
                }
                sealed.push(seq_param(tile)?);
                sealed_data.push(tiles::seal(&records));
                if first_new > start {
                    emptied.push(seq_param(tile)?);
                }
                open_after = Some(OpenTile { tile: tile + 1, next: end, records: vec![] });
            }
            merged => {
                open.extend(&recs);
                // Known only when the tile holds every entry from its first on.
                open_after =
                    merged.filter(|_| count == Some(last_new + 1 - start)).map(|records| OpenTile { tile, next: last_new + 1, records });
            }
        }
    }
    if !open.is_empty() {
        let seqs = open.iter().map(|r| seq_param(r.seq)).collect::<Result<Vec<i64>>>()?;
        let idems: Vec<&str> = open.iter().map(|r| r.idem).collect();
        let bytes: Vec<&[u8]> = open.iter().map(|r| r.bytes).collect();
        let hashes: Vec<&[u8]> = open.iter().map(|r| r.hashes).collect();
        tx.execute(
            "INSERT INTO open_entries (seq, idem, bytes, hashes) SELECT * FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::bytea[])",
            &[&seqs, &idems, &bytes, &hashes],
        )
        .map_err(be)?;
    }
    if !sealed.is_empty() {
        // Every seq of these tiles was claimed (by this transaction or earlier ones): a tile that
        // exists already holds entries the key table never gave out.
        let created: HashSet<i64> = tx
            .query(
                "INSERT INTO tiles (tile, data) SELECT * FROM unnest($1::bigint[], $2::bytea[]) ON CONFLICT (tile) DO NOTHING RETURNING tile",
                &[&sealed, &sealed_data],
            )
            .map_err(be)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if let Some(t) = sealed.iter().find(|t| !created.contains(t)) {
            return Err(StoreError::Damaged(format!("ledger tile {t} exists though the key table had not given out all its entries")));
        }
    }
    if !emptied.is_empty() {
        tx.execute(
            "DELETE FROM open_entries o USING unnest($1::bigint[]) AS s(tile) WHERE o.seq >= s.tile * 256 AND o.seq < (s.tile + 1) * 256",
            &[&emptied],
        )
        .map_err(be)?;
    }
    Ok(open_after)
}

/// Applies row changes inside a transaction (the caller commits): one statement for the upserts,
/// one for the deletes, the last change of a row winning.
fn write_rows(tx: &mut postgres::Transaction, rows: &[qm_store::RowChange]) -> Result<()> {
    let (upserts, deletes) = collapse_rows(rows);
    if !upserts.is_empty() {
        let kinds: Vec<&str> = upserts.iter().map(|r| r.kind.as_str()).collect();
        let keys: Vec<&str> = upserts.iter().map(|r| r.key.as_str()).collect();
        let values: Vec<&str> = upserts.iter().map(|r| r.value.as_deref().unwrap_or_default()).collect();
        tx.execute(
            "INSERT INTO projection (kind, key, value) SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
             ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value",
            &[&kinds, &keys, &values],
        )
        .map_err(be)?;
    }
    if !deletes.is_empty() {
        let kinds: Vec<&str> = deletes.iter().map(|r| r.kind.as_str()).collect();
        let keys: Vec<&str> = deletes.iter().map(|r| r.key.as_str()).collect();
        tx.execute(
            "DELETE FROM projection p USING unnest($1::text[], $2::text[]) AS d(kind, key)
             WHERE p.kind = d.kind AND p.key = d.key",
            &[&kinds, &keys],
        )
        .map_err(be)?;
    }
    Ok(())
}

impl qm_store::EntrySource for PostgresStore {
    fn entry_count(&self) -> Result<u64> {
        let n: Option<i64> = self.client()?.query_one("SELECT max(seq) FROM entry_keys", &[]).map_err(be)?.get(0);
        match n {
            Some(n) => Ok(seq_of(n)? + 1),
            None => Ok(0),
        }
    }
    fn read_entries(&self, from: u64, limit: usize) -> Result<Vec<StoredEntry>> {
        let to = from.saturating_add(limit as u64);
        let mut read = vec![];
        if from < to {
            self.for_each_tile(tiles::tile_of(from), tiles::tile_of(to - 1), &mut |tile, records| {
                for (rec, hashes) in tiles::with_hashes(tile, records)? {
                    if rec.seq >= from && rec.seq < to {
                        read.push(StoredEntry { seq: rec.seq, idempotency_key: rec.idem.to_string(), bytes: rec.bytes.to_vec(), hashes });
                    }
                }
                Ok(true)
            })?;
        }
        Ok(read)
    }
    fn open_reader(&self) -> Result<Option<Box<dyn qm_store::EntrySource>>> {
        // A session on the schema this store has already checked and migrated: no second look at
        // it (that took 10 ms of the verifier's 150 at 360,000 entries, measured, per reader).
        Ok(Some(Box::new(PostgresStore::connect(&self.url)?)))
    }
    fn scan_range(&self, from: u64, to: u64, f: &mut dyn FnMut(u64, &str, &[u8], &[u8]) -> bool) -> Result<()> {
        if from >= to {
            return Ok(());
        }
        self.for_each_tile(tiles::tile_of(from), tiles::tile_of(to - 1), &mut |tile, records| {
            for rec in tiles::records(tile, records) {
                let rec = rec?;
                if rec.seq < from {
                    continue;
                }
                if rec.seq >= to || !f(rec.seq, rec.idem, rec.bytes, rec.hashes) {
                    return Ok(false);
                }
            }
            Ok(true)
        })
    }
    fn derived_hash_levels(&self) -> usize {
        tiles::DERIVED_LEVELS
    }
    fn read_entry_hashes(&self, seqs: &[u64]) -> Result<Vec<Vec<Hash>>> {
        let wanted: HashSet<u64> = seqs.iter().copied().collect();
        let tile_ids = wanted.iter().map(|s| seq_param(tiles::tile_of(*s))).collect::<Result<HashSet<i64>>>()?;
        let tile_ids: Vec<i64> = tile_ids.into_iter().collect();
        let rows = self
            .client()?
            .query(
                concat!(
                    "SELECT tile, data FROM tiles WHERE tile = ANY($1) UNION ALL SELECT seq / 256, ",
                    open_tile!(),
                    " FROM open_entries WHERE seq / 256 = ANY($1) GROUP BY seq / 256"
                ),
                &[&tile_ids],
            )
            .map_err(be)?;
        let mut found: HashMap<u64, Vec<Hash>> = HashMap::with_capacity(wanted.len());
        let mut buf = vec![];
        for r in &rows {
            let (tile, records) = tile_row(r, &mut buf)?;
            for (rec, hashes) in tiles::with_hashes(tile, records)? {
                if wanted.contains(&rec.seq) {
                    found.insert(rec.seq, hashes);
                }
            }
        }
        seqs.iter().map(|s| found.get(s).cloned().ok_or_else(|| StoreError::Damaged(format!("entry {s} is missing")))).collect()
    }
    fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>> {
        let rows = self.client()?.query("SELECT size, note FROM checkpoints ORDER BY size", &[]).map_err(be)?;
        rows.iter().map(|r| Ok(StoredCheckpoint { size: seq_of(r.try_get(0).map_err(be)?)?, note: r.try_get(1).map_err(be)? })).collect()
    }
    fn readings_of_digest(&self, digest_seq: u64) -> Result<Vec<StoredReading>> {
        let rows = self
            .client()?
            .query(
                "SELECT location, at_ms, temperature_c, humidity_pct, digest_seq FROM readings WHERE digest_seq = $1 ORDER BY id",
                &[&seq_param(digest_seq)?],
            )
            .map_err(be)?;
        rows.iter().map(reading_row).collect()
    }
    fn for_each_row(&self, f: &mut dyn FnMut(&str, &str, &str) -> std::result::Result<(), String>) -> Result<()> {
        self.stream("SELECT kind, key, value FROM projection ORDER BY kind, key", &[], FETCH_ROWS, &mut |r| {
            let kind: &str = r.try_get(0).map_err(be)?;
            let key: &str = r.try_get(1).map_err(be)?;
            let value: &str = r.try_get(2).map_err(be)?;
            f(kind, key, value).map_err(StoreError::Damaged)?;
            Ok(true)
        })
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
}

/// Sets or removes credentials inside the caller's transaction.
fn write_credentials(tx: &mut postgres::Transaction, changes: &[CredentialChange]) -> Result<()> {
    for c in changes {
        match &c.hash {
            Some(h) => tx.execute(
                "INSERT INTO credentials (subject, kind, hash, seq) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (subject, kind) DO UPDATE SET hash = excluded.hash, seq = excluded.seq",
                &[&c.subject, &c.kind, h, &seq_param(c.seq)?],
            ),
            None => tx.execute("DELETE FROM credentials WHERE subject = $1 AND kind = $2", &[&c.subject, &c.kind]),
        }
        .map_err(be)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use qm_store::RowChange;

    #[test]
    fn urls_are_shown_without_their_password() {
        let s = redacted("postgres://qm:s3cret@db.example:5433/ledger?sslmode=disable");
        assert_eq!(s, "postgresql://qm@db.example:5433/ledger");
        assert!(!redacted("postgresql://u:pw@h/d?password=pw2").contains("pw"));
        assert_eq!(redacted("not a url at all ="), "<unparsable PostgreSQL URL>");
    }

    #[test]
    fn urls_are_recognised() {
        assert!(is_url("postgres://h/d") && is_url("postgresql://h/d"));
        assert!(!is_url("/var/lib/qm/site.db") && !is_url("postgres.db"));
    }

    #[test]
    fn row_changes_collapse_to_the_last_change_of_each_key() {
        let c = |k: &str, v: Option<&str>| RowChange { kind: "serial".into(), key: k.into(), value: v.map(String::from) };
        let rows = vec![c("a", Some("1")), c("b", Some("1")), c("a", None), c("b", Some("2")), c("c", None), c("c", Some("3"))];
        let (up, del) = collapse_rows(&rows);
        let up: Vec<(&str, Option<&str>)> = up.iter().map(|r| (r.key.as_str(), r.value.as_deref())).collect();
        let del: Vec<&str> = del.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(up, vec![("b", Some("2")), ("c", Some("3"))]);
        assert_eq!(del, vec!["a"]);
    }

    #[test]
    fn migrations_are_numbered_in_order() {
        for (i, (name, sql)) in MIGRATIONS.iter().enumerate() {
            assert!(name.starts_with(&format!("{:04}_", i + 1)), "{name} is out of order");
            assert!(sql.starts_with(&format!("-- {:04}:", i + 1)), "{name} does not say what it is for");
        }
    }
}
