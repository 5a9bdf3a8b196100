//! Explosives and ammunition views: magazine NEQ against limits, quantity-distance figures, lot life
//! (expiring, expired, suspended) and the daily summary of magazine transactions (27 CFR 555.127).

use crate::{AppError, Result, Site};
use qm_core::event::Line;
use qm_core::quantity::format_thousandths;
use qm_core::safety::fmt_kg;
use qm_core::*;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use time::{Date, OffsetDateTime};

#[derive(Clone, Debug, Serialize)]
pub struct Limit {
    pub what: String,
    pub neq_kg: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct MagazineView {
    pub location: String,
    pub kind: String,
    pub unit: String,
    pub neq_kg_by_division: BTreeMap<String, f64>,
    pub governing_division: Option<String>,
    pub neq_kg: f64,
    pub compatibility_groups: Vec<String>,
    pub limits: Vec<Limit>,
    /// The smallest limit minus what is held.
    pub headroom_kg: Option<f64>,
    /// Held at 90 % or more of the smallest limit.
    pub warning: Option<String>,
    pub flags: Vec<String>,
    /// The mixing chart's footnotes that concern a pair of what it holds, each with whether it is
    /// met ("footnote 4 (detonator provisions of 177.835(g)): DET 1.1B with TNT 1.1D — met").
    pub footnotes: Vec<String>,
}

/// What the mixing chart's footnotes say of each pair a store holds (the relabelling ones left out).
fn footnotes_in_play(
    tables: &qm_safety::SafetyTables,
    held: &[(String, qm_safety::Classification, Vec<String>)],
    flags: &[String],
) -> Vec<String> {
    let items: Vec<qm_safety::Held> =
        held.iter().map(|(t, c, a)| qm_safety::Held { label: t, item_type: t, classification: c, attributes: a }).collect();
    let mut attributes = BTreeMap::new();
    for h in &items {
        for a in h.attributes {
            attributes.entry(a.clone()).or_insert_with(|| h.label.to_string());
        }
    }
    let facts = qm_safety::StoreFacts { flags, attributes: &attributes };
    let mut out = vec![];
    for (i, a) in items.iter().enumerate() {
        for b in &items[i + 1..] {
            for n in tables.footnotes_in_play(a, b).into_iter().filter(|n| n.condition != qm_safety::Condition::Relabel) {
                let verdict = match tables.judge_pair(a, b, &facts) {
                    Ok(()) => "met".to_string(),
                    Err(e) => format!("NOT MET: {e}"),
                };
                out.push(format!(
                    "footnote {} ({}): {} {} with {} {} — {verdict}",
                    n.id, n.label, a.item_type, a.classification, b.item_type, b.classification
                ));
            }
        }
    }
    out
}

/// Every magazine and depot: NEQ held by hazard division against its licence and quantity-distance.
pub fn magazines(state: &State, unit: Option<&UnitId>) -> Vec<MagazineView> {
    let tables = &state.safety.0;
    let mut out = vec![];
    for (id, loc) in &state.locations {
        if !matches!(loc.kind, LocationKind::Magazine | LocationKind::Depot) {
            continue;
        }
        if unit.is_some_and(|u| !state.unit_within(&loc.unit, u)) {
            continue;
        }
        let mut by_div: BTreeMap<String, f64> = BTreeMap::new();
        let mut groups: BTreeSet<String> = BTreeSet::new();
        let mut held = vec![];
        for (t, q) in state.store_stock.get(id).into_iter().flatten() {
            let Some(it) = state.item_types.get(t) else { continue };
            let Some(c) = it.un_code.as_deref().and_then(|code| tables.parse_classification(code).ok()) else { continue };
            *by_div.entry(c.division.clone()).or_default() += (q.thousandths() as f64 / 1000.0) * it.neq_kg_per_unit;
            groups.insert(c.group.to_string());
            if q.is_positive() {
                held.push((t.to_string(), c, it.attributes.clone()));
            }
        }
        let agg = tables.aggregate(&by_div);
        let mut limits = vec![];
        if let Some(lic) = &loc.magazine {
            limits.push(Limit { what: "licence".into(), neq_kg: lic.neq_limit_kg });
            let division =
                agg.as_ref().map(|a| a.division.clone()).or_else(|| lic.hazard_divisions.first().cloned()).unwrap_or_else(|| "1.1".into());
            for site in &lic.exposed_sites {
                if let Some(f) = tables.max_neq(&division, &site.kind, site.distance_m) {
                    limits.push(Limit {
                        what: format!(
                            "quantity-distance HD {division} to {} at {} m",
                            site.kind.replace('_', " "),
                            fmt_kg(site.distance_m)
                        ),
                        neq_kg: f.value,
                    });
                }
            }
        }
        let neq = agg.as_ref().map(|a| a.neq_kg).unwrap_or(0.0);
        let smallest = limits.iter().map(|l| l.neq_kg).fold(f64::INFINITY, f64::min);
        let headroom = smallest.is_finite().then_some(smallest - neq);
        let warning = (smallest.is_finite() && neq >= 0.9 * smallest)
            .then(|| format!("within 10% of a limit: {} of {} kg", fmt_kg(neq), fmt_kg(smallest)));
        out.push(MagazineView {
            location: id.to_string(),
            kind: loc.kind.to_string(),
            unit: loc.unit.to_string(),
            neq_kg_by_division: by_div,
            governing_division: agg.map(|a| a.division),
            neq_kg: neq,
            compatibility_groups: groups.into_iter().collect(),
            limits,
            headroom_kg: headroom,
            warning,
            flags: loc.flags.clone(),
            footnotes: footnotes_in_play(tables, &held, &loc.flags),
        });
    }
    out
}

#[derive(Clone, Debug, Serialize)]
pub struct QdLine {
    pub exposed_site: String,
    pub value: f64,
    pub formula: String,
    pub source: String,
}

/// Required distances for a division and NEQ, to every exposed-site kind the tables know.
pub fn qd_distances(tables: &qm_safety::SafetyTables, division: &str, neq_kg: f64) -> Result<Vec<QdLine>> {
    let kinds = tables.exposed_site_kinds(division);
    if kinds.is_empty() {
        return Err(AppError::Usage(format!("hazard division {division:?} is not in the tables; use one of 1.1 … 1.6")));
    }
    Ok(kinds
        .into_iter()
        .filter_map(|k| {
            tables.required_distance(division, neq_kg, &k).map(|f| QdLine {
                exposed_site: k,
                value: f.value,
                formula: f.formula,
                source: f.source,
            })
        })
        .collect())
}

/// The largest NEQ each distance allows, and the smallest of them.
pub fn qd_max_neq(tables: &qm_safety::SafetyTables, division: &str, distances: &[(String, f64)]) -> Result<Vec<QdLine>> {
    distances
        .iter()
        .map(|(k, d)| {
            tables
                .max_neq(division, k, *d)
                .map(|f| QdLine { exposed_site: format!("{k} at {} m", fmt_kg(*d)), value: f.value, formula: f.formula, source: f.source })
                .ok_or_else(|| {
                    AppError::Usage(format!(
                        "no quantity-distance law for HD {division} to {k:?}; known: {}",
                        tables.exposed_site_kinds(division).join(", ")
                    ))
                })
        })
        .collect()
}

#[derive(Clone, Debug, Serialize)]
pub struct LotHolding {
    pub account: String,
    pub unit: Option<String>,
    pub quantity: String,
    /// The status as it applies there (a suspension decided above applies below).
    pub status: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct LotView {
    pub lot: String,
    pub item_type: String,
    pub manufactured: Option<Date>,
    pub expires: Option<Date>,
    pub days_left: Option<i64>,
    pub status: String,
    pub decisions: Vec<String>,
    pub held: Vec<LotHolding>,
}

#[derive(Clone, Copy, Debug)]
pub enum LotFilter {
    All,
    /// Expiring (or due for inspection) within this many days, or already past.
    Expiring(i64),
    Expired,
    Suspended,
}

/// Lots with where they are held; filtered by life or status.
pub fn lots(state: &State, filter: LotFilter, today: Date, unit: Option<&UnitId>) -> Vec<LotView> {
    let mut holdings: BTreeMap<&LotNo, Vec<(&Account, Quantity)>> = BTreeMap::new();
    for ((a, l), b) in &state.balances {
        if a.is_internal() && b.quantity.is_positive() {
            holdings.entry(l).or_default().push((a, b.quantity));
        }
    }
    let mut out = vec![];
    for (lot_no, lot) in &state.lots {
        let days_left = lot.expires.map(|e| (e - today).whole_days());
        let held: Vec<LotHolding> = holdings
            .get(lot_no)
            .into_iter()
            .flatten()
            .filter_map(|(a, q)| {
                let u = state.account_unit(a);
                if let (Some(f), Some(u)) = (unit, &u) {
                    if !state.unit_within(u, f) {
                        return None;
                    }
                }
                let status = u.as_ref().and_then(|u| state.lot_status_at(lot_no, u)).map(|(s, by)| match by {
                    Some(b) => format!("{s} (decided by {b})"),
                    None => s.to_string(),
                });
                Some(LotHolding {
                    account: a.to_string(),
                    unit: u.map(|u| u.to_string()),
                    quantity: q.to_string(),
                    status: status.unwrap_or_else(|| lot.status.to_string()),
                })
            })
            .collect();
        let keep = match filter {
            LotFilter::All => true,
            LotFilter::Expiring(d) => days_left.is_some_and(|x| x <= d) && !held.is_empty(),
            LotFilter::Expired => days_left.is_some_and(|x| x < 0) && !held.is_empty(),
            LotFilter::Suspended => held.iter().any(|h| !h.status.starts_with("serviceable")),
        };
        if !keep {
            continue;
        }
        let held = match filter {
            LotFilter::Suspended => held.into_iter().filter(|h| !h.status.starts_with("serviceable")).collect(),
            _ => held,
        };
        out.push(LotView {
            lot: lot_no.to_string(),
            item_type: lot.item_type.to_string(),
            manufactured: lot.manufactured,
            expires: lot.expires,
            days_left,
            status: lot.status.to_string(),
            decisions: lot.decisions.iter().map(|(u, d)| format!("{} at unit {u}: {}", d.status, d.reason)).collect(),
            held,
        });
    }
    out.sort_by_key(|l| (l.days_left.unwrap_or(i64::MAX), l.lot.clone()));
    out
}

#[derive(Clone, Debug, Serialize)]
pub struct DsmtMovement {
    pub seq: u64,
    pub at: String,
    pub quantity: String,
    pub by: String,
    pub witness: Option<String>,
    pub kind: String,
    pub counterpart: String,
    pub document: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct DsmtLine {
    pub item_type: String,
    pub item_name: String,
    pub lot: Option<String>,
    pub unit_of_measure: String,
    pub opening: String,
    pub received: String,
    pub removed: String,
    pub closing: String,
    pub receipts: Vec<DsmtMovement>,
    pub removals: Vec<DsmtMovement>,
}

#[derive(Clone, Debug, Serialize)]
pub struct Dsmt {
    pub magazine: String,
    pub date: Date,
    pub lines: Vec<DsmtLine>,
    pub no_movement: bool,
    /// Whether the closing balances equal the books (checked when the day is the latest with movements).
    pub book_check: String,
}

/// The daily summary of magazine transactions: per item type and lot, opening balance, receipts and
/// removals (with who), and closing balance, for one magazine (its whole subtree) and one day (UTC).
pub fn dsmt(site: &Site, magazine: &LocationId, date: Date) -> Result<Dsmt> {
    let state = site.state();
    let loc = state
        .locations
        .get(magazine)
        .ok_or_else(|| AppError::Rejected(Rejection::NotFound { what: "location", id: magazine.to_string() }))?;
    if !matches!(loc.kind, LocationKind::Magazine | LocationKind::Depot) {
        return Err(AppError::Usage(format!("{magazine} is a {}; the daily summary is kept per magazine or depot", loc.kind)));
    }
    let places = state.location_subtree(magazine);
    let inside = |a: &Account| matches!(a, Account::Location(l) if places.contains(l));
    let day_start = date.midnight().assume_utc();
    let day_end = day_start + time::Duration::days(1);
    type Key = (ItemTypeId, Option<LotNo>);
    let mut opening: BTreeMap<Key, i128> = BTreeMap::new();
    let mut receipts: BTreeMap<Key, Vec<DsmtMovement>> = BTreeMap::new();
    let mut removals: BTreeMap<Key, Vec<DsmtMovement>> = BTreeMap::new();
    let mut flows: BTreeMap<Key, (i128, i128)> = BTreeMap::new();
    let mut after_day = false;
    site.for_each_envelope(&mut |env| {
        let Event::Movement { kind, from: f, to, lines, document } = &env.event else { return Ok(()) };
        let (fin, tin) = (inside(f), inside(to));
        if fin == tin {
            return Ok(());
        }
        if env.at >= day_end {
            after_day = true;
            return Ok(());
        }
        for line in lines {
            let key: Key = match line {
                Line::Serial { item_type, .. } => (item_type.clone(), None),
                Line::Lot { item_type, lot, .. } => (item_type.clone(), Some(lot.clone())),
            };
            let q = i128::from(line.quantity().thousandths());
            let signed = if tin { q } else { -q };
            if env.at < day_start {
                *opening.entry(key).or_default() += signed;
                continue;
            }
            let m = DsmtMovement {
                seq: env.seq,
                at: qm_core::rules::when(env.at),
                quantity: format_thousandths(q),
                by: env.actor.to_string(),
                witness: env.witness.as_ref().map(|w| w.to_string()),
                kind: kind.to_string(),
                counterpart: if tin { f.to_string() } else { to.to_string() },
                document: document.clone(),
            };
            let fl = flows.entry(key.clone()).or_default();
            if tin {
                fl.0 += q;
                receipts.entry(key).or_default().push(m);
            } else {
                fl.1 += q;
                removals.entry(key).or_default().push(m);
            }
        }
        Ok(())
    })?;
    let keys: BTreeSet<Key> = opening.keys().chain(flows.keys()).cloned().collect();
    let mut lines = vec![];
    let mut closing: BTreeMap<Key, i128> = BTreeMap::new();
    for key in keys {
        let open = opening.get(&key).copied().unwrap_or(0);
        let (r, x) = flows.get(&key).copied().unwrap_or((0, 0));
        let close = open + r - x;
        if open == 0 && r == 0 && x == 0 {
            continue;
        }
        if close != 0 {
            closing.insert(key.clone(), close);
        }
        let it = state.item_types.get(&key.0);
        lines.push(DsmtLine {
            item_type: key.0.to_string(),
            item_name: it.map(|t| t.name.clone()).unwrap_or_default(),
            lot: key.1.as_ref().map(|l| l.to_string()),
            unit_of_measure: it.map(|t| t.unit_of_measure.clone()).unwrap_or_default(),
            opening: format_thousandths(open),
            received: format_thousandths(r),
            removed: format_thousandths(x),
            closing: format_thousandths(close),
            receipts: receipts.remove(&key).unwrap_or_default(),
            removals: removals.remove(&key).unwrap_or_default(),
        });
    }
    let no_movement = lines.iter().all(|l| l.receipts.is_empty() && l.removals.is_empty());
    // When no later movement exists, the closing balances must be the books as they stand.
    let book_check = if after_day {
        "later movements exist; closing balances are as of the end of that day".to_string()
    } else {
        let mut book: BTreeMap<Key, i128> = BTreeMap::new();
        for ((a, lot), b) in &state.balances {
            if inside(a) {
                if let Some(l) = state.lots.get(lot) {
                    *book.entry((l.item_type.clone(), Some(lot.clone()))).or_default() += i128::from(b.quantity.thousandths());
                }
            }
        }
        for s in state.serials.values() {
            if inside(&s.account) {
                *book.entry((s.item_type.clone(), None)).or_default() += 1000;
            }
        }
        if closing == book {
            "closing balances equal the book balances".to_string()
        } else {
            return Err(AppError::Internal(format!(
                "the daily summary of {magazine} for {date} does not close to the book balance; run `qm verify`"
            )));
        }
    };
    Ok(Dsmt { magazine: magazine.to_string(), date, lines, no_movement, book_check })
}

/// The summary as CSV: one row per item type and lot.
pub fn dsmt_csv(d: &Dsmt) -> String {
    let mut out =
        String::from("magazine,date,item_type,item_name,lot,unit_of_measure,opening,received,removed,closing,received_by,removed_by\n");
    let esc = |s: &str| if s.contains([',', '"', '\n']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_string() };
    for l in &d.lines {
        let by = |v: &[DsmtMovement]| v.iter().map(|m| format!("{} {} by {}", m.at, m.quantity, m.by)).collect::<Vec<_>>().join("; ");
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{}\n",
            esc(&d.magazine),
            d.date,
            esc(&l.item_type),
            esc(&l.item_name),
            esc(l.lot.as_deref().unwrap_or("")),
            esc(&l.unit_of_measure),
            l.opening,
            l.received,
            l.removed,
            l.closing,
            esc(&by(&l.receipts)),
            esc(&by(&l.removals))
        ));
    }
    out
}

/// Today's date in UTC, for the edge (the core never reads a clock).
pub fn today() -> Date {
    OffsetDateTime::now_utc().date()
}
