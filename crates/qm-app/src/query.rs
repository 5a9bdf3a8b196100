//! Read-only views of the books for the CLI (and later the API): stock, where, history, custody, transfers, counts, log.

use crate::{AppError, Result, Site};
use qm_core::event::{DiscrepancyFacts, IncidentAction, Line};
use qm_core::*;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize)]
pub struct InclusionProof {
    pub seq: u64,
    pub tree_size: u64,
    pub leaf_hash: String,
    pub proof: Vec<String>,
    pub checkpoint: String,
    pub entry: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ConsistencyProof {
    pub old_size: u64,
    pub new_size: u64,
    pub proof: Vec<String>,
    pub old_checkpoint: String,
    pub new_checkpoint: String,
}

/// One line of the stock report: what an account holds of one item type (and lot).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct StockLine {
    pub unit: String,
    pub account: String,
    pub item_type: String,
    pub lot: Option<String>,
    pub status: Option<String>,
    pub quantity: String,
    pub unit_of_measure: String,
    pub serials: usize,
}

/// Filters for `stock`.
#[derive(Clone, Debug, Default)]
pub struct StockFilter {
    pub unit: Option<UnitId>,
    pub location: Option<LocationId>,
    pub item_type: Option<ItemTypeId>,
}

/// Balances by unit, account and item type: serials counted per type, lots per lot.
pub fn stock(state: &State, f: &StockFilter) -> Vec<StockLine> {
    let keep = |account: &Account, item_type: &ItemTypeId| -> Option<String> {
        if !account.is_internal() {
            return None;
        }
        let unit = state.account_unit(account)?;
        if let Some(u) = &f.unit {
            if !state.unit_within(&unit, u) {
                return None;
            }
        }
        if let Some(l) = &f.location {
            match account {
                Account::Location(x) if state.location_within(x, l) => {}
                _ => return None,
            }
        }
        if f.item_type.as_ref().is_some_and(|t| t != item_type) {
            return None;
        }
        Some(unit.to_string())
    };
    let uom = |t: &ItemTypeId| state.item_types.get(t).map(|x| x.unit_of_measure.clone()).unwrap_or_default();
    let mut serial_counts: BTreeMap<(String, Account, ItemTypeId), usize> = BTreeMap::new();
    for s in state.serials.values() {
        if let Some(unit) = keep(&s.account, &s.item_type) {
            *serial_counts.entry((unit, s.account.clone(), s.item_type.clone())).or_default() += 1;
        }
    }
    let mut out: Vec<StockLine> = serial_counts
        .into_iter()
        .map(|((unit, account, t), n)| StockLine {
            unit,
            account: account.to_string(),
            item_type: t.to_string(),
            lot: None,
            status: None,
            quantity: n.to_string(),
            unit_of_measure: uom(&t),
            serials: n,
        })
        .collect();
    for ((account, lot), b) in &state.balances {
        let Some(l) = state.lots.get(lot) else {
            continue;
        };
        if let Some(unit) = keep(account, &l.item_type) {
            if b.quantity.is_positive() {
                out.push(StockLine {
                    unit,
                    account: account.to_string(),
                    item_type: l.item_type.to_string(),
                    lot: Some(lot.to_string()),
                    status: Some(l.status.to_string()),
                    quantity: b.quantity.to_string(),
                    unit_of_measure: uom(&l.item_type),
                    serials: 0,
                });
            }
        }
    }
    out.sort_by(|a, b| (&a.unit, &a.account, &a.item_type, &a.lot).cmp(&(&b.unit, &b.account, &b.item_type, &b.lot)));
    out
}

#[derive(Clone, Debug, Serialize)]
pub struct WhereIs {
    pub serial: String,
    pub item_type: String,
    pub lot: Option<String>,
    pub account: String,
    pub holder: Option<String>,
    pub unit: Option<String>,
    pub since: String,
    pub since_seq: u64,
}

