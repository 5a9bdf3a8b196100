//! The JSON API under `/api`: one endpoint per CLI operation and query, documented by an OpenAPI 3
//! document generated from these handlers (`/api/openapi.json`).

use crate::auth::{self, check_pin, now, record_denial, ApiUser, ClientIp, Principal, Via};
use crate::error::{ApiError, ErrorBody};
use crate::scope::{self, sees};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Query, Request as HttpRequest, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use qm_app::query::{self, StockFilter};
use qm_app::{AppError, Outcome, Request};
use qm_core::event::CredentialKind;
use qm_core::policy::PolicyRules;
use qm_core::*;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::{OpenApi, ToSchema};

/// Most log lines one request returns.
pub const LOG_LIMIT_MAX: usize = 10_000;

// ---- plumbing ---------------------------------------------------------------------------

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

pub fn items(v: &[String]) -> Result<Vec<ItemRef>, ApiError> {
    if v.len() > 10_000 {
        return Err(ApiError::usage(format!("{} items in one request; the limit is 10000", v.len())));
    }
    v.iter().filter(|s| !s.trim().is_empty()).map(|s| item(s)).collect()
}

/// A witness for two-person integrity: their own badge and PIN.
#[derive(Deserialize, ToSchema, Default)]
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
                    EntryOut { seq: l.seq, at: l.at, actor: l.actor, witness: l.witness, r#type: l.r#type, summary: l.summary }
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

async fn done(
    st: &AppState,
    p: &Principal,
    ip: &str,
    headers: &HeaderMap,
    w: Option<WitnessIn>,
    c: Command,
) -> Result<Json<WriteOut>, ApiError> {
    let o = perform(st, p, ip, w, idempotency_key(headers), c).await?;
    Ok(Json(WriteOut::from(&o)))
}

/// Reads the site under the principal's scope.
async fn read<T: Send + 'static>(
    st: &AppState,
    f: impl FnOnce(&qm_app::Site) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    st.site.call(move |site| f(site)).await?
}

/// A read outside the principal's subtree: recorded in the ledger, then 403.
pub async fn deny_read(st: &AppState, p: &Principal, what: &str) -> ApiError {
    let why = scope::outside(p, what);
    record_denial(st, p.badge.as_str(), "read", &why).await;
    ApiError::forbidden("permission.subtree", format!("refused: {why} (rule permission.subtree)"))
}

// ---- bodies -----------------------------------------------------------------------------

#[derive(Deserialize, ToSchema, Debug)]
pub struct UnitIn {
    pub unit: String,
    pub name: String,
    pub parent: String,
}

#[derive(Deserialize, ToSchema, Debug)]
pub struct ExposedSiteIn {
    pub kind: String,
    pub distance_m: f64,
}

#[derive(Deserialize, ToSchema, Debug)]
pub struct MagazineIn {
    pub neq_limit_kg: f64,
    #[serde(default)]
    pub hazard_divisions: Vec<String>,
    #[serde(default)]
    pub compatibility_groups: Vec<String>,
    #[serde(default)]
    pub exposed_sites: Vec<ExposedSiteIn>,
}

#[derive(Deserialize, ToSchema, Debug)]
pub struct LocationIn {
    pub location: String,
    pub name: String,
    pub unit: String,
    /// armory, depot, magazine, room, rack, locker, safe, bin
    pub kind: String,
    pub parent: Option<String>,
    pub keeper: Option<String>,
    pub magazine: Option<MagazineIn>,
}

#[derive(Deserialize, ToSchema, Debug)]
pub struct ItemTypeIn {
    pub item_type: String,
    pub name: String,
    pub kind: String,
    pub tracking: String,
    pub unit_of_measure: String,
    #[serde(default)]
    pub neq_kg_per_unit: f64,
    pub un_code: Option<String>,
    pub qualification: Option<String>,
}

#[derive(Deserialize, ToSchema)]
pub struct PersonIn {
    pub badge: String,
    pub name: String,
    pub unit: String,
    pub roles: Vec<String>,
    pub pin: String,
}

#[derive(Deserialize, ToSchema, Debug)]
pub struct QualificationIn {
    pub qualification: String,
    /// YYYY-MM-DD
    pub expires: String,
}

#[derive(Deserialize, ToSchema)]
pub struct SecretIn {
    /// A PIN (4 to 128 characters) or a password (at least 10 characters).
    pub secret: String,
}

