//! The application service: authenticates people, runs commands through the core rules, appends the
//! resulting events to the ledger through a store (group commit), signs checkpoints and verifies.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod act;
pub mod backup;
pub mod conditions;
pub mod credentials;
pub mod import;
pub mod magazines;
mod open;
pub mod overview;
pub mod query;
pub mod verify;
mod writer;
pub mod zone;

use qm_core::rules::{genesis, Decision};
use qm_core::{decide, Badge, Command, Correction, Ctx, Envelope, Event, Rejection, State, UnitId};
use qm_ledger::{leaf_hash, sign_checkpoint, Checkpoint, Frontier, LedgerError, SiteKey};
pub use qm_store::Opener;
use qm_store::{Commit, RowChange, Store, StoreError, StoreHashes, StoredCheckpoint, StoredEntry};
use std::collections::{HashMap, HashSet};

pub use act::{Act, Attempt, Presented};
pub use credentials::{check_secret, hash_secret};
use open::load;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;
use writer::{append_entries, write_in_order, writer_stopped, Durable, Job, Writer};
pub use writer::{CHECKPOINT_AT_MOST, ROWS_DEFERRED_AT_MOST, ROWS_IDLE};

/// How far behind the latest entry a clock may be and still record (at the latest entry's time):
/// stamps of two processes racing to the database may cross by this much.
pub const CLOCK_SKEW_TOLERATED: time::Duration = time::Duration::seconds(5);

/// A time as the ledger records it (RFC 3339, UTC), for messages about the ledger's clock.
fn qm_ledger_time(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| t.to_string())
}

/// Longest idempotency key accepted.
pub const IDEMPOTENCY_KEY_LEN_MAX: usize = 128;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    Rejected(#[from] Rejection),
    #[error("refused: badge {badge}: badge or PIN not accepted (rule auth.pin)")]
    BadCredentials { badge: String },
    /// Too many failed attempts: the badge is locked until `until` (see `credentials::Lockout`).
    #[error("refused: badge {badge} is locked after repeated failed PINs or passwords until {until} (UTC); ask an administrator if this was not you (rule auth.locked)")]
    Locked { badge: String, until: OffsetDateTime },
    #[error("{0}")]
    Store(#[from] StoreError),
    #[error("ledger: {0}")]
    Ledger(#[from] LedgerError),
    #[error("usage: {0}")]
    Usage(String),
    #[error("{file}: {message}")]
    Import { file: String, message: String },
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// Exit code for the CLI: 2 usage, 3 refused by a rule, 4 not found, 1 anything else.
    pub fn exit_code(&self) -> i32 {
        match self {
            AppError::Rejected(Rejection::Refused { .. }) | AppError::BadCredentials { .. } | AppError::Locked { .. } => 3,
            AppError::Rejected(Rejection::NotFound { .. }) => 4,
            AppError::Rejected(Rejection::Invalid(_)) | AppError::Usage(_) | AppError::Import { .. } => 2,
            AppError::Store(StoreError::Missing(_)) => 4,
            _ => 1,
        }
    }
    /// A stable code for machine-readable output.
    pub fn code(&self) -> &str {
        match self {
            AppError::Rejected(r) => r.code(),
            AppError::BadCredentials { .. } => "auth.pin",
            AppError::Locked { .. } => "auth.locked",
            AppError::Store(StoreError::Unavailable(_)) => "store.unavailable",
            AppError::Store(_) => "store",
            AppError::Ledger(_) => "ledger",
            AppError::Usage(_) => "usage",
            AppError::Import { .. } => "import",
            AppError::Internal(_) => "internal",
        }
    }
}

pub type Result<T> = std::result::Result<T, AppError>;

/// One command to run, with who asks and under which idempotency key.
#[derive(Clone, Debug)]
pub struct Request {
    /// The API token the actor acts through (deciding holds the command to its scope), if any.
    pub token: Option<String>,
    pub actor: Badge,
    pub witness: Option<Badge>,
    pub command: Command,
    pub idempotency_key: String,
    pub at: OffsetDateTime,
}

/// Who acts: a person, directly or through one of their API tokens (whose scope deciding enforces).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub badge: Badge,
    pub token: Option<String>,
}

impl From<&Badge> for Actor {
    fn from(badge: &Badge) -> Actor {
        Actor { badge: badge.clone(), token: None }
    }
}

impl Request {
    /// A request by a person acting directly (no token), without a witness.
    pub fn new(actor: Badge, command: Command, idempotency_key: String, at: OffsetDateTime) -> Request {
        Request { token: None, actor, witness: None, command, idempotency_key, at }
    }

    /// A request by `actor` (through its token, if any), stamped `at`.
    pub fn by(actor: &Actor, witness: Option<Badge>, command: Command, idempotency_key: String, at: OffsetDateTime) -> Request {
        Request { token: actor.token.clone(), actor: actor.badge.clone(), witness, command, idempotency_key, at }
    }
}

/// What a command appended (or, on a retry with the same idempotency key, had appended).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Outcome {
    pub first_seq: u64,
    pub last_seq: u64,
    /// True when this was a retry and nothing new was appended.
    pub replayed: bool,
    /// Shared, not copied, between the caller's result and the pipeline's in-flight table.
    pub entries: std::sync::Arc<[Envelope]>,
}