pub fn where_is(state: &State, serial: &Serial) -> Result<WhereIs> {
    let s = state.serials.get(serial).ok_or_else(|| AppError::Rejected(Rejection::NotFound { what: "serial", id: serial.to_string() }))?;
    let holder = match &s.account {
        Account::Person(b) => state.people.get(b).map(|p| format!("{} ({b})", p.name)),
        _ => None,
    };
    Ok(WhereIs {
        serial: serial.to_string(),
        item_type: s.item_type.to_string(),
        lot: s.lot.as_ref().map(|l| l.to_string()),
        account: s.account.to_string(),
        holder,
        unit: state.account_unit(&s.account).map(|u| u.to_string()),
        since: crate::zone::SiteZone::of(state).show(s.since),
        since_seq: s.since_seq,
    })
}

/// One ledger entry shown to people.
#[derive(Clone, Debug, Serialize)]
pub struct LogLine {
    pub seq: u64,
    pub at: String,
    pub actor: String,
    pub witness: Option<String>,
    /// The API token the actor acted through, if any.
    pub token: Option<String>,
    pub r#type: String,
    pub summary: String,
    pub corrects: Option<u64>,
}

pub fn summarize(env: &Envelope) -> String {
    summarize_in(env, &crate::zone::SiteZone::utc())
}

/// [`summarize`] with the times it names in the site's zone; the incidents the entry opened by
/// itself follow its event.
pub fn summarize_in(env: &Envelope, zone: &crate::zone::SiteZone) -> String {
    let mut text = event_summary(env, zone);
    for opened in &env.opens {
        text.push_str(" — ");
        text.push_str(&summarize_incident(opened, zone));
    }
    text
}

