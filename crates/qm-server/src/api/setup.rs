//! API: setting the organization up — units, locations, item types, people, credentials, tokens, policy, imports.

use crate::auth::{self, now, record_denial, Via};
use crate::edge::*;
use crate::error::{ApiError, ErrorBody};
use axum::body::Bytes;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::Json;
use qm_app::AppError;
use qm_core::event::CredentialKind;
use qm_core::policy::PolicyRules;
use qm_core::*;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct UnitIn {
    pub unit: String,
    pub name: String,
    pub parent: String,
}

#[derive(Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct ExposedSiteIn {
    pub kind: String,
    pub distance_m: f64,
}

#[derive(Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
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

/// What the mixing chart's footnotes are about, for one item type (docs/safety.md).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttributesIn {
    /// From the safety tables' `mixing.attributes`: detonator, firework, special_handling, substance.
    pub attributes: Vec<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PersonIn {
    pub badge: String,
    pub name: String,
    pub unit: String,
    pub roles: Vec<String>,
    pub pin: String,
}

#[derive(Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct QualificationIn {
    pub qualification: String,
    /// YYYY-MM-DD
    pub expires: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretIn {
    /// A PIN (4 to 128 characters) or a password (at least 10 characters).
    pub secret: String,
}

#[derive(Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct TokenIn {
    pub id: String,
    pub label: String,
    pub unit: String,
    /// Operation names from docs/permissions.md (issue, return, count …).
    pub operations: Vec<String>,
    /// The badge the token acts as: a person, or a device registered as staff with the roles it
    /// needs (a counter tablet, a script). Without it the token acts as the caller.
    pub acts_as: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct TokenOut {
    /// `ID.SECRET`, shown once: send it as `Authorization: Bearer ID.SECRET`.
    pub token: String,
    pub first_seq: u64,
}

#[derive(Deserialize, ToSchema, Debug, Default)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyIn {
    pub two_person_explosives: bool,
    pub two_person_all_movements: bool,
    pub two_person_count_resolution: bool,
    pub counter_not_keeper: bool,
    pub counter_not_previous: bool,
    pub max_issue_quantity: Option<String>,
    /// Nobody alone in an armory, depot or magazine (docs/access.md).
    #[serde(default)]
    pub two_person_entry: bool,
    /// Minutes within which the second person must follow (default 5).
    pub partner_within_min: Option<u16>,
    /// The longest anyone may stay inside, in minutes.
    pub max_inside_min: Option<u32>,
    /// A full count of every armory, depot and magazine below at least this often, in days.
    pub full_count_every_days: Option<u16>,
}

#[utoipa::path(post, path = "/api/units", tag = "setup", request_body = UnitIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn unit_add(Caller { st, p, ip, key }: Caller, JsonBody(b): JsonBody<UnitIn>) -> Result<Json<WriteOut>, ApiError> {
    let c = Command::CreateUnit { unit: id(UnitId::parse(&b.unit))?, name: b.name, parent: id(UnitId::parse(&b.parent))? };
    done(&st, &p, &ip, key, None, c).await
}

#[utoipa::path(post, path = "/api/locations", tag = "setup", request_body = LocationIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn location_add(Caller { st, p, ip, key }: Caller, JsonBody(b): JsonBody<LocationIn>) -> Result<Json<WriteOut>, ApiError> {
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
    done(&st, &p, &ip, key, None, c).await
}

#[utoipa::path(post, path = "/api/item-types/{id}/attributes", tag = "setup", request_body = AttributesIn,
    params(("id" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn item_type_attributes(
    Caller { st, p, ip, key }: Caller,
    axum::extract::Path(item_type): axum::extract::Path<String>,
    JsonBody(b): JsonBody<AttributesIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let c = Command::SetItemTypeAttributes { item_type: id(ItemTypeId::parse(&item_type))?, attributes: b.attributes };
    done(&st, &p, &ip, key, None, c).await
}

#[utoipa::path(post, path = "/api/item-types", tag = "setup", request_body = ItemTypeIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn item_type_add(
    Caller { st, p, ip, key }: Caller,
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
    done(&st, &p, &ip, key, None, c).await
}

pub(crate) async fn hash(secret: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || qm_app::hash_secret(&secret))
        .await
        .map_err(|e| ApiError::from(AppError::Internal(format!("hashing: {e}"))))?
        .map_err(ApiError::from)
}

