//! The edge every handler shares, API and pages alike: request bodies parsed into checked ids
//! (`id`, `opt`, `item`), the `Caller` extractor (who is calling, from where, with which
//! idempotency key), `perform` (one command through the site's act path: the witness eligible
//! before their PIN, the PIN through the gate, then deciding and a durable commit) and what a write answers.

use crate::auth::{check_pin, client_ip, now, record_denial, ApiUser, Principal};
use crate::error::ApiError;
use crate::scope::{self};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request as HttpRequest};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use qm_app::query::{self};
use qm_app::{AppError, Outcome, Request};
use qm_core::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A JSON body whose errors come back as our JSON errors.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;
    async fn from_request(req: HttpRequest, state: &S) -> Result<Self, ApiError> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "limit.body",
                    "refused: the request body is larger than the server's limit (rule limit.body)",
                )
            } else {
                ApiError::usage(e.body_text())
            }
        })?;
        serde_json::from_slice(&bytes).map(JsonBody).map_err(|e| ApiError::usage(format!("request body: {e}")))
    }
}

pub fn id<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<T, ApiError> {
    r.map_err(ApiError::usage)
}

pub fn opt<T, E: std::fmt::Display>(v: &Option<String>, f: impl Fn(&str) -> Result<T, E>) -> Result<Option<T>, ApiError> {
    v.as_deref().filter(|s| !s.trim().is_empty()).map(f).transpose().map_err(ApiError::usage)
}

/// An item as typed or scanned: `SERIAL` or `LOT:QUANTITY`.
pub fn item(s: &str) -> Result<ItemRef, ApiError> {
    id(ItemRef::parse(s))
}

/// Items as typed or scanned, blanks skipped, at most `ITEMS_MAX` (`qm_core::command::parse_items`).
pub fn items(v: &[String]) -> Result<Vec<ItemRef>, ApiError> {
    id(parse_items(v))
}

pub(crate) fn date(s: &str) -> Result<time::Date, ApiError> {
    id(parse_date(s))
}

pub(crate) fn account_of(from: &Option<String>, from_person: &Option<String>) -> Result<Account, ApiError> {
    match (from.as_deref().filter(|s| !s.is_empty()), from_person.as_deref().filter(|s| !s.is_empty())) {
        (Some(l), None) => Ok(Account::Location(id(LocationId::parse(l))?)),
        (None, Some(b)) => Ok(Account::Person(id(Badge::parse(b))?)),
        _ => Err(ApiError::usage("give `from` (a location) or `from_person` (a badge)")),
    }
}

pub fn split_items(list: Vec<ItemRef>) -> (Vec<Serial>, Vec<(LotNo, Quantity)>) {
    let mut serials = vec![];
    let mut lots = vec![];
    for i in list {
        match i {
            ItemRef::Serial(x) => serials.push(x),
            ItemRef::Lot { lot, quantity } => lots.push((lot, quantity)),
        }
    }
    (serials, lots)
}

/// A witness for two-person integrity: their own badge and PIN.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct WitnessIn {
    pub badge: String,
    pub pin: String,
}

impl std::fmt::Debug for WitnessIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WitnessIn").field("badge", &self.badge).field("pin", &"<redacted>").finish()
    }
}

/// What a write appended (or, when retried with the same Idempotency-Key, had appended).
#[derive(Serialize, ToSchema, Debug)]
pub struct WriteOut {
    pub first_seq: u64,
    pub last_seq: u64,
    pub replayed: bool,
    pub entries: Vec<EntryOut>,
}

#[derive(Serialize, ToSchema, Debug)]
pub struct EntryOut {
    pub seq: u64,
    pub at: String,
    pub actor: String,
    pub witness: Option<String>,
    /// The API token the actor acted through, if any.
    pub token: Option<String>,
    #[serde(rename = "type")]
    pub r#type: String,
    pub summary: String,
}

impl From<&Outcome> for WriteOut {
    fn from(o: &Outcome) -> WriteOut {
        WriteOut {
            first_seq: o.first_seq,
            last_seq: o.last_seq,
            replayed: o.replayed,
            entries: o
                .entries
                .iter()
                .map(|e| {
                    let l = query::log_line(e);
                    EntryOut {
                        seq: l.seq,
                        at: l.at,
                        actor: l.actor,
                        witness: l.witness,
                        token: l.token,
                        r#type: l.r#type,
                        summary: l.summary,
                    }
                })
                .collect(),
        }
    }
}