fn event_summary(env: &Envelope, zone: &crate::zone::SiteZone) -> String {
    let lines = |ls: &[Line]| ls.iter().map(Line::label).collect::<Vec<_>>().join(", ");
    match &env.event {
        Event::Movement { kind, from, to, lines: ls, document } => {
            let doc = document.as_ref().map(|d| format!(" [doc {d}]")).unwrap_or_default();
            let why = env.corrects.as_ref().map(|c| format!(" — corrects entry {}: {}", c.seq, c.reason)).unwrap_or_default();
            format!("{kind}: {} from {from} to {to}{doc}{why}", lines(ls))
        }
        Event::SiteInitialized { site, root_unit, .. } => format!("site {site} initialized, root unit {root_unit}"),
        Event::SiteTimeZoneSet { zone } => format!("time zone set to {zone}"),
        Event::UnitCreated { unit, name, parent } => format!("unit {unit} ({name}) under {parent}"),
        Event::LocationCreated { location, name, unit, kind, .. } => format!("{kind} {location} ({name}) in unit {unit}"),
        Event::ItemTypeDefined { item_type, name, kind, .. } => format!("item type {item_type}: {name} ({kind})"),
        Event::PersonRegistered { badge, name, unit, roles, .. } => {
            format!("badge {badge} {name}, unit {unit}, roles {}", roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "))
        }
        Event::CredentialSet { badge, kind, .. } => format!("new {} for badge {badge}", credential_word(*kind)),
        Event::TokenIssued { token, label, unit, operations, acts_as, .. } => {
            let who = acts_as.as_ref().map(|b| format!(", acting as badge {b}")).unwrap_or_default();
            format!("API token {token} ({label}) for unit {unit}{who}: {}", operations.join(", "))
        }
        Event::TokenRevoked { token, reason } => format!("API token {token} revoked: {reason}"),
        Event::LocationSafetySet { location, flags, conditions } => format!(
            "safety settings of {location}: flags [{}]{}",
            flags.join(", "),
            conditions.map(|c| format!(", conditions {c:?}")).unwrap_or_default()
        ),
        Event::ItemTypeAttributesSet { .. } | Event::ItemTypeStorageSet { .. } | Event::RulesAdopted { .. } => catalog_summary(&env.event),
        Event::ReadingsRecorded { location, count, first_at, last_at, sha256, .. } => {
            format!(
                "{count} condition readings at {location} from {} to {} (sha256 {})",
                zone.show(*first_at),
                zone.show(*last_at),
                &sha256[..12.min(sha256.len())]
            )
        }
        Event::ExcursionStarted { excursion, location, measure, direction, started_at, limit, peak, lots_exposed, .. } => format!(
            "EXCURSION {excursion} at {location}: {} {} limit {limit} {} since {}, peak {peak}; lots exposed: {}",
            measure.as_str(),
            if matches!(direction, qm_core::conditions::Direction::High) { "above" } else { "below" },
            measure.unit(),
            zone.show(*started_at),
            if lots_exposed.is_empty() {
                "none".to_string()
            } else {
                lots_exposed.iter().map(|l| l.to_string()).collect::<Vec<_>>().join(", ")
            }
        ),
        Event::ExcursionEnded { excursion, ended_at, peak } => format!("excursion {excursion} ended {}, peak {peak}", zone.show(*ended_at)),
        Event::AccessDenied { who, operation, reason } => format!("DENIED {who}: {operation}: {reason}"),
        Event::QualificationGranted { badge, qualification, expires } => {
            format!("badge {badge} qualified on {qualification} until {expires}")
        }
        Event::PolicySet { unit, .. } => format!("policy set at unit {unit}"),
        Event::PersonChanged { badge, change } => person_change(badge, change),
        Event::SerialRegistered { serial, item_type, .. } => format!("serial {serial} registered as {item_type}"),
        Event::LotRegistered { lot, item_type, expires, .. } => {
            format!("lot {lot} registered as {item_type}{}", expires.map(|e| format!(", expires {e}")).unwrap_or_default())
        }
        Event::LotStatusChanged { lot, status, reason, unit } => {
            format!("lot {lot} now {status}{}: {reason}", unit.as_ref().map(|u| format!(" in unit {u} and below")).unwrap_or_default())
        }
        Event::TransferDispatched { transfer, from_unit, to_unit, .. } => {
            format!("transfer {transfer} dispatched from {from_unit} to {to_unit}")
        }
        Event::TransferReceived { transfer, location, discrepancies } => {
            format!("transfer {transfer} received at {location}, {} discrepancies", discrepancies.len())
        }
        Event::CountStarted { count, root, kind, blind, counter } => {
            format!("{kind}{} count {count} of {root} started by badge {counter}", if *blind { " blind" } else { "" })
        }
        Event::CountRecorded { count, location, serials, lots } => {
            format!("count {count} at {location}: {} serials, {} lots", serials.len(), lots.len())
        }
        Event::DiscrepancyOpened { discrepancy, facts } => format!("discrepancy {discrepancy}: {}", describe_facts(facts)),
        Event::CountClosed { count, discrepancies } => format!("count {count} closed with {} discrepancies", discrepancies.len()),
        Event::DiscrepancyResolved { discrepancy, adjusted, note } => {
            format!("discrepancy {discrepancy} {}: {note}", if *adjusted { "approved, books adjusted" } else { "explained, no change" })
        }
        _ => summarize_record(env, zone),
    }
}

/// An incident's or a directive's entry in words.
fn summarize_record(env: &Envelope, zone: &crate::zone::SiteZone) -> String {
    match &env.event {
        Event::DirectiveIssued { .. } | Event::DirectiveUpdated { .. } => summarize_directive(env, zone),
        Event::FromParent { origin, seq, entry, .. } => match qm_core::directives::decided_entry(entry) {
            Ok(parent) => format!("received from site {origin} (its entry {seq}): {}", summarize_in(&parent, zone)),
            Err(e) => format!("received from site {origin} (its entry {seq}): {e}"),
        },
        Event::RosterGranted { .. } | Event::RosterRevoked { .. } | Event::DoorEvents { .. } | Event::AccessAlert { .. } => {
            summarize_access(&env.event)
        }
        other => summarize_incident(other, zone),
    }
}

fn credential_word(kind: qm_core::event::CredentialKind) -> &'static str {
    match kind {
        qm_core::event::CredentialKind::Pin => "PIN",
        qm_core::event::CredentialKind::Password => "password",
        qm_core::event::CredentialKind::Duress => "duress PIN",
    }
}

