//! The application service: authenticates people, runs commands through the core rules, appends the
//! resulting events to the ledger through a store (group commit), signs checkpoints and verifies.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod access;
pub mod across;
pub mod act;
pub mod backup;
mod checkpoints;
pub mod conditions;
pub mod counts;
pub mod credentials;
pub mod directives;
pub mod down;
pub mod import;
pub mod incidents;
pub mod magazines;
pub mod mirror;
pub mod notify;
mod open;
pub mod overview;
pub mod people;
mod pipeline;
pub mod query;
pub mod relay;
pub mod returns;
pub mod sites;
pub mod span;
mod staging;
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
    /// A row of an import that the rules refused (`code`: the rule, or `not_found`, `invalid`), named
    /// by its line: it exits and answers as that refusal would (3 refused, 4 not found, 2 invalid).
    #[error("{file}: {message}")]
    ImportRefused { file: String, message: String, code: &'static str },
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
            AppError::ImportRefused { code: "not_found", .. } => 4,
            AppError::ImportRefused { code: "invalid", .. } => 2,
            AppError::ImportRefused { .. } => 3,
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
            AppError::ImportRefused { code, .. } => code,
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

    /// What an idempotency key is bound to (`Envelope::request`): SHA-256, hex, over who asks,
    /// through which token, and the command's fingerprint (its salted hashes and the readings window
    /// left out, so a retry of the same request matches). Not the witness nor the time: a retry may
    /// be stamped later, and a witness confirms the same request.
    pub fn digest(&self) -> String {
        use sha2::{Digest, Sha256};
        let fingerprint = self.command.fingerprint();
        let body = serde_json::to_vec(&(&self.actor, &self.token, &fingerprint))
            .unwrap_or_else(|_| format!("{:?}", (&self.actor, &self.token, &fingerprint)).into_bytes());
        hex(&Sha256::digest(&body))
    }

    /// A replay is this request's own: the first entry recorded under the key was recorded for the
    /// same request (entries from before the binding existed: by the same person). Otherwise the key
    /// is refused (rule `idempotency.mismatch`), never answered with someone else's entries.
    pub(crate) fn owns(&self, recorded: &[Envelope]) -> Result<()> {
        let Some(first) = recorded.first() else { return Ok(()) };
        let same = match &first.request {
            Some(d) => *d == self.digest(),
            None => first.actor == self.actor,
        };
        if same {
            return Ok(());
        }
        Err(AppError::Rejected(Rejection::Refused {
            rule: "idempotency.mismatch",
            message: format!(
                "idempotency key {} was already used for another request or by another caller; a new request needs a new key",
                self.idempotency_key.trim()
            ),
        }))
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

impl Outcome {
    /// One outcome for the parts of one request, committed together (`Site::submit_parts`).
    pub(crate) fn spanning(mut parts: Vec<Outcome>) -> Outcome {
        if parts.len() == 1 {
            if let Some(o) = parts.pop() {
                return o;
            }
        }
        let first_seq = parts.first().map_or(0, |o| o.first_seq);
        let last_seq = parts.last().map_or(0, |o| o.last_seq);
        let replayed = parts.iter().all(|o| o.replayed);
        let entries: Vec<Envelope> = parts.iter().flat_map(|o| o.entries.iter().cloned()).collect();
        Outcome { first_seq, last_seq, replayed, entries: entries.into() }
    }
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

/// Reads and validates an organization's incident rules (docs/incidents.md); a wrong file is
/// refused with file, key and reason.
pub fn load_incident_rules(path: &Path) -> Result<qm_core::incidents::IncidentRules> {
    let text = std::fs::read_to_string(path).map_err(|e| AppError::Usage(format!("{}: {e}", path.display())))?;
    qm_core::incidents::IncidentRules::from_toml_str(&text, &path.display().to_string()).map_err(AppError::Usage)
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
    /// Door events of batches handed to the writer and not yet finished, by source and id: a
    /// message sent meanwhile that repeats one is told it is a duplicate (the store cannot tell yet).
    door_in_flight: HashMap<String, HashSet<String>>,
    /// Children's mirrored ledgers as last replayed by the auditor, by origin (`Site::add_entries`).
    mirror_replays: HashMap<String, verify::Replay>,
    /// Each mirrored child's books in brief, at the size its mirror last cosigned (`span`).
    child_summaries: HashMap<String, span::ChildSummary>,
    /// Receipts from other sites' transfers in each child's mirrored ledger (`across`).
    site_receipts: HashMap<String, Vec<across::SiteReceipt>>,
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
    /// The door events it stores: their source and ids (`Site::door_in_flight` until it is finished).
    door_ids: Option<(String, Vec<String>)>,
    /// The writer's answer, once `wait` has seen it.
    answered: Option<Durable>,
}

impl Ticket {
    /// Waits at most `timeout` for the writer's answer (durable, or failed); true once it is in, and
    /// `Site::finish` then does not wait. Lets a caller take new work while the batch is written.
    pub fn wait(&mut self, timeout: std::time::Duration) -> bool {
        if self.answered.is_some() {
            return true;
        }
        let Some(rx) = &self.done else { return true };
        match rx.recv_timeout(timeout) {
            Ok(d) => {
                self.answered = Some(d);
                true
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => false,
            // The writer is gone: `finish` reports it.
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => true,
        }
    }
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
        let decision = Decision { events, corrects: None, opens: vec![] };
        let mut commit = Commit::default();
        let staged = site.stage(
            staging::Origin { actor: g.admin, witness: None, token: None, key: "genesis", request: None, at: g.at },
            decision,
            &mut commit,
        )?;
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
            door_in_flight: HashMap::new(),
            mirror_replays: HashMap::new(),
            child_summaries: HashMap::new(),
            site_receipts: HashMap::new(),
            stale: None,
            unencoded: vec![],
            last_ticket: 0,
            signed_at: 0,
            lockout: Default::default(),
            denials: Default::default(),
        }
    }

    /// Replaces the safety tables the rules read (an organization's national tables) — unless the
    /// ledger adopted tables (here or above: docs/sites.md), which stay; then says so.
    pub fn set_safety_tables(&mut self, tables: qm_safety::SafetyTables) -> Option<String> {
        if let Some(why) = self.adopted_instead(qm_core::event::RulesKind::SafetyTables) {
            return Some(why);
        }
        self.state.safety = qm_core::state::Tables(std::sync::Arc::new(tables));
        None
    }

    /// Replaces the incident rules (an organization's own file, `load_incident_rules`) — unless the
    /// ledger adopted incident rules, which stay; then says so.
    pub fn set_incident_rules(&mut self, rules: qm_core::incidents::IncidentRules) -> Option<String> {
        if let Some(why) = self.adopted_instead(qm_core::event::RulesKind::IncidentRules) {
            return Some(why);
        }
        self.state.incident_rules = qm_core::state::IncidentRulesRef(std::sync::Arc::new(rules));
        None
    }

    /// Why a configured rules file of `kind` is not used: the ledger adopted one (entry, site).
    fn adopted_instead(&self, kind: qm_core::event::RulesKind) -> Option<String> {
        let a = self.state.adopted.get(&kind)?;
        let by = a.from.as_deref().map_or("this site".to_string(), |s| format!("site {s}"));
        Some(format!(
            "the {} adopted in the ledger (entry {}, by {by}, sha256 {}) are in force; the configured file is not used",
            kind.words(),
            a.entry,
            &sha256_hex(a.text.as_bytes())[..16]
        ))
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

    /// Re-reads the books from the store after a failed commit.
    pub fn reload(&mut self) -> Result<()> {
        // The writer's tree edge and held-back rows are those of the books being dropped: it commits
        // what is queued, stops, and later commits are made here until a writer is started again.
        self.writer = None;
        self.unencoded.clear();
        let (mut state, frontier) = load(self.store.as_ref())?;
        // The configuration the books are judged by is not in the store: it stays.
        state.safety = self.state.safety.clone();
        state.incident_rules = self.state.incident_rules.clone();
        state.postures = self.state.postures.clone();
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

    /// Re-reads the books when another process (the CLI, a second server on the same database)
    /// appended entries since they were read, so that what is shown and sent (pages, previews, the
    /// checkpoint a parent is asked to cosign) is the books as they are. Not while batches are in
    /// flight. True if the books were re-read.
    pub fn catch_up_external(&mut self) -> Result<bool> {
        if !self.unencoded.is_empty() || !self.in_flight.is_empty() || self.stale.is_some() {
            return Ok(false);
        }
        if self.store.entry_count()? <= self.frontier.size() {
            return Ok(false);
        }
        self.reload()?;
        Ok(true)
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
}

pub fn hex(h: &[u8]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of some bytes, in hex (what `sha256sum` prints).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex(&sha2::Sha256::digest(bytes))
}

/// A SHA-256 hash from its 64 hex digits.
pub fn parse_hash(text: &str) -> Result<qm_ledger::Hash> {
    let bad = || AppError::Usage(format!("not a SHA-256 hash in hex: {text:?}"));
    if text.len() != 64 || !text.is_ascii() {
        return Err(bad());
    }
    let mut h = [0u8; 32];
    for (i, b) in h.iter_mut().enumerate() {
        *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).map_err(|_| bad())?;
    }
    Ok(h)
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