pub fn idempotency_key(headers: &HeaderMap) -> Option<String> {
    headers.get("idempotency-key").and_then(|v| v.to_str().ok()).map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

/// Runs a command for `p`: the token's scope, the witness's PIN, then the core's rules and a durable commit.
pub async fn perform(
    st: &AppState,
    p: &Principal,
    ip: &str,
    witness: Option<WitnessIn>,
    key: Option<String>,
    command: Command,
) -> Result<Outcome, ApiError> {
    let witness = match witness.filter(|w| !w.badge.trim().is_empty()) {
        Some(w) => {
            let b = id(Badge::parse(&w.badge))?;
            // Eligible (role, unit) before any PIN is compared (`qm_app::act`, step 1).
            let (actor, wb, c) = (p.badge.clone(), b.clone(), command.clone());
            if let Err(e) = st.site.peek(move |site| site.witness_eligible(&actor, &wb, &c)).await? {
                record_denial(st, b.as_str(), "witness", &e.to_string()).await;
                return Err(ApiError::forbidden(e.code(), e.to_string()));
            }
            check_pin(st, ip, &b, &w.pin, "witness").await?;
            Some(b)
        }
        None => None,
    };
    let key = key.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let req = Request::by(&p.actor(), witness.clone(), command, key, now());
    match st.site.execute(req).await {
        Ok(o) => Ok(o),
        Err(AppError::Rejected(Rejection::Refused { rule, message })) if rule == "two_person" && witness.is_some() => {
            if let Some(w) = &witness {
                record_denial(st, w.as_str(), "witness", &message).await;
            }
            Err(ApiError::forbidden(rule, format!("refused: {message} (rule {rule})")))
        }
        Err(e) => Err(e.into()),
    }
}

pub(crate) async fn done(
    st: &AppState,
    p: &Principal,
    ip: &str,
    key: Option<String>,
    w: Option<WitnessIn>,
    c: Command,
) -> Result<Json<WriteOut>, ApiError> {
    let o = perform(st, p, ip, w, key, c).await?;
    Ok(Json(WriteOut::from(&o)))
}

/// Who is calling the API, extracted once for every handler: the site, the principal (a token, or
/// a session whose CSRF token a write must carry), the client's address (for the limiter and the
/// ledger) and the `Idempotency-Key` a write may carry.
pub struct Caller {
    pub st: AppState,
    pub p: Principal,
    pub ip: String,
    pub key: Option<String>,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;
    async fn from_request_parts(parts: &mut Parts, st: &AppState) -> Result<Caller, ApiError> {
        let ApiUser(p) = ApiUser::from_request_parts(parts, st).await?;
        Ok(Caller { st: st.clone(), p, ip: client_ip(parts), key: idempotency_key(&parts.headers) })
    }
}

/// Reads the site under the principal's scope.
pub(crate) async fn read<T: Send + 'static>(
    st: &AppState,
    f: impl FnOnce(&qm_app::Site) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    st.site.call(move |site| f(site)).await?
}

/// A read outside the principal's subtree: recorded in the ledger, then 403.
/// What is for the armory's staff only (the log, the staff list): a member is refused, and the attempt recorded.
pub async fn staff_only(st: &AppState, p: &Principal, what: &str) -> Result<(), ApiError> {
    if crate::views::staff(p) {
        return Ok(());
    }
    let why = format!("badge {} (member) may not see {what}: it is for the armory's staff", p.badge);
    record_denial(st, p.badge.as_str(), "read", &why).await;
    Err(ApiError::forbidden("permission.role", format!("refused: {why} (rule permission.role)")))
}

pub async fn deny_read(st: &AppState, p: &Principal, what: &str) -> ApiError {
    let why = scope::outside(p, what);
    record_denial(st, p.badge.as_str(), "read", &why).await;
    ApiError::forbidden("permission.subtree", format!("refused: {why} (rule permission.subtree)"))
}

#[derive(Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct ReasonIn {
    pub reason: String,
}
