//! Who is asking: web sessions (cookie + CSRF token), API tokens (Bearer), and the sign-in limiter.
//!
//! Session ids and CSRF tokens are 256 random bits from the OS; sessions live in memory only and
//! end after `session_idle_s` without a request or `session_max_s` after sign-in. Secrets never
//! reach a log or a `Debug` output.

use crate::error::ApiError;
use crate::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use qm_app::act::denial_reason;
use qm_app::AppError;
use qm_core::event::CredentialKind;
use qm_core::{Badge, Role, UnitId};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

pub const SESSION_COOKIE: &str = "qm_session";
/// The sign-in form's CSRF token, as a cookie (no server state until the form is posted).
pub const SIGNIN_COOKIE: &str = "qm_signin";
pub const SIGNIN_COOKIE_CLEAR: &str = "qm_signin=; Path=/signin; HttpOnly; SameSite=Strict; Max-Age=0";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How often a session's password is compared with the stored one (a change made by the CLI beside
/// the server ends the session within this time; one made through the server, at once).
pub const PASSWORD_CHECK_EVERY: Duration = Duration::from_secs(15);
/// Most sessions held at once; the oldest are dropped beyond it.
pub const SESSIONS_MAX: usize = 100_000;

/// 256 random bits, hex.
pub fn random_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut b);
    qm_app::hex(&b)
}

/// Compares two secrets in time independent of where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A message for the next page a session opens, after a form's redirect: kept with the session on
/// the server, never carried in the URL (a link cannot make a page say what its sender wants).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Flash {
    Done(String),
    Refused(String),
}

/// A signed-in web session (the only kind: the sign-in form keeps no state on the server).
#[derive(Clone)]
pub struct Session {
    pub badge: Badge,
    flash: Option<Flash>,
    /// The password hash the person signed in with. When the stored one differs (a new password,
    /// set through this server or by `qm person password` beside it), the session ends: checked
    /// at most every `PASSWORD_CHECK_EVERY`.
    password: String,
    password_checked: Instant,
    pub csrf: String,
    created: Instant,
    last: Instant,
    /// A door terminal's session (docs/access.md): it reaches that place's terminal page only.
    pub door: Option<String>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("badge", &self.badge).field("csrf", &"<redacted>").finish()
    }
}

/// Sessions, the sign-in failure counts, and verified API tokens.
pub struct Auth {
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
    /// Token id → the exact token string already verified once with Argon2 (so a device does not pay
    /// for a hash on every request). Revocation is still checked on every request.
    tokens: Mutex<HashMap<String, String>>,
    idle: Duration,
    max: Duration,
    failures_max: u32,
    window: Duration,
    secure: bool,
    /// Argon2 comparisons for callers not yet signed in (passwords, API tokens): one at a time, so a
    /// flood of bad sign-ins takes at most one core from the counter.
    pub sign_in_gate: Argon2Gate,
    /// Argon2 comparisons of PINs given by signed-in callers (witnesses, the counter): their own gate,
    /// so a flood at the sign-in form does not hold the counter's PINs back.
    pub pin_gate: Argon2Gate,
}

/// Bounds the Argon2 work in flight: `permits` comparisons at once, at most `waiting_max` waiting;
/// beyond that a check is refused at once (429 `auth.busy`) instead of queueing without end.
pub struct Argon2Gate {
    permits: tokio::sync::Semaphore,
    waiting: std::sync::atomic::AtomicUsize,
    waiting_max: usize,
}

impl Argon2Gate {
    pub fn new(permits: usize, waiting_max: usize) -> Argon2Gate {
        Argon2Gate { permits: tokio::sync::Semaphore::new(permits), waiting: Default::default(), waiting_max }
    }

    /// Compares a secret with its hash on the blocking pool once a permit is free; `None` when
    /// too many checks are already waiting.
    pub async fn verify(&self, secret: String, hash: Option<String>) -> Option<bool> {
        use std::sync::atomic::Ordering;
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.waiting_max {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let permit = self.permits.acquire().await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        let Ok(_permit) = permit else { return Some(false) };
        Some(verify_off_thread(secret, hash).await)
    }
}

/// 429 `auth.busy`: too many sign-in checks are waiting.
pub fn busy() -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "auth.busy",
        "refused: too many sign-in checks are waiting; try again in a moment (rule auth.busy)",
    )
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Auth { <redacted> }")
    }
}