#[derive(Deserialize, ToSchema, Debug)]
pub struct TokenIn {
    pub id: String,
    pub label: String,
    pub unit: String,
    /// Operation names from docs/permissions.md (issue, return, count …).
    pub operations: Vec<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenOut {
    /// `ID.SECRET`, shown once: send it as `Authorization: Bearer ID.SECRET`.
    pub token: String,
    pub first_seq: u64,
}

#[derive(Deserialize, ToSchema, Debug)]
pub struct ReasonIn {
    pub reason: String,
}

#[derive(Deserialize, ToSchema, Debug, Default)]
#[serde(default)]
pub struct PolicyIn {
    pub two_person_explosives: bool,
    pub two_person_all_movements: bool,
    pub two_person_count_resolution: bool,
    pub counter_not_keeper: bool,
    pub counter_not_previous: bool,
    pub max_issue_quantity: Option<String>,
}

#[derive(Deserialize, ToSchema, Debug)]
pub struct ReceiveIn {
    pub to: String,
    pub from: String,
    pub document: String,
    pub item_type: String,
    pub manufactured: Option<String>,
    pub expires: Option<String>,
    /// `SERIAL`, `SERIAL@LOT` or `LOT:QUANTITY`.
    pub items: Vec<String>,
    pub witness: Option<WitnessIn>,
}

#[derive(Deserialize, ToSchema, Debug)]
pub struct IssueIn {
    /// Badge of the person receiving the items.
    pub to: String,
    /// Needed for lots; serials come from their rack.
    pub from: Option<String>,
    /// `SERIAL` or `LOT:QUANTITY`.
    pub items: Vec<String>,
    pub witness: Option<WitnessIn>,
}

#[derive(Deserialize, ToSchema, Debug)]
pub struct ReturnIn {
    pub from: String,
    pub to: String,
    pub items: Vec<String>,
    pub witness: Option<WitnessIn>,
}

#[derive(Deserialize, ToSchema, Debug)]
pub struct MoveIn {
    pub from: String,
    pub to: String,
    pub items: Vec<String>,
    pub witness: Option<WitnessIn>,
}

#[derive(Deserialize, ToSchema, Debug)]
pub struct DispatchIn {
    pub from: String,
    pub to_unit: String,
    pub document: Option<String>,
    pub items: Vec<String>,
    pub witness: Option<WitnessIn>,
}

#[derive(Deserialize, ToSchema, Debug)]
pub struct ReceiveTransferIn {
    pub to: String,
    pub items: Vec<String>,
    pub witness: Option<WitnessIn>,
}

/// From a location (`from`) or from a person's custody (`from_person`).
#[derive(Deserialize, ToSchema, Debug)]
pub struct WriteOffIn {
    pub from: Option<String>,
    pub from_person: Option<String>,
    pub document: Option<String>,
    pub items: Vec<String>,
    pub witness: Option<WitnessIn>,
}

#[derive(Deserialize, ToSchema, Debug)]
pub struct RecoverIn {
    pub to: String,
    pub document: Option<String>,
    pub items: Vec<String>,
    pub witness: Option<WitnessIn>,
}

#[derive(Deserialize, ToSchema, Debug)]
pub struct LotStatusIn {
    /// serviceable, suspended, unserviceable
    pub status: String,
    pub reason: String,
    /// The unit whose subtree the decision covers (default: the actor's unit).
    pub unit: Option<String>,
}

#[derive(Deserialize, ToSchema, Debug)]
pub struct CountStartIn {
    pub location: String,
    #[serde(default)]
    pub cycle: bool,
    #[serde(default)]
    pub blind: bool,
}

#[derive(Deserialize, ToSchema, Debug)]
pub struct CountRecordIn {
    pub location: String,
    pub items: Vec<String>,
}

#[derive(Deserialize, ToSchema, Debug)]
pub struct ResolveIn {
    pub approve: bool,
    pub note: String,
    pub item_type: Option<String>,
    pub witness: Option<WitnessIn>,
}

#[derive(Deserialize, ToSchema, Debug)]
pub struct CorrectIn {
    pub seq: u64,
    pub reason: String,
    pub witness: Option<WitnessIn>,
}

#[derive(Deserialize, ToSchema)]
pub struct SignInIn {
    pub badge: String,
    pub password: String,
}

#[derive(Serialize, ToSchema)]
pub struct SignInOut {
    pub badge: String,
    /// Send as `X-CSRF-Token` on every write made with this session's cookie.
    pub csrf: String,
}

#[derive(Serialize, ToSchema)]
pub struct MeOut {
    pub badge: String,
    pub name: String,
    pub unit: String,
    pub roles: Vec<String>,
    /// `session` or `token`
    pub via: String,
}

fn account_of(from: &Option<String>, from_person: &Option<String>) -> Result<Account, ApiError> {
    match (from.as_deref().filter(|s| !s.is_empty()), from_person.as_deref().filter(|s| !s.is_empty())) {
        (Some(l), None) => Ok(Account::Location(id(LocationId::parse(l))?)),
        (None, Some(b)) => Ok(Account::Person(id(Badge::parse(b))?)),
        _ => Err(ApiError::usage("give `from` (a location) or `from_person` (a badge)")),
    }
}

fn date(s: &str) -> Result<time::Date, ApiError> {
    qm_app::import::parse_date(s).map_err(ApiError::usage)
}

// ---- sign-in ----------------------------------------------------------------------------

/// Signs in with badge and password; sets the session cookie and returns the CSRF token.
#[utoipa::path(post, path = "/api/session", tag = "sign-in", request_body = SignInIn,
    responses((status = 200, body = SignInOut), (status = 401, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn session_create(State(st): State<AppState>, ClientIp(ip): ClientIp, JsonBody(b): JsonBody<SignInIn>) -> Result<Response, ApiError> {
    let (sid, csrf) = auth::sign_in(&st, &ip, &b.badge, &b.password).await?;
    let cookie = st.auth.cookie(&sid);
    Ok(([(header::SET_COOKIE, cookie)], Json(SignInOut { badge: b.badge.trim().to_string(), csrf })).into_response())
}

/// Signs out (ends the session).
#[utoipa::path(delete, path = "/api/session", tag = "sign-in", responses((status = 204)))]
async fn session_delete(State(st): State<AppState>, ApiUser(p): ApiUser) -> Response {
    if let Via::Session { id, .. } = &p.via {
        st.auth.remove(id);
    }
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, st.auth.clear_cookie())]).into_response()
}

/// Who is asking, and through what.
#[utoipa::path(get, path = "/api/me", tag = "sign-in", responses((status = 200, body = MeOut), (status = 401, body = ErrorBody)))]
async fn me(ApiUser(p): ApiUser) -> Json<MeOut> {
    Json(MeOut {
        badge: p.badge.to_string(),
        name: p.name.clone(),
        unit: p.unit.to_string(),
        roles: p.roles.iter().map(|r| r.to_string()).collect(),
        via: if matches!(p.via, Via::Token { .. }) { "token".into() } else { "session".into() },
    })
}

// ---- setup ------------------------------------------------------------------------------

#[utoipa::path(post, path = "/api/units", tag = "setup", request_body = UnitIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
async fn unit_add(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    ClientIp(ip): ClientIp,
    h: HeaderMap,
    JsonBody(b): JsonBody<UnitIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let c = Command::CreateUnit { unit: id(UnitId::parse(&b.unit))?, name: b.name, parent: id(UnitId::parse(&b.parent))? };
    done(&st, &p, &ip, &h, None, c).await
}

#[utoipa::path(post, path = "/api/locations", tag = "setup", request_body = LocationIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
async fn location_add(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    ClientIp(ip): ClientIp,
    h: HeaderMap,
    JsonBody(b): JsonBody<LocationIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let c = Command::CreateLocation {
        location: id(LocationId::parse(&b.location))?,
        name: b.name,
        unit: id(UnitId::parse(&b.unit))?,
        parent: opt(&b.parent, LocationId::parse)?,
        kind: id(LocationKind::parse(&b.kind))?,
        keeper: opt(&b.keeper, Badge::parse)?,
        magazine: b.magazine.map(|m| MagazineLicence {
            neq_limit_kg: m.neq_limit_kg,
            hazard_divisions: m.hazard_divisions,
            compatibility_groups: m.compatibility_groups,
            exposed_sites: m.exposed_sites.into_iter().map(|e| ExposedSite { kind: e.kind, distance_m: e.distance_m }).collect(),
        }),
    };
    done(&st, &p, &ip, &h, None, c).await
}

#[utoipa::path(post, path = "/api/item-types", tag = "setup", request_body = ItemTypeIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
async fn item_type_add(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    ClientIp(ip): ClientIp,
    h: HeaderMap,
    JsonBody(b): JsonBody<ItemTypeIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let c = Command::DefineItemType {
        item_type: id(ItemTypeId::parse(&b.item_type))?,
        name: b.name,
        kind: id(ItemKind::parse(&b.kind))?,
        tracking: id(Tracking::parse(&b.tracking))?,
        unit_of_measure: b.unit_of_measure,
        neq_kg_per_unit: b.neq_kg_per_unit,
        un_code: b.un_code,
        qualification: b.qualification,
    };
    done(&st, &p, &ip, &h, None, c).await
}

async fn hash(secret: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || qm_app::hash_secret(&secret))
        .await
        .map_err(|e| ApiError::from(AppError::Internal(format!("hashing: {e}"))))?
        .map_err(ApiError::from)
}

