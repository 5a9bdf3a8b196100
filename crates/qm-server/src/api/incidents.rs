//! API: incidents — open one by hand, each step of its life, the list with its clocks, one incident.

use crate::auth::now;
use crate::edge::*;
use crate::error::{ApiError, ErrorBody};
use crate::scope::sees;
use axum::extract::{Path, Query};
use axum::Json;
use qm_app::incidents::{self, IncidentFilter};
use qm_core::event::{IncidentAction, IncidentObjects};
use qm_core::*;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, ToSchema, Debug)]
#[serde(deny_unknown_fields)]
pub struct IncidentIn {
    /// loss, theft, count_discrepancy, excursion, unauthorized_access, door_forced, door_held_open,
    /// safety_refusal, overdue_return, directive_missed, accident, other
    pub kind: String,
    /// low, medium, high, critical
    pub severity: String,
    pub unit: String,
    pub location: Option<String>,
    #[serde(default)]
    pub serials: Vec<String>,
    #[serde(default)]
    pub lots: Vec<String>,
    #[serde(default)]
    pub badges: Vec<String>,
    pub summary: String,
    /// RFC 3339; default now.
    pub discovered_at: Option<String>,
}

/// The body of a step; which fields it needs depends on the step (docs/incidents.md).
#[derive(Deserialize, ToSchema, Debug, Default)]
#[serde(deny_unknown_fields)]
pub struct StepIn {
    pub text: Option<String>,
    pub to: Option<String>,
    pub reason: Option<String>,
    pub obligation: Option<String>,
    pub authority: Option<String>,
    pub reference: Option<String>,
    /// When the report was made (RFC 3339); default now.
    pub at: Option<String>,
    pub resolution: Option<String>,
    pub witness: Option<WitnessIn>,
}

#[derive(Deserialize, IntoParams, Debug)]
#[serde(deny_unknown_fields)]
pub struct IncidentsQuery {
    /// Only incidents not closed.
    pub open: Option<bool>,
    pub unit: Option<String>,
    pub kind: Option<String>,
}

pub(crate) fn rfc3339(s: &str) -> Result<time::OffsetDateTime, ApiError> {
    id(parse_time(s))
}

fn list_of<T>(v: &[String], f: impl Fn(&str) -> Result<T, IdError>) -> Result<Vec<T>, ApiError> {
    v.iter().map(|s| id(f(s))).collect()
}

/// The command an incident's fields make (shared with the incidents page).
pub fn open_command(b: &IncidentIn) -> Result<Command, ApiError> {
    Ok(Command::OpenIncident {
        kind: id(IncidentKind::parse(&b.kind))?,
        severity: id(Severity::parse(&b.severity))?,
        unit: id(UnitId::parse(&b.unit))?,
        location: opt(&b.location, LocationId::parse)?,
        objects: IncidentObjects {
            serials: list_of(&b.serials, Serial::parse)?,
            lots: list_of(&b.lots, LotNo::parse)?,
            badges: list_of(&b.badges, Badge::parse)?,
            ..Default::default()
        },
        summary: b.summary.clone(),
        discovered_at: b.discovered_at.as_deref().map(rfc3339).transpose()?,
    })
}

/// The action a step's name and body make.
pub fn step_action(step: &str, b: &StepIn) -> Result<IncidentAction, ApiError> {
    let need = |v: &Option<String>, what: &str| {
        v.clone().filter(|x| !x.trim().is_empty()).ok_or_else(|| ApiError::usage(format!("{step} needs `{what}`")))
    };
    Ok(match step {
        "acknowledge" | "ack" => IncidentAction::Acknowledge,
        "investigate" => IncidentAction::Investigate,
        "note" => IncidentAction::Note { text: need(&b.text, "text")? },
        "escalate" => IncidentAction::Escalate { to: id(UnitId::parse(&need(&b.to, "to")?))?, reason: need(&b.reason, "reason")? },
        "report" => IncidentAction::Report {
            obligation: need(&b.obligation, "obligation")?,
            authority: need(&b.authority, "authority")?,
            reference: need(&b.reference, "reference")?,
            at: match &b.at {
                Some(t) => rfc3339(t)?,
                None => now(),
            },
        },
        "close" => IncidentAction::Close { resolution: need(&b.resolution, "resolution")? },
        "reopen" => IncidentAction::Reopen { reason: need(&b.reason, "reason")? },
        other => {
            return Err(ApiError::usage(format!("{other:?}: a step is acknowledge, investigate, note, escalate, report, close or reopen")))
        }
    })
}