#[utoipa::path(post, path = "/api/people", tag = "setup", request_body = PersonIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn person_add(Caller { st, p, ip, key }: Caller, JsonBody(b): JsonBody<PersonIn>) -> Result<Json<WriteOut>, ApiError> {
    let roles = b.roles.iter().map(|r| Role::parse(r)).collect::<Result<Vec<_>, _>>().map_err(ApiError::usage)?;
    let c = Command::RegisterPerson {
        badge: id(Badge::parse(&b.badge))?,
        name: b.name,
        unit: id(UnitId::parse(&b.unit))?,
        roles,
        pin_hash: hash(b.pin).await?,
    };
    done(&st, &p, &ip, key, None, c).await
}

#[utoipa::path(post, path = "/api/people/{badge}/qualifications", tag = "setup", request_body = QualificationIn, params(("badge" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn person_qualify(
    Caller { st, p, ip, key }: Caller,
    Path(badge): Path<String>,
    JsonBody(b): JsonBody<QualificationIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let c = Command::GrantQualification { badge: id(Badge::parse(&badge))?, qualification: b.qualification, expires: date(&b.expires)? };
    done(&st, &p, &ip, key, None, c).await
}

#[derive(Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct RolesIn {
    /// Every role the person holds from now on (docs/permissions.md).
    pub roles: Vec<String>,
}

/// Suspends a person: they may not sign in, act, witness or be issued anything until restored.
#[utoipa::path(post, path = "/api/people/{badge}/suspend", tag = "setup", request_body = ReasonIn, params(("badge" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn person_suspend(
    Caller { st, p, ip, key }: Caller,
    Path(badge): Path<String>,
    JsonBody(b): JsonBody<ReasonIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let change = qm_core::event::PersonChange::Suspended { reason: b.reason };
    done(&st, &p, &ip, key, None, Command::ChangePerson { badge: id(Badge::parse(&badge))?, change }).await
}

#[utoipa::path(post, path = "/api/people/{badge}/restore", tag = "setup", request_body = ReasonIn, params(("badge" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn person_restore(
    Caller { st, p, ip, key }: Caller,
    Path(badge): Path<String>,
    JsonBody(b): JsonBody<ReasonIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let change = qm_core::event::PersonChange::Restored { reason: b.reason };
    done(&st, &p, &ip, key, None, Command::ChangePerson { badge: id(Badge::parse(&badge))?, change }).await
}

#[utoipa::path(post, path = "/api/people/{badge}/roles", tag = "setup", request_body = RolesIn, params(("badge" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn person_roles(
    Caller { st, p, ip, key }: Caller,
    Path(badge): Path<String>,
    JsonBody(b): JsonBody<RolesIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let roles = b.roles.iter().map(|r| Role::parse(r)).collect::<Result<Vec<_>, _>>().map_err(ApiError::usage)?;
    let change = qm_core::event::PersonChange::Roles { roles };
    done(&st, &p, &ip, key, None, Command::ChangePerson { badge: id(Badge::parse(&badge))?, change }).await
}

#[utoipa::path(post, path = "/api/people/{badge}/pin", tag = "setup", request_body = SecretIn, params(("badge" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn person_pin(
    Caller { st, p, ip, key }: Caller,
    Path(badge): Path<String>,
    JsonBody(b): JsonBody<SecretIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let c = Command::SetCredential { badge: id(Badge::parse(&badge))?, kind: CredentialKind::Pin, hash: hash(b.secret).await? };
    done(&st, &p, &ip, key, None, c).await
}