#[utoipa::path(post, path = "/api/people", tag = "setup", request_body = PersonIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
async fn person_add(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    ClientIp(ip): ClientIp,
    h: HeaderMap,
    JsonBody(b): JsonBody<PersonIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let roles = b.roles.iter().map(|r| Role::parse(r)).collect::<Result<Vec<_>, _>>().map_err(ApiError::usage)?;
    let c = Command::RegisterPerson {
        badge: id(Badge::parse(&b.badge))?,
        name: b.name,
        unit: id(UnitId::parse(&b.unit))?,
        roles,
        pin_hash: hash(b.pin).await?,
    };
    done(&st, &p, &ip, &h, None, c).await
}

#[utoipa::path(post, path = "/api/people/{badge}/qualifications", tag = "setup", request_body = QualificationIn, params(("badge" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
async fn person_qualify(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    ClientIp(ip): ClientIp,
    Path(badge): Path<String>,
    h: HeaderMap,
    JsonBody(b): JsonBody<QualificationIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let c = Command::GrantQualification { badge: id(Badge::parse(&badge))?, qualification: b.qualification, expires: date(&b.expires)? };
    done(&st, &p, &ip, &h, None, c).await
}

#[utoipa::path(post, path = "/api/people/{badge}/pin", tag = "setup", request_body = SecretIn, params(("badge" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
async fn person_pin(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    ClientIp(ip): ClientIp,
    Path(badge): Path<String>,
    h: HeaderMap,
    JsonBody(b): JsonBody<SecretIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let c = Command::SetCredential { badge: id(Badge::parse(&badge))?, kind: CredentialKind::Pin, hash: hash(b.secret).await? };
    done(&st, &p, &ip, &h, None, c).await
}

#[utoipa::path(post, path = "/api/people/{badge}/password", tag = "setup", request_body = SecretIn, params(("badge" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
async fn person_password(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    ClientIp(ip): ClientIp,
    Path(badge): Path<String>,
    h: HeaderMap,
    JsonBody(b): JsonBody<SecretIn>,
) -> Result<Json<WriteOut>, ApiError> {
    if b.secret.chars().count() < 10 {
        return Err(ApiError::usage("a password has at least 10 characters"));
    }
    let c = Command::SetCredential { badge: id(Badge::parse(&badge))?, kind: CredentialKind::Password, hash: hash(b.secret).await? };
    done(&st, &p, &ip, &h, None, c).await
}

#[utoipa::path(post, path = "/api/tokens", tag = "setup", request_body = TokenIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = TokenOut), (status = "4XX", body = ErrorBody)))]
async fn token_issue(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    ClientIp(ip): ClientIp,
    h: HeaderMap,
    JsonBody(b): JsonBody<TokenIn>,
) -> Result<Json<TokenOut>, ApiError> {
    for o in &b.operations {
        if !qm_core::permissions::Op::ALL.iter().any(|x| x.as_str() == o) {
            return Err(ApiError::usage(format!("{o:?} is not an operation of docs/permissions.md")));
        }
    }
    let secret = auth::random_token();
    let c = Command::IssueToken {
        token: b.id.clone(),
        label: b.label,
        unit: id(UnitId::parse(&b.unit))?,
        operations: b.operations,
        secret_hash: hash(secret.clone()).await?,
    };
    let o = perform(&st, &p, &ip, None, idempotency_key(&h), c).await?;
    if o.replayed {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "token.replayed",
            "refused: this Idempotency-Key already issued the token; its secret was shown once (rule token.replayed)",
        ));
    }
    Ok(Json(TokenOut { token: format!("{}.{secret}", b.id), first_seq: o.first_seq }))
}

#[utoipa::path(post, path = "/api/tokens/{id}/revoke", tag = "setup", request_body = ReasonIn, params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
async fn token_revoke(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    ClientIp(ip): ClientIp,
    Path(token): Path<String>,
    h: HeaderMap,
    JsonBody(b): JsonBody<ReasonIn>,
) -> Result<Json<WriteOut>, ApiError> {
    done(&st, &p, &ip, &h, None, Command::RevokeToken { token, reason: b.reason }).await
}

#[utoipa::path(post, path = "/api/policies/{unit}", tag = "setup", request_body = PolicyIn, params(("unit" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
async fn policy_set(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    ClientIp(ip): ClientIp,
    Path(unit): Path<String>,
    h: HeaderMap,
    JsonBody(b): JsonBody<PolicyIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let rules = PolicyRules {
        two_person_explosives: b.two_person_explosives,
        two_person_all_movements: b.two_person_all_movements,
        two_person_count_resolution: b.two_person_count_resolution,
        counter_not_keeper: b.counter_not_keeper,
        counter_not_previous: b.counter_not_previous,
        max_issue_quantity: opt(&b.max_issue_quantity, Quantity::parse)?,
    };
    done(&st, &p, &ip, &h, None, Command::SetPolicy { unit: id(UnitId::parse(&unit))?, rules }).await
}

#[derive(Serialize, ToSchema)]
pub struct ImportOut {
    pub rows: u64,
    pub entries: u64,
}

/// Imports a CSV file (the body) of item-types, people, serials or lots: all rows or none.
#[utoipa::path(post, path = "/api/import/{kind}", tag = "setup", request_body(content = String, content_type = "text/csv"), params(("kind" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
async fn import(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Path(kind): Path<String>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let kind = id(qm_app::import::ImportKind::parse(&kind))?;
    if let Via::Token { id: t, .. } = &p.via {
        if !p.at_root {
            let why = format!("API token {t} is limited to unit {} and may not import (imports act for the whole site)", p.unit);
            record_denial(&st, p.badge.as_str(), "import", &why).await;
            return Err(ApiError::forbidden("token.scope", format!("refused: {why} (rule token.scope)")));
        }
    }
    let path = std::env::temp_dir().join(format!("qm-import-{}.csv", uuid::Uuid::new_v4()));
    std::fs::write(&path, &body).map_err(|e| ApiError::from(AppError::Internal(format!("writing {}: {e}", path.display()))))?;
    let (pp, actor) = (path.clone(), p.actor());
    let report = st
        .site
        .call(move |site| {
            let r = qm_app::import::import(site, kind, &pp, actor, now(), &mut |_, _| {});
            r.and_then(|r| crate::error::to_json(&r))
        })
        .await;
    let _ = std::fs::remove_file(&path);
    Ok(Json(report??))
}

// ---- movements --------------------------------------------------------------------------

#[utoipa::path(post, path = "/api/receive", tag = "movements", request_body = ReceiveIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
async fn receive(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    ClientIp(ip): ClientIp,
    h: HeaderMap,
    JsonBody(b): JsonBody<ReceiveIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let item_type = id(ItemTypeId::parse(&b.item_type))?;
    let manufactured = b.manufactured.as_deref().filter(|s| !s.is_empty()).map(date).transpose()?;
    let expires = b.expires.as_deref().filter(|s| !s.is_empty()).map(date).transpose()?;
    let mut lines = vec![];
    for s in b.items.iter().filter(|s| !s.trim().is_empty()) {
        let (serial, lot, quantity) = match (s.split_once('@'), s.split_once(':')) {
            (Some((serial, lot)), _) => (Some(id(Serial::parse(serial))?), Some(id(LotNo::parse(lot))?), Quantity::ONE),
            (None, Some((lot, q))) => (None, Some(id(LotNo::parse(lot))?), id(Quantity::parse(q))?),
            (None, None) => (Some(id(Serial::parse(s))?), None, Quantity::ONE),
        };
        lines.push(ReceiptLine { item_type: item_type.clone(), serial, lot, quantity, manufactured, expires });
    }
    let c = Command::Receive { to: id(LocationId::parse(&b.to))?, from: b.from, document: b.document, lines };
    done(&st, &p, &ip, &h, b.witness, c).await
}