/// A roster change, a batch of door events or an access alert in words.
fn summarize_access(event: &Event) -> String {
    use qm_core::access::DoorKind;
    match event {
        Event::RosterGranted { location, badge, role, hours, reason } => {
            format!("badge {badge} on the roster of {location} as {role}, {hours}: {reason}")
        }
        Event::RosterRevoked { location, badge, reason } => format!("badge {badge} off the roster of {location}: {reason}"),
        Event::DoorEvents { source, count, passages, .. } => {
            let n = |k: DoorKind| passages.iter().filter(|p| p.kind == k).count();
            let flagged = passages.iter().filter(|p| !p.findings.is_empty()).count();
            let mut parts = vec![format!("{count} door events from {source}")];
            for (k, what) in [
                (DoorKind::Entry, "entries"),
                (DoorKind::Exit, "exits"),
                (DoorKind::Denied, "denied"),
                (DoorKind::Forced, "forced"),
                (DoorKind::HeldOpen, "held open"),
            ] {
                if n(k) > 0 {
                    parts.push(format!("{} {what}", n(k)));
                }
            }
            if flagged > 0 {
                parts.push(format!("{flagged} against the rules"));
            }
            parts.join(", ")
        }
        Event::AccessAlert { message, .. } => message.clone(),
        other => other.type_name().to_string(),
    }
}

/// What an item type is said to need or be, in words.
fn catalog_summary(event: &Event) -> String {
    match event {
        Event::ItemTypeAttributesSet { item_type, attributes } => {
            format!("item type {item_type}: attributes {}", if attributes.is_empty() { "none".to_string() } else { attributes.join(", ") })
        }
        Event::ItemTypeStorageSet { item_type, temperature_c, humidity_pct } => format!(
            "storage range of {item_type}: {}{}",
            temperature_c.map(|r| format!("{}–{} °C ", r.min, r.max)).unwrap_or_default(),
            humidity_pct.map(|r| format!("{}–{} % RH", r.min, r.max)).unwrap_or_default()
        ),
        Event::RulesAdopted { rules, text } => {
            format!("{} adopted ({} bytes, sha256 {})", rules.words(), text.len(), &crate::sha256_hex(text.as_bytes())[..16])
        }
        other => other.type_name().to_string(),
    }
}

/// An incident's entry in words.
fn summarize_incident(event: &Event, zone: &crate::zone::SiteZone) -> String {
    match event {
        Event::IncidentOpened { incident, kind, severity, unit, summary, rule, .. } => {
            let how = if rule.is_some() { "opened by itself" } else { "opened" };
            format!("incident {incident} ({severity} {kind}, unit {unit}) {how}: {summary}")
        }
        Event::IncidentUpdated { incident, action } => match action {
            IncidentAction::Acknowledge => format!("incident {incident} acknowledged"),
            IncidentAction::Investigate => format!("incident {incident} under investigation"),
            IncidentAction::Note { text } => format!("incident {incident}: note: {text}"),
            IncidentAction::Escalate { to, reason } => format!("incident {incident} escalated to unit {to}: {reason}"),
            IncidentAction::Report { obligation, authority, reference, at } => {
                format!("incident {incident}: reported to {authority} ({obligation}, ref {reference}) at {}", zone.show(*at))
            }
            IncidentAction::Close { resolution } => format!("incident {incident} closed: {resolution}"),
            IncidentAction::Reopen { reason } => format!("incident {incident} reopened: {reason}"),
            IncidentAction::DeadlineMissed { obligation } => {
                format!("incident {incident}: the report {obligation} was not made by its deadline")
            }
        },
        other => other.type_name().to_string(),
    }
}