/// A duress PIN for oneself (docs/access.md): at a door terminal it opens the door as the PIN does
/// and silently raises the alarm. It must differ from the PIN.
#[utoipa::path(post, path = "/api/people/{badge}/duress-pin", tag = "setup", request_body = SecretIn, params(("badge" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn person_duress_pin(
    Caller { st, p, ip, key }: Caller,
    Path(badge): Path<String>,
    JsonBody(b): JsonBody<SecretIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let who = id(Badge::parse(&badge))?;
    let w = who.clone();
    let pin = st.site.peek(move |site| site.credential_hash(&w, CredentialKind::Pin)).await??;
    if crate::auth::verify_off_thread(b.secret.clone(), pin).await {
        return Err(ApiError::usage("a duress PIN must differ from the PIN: at the door it must mean something else"));
    }
    let c = Command::SetCredential { badge: who, kind: CredentialKind::Duress, hash: hash(b.secret).await? };
    done(&st, &p, &ip, key, None, c).await
}

#[utoipa::path(post, path = "/api/people/{badge}/password", tag = "setup", request_body = SecretIn, params(("badge" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn person_password(
    Caller { st, p, ip, key }: Caller,
    Path(badge): Path<String>,
    JsonBody(b): JsonBody<SecretIn>,
) -> Result<Json<WriteOut>, ApiError> {
    qm_app::credentials::check_new_password(&b.secret)?;
    let subject = id(Badge::parse(&badge))?;
    let new = hash(b.secret).await?;
    let c = Command::SetCredential { badge: subject.clone(), kind: CredentialKind::Password, hash: new.clone() };
    let out = done(&st, &p, &ip, key, None, c).await?;
    // A new password ends the person's other sessions: whoever held the old one is signed out.
    if !out.replayed {
        let keep = match &p.via {
            Via::Session { id, .. } if p.badge == subject => Some((id.as_str(), new.as_str())),
            _ => None,
        };
        st.auth.end_sessions_of(&subject, keep);
    }
    Ok(out)
}

#[utoipa::path(post, path = "/api/tokens", tag = "setup", request_body = TokenIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = TokenOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn token_issue(Caller { st, p, ip, key }: Caller, JsonBody(b): JsonBody<TokenIn>) -> Result<Json<TokenOut>, ApiError> {
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
        acts_as: opt(&b.acts_as, Badge::parse)?,
    };
    let o = perform(&st, &p, &ip, None, key, c).await?;
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
pub(crate) async fn token_revoke(
    Caller { st, p, ip, key }: Caller,
    Path(token): Path<String>,
    JsonBody(b): JsonBody<ReasonIn>,
) -> Result<Json<WriteOut>, ApiError> {
    done(&st, &p, &ip, key, None, Command::RevokeToken { token, reason: b.reason }).await
}

#[utoipa::path(post, path = "/api/policies/{unit}", tag = "setup", request_body = PolicyIn, params(("unit" = String, Path), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn policy_set(
    Caller { st, p, ip, key }: Caller,
    Path(unit): Path<String>,
    JsonBody(b): JsonBody<PolicyIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let rules = PolicyRules {
        two_person_explosives: b.two_person_explosives,
        two_person_all_movements: b.two_person_all_movements,
        two_person_count_resolution: b.two_person_count_resolution,
        counter_not_keeper: b.counter_not_keeper,
        counter_not_previous: b.counter_not_previous,
        max_issue_quantity: opt(&b.max_issue_quantity, Quantity::parse)?,
        two_person_entry: b.two_person_entry,
        partner_within_min: b.partner_within_min,
        max_inside_min: b.max_inside_min,
        full_count_every_days: b.full_count_every_days,
        // Set by directives for a period (docs/directives.md), not by a unit's standing policy.
        ..PolicyRules::default()
    };
    done(&st, &p, &ip, key, None, Command::SetPolicy { unit: id(UnitId::parse(&unit))?, rules }).await
}

/// Imports a CSV file (the body) of item-types, people, serials or lots: all rows or none.
#[utoipa::path(post, path = "/api/import/{kind}", tag = "setup", request_body(content = String, content_type = "text/csv"), params(("kind" = String, Path)),
    responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn import(
    Caller { st, p, .. }: Caller,
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
    // Read from the body itself: no file on the server, and no server path in any message.
    let actor = p.actor();
    let report = st
        .site
        .call(move |site| {
            let r = qm_app::import::import_from(site, kind, "the request body", &body[..], actor, now(), &mut |_, _| {});
            r.and_then(|r| crate::error::to_json(&r))
        })
        .await;
    Ok(Json(report??))
}
