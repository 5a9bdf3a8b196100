//! Counts as a list and as a schedule (docs/counts.md): every count with its unit, place, kind,
//! counter, times and result, newest first; and per armory, depot and magazine, its last full count
//! and when the next is due under the policy's `full_count_every_days`.

use qm_core::{CountKind, LocationKind, State};
use serde::Serialize;
use time::{Duration, OffsetDateTime};

/// One count in the list.
#[derive(Clone, Debug, Serialize)]
pub struct CountRow {
    pub count: String,
    pub unit: String,
    /// The place counted (and everything inside it): its id and name.
    pub place: String,
    pub place_name: String,
    pub kind: String,
    pub blind: bool,
    pub counter: String,
    pub opened: String,
    pub closed: Option<String>,
    /// `open`, `no discrepancy`, or how many discrepancies and whether they are resolved.
    pub result: String,
    #[serde(skip)]
    opened_at: OffsetDateTime,
}

/// Every count, newest first (by when it was opened; the same minute by its number).
pub fn list(state: &State) -> Vec<CountRow> {
    let zone = crate::zone::SiteZone::of(state);
    let mut rows: Vec<CountRow> = state
        .counts
        .iter()
        .map(|(id, c)| {
            let place = state.locations.get(&c.root);
            let open = c.discrepancies.iter().filter(|d| state.discrepancies.get(*d).is_some_and(|x| x.resolution.is_none())).count();
            let result = match (c.closed, c.discrepancies.len()) {
                (false, _) => "open".to_string(),
                (true, 0) => "no discrepancy".to_string(),
                (true, n) => {
                    let what = if n == 1 { "discrepancy" } else { "discrepancies" };
                    if open == 0 {
                        format!("{n} {what}, resolved")
                    } else {
                        format!("{n} {what}, {open} open")
                    }
                }
            };
            CountRow {
                count: id.to_string(),
                unit: place.map(|l| l.unit.to_string()).unwrap_or_default(),
                place: c.root.to_string(),
                place_name: place.map(|l| l.name.clone()).unwrap_or_default(),
                kind: c.kind.to_string(),
                blind: c.blind,
                counter: c.counter.to_string(),
                opened: zone.show(c.started_at),
                closed: c.closed.then(|| c.closed_at.map(|t| zone.show(t)).unwrap_or_else(|| "yes".into())),
                result,
                opened_at: c.started_at,
            }
        })
        .collect();
    let number = |id: &str| id.rsplit('-').next().and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
    rows.sort_by_key(|r| std::cmp::Reverse((r.opened_at, number(&r.count))));
    rows
}

/// An armory, depot or magazine in the count schedule.
#[derive(Clone, Debug, Serialize)]
pub struct PlaceDue {
    pub place: String,
    pub name: String,
    pub kind: String,
    pub unit: String,
    /// The last closed full count that covered it (rooted there or at a place containing it).
    pub last_full: Option<String>,
    pub last_full_at: Option<String>,
    /// The policy's `full_count_every_days` at its unit; none: no schedule.
    pub every_days: Option<u16>,
    pub next_due: Option<String>,
    pub overdue: bool,
}

/// Each armory, depot and magazine: its last full count and when the next is due; overdue first.
pub fn schedule(state: &State, now: OffsetDateTime) -> Vec<PlaceDue> {
    let zone = crate::zone::SiteZone::of(state);
    let stores = [LocationKind::Armory, LocationKind::Depot, LocationKind::Magazine];
    let mut out: Vec<PlaceDue> = state
        .locations
        .iter()
        .filter(|(_, l)| stores.contains(&l.kind))
        .map(|(id, l)| {
            let last = state
                .counts
                .iter()
                .filter(|(_, c)| c.closed && c.kind == CountKind::Full && state.location_within(id, &c.root))
                .map(|(cid, c)| (c.closed_at.unwrap_or(c.started_at), cid))
                .max();
            let every = state.effective_policy(&l.unit, now).0.full_count_every_days;
            // Never counted in full: due now.
            let due = every.map(|d| last.map_or(now, |(at, _)| at + Duration::days(i64::from(d))));
            PlaceDue {
                place: id.to_string(),
                name: l.name.clone(),
                kind: l.kind.to_string(),
                unit: l.unit.to_string(),
                last_full: last.map(|(_, c)| c.to_string()),
                last_full_at: last.map(|(at, _)| zone.show(at)),
                every_days: every,
                next_due: due.map(|t| zone.show(t)),
                overdue: due.is_some_and(|t| t <= now),
            }
        })
        .collect();
    out.sort_by(|a, b| (!a.overdue, &a.unit, &a.place).cmp(&(!b.overdue, &b.unit, &b.place)));
    out
}