/// A directive's entry in words.
fn summarize_directive(env: &Envelope, zone: &crate::zone::SiteZone) -> String {
    use qm_core::event::DirectiveAction as A;
    let list = |ms: &[qm_core::directives::Measure]| ms.iter().map(|m| m.to_string()).collect::<Vec<_>>().join(", ");
    match &env.event {
        Event::DirectiveIssued { directive, unit, title, posture, starts_at, ends_at, measures, .. } => format!(
            "directive {directive} issued at unit {unit}: \"{title}\" ({posture}, {} to {}){}",
            zone.show(*starts_at),
            zone.show(*ends_at),
            if measures.is_empty() { String::new() } else { format!("; measures: {}", list(measures)) }
        ),
        Event::DirectiveUpdated { directive, action } => match action {
            A::Acknowledge { unit } => format!("directive {directive} acknowledged by unit {unit}"),
            A::Relay { unit, text, measures } => format!(
                "directive {directive} relayed by unit {unit}: {text}{}",
                if measures.is_empty() { String::new() } else { format!("; added: {}", list(measures)) }
            ),
            A::Brief { unit } => format!("directive {directive}: shift briefing acknowledged by badge {} at unit {unit}", env.actor),
            A::SignOff { unit, task, reviewed, note, .. } => {
                format!("directive {directive}: {task} of unit {unit} signed off ({} items reviewed): {note}", reviewed.len())
            }
            A::Extend { ends_at, reason } => format!("directive {directive} extended to {}: {reason}", zone.show(*ends_at)),
            A::Cancel { reason } => format!("directive {directive} cancelled: {reason}"),
            A::Missed { unit, what } => format!("directive {directive}: {what} of unit {unit} not done by its deadline"),
        },
        other => other.type_name().to_string(),
    }
}

pub fn describe_facts(f: &DiscrepancyFacts) -> String {
    let what = match (&f.serial, &f.lot) {
        (Some(s), _) => format!("serial {s}"),
        (None, Some(l)) => format!("lot {l}"),
        _ => "item".into(),
    };
    let book = f.book_account.as_ref().map(|a| a.to_string()).unwrap_or_else(|| "not on the books".into());
    let found = f.found_account.as_ref().map(|a| a.to_string()).unwrap_or_else(|| "not found".into());
    format!("{}: {what}; books {} at {book}, counted {} at {found}", f.kind.as_str(), f.book_quantity, f.counted_quantity)
}

pub fn log_line(env: &Envelope) -> LogLine {
    log_line_in(env, &crate::zone::SiteZone::utc())
}

/// A log line with its time in the site's zone.
pub fn log_line_in(env: &Envelope, zone: &crate::zone::SiteZone) -> LogLine {
    LogLine {
        seq: env.seq,
        at: zone.show(env.at),
        actor: env.actor.to_string(),
        witness: env.witness.as_ref().map(|w| w.to_string()),
        token: env.token.clone(),
        r#type: env.event.type_name().to_string(),
        summary: summarize_in(env, zone),
        corrects: env.corrects.as_ref().map(|c| c.seq),
    }
}

/// The last `limit` entries, newest last.
pub fn log(site: &Site, limit: usize) -> Result<Vec<LogLine>> {
    let size = site.size();
    let first = size.saturating_sub(limit as u64);
    if size == 0 {
        return Ok(vec![]);
    }
    let zone = crate::zone::SiteZone::of(site.state());
    Ok(site.read_envelopes(first, size - 1)?.iter().map(|e| log_line_in(e, &zone)).collect())
}

/// Every entry that concerns a serial or a lot, oldest first. A full scan: history is rare and must be complete.
pub fn history(site: &Site, what: &str) -> Result<Vec<LogLine>> {
    history_seen_from(site, what, None)
}

