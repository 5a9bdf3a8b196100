//! The dashboard: per unit what is out, overdue, open counts and discrepancies, magazines near their limit, and the ledger's state.

use crate::auth::now;
use crate::reads::safety::*;
use crate::scope::{self};
use crate::views::page;
use crate::web::*;
use axum::response::IntoResponse;
use maud::html;
use qm_core::*;
use time::Duration;

/// Custody held longer than this is an overdue return.
pub const OVERDUE_AFTER_H: i64 = 24;

pub(crate) struct UnitRow {
    pub(crate) unit: UnitId,
    pub(crate) name: String,
    pub(crate) depth: usize,
    pub(crate) discrepancies: usize,
    pub(crate) overdue: usize,
    pub(crate) in_transit: usize,
    pub(crate) people: usize,
    pub(crate) magazines_near: usize,
}

pub(crate) fn unit_rows(s: &qm_core::State, scope_unit: &UnitId, at: time::OffsetDateTime) -> Vec<UnitRow> {
    let mut out = vec![];
    let mut stack = vec![(scope_unit.clone(), 0usize)];
    let overdue_before = at - Duration::hours(OVERDUE_AFTER_H);
    while let Some((u, depth)) = stack.pop() {
        let Some(unit) = s.units.get(&u) else { continue };
        let within = |x: &UnitId| s.unit_within(x, &u);
        let discrepancies = s
            .discrepancies
            .values()
            .filter(|d| d.resolution.is_none() && scope::discrepancy_units(s, &d.facts).iter().flatten().any(within))
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
        let people = s.people.values().filter(|p| p.unit == u).count();
        let magazines_near = near_limit(s, &u);
        out.push(UnitRow { unit: u.clone(), name: unit.name.clone(), depth, discrepancies, overdue, in_transit, people, magazines_near });
        let mut children: Vec<&UnitId> = s.units.iter().filter(|(_, x)| x.parent.as_ref() == Some(&u)).map(|(k, _)| k).collect();
        children.sort();
        for c in children.into_iter().rev() {
            stack.push((c.clone(), depth + 1));
        }
    }
    out
}

/// Size and age of the latest checkpoint, and the ledger's size.
pub(crate) struct LedgerStatus {
    pub(crate) size: u64,
    pub(crate) checkpoint_size: u64,
    pub(crate) checkpoint_age: Option<String>,
}

pub(crate) fn ledger_status(site: &qm_app::Site) -> LedgerStatus {
    let cps = site.store().checkpoints().unwrap_or_default();
    let last = cps.last();
    // The checkpoint's time is the time of the last entry it covers.
    let age = last.and_then(|c| c.size.checked_sub(1)).and_then(|seq| site.envelope(seq).ok()).map(|e| age(now() - e.at));
    LedgerStatus { size: site.size(), checkpoint_size: last.map(|c| c.size).unwrap_or(0), checkpoint_age: age }
}

pub(crate) fn age(d: Duration) -> String {
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

pub(crate) async fn dashboard(Visitor { st, p, .. }: Visitor) -> WebResult {
    let pp = p.clone();
    let (rows, ls) = st.site.call(move |site| (unit_rows(site.state(), &pp.unit, now()), ledger_status(site))).await?;
    let body = html! {
        p.lead {
            "Ledger: " strong { (ls.size) " entries" } "; latest signed checkpoint covers " strong #cp-size { (ls.checkpoint_size) }
            @if let Some(a) = &ls.checkpoint_age { " (last entry it covers: " (a) " ago)" }
            @if ls.checkpoint_size < ls.size { span.warn { " · " (ls.size - ls.checkpoint_size) " entries not yet checkpointed" } }
        }
        table #units {
            thead { tr { th { "Unit" } th.n { "Open discrepancies" } th.n { "Overdue returns (> " (OVERDUE_AFTER_H) " h)" } th.n { "Transfers in transit" } th.n { "Magazines near a limit" } th.n { "Staff" } th { "" } } }
            tbody {
                @for r in &rows {
                    tr {
                        td { span class=(format!("d{}", r.depth.min(4))) { strong { (r.unit) } " " (r.name) } }
                        td.n.(flag(r.discrepancies)) { (r.discrepancies) }
                        td.n.(flag(r.overdue)) { (r.overdue) }
                        td.n.(flag(r.in_transit)) { (r.in_transit) }
                        td.n.(flag(r.magazines_near)) { @if r.magazines_near > 0 { a href=(format!("/magazines?unit={}", r.unit)) { (r.magazines_near) } } @else { (r.magazines_near) } }
                        td.n { (r.people) }
                        td { a href=(format!("/stock?unit={}", r.unit)) { "stock" } }
                    }
                }
            }
        }
        p.hint { "Each row counts its whole subtree. Checkpoints are signed for the whole site (one ledger)." }
    };
    Ok(page("Dashboard", Some(&p), "Dashboard", body).into_response())
}

pub(crate) fn flag(n: usize) -> &'static str {
    if n > 0 {
        "bad"
    } else {
        "good"
    }
}