#[utoipa::path(post, path = "/api/issue", tag = "movements", request_body = IssueIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
async fn issue(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    ClientIp(ip): ClientIp,
    h: HeaderMap,
    JsonBody(b): JsonBody<IssueIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let c = Command::Issue { to: id(Badge::parse(&b.to))?, from: opt(&b.from, LocationId::parse)?, items: items(&b.items)? };
    done(&st, &p, &ip, &h, b.witness, c).await
}

#[utoipa::path(post, path = "/api/return", tag = "movements", request_body = ReturnIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
async fn return_(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    ClientIp(ip): ClientIp,
    h: HeaderMap,
    JsonBody(b): JsonBody<ReturnIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let c = Command::Return { from: id(Badge::parse(&b.from))?, to: id(LocationId::parse(&b.to))?, items: items(&b.items)? };
    done(&st, &p, &ip, &h, b.witness, c).await
}

#[utoipa::path(post, path = "/api/move", tag = "movements", request_body = MoveIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
async fn move_(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    ClientIp(ip): ClientIp,
    h: HeaderMap,
    JsonBody(b): JsonBody<MoveIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let c = Command::Move { from: id(LocationId::parse(&b.from))?, to: id(LocationId::parse(&b.to))?, items: items(&b.items)? };
    done(&st, &p, &ip, &h, b.witness, c).await
}

#[utoipa::path(post, path = "/api/transfers", tag = "movements", request_body = DispatchIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
async fn dispatch(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    ClientIp(ip): ClientIp,
    h: HeaderMap,
    JsonBody(b): JsonBody<DispatchIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let c = Command::Dispatch {
        from: id(LocationId::parse(&b.from))?,
        to_unit: id(UnitId::parse(&b.to_unit))?,
        items: items(&b.items)?,
        document: b.document,
    };
    done(&st, &p, &ip, &h, b.witness, c).await
}

#[utoipa::path(post, path = "/api/transfers/{id}/receive", tag = "movements", request_body = ReceiveTransferIn, params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
async fn transfer_receive(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    ClientIp(ip): ClientIp,
    Path(t): Path<String>,
    h: HeaderMap,
    JsonBody(b): JsonBody<ReceiveTransferIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let c =
        Command::ReceiveTransfer { transfer: id(TransferId::parse(&t))?, to: id(LocationId::parse(&b.to))?, received: items(&b.items)? };
    done(&st, &p, &ip, &h, b.witness, c).await
}

#[utoipa::path(post, path = "/api/expend", tag = "movements", request_body = WriteOffIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
async fn expend(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    ClientIp(ip): ClientIp,
    h: HeaderMap,
    JsonBody(b): JsonBody<WriteOffIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let document =
        b.document.clone().filter(|d| !d.trim().is_empty()).ok_or_else(|| ApiError::usage("an expenditure needs a `document`"))?;
    let c = Command::Expend { from: account_of(&b.from, &b.from_person)?, items: items(&b.items)?, document };
    done(&st, &p, &ip, &h, b.witness, c).await
}

#[utoipa::path(post, path = "/api/destroy", tag = "movements", request_body = WriteOffIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
async fn destroy(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    ClientIp(ip): ClientIp,
    h: HeaderMap,
    JsonBody(b): JsonBody<WriteOffIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let from = b.from.as_deref().ok_or_else(|| ApiError::usage("destruction needs `from` (a location)"))?;
    let document = b.document.clone().filter(|d| !d.trim().is_empty()).ok_or_else(|| ApiError::usage("destruction needs a `document`"))?;
    let c = Command::Destroy { from: id(LocationId::parse(from))?, items: items(&b.items)?, document };
    done(&st, &p, &ip, &h, b.witness, c).await
}

#[utoipa::path(post, path = "/api/report-loss", tag = "movements", request_body = WriteOffIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
async fn report_loss(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    ClientIp(ip): ClientIp,
    h: HeaderMap,
    JsonBody(b): JsonBody<WriteOffIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let c = Command::ReportLost { from: account_of(&b.from, &b.from_person)?, items: items(&b.items)?, document: b.document };
    done(&st, &p, &ip, &h, b.witness, c).await
}

#[utoipa::path(post, path = "/api/recover", tag = "movements", request_body = RecoverIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
async fn recover(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    ClientIp(ip): ClientIp,
    h: HeaderMap,
    JsonBody(b): JsonBody<RecoverIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let c = Command::Recover { to: id(LocationId::parse(&b.to))?, items: items(&b.items)?, document: b.document };
    done(&st, &p, &ip, &h, b.witness, c).await
}

#[utoipa::path(post, path = "/api/lots/{lot}/status", tag = "movements", request_body = LotStatusIn, params(("lot" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
async fn lot_status(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    ClientIp(ip): ClientIp,
    Path(lot): Path<String>,
    h: HeaderMap,
    JsonBody(b): JsonBody<LotStatusIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let c = Command::SetLotStatus {
        lot: id(LotNo::parse(&lot))?,
        status: id(LotStatus::parse(&b.status))?,
        reason: b.reason,
        unit: opt(&b.unit, UnitId::parse)?,
    };
    done(&st, &p, &ip, &h, None, c).await
}

#[utoipa::path(post, path = "/api/corrections", tag = "movements", request_body = CorrectIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
async fn correct(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    ClientIp(ip): ClientIp,
    h: HeaderMap,
    JsonBody(b): JsonBody<CorrectIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let seq = b.seq;
    let original = st.site.call(move |site| site.envelope(seq)).await??;
    done(&st, &p, &ip, &h, b.witness, Command::Correct { original: Box::new(original), reason: b.reason }).await
}

#[derive(Deserialize, ToSchema, Debug)]
pub struct ReadingIn {
    /// RFC 3339 time of the reading.
    pub at: String,
    pub temperature_c: Option<f64>,
    pub humidity_pct: Option<f64>,
}

#[derive(Deserialize, ToSchema, Debug)]
pub struct ReadingsIn {
    pub readings: Vec<ReadingIn>,
}

/// Most readings in one request.
pub const READINGS_MAX: usize = 10_000;