impl Auth {
    pub fn new(c: &crate::Config) -> Auth {
        Auth {
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            tokens: Mutex::new(HashMap::new()),
            idle: Duration::from_secs(c.session_idle_s),
            max: Duration::from_secs(c.session_max_s),
            failures_max: c.sign_in_failures_max,
            window: Duration::from_secs(c.sign_in_window_s),
            secure: c.secure_cookies,
            sign_in_gate: Argon2Gate::new(1, 32),
            pin_gate: Argon2Gate::new(1, 256),
        }
    }

    /// A new session for a person just signed in with the password whose stored hash is `password`;
    /// returns its id and CSRF token.
    pub fn create(&self, badge: Badge, password: String) -> (String, String) {
        self.create_for(badge, password, None)
    }

    /// A session that reaches the door terminal of `door` only, opened by `badge`: a tablet at the
    /// door signed in by the officer can do nothing else as the officer.
    pub fn create_door(&self, badge: Badge, password: String, door: &str) -> (String, String) {
        self.create_for(badge, password, Some(door.to_string()))
    }

    /// The password hash the session was signed in with.
    pub fn password_of(&self, id: &str) -> Option<String> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).get(id).map(|s| s.password.clone())
    }

    fn create_for(&self, badge: Badge, password: String, door: Option<String>) -> (String, String) {
        let id = random_token();
        let csrf = random_token();
        let now = Instant::now();
        let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        if s.len() >= SESSIONS_MAX {
            let (idle, max) = (self.idle, self.max);
            s.retain(|_, x| x.last.elapsed() < idle && x.created.elapsed() < max);
            if s.len() >= SESSIONS_MAX {
                if let Some(oldest) = s.iter().min_by_key(|(_, x)| x.last).map(|(k, _)| k.clone()) {
                    s.remove(&oldest);
                }
            }
        }
        s.insert(
            id.clone(),
            Session { badge, flash: None, password, password_checked: now, csrf: csrf.clone(), created: now, last: now, door },
        );
        (id, csrf)
    }

    /// The live session with this id (and marks it used), or None.
    pub fn get(&self, id: &str) -> Option<Session> {
        let mut s = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let live = s.get(id).is_some_and(|x| x.last.elapsed() < self.idle && x.created.elapsed() < self.max);
        if !live {
            s.remove(id);
            return None;
        }
        let x = s.get_mut(id)?;
        x.last = Instant::now();
        Some(x.clone())
    }

    /// Leaves a message for the session's next page.
    pub fn set_flash(&self, id: &str, flash: Flash) {
        if let Some(s) = self.sessions.lock().unwrap_or_else(|p| p.into_inner()).get_mut(id) {
            s.flash = Some(flash);
        }
    }

    /// The message left for this page, once.
    pub fn take_flash(&self, id: &str) -> Option<Flash> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).get_mut(id).and_then(|s| s.flash.take())
    }

    /// Ends every session of `badge` but `keep`, which now holds `password` (the new hash): a
    /// password change signs the other holders out at once.
    pub fn end_sessions_of(&self, badge: &Badge, keep: Option<(&str, &str)>) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        sessions.retain(|id, s| s.badge != *badge || keep.is_some_and(|(k, _)| k == id));
        if let Some((id, password)) = keep {
            if let Some(s) = sessions.get_mut(id) {
                s.password = password.to_string();
            }
        }
    }

    /// Whether the session's password should be compared with the stored one now (and marks it so).
    fn password_check_due(&self, id: &str) -> Option<String> {
        let mut sessions = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let s = sessions.get_mut(id)?;
        if s.password_checked.elapsed() < PASSWORD_CHECK_EVERY {
            return None;
        }
        s.password_checked = Instant::now();
        Some(s.password.clone())
    }

    pub fn remove(&self, id: &str) {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    }

    /// The Set-Cookie value for a session id.
    pub fn cookie(&self, id: &str) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{secure}", self.max.as_secs())
    }

    /// The Set-Cookie value for the sign-in form's CSRF token (an hour, the sign-in path only).
    pub fn signin_cookie(&self, token: &str) -> String {
        let secure = if self.secure { "; Secure" } else { "" };
        format!("{SIGNIN_COOKIE}={token}; Path=/signin; HttpOnly; SameSite=Strict; Max-Age=3600{secure}")
    }

    pub fn clear_cookie(&self) -> String {
        format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
    }

    /// True when `key` (a badge) has failed `failures_max` times lately.
    pub fn limited(&self, key: &str) -> bool {
        self.failed_at_least(key, self.failures_max as usize)
    }

    /// True when an address has failed `ADDRESS_FACTOR` times as often as one badge may: a sweep
    /// over several badges, not one person mistyping at a shared terminal (issue 18).
    pub fn address_limited(&self, key: &str) -> bool {
        self.failed_at_least(key, (self.failures_max * ADDRESS_FACTOR) as usize)
    }

    fn failed_at_least(&self, key: &str, max: usize) -> bool {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        match f.get_mut(key) {
            Some(q) => {
                while q.front().is_some_and(|t| t.elapsed() >= self.window) {
                    q.pop_front();
                }
                q.len() >= max
            }
            None => false,
        }
    }

    /// How many failures one badge may have in the window before it waits.
    pub fn failures_max(&self) -> u32 {
        self.failures_max
    }

    pub fn fail(&self, key: &str) {
        let mut f = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        if f.len() > SESSIONS_MAX {
            let window = self.window;
            f.retain(|_, q| q.back().is_some_and(|t| t.elapsed() < window));
        }
        let q = f.entry(key.to_string()).or_default();
        q.push_back(Instant::now());
        while q.len() > (self.failures_max * ADDRESS_FACTOR) as usize + 1 {
            q.pop_front();
        }
    }

    pub fn clear(&self, key: &str) {
        self.failures.lock().unwrap_or_else(|p| p.into_inner()).remove(key);
    }

    pub fn window_s(&self) -> u64 {
        self.window.as_secs()
    }
}

