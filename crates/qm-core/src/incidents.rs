//! Incident rules, as data (`data/incidents.toml`, replaceable by an organization's own file): which
//! events open an incident by themselves and how grave it is, how soon each severity must be
//! acknowledged, who may close it, and what must be reported to an authority outside and how soon.
//! Also the pure functions over them: the incidents a decision's events open (`follow_ups`), and an
//! incident's clocks at a given time (`clocks`) — computed from the books and the time, never stored.

use crate::books::{Incident, State};
use crate::event::{DirectiveAction as DA, Event, IncidentObjects};
use crate::ids::*;
use crate::model::*;
use serde::Deserialize;
use std::collections::BTreeMap;
use time::{Duration, OffsetDateTime};

/// The rules shipped with Quartermaster.
pub const DEFAULT_RULES_TOML: &str = include_str!("../data/incidents.toml");

/// Per severity: how soon it is acknowledged, who closes it, and whether closing needs a witness.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityRule {
    pub acknowledge_within_h: u32,
    pub close_roles: Vec<Role>,
    #[serde(default)]
    pub close_witness: bool,
}

/// A severity, or one per kind of item involved (`other` for the kinds not named).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum SeverityBy {
    One(Severity),
    ByItemKind(BTreeMap<String, Severity>),
}

/// Events that open an incident by themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// A count or a transfer receipt found the books wrong.
    Discrepancy,
    /// Stock reported lost.
    Loss,
    /// Storage conditions left their band.
    Excursion,
    /// A denied attempt (a wrong PIN, an operation outside one's role or unit).
    AccessDenied,
    /// A report an incident's obligation requires was not made by its deadline (recorded by the site).
    DeadlineMissed,
    /// A movement into a magazine or depot refused by the storage-safety rules (someone tried).
    SafetyRefusal,
    /// Something issued to a person and not returned within `after_h` (recorded by the site's clock).
    OverdueReturn,
    /// A directive's acknowledgment or task not done by its deadline (recorded by the site's clock).
    DirectiveMissed,
    /// A door refused a badge (a terminal or the site's access-control system).
    DoorDenied,
    /// A door opened without a granted badge.
    DoorForced,
    /// A door stayed open past its limit.
    DoorHeldOpen,
    /// A reader or a door contact tampered with.
    DoorTamper,
    /// A duress PIN or code: access looked granted.
    Duress,
    /// An entry the door let through by someone not on the roster, or outside the hours.
    UnauthorizedEntry,
    /// One person alone inside under a two-person rule past the partner window (nobody followed,
    /// or the last two did not leave together): the site's clock raises it.
    LonePerson,
    /// A stay inside longer than the policy allows.
    Overstay,
    /// A place's key changed hands (or was kept past its return) and no full count of the place
    /// followed within `after_h` (recorded by the site's clock).
    KeyCountMissed,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenRule {
    pub on: Trigger,
    pub kind: IncidentKind,
    pub severity: SeverityBy,
    /// Denied operations that open no incident (`access_denied` only).
    #[serde(default)]
    pub except_operations: Vec<String>,
    /// Hours a person may hold an item before it is overdue (`overdue_return` only, required there).
    #[serde(default)]
    pub after_h: Option<u32>,
}

/// A report an authority outside requires: for which kinds of incident and of item, to whom,
/// within how long of discovery, on what form, and the rule that says so.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Obligation {
    pub id: String,
    pub authority: String,
    pub kinds: Vec<IncidentKind>,
    /// Empty: whatever the items.
    #[serde(default)]
    pub item_kinds: Vec<ItemKind>,
    pub within_h: u32,
    pub source: String,
    #[serde(default)]
    pub form: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentRules {
    pub severity: BTreeMap<Severity, SeverityRule>,
    #[serde(default)]
    pub open: Vec<OpenRule>,
    #[serde(default)]
    pub report: Vec<Obligation>,
}