/// Storage-condition readings for one place (a sensor or a keeper's thermometer): stored, digested
/// into the ledger, and checked for excursions.
#[utoipa::path(post, path = "/api/locations/{id}/readings", tag = "safety", request_body = ReadingsIn, params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
async fn readings(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Path(loc): Path<String>,
    h: HeaderMap,
    JsonBody(b): JsonBody<ReadingsIn>,
) -> Result<Json<WriteOut>, ApiError> {
    if b.readings.len() > READINGS_MAX {
        return Err(ApiError::usage(format!("{} readings in one request; the limit is {READINGS_MAX}", b.readings.len())));
    }
    let location = id(LocationId::parse(&loc))?;
    let mut list = vec![];
    for r in &b.readings {
        let at = time::OffsetDateTime::parse(&r.at, &time::format_description::well_known::Rfc3339)
            .map_err(|e| ApiError::usage(format!("reading time {:?}: {e}", r.at)))?;
        list.push(qm_core::conditions::Reading { at, temperature_c: r.temperature_c, humidity_pct: r.humidity_pct });
    }
    let key = idempotency_key(&h).unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let actor = p.actor();
    let o = st.site.call(move |site| site.record_readings(actor, &location, list, &key, now())).await??;
    Ok(Json(WriteOut::from(&o)))
}

// ---- counts -----------------------------------------------------------------------------