/// The canonical bytes of an entry (RFC 8785 JSON): exactly what is hashed and stored.
///
/// Written straight from the types by [`qm_ledger::canonical`]: object keys sorted by their UTF-16 code units,
/// no whitespace, strings escaped as RFC 8785 says. Entries with floating-point numbers (NEQ,
/// distances) or integers beyond 2^53 go through `serde_json_canonicalizer`, whose number format
/// follows ECMAScript. Property tests check both paths against that reference encoder.
pub fn encode(env: &Envelope) -> Result<Vec<u8>> {
    qm_ledger::canonical::to_vec(env).map_err(|e| AppError::Internal(format!("encoding entry {}: {e}", env.seq)))
}

/// The reference encoder, kept for tests that check `encode` against it.
pub fn encode_reference(env: &Envelope) -> Result<Vec<u8>> {
    qm_ledger::canonical::to_vec_reference(env).map_err(|e| AppError::Internal(format!("encoding entry {}: {e}", env.seq)))
}

/// Decodes stored bytes; the verifier hashes the bytes themselves, never a re-encoding.
pub fn decode(bytes: &[u8]) -> std::result::Result<Envelope, String> {
    serde_json::from_slice(bytes).map_err(|e| e.to_string())
}

/// Reads and validates an organization's safety tables; a wrong table is refused with file, key and reason.
pub fn load_safety_tables(path: &Path) -> Result<qm_safety::SafetyTables> {
    let text = std::fs::read_to_string(path).map_err(|e| AppError::Usage(format!("{}: {e}", path.display())))?;
    qm_safety::SafetyTables::from_toml_str(&text, &path.display().to_string()).map_err(|e| AppError::Usage(e.to_string()))
}

/// The default path of a site's signing key: next to its database.
pub fn default_key_path(db: &Path) -> PathBuf {
    let mut p = db.as_os_str().to_owned();
    p.push(".key");
    PathBuf::from(p)
}

/// One site's books: the store, the projections in memory, and the tree's right edge.
pub struct Site {
    store: Box<dyn Store>,
    /// Opens further connections to the same database (the writer thread's, a reconnection).
    stores: Opener,
    state: State,
    frontier: Frontier,
    key: Option<SiteKey>,
    db: String,
    /// While the writer thread runs, entries staged since the last hand-over, not yet encoded: the
    /// writer encodes and hashes them (the second core), and `frontier` follows its replies.
    unencoded: Vec<std::sync::Arc<[Envelope]>>,
    /// Number of the last ticket handed to the writer (tickets are numbered from 1).
    last_ticket: u64,
    /// Size of the last checkpoint this site signed after a pipelined commit.
    signed_at: u64,
    writer: Option<Writer>,
    /// Outcomes of batches handed to the writer and not yet finished, by idempotency key, so a
    /// retry arriving meanwhile gets the first result.
    in_flight: HashMap<String, Outcome>,
    /// Set when a commit failed and the books could not be re-read from the store (the database went
    /// away): the books in memory may hold changes that were never recorded, so nothing is read or
    /// written until `ensure_fresh` re-reads them.
    stale: Option<String>,
    /// Failed sign-ins per badge (shared with the server's sign-in threads).
    lockout: std::sync::Arc<credentials::Lockout>,
    /// Denied attempts gathered and not yet recorded (`act`: `deny`, `flush_denials`).
    denials: act::Denials,
}

/// A batch handed to the writer. Its results may be acknowledged only after `Site::finish` returns them.
pub struct Ticket {
    results: Vec<Result<Outcome>>,
    accepted: Vec<usize>,
    done: Option<std::sync::mpsc::Receiver<Durable>>,
    /// Its number among the tickets handed to the writer (0: nothing was handed over).
    id: u64,
}

/// A denied sign-in or request, to be recorded (`Site::record_denials`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    pub who: String,
    pub operation: String,
    pub reason: String,
    pub at: OffsetDateTime,
}