impl IncidentRules {
    /// Parses and checks a rules file; a wrong one is refused with the file, the key and the reason.
    pub fn from_toml_str(text: &str, file: &str) -> Result<IncidentRules, String> {
        let rules: IncidentRules = toml::from_str(text).map_err(|e| format!("{file}: {}", e.to_string().trim()))?;
        for s in Severity::ALL {
            let Some(r) = rules.severity.get(s) else {
                return Err(format!("{file}: key severity.{s}: missing; every severity needs its rule"));
            };
            if !(1..=8784).contains(&r.acknowledge_within_h) {
                return Err(format!("{file}: key severity.{s}.acknowledge_within_h: must be at least 1 hour and at most a year (8784)"));
            }
            if r.close_roles.is_empty() {
                return Err(format!("{file}: key severity.{s}.close_roles: nobody could close such an incident"));
            }
        }
        for (i, o) in rules.open.iter().enumerate() {
            if let SeverityBy::ByItemKind(m) = &o.severity {
                if let Some(k) = m.keys().find(|k| k.as_str() != "other" && ItemKind::parse(k).is_err()) {
                    return Err(format!(
                        "{file}: key open[{i}].severity.{k}: not a kind of item (weapon, ammunition, explosive, component, other)"
                    ));
                }
                if !m.contains_key("other") {
                    return Err(format!("{file}: key open[{i}].severity.other: missing; say how grave it is for the kinds not named"));
                }
            }
            if !o.except_operations.is_empty() && o.on != Trigger::AccessDenied {
                return Err(format!("{file}: key open[{i}].except_operations: only for on = \"access_denied\""));
            }
            let timed = matches!(o.on, Trigger::OverdueReturn | Trigger::KeyCountMissed);
            match (timed, o.after_h) {
                (true, None | Some(0)) | (true, Some(8785..)) => {
                    return Err(format!("{file}: key open[{i}].after_h: say after how many hours (1 to 8784) it is overdue"));
                }
                (true, _) | (_, None) => {}
                (_, Some(_)) => {
                    return Err(format!("{file}: key open[{i}].after_h: only for on = \"overdue_return\" or \"key_count_missed\""))
                }
            }
        }
        let mut ids = std::collections::BTreeSet::new();
        for (i, o) in rules.report.iter().enumerate() {
            if o.id.trim().is_empty() || !ids.insert(o.id.as_str()) {
                return Err(format!("{file}: key report[{i}].id: empty or used twice ({:?})", o.id));
            }
            if o.kinds.is_empty() {
                return Err(format!("{file}: key report[{i}].kinds: name the kinds of incident it is for"));
            }
            if !(1..=8784).contains(&o.within_h) || o.source.trim().is_empty() {
                return Err(format!("{file}: key report[{i}]: within_h must be at least 1 and source must say which rule requires it"));
            }
        }
        Ok(rules)
    }

    /// The shipped rules (`data/incidents.toml`, checked by a test).
    pub fn default_rules() -> IncidentRules {
        static RULES: std::sync::OnceLock<Option<IncidentRules>> = std::sync::OnceLock::new();
        RULES.get_or_init(|| IncidentRules::from_toml_str(DEFAULT_RULES_TOML, "qm-core/data/incidents.toml").ok()).clone().unwrap_or_else(
            || {
                // Unreachable while the shipped file parses (a test holds it); then nothing opens by itself.
                IncidentRules { severity: BTreeMap::new(), open: vec![], report: vec![] }
            },
        )
    }

    pub fn for_severity(&self, s: Severity) -> Option<&SeverityRule> {
        self.severity.get(&s)
    }

    fn rule_for(&self, on: Trigger) -> Option<(usize, &OpenRule)> {
        self.open.iter().enumerate().find(|(_, r)| r.on == on)
    }

    /// Within how many hours a count must follow a change of a key's custodian (the
    /// `key_count_missed` rule's; without the rule, no count is asked for).
    pub fn key_count_within_h(&self) -> Option<u32> {
        self.rule_for(Trigger::KeyCountMissed).and_then(|(_, r)| r.after_h)
    }

    /// After how many hours a holding is an overdue return: the `overdue_return` rule's, or a day
    /// when the rules open no incident for it (the dashboard still counts them).
    pub fn overdue_after_h(&self) -> u32 {
        self.rule_for(Trigger::OverdueReturn).and_then(|(_, r)| r.after_h).unwrap_or(24)
    }
}

impl SeverityBy {
    /// The gravest level among the item kinds involved (`other` for those not named; none: `other`).
    fn level(&self, kinds: &[ItemKind]) -> Severity {
        match self {
            SeverityBy::One(s) => *s,
            SeverityBy::ByItemKind(m) => {
                let other = m.get("other").copied().unwrap_or(Severity::Medium);
                let of = |k: &ItemKind| m.get(k.as_str()).copied().unwrap_or(other);
                kinds.iter().map(of).max().unwrap_or(other)
            }
        }
    }
}

