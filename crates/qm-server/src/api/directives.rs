//! API: directives — issue one, each step under it (acknowledge, relay, brief, sign off, extend,
//! cancel), the list, one directive, its compliance (JSON and CSV), and the banner of those in
//! force over the signed-in person (docs/directives.md).

use crate::auth::now;
use crate::edge::*;
use crate::error::{ApiError, ErrorBody};
use crate::scope::sees;
use crate::AppState;
use axum::extract::{Path, Query};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use qm_app::directives::{self as dirs, DirectiveFilter};
use qm_core::directives::Measure;
use qm_core::event::DirectiveAction;
use qm_core::*;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct DirectiveIn {
    pub unit: String,
    /// Parts of the unit's subtree it applies to (default: all of it).
    #[serde(default)]
    pub applies_to: Vec<String>,
    pub title: String,
    /// The order in the issuer's words.
    pub text: String,
    /// A posture level of the organization (shipped: normal, heightened, high, maximum).
    pub posture: String,
    /// RFC 3339; default now.
    pub starts_at: Option<String>,
    /// RFC 3339; or `days`.
    pub ends_at: Option<String>,
    pub days: Option<u32>,
    /// Each as text: two-person, rounds-cap=N, transfer-freeze=ROLE, issue-hours=HH:MM-HH:MM,
    /// counter-not-keeper, blind-counts, count=Nh[/Md], transfer-review=Nh/Md, storage-review=Nh/Mh, access-review=Nh.
    #[serde(default)]
    pub measures: Vec<String>,
}

/// The body of a step; which fields it needs depends on the step (docs/directives.md).
#[derive(Deserialize, ToSchema, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct DirectiveStepIn {
    pub unit: Option<String>,
    pub text: Option<String>,
    #[serde(default)]
    pub measures: Vec<String>,
    pub task: Option<String>,
    pub note: Option<String>,
    /// Transfers a transfer review raises as discrepancies: `T-3: why` (sign_off).
    #[serde(default)]
    pub raise: Vec<String>,
    /// RFC 3339 (extend).
    pub ends_at: Option<String>,
    pub reason: Option<String>,
}

#[derive(Deserialize, IntoParams, Debug)]
#[serde(deny_unknown_fields)]
pub struct DirectivesQuery {
    pub in_force: Option<bool>,
    pub unit: Option<String>,
}

fn measures(v: &[String]) -> Result<Vec<Measure>, ApiError> {
    v.iter().map(|m| Measure::parse(m).map_err(ApiError::usage)).collect()
}

/// The command a directive's fields make (shared with the directives page).
pub fn issue_command(b: &DirectiveIn) -> Result<Command, ApiError> {
    let starts_at = b.starts_at.as_deref().filter(|s| !s.trim().is_empty()).map(super::incidents::rfc3339).transpose()?;
    let ends_at = match (b.ends_at.as_deref().filter(|s| !s.trim().is_empty()), b.days) {
        (Some(e), _) => super::incidents::rfc3339(e)?,
        (None, Some(d)) if (1..=366).contains(&d) => starts_at.unwrap_or_else(now) + time::Duration::days(i64::from(d)),
        _ => return Err(ApiError::usage("say when it ends: `ends_at` (RFC 3339) or `days` (1 to 366)")),
    };
    Ok(Command::IssueDirective {
        unit: id(UnitId::parse(&b.unit))?,
        applies_to: b.applies_to.iter().map(|u| id(UnitId::parse(u))).collect::<Result<_, _>>()?,
        title: b.title.clone(),
        text: b.text.clone(),
        posture: b.posture.clone(),
        starts_at,
        ends_at,
        measures: measures(&b.measures)?,
    })
}

/// The action a step's name and body make.
pub fn step_action(step: &str, b: &DirectiveStepIn, me: &UnitId) -> Result<DirectiveAction, ApiError> {
    let need = |v: &Option<String>, what: &str| {
        v.clone().filter(|x| !x.trim().is_empty()).ok_or_else(|| ApiError::usage(format!("{step} needs `{what}`")))
    };
    let unit = || -> Result<UnitId, ApiError> { id(UnitId::parse(&need(&b.unit, "unit")?)) };
    Ok(match step {
        "acknowledge" | "ack" => DirectiveAction::Acknowledge { unit: unit()? },
        "relay" => DirectiveAction::Relay { unit: unit()?, text: need(&b.text, "text")?, measures: measures(&b.measures)? },
        "brief" => DirectiveAction::Brief {
            unit: match &b.unit {
                Some(u) => id(UnitId::parse(u))?,
                None => me.clone(),
            },
        },
        "sign_off" | "sign-off" => DirectiveAction::SignOff {
            unit: unit()?,
            task: need(&b.task, "task")?,
            reviewed: vec![],
            note: need(&b.note, "note")?,
            raised: b.raise.clone(),
        },
        "extend" => DirectiveAction::Extend {
            ends_at: super::incidents::rfc3339(&need(&b.ends_at, "ends_at")?)?,
            reason: need(&b.reason, "reason")?,
        },
        "cancel" => DirectiveAction::Cancel { reason: need(&b.reason, "reason")? },
        other => {
            return Err(ApiError::usage(format!("{other:?}: a step is acknowledge, relay, brief, sign_off, extend or cancel")));
        }
    })
}

