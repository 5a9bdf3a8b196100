//! Storage safety rules, checked on every movement into a magazine or depot (or a place inside one):
//! hazard divisions and compatibility groups the licence allows, the mixing chart, and the aggregated
//! NEQ against the licence and against quantity-distance. The figures come from `qm_safety` tables.

use super::Rejection;
use crate::event::{Event, Line};
use crate::ids::*;
use crate::model::*;
use crate::quantity::Quantity;
use crate::state::State;
use std::collections::{BTreeMap, BTreeSet};

fn refuse<T>(rule: &'static str, message: String) -> Result<T, Rejection> {
    Err(Rejection::Refused { rule, message })
}

/// What one item type contributes to a store.
struct Part {
    division: String,
    group: char,
    neq_kg: f64,
    classification: qm_safety::Classification,
    attributes: Vec<String>,
    /// Held before the movement.
    before: bool,
}

/// A label for an item type in a store, naming one of its lots there: "TNT-BLOCK 1.1D (lot TNT-3)".
fn label(state: &State, store: &LocationId, item_type: &ItemTypeId, incoming: &[Line]) -> String {
    let code = state.item_types.get(item_type).and_then(|t| t.un_code.clone()).unwrap_or_default();
    let name = state.item_types.get(item_type).map(|t| t.name.clone()).unwrap_or_else(|| item_type.to_string());
    let lot = incoming
        .iter()
        .find_map(|l| match l {
            Line::Lot { lot, item_type: t, .. } if t == item_type => Some(lot.clone()),
            _ => None,
        })
        .or_else(|| {
            // Only on a refusal: find a lot of that type held in the store.
            let places = state.location_subtree(store);
            state.balances.iter().find_map(|((a, lot), b)| match a {
                Account::Location(l)
                    if places.contains(l) && b.quantity.is_positive() && state.lots.get(lot).is_some_and(|x| &x.item_type == item_type) =>
                {
                    Some(lot.clone())
                }
                _ => None,
            })
        });
    match lot {
        Some(l) => format!("{name} {code} (lot {l})"),
        None => format!("{name} {code}"),
    }
}

/// Checks that a movement into `to` leaves its magazine or depot safe. Movements within one store
/// change nothing there and pass.
pub fn check_movement(state: &State, from: &Account, to: &Account, lines: &[Line]) -> Result<(), Rejection> {
    let Account::Location(dest) = to else { return Ok(()) };
    let Some(store_id) = state.enclosing_store(dest) else { return Ok(()) };
    if let Account::Location(src) = from {
        if state.enclosing_store(src) == Some(store_id) {
            return Ok(());
        }
    }
    let Some(store) = state.locations.get(store_id) else { return Ok(()) };
    let tables = &state.safety.0;
    // Quantities after the movement, per item type, from the index plus what arrives.
    let mut after: BTreeMap<ItemTypeId, Quantity> = state.store_stock.get(store_id).cloned().unwrap_or_default();
    let mut arriving: BTreeSet<ItemTypeId> = BTreeSet::new();
    for l in lines {
        let q = after.entry(l.item_type().clone()).or_default();
        // check_bounds (rules) has refused sums past the limit before safety is asked.
        *q = q.checked_add(l.quantity()).unwrap_or(Quantity::MAX);
        arriving.insert(l.item_type().clone());
    }
    let mut parts: BTreeMap<ItemTypeId, Part> = BTreeMap::new();
    for (t, q) in &after {
        let Some(it) = state.item_types.get(t) else { continue };
        let Some(code) = &it.un_code else {
            if it.is_explosive() && arriving.contains(t) {
                return refuse(
                    "safety.classification",
                    format!("item type {t} carries explosive weight but has no UN classification code (such as 1.1D); it cannot be placed in {} {store_id}", store.kind),
                );
            }
            continue;
        };
        let c = match tables.parse_classification(code) {
            Ok(c) => c,
            Err(e) => return refuse("safety.classification", format!("item type {t}: {e}")),
        };
        let neq_kg = (q.thousandths() as f64 / 1000.0) * it.neq_kg_per_unit;
        let before = state.store_stock.get(store_id).is_some_and(|s| s.get(t).is_some_and(|q| q.is_positive()));
        parts.insert(
            t.clone(),
            Part { division: c.division.clone(), group: c.group, neq_kg, attributes: it.attributes.clone(), classification: c, before },
        );
    }
    if parts.is_empty() {
        return Ok(());
    }
    // The licence's divisions and groups.
    if let Some(lic) = &store.magazine {
        for t in &arriving {
            let Some(p) = parts.get(t) else { continue };
            if !lic.hazard_divisions.is_empty() && !lic.hazard_divisions.iter().any(|d| d == &p.division) {
                return refuse(
                    "safety.hazard_division",
                    format!(
                        "{} is hazard division {}, which {} {store_id} is not licensed for (licensed: {})",
                        label(state, store_id, t, lines),
                        p.division,
                        store.kind,
                        lic.hazard_divisions.join(", ")
                    ),
                );
            }
            if !lic.compatibility_groups.is_empty() && !lic.compatibility_groups.iter().any(|g| g.starts_with(p.group)) {
                return refuse(
                    "safety.compatibility_group",
                    format!(
                        "{} is compatibility group {}, which {} {store_id} is not licensed for (licensed: {})",
                        label(state, store_id, t, lines),
                        p.group,
                        store.kind,
                        lic.compatibility_groups.join(", ")
                    ),
                );
            }
        }
    }
    check_mixing(state, store_id, store, &parts, &arriving, lines)?;
    // Aggregated NEQ against the licence and quantity-distance, when the movement adds any.
    let adds: f64 = arriving.iter().filter_map(|t| parts.get(t)).map(|p| p.neq_kg).sum();
    if adds <= 0.0 {
        return Ok(());
    }
    let mut by_division: BTreeMap<String, f64> = BTreeMap::new();
    for p in parts.values() {
        *by_division.entry(p.division.clone()).or_default() += p.neq_kg;
    }
    let Some(agg) = tables.aggregate(&by_division) else { return Ok(()) };
    let Some(lic) = &store.magazine else { return Ok(()) };
    // Numbers first; the sentences are written only for a refusal.
    let qd: Vec<(f64, &ExposedSite)> = lic
        .exposed_sites
        .iter()
        .filter_map(|site| tables.max_neq_kg(&agg.division, &site.kind, site.distance_m).map(|v| (v, site)))
        .collect();
    let smallest = qd.iter().map(|(v, _)| *v).fold(lic.neq_limit_kg, f64::min);
    if agg.neq_kg > smallest + 1e-9 {
        let mut facts = vec![format!("licence {} kg", fmt_kg(lic.neq_limit_kg))];
        for (v, site) in &qd {
            let allows = if v.is_finite() { format!("{} kg", fmt_kg(*v)) } else { "any quantity".to_string() };
            facts.push(format!("quantity-distance to {} at {} m allows {allows}", site.kind.replace('_', " "), fmt_kg(site.distance_m)));
        }
        return refuse(
            "safety.neq",
            format!("{store_id} would hold {} kg NEQ (HD {}); {}", fmt_kg(agg.neq_kg), agg.division, facts.join("; ")),
        );
    }
    Ok(())
}