/// The kinds of item the objects are (serials and lots through their item types).
pub fn item_kinds(state: &State, objects: &IncidentObjects) -> Vec<ItemKind> {
    let kind_of = |t: &ItemTypeId| state.item_types.get(t).map(|x| x.kind);
    let mut out: Vec<ItemKind> = objects
        .serials
        .iter()
        .filter_map(|s| state.serials.get(s).and_then(|x| kind_of(&x.item_type)))
        .chain(objects.lots.iter().filter_map(|l| state.lots.get(l).and_then(|x| kind_of(&x.item_type))))
        .collect();
    out.sort();
    out.dedup();
    out
}

/// An incident gathering before it is written: its rule, trigger, unit, place, objects and summaries.
type Opening = (usize, Trigger, UnitId, Option<LocationId>, IncidentObjects, Vec<String>);

/// The incidents that `events` (one decision's, about to be appended at `first_seq` on) open by
/// themselves under `rules`, numbered after those already in the books. The discrepancies one
/// decision opens in one unit (a count's close, a transfer's receipt) are one incident about all of
/// them, as grave as the gravest item among them: a count that finds forty differences raises one
/// alarm, not forty.
pub fn follow_ups(state: &State, rules: &IncidentRules, events: &[Event], first_seq: u64, at: OffsetDateTime) -> Vec<Event> {
    let root = state.site.as_ref().map(|s| s.root_unit.clone());
    let mut opened: Vec<Opening> = vec![];
    for (i, event) in events.iter().enumerate() {
        let seq = first_seq + i as u64;
        for (on, unit, location, objects, summary) in triggers(state, event, seq) {
            let Some((n, rule)) = rules.rule_for(on) else { continue };
            if let Event::AccessDenied { operation, .. } = event {
                if rule.except_operations.iter().any(|o| o == operation) {
                    continue;
                }
            }
            let Some(unit) = unit.or_else(|| root.clone()) else { continue };
            match opened.iter_mut().find(|o| on == Trigger::Discrepancy && o.1 == on && o.2 == unit) {
                Some(o) => {
                    o.4.serials.extend(objects.serials);
                    o.4.lots.extend(objects.lots);
                    o.4.discrepancies.extend(objects.discrepancies);
                    o.4.entries.extend(objects.entries);
                    o.5.push(summary);
                }
                None => opened.push((n, on, unit, location, objects, vec![summary])),
            }
        }
    }
    let mut out = vec![];
    for (n, on, unit, location, objects, summaries) in opened {
        let summary = match summaries.len() {
            1 => summaries.into_iter().next().unwrap_or_default(),
            k => format!("{k} discrepancies: {}", summaries.iter().take(5).cloned().collect::<Vec<_>>().join("; ")),
        };
        out.extend(opened_by_rule(state, rules, (n, on), (unit, location), (objects, vec![]), &summary, at, out.len()));
    }
    out
}

/// An incident the rule `open[n]` opens: numbered after the books' and `earlier` ones of the same
/// decision, as grave as the gravest item among its objects.
#[allow(clippy::too_many_arguments)]
fn opened_by_rule(
    state: &State,
    rules: &IncidentRules,
    (n, on): (usize, Trigger),
    (unit, location): (UnitId, Option<LocationId>),
    (mut objects, mut kinds): (IncidentObjects, Vec<ItemKind>),
    summary: &str,
    at: OffsetDateTime,
    earlier: usize,
) -> Option<Event> {
    let rule = rules.open.get(n)?;
    objects.lots.sort();
    objects.lots.dedup();
    kinds.extend(item_kinds(state, &objects));
    let severity = rule.severity.level(&kinds);
    let incident = IncidentId::parse(&format!("I-{}", state.incidents.len() + earlier + 1)).ok()?;
    Some(Event::IncidentOpened {
        incident,
        kind: rule.kind,
        severity,
        unit,
        location,
        objects,
        summary: summary.chars().take(crate::decide::TEXT_LEN_MAX).collect(),
        discovered_at: at,
        rule: Some(format!("open[{n}] on {}", trigger_name(on))),
    })
}

