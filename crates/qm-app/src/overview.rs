//! The headquarters overview, for the dashboard: per unit over its whole subtree, the open
//! discrepancies, overdue returns, transfers in transit, magazines near a limit and staff; and the
//! ledger's size beside its latest signed checkpoint. Read views over the books, no I/O of their own.

use qm_core::*;
use serde::Serialize;
use time::Duration;

#[derive(Clone, Debug, Serialize)]
pub struct UnitRow {
    pub unit: UnitId,
    pub name: String,
    pub depth: usize,
    pub discrepancies: usize,
    pub overdue: usize,
    pub in_transit: usize,
    pub people: usize,
    pub magazines_near: usize,
    /// Incidents not closed, by severity (low, medium, high, critical).
    pub incidents: [usize; 4],
    /// Clocks of those incidents missed or due within `AT_RISK_H` hours.
    pub clocks_at_risk: usize,
}

/// A clock due within this many hours is at risk on the dashboard.
pub const AT_RISK_H: i64 = 2;

/// Incidents not closed in `within`'s units, by severity, and their clocks missed or at risk.
fn incident_counts(s: &State, within: &dyn Fn(&UnitId) -> bool, at: time::OffsetDateTime) -> ([usize; 4], usize) {
    let mut by = [0usize; 4];
    let mut risk = 0;
    for i in s.incidents.values().filter(|i| i.state != IncidentState::Closed && within(&i.unit)) {
        by[i.severity as usize] += 1;
        let clocks = qm_core::incidents::clocks(s, &s.incident_rules.0, i, at);
        risk += clocks.iter().filter(|c| c.status == "missed" || (c.status == "open" && c.left_s < AT_RISK_H * 3600)).count();
    }
    (by, risk)
}

pub fn unit_rows(s: &State, scope_unit: &UnitId, at: time::OffsetDateTime) -> Vec<UnitRow> {
    let mut out = vec![];
    let mut stack = vec![(scope_unit.clone(), 0usize)];
    let overdue_before = at - Duration::hours(i64::from(s.incident_rules.0.overdue_after_h()));
    while let Some((u, depth)) = stack.pop() {
        let Some(unit) = s.units.get(&u) else { continue };
        let within = |x: &UnitId| s.unit_within(x, &u);
        let discrepancies = s
            .discrepancies
            .values()
            .filter(|d| d.resolution.is_none() && qm_core::decide::scope::discrepancy_units(s, &d.facts).iter().flatten().any(within))
            .count();
        let person_within = |b: &Badge| s.people.get(b).is_some_and(|p| within(&p.unit));
        let overdue = s
            .serials
            .values()
            .filter(|si| matches!(&si.account, Account::Person(b) if person_within(b)) && si.since < overdue_before)
            .count()
            + s.balances
                .iter()
                .filter(|((a, _), b)| {
                    matches!(a, Account::Person(x) if person_within(x)) && b.quantity.is_positive() && b.since < overdue_before
                })
                .count();
        let in_transit =
            s.transfers.values().filter(|t| t.received_at_location.is_none() && (within(&t.from_unit) || within(&t.to_unit))).count();
        // Like every column, over the whole subtree (the dashboard's hint says so).
        let people = s.people.values().filter(|p| within(&p.unit)).count();
        let magazines_near = magazines_near(s, &u);
        let (incidents, clocks_at_risk) = incident_counts(s, &within, at);
        let name = unit.name.clone();
        out.push(UnitRow {
            unit: u.clone(),
            name,
            depth,
            discrepancies,
            overdue,
            in_transit,
            people,
            magazines_near,
            incidents,
            clocks_at_risk,
        });
        let mut children: Vec<&UnitId> = s.units.iter().filter(|(_, x)| x.parent.as_ref() == Some(&u)).map(|(k, _)| k).collect();
        children.sort();
        for c in children.into_iter().rev() {
            stack.push((c.clone(), depth + 1));
        }
    }
    out
}

/// Size and age of the latest checkpoint, and the ledger's size.
#[derive(Clone, Debug, Serialize)]
pub struct LedgerStatus {
    pub size: u64,
    pub checkpoint_size: u64,
    pub checkpoint_age: Option<String>,
}

pub fn ledger_status(site: &crate::Site, now: time::OffsetDateTime) -> LedgerStatus {
    let cps = site.store().checkpoints().unwrap_or_default();
    let last = cps.last();
    // The checkpoint's time is the time of the last entry it covers.
    let age = last.and_then(|c| c.size.checked_sub(1)).and_then(|seq| site.envelope(seq).ok()).map(|e| age(now - e.at));
    LedgerStatus { size: site.size(), checkpoint_size: last.map(|c| c.size).unwrap_or(0), checkpoint_age: age }
}

pub fn age(d: Duration) -> String {
    let m = d.whole_minutes();
    if m < 1 {
        "under a minute".into()
    } else if m < 120 {
        format!("{m} min")
    } else if m < 48 * 60 {
        format!("{} h", m / 60)
    } else {
        format!("{} days", m / 1440)
    }
}

/// How many magazines and depots in `unit`'s subtree hold 90 % or more of a limit (the dashboard's column).
pub fn magazines_near(s: &State, unit: &UnitId) -> usize {
    crate::magazines::magazines(s, Some(unit)).iter().filter(|m| m.warning.is_some()).count()
}