/// How a principal signed in.
#[derive(Clone)]
pub enum Via {
    Session {
        id: String,
        csrf: String,
    },
    /// An API token: limited to `unit`'s subtree and the listed operations; acts as its issuer.
    Token {
        id: String,
        operations: Vec<String>,
    },
}

impl std::fmt::Debug for Via {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Via::Session { .. } => f.write_str("Session(<redacted>)"),
            Via::Token { id, operations } => write!(f, "Token({id}, {operations:?})"),
        }
    }
}

/// The authenticated person behind a request, and the unit subtree it may see and change.
#[derive(Clone, Debug)]
pub struct Principal {
    pub badge: Badge,
    pub name: String,
    /// The person's unit, or the token's unit for a token.
    pub unit: UnitId,
    pub roles: Vec<Role>,
    pub via: Via,
    /// True when the scope unit is the site's root unit (HQ).
    pub at_root: bool,
}

impl Principal {
    /// The API token this principal acts through, if any.
    pub fn token(&self) -> Option<&str> {
        match &self.via {
            Via::Token { id, .. } => Some(id),
            Via::Session { .. } => None,
        }
    }

    /// Who acts, for the site: the person, and the token whose scope deciding enforces.
    pub fn actor(&self) -> qm_app::Actor {
        qm_app::Actor { badge: self.badge.clone(), token: self.token().map(str::to_string) }
    }

    /// The web session this principal came with, if any.
    pub fn session_id(&self) -> Option<&str> {
        match &self.via {
            Via::Session { id, .. } => Some(id),
            Via::Token { .. } => None,
        }
    }

    pub fn csrf(&self) -> &str {
        match &self.via {
            Via::Session { csrf, .. } => csrf,
            Via::Token { .. } => "",
        }
    }
}

/// A simulated clock's distance from the real one, in seconds (0: the real clock).
static CLOCK_OFFSET_S: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// The server's time: the clock, moved by `simulate_clock` for drills and tests.
pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::seconds(CLOCK_OFFSET_S.load(std::sync::atomic::Ordering::Relaxed))
}

/// Moves this process's server clock `offset` from the real one (entries are stamped with it, and
/// deadlines judged by it): for drills and tests on a throwaway site, never a live one — a ledger's
/// time only moves forward. Process-wide (docs/testing.md).
pub fn simulate_clock(offset: time::Duration) {
    CLOCK_OFFSET_S.store(offset.whole_seconds(), std::sync::atomic::Ordering::Relaxed);
}