#[utoipa::path(post, path = "/api/directives", tag = "directives", request_body = DirectiveIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn directive_issue(
    Caller { st, p, ip, key }: Caller,
    JsonBody(b): JsonBody<DirectiveIn>,
) -> Result<Json<WriteOut>, ApiError> {
    done(&st, &p, &ip, key, None, issue_command(&b)?).await
}

#[utoipa::path(post, path = "/api/directives/{id}/{step}", tag = "directives", request_body = DirectiveStepIn,
    params(("id" = String, Path), ("step" = String, Path, description = "acknowledge, relay, brief, sign_off, extend, cancel"), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn directive_step(
    Caller { st, p, ip, key }: Caller,
    Path((directive, step)): Path<(String, String)>,
    JsonBody(b): JsonBody<DirectiveStepIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let action = step_action(&step, &b, &p.unit)?;
    let c = Command::UpdateDirective { directive: id(DirectiveId::parse(&directive))?, action };
    done(&st, &p, &ip, key, None, c).await
}

#[utoipa::path(get, path = "/api/directives", tag = "directives", params(DirectivesQuery), responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn directives_list(
    Caller { st, p, .. }: Caller,
    Query(q): Query<DirectivesQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let f = DirectiveFilter { in_force: q.in_force.unwrap_or(false), unit: opt(&q.unit, UnitId::parse)? };
    read(&st, move |site| {
        let s = site.state();
        Ok(Json(crate::error::to_json(dirs::list(s, &f, now(), &|u| sees(s, &p, Some(u))))?))
    })
    .await
}

/// Whether the principal may read a directive: its issuing unit or a unit it concerns is theirs.
fn visible(s: &State, p: &crate::auth::Principal, d: &DirectiveId) -> bool {
    s.directives
        .get(d)
        .is_some_and(|x| sees(s, p, Some(&x.unit)) || qm_core::directives::units_concerned(s, x).iter().any(|u| sees(s, p, Some(u))))
}

#[utoipa::path(get, path = "/api/directives/{id}", tag = "directives", params(("id" = String, Path)), responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn directive_show(
    Caller { st, p, .. }: Caller,
    Path(directive): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let d = id(DirectiveId::parse(&directive))?;
    let pp = p.clone();
    let (v, ok) = read(&st, move |site| {
        let s = site.state();
        let x = dirs::get(s, &d)?;
        Ok((dirs::view(s, &d, x, now()), visible(s, &pp, &d)))
    })
    .await?;
    if !ok {
        return Err(deny_read(&st, &p, &format!("directive {directive}")).await);
    }
    Ok(Json(crate::error::to_json(v)?))
}

/// The compliance report, within the principal's subtree.
pub(crate) async fn compliance_of(st: &AppState, p: &crate::auth::Principal, directive: &str) -> Result<dirs::Compliance, ApiError> {
    let d = id(DirectiveId::parse(directive))?;
    let pp = p.clone();
    let (c, ok) = read(st, move |site| {
        let s = site.state();
        dirs::get(s, &d)?;
        let ok = visible(s, &pp, &d);
        Ok((dirs::compliance(s, &d, now(), &pp.unit)?, ok))
    })
    .await?;
    if !ok {
        return Err(deny_read(st, p, &format!("directive {directive}")).await);
    }
    Ok(c)
}

#[utoipa::path(get, path = "/api/directives/{id}/compliance", tag = "directives", params(("id" = String, Path)), responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn directive_compliance(
    Caller { st, p, .. }: Caller,
    Path(directive): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    Ok(Json(crate::error::to_json(compliance_of(&st, &p, &directive).await?)?))
}

#[utoipa::path(get, path = "/api/directives/{id}/compliance.csv", tag = "directives", params(("id" = String, Path)),
    responses((status = 200, body = String, content_type = "text/csv"), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn directive_compliance_csv(Caller { st, p, .. }: Caller, Path(directive): Path<String>) -> Result<Response, ApiError> {
    let c = compliance_of(&st, &p, &directive).await?;
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], dirs::compliance_csv(&c)).into_response())
}

#[utoipa::path(get, path = "/api/directives/banner", tag = "directives", responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn directives_banner(Caller { st, p, .. }: Caller) -> Result<Json<serde_json::Value>, ApiError> {
    read(&st, move |site| Ok(Json(crate::error::to_json(dirs::banner(site.state(), &p.unit, &p.badge, now()))?))).await
}

pub(crate) fn routes() -> axum::Router<AppState> {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/api/directives", get(directives_list).post(directive_issue))
        .route("/api/directives/banner", get(directives_banner))
        .route("/api/directives/{id}", get(directive_show))
        .route("/api/directives/{id}/compliance", get(directive_compliance))
        .route("/api/directives/{id}/compliance.csv", get(directive_compliance_csv))
        .route("/api/directives/{id}/{step}", post(directive_step))
}