/// An item's history as a reader at `viewer` may see it: only the entries that concern the viewer's
/// subtree (`decide::scope::entry_visible`) — a lot shared by several departments shows each only
/// its own receipts, issues and counts. `None`: the whole history (the root, the CLI).
pub fn history_seen_from(site: &Site, what: &str, viewer: Option<&UnitId>) -> Result<Vec<LogLine>> {
    let serial = Serial::parse(what).ok().filter(|s| site.state().serials.contains_key(s));
    let lot = LotNo::parse(what).ok().filter(|l| site.state().lots.contains_key(l));
    if serial.is_none() && lot.is_none() {
        return Err(AppError::Rejected(Rejection::NotFound { what: "serial or lot", id: what.to_string() }));
    }
    let mut out = vec![];
    let zone = crate::zone::SiteZone::of(site.state());
    site.for_each_envelope(&mut |env| {
        let mentioned =
            serial.as_ref().is_some_and(|s| env.event.mentions_serial(s)) || lot.as_ref().is_some_and(|l| env.event.mentions_lot(l));
        if mentioned && viewer.is_none_or(|v| qm_core::decide::scope::entry_visible(site.state(), v, &env.event)) {
            out.push(log_line_in(&env, &zone));
        }
        Ok(())
    })?;
    Ok(out)
}

