//! Read views under the principal's scope: what the API and the pages show a person of a unit
//! (their subtree; HQ sees everything), built from `qm_app::query`. A read outside the subtree is refused and recorded.

pub mod safety;

use crate::auth::Principal;
use crate::error::ApiError;
use crate::scope::{self, sees};
use qm_app::query::{self, StockFilter};
use qm_core::*;

/// Most log lines one request returns.
pub const LOG_LIMIT_MAX: usize = 10_000;

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

/// The counts this person may see, newest first, and the count schedule of the places they see.
pub fn count_list_for(s: &qm_core::State, p: &Principal, now: time::OffsetDateTime) -> CountList {
    let counts = qm_app::counts::list(s).into_iter().filter(|c| sees_unit(s, p, &c.unit)).collect();
    CountList { counts, schedule: schedule_for(s, p, now) }
}

/// The count schedule of the places this person sees (the dashboard needs only this).
pub fn schedule_for(s: &qm_core::State, p: &Principal, now: time::OffsetDateTime) -> Vec<qm_app::counts::PlaceDue> {
    qm_app::counts::schedule(s, now).into_iter().filter(|c| sees_unit(s, p, &c.unit)).collect()
}

fn sees_unit(s: &qm_core::State, p: &Principal, unit: &str) -> bool {
    sees(s, p, qm_core::UnitId::parse(unit).ok().as_ref())
}

pub struct CountList {
    pub counts: Vec<qm_app::counts::CountRow>,
    pub schedule: Vec<qm_app::counts::PlaceDue>,
}

pub fn discrepancies_for(s: &qm_core::State, p: &Principal, all: bool) -> Vec<query::DiscrepancyView> {
    s.discrepancies
        .iter()
        .filter(|(_, d)| all || d.resolution.is_none())
        .filter(|(_, d)| scope::discrepancy_units(s, &d.facts).iter().flatten().any(|u| s.unit_within(u, &p.unit)) || p.at_root)
        .filter_map(|(id, _)| query::discrepancy_view(s, id))
        .collect()
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