/// What `init` needs to start a site.
pub struct Genesis<'a> {
    pub site: &'a str,
    pub root_unit: &'a UnitId,
    pub root_unit_name: &'a str,
    pub admin: &'a Badge,
    pub admin_name: &'a str,
    pub admin_pin: &'a str,
    pub at: OffsetDateTime,
}

impl Site {
    /// Creates a database and the site's signing key; refuses to overwrite either.
    pub fn init(stores: Opener, db: &str, key_path: &Path, g: &Genesis) -> Result<Site> {
        if key_path.exists() {
            return Err(AppError::Store(StoreError::Exists(key_path.display().to_string())));
        }
        if g.site.trim().is_empty() || g.site.contains(char::is_whitespace) || g.site.contains('+') {
            return Err(AppError::Usage(format!(
                "site name {:?} must be one word without spaces or '+' (it names the signing key)",
                g.site
            )));
        }
        let key = SiteKey::generate(g.site);
        let pin_hash = hash_secret(g.admin_pin)?;
        let store = stores(db, true)?;
        key.write_new(key_path)?;
        let mut site = Site::assemble(stores, store, State::new(), Frontier::new(), Some(key), db);
        let verifier = site.key.as_ref().map(SiteKey::verifier_key).unwrap_or_default();
        let events = genesis(g.site, &verifier, g.root_unit, g.root_unit_name, g.admin, g.admin_name);
        let decision = Decision { events, corrects: None };
        let mut commit = Commit::default();
        let staged = site.stage(g.admin, None, "genesis", g.at, decision, &mut commit)?;
        commit.credentials.push(qm_store::CredentialChange {
            subject: credentials::badge_subject(g.admin),
            kind: "pin".into(),
            hash: Some(pin_hash),
            seq: staged.last_seq,
        });
        site.flush(commit)?;
        site.checkpoint()?;
        Ok(site)
    }

    /// Opens an existing site. The key is optional: without it the site can be read and verified, not signed.
    pub fn open(stores: Opener, db: &str, key_path: Option<&Path>) -> Result<Site> {
        let store = stores(db, false)?;
        let key = match key_path {
            Some(p) if p.exists() => Some(SiteKey::read(p)?),
            _ => None,
        };
        let (state, frontier) = load(store.as_ref())?;
        Ok(Site::assemble(stores, store, state, frontier, key, db))
    }

    /// A site over books and a tree edge read (or begun), with no writer thread and nothing in flight.
    fn assemble(stores: Opener, store: Box<dyn Store>, state: State, frontier: Frontier, key: Option<SiteKey>, db: &str) -> Site {
        Site {
            store,
            stores,
            state,
            frontier,
            key,
            db: db.to_string(),
            writer: None,
            in_flight: HashMap::new(),
            stale: None,
            unencoded: vec![],
            last_ticket: 0,
            signed_at: 0,
            lockout: Default::default(),
            denials: Default::default(),
        }
    }

    /// Replaces the safety tables the rules read (an organization's national tables).
    pub fn set_safety_tables(&mut self, tables: qm_safety::SafetyTables) {
        self.state.safety = qm_core::state::Tables(std::sync::Arc::new(tables));
    }