#[utoipa::path(post, path = "/api/counts", tag = "counts", request_body = CountStartIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
async fn count_start(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    ClientIp(ip): ClientIp,
    h: HeaderMap,
    JsonBody(b): JsonBody<CountStartIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let kind = if b.cycle { CountKind::Cycle } else { CountKind::Full };
    done(&st, &p, &ip, &h, None, Command::StartCount { root: id(LocationId::parse(&b.location))?, kind, blind: b.blind }).await
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

#[utoipa::path(post, path = "/api/counts/{id}/record", tag = "counts", request_body = CountRecordIn, params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
async fn count_record(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    ClientIp(ip): ClientIp,
    Path(c): Path<String>,
    h: HeaderMap,
    JsonBody(b): JsonBody<CountRecordIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let (serials, lots) = split_items(items(&b.items)?);
    let c = Command::RecordCount { count: id(CountId::parse(&c))?, location: id(LocationId::parse(&b.location))?, serials, lots };
    done(&st, &p, &ip, &h, None, c).await
}

#[utoipa::path(post, path = "/api/counts/{id}/close", tag = "counts", params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
async fn count_close(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    ClientIp(ip): ClientIp,
    Path(c): Path<String>,
    h: HeaderMap,
) -> Result<Json<WriteOut>, ApiError> {
    done(&st, &p, &ip, &h, None, Command::CloseCount { count: id(CountId::parse(&c))? }).await
}

#[utoipa::path(post, path = "/api/discrepancies/{id}/resolve", tag = "counts", request_body = ResolveIn, params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
async fn resolve(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    ClientIp(ip): ClientIp,
    Path(d): Path<String>,
    h: HeaderMap,
    JsonBody(b): JsonBody<ResolveIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let c = Command::ResolveDiscrepancy {
        discrepancy: id(DiscrepancyId::parse(&d))?,
        approve: b.approve,
        note: b.note,
        item_type: opt(&b.item_type, ItemTypeId::parse)?,
    };
    done(&st, &p, &ip, &h, b.witness, c).await
}

// ---- reads ------------------------------------------------------------------------------

#[derive(Deserialize, utoipa::IntoParams, Debug)]
pub struct StockQuery {
    pub unit: Option<String>,
    pub location: Option<String>,
    pub item_type: Option<String>,
}

/// Stock by unit, account and item type, inside the caller's subtree.
#[utoipa::path(get, path = "/api/stock", tag = "reads", params(StockQuery), responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
async fn stock(State(st): State<AppState>, ApiUser(p): ApiUser, Query(q): Query<StockQuery>) -> Result<Json<serde_json::Value>, ApiError> {
    let f = StockFilter {
        unit: opt(&q.unit, UnitId::parse)?,
        location: opt(&q.location, LocationId::parse)?,
        item_type: opt(&q.item_type, ItemTypeId::parse)?,
    };
    let pp = p.clone();
    let r = read(&st, move |site| Ok(stock_for(site.state(), &pp, f))).await?;
    match r {
        Ok(v) => Ok(Json(crate::error::to_json(v)?)),
        Err(what) => Err(deny_read(&st, &p, &what).await),
    }
}

/// The stock lines `p` may see; Err names what lies outside its subtree.
pub fn stock_for(s: &qm_core::State, p: &Principal, mut f: StockFilter) -> Result<Vec<query::StockLine>, String> {
    if let Some(u) = &f.unit {
        if !s.unit_within(u, &p.unit) && s.units.contains_key(u) {
            return Err(format!("unit {u}"));
        }
    } else {
        f.unit = Some(p.unit.clone());
    }
    if let Some(l) = &f.location {
        if let Some(loc) = s.locations.get(l) {
            if !s.unit_within(&loc.unit, &p.unit) {
                return Err(format!("location {l}"));
            }
        }
    }
    Ok(query::stock(s, &f))
}

#[utoipa::path(get, path = "/api/where/{serial}", tag = "reads", params(("serial" = String, Path)), responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
async fn where_is(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Path(serial): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let serial = id(Serial::parse(&serial))?;
    let pp = p.clone();
    let (w, visible) = read(&st, move |site| {
        let s = site.state();
        let w = query::where_is(s, &serial)?;
        let unit = s.serials.get(&serial).and_then(|x| s.account_unit(&x.account));
        Ok((w, sees(s, &pp, unit.as_ref())))
    })
    .await?;
    if !visible {
        return Err(deny_read(&st, &p, &format!("serial {}", w.serial)).await);
    }
    Ok(Json(crate::error::to_json(w)?))
}

/// May `p` see the history of this serial or lot? (It is, or was, held in its subtree.)
pub fn item_visible(s: &qm_core::State, p: &Principal, what: &str) -> bool {
    if p.at_root {
        return true;
    }
    if let Some(si) = Serial::parse(what).ok().and_then(|x| s.serials.get(&x)) {
        return sees(s, p, s.account_unit(&si.account).as_ref());
    }
    if let Ok(lot) = LotNo::parse(what) {
        return s.balances.iter().any(|((a, l), _)| *l == lot && sees(s, p, s.account_unit(a).as_ref()));
    }
    false
}

#[utoipa::path(get, path = "/api/history/{item}", tag = "reads", params(("item" = String, Path, description = "a serial or a lot number")), responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
async fn history(State(st): State<AppState>, ApiUser(p): ApiUser, Path(what): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    let (pp, w) = (p.clone(), what.clone());
    let r = read(&st, move |site| {
        let lines = query::history(site, &w)?;
        Ok((lines, item_visible(site.state(), &pp, &w)))
    })
    .await?;
    if !r.1 {
        return Err(deny_read(&st, &p, &format!("item {what}")).await);
    }
    Ok(Json(crate::error::to_json(r.0)?))
}

#[utoipa::path(get, path = "/api/custody/{badge}", tag = "reads", params(("badge" = String, Path)), responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
async fn custody(State(st): State<AppState>, ApiUser(p): ApiUser, Path(badge): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    let b = id(Badge::parse(&badge))?;
    let pp = p.clone();
    let (c, visible) = read(&st, move |site| {
        let s = site.state();
        let c = query::custody(s, &b)?;
        let unit = s.people.get(&b).map(|x| x.unit.clone());
        Ok((c, sees(s, &pp, unit.as_ref()) || pp.badge == b))
    })
    .await?;
    if !visible {
        return Err(deny_read(&st, &p, &format!("the custody of badge {badge}")).await);
    }
    Ok(Json(crate::error::to_json(c)?))
}

#[derive(Deserialize, utoipa::IntoParams, Debug)]
pub struct AllQuery {
    #[serde(default)]
    pub all: bool,
}

/// Transfers from or to the caller's subtree: in transit, or all with `all=true`.
#[utoipa::path(get, path = "/api/transfers", tag = "reads", params(AllQuery), responses((status = 200, body = serde_json::Value)))]
async fn transfers(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Query(q): Query<AllQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let v = read(&st, move |site| Ok(transfers_for(site.state(), &p, q.all))).await?;
    Ok(Json(crate::error::to_json(v)?))
}

pub fn transfers_for(s: &qm_core::State, p: &Principal, all: bool) -> Vec<query::TransferView> {
    query::transfers(s, all)
        .into_iter()
        .filter(|t| {
            let from = UnitId::parse(&t.from_unit).ok();
            let to = UnitId::parse(&t.to_unit).ok();
            sees(s, p, from.as_ref()) || sees(s, p, to.as_ref())
        })
        .collect()
}

pub fn counts_for(s: &qm_core::State, p: &Principal) -> Vec<query::CountView> {
    s.counts
        .iter()
        .filter(|(_, c)| sees(s, p, s.locations.get(&c.root).map(|l| &l.unit)))
        .filter_map(|(id, _)| query::count_view(s, id).ok())
        .collect()
}

#[utoipa::path(get, path = "/api/counts", tag = "counts", responses((status = 200, body = serde_json::Value)))]
async fn counts(State(st): State<AppState>, ApiUser(p): ApiUser) -> Result<Json<serde_json::Value>, ApiError> {
    let v = read(&st, move |site| Ok(counts_for(site.state(), &p))).await?;
    Ok(Json(crate::error::to_json(v)?))
}

#[utoipa::path(get, path = "/api/counts/{id}", tag = "counts", params(("id" = String, Path)), responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
async fn count_show(State(st): State<AppState>, ApiUser(p): ApiUser, Path(c): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    let cid = id(CountId::parse(&c))?;
    let pp = p.clone();
    let (v, visible) = read(&st, move |site| {
        let s = site.state();
        let v = query::count_view(s, &cid)?;
        let unit = s.counts.get(&cid).and_then(|x| s.locations.get(&x.root)).map(|l| l.unit.clone());
        Ok((v, sees(s, &pp, unit.as_ref())))
    })
    .await?;
    if !visible {
        return Err(deny_read(&st, &p, &format!("count {c}")).await);
    }
    Ok(Json(crate::error::to_json(v)?))
}

/// Open discrepancies in the caller's subtree (or all of them with `all=true`).
#[utoipa::path(get, path = "/api/discrepancies", tag = "counts", params(AllQuery), responses((status = 200, body = serde_json::Value)))]
async fn discrepancies(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    Query(q): Query<AllQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let v = read(&st, move |site| Ok(discrepancies_for(site.state(), &p, q.all))).await?;
    Ok(Json(crate::error::to_json(v)?))
}

pub fn discrepancies_for(s: &qm_core::State, p: &Principal, all: bool) -> Vec<query::DiscrepancyView> {
    s.discrepancies
        .iter()
        .filter(|(_, d)| all || d.resolution.is_none())
        .filter(|(_, d)| scope::discrepancy_units(s, &d.facts).iter().flatten().any(|u| s.unit_within(u, &p.unit)) || p.at_root)
        .filter_map(|(id, _)| query::discrepancy_view(s, id))
        .collect()
}

#[derive(Deserialize, utoipa::IntoParams, Debug)]
pub struct LogQuery {
    /// How many of the newest entries (at most 10000; default 100).
    pub limit: Option<usize>,
}

/// The newest ledger entries made by people of the caller's subtree (HQ sees all).
#[utoipa::path(get, path = "/api/log", tag = "ledger", params(LogQuery), responses((status = 200, body = serde_json::Value)))]
async fn log(State(st): State<AppState>, ApiUser(p): ApiUser, Query(q): Query<LogQuery>) -> Result<Json<serde_json::Value>, ApiError> {
    let limit = q.limit.unwrap_or(100).min(LOG_LIMIT_MAX);
    let v = read(&st, move |site| log_for(site, &p, limit)).await?;
    Ok(Json(crate::error::to_json(v)?))
}

pub fn log_for(site: &qm_app::Site, p: &Principal, limit: usize) -> Result<Vec<query::LogLine>, ApiError> {
    let s = site.state();
    if p.at_root {
        return Ok(query::log(site, limit)?);
    }
    // Read newest-first in pages until `limit` visible lines are found (or the ledger's start).
    let mut out = vec![];
    let mut end = site.size();
    let zone = qm_app::zone::SiteZone::of(s);
    while end > 0 && out.len() < limit {
        let first = end.saturating_sub(4096);
        let page = site.read_envelopes(first, end - 1)?;
        for env in page.iter().rev() {
            let unit = s.people.get(&env.actor).map(|x| &x.unit);
            if unit.is_some_and(|u| s.unit_within(u, &p.unit)) {
                out.push(query::log_line_in(env, &zone));
                if out.len() >= limit {
                    break;
                }
            }
        }
        end = first;
    }
    out.reverse();
    Ok(out)
}

#[derive(Serialize, ToSchema)]
pub struct UnitOut {
    pub unit: String,
    pub name: String,
    pub parent: Option<String>,
}

#[utoipa::path(get, path = "/api/units", tag = "reads", responses((status = 200, body = Vec<UnitOut>)))]
async fn units(State(st): State<AppState>, ApiUser(p): ApiUser) -> Result<Json<Vec<UnitOut>>, ApiError> {
    read(&st, move |site| {
        let s = site.state();
        Ok(Json(
            s.units
                .iter()
                .filter(|(u, _)| s.unit_within(u, &p.unit))
                .map(|(u, x)| UnitOut { unit: u.to_string(), name: x.name.clone(), parent: x.parent.as_ref().map(|p| p.to_string()) })
                .collect(),
        ))
    })
    .await
}

#[utoipa::path(get, path = "/api/locations", tag = "reads", responses((status = 200, body = serde_json::Value)))]
async fn locations(State(st): State<AppState>, ApiUser(p): ApiUser) -> Result<Json<serde_json::Value>, ApiError> {
    read(&st, move |site| {
        let s = site.state();
        let v: serde_json::Map<String, serde_json::Value> = s
            .locations
            .iter()
            .filter(|(_, l)| s.unit_within(&l.unit, &p.unit))
            .map(|(id, l)| Ok((id.to_string(), crate::error::to_json(l)?)))
            .collect::<Result<_, AppError>>()?;
        Ok(Json(serde_json::Value::Object(v)))
    })
    .await
}

#[utoipa::path(get, path = "/api/item-types", tag = "reads", responses((status = 200, body = serde_json::Value)))]
async fn item_types(State(st): State<AppState>, ApiUser(_p): ApiUser) -> Result<Json<serde_json::Value>, ApiError> {
    read(&st, move |site| Ok(Json(crate::error::to_json(&site.state().item_types)?))).await
}

#[derive(Serialize, ToSchema)]
pub struct PersonOut {
    pub badge: String,
    pub name: String,
    pub unit: String,
    pub roles: Vec<String>,
    pub qualifications: Vec<String>,
}

#[utoipa::path(get, path = "/api/people", tag = "reads", responses((status = 200, body = Vec<PersonOut>)))]
async fn people(State(st): State<AppState>, ApiUser(p): ApiUser) -> Result<Json<Vec<PersonOut>>, ApiError> {
    read(&st, move |site| {
        let s = site.state();
        Ok(Json(
            s.people
                .iter()
                .filter(|(_, x)| s.unit_within(&x.unit, &p.unit))
                .map(|(b, x)| PersonOut {
                    badge: b.to_string(),
                    name: x.name.clone(),
                    unit: x.unit.to_string(),
                    roles: x.roles.iter().map(|r| r.to_string()).collect(),
                    qualifications: x.qualifications.iter().map(|(q, d)| format!("{q} until {d}")).collect(),
                })
                .collect(),
        ))
    })
    .await
}

#[derive(Serialize, ToSchema)]
pub struct CheckpointOut {
    pub size: u64,
    pub note: String,
}

#[utoipa::path(get, path = "/api/checkpoints", tag = "ledger", responses((status = 200, body = Vec<CheckpointOut>)))]
async fn checkpoints(State(st): State<AppState>, ApiUser(_p): ApiUser) -> Result<Json<Vec<CheckpointOut>>, ApiError> {
    read(&st, |site| {
        Ok(Json(
            site.store().checkpoints().map_err(AppError::from)?.into_iter().map(|c| CheckpointOut { size: c.size, note: c.note }).collect(),
        ))
    })
    .await
}

/// Signs a checkpoint of the whole ledger now.
#[utoipa::path(post, path = "/api/checkpoint", tag = "ledger", responses((status = 200, body = CheckpointOut)))]
async fn checkpoint(State(st): State<AppState>, ApiUser(_p): ApiUser) -> Result<Json<CheckpointOut>, ApiError> {
    let r = st.site.call(|site| site.checkpoint().map(|note| CheckpointOut { size: site.size(), note })).await??;
    Ok(Json(r))
}

fn root_only(p: &Principal, what: &str) -> Result<(), ApiError> {
    if p.at_root {
        Ok(())
    } else {
        Err(ApiError::forbidden("permission.subtree", format!("refused: {} (rule permission.subtree)", scope::outside(p, what))))
    }
}

/// Inclusion proof of one entry against the latest checkpoint (HQ only: it shows the entry itself).
#[utoipa::path(get, path = "/api/proofs/inclusion/{seq}", tag = "ledger", params(("seq" = u64, Path)), responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
async fn prove(State(st): State<AppState>, ApiUser(p): ApiUser, Path(seq): Path<u64>) -> Result<Json<serde_json::Value>, ApiError> {
    root_only(&p, "entry proofs")?;
    read(&st, move |site| Ok(Json(crate::error::to_json(site.prove(seq)?)?))).await
}

#[derive(Deserialize, utoipa::IntoParams, Debug)]
pub struct ConsistencyQuery {
    pub old: u64,
    pub new: u64,
}

#[utoipa::path(get, path = "/api/proofs/consistency", tag = "ledger", params(ConsistencyQuery), responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
async fn consistency(
    State(st): State<AppState>,
    ApiUser(_p): ApiUser,
    Query(q): Query<ConsistencyQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    read(&st, move |site| Ok(Json(crate::error::to_json(site.prove_consistency(q.old, q.new)?)?))).await
}

#[utoipa::path(get, path = "/api/verifier-key", tag = "ledger", responses((status = 200, body = serde_json::Value)))]
async fn verifier_key(State(st): State<AppState>, ApiUser(_p): ApiUser) -> Result<Json<serde_json::Value>, ApiError> {
    read(&st, |site| Ok(Json(serde_json::json!({ "verifier_key": site.state().site.as_ref().map(|s| s.verifier_key.clone()) })))).await
}

/// Runs the auditor over the whole ledger (HQ only: it reads everything).
#[utoipa::path(get, path = "/api/verify", tag = "ledger", responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
async fn verify(State(st): State<AppState>, ApiUser(p): ApiUser) -> Result<Json<serde_json::Value>, ApiError> {
    root_only(&p, "the whole ledger")?;
    read(&st, |site| {
        let r = qm_app::verify::verify(site.store(), &qm_app::verify::VerifyOptions { verifier_key: None, skip_replay: false });
        Ok(Json(serde_json::json!({ "ok": r.ok(), "report": crate::error::to_json(&r)? })))
    })
    .await
}

#[utoipa::path(get, path = "/api/permissions", tag = "reads", responses((status = 200, body = serde_json::Value)))]
async fn permissions() -> Json<serde_json::Value> {
    use qm_core::permissions::{role_allows, Op};
    let table: serde_json::Map<String, serde_json::Value> = Op::ALL
        .iter()
        .map(|op| {
            (
                op.as_str().to_string(),
                serde_json::json!(Role::ALL.iter().filter(|r| role_allows(**r, *op)).map(|r| r.as_str()).collect::<Vec<_>>()),
            )
        })
        .collect();
    Json(serde_json::json!({ "roles_allowed": table, "markdown": qm_core::permissions::markdown_table() }))
}

/// What a command would do, without doing it: the entries it would append, or the refusal.
#[derive(Serialize, ToSchema, Debug)]
pub struct PreviewOut {
    pub ok: bool,
    pub summaries: Vec<String>,
    pub error: Option<crate::error::ErrorDetail>,
    /// True when the refusal asks for a witness (rule two_person).
    pub needs_witness: bool,
}

/// Decides a command against the books without recording anything (the counter's preview).
pub async fn preview(st: &AppState, p: &Principal, witness: Option<Badge>, command: Command) -> Result<PreviewOut, ApiError> {
    let req = Request::by(&p.actor(), witness, command, String::new(), now());
    st.site
        .call(move |site| match site.preview(&req) {
            Ok(entries) => {
                PreviewOut { ok: true, summaries: entries.iter().map(query::summarize).collect(), error: None, needs_witness: false }
            }
            Err(r) => {
                let needs_witness = r.code() == "two_person";
                let e = AppError::Rejected(r);
                PreviewOut {
                    ok: false,
                    summaries: vec![],
                    error: Some(crate::error::ErrorDetail { code: e.code().into(), message: e.to_string() }),
                    needs_witness,
                }
            }
        })
        .await
        .map_err(ApiError::from)
}

#[derive(Deserialize, ToSchema, Debug)]
pub struct PreviewIn {
    /// `issue` or `return`
    pub mode: String,
    pub badge: String,
    /// For an issue: the location lots come from; for a return: where the items go back to.
    pub location: Option<String>,
    pub items: Vec<String>,
    pub witness: Option<String>,
}

/// Builds the counter's commands: an issue to a badge (serials from wherever they are racked, lots
/// from `location`: two commands when both are scanned), or a return from a badge to `location`.
pub fn counter_commands(mode: &str, badge: &str, location: &Option<String>, list: &[String]) -> Result<Vec<Command>, ApiError> {
    let badge = id(Badge::parse(badge))?;
    let list = items(list)?;
    if list.is_empty() {
        return Err(ApiError::usage("scan or type at least one item"));
    }
    match mode {
        "issue" => {
            let from = opt(location, LocationId::parse)?;
            let (serials, lots): (Vec<ItemRef>, Vec<ItemRef>) = list.into_iter().partition(|i| matches!(i, ItemRef::Serial(_)));
            let mut out = vec![];
            if !serials.is_empty() {
                out.push(Command::Issue { to: badge.clone(), from: None, items: serials });
            }
            if !lots.is_empty() {
                let from = from.ok_or_else(|| ApiError::usage("lots are drawn from a location: give the location"))?;
                out.push(Command::Issue { to: badge, from: Some(from), items: lots });
            }
            Ok(out)
        }
        "return" => {
            let to =
                opt(location, LocationId::parse)?.ok_or_else(|| ApiError::usage("a return needs the location the items go back to"))?;
            Ok(vec![Command::Return { from: badge, to, items: list }])
        }
        other => Err(ApiError::usage(format!("mode {other:?}: expected issue or return"))),
    }
}

/// Previews several commands as one: every summary, or the first refusal.
pub async fn preview_all(st: &AppState, p: &Principal, witness: Option<Badge>, commands: Vec<Command>) -> Result<PreviewOut, ApiError> {
    let mut all = PreviewOut { ok: true, summaries: vec![], error: None, needs_witness: false };
    for c in commands {
        let one = preview(st, p, witness.clone(), c).await?;
        all.summaries.extend(one.summaries);
        if !one.ok {
            return Ok(PreviewOut { summaries: vec![], ..one });
        }
    }
    Ok(all)
}

/// The counter's preview of an issue or a return.
#[utoipa::path(post, path = "/api/preview", tag = "movements", request_body = PreviewIn, responses((status = 200, body = PreviewOut), (status = "4XX", body = ErrorBody)))]
async fn preview_api(
    State(st): State<AppState>,
    ApiUser(p): ApiUser,
    JsonBody(b): JsonBody<PreviewIn>,
) -> Result<Json<PreviewOut>, ApiError> {
    let c = counter_commands(&b.mode, &b.badge, &b.location, &b.items)?;
    let w = opt(&b.witness, Badge::parse)?;
    Ok(Json(preview_all(&st, &p, w, c).await?))
}

// ---- the document and the routes --------------------------------------------------------

struct Security;

impl utoipa::Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
        let c = openapi.components.get_or_insert_with(Default::default);
        c.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("ID.SECRET").build()),
        );
        c.add_security_scheme("session", SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(auth::SESSION_COOKIE))));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Quartermaster", description = "The system of record for weapons, ammunition and explosives. Errors: {\"error\": {\"code\", \"message\"}}; writes honour `Idempotency-Key`."),
    modifiers(&Security),
    security(("bearer" = []), ("session" = [])),
    paths(
        session_create, session_delete, me,
        unit_add, location_add, item_type_add, person_add, person_qualify, person_pin, person_password, token_issue, token_revoke, policy_set, import,
        readings, receive, issue, return_, move_, dispatch, transfer_receive, expend, destroy, report_loss, recover, lot_status, correct, preview_api,
        count_start, count_record, count_close, resolve, counts, count_show, discrepancies,
        stock, where_is, history, custody, transfers, units, locations, item_types, people, permissions,
        log, checkpoints, checkpoint, prove, consistency, verifier_key, verify,
        crate::safety::api_magazines, crate::safety::api_lots, crate::safety::api_conditions, crate::safety::api_conditions_svg,
        crate::safety::api_dsmt, crate::safety::api_dsmt_csv, crate::safety::api_qd
    ),
    components(schemas(ErrorBody, crate::error::ErrorDetail, WriteOut, EntryOut, WitnessIn))
)]
pub struct ApiDoc;

