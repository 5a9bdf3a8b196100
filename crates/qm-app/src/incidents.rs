//! Incident views for the CLI, the API and the pages: each incident with its clocks (the
//! acknowledgment, each report an obligation requires) computed from the books and the time now.

use crate::zone::SiteZone;
use qm_core::books::{Incident, IncidentReport};
use qm_core::event::IncidentObjects;
use qm_core::incidents::{clocks, escalations_due, Clock};
use qm_core::*;
use serde::Serialize;
use time::OffsetDateTime;

#[derive(Clone, Debug, Serialize)]
pub struct IncidentView {
    pub id: String,
    pub kind: String,
    pub severity: String,
    pub state: String,
    pub unit: String,
    /// The unit that must act on it now (its own, or one above after escalation).
    pub responsible: String,
    pub location: Option<String>,
    pub summary: String,
    pub discovered_at: String,
    pub discovered_by: String,
    pub opened_at: String,
    pub acknowledged_at: Option<String>,
    /// Opened by an incident rule (`open[N] on …`), or by hand (None).
    pub rule: Option<String>,
    pub objects: IncidentObjects,
    pub clocks: Vec<Clock>,
    /// Acknowledgment periods passed without one: how many units up it should have gone.
    pub escalations_due: u32,
    pub reports: Vec<IncidentReport>,
    pub resolution: Option<String>,
    pub entries: Vec<u64>,
}

/// What to list.
#[derive(Clone, Debug, Default)]
pub struct IncidentFilter {
    pub open_only: bool,
    pub unit: Option<UnitId>,
    pub kind: Option<IncidentKind>,
}

pub fn view(state: &State, id: &IncidentId, i: &Incident, now: OffsetDateTime) -> IncidentView {
    let zone = SiteZone::of(state);
    let rules = &state.incident_rules.0;
    IncidentView {
        id: id.to_string(),
        kind: i.kind.to_string(),
        severity: i.severity.to_string(),
        state: i.state.to_string(),
        unit: i.unit.to_string(),
        responsible: i.responsible.to_string(),
        location: i.location.as_ref().map(|l| l.to_string()),
        summary: i.summary.clone(),
        discovered_at: zone.show(i.discovered_at),
        discovered_by: i.discovered_by.to_string(),
        opened_at: zone.show(i.opened_at),
        acknowledged_at: i.acknowledged_at.map(|t| zone.show(t)),
        rule: i.rule.clone(),
        objects: i.objects.clone(),
        clocks: clocks(state, rules, i, now),
        escalations_due: escalations_due(rules, i, now),
        reports: i.reports.clone(),
        resolution: i.resolution.clone(),
        entries: i.entries.clone(),
    }
}

/// Incidents by the filter, gravest and newest first; `visible` says which units the reader sees.
pub fn list(state: &State, f: &IncidentFilter, now: OffsetDateTime, visible: &dyn Fn(&UnitId) -> bool) -> Vec<IncidentView> {
    let mut out: Vec<(&IncidentId, &Incident)> = state
        .incidents
        .iter()
        .filter(|(_, i)| visible(&i.unit))
        .filter(|(_, i)| !f.open_only || i.state != IncidentState::Closed)
        .filter(|(_, i)| f.unit.as_ref().is_none_or(|u| state.unit_within(&i.unit, u)))
        .filter(|(_, i)| f.kind.is_none_or(|k| i.kind == k))
        .collect();
    out.sort_by(|a, b| b.1.severity.cmp(&a.1.severity).then(b.1.opened_at.cmp(&a.1.opened_at)));
    out.into_iter().map(|(id, i)| view(state, id, i, now)).collect()
}

/// One incident, or not found.
pub fn show(state: &State, id: &IncidentId, now: OffsetDateTime) -> crate::Result<IncidentView> {
    let i =
        state.incidents.get(id).ok_or_else(|| crate::AppError::Rejected(Rejection::NotFound { what: "incident", id: id.to_string() }))?;
    Ok(view(state, id, i, now))
}