/// The incident a storage-safety refusal opens (trigger `safety_refusal`): `events` are what the
/// refused command would have recorded; the first movement into a store the safety rules refuse
/// names the place, its unit and the items. `None` when the rules open no incident for it.
pub fn safety_refusal(state: &State, events: &[Event], actor: &Badge, rule: &str, message: &str, at: OffsetDateTime) -> Option<Event> {
    let rules = &state.incident_rules.0;
    let (n, _) = rules.rule_for(Trigger::SafetyRefusal)?;
    let (from, to, lines) = events.iter().find_map(|e| match e {
        Event::Movement { from, to, lines, .. } if crate::decide::storage::check_movement(state, from, to, lines).is_err() => {
            Some((from, to, lines))
        }
        _ => None,
    })?;
    let Account::Location(place) = to else { return None };
    let store = state.enclosing_store(place).cloned().unwrap_or_else(|| place.clone());
    let unit = state.locations.get(&store).map(|l| l.unit.clone())?;
    let mut objects = IncidentObjects { badges: vec![actor.clone()], ..Default::default() };
    // The lots a receipt would bring are not in the books yet: their kinds come from the lines.
    let kinds: Vec<ItemKind> = lines.iter().filter_map(|l| state.item_types.get(l.item_type()).map(|t| t.kind)).collect();
    for l in lines {
        match l {
            crate::event::Line::Serial { serial, .. } => objects.serials.push(serial.clone()),
            crate::event::Line::Lot { lot, .. } => objects.lots.push(lot.clone()),
        }
    }
    let summary = format!("refused: badge {actor} tried to put stock from {from} into {store} (rule {rule}): {message}");
    opened_by_rule(state, rules, (n, Trigger::SafetyRefusal), (unit, Some(store)), (objects, kinds), &summary, at, 0)
}

/// What people hold past the `overdue_return` rule's hours that no overdue-return incident opened
/// since they took it already names: per badge, the serials and lots, with the oldest holding's time.
pub fn overdue_holdings(state: &State, now: OffsetDateTime) -> BTreeMap<Badge, (Vec<Serial>, Vec<LotNo>, OffsetDateTime)> {
    let mut out: BTreeMap<Badge, (Vec<Serial>, Vec<LotNo>, OffsetDateTime)> = BTreeMap::new();
    let Some((_, rule)) = state.incident_rules.0.rule_for(Trigger::OverdueReturn) else { return out };
    let before = now - Duration::hours(i64::from(rule.after_h.unwrap_or(24)));
    let raised = |badge: &Badge, since: OffsetDateTime, serial: Option<&Serial>, lot: Option<&LotNo>| {
        state.incidents.values().any(|i| {
            i.kind == rule.kind
                && i.opened_at >= since
                && i.objects.badges.contains(badge)
                && (serial.is_some_and(|s| i.objects.serials.contains(s)) || lot.is_some_and(|l| i.objects.lots.contains(l)))
        })
    };
    for (serial, si) in &state.serials {
        if let Account::Person(b) = &si.account {
            if si.since < before && !raised(b, si.since, Some(serial), None) {
                let e = out.entry(b.clone()).or_insert((vec![], vec![], si.since));
                e.0.push(serial.clone());
                e.2 = e.2.min(si.since);
            }
        }
    }
    for ((account, lot), bal) in &state.balances {
        if let Account::Person(b) = account {
            if bal.quantity.is_positive() && bal.since < before && !raised(b, bal.since, None, Some(lot)) {
                let e = out.entry(b.clone()).or_insert((vec![], vec![], bal.since));
                e.1.push(lot.clone());
                e.2 = e.2.min(bal.since);
            }
        }
    }
    out
}

/// The incident the site opens about what `badge` holds overdue and unraised at `now` (rule
/// `overdue_return`), or `None`.
pub fn overdue_return(state: &State, badge: &Badge, now: OffsetDateTime) -> Option<Event> {
    let rules = &state.incident_rules.0;
    let (n, rule) = rules.rule_for(Trigger::OverdueReturn)?;
    let (serials, lots, since) = overdue_holdings(state, now).remove(badge)?;
    let unit = state.people.get(badge).map(|p| p.unit.clone())?;
    let items: Vec<String> = serials.iter().map(|s| format!("serial {s}")).chain(lots.iter().map(|l| format!("lot {l}"))).collect();
    let summary = format!(
        "badge {badge} has held {} past {} h without returning it (the oldest since {}): {}",
        if items.len() == 1 { "an item".to_string() } else { format!("{} items", items.len()) },
        rule.after_h.unwrap_or(24),
        since.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        items.join(", ")
    );
    let objects = IncidentObjects { serials, lots, badges: vec![badge.clone()], ..Default::default() };
    opened_by_rule(state, rules, (n, Trigger::OverdueReturn), (unit, None), (objects, vec![]), &summary, now, 0)
}

