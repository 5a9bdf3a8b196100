//! Incident views for the CLI, the API and the pages: each incident with its clocks (the
//! acknowledgment, each report an obligation requires) computed from the books and the time now.

use crate::zone::SiteZone;
use qm_core::books::{Incident, IncidentReport};
use qm_core::event::IncidentObjects;
use qm_core::incidents::{clocks, escalations_due};
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
    pub clocks: Vec<ClockView>,
    /// Acknowledgment periods passed without one: how many units up it should have gone.
    pub escalations_due: u32,
    pub reports: Vec<IncidentReport>,
    pub resolution: Option<String>,
    pub entries: Vec<u64>,
    /// Obligations whose report the site recorded as not made by its deadline.
    pub missed: Vec<String>,
}

/// A clock (`qm_core::incidents::Clock`) with its due time in the site's zone.
#[derive(Clone, Debug, Serialize)]
pub struct ClockView {
    /// `acknowledge`, or an obligation's id.
    pub what: String,
    pub to: String,
    /// In the site's zone, for people.
    pub due: String,
    /// RFC 3339, for programs.
    #[serde(with = "time::serde::rfc3339")]
    pub due_at: OffsetDateTime,
    /// `met`, `open`, `missed`.
    pub status: &'static str,
    pub left_s: i64,
    pub source: String,
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
        clocks: clocks(state, rules, i, now)
            .into_iter()
            .map(|c| ClockView {
                due: zone.show(c.due),
                due_at: c.due,
                what: c.what,
                to: c.to,
                status: c.status,
                left_s: c.left_s,
                source: c.source,
            })
            .collect(),
        escalations_due: escalations_due(rules, i, now),
        reports: i.reports.clone(),
        resolution: i.resolution.clone(),
        entries: i.entries.clone(),
        missed: i.missed.clone(),
    }
}

/// Incidents by the filter, gravest and newest first; `visible` says which units the reader sees.
pub fn list(state: &State, f: &IncidentFilter, now: OffsetDateTime, visible: &dyn Fn(&UnitId) -> bool) -> Vec<IncidentView> {
    list_at_most(state, f, now, visible, usize::MAX).0
}

/// The first `limit` of [`list`] (only those get their clocks computed), and how many there are.
pub fn list_at_most(
    state: &State,
    f: &IncidentFilter,
    now: OffsetDateTime,
    visible: &dyn Fn(&UnitId) -> bool,
    limit: usize,
) -> (Vec<IncidentView>, usize) {
    let mut out: Vec<(&IncidentId, &Incident)> = state
        .incidents
        .iter()
        .filter(|(_, i)| visible(&i.unit))
        .filter(|(_, i)| !f.open_only || i.state != IncidentState::Closed)
        .filter(|(_, i)| f.unit.as_ref().is_none_or(|u| state.unit_within(&i.unit, u)))
        .filter(|(_, i)| f.kind.is_none_or(|k| i.kind == k))
        .collect();
    // Gravest first, then newest (by its first entry: several can open at the same moment).
    out.sort_by(|a, b| b.1.severity.cmp(&a.1.severity).then(b.1.entries.first().cmp(&a.1.entries.first())));
    let total = out.len();
    (out.into_iter().take(limit).map(|(id, i)| view(state, id, i, now)).collect(), total)
}

/// One incident, or not found.
pub fn show(state: &State, id: &IncidentId, now: OffsetDateTime) -> crate::Result<IncidentView> {
    let i =
        state.incidents.get(id).ok_or_else(|| crate::AppError::Rejected(Rejection::NotFound { what: "incident", id: id.to_string() }))?;
    Ok(view(state, id, i, now))
}

impl crate::Site {
    /// Escalates, as the site itself, every incident nobody acknowledged in time one unit up
    /// (`qm_core::incidents::escalation_due`), and records each report not made by its deadline
    /// (`missed_deadlines`), raises overdue returns and records directives' missed deadlines
    /// (`qm_core::directives::missed`); the server's clock calls this now and then. Each has its own
    /// idempotency key (incident and level, or incident and obligation): none is recorded twice.
    pub fn escalate_due(&mut self, now: OffsetDateTime) -> crate::Result<Vec<crate::Outcome>> {
        let site = Badge::parse(qm_core::incidents::SITE_ACTOR).map_err(|e| crate::AppError::Internal(e.to_string()))?;
        let state = self.state();
        let reqs: Vec<crate::Request> = qm_core::incidents::overdue(state, now)
            .into_iter()
            .map(|incident| {
                let level = state.incidents.get(&incident).map(|i| qm_core::incidents::levels_up(state, i) + 1);
                let key = format!("escalate-{incident}-{}", level.unwrap_or(0));
                crate::Request::new(site.clone(), Command::EscalateOverdue { incident }, key, now)
            })
            .collect();
        let mut reqs = reqs;
        for (id, i) in &state.incidents {
            for obligation in qm_core::incidents::missed_deadlines(state, i, now) {
                let key = format!("missed-{id}-{obligation}");
                reqs.push(crate::Request::new(site.clone(), Command::RecordMissedDeadline { incident: id.clone(), obligation }, key, now));
            }
        }
        for (badge, (serials, lots, since)) in qm_core::incidents::overdue_holdings(state, now) {
            let mut items: Vec<String> = serials.iter().map(|s| s.to_string()).chain(lots.iter().map(|l| l.to_string())).collect();
            items.push(since.unix_timestamp_nanos().to_string());
            let key = format!("overdue-{badge}-{}", digest_key(&items));
            reqs.push(crate::Request::new(site.clone(), Command::RecordOverdueReturn { badge }, key, now));
        }
        reqs.extend(self.directive_misses(now)?);
        reqs.extend(self.access_alerts(now)?);
        if reqs.is_empty() {
            return Ok(vec![]);
        }
        self.execute_batch(reqs).into_iter().collect()
    }
}

/// A short key for a set of items (the idempotency key of one overdue-return incident).
fn digest_key(items: &[String]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(items.join("\n").as_bytes());
    d.iter().take(8).map(|b| format!("{b:02x}")).collect()
}
