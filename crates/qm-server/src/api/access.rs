//! API: armory access control (docs/access.md) — the places and who is inside, a place's roster
//! (grant, revoke), its door log, the door terminal (badge and PIN), and the receiver of the site's
//! access-control system (Standard Webhooks, HMAC-SHA256).

use crate::auth::{now, Principal};
use crate::edge::*;
use crate::error::{ApiError, ErrorBody};
use crate::scope::sees;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use qm_app::access::{self as acc, TerminalAnswer};
use qm_core::access::{DoorKind, Hours, Proof};
use qm_core::event::CredentialKind;
use qm_core::*;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct GrantIn {
    pub badge: String,
    /// The role they enter in (one of theirs).
    pub role: String,
    /// `always`, or windows like `mon-fri 07:00-19:00; sat 08:00-12:00`, in the site's zone.
    pub hours: String,
    /// Dated exceptions: `2026-12-25=closed`, `2026-12-24=08:00-12:00`.
    #[serde(default)]
    pub except: Vec<String>,
    pub reason: String,
}

/// A badge and PIN at the door terminal; `exit` to record leaving.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TerminalIn {
    pub badge: String,
    pub pin: String,
    #[serde(default)]
    pub exit: bool,
}

impl std::fmt::Debug for TerminalIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TerminalIn").field("badge", &self.badge).field("pin", &"<redacted>").field("exit", &self.exit).finish()
    }
}

#[derive(Deserialize, IntoParams, Debug)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// A local day (YYYY-MM-DD); default today.
    pub date: Option<String>,
    pub limit: Option<usize>,
}

/// The body an access-control system posts (docs/access.md, "Webhook").
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct WebhookIn {
    pub events: Vec<acc::SystemEvent>,
}

/// The hours a grant's text and exceptions make.
pub fn hours_of(text: &str, except: &[String]) -> Result<Hours, ApiError> {
    Hours::parse_with_exceptions(text, except).map_err(ApiError::usage)
}

fn location_unit(s: &qm_core::State, l: &LocationId) -> Result<UnitId, ApiError> {
    s.locations.get(l).map(|x| x.unit.clone()).ok_or_else(|| ApiError::not_found("location", l.as_str()))
}

/// Reads a place's data only within the principal's subtree (else recorded and refused).
async fn place_read<T: Send + 'static>(
    st: &AppState,
    p: &Principal,
    location: &str,
    f: impl FnOnce(&qm_app::Site, &LocationId) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let l = id(LocationId::parse(location))?;
    let pp = p.clone();
    let (v, ok) = read(st, move |site| {
        let unit = location_unit(site.state(), &l)?;
        let ok = sees(site.state(), &pp, Some(&unit));
        Ok((if ok { Some(f(site, &l)?) } else { None }, ok))
    })
    .await?;
    match v {
        Some(v) if ok => Ok(v),
        _ => Err(deny_read(st, p, &format!("location {location}")).await),
    }
}

#[utoipa::path(get, path = "/api/access", tag = "access", responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn access_places(Caller { st, p, .. }: Caller) -> Result<Json<serde_json::Value>, ApiError> {
    read(&st, move |site| {
        let s = site.state();
        let mine = |u: &UnitId| sees(s, &p, Some(u));
        Ok(Json(crate::error::to_json(acc::places(site, Some(&mine), now()))?))
    })
    .await
}

#[utoipa::path(get, path = "/api/access/{location}/roster", tag = "access", params(("location" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn access_roster(Caller { st, p, .. }: Caller, Path(location): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    let rows = place_read(&st, &p, &location, |site, l| Ok(acc::roster(site, l)?)).await?;
    Ok(Json(crate::error::to_json(rows)?))
}