/// The incidents `events` open by themselves (as `follow_ups`, under the books' rules), each with
/// the index of the last event that gave rise to it: its opening is recorded in that event's entry
/// (`Envelope::opens`), so an automatic incident costs no entry of its own.
pub fn openings(state: &State, events: &[Event], at: OffsetDateTime) -> Vec<(usize, Event)> {
    let first = state.next_seq;
    follow_ups(state, &state.incident_rules.0, events, first, at)
        .into_iter()
        .map(|e| {
            let last = match &e {
                Event::IncidentOpened { objects, .. } => objects.entries.iter().max().copied().unwrap_or(first),
                _ => first,
            };
            ((last.saturating_sub(first) as usize).min(events.len().saturating_sub(1)), e)
        })
        .collect()
}

fn trigger_name(t: Trigger) -> &'static str {
    match t {
        Trigger::Discrepancy => "discrepancy",
        Trigger::Loss => "loss",
        Trigger::Excursion => "excursion",
        Trigger::AccessDenied => "access_denied",
        Trigger::DeadlineMissed => "deadline_missed",
        Trigger::SafetyRefusal => "safety_refusal",
        Trigger::OverdueReturn => "overdue_return",
        Trigger::DirectiveMissed => "directive_missed",
        Trigger::DoorDenied => "door_denied",
        Trigger::DoorForced => "door_forced",
        Trigger::DoorHeldOpen => "door_held_open",
        Trigger::DoorTamper => "door_tamper",
        Trigger::Duress => "duress",
        Trigger::UnauthorizedEntry => "unauthorized_entry",
        Trigger::LonePerson => "lone_person",
        Trigger::Overstay => "overstay",
        Trigger::KeyCountMissed => "key_count_missed",
    }
}

type Triggered = (Trigger, Option<UnitId>, Option<LocationId>, IncidentObjects, String);

/// What an event that means incidents says about each: the trigger, the unit and place, the objects.
/// Most such events mean one; a batch of door events one per passage that is wrong.
fn triggers(state: &State, event: &Event, seq: u64) -> Vec<Triggered> {
    match event {
        Event::DoorEvents { passages, .. } => passages.iter().flat_map(|p| door_triggers(state, p, seq)).collect(),
        Event::AccessAlert { location, alert, badge, message, .. } => {
            let on = match alert.split_once(':').map_or("", |(k, _)| k) {
                "lone" => Trigger::LonePerson,
                "overstay" => Trigger::Overstay,
                "key_count" => Trigger::KeyCountMissed,
                _ => return vec![],
            };
            let unit = state.locations.get(location).map(|l| l.unit.clone());
            let objects = IncidentObjects { badges: vec![badge.clone()], entries: vec![seq], ..Default::default() };
            vec![(on, unit, Some(location.clone()), objects, message.clone())]
        }
        _ => trigger(state, event, seq).into_iter().collect(),
    }
}