pub fn client_ip(parts: &Parts) -> String {
    parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string()).unwrap_or_else(|| "unknown".into())
}

fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(';')).find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == name && !v.is_empty()).then(|| v.to_string())
    })
}

pub fn session_id(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, SESSION_COOKIE)
}

/// The sign-in form's CSRF token from its cookie, if it has the shape `random_token` makes.
pub fn signin_token(headers: &HeaderMap) -> Option<String> {
    cookie_value(headers, SIGNIN_COOKIE).filter(|t| t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Records a denied request in the ledger, with others gathered by the worker (`worker::Denials`):
/// no durable commit of its own. A failure to record is logged, never hidden from the operator.
pub async fn record_denial(st: &AppState, who: &str, operation: &str, reason: &str) {
    st.site.deny(qm_app::Denial { who: who.to_string(), operation: operation.to_string(), reason: reason.to_string(), at: now() }).await;
}

/// Resolves the principal from a Bearer token or a session cookie. `Ok(None)`: nobody signed in.
pub async fn resolve(st: &AppState, parts: &Parts) -> Result<Option<Principal>, ApiError> {
    if let Some(value) = parts.headers.get(header::AUTHORIZATION) {
        let presented = value.to_str().ok().and_then(|v| v.strip_prefix("Bearer ")).map(str::trim).unwrap_or("").to_string();
        return token(st, parts, presented).await.map(Some);
    }
    let Some(id) = session_id(&parts.headers) else { return Ok(None) };
    let Some(session) = st.auth.get(&id) else { return Ok(None) };
    if let Some(door) = &session.door {
        // A door terminal's session: its terminal page, and the ping that keeps it alive.
        let path = parts.uri.path();
        if path != format!("/door/{door}") && path != "/api/me" {
            return Ok(None);
        }
    }
    let badge = session.badge;
    if let Some(signed_in_with) = st.auth.password_check_due(&id) {
        let b = badge.clone();
        let now = st.site.peek(move |site| site.credential_hash(&b, CredentialKind::Password)).await??;
        if now.unwrap_or_default() != signed_in_with {
            st.auth.remove(&id);
            return Ok(None);
        }
    }
    let b = badge.clone();
    let found = st
        .site
        .peek(move |site| {
            let s = site.state();
            let root = s.site.as_ref().map(|x| x.root_unit.clone());
            // A person suspended since signing in is signed out at their next request.
            s.people
                .get(&b)
                .filter(|p| p.suspended.is_none())
                .map(|p| (p.name.clone(), p.unit.clone(), p.roles.clone(), root.as_ref() == Some(&p.unit)))
        })
        .await?;
    let Some((name, unit, roles, at_root)) = found else {
        st.auth.remove(&id);
        return Ok(None);
    };
    Ok(Some(Principal { badge, name, unit, roles, via: Via::Session { id, csrf: session.csrf }, at_root }))
}

async fn token(st: &AppState, parts: &Parts, presented: String) -> Result<Principal, ApiError> {
    let ip = client_ip(parts);
    // Its own count: a valid token is not refused because someone at the address mistyped a password.
    let ip_key = format!("token-ip:{ip}");
    if st.auth.limited(&ip_key) {
        return Err(too_many(&st.auth, TooMany::Address(st.auth.failures_max())));
    }
    let id = presented.split_once('.').map(|(i, _)| i.chars().take(64).collect::<String>()).unwrap_or_default();
    let cached = st.auth.tokens.lock().unwrap_or_else(|p| p.into_inner()).get(&id).is_some_and(|known| same_secret(known, &presented));
    // The secret is compared off the site's thread: Argon2 is slow on purpose.
    if !cached {
        let lookup = id.clone();
        let hash = st.site.peek(move |site| site.token_hash(&lookup)).await?.map_err(ApiError::from)?;
        let secret = presented.split_once('.').map(|(_, s)| s.to_string()).unwrap_or_default();
        match st.auth.sign_in_gate.verify(secret, hash).await {
            None => return Err(busy()),
            Some(false) => return token_refused(st, &ip_key, &id, &ip).await,
            Some(true) => {}
        }
    }
    let result = st
        .site
        .peek({
            let id = id.clone();
            move |site| -> Result<Principal, AppError> {
                let s = site.state();
                let t =
                    s.tokens.get(&id).filter(|t| !t.revoked).ok_or_else(|| AppError::BadCredentials { badge: format!("token {id}") })?;
                // The badge it acts as (issued for a person or a device, else its issuer); not while suspended.
                let standing = t.acts_as.is_none() || qm_core::decide::scope::issuer_stands(s, t, t.actor());
                let actor = s.people.get(t.actor()).filter(|p| p.suspended.is_none() && standing);
                let issuer = actor.ok_or_else(|| AppError::BadCredentials { badge: format!("token {id}") })?;
                let root = s.site.as_ref().map(|x| x.root_unit.clone());
                Ok(Principal {
                    badge: t.actor().clone(),
                    name: issuer.name.clone(),
                    unit: t.unit.clone(),
                    roles: issuer.roles.clone(),
                    at_root: root.as_ref() == Some(&t.unit),
                    via: Via::Token { id, operations: t.operations.clone() },
                })
            }
        })
        .await?;
    match result {
        Ok(p) => {
            if !cached {
                st.auth.tokens.lock().unwrap_or_else(|p| p.into_inner()).insert(id, presented);
            }
            Ok(p)
        }
        Err(_) => token_refused(st, &ip_key, &id, &ip).await,
    }
}

async fn token_refused(st: &AppState, ip_key: &str, id: &str, ip: &str) -> Result<Principal, ApiError> {
    st.auth.fail(ip_key);
    st.auth.tokens.lock().unwrap_or_else(|p| p.into_inner()).remove(id);
    record_denial(st, &format!("token {id}"), "api", &format!("API token not accepted, from {ip}")).await;
    Err(ApiError::unauthorized("refused: API token not accepted (rule auth.token)"))
}

/// Compares a secret with its Argon2id hash on the blocking pool, never on the site's thread.
pub async fn verify_off_thread(secret: String, hash: Option<String>) -> bool {
    tokio::task::spawn_blocking(move || qm_app::check_secret(&secret, hash.as_deref())).await.unwrap_or(false)
}

/// Begins the comparison on the site's thread (the badge's lockout, its hash: fast), compares off
/// it through the gate, and counts the result in the lockout (`qm_app::act`, step 2).
/// Returns the stored hash the secret matched (a session remembers its password's, see `Session`).
async fn check_credential(st: &AppState, badge: &Badge, kind: CredentialKind, secret: &str) -> Result<Option<String>, ApiError> {
    let b = badge.clone();
    let attempt = st.site.peek(move |site| site.attempt(&b, kind)).await??;
    let gate = match kind {
        CredentialKind::Password => &st.auth.sign_in_gate,
        CredentialKind::Pin | CredentialKind::Duress => &st.auth.pin_gate,
    };
    let matched = gate.verify(secret.to_string(), attempt.hash()).await.ok_or_else(busy)?;
    attempt.settle(matched)?;
    Ok(attempt.hash())
}

/// How many times one badge's failures an address may fail before every badge from it waits.
pub const ADDRESS_FACTOR: u32 = 4;

/// Who waits after too many failures: one badge, or everyone at one address.
pub enum TooMany<'a> {
    Badge(&'a str),
    /// With how many failures the address waits.
    Address(u32),
}

/// 429 naming the cause: the badge that failed too often (others at the same terminal go on), or
/// the address from which many badges failed.
pub fn too_many(auth: &Auth, who: TooMany) -> ApiError {
    let (n, wait) = (auth.failures_max(), auth.window_s().div_ceil(60));
    let what = match who {
        TooMany::Badge(b) => format!(
            "{n} failed attempts for badge {} within {wait} minutes; that badge waits {wait} minutes (others may sign in)",
            b.chars().take(64).collect::<String>()
        ),
        TooMany::Address(m) => format!("{m} failed attempts from this address within {wait} minutes; wait {wait} minutes"),
    };
    ApiError::new(StatusCode::TOO_MANY_REQUESTS, "auth.rate_limited", format!("refused: {what} (rule auth.rate_limited)"))
}

/// Checks a badge and password (web sign-in), with the limiter, recording failures in the ledger.
/// Returns the new session's id and CSRF token.
pub async fn sign_in(st: &AppState, ip: &str, badge: &str, password: &str) -> Result<(String, String), ApiError> {
    let badge_key = format!("badge:{}", badge.trim());
    let ip_key = format!("password-ip:{ip}");
    // Rate-limited attempts write nothing: the failures that led here are recorded already.
    if st.auth.limited(&badge_key) {
        return Err(too_many(&st.auth, TooMany::Badge(badge.trim())));
    }
    if st.auth.address_limited(&ip_key) {
        return Err(too_many(&st.auth, TooMany::Address(st.auth.failures_max() * ADDRESS_FACTOR)));
    }
    let parsed = Badge::parse(badge);
    let mut hash = None;
    let ok = match &parsed {
        Ok(b) => match check_credential(st, b, CredentialKind::Password, password).await {
            Ok(h) => {
                hash = h;
                true
            }
            Err(e) if e.code == "auth.locked" => {
                record_denial(st, badge.trim(), "sign_in", &denial_reason(true, CredentialKind::Password, ip)).await;
                return Err(e);
            }
            Err(e) if e.code == "auth.pin" => false,
            Err(e) if e.code == "person.suspended" => {
                record_denial(st, badge.trim(), "sign_in", &format!("{}, from {ip}", e.message)).await;
                return Err(e);
            }
            Err(e) => return Err(e),
        },
        Err(_) => false,
    };
    match (ok, parsed) {
        (true, Ok(b)) => {
            st.auth.clear(&badge_key);
            Ok(st.auth.create(b, hash.unwrap_or_default()))
        }
        _ => {
            st.auth.fail(&badge_key);
            st.auth.fail(&ip_key);
            record_denial(st, badge.trim(), "sign_in", &denial_reason(false, CredentialKind::Password, ip)).await;
            Err(ApiError::unauthorized(format!(
                "refused: badge {}: badge or password not accepted (rule auth.password)",
                badge.trim().chars().take(64).collect::<String>()
            )))
        }
    }
}

/// Checks a witness's (or counter person's) badge and PIN, with the limiter; failures are recorded.
pub async fn check_pin(st: &AppState, ip: &str, badge: &Badge, pin: &str, operation: &str) -> Result<(), ApiError> {
    let (key, ip_key) = (format!("pin:{badge}"), format!("pin-ip:{ip}"));
    if st.auth.limited(&key) {
        return Err(too_many(&st.auth, TooMany::Badge(badge.as_str())));
    }
    if st.auth.address_limited(&ip_key) {
        return Err(too_many(&st.auth, TooMany::Address(st.auth.failures_max() * ADDRESS_FACTOR)));
    }
    match check_credential(st, badge, CredentialKind::Pin, pin).await {
        Ok(_) => {
            st.auth.clear(&key);
            Ok(())
        }
        Err(e) if e.code == "auth.busy" => Err(e),
        Err(e) => {
            st.auth.fail(&key);
            st.auth.fail(&ip_key);
            record_denial(st, badge.as_str(), operation, &denial_reason(e.code == "auth.locked", CredentialKind::Pin, ip)).await;
            Err(e)
        }
    }
}

/// An API caller: a token, or a signed-in session (which must send its CSRF token on writes).
pub struct ApiUser(pub Principal);

impl FromRequestParts<AppState> for ApiUser {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<ApiUser, ApiError> {
        let p = resolve(st, parts).await?.ok_or_else(|| {
            ApiError::unauthorized("sign in first: send `Authorization: Bearer ID.SECRET`, or a session cookie from POST /api/session")
        })?;
        if let Via::Session { csrf, .. } = &p.via {
            if !matches!(parts.method, Method::GET | Method::HEAD) {
                let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or("");
                if !same_secret(sent, csrf) {
                    return Err(ApiError::forbidden("csrf", "refused: missing or wrong X-CSRF-Token header for this session (rule csrf)"));
                }
            }
        }
        Ok(ApiUser(p))
    }
}

/// The client's address, for the limiter and the ledger.
pub struct ClientIp(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<ClientIp, Self::Rejection> {
        Ok(ClientIp(client_ip(parts)))
    }
}