#[derive(Clone, Debug, Serialize)]
pub struct CustodyLine {
    pub item: String,
    pub item_type: String,
    pub quantity: String,
    pub since: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct Custody {
    pub badge: String,
    pub name: String,
    pub unit: String,
    pub holds: Vec<CustodyLine>,
    /// Each qualification and the day it expires.
    pub qualifications: BTreeMap<String, time::Date>,
    /// What the counter should know before scanning items for this person, on `today`: the
    /// qualifications that have expired.
    pub notes: Vec<String>,
}

/// What a person holds, their qualifications, and what would stop items going out to them on `today`.
pub fn custody(state: &State, badge: &Badge, today: time::Date) -> Result<Custody> {
    let zone = crate::zone::SiteZone::of(state);
    let p = state.people.get(badge).ok_or_else(|| AppError::Rejected(Rejection::NotFound { what: "badge", id: badge.to_string() }))?;
    let (serials, lots) = state.custody(badge);
    let mut holds: Vec<CustodyLine> = serials
        .into_iter()
        .map(|(s, si)| CustodyLine {
            item: format!("serial {s}"),
            item_type: si.item_type.to_string(),
            quantity: "1".into(),
            since: zone.show(si.since),
        })
        .collect();
    holds.extend(lots.into_iter().map(|(l, b)| CustodyLine {
        item: format!("lot {l}"),
        item_type: state.lots.get(l).map(|x| x.item_type.to_string()).unwrap_or_default(),
        quantity: b.quantity.to_string(),
        since: zone.show(b.since),
    }));
    // Only what lapsed: a qualification the person never held is not news at their counter.
    let notes = p
        .qualifications
        .iter()
        .filter(|(_, d)| **d < today)
        .map(|(q, d)| format!("qualification {q} expired on {d}: items that need it will be refused"))
        .collect();
    Ok(Custody {
        badge: badge.to_string(),
        name: p.name.clone(),
        unit: p.unit.to_string(),
        holds,
        qualifications: p.qualifications.clone(),
        notes,
    })
}

#[derive(Clone, Debug, Serialize)]
pub struct TransferView {
    pub transfer: String,
    pub from_unit: String,
    pub to_unit: String,
    pub dispatched_at: String,
    pub document: Option<String>,
    pub lines: Vec<String>,
    pub received_at: Option<String>,
    pub discrepancies: Vec<String>,
}

/// Transfers still in transit (or all, with `all`).
pub fn transfers(state: &State, all: bool) -> Vec<TransferView> {
    let zone = crate::zone::SiteZone::of(state);
    state
        .transfers
        .iter()
        .filter(|(_, t)| all || t.received_at_location.is_none())
        .map(|(id, t)| TransferView {
            transfer: id.to_string(),
            from_unit: t.from_unit.to_string(),
            to_unit: t.to_unit.to_string(),
            dispatched_at: zone.show(t.dispatched_at),
            document: t.document.clone(),
            lines: t.lines.iter().map(Line::label).collect(),
            received_at: t.received_at_location.as_ref().map(|l| l.to_string()),
            discrepancies: t.discrepancies.iter().map(|d| d.to_string()).collect(),
        })
        .collect()
}

#[derive(Clone, Debug, Serialize)]
pub struct DiscrepancyView {
    pub id: String,
    pub description: String,
    pub kind: String,
    pub proposed_adjustment: String,
    pub resolution: Option<String>,
}

#[derive(Clone, Debug, Serialize)]
pub struct CountView {
    pub count: String,
    pub root: String,
    pub kind: String,
    pub blind: bool,
    pub counter: String,
    pub started_at: String,
    pub closed: bool,
    pub recorded: Vec<String>,
    /// Book figures are hidden from a blind count until it closes.
    pub book: Option<Vec<String>>,
    pub discrepancies: Vec<DiscrepancyView>,
}

pub fn discrepancy_view(state: &State, id: &DiscrepancyId) -> Option<DiscrepancyView> {
    let d = state.discrepancies.get(id)?;
    let f = &d.facts;
    Some(DiscrepancyView {
        id: id.to_string(),
        description: describe_facts(f),
        kind: f.kind.as_str().to_string(),
        proposed_adjustment: format!("move {} from {} to {}", f.adjust_quantity, f.adjust_from, f.adjust_to),
        resolution: d.resolution.as_ref().map(|r| {
            format!(
                "{} by badge {}{} (entry {}): {}",
                if r.adjusted { "approved" } else { "explained" },
                r.by,
                r.witness.as_ref().map(|w| format!(", witness {w}")).unwrap_or_default(),
                r.seq,
                r.note
            )
        }),
    })
}

pub fn count_view(state: &State, id: &CountId) -> Result<CountView> {
    let c = state.counts.get(id).ok_or_else(|| AppError::Rejected(Rejection::NotFound { what: "count", id: id.to_string() }))?;
    let mut recorded = vec![];
    for (loc, serials) in &c.serials {
        for s in serials {
            recorded.push(format!("{loc}: serial {s}"));
        }
    }
    for (loc, lots) in &c.lots {
        for (l, q) in lots {
            recorded.push(format!("{loc}: {q} of lot {l}"));
        }
    }
    let book = if c.blind && !c.closed {
        None
    } else {
        Some(
            stock(state, &StockFilter { location: Some(c.root.clone()), ..StockFilter::default() })
                .into_iter()
                .map(|l| format!("{}: {} {} {}", l.account, l.quantity, l.item_type, l.lot.map(|x| format!("lot {x}")).unwrap_or_default()))
                .collect(),
        )
    };
    Ok(CountView {
        count: id.to_string(),
        root: c.root.to_string(),
        kind: c.kind.to_string(),
        blind: c.blind,
        counter: c.counter.to_string(),
        started_at: crate::zone::SiteZone::of(state).show(c.started_at),
        closed: c.closed,
        recorded,
        book,
        discrepancies: c.discrepancies.iter().filter_map(|d| discrepancy_view(state, d)).collect(),
    })
}

fn person_change(badge: &Badge, change: &qm_core::event::PersonChange) -> String {
    use qm_core::event::PersonChange;
    match change {
        PersonChange::Suspended { reason } => format!("badge {badge} suspended: {reason}"),
        PersonChange::Restored { reason } => format!("badge {badge} restored: {reason}"),
        PersonChange::Roles { roles } => {
            format!("badge {badge} now holds the roles {}", roles.iter().map(|r| r.to_string()).collect::<Vec<_>>().join(", "))
        }
    }
}