/// The incidents one door passage means: a denial, a forced or held-open door, tamper, duress, an
/// entry by someone not on the roster or outside the hours, one person left alone.
fn door_triggers(state: &State, p: &crate::access::Passage, seq: u64) -> Vec<Triggered> {
    use crate::access::{DoorKind, Finding};
    let unit = p.location.as_ref().and_then(|l| state.locations.get(l)).map(|l| l.unit.clone());
    let place = p.location.as_ref().map_or_else(|| format!("door {:?} (not mapped to a place)", p.door), |l| l.to_string());
    let who = match (&p.badge, &p.card) {
        (Some(b), _) => format!("badge {b}"),
        (None, Some(c)) => format!("unknown card {c}"),
        (None, None) => "nobody badged".to_string(),
    };
    let at = crate::decide::when(p.at);
    let why = if p.reason.is_empty() { String::new() } else { format!(": {}", p.reason) };
    let mut out = vec![];
    let mut add = |on: Trigger, what: String| {
        let objects = IncidentObjects { badges: p.badge.iter().cloned().collect(), entries: vec![seq], ..Default::default() };
        out.push((on, unit.clone(), p.location.clone(), objects, format!("{what} at {at} (door event {}){why}", p.id)));
    };
    match p.kind {
        DoorKind::Denied => add(Trigger::DoorDenied, format!("{who} was refused at {place}")),
        DoorKind::Forced => add(Trigger::DoorForced, format!("the door of {place} was forced open")),
        DoorKind::HeldOpen => add(Trigger::DoorHeldOpen, format!("the door of {place} was held open")),
        DoorKind::Tamper => add(Trigger::DoorTamper, format!("tamper at the door of {place}")),
        _ => {}
    }
    for f in &p.findings {
        match f {
            Finding::Duress => add(Trigger::Duress, format!("DURESS signalled by {who} at {place}")),
            Finding::NotOnRoster | Finding::AfterHours => add(Trigger::UnauthorizedEntry, format!("{who} entered {place} {}", f.as_str())),
        }
    }
    out
}

/// What an event that means an incident says about it: the trigger, the unit and place, the objects.
fn trigger(state: &State, event: &Event, seq: u64) -> Option<Triggered> {
    let entries = vec![seq];
    match event {
        Event::DiscrepancyOpened { discrepancy, facts } => {
            let unit = crate::decide::scope::discrepancy_units(state, facts).into_iter().flatten().next();
            let location = match &facts.source {
                crate::event::DiscrepancySource::Count(c) => state.counts.get(c).map(|c| c.root.clone()),
                crate::event::DiscrepancySource::Transfer(_) => None,
            };
            let objects = IncidentObjects {
                serials: facts.serial.iter().cloned().collect(),
                lots: facts.lot.iter().cloned().collect(),
                discrepancies: vec![discrepancy.clone()],
                entries,
                ..Default::default()
            };
            let what = facts.serial.as_ref().map(|s| format!("serial {s}")).or_else(|| facts.lot.as_ref().map(|l| format!("lot {l}")));
            let summary = format!("discrepancy {discrepancy} ({}): {}", facts.kind.as_str(), what.unwrap_or_else(|| "an item".into()));
            Some((Trigger::Discrepancy, unit, location, objects, summary))
        }
        Event::Movement { kind: MovementKind::Lose, from, lines, .. } => {
            let unit = state.account_unit(from);
            let location = match from {
                Account::Location(l) => Some(l.clone()),
                _ => None,
            };
            let mut objects = IncidentObjects { entries, ..Default::default() };
            for l in lines {
                match l {
                    crate::event::Line::Serial { serial, .. } => objects.serials.push(serial.clone()),
                    crate::event::Line::Lot { lot, .. } => objects.lots.push(lot.clone()),
                }
            }
            if let Account::Person(b) = from {
                objects.badges.push(b.clone());
            }
            let items: Vec<String> = lines.iter().map(|l| l.label()).collect();
            Some((Trigger::Loss, unit, location, objects, format!("reported lost from {from}: {}", items.join(", "))))
        }
        Event::ExcursionStarted { excursion, location, measure, direction, peak, limit, lots_exposed, .. } => {
            let unit = state.locations.get(location).map(|l| l.unit.clone());
            let objects = IncidentObjects { lots: lots_exposed.clone(), entries, ..Default::default() };
            let side = match direction {
                crate::conditions::Direction::High => "above",
                crate::conditions::Direction::Low => "below",
            };
            let summary = format!("excursion {excursion} at {location}: {} {side} its band (peak {peak}, limit {limit})", measure.as_str());
            Some((Trigger::Excursion, unit, Some(location.clone()), objects, summary))
        }
        Event::AccessDenied { who, operation, reason } => {
            let badge = Badge::parse(who).ok();
            let unit = badge.as_ref().and_then(|b| state.people.get(b)).map(|p| p.unit.clone());
            let objects = IncidentObjects { badges: badge.into_iter().collect(), entries, ..Default::default() };
            Some((Trigger::AccessDenied, unit, None, objects, format!("denied {operation} for {who}: {reason}")))
        }
        Event::IncidentUpdated { incident, action: crate::event::IncidentAction::DeadlineMissed { obligation } } => {
            let i = state.incidents.get(incident)?;
            let objects =
                IncidentObjects { serials: i.objects.serials.clone(), lots: i.objects.lots.clone(), entries, ..Default::default() };
            let summary = format!(
                "the report {obligation} that incident {incident} ({} {}) requires was not made by its deadline",
                i.severity, i.kind
            );
            Some((Trigger::DeadlineMissed, Some(i.responsible.clone()), i.location.clone(), objects, summary))
        }
        Event::DirectiveUpdated { directive, action: DA::Missed { unit, what } } => directive_missed(state, directive, unit, what, entries),
        _ => None,
    }
}