    pub fn state(&self) -> &State {
        &self.state
    }
    pub fn store(&self) -> &dyn Store {
        self.store.as_ref()
    }
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }
    pub fn root(&self) -> qm_ledger::Hash {
        self.frontier.root()
    }
    pub fn site_name(&self) -> String {
        self.state.site.as_ref().map(|s| s.site.clone()).unwrap_or_default()
    }
    pub fn has_key(&self) -> bool {
        self.key.is_some()
    }

    /// The context a request is decided in: who acts (and through which token), who witnesses,
    /// when, and the site's local time then.
    fn ctx(&self, req: &Request) -> Ctx {
        let zone = zone::SiteZone::of(&self.state).at(req.at);
        Ctx { token: req.token.clone(), actor: req.actor.clone(), witness: req.witness.clone(), at: req.at, zone }
    }

    /// Decides a request against the books exactly as `execute` would and records nothing: the
    /// entries it would append, unnumbered (the counter's preview). A refusal is only returned.
    pub fn preview(&self, req: &Request) -> std::result::Result<Vec<Envelope>, Rejection> {
        let decision = decide(&self.state, &self.ctx(req), &req.command)?;
        let site = self.site_name();
        Ok(decision
            .events
            .into_iter()
            .map(|event| Envelope {
                site: site.clone(),
                seq: 0,
                at: req.at,
                actor: req.actor.clone(),
                witness: req.witness.clone(),
                idempotency_key: String::new(),
                corrects: None,
                event,
            })
            .collect())
    }

    /// Runs one command and commits it durably.
    pub fn execute(&mut self, req: Request) -> Result<Outcome> {
        self.execute_batch(vec![req]).into_iter().next().unwrap_or_else(|| Err(AppError::Internal("empty batch result".into())))
    }

    /// Group commit: validates each request in order against the books as the earlier ones left
    /// them, then commits all accepted ones in one durable transaction. A refused request does
    /// not fail the others; if the commit itself fails, every accepted request fails with it.
    pub fn execute_batch(&mut self, reqs: Vec<Request>) -> Vec<Result<Outcome>> {
        // Another writer may append between our reading the books and our commit (on PostgreSQL,
        // e.g. the session of a server killed just after it sent COMMIT finishes it after a new
        // server has started). The commit then fails with `Conflict` and nothing of it is written;
        // the books are re-read and the batch is validated once more against them.
        let results = self.execute_batch_once(&reqs);
        let conflicted = results.iter().any(|r| matches!(r, Err(AppError::Store(StoreError::Conflict { .. }))));
        if conflicted && !self.is_stale() {
            return self.execute_batch_once(&reqs);
        }
        results
    }

    fn execute_batch_once(&mut self, reqs: &[Request]) -> Vec<Result<Outcome>> {
        let (mut results, accepted, commit) = self.stage_batch(reqs);
        let Some(commit) = commit else { return results };
        if let Err(err) = self.flush_or_reload(commit) {
            for i in accepted {
                results[i] = Err(same_error(&err));
            }
        }
        results
    }

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
        let mut ticket = Ticket { results, accepted, done: None, id: 0 };
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
    fn adopt(&mut self, edge: Option<Frontier>) {
        if let Some(edge) = edge.filter(|e| e.size() > self.frontier.size()) {
            self.frontier = edge;
        }
    }

    /// Hands a staged commit to the writer (with the entries it is to encode), or commits it here
    /// and now when there is no writer; the receiver gets the tree's edge once it is durable.
    fn hand_over(&mut self, commit: Commit) -> std::sync::mpsc::Receiver<Durable> {
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
        let outcome = match ticket.done.take() {
            None => Ok(None),
            Some(rx) => rx.recv().unwrap_or_else(|_| Err(writer_stopped())).map(Some),
        };
        for i in &ticket.accepted {
            if let Some(Ok(o)) = ticket.results.get(*i) {
                if let Some(e) = o.entries.first() {
                    self.in_flight.remove(&e.idempotency_key);
                }
            }
        }
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

    /// Validates and stages a batch: results, the indexes of accepted requests, and the commit to write.
    #[allow(clippy::type_complexity)]
    fn stage_batch(&mut self, reqs: &[Request]) -> (Vec<Result<Outcome>>, Vec<usize>, Option<Commit>) {
        if let Err(e) = self.ensure_fresh() {
            return (reqs.iter().map(|_| Err(same_error(&e))).collect(), vec![], None);
        }
        let mut results: Vec<Result<Outcome>> = Vec::with_capacity(reqs.len());
        let mut commit = Commit::default();
        let mut in_batch: HashMap<String, usize> = HashMap::new();
        let mut accepted = vec![];
        let keys: Vec<&str> = reqs.iter().map(|r| r.idempotency_key.trim()).collect();
        let used = match self.store.used_idempotency_keys(&keys) {
            Ok(u) => u,
            Err(e) => {
                if matches!(e, StoreError::Unavailable(_)) {
                    // The writer's connection went the same way: it finishes what it holds and
                    // stops; the next writer (or direct commit) connects afresh.
                    self.stop_writer();
                }
                let e = AppError::Store(match e {
                    StoreError::Unavailable(m) => StoreError::Unavailable(format!("reading idempotency keys: {m}")),
                    other => StoreError::Backend(format!("reading idempotency keys: {other}")),
                });
                return (reqs.iter().map(|_| Err(same_error(&e))).collect(), vec![], None);
            }
        };
        for req in reqs {
            let r = self.stage_request(req, &mut commit, &in_batch, &results, Some(&used));
            if let Ok(o) = &r {
                if !o.replayed {
                    accepted.push(results.len());
                    in_batch.insert(req.idempotency_key.clone(), results.len());
                }
            }
            if let Err(AppError::Internal(_)) = &r {
                return (self.abandon(results.len() + 1, r), vec![], None);
            }
            results.push(r);
        }
        let commit = self.has_staged(&commit).then_some(commit);
        (results, accepted, commit)
    }

    fn abandon(&mut self, n: usize, err: Result<Outcome>) -> Vec<Result<Outcome>> {
        let msg = match err {
            Err(e) => e.to_string(),
            Ok(_) => String::new(),
        };
        self.resync();
        (0..n).map(|_| Err(AppError::Internal(format!("batch abandoned, nothing was recorded: {msg}")))).collect()
    }

    /// `used`: the batch's keys already in the store, when known; otherwise the store is asked.
    fn stage_request(
        &mut self,
        req: &Request,
        commit: &mut Commit,
        in_batch: &HashMap<String, usize>,
        earlier: &[Result<Outcome>],
        used: Option<&HashSet<String>>,
    ) -> Result<Outcome> {
        let key = req.idempotency_key.trim();
        if key.is_empty() || key.len() > IDEMPOTENCY_KEY_LEN_MAX {
            return Err(AppError::Usage(format!("an idempotency key has 1 to {IDEMPOTENCY_KEY_LEN_MAX} characters")));
        }
        if let Some(i) = in_batch.get(key) {
            if let Some(Ok(o)) = earlier.get(*i) {
                return Ok(Outcome { replayed: true, ..o.clone() });
            }
        }
        if let Some(o) = self.in_flight.get(key) {
            return Ok(Outcome { replayed: true, ..o.clone() });
        }
        let maybe_used = used.is_none_or(|u| u.contains(key));
        if let Some((first, last)) = if maybe_used { self.store.find_idempotency_key(key)? } else { None } {
            let entries = self.read_envelopes(first, last)?;
            return Ok(Outcome { first_seq: first, last_seq: last, replayed: true, entries: entries.into() });
        }
        if let Command::SetTimeZone { zone } = &req.command {
            zone::SiteZone::get(zone)?;
        }
        let decision = match decide(&self.state, &self.ctx(req), &req.command) {
            Ok(d) => d,
            Err(r) if r.is_denial() => {
                // A denied attempt leaves a trace in the ledger (who, what, when); the command itself appends nothing.
                let reason = match &r {
                    Rejection::Refused { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                let denied = Decision {
                    events: vec![Event::AccessDenied { who: req.actor.to_string(), operation: req.command.name().to_string(), reason }],
                    corrects: None,
                };
                self.stage(&req.actor, None, &format!("denied-{key}"), req.at, denied, commit)?;
                return Err(r.into());
            }
            Err(e) => return Err(e.into()),
        };
        let outcome = self.stage(&req.actor, req.witness.as_ref(), key, req.at, decision, commit)?;
        commit.credentials.extend(credentials::changes(&req.command, &outcome.entries));
        Ok(outcome)
    }

    /// Turns a decision into entries, applies them to the books and adds them to the commit.
    fn stage(
        &mut self,
        actor: &Badge,
        witness: Option<&Badge>,
        key: &str,
        at: OffsetDateTime,
        decision: Decision,
        commit: &mut Commit,
    ) -> Result<Outcome> {
        let site = match (&self.state.site, decision.events.first()) {
            (Some(s), _) => s.site.clone(),
            (None, Some(Event::SiteInitialized { site, .. })) => site.clone(),
            (None, _) => return Err(AppError::Internal("site is not initialized".into())),
        };
        let at = self.stamp(at)?;
        let first = self.state.next_seq;
        let mut entries = vec![];
        let n = decision.events.len();
        for (i, event) in decision.events.into_iter().enumerate() {
            let env = Envelope {
                site: site.clone(),
                seq: self.state.next_seq,
                at,
                actor: actor.clone(),
                witness: witness.cloned(),
                idempotency_key: key.to_string(),
                // The correction reference sits on the last entry, the reverse movement itself.
                corrects: if i + 1 == n { decision.corrects.clone() } else { None }.map(|c: Correction| c),
                event,
            };
            self.state.apply(&env).map_err(|e| AppError::Internal(e.to_string()))?;
            entries.push(env);
        }
        let entries: std::sync::Arc<[Envelope]> = entries.into();
        // Encoded and hashed by the writer thread while it runs (see `write_in_order`), here otherwise.
        if self.writer.is_some() {
            self.unencoded.push(entries.clone());
        } else {
            append_entries(&mut self.frontier, std::slice::from_ref(&entries), &mut commit.entries).map_err(AppError::Internal)?;
        }
        Ok(Outcome { first_seq: first, last_seq: self.state.next_seq.saturating_sub(1), replayed: false, entries })
    }

    /// The time an entry asked to be stamped at `at` is recorded at. Time only moves forward in a
    /// ledger: a clock behind the latest entry by up to [`CLOCK_SKEW_TOLERATED`] (two processes
    /// whose stamps crossed on the way to the database) is recorded at the latest entry's time;
    /// further behind, the clock was stepped back and the entry is refused (rule `time.forward`).
    fn stamp(&self, at: OffsetDateTime) -> Result<OffsetDateTime> {
        match self.state.last_at {
            Some(last) if at < last - CLOCK_SKEW_TOLERATED => Err(AppError::Rejected(Rejection::Refused {
                rule: "time.forward",
                message: format!(
                    "the clock reads {} but the ledger's latest entry (seq {}) is stamped {}; time only moves forward in a \
                     ledger: set the clock right and try again",
                    qm_ledger_time(at),
                    self.state.next_seq.saturating_sub(1),
                    qm_ledger_time(last)
                ),
            })),
            Some(last) if at < last => Ok(last),
            _ => Ok(at),
        }
    }

    /// The projection rows changed since the last commit was staged, for the next one.
    fn touched_rows(&mut self) -> Vec<RowChange> {
        self.state.take_touched().into_iter().map(|(k, v)| RowChange { kind: k.kind.to_string(), key: k.key, value: v }).collect()
    }

    fn flush(&mut self, mut commit: Commit) -> Result<()> {
        commit.rows = self.touched_rows();
        // While the writer thread runs, every commit goes through it: it encodes the entries, may
        // hold rows back, and writes in order from one connection only.
        if self.writer.is_some() {
            let done = self.hand_over(commit);
            let edge = done.recv().unwrap_or_else(|_| Err(writer_stopped()))?;
            self.adopt(Some(edge));
            return Ok(());
        }
        self.store.commit(&commit)?;
        Ok(())
    }

    /// Whether a commit being staged holds entries (encoded, or handed to the writer to encode).
    pub(crate) fn has_staged(&self, commit: &Commit) -> bool {
        !commit.entries.is_empty() || !self.unencoded.is_empty()
    }

    /// Re-reads the books from the store after a failed commit.
    pub fn reload(&mut self) -> Result<()> {
        // The writer's tree edge and held-back rows are those of the books being dropped: it commits
        // what is queued, stops, and later commits are made here until a writer is started again.
        self.writer = None;
        self.unencoded.clear();
        let (state, frontier) = load(self.store.as_ref())?;
        self.state = state;
        self.frontier = frontier;
        self.stale = None;
        Ok(())
    }

    /// After a failed commit or an abandoned batch the books in memory may hold changes the store
    /// does not: re-read them, or, when the store cannot be read, refuse everything until it can.
    pub(crate) fn resync(&mut self) {
        if let Err(e) = self.reload() {
            self.stale = Some(e.to_string());
        }
    }

    /// Replaces the store's connection with a fresh one; keeps the old one when none can be opened
    /// (the reload through it then tells whether the database is back).
    fn reconnect(&mut self) {
        if let Ok(store) = (self.stores)(&self.db, false) {
            self.store = store;
        } else {
            self.stale.get_or_insert_with(|| "the database cannot be reached".into());
        }
    }

    /// Whether commits go through the pipelined writer thread (a failed commit stops it).
    pub fn writer_running(&self) -> bool {
        self.writer.is_some()
    }

    /// True while the books could not be re-read after a failed commit (see `ensure_fresh`).
    pub fn is_stale(&self) -> bool {
        self.stale.is_some()
    }

    /// Re-reads the books if a failed commit left them unsure; an error while the database is still away.
    pub fn ensure_fresh(&mut self) -> Result<()> {
        let Some(before) = self.stale.clone() else { return Ok(()) };
        self.reconnect();
        self.reload().map_err(|e| {
            AppError::Store(StoreError::Unavailable(format!("a commit failed ({before}) and the books cannot be re-read yet: {e}")))
        })
    }

    /// After a commit returned an error: re-reads the books and tells whether the commit landed after
    /// all (the connection can drop after the database committed). `None`: it landed, report success.
    /// Otherwise the error to report: nothing recorded, or — when the database is away and that cannot
    /// be told — that the outcome is unknown and the same idempotency key must be retried.
    fn commit_failed(&mut self, e: impl Into<AppError>, key: &str) -> Option<AppError> {
        let e: AppError = e.into();
        if matches!(e, AppError::Store(StoreError::Unavailable(_))) {
            // A connection failed: the books are re-read only through a fresh one (another
            // connection of this process may be half-broken too, or answer from before the failure).
            self.reconnect();
        }
        // A writer thread whose commit failed fails every batch queued after it (they were staged
        // on top of it); `resync` stops it and re-reads the books.
        self.resync();
        if self.stale.is_some() {
            return Some(AppError::Store(StoreError::Unavailable(format!(
                "the commit did not complete ({e}); whether it was recorded is not known until the database is back: \
                 retry with the same idempotency key"
            ))));
        }
        if !key.is_empty() && self.store.used_idempotency_keys(&[key]).is_ok_and(|u| u.contains(key)) {
            return None;
        }
        Some(match e {
            AppError::Store(StoreError::Unavailable(m)) => {
                AppError::Store(StoreError::Unavailable(format!("the commit did not complete, nothing was recorded: {m}")))
            }
            AppError::Store(StoreError::Conflict { seq }) => AppError::Store(StoreError::Conflict { seq }),
            other => AppError::Internal(format!("commit failed, nothing was recorded: {other}")),
        })
    }

    /// Stages one request into `commit` (for ingest paths that add their own data to the commit).
    pub(crate) fn stage_request_public(
        &mut self,
        req: &Request,
        commit: &mut Commit,
        in_batch: &HashMap<String, usize>,
    ) -> Result<Outcome> {
        self.stage_request(req, commit, in_batch, &[], None)
    }

    /// Commits; if the commit fails, reloads the books and reports the error — or success when
    /// the commit landed after all (see `commit_failed`). Every path that commits staged work uses it.
    pub(crate) fn flush_or_reload(&mut self, commit: Commit) -> Result<()> {
        let first_key = commit
            .entries
            .first()
            .map(|e| e.idempotency_key.clone())
            .or_else(|| self.unencoded.first().and_then(|seg| seg.first()).map(|e| e.idempotency_key.clone()))
            .unwrap_or_default();
        if let Err(e) = self.flush(commit) {
            return self.commit_failed(e, &first_key).map_or(Ok(()), Err);
        }
        Ok(())
    }

    /// Runs requests all or nothing (an import): the first refusal discards them all.
    pub fn execute_all_or_nothing(
        &mut self,
        reqs: Vec<Request>,
        progress: &mut dyn FnMut(u64),
    ) -> std::result::Result<Vec<Outcome>, (usize, AppError)> {
        self.ensure_fresh().map_err(|e| (0, e))?;
        let mut commit = Commit::default();
        let mut outcomes = vec![];
        let in_batch = HashMap::new();
        for (i, req) in reqs.iter().enumerate() {
            match self.stage_request(req, &mut commit, &in_batch, &[], None) {
                Ok(o) => outcomes.push(o),
                Err(e) => {
                    self.resync();
                    // Nothing of the batch is recorded, but a denial of authority still is.
                    if let AppError::Rejected(r @ Rejection::Refused { message, .. }) = &e {
                        if r.is_denial() {
                            let d = Denial {
                                who: req.actor.to_string(),
                                operation: req.command.name().into(),
                                reason: message.clone(),
                                at: req.at,
                            };
                            self.record_denial_now(d).map_err(|e| (i, e))?;
                        }
                    }
                    return Err((i, e));
                }
            }
            progress(1);
        }
        if self.has_staged(&commit) {
            self.flush_or_reload(commit).map_err(|e| (reqs.len(), e))?;
        }
        Ok(outcomes)
    }

    /// Signs a checkpoint of the whole (durable) tree with the site key and stores it.
    pub fn checkpoint(&mut self) -> Result<String> {
        self.checkpoint_at(self.frontier.size(), self.frontier.root())
    }

    /// Signs a checkpoint of the tree at a size already durable, without storing it.
    fn sign(&self, size: u64, root: qm_ledger::Hash) -> Result<StoredCheckpoint> {
        let Some(key) = &self.key else {
            return Err(AppError::Usage("the site's signing key is not available here; give --key".into()));
        };
        let note = sign_checkpoint(key, &Checkpoint { origin: self.site_name(), size, root })?;
        Ok(StoredCheckpoint { size, note })
    }

    /// Signs a checkpoint of the tree at a size already durable.
    fn checkpoint_at(&mut self, size: u64, root: qm_ledger::Hash) -> Result<String> {
        let Some(key) = &self.key else {
            return Err(AppError::Usage("the site's signing key is not available here; give --key".into()));
        };
        let cp = Checkpoint { origin: self.site_name(), size, root };
        let note = sign_checkpoint(key, &cp)?;
        self.store.add_checkpoint(&StoredCheckpoint { size: cp.size, note: note.clone() })?;
        Ok(note)
    }

    /// Checkpoints only if the key is here and the tree grew since the last one.
    pub fn checkpoint_if_grown(&mut self) -> Result<Option<String>> {
        if self.key.is_none() {
            return Ok(None);
        }
        let last = self.store.checkpoints()?.last().map(|c| c.size).unwrap_or(0);
        if last == self.frontier.size() {
            return Ok(None);
        }
        self.checkpoint().map(Some)
    }

    pub fn read_envelopes(&self, first: u64, last: u64) -> Result<Vec<Envelope>> {
        let n = (last + 1).saturating_sub(first) as usize;
        self.store
            .read_entries(first, n)?
            .into_iter()
            .map(|e| decode(&e.bytes).map_err(|m| AppError::Store(StoreError::Damaged(format!("entry {}: {m}", e.seq)))))
            .collect()
    }

    /// Calls `f` with every entry of the ledger, decoded, oldest first, streaming from the store
    /// without copies (for reports that must see all of history). Stops at the first error.
    pub fn for_each_envelope(&self, f: &mut dyn FnMut(Envelope) -> Result<()>) -> Result<()> {
        let mut failure = None;
        self.store.scan_entries(0, &mut |seq, _, bytes, _| {
            let r = decode(bytes).map_err(|m| AppError::Internal(format!("entry {seq}: {m}"))).and_then(&mut *f);
            match r {
                Ok(()) => true,
                Err(e) => {
                    failure = Some(e);
                    false
                }
            }
        })?;
        failure.map_or(Ok(()), Err)
    }

    pub fn envelope(&self, seq: u64) -> Result<Envelope> {
        self.read_envelopes(seq, seq)?
            .into_iter()
            .next()
            .ok_or_else(|| AppError::Rejected(Rejection::NotFound { what: "entry", id: seq.to_string() }))
    }

    /// An inclusion proof of entry `seq` against the latest checkpoint.
    pub fn prove(&self, seq: u64) -> Result<query::InclusionProof> {
        let cps = self.store.checkpoints()?;
        let Some(cp) = cps.last() else {
            return Err(AppError::Usage("no checkpoint yet; run `qm checkpoint`".into()));
        };
        if seq >= cp.size {
            return Err(AppError::Usage(format!(
                "entry {seq} is not covered by the latest checkpoint (size {}); run `qm checkpoint` first",
                cp.size
            )));
        }
        let entry = self
            .store
            .read_entries(seq, 1)?
            .into_iter()
            .next()
            .ok_or_else(|| AppError::Rejected(Rejection::NotFound { what: "entry", id: seq.to_string() }))?;
        let leaf = leaf_hash(&entry.bytes);
        let reader = StoreHashes(self.store.as_ref());
        let proof = qm_ledger::prove_inclusion(seq, cp.size, &reader)?;
        let verifier = self.state.site.as_ref().map(|s| s.verifier_key.clone()).unwrap_or_default();
        let opened = qm_ledger::open_checkpoint(&cp.note, &verifier)?;
        qm_ledger::check_inclusion(&proof, cp.size, &opened.root, seq, &leaf)?;
        Ok(query::InclusionProof {
            seq,
            tree_size: cp.size,
            leaf_hash: hex(&leaf),
            proof: proof.iter().map(|h| hex(h)).collect(),
            checkpoint: cp.note.clone(),
            entry: String::from_utf8_lossy(&entry.bytes).into_owned(),
        })
    }

    /// A consistency proof between two tree sizes, each of which must have a stored checkpoint.
    pub fn prove_consistency(&self, old: u64, new: u64) -> Result<query::ConsistencyProof> {
        let cps = self.store.checkpoints()?;
        let find = |n: u64| {
            cps.iter()
                .find(|c| c.size == n)
                .cloned()
                .ok_or_else(|| AppError::Usage(format!("no checkpoint of size {n}; `qm checkpoints` lists them")))
        };
        let (a, b) = (find(old)?, find(new)?);
        let verifier = self.state.site.as_ref().map(|s| s.verifier_key.clone()).unwrap_or_default();
        let (ca, cb) = (qm_ledger::open_checkpoint(&a.note, &verifier)?, qm_ledger::open_checkpoint(&b.note, &verifier)?);
        let reader = StoreHashes(self.store.as_ref());
        let proof = qm_ledger::prove_consistency(old, new, &reader)?;
        qm_ledger::check_consistency(&proof, old, &ca.root, new, &cb.root)?;
        Ok(query::ConsistencyProof {
            old_size: old,
            new_size: new,
            proof: proof.iter().map(|h| hex(h)).collect(),
            old_checkpoint: a.note,
            new_checkpoint: b.note,
        })
    }
}

pub fn hex(h: &[u8]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// The same error for every request of a failed batch (errors are not `Clone`): the kinds a caller
/// acts on keep their kind; anything else becomes an internal error with the same message.
fn same_error(e: &AppError) -> AppError {
    match e {
        AppError::Store(StoreError::Unavailable(m)) => AppError::Store(StoreError::Unavailable(m.clone())),
        AppError::Store(StoreError::Conflict { seq }) => AppError::Store(StoreError::Conflict { seq: *seq }),
        AppError::Internal(m) => AppError::Internal(m.clone()),
        other => AppError::Internal(other.to_string()),
    }
}

/// The libraries do not own a logger; a failed checkpoint after a durable commit is reported on stderr
/// and re-signed at the next batch.
fn tracing_free_log(message: &str) {
    eprintln!("qm: {message}");
}