#[utoipa::path(post, path = "/api/access/{location}/roster", tag = "access", request_body = GrantIn,
    params(("location" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn access_grant(
    Caller { st, p, ip, key }: Caller,
    Path(location): Path<String>,
    JsonBody(b): JsonBody<GrantIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let c = Command::GrantAccess {
        location: id(LocationId::parse(&location))?,
        badge: id(Badge::parse(&b.badge))?,
        role: id(Role::parse(&b.role))?,
        hours: hours_of(&b.hours, &b.except)?,
        reason: b.reason,
    };
    done(&st, &p, &ip, key, None, c).await
}

#[utoipa::path(post, path = "/api/access/{location}/roster/{badge}/revoke", tag = "access", request_body = ReasonIn,
    params(("location" = String, Path), ("badge" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn access_revoke(
    Caller { st, p, ip, key }: Caller,
    Path((location, badge)): Path<(String, String)>,
    JsonBody(b): JsonBody<ReasonIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let c = Command::RevokeAccess { location: id(LocationId::parse(&location))?, badge: id(Badge::parse(&badge))?, reason: b.reason };
    done(&st, &p, &ip, key, None, c).await
}

/// The bounds of a local day in the site's zone (default: today).
pub fn day_bounds(site: &qm_app::Site, date: Option<&str>) -> Result<(time::OffsetDateTime, time::OffsetDateTime), ApiError> {
    let date = date.filter(|d| !d.trim().is_empty()).map(crate::edge::date).transpose()?;
    Ok(acc::day_bounds(site, date, now()))
}

#[utoipa::path(get, path = "/api/access/{location}/log", tag = "access", params(("location" = String, Path), LogQuery),
    responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn access_log(
    Caller { st, p, .. }: Caller,
    Path(location): Path<String>,
    Query(q): Query<LogQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = q.limit.unwrap_or(500).clamp(1, 5000);
    let rows = place_read(&st, &p, &location, move |site, l| {
        let (from, until) = day_bounds(site, q.date.as_deref())?;
        Ok(acc::log(site, Some(l), from, until, limit)?)
    })
    .await?;
    Ok(Json(crate::error::to_json(rows)?))
}

/// Door events from doors no place is mapped to (kept and shown, never dropped), of a day.
#[utoipa::path(get, path = "/api/access/unmapped", tag = "access", params(LogQuery),
    responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn access_unmapped(Caller { st, p, .. }: Caller, Query(q): Query<LogQuery>) -> Result<Json<serde_json::Value>, ApiError> {
    if !p.at_root {
        return Err(deny_read(&st, &p, "door events of doors mapped to no place").await);
    }
    let limit = q.limit.unwrap_or(500).clamp(1, 5000);
    let rows = read(&st, move |site| {
        let (from, until) = day_bounds(site, q.date.as_deref())?;
        Ok(acc::log(site, None, from, until, limit)?)
    })
    .await?;
    Ok(Json(crate::error::to_json(rows)?))
}

/// May `p` run the door terminal of a place in `unit` kept by `keeper`: a role that keeps rosters
/// there, or the place's keeper.
pub(crate) fn runs_terminal(s: &qm_core::State, p: &Principal, unit: &UnitId, keeper: Option<&Badge>) -> bool {
    let roster = p.roles.iter().any(|r| qm_core::permissions::role_allows(*r, qm_core::permissions::Op::Roster));
    sees(s, p, Some(unit)) && (roster || keeper == Some(&p.badge))
}

/// How the person at the terminal proved who they are: the PIN and the duress PIN compared off the
/// site's thread, counted as one attempt in the badge's lockout.
async fn terminal_proof(st: &AppState, badge: &Option<Badge>, pin: String) -> Result<Proof, ApiError> {
    let Some(b) = badge.clone() else { return Ok(Proof::Unknown) };
    let attempts = st
        .site
        .peek(move |site| {
            if !site.state().people.contains_key(&b) {
                return Ok(None);
            }
            Ok::<_, qm_app::AppError>(Some((site.attempt(&b, CredentialKind::Pin)?, site.attempt(&b, CredentialKind::Duress)?)))
        })
        .await?;
    let (real, duress) = match attempts {
        Ok(Some(a)) => a,
        Ok(None) => return Ok(Proof::Unknown),
        Err(qm_app::AppError::Locked { .. }) => return Ok(Proof::WrongPin),
        Err(e) => return Err(e.into()),
    };
    if real.hash().is_none() {
        return Ok(Proof::Unknown);
    }
    let gate = &st.auth.pin_gate;
    let proof = if gate.verify(pin.clone(), real.hash()).await.ok_or_else(crate::auth::busy)? {
        Proof::Pin
    } else if duress.hash().is_some() && gate.verify(pin, duress.hash()).await.ok_or_else(crate::auth::busy)? {
        Proof::Duress
    } else {
        Proof::WrongPin
    };
    let _ = real.settle(proof != Proof::WrongPin);
    Ok(proof)
}

/// One badge at a place's door terminal: granted or refused and why, entry or exit recorded.
pub async fn terminal(
    st: &AppState,
    p: &Principal,
    location: &str,
    badge_text: &str,
    pin: String,
    exit: bool,
) -> Result<TerminalAnswer, ApiError> {
    let l = id(LocationId::parse(location))?;
    let (pp, ll) = (p.clone(), l.clone());
    let allowed = read(st, move |site| {
        let s = site.state();
        let loc = s.locations.get(&ll).ok_or_else(|| ApiError::not_found("location", ll.as_str()))?;
        if !qm_core::access::controlled(loc.kind) {
            return Err(ApiError::usage(format!("{ll} is a {}; door terminals are for armories, depots and magazines", loc.kind)));
        }
        Ok(runs_terminal(s, &pp, &loc.unit, loc.keeper.as_ref()))
    })
    .await?;
    if !allowed {
        let why = format!(
            "badge {} may not run the door terminal of {location}: it takes the place's keeper or a role that keeps its roster",
            p.badge
        );
        crate::auth::record_denial(st, p.badge.as_str(), "door_terminal", &why).await;
        return Err(ApiError::forbidden("permission.role", format!("refused: {why} (rule permission.role)")));
    }
    let badge = Badge::parse(badge_text.trim()).ok();
    let proof = terminal_proof(st, &badge, pin).await?;
    let (at, typed) = (now(), badge_text.to_string());
    let out = st.site.call(move |site| site.record_terminal(&l, &typed, exit, proof, at)).await??;
    Ok(out)
}

#[utoipa::path(post, path = "/api/access/{location}/terminal", tag = "access", request_body = TerminalIn, params(("location" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn access_terminal(
    Caller { st, p, .. }: Caller,
    Path(location): Path<String>,
    JsonBody(b): JsonBody<TerminalIn>,
) -> Result<Json<TerminalAnswer>, ApiError> {
    Ok(Json(terminal(&st, &p, &location, &b.badge, b.pin, b.exit).await?))
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Result<&'a str, ApiError> {
    h.get(name).and_then(|v| v.to_str().ok()).ok_or_else(|| {
        ApiError::new(StatusCode::BAD_REQUEST, "webhook.headers", format!("the {name} header is missing (Standard Webhooks)"))
    })
}

/// Receives door events from an access-control system, signed in the Standard Webhooks format.
/// A bad signature or a stale timestamp (401), a replayed message (409) or a malformed body (400,
/// 422) is refused and nothing is recorded as a door event.
#[utoipa::path(post, path = "/api/access/webhooks/{system}", tag = "access", security(()),
    request_body(content = serde_json::Value, description = "{\"events\": [{\"id\", \"type\", \"at\", \"door\", \"card\", \"direction\", \"reason\"}]}"),
    params(("system" = String, Path), ("webhook-id" = String, Header), ("webhook-timestamp" = String, Header), ("webhook-signature" = String, Header)),
    responses((status = 200, body = WebhookOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn access_webhook(
    State(st): State<AppState>,
    crate::auth::ClientIp(ip): crate::auth::ClientIp,
    Path(system): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookOut>, ApiError> {
    let sys = st.access.systems.get(&system).ok_or_else(|| {
        ApiError::new(StatusCode::NOT_FOUND, "access.system", format!("not found: no access-control system {system:?} is configured"))
    })?;
    let (msg_id, ts, sig) =
        (header(&headers, "webhook-id")?, header(&headers, "webhook-timestamp")?, header(&headers, "webhook-signature")?);
    if let Err(why) = crate::notify::verify_webhook(&sys.key, msg_id, ts, sig, &body, now().unix_timestamp(), sys.tolerance_s) {
        let reason = format!("webhook of access system {system} from {ip} refused: {why}");
        crate::auth::record_denial(&st, &format!("webhook:{system}"), "access_webhook", &reason).await;
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "webhook.signature", format!("refused: {why}")));
    }
    let key = format!("webhook-{system}-{}", msg_id.chars().take(128).collect::<String>());
    let b: WebhookIn = serde_json::from_slice(&body)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "invalid", format!("invalid: the body is not {{\"events\": [...]}}: {e}")))?;
    let inputs = sys.inputs(&b.events).map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", format!("invalid: {e}")))?;
    let at = now();
    // The replay check and the staging in one turn of the site's thread; the site stages the next
    // message while this one is made durable.
    let (outcome, counts) = st
        .site
        .submit(move |site| {
            if !site.store().used_idempotency_keys(&[key.as_str()])?.is_empty() {
                return Ok((None, None));
            }
            let (ticket, counts) = site.submit_door_events(&system, inputs, Some(&key), at)?;
            Ok((ticket, Some(counts)))
        })
        .await?;
    // A message received before: durable, or still with the writer (the same key, replayed).
    let (Some(counts), false) = (counts, outcome.as_ref().is_some_and(|o| o.replayed)) else {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "webhook.replayed",
            format!("refused: message {msg_id} was received before; nothing recorded"),
        ));
    };
    let out = counts.outcome(outcome.as_ref());
    // What the system needs back: how many were new, and the refusals and alarms they raised.
    let refused = out.passages.iter().filter(|p| !matches!(p.kind, DoorKind::Entry | DoorKind::Exit) || !p.findings.is_empty()).count();
    Ok(Json(WebhookOut { recorded: out.recorded, duplicates: out.duplicates, flagged: refused, incidents: out.incidents, seq: out.seq }))
}

/// A webhook's answer: events new to the site, those sent before, those that are alarms or that the
/// rules found wrong (refusals, forced or held-open doors, tamper, duress, entries not allowed), the
/// incidents opened, and the ledger entry.
#[derive(serde::Serialize, ToSchema, Debug)]
pub struct WebhookOut {
    pub recorded: usize,
    pub duplicates: usize,
    pub flagged: usize,
    pub incidents: Vec<String>,
    pub seq: Option<u64>,
}

pub(crate) fn routes() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/api/access", get(access_places))
        .route("/api/access/unmapped", get(access_unmapped))
        .route("/api/access/webhooks/{system}", post(access_webhook))
        .route("/api/access/{location}/roster", get(access_roster).post(access_grant))
        .route("/api/access/{location}/roster/{badge}/revoke", post(access_revoke))
        .route("/api/access/{location}/log", get(access_log))
        .route("/api/access/{location}/terminal", post(access_terminal))
}