/// A directive's deadline passed unmet, as an incident's facts.
fn directive_missed(state: &State, directive: &DirectiveId, unit: &UnitId, what: &str, entries: Vec<u64>) -> Option<Triggered> {
    let d = state.directives.get(directive)?;
    let summary = match what {
        "acknowledge" => format!("directive {directive} \"{}\" was not acknowledged by unit {unit} by its deadline", d.title),
        task => format!("the {task} that directive {directive} \"{}\" orders was not done by unit {unit} by its deadline", d.title),
    };
    Some((Trigger::DirectiveMissed, Some(unit.clone()), None, IncidentObjects { entries, ..Default::default() }, summary))
}

/// One clock of an incident at a moment: the acknowledgment, or a report an obligation requires.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Clock {
    /// `acknowledge`, or an obligation's id.
    pub what: String,
    /// To whom (the responsible unit, or the authority).
    pub to: String,
    #[serde(with = "time::serde::rfc3339")]
    pub due: OffsetDateTime,
    /// `met`, `open` (still time), `missed`.
    pub status: &'static str,
    /// Seconds left until due (negative: overdue), while open or missed.
    pub left_s: i64,
    /// The rule or law that sets it.
    pub source: String,
}

/// The obligations that apply to an incident: its kind, and the kinds of item it involves.
pub fn obligations<'r>(state: &State, rules: &'r IncidentRules, incident: &Incident) -> Vec<&'r Obligation> {
    let kinds = item_kinds(state, &incident.objects);
    rules
        .report
        .iter()
        .filter(|o| o.kinds.contains(&incident.kind) && (o.item_kinds.is_empty() || o.item_kinds.iter().any(|k| kinds.contains(k))))
        .collect()
}

/// How many times an unacknowledged incident has passed its acknowledgment time at `now`: each
/// period escalates it one unit further up the tree.
pub fn escalations_due(rules: &IncidentRules, incident: &Incident, now: OffsetDateTime) -> u32 {
    if incident.acknowledged_at.is_some() || incident.state == IncidentState::Closed {
        return 0;
    }
    let Some(r) = rules.for_severity(incident.severity) else { return 0 };
    let period = Duration::hours(i64::from(r.acknowledge_within_h));
    let late = now - incident.opened_at;
    if late < period {
        return 0;
    }
    u32::try_from(late.whole_seconds() / period.whole_seconds().max(1)).unwrap_or(u32::MAX)
}

/// The actor of the entries the site makes by itself (an overdue incident's escalation): no person.
pub const SITE_ACTOR: &str = "site";

/// How many units above its own an incident is responsible at now (0: its own unit).
pub fn levels_up(state: &State, incident: &Incident) -> u32 {
    state.unit_ancestors(&incident.unit).take_while(|u| *u != &incident.responsible).count() as u32
}

/// The unit an overdue incident should be escalated to now, if any: one above the one responsible,
/// when more acknowledgment periods have passed than it has gone up (and there is a unit above).
pub fn escalation_due(state: &State, incident: &Incident, now: OffsetDateTime) -> Option<UnitId> {
    let due = escalations_due(&state.incident_rules.0, incident, now);
    if due <= levels_up(state, incident) {
        return None;
    }
    state.units.get(&incident.responsible).and_then(|u| u.parent.clone())
}

/// The obligations of an incident whose report is past its deadline unmade and not yet recorded as missed.
pub fn missed_deadlines(state: &State, incident: &Incident, now: OffsetDateTime) -> Vec<String> {
    obligations(state, &state.incident_rules.0, incident)
        .into_iter()
        .filter(|o| {
            let due = incident.discovered_at + Duration::hours(i64::from(o.within_h));
            now > due && !incident.reports.iter().any(|r| r.obligation == o.id) && !incident.missed.contains(&o.id)
        })
        .map(|o| o.id.clone())
        .collect()
}