async fn openapi() -> Response {
    match ApiDoc::openapi().to_json() {
        Ok(s) => ([(header::CONTENT_TYPE, "application/json")], s).into_response(),
        Err(e) => ApiError::from(AppError::Internal(format!("openapi: {e}"))).into_response(),
    }
}

async fn api_not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "not found: no such API endpoint; see /api/openapi.json")
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/openapi.json", get(openapi))
        .route("/api/session", post(session_create).delete(session_delete))
        .route("/api/me", get(me))
        .route("/api/units", get(units).post(unit_add))
        .route("/api/locations", get(locations).post(location_add))
        .route("/api/item-types", get(item_types).post(item_type_add))
        .route("/api/people", get(people).post(person_add))
        .route("/api/people/{badge}/qualifications", post(person_qualify))
        .route("/api/people/{badge}/pin", post(person_pin))
        .route("/api/people/{badge}/password", post(person_password))
        .route("/api/tokens", post(token_issue))
        .route("/api/tokens/{id}/revoke", post(token_revoke))
        .route("/api/policies/{unit}", post(policy_set))
        .route("/api/import/{kind}", post(import))
        .route("/api/locations/{id}/readings", post(readings))
        .route("/api/receive", post(receive))
        .route("/api/issue", post(issue))
        .route("/api/return", post(return_))
        .route("/api/move", post(move_))
        .route("/api/transfers", get(transfers).post(dispatch))
        .route("/api/transfers/{id}/receive", post(transfer_receive))
        .route("/api/expend", post(expend))
        .route("/api/destroy", post(destroy))
        .route("/api/report-loss", post(report_loss))
        .route("/api/recover", post(recover))
        .route("/api/lots/{lot}/status", post(lot_status))
        .route("/api/corrections", post(correct))
        .route("/api/preview", post(preview_api))
        .route("/api/counts", get(counts).post(count_start))
        .route("/api/counts/{id}", get(count_show))
        .route("/api/counts/{id}/record", post(count_record))
        .route("/api/counts/{id}/close", post(count_close))
        .route("/api/discrepancies", get(discrepancies))
        .route("/api/discrepancies/{id}/resolve", post(resolve))
        .route("/api/stock", get(stock))
        .route("/api/where/{serial}", get(where_is))
        .route("/api/history/{item}", get(history))
        .route("/api/custody/{badge}", get(custody))
        .route("/api/log", get(log))
        .route("/api/checkpoints", get(checkpoints))
        .route("/api/checkpoint", post(checkpoint))
        .route("/api/proofs/inclusion/{seq}", get(prove))
        .route("/api/proofs/consistency", get(consistency))
        .route("/api/verifier-key", get(verifier_key))
        .route("/api/verify", get(verify))
        .route("/api/permissions", get(permissions))
        .route("/api/{*rest}", axum::routing::any(api_not_found))
}