#[utoipa::path(post, path = "/api/incidents", tag = "incidents", request_body = IncidentIn, params(("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn incident_open(
    Caller { st, p, ip, key }: Caller,
    JsonBody(b): JsonBody<IncidentIn>,
) -> Result<Json<WriteOut>, ApiError> {
    done(&st, &p, &ip, key, None, open_command(&b)?).await
}

#[utoipa::path(post, path = "/api/incidents/{id}/{step}", tag = "incidents", request_body = StepIn,
    params(("id" = String, Path), ("step" = String, Path, description = "acknowledge, investigate, note, escalate, report, close, reopen"), ("Idempotency-Key" = Option<String>, Header)),
    responses((status = 200, body = WriteOut), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn incident_step(
    Caller { st, p, ip, key }: Caller,
    Path((incident, step)): Path<(String, String)>,
    JsonBody(b): JsonBody<StepIn>,
) -> Result<Json<WriteOut>, ApiError> {
    let action = step_action(&step, &b)?;
    let c = Command::UpdateIncident { incident: id(IncidentId::parse(&incident))?, action };
    done(&st, &p, &ip, key, b.witness, c).await
}

#[utoipa::path(get, path = "/api/incidents", tag = "incidents", params(IncidentsQuery), responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn incidents_list(
    Caller { st, p, .. }: Caller,
    Query(q): Query<IncidentsQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let f =
        IncidentFilter { open_only: q.open.unwrap_or(false), unit: opt(&q.unit, UnitId::parse)?, kind: opt(&q.kind, IncidentKind::parse)? };
    read(&st, move |site| {
        let s = site.state();
        let v = incidents::list(s, &f, now(), &|u| sees(s, &p, Some(u)));
        Ok(Json(crate::error::to_json(v)?))
    })
    .await
}

#[utoipa::path(get, path = "/api/incidents/{id}", tag = "incidents", params(("id" = String, Path)), responses((status = 200, body = serde_json::Value), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn incident_show(Caller { st, p, .. }: Caller, Path(incident): Path<String>) -> Result<Json<serde_json::Value>, ApiError> {
    let i = id(IncidentId::parse(&incident))?;
    let pp = p.clone();
    let (v, visible) = read(&st, move |site| {
        let s = site.state();
        let v = incidents::show(s, &i, now())?;
        let unit = s.incidents.get(&i).map(|x| x.unit.clone());
        Ok((v, sees(s, &pp, unit.as_ref())))
    })
    .await?;
    if !visible {
        return Err(deny_read(&st, &p, &format!("incident {incident}")).await);
    }
    Ok(Json(crate::error::to_json(v)?))
}

/// What the signed-in person's incident badge shows (polled by the pages every 30 s).
#[derive(serde::Serialize, ToSchema, Debug)]
pub struct IncidentSummary {
    /// Not closed, in the principal's subtree.
    pub open: usize,
    /// Of those, not yet acknowledged.
    pub unacknowledged: usize,
    /// Their clocks missed (an acknowledgment or a report).
    pub clocks_missed: usize,
}

#[utoipa::path(get, path = "/api/incidents/summary", tag = "incidents", responses((status = 200, body = IncidentSummary), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn incidents_summary(Caller { st, p, .. }: Caller) -> Result<Json<IncidentSummary>, ApiError> {
    read(&st, move |site| {
        let s = site.state();
        let f = IncidentFilter { open_only: true, ..Default::default() };
        let open = incidents::list(s, &f, now(), &|u| sees(s, &p, Some(u)));
        Ok(Json(IncidentSummary {
            open: open.len(),
            unacknowledged: open.iter().filter(|v| v.acknowledged_at.is_none()).count(),
            clocks_missed: open.iter().map(|v| v.clocks.iter().filter(|c| c.status == "missed").count()).sum(),
        }))
    })
    .await
}