/// The incidents the site should escalate at `now`.
pub fn overdue(state: &State, now: OffsetDateTime) -> Vec<IncidentId> {
    state.incidents.iter().filter(|(_, i)| escalation_due(state, i, now).is_some()).map(|(k, _)| k.clone()).collect()
}

/// Every clock of an incident at `now`: computed from the books and the time, never stored.
pub fn clocks(state: &State, rules: &IncidentRules, incident: &Incident, now: OffsetDateTime) -> Vec<Clock> {
    let mut out = vec![];
    let left = |due: OffsetDateTime| (due - now).whole_seconds();
    if let Some(r) = rules.for_severity(incident.severity) {
        let due = incident.opened_at + Duration::hours(i64::from(r.acknowledge_within_h));
        let status = match incident.acknowledged_at {
            Some(t) if t <= due => "met",
            Some(_) => "missed",
            None if now <= due => "open",
            None => "missed",
        };
        out.push(Clock {
            what: "acknowledge".into(),
            to: incident.responsible.to_string(),
            due,
            status,
            left_s: if incident.acknowledged_at.is_some() { 0 } else { left(due) },
            source: format!("severity.{}.acknowledge_within_h = {}", incident.severity, r.acknowledge_within_h),
        });
    }
    for o in obligations(state, rules, incident) {
        let due = incident.discovered_at + Duration::hours(i64::from(o.within_h));
        let made = incident.reports.iter().find(|r| r.obligation == o.id);
        let status = match made {
            Some(r) if r.at <= due => "met",
            Some(_) => "missed",
            None if now <= due => "open",
            None => "missed",
        };
        out.push(Clock {
            what: o.id.clone(),
            to: o.authority.clone(),
            due,
            status,
            left_s: if made.is_some() { 0 } else { left(due) },
            source: o.source.clone(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_rules_parse_and_name_their_sources() {
        let r = IncidentRules::from_toml_str(DEFAULT_RULES_TOML, "incidents.toml").unwrap();
        assert_eq!(r.severity.len(), 4);
        let ids: Vec<&str> = r.report.iter().map(|o| o.id.as_str()).collect();
        assert_eq!(ids, ["us-explosives-theft-loss", "us-firearms-theft-loss"]);
        assert!(r.report[0].source.contains("27 CFR 555.30") && r.report[0].within_h == 24);
        assert!(r.report[1].source.contains("27 CFR 478.39a") && r.report[1].within_h == 48);
        assert_eq!(IncidentRules::default_rules(), r);
    }

    #[test]
    fn a_wrong_rules_file_is_refused_with_file_key_and_reason() {
        let cases = [
            (DEFAULT_RULES_TOML.replace("acknowledge_within_h = 4", "acknowledge_within_h = 0"), "severity.high.acknowledge_within_h"),
            (DEFAULT_RULES_TOML.replace("[severity.low]", "[severity.lowish]"), "lowish"),
            (DEFAULT_RULES_TOML.replace("weapon = \"high\"", "rifle = \"high\""), "open[0].severity.rifle"),
            (DEFAULT_RULES_TOML.replace("id = \"us-firearms-theft-loss\"", "id = \"us-explosives-theft-loss\""), "report[1].id"),
            (DEFAULT_RULES_TOML.replace("within_h = 48", "within_hours = 48"), "within_hours"),
            (
                DEFAULT_RULES_TOML.replace("close_roles = [\"duty_officer\"]\n# Closing", "close_roles = []\n# Closing"),
                "severity.critical.close_roles",
            ),
        ];
        for (text, key) in cases {
            let e = IncidentRules::from_toml_str(&text, "org.toml").unwrap_err();
            assert!(e.starts_with("org.toml: ") && e.contains(key), "{key}: {e}");
        }
    }

    #[test]
    fn severity_by_item_kind_takes_the_gravest() {
        let r = IncidentRules::default_rules();
        let lost = &r.open.iter().find(|o| o.on == Trigger::Loss).unwrap().severity;
        assert_eq!(lost.level(&[ItemKind::Ammunition]), Severity::High);
        assert_eq!(lost.level(&[ItemKind::Ammunition, ItemKind::Explosive]), Severity::Critical);
        assert_eq!(lost.level(&[]), Severity::High);
    }
}