/// The mixing chart, footnotes judged on the items they are about (`qm_safety::SafetyTables::judge_pair`):
/// every arriving item type against every other in the store after the movement, and every pair of
/// the store when what arrives brings an attribute a footnote asks to be absent (a loose explosive
/// substance beside G articles and D). An item type is never judged against itself.
fn check_mixing(
    state: &State,
    store_id: &LocationId,
    store: &crate::books::Location,
    parts: &BTreeMap<ItemTypeId, Part>,
    arriving: &BTreeSet<ItemTypeId>,
    lines: &[Line],
) -> Result<(), Rejection> {
    let tables = &state.safety.0;
    let name = |t: &ItemTypeId| {
        let it = state.item_types.get(t);
        format!("{} {}", it.map(|x| x.name.as_str()).unwrap_or(t.as_str()), it.and_then(|x| x.un_code.as_deref()).unwrap_or(""))
    };
    let mut attributes: BTreeMap<String, String> = BTreeMap::new();
    let mut brings_new = false;
    for (t, p) in parts {
        for a in &p.attributes {
            brings_new |= !p.before && !parts.values().any(|q| q.before && q.attributes.contains(a));
            attributes.entry(a.clone()).or_insert_with(|| name(t));
        }
    }
    let facts = qm_safety::StoreFacts { flags: &store.flags, attributes: &attributes };
    let mut pairs: Vec<(&ItemTypeId, &ItemTypeId)> = vec![];
    for t in arriving {
        pairs.extend(parts.keys().filter(|u| *u != t).map(|u| (t, u)));
    }
    if brings_new {
        let all: Vec<&ItemTypeId> = parts.keys().collect();
        for (i, t) in all.iter().enumerate() {
            pairs.extend(all[i + 1..].iter().map(|u| (*t, *u)));
        }
    }
    for (t, u) in pairs {
        let (Some(p), Some(q)) = (parts.get(t), parts.get(u)) else { continue };
        if let Err(reason) = tables.judge_pair(&held(t, p), &held(u, q), &facts) {
            let (a, b) = (label(state, store_id, t, lines), label(state, store_id, u, lines));
            return refuse("safety.mixing", format!("{a} may not be stored with {b} in {} {store_id} — {reason}", store.kind));
        }
    }
    Ok(())
}

fn held<'a>(t: &'a ItemTypeId, p: &'a Part) -> qm_safety::Held<'a> {
    qm_safety::Held { label: "", item_type: t.as_str(), classification: &p.classification, attributes: &p.attributes }
}

/// Checks every movement of a decision that ends in a store.
pub fn check_decision(state: &State, events: &[Event]) -> Result<(), Rejection> {
    for e in events {
        if let Event::Movement { from, to, lines, .. } = e {
            check_movement(state, from, to, lines)?;
        }
    }
    Ok(())
}

/// Kilograms for people: one decimal, no trailing ".0".
pub fn fmt_kg(v: f64) -> String {
    let r = (v * 10.0).round() / 10.0;
    if r.fract() == 0.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}
