//! Deciding: a command checked against the books becomes events, or is refused with the rule and the
//! facts. This module has the context, the refusal, the checks every command shares (authorization
//! by role and unit subtree, witnesses, custody) and the dispatch; one module per domain has the
//! rest: `setup`, `custody`, `transfers`, `counts`, `conditions`, `storage` (storage safety).
//!
//! `decide` is pure. It reads the books and the effective policy and returns the events to append;
//! a refusal changes nothing because nothing has been written yet.

use crate::command::*;
use crate::event::*;
use crate::ids::*;
use crate::model::*;
use crate::permissions::{role_allows, Op};
use crate::quantity::{Quantity, QUANTITY_MAX_UNITS};
use crate::state::*;
use std::collections::{BTreeMap, BTreeSet};
use time::OffsetDateTime;

mod access;
mod conditions;
mod counts;
mod custody;
mod directives;
pub mod fit;
mod incidents;
pub mod scope;
pub mod setup;
pub mod storage;
mod transfers;

use conditions::decide_readings;

pub use access::DOOR_EVENTS_MAX;
pub use conditions::READINGS_MAX;
use counts::{decide_close_count, decide_resolve};
use custody::{decide_issue, decide_receive};
pub use setup::{genesis, valid_un_code};
use transfers::{decide_receive_transfer, next_discrepancy_ids};

/// Who is acting, who witnesses, and when. Both people are already authenticated by the edge.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub actor: Badge,
    pub witness: Option<Badge>,
    /// The API token the actor acts through, if any: deciding holds the command to its scope
    /// (`scope::check_token`) before the actor's own roles and unit.
    pub token: Option<String>,
    pub at: OffsetDateTime,
    /// The site's local time at `at`, for the times refusals show (UTC until a zone is set).
    pub zone: crate::zone::LocalZone,
}

/// Why a command produced no events.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// A rule said no. `rule` is a stable code; `message` gives the facts.
    #[error("refused: {message} (rule {rule})")]
    Refused { rule: &'static str, message: String },
    #[error("not found: {what} {id}")]
    NotFound { what: &'static str, id: String },
    /// The command itself is malformed (a usage error).
    #[error("invalid: {0}")]
    Invalid(String),
}

impl Rejection {
    /// A refusal of authority (who may do what, and where: `permission.*`, `token.scope`) rather
    /// than of the facts. The site records it as a denied attempt; HTTP answers it with 403.
    pub fn is_denial(&self) -> bool {
        matches!(self, Rejection::Refused { rule, .. } if rule.starts_with("permission.") || *rule == "token.scope" || *rule == "person.suspended")
    }

    pub fn code(&self) -> &'static str {
        match self {
            Rejection::Refused { rule, .. } => rule,
            Rejection::NotFound { .. } => "not_found",
            Rejection::Invalid(_) => "invalid",
        }
    }
}

/// The events a command becomes.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    pub events: Vec<Event>,
    pub corrects: Option<Correction>,
    /// Incidents the events open by themselves (`crate::incidents::follow_ups`), each with the
    /// index of the event whose entry records its opening (`Envelope::opens`).
    pub opens: Vec<(usize, Event)>,
}

impl Decision {
    /// Events that correct nothing and open no incident yet (`decide` adds those).
    pub fn of(events: Vec<Event>) -> Decision {
        Decision { events, corrects: None, opens: vec![] }
    }
}

pub(crate) type R<T> = Result<T, Rejection>;

pub(crate) fn refuse<T>(rule: &'static str, message: impl Into<String>) -> R<T> {
    Err(Rejection::Refused { rule, message: message.into() })
}
pub(crate) fn not_found<T>(what: &'static str, id: impl ToString) -> R<T> {
    Err(Rejection::NotFound { what, id: id.to_string() })
}
pub(crate) fn invalid<T>(message: impl Into<String>) -> R<T> {
    Err(Rejection::Invalid(message.into()))
}

/// Longest free text (names, documents, reasons) a command may carry.
pub const TEXT_LEN_MAX: usize = 500;
/// Most lines one command may carry; a bigger delivery is split into several receipts.
pub const LINES_MAX: usize = 10_000;

pub(crate) fn text(what: &str, value: &str, required: bool) -> R<()> {
    if required && value.trim().is_empty() {
        return invalid(format!("{what} is required"));
    }
    if value.chars().count() > TEXT_LEN_MAX {
        return invalid(format!("{what} is longer than {TEXT_LEN_MAX} characters"));
    }
    if let Some(c) = value.chars().find(|c| forbidden_in_text(*c)) {
        return invalid(format!(
            "{what} contains the character U+{:04X}; control characters (NUL, ESC, CR, LF, tab …) and text-direction overrides are refused",
            u32::from(c)
        ));
    }
    Ok(())
}

/// A character no text of a record may hold: control characters (C0, DEL, C1: NUL, ESC, CR, LF,
/// tab …), which can rewrite a terminal or split a log line, and the bidirectional marks, overrides
/// and isolates that make a text display in another order than it is stored.
pub fn forbidden_in_text(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Short form of a time for messages at the counter, in UTC, saying so (`2026-11-23 06:02 UTC`);
/// `LocalZone::show` gives it in a site's own zone.
pub fn when(t: OffsetDateTime) -> String {
    crate::zone::LocalZone::utc().show(t)
}

/// Describes where an account is, in words for a refusal, with times in the site's zone.
pub(crate) fn describe(state: &State, zone: &crate::zone::LocalZone, account: &Account, since: Option<OffsetDateTime>) -> String {
    let since = since.map(|t| format!(" since {}", zone.show(t))).unwrap_or_default();
    match account {
        Account::Person(b) => {
            let name = state.people.get(b).map(|p| format!(" ({})", p.name)).unwrap_or_default();
            format!("is issued to badge {b}{name}{since}")
        }
        Account::Location(l) => format!("is at location {l}{since}"),
        Account::Transit(t) => format!("is in transit on transfer {t}{since}"),
        Account::Supplier(s) => format!("is with supplier {s}"),
        Account::Expended => format!("was expended{since}"),
        Account::Destroyed => format!("was destroyed{since}"),
        Account::Lost => format!("was reported lost{since}"),
        Account::Found => "is not on the books".to_string(),
    }
}

pub(crate) struct Checker<'a> {
    state: &'a State,
    ctx: &'a Ctx,
    actor: &'a Person,
}

impl<'a> Checker<'a> {
    /// The actor's role allows `op`, and `unit` is inside the actor's unit subtree.
    fn authorize(&self, op: Op, unit: &UnitId) -> R<()> {
        self.authorize_role(op)?;
        if !self.state.unit_within(unit, &self.actor.unit) {
            return refuse(
                "permission.subtree",
                format!(
                    "badge {} belongs to unit {} and may not {} at unit {}, which is outside its subtree",
                    self.ctx.actor,
                    self.actor.unit,
                    op.as_str(),
                    unit
                ),
            );
        }
        if op.needs_briefing() {
            if let Some((id, d)) = crate::directives::briefing_due(self.state, unit, &self.ctx.actor, self.ctx.at) {
                return refuse(
                    "directive.briefing",
                    format!(
                        "badge {} has not acknowledged directive {id} \"{}\" ({} posture, in force at unit {unit} until {}): read it and \
                         acknowledge the briefing (qm directive brief {id}, or at the counter) before the first operation under it",
                        self.ctx.actor,
                        d.title,
                        d.posture,
                        self.ctx.zone.show(d.stops_at())
                    ),
                );
            }
        }
        Ok(())
    }

    /// The actor has a role that allows `op` somewhere: checked before anything about the objects is
    /// judged, so someone without the role learns nothing about them from the refusal.
    fn authorize_role(&self, op: Op) -> R<()> {
        if !self.actor.roles.iter().any(|r| role_allows(*r, op)) {
            let roles: Vec<&str> = self.actor.roles.iter().map(|r| r.as_str()).collect();
            return refuse(
                "permission.role",
                format!("badge {} ({}) may not {}: no role of theirs allows it", self.ctx.actor, roles.join(", "), op.as_str()),
            );
        }
        Ok(())
    }

    /// Where an account is, in words for a refusal — but only inside the actor's subtree: of a
    /// person or place in another unit's books a refusal says no more than that (no badge, no name).
    fn whereabouts(&self, account: &Account, since: OffsetDateTime) -> String {
        match self.state.account_unit(account) {
            Some(u) if !self.state.unit_within(&u, &self.actor.unit) => {
                format!("is held outside the subtree of badge {} (unit {})", self.ctx.actor, self.actor.unit)
            }
            _ => describe(self.state, &self.ctx.zone, account, Some(since)),
        }
    }

    /// Is this account in the books of the actor's subtree (or outside every unit)?
    fn within_reach(&self, account: &Account) -> bool {
        self.state.account_unit(account).is_none_or(|u| self.state.unit_within(&u, &self.actor.unit))
    }

    fn location(&self, id: &LocationId) -> R<&'a Location> {
        match self.state.locations.get(id) {
            Some(l) => Ok(l),
            None => not_found("location", id),
        }
    }

    fn person(&self, badge: &Badge) -> R<&'a Person> {
        match self.state.people.get(badge) {
            Some(p) => Ok(p),
            None => not_found("badge", badge),
        }
    }

    fn item_type(&self, id: &ItemTypeId) -> R<&'a ItemType> {
        match self.state.item_types.get(id) {
            Some(t) => Ok(t),
            None => not_found("item type", id),
        }
    }

    fn unit_of(&self, account: &Account) -> R<UnitId> {
        match self.state.account_unit(account) {
            Some(u) => Ok(u),
            None => not_found("account", account),
        }
    }

    /// Two-person integrity: a second, different, authorized person, already authenticated by PIN.
    fn witness(&self, unit: &UnitId, why: &str) -> R<()> {
        let Some(w) = &self.ctx.witness else {
            return refuse(
                "two_person",
                format!("{why}: the effective policy at unit {unit} requires a witness; give a second person's badge and PIN"),
            );
        };
        if *w == self.ctx.actor {
            return refuse("two_person", format!("{why}: the witness must be a different person from badge {}", self.ctx.actor));
        }
        let p = self.person(w)?;
        if let Some(s) = &p.suspended {
            return refuse("person.suspended", format!("{why}: badge {w} is suspended since {} and may not witness", s.since.date()));
        }
        if !p.roles.iter().any(|r| role_allows(*r, Op::Witness)) || !self.state.unit_within(unit, &p.unit) {
            return refuse("two_person", format!("{why}: badge {w} is not authorized to witness at unit {unit}"));
        }
        Ok(())
    }

    /// Resolves items against what `from` holds now: every serial is there, every lot has enough.
    fn take(&self, from: &Account, items: &[ItemRef]) -> R<Vec<Line>> {
        if items.is_empty() {
            return invalid("no items given");
        }
        if items.len() > LINES_MAX {
            return invalid(format!("{} lines; at most {LINES_MAX} per command", items.len()));
        }
        let mut seen = BTreeSet::new();
        let mut wanted: BTreeMap<&LotNo, Quantity> = BTreeMap::new();
        let mut lines = Vec::with_capacity(items.len());
        for item in items {
            match item {
                ItemRef::Serial(s) => {
                    let Some(si) = self.state.serials.get(s) else {
                        return not_found("serial", s);
                    };
                    if !seen.insert(s) {
                        return invalid(format!("serial {s} is named twice"));
                    }
                    if si.account != *from {
                        let hint = match (&si.account, from) {
                            (Account::Person(_), Account::Location(_)) if self.within_reach(&si.account) => "; return it first",
                            _ => "",
                        };
                        return refuse(
                            "custody.one_account",
                            format!("serial {s} {}{hint}, not {from}", self.whereabouts(&si.account, si.since)),
                        );
                    }
                    lines.push(Line::Serial { serial: s.clone(), item_type: si.item_type.clone() });
                }
                ItemRef::Lot { lot, quantity } => {
                    let Some(l) = self.state.lots.get(lot) else {
                        return not_found("lot", lot);
                    };
                    if !quantity.is_positive() {
                        return invalid(format!("quantity of lot {lot} must be more than zero"));
                    }
                    let total = wanted.entry(lot).or_default();
                    *total = total.checked_add(*quantity).ok_or_else(|| over_limit(lot, "the lines asking for it"))?;
                    let held = self.state.balance(from, lot);
                    if (from.is_internal() || *from == Account::Lost) && held < *total {
                        {
                            let who = match from {
                                Account::Person(b) => format!("badge {b} holds"),
                                other => format!("{other} holds"),
                            };
                            return refuse(
                                "balance.not_negative",
                                format!("{who} {held} of lot {lot}, not {total}; no balance may go negative"),
                            );
                        }
                    }
                    lines.push(Line::Lot { lot: lot.clone(), item_type: l.item_type.clone(), quantity: *quantity });
                }
            }
        }
        Ok(lines)
    }

    fn explosive(&self, lines: &[Line]) -> bool {
        lines.iter().any(|l| self.state.item_types.get(l.item_type()).is_some_and(ItemType::is_explosive))
    }

    /// Witness if the effective policy wants one for these lines at that unit.
    fn movement_witness(&self, unit: &UnitId, lines: &[Line], what: &str) -> R<()> {
        let policy = self.state.effective_policy(unit, self.ctx.at).0;
        if policy.two_person_all_movements {
            let by = crate::directives::ordered_by(self.state, unit, self.ctx.at, "two_person", &self.ctx.zone);
            return self.witness(unit, &format!("{what} under a two-person posture{by}"));
        }
        if policy.two_person_explosives && self.explosive(lines) {
            return self.witness(unit, &format!("{what} of explosives"));
        }
        Ok(())
    }

    /// A lot (or the lot of a serial) that may not go out to a person.
    fn issuable(&self, line: &Line, unit: &UnitId) -> R<()> {
        let lot = match line {
            Line::Lot { lot, .. } => Some(lot),
            Line::Serial { serial, .. } => self.state.serials.get(serial).and_then(|s| s.lot.as_ref()),
        };
        let Some(lot_no) = lot else { return Ok(()) };
        let Some(lot) = self.state.lots.get(lot_no) else {
            return Ok(());
        };
        if let Some((status, by)) = self.state.lot_status_at(lot_no, unit) {
            if status != LotStatus::Serviceable {
                let by = match by {
                    Some(u) => {
                        let reason = lot.decisions.get(&u).map(|d| format!(": {}", d.reason)).unwrap_or_default();
                        format!(" by decision of unit {u}{reason}")
                    }
                    None => String::new(),
                };
                return refuse("lot.status", format!("lot {lot_no} is {status}{by}; it cannot be issued"));
            }
        }
        if let Some(exp) = lot.expires {
            if exp < self.ctx.at.date() {
                return refuse("lot.expired", format!("lot {lot_no} expired on {exp}; it cannot be issued"));
            }
        }
        Ok(())
    }
}

pub(crate) fn single_movement(kind: MovementKind, from: Account, to: Account, lines: Vec<Line>, document: Option<String>) -> Decision {
    Decision { events: vec![Event::Movement { kind, from, to, lines, document }], corrects: None, opens: vec![] }
}

/// Refusal of a sum that would pass the largest quantity, naming the lot.
pub(crate) fn over_limit(lot: &LotNo, what: &str) -> Rejection {
    Rejection::Refused {
        rule: "quantity.max",
        message: format!("lot {lot}: {what} add up to more than {QUANTITY_MAX_UNITS}, the most one line, balance or sum may hold"),
    }
}
pub(crate) fn over_limit_text(what: &str) -> Rejection {
    Rejection::Refused {
        rule: "quantity.max",
        message: format!("{what} adds up to more than {QUANTITY_MAX_UNITS}, the most one sum may hold"),
    }
}

/// Every balance, store total and count sum the events would change stays within the largest
/// quantity. Checked once here, for every command, so that `apply` (checked too) never meets a sum
/// it cannot hold: thousands of lines of one lot in one receipt, a transfer receipt or a count.
fn check_bounds(state: &State, events: &[Event]) -> R<()> {
    let mut balances: BTreeMap<(&Account, &LotNo), Quantity> = BTreeMap::new();
    let mut stores: BTreeMap<(&LocationId, &ItemTypeId), Quantity> = BTreeMap::new();
    let mut counted: BTreeMap<(&CountId, &LocationId, &LotNo), Quantity> = BTreeMap::new();
    for event in events {
        match event {
            Event::Movement { from, to, lines, .. } => {
                for line in lines {
                    for (account, delta) in [(from, line.quantity().negated()), (to, line.quantity())] {
                        let Account::Location(l) = account else { continue };
                        let Some(store) = state.enclosing_store(l) else { continue };
                        let t = line.item_type();
                        let total = stores
                            .entry((store, t))
                            .or_insert_with(|| state.store_stock.get(store).and_then(|m| m.get(t)).copied().unwrap_or_default());
                        *total = total.checked_add(delta).ok_or_else(|| Rejection::Refused {
                            rule: "quantity.max",
                            message: format!(
                                "{} of item type {t}: {store} would hold more than {QUANTITY_MAX_UNITS}, the most one place may hold of one item type",
                                line.label()
                            ),
                        })?;
                    }
                    let Line::Lot { lot, quantity, .. } = line else { continue };
                    for (account, delta) in [(from, quantity.negated()), (to, *quantity)] {
                        if matches!(account, Account::Supplier(_)) {
                            continue;
                        }
                        let b = balances.entry((account, lot)).or_insert_with(|| state.balance(account, lot));
                        *b = b
                            .checked_add(delta)
                            .ok_or_else(|| over_limit(lot, &format!("the lines of this movement and what {account} holds")))?;
                    }
                }
            }
            Event::CountRecorded { count, location, lots, .. } => {
                for (lot, q) in lots {
                    let sum = counted.entry((count, location, lot)).or_insert_with(|| {
                        state.counts.get(count).and_then(|c| c.lots.get(location)).and_then(|m| m.get(lot)).copied().unwrap_or_default()
                    });
                    *sum = sum.checked_add(*q).ok_or_else(|| over_limit(lot, &format!("the counts recorded at {location}")))?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// Checks a command against the books; returns the events it becomes, or why not.
pub fn decide(state: &State, ctx: &Ctx, command: &Command) -> Result<Decision, Rejection> {
    // An API token's scope first: it narrows what its issuer's roles and unit would allow.
    if let Some(token) = &ctx.token {
        scope::check_token(state, token, &ctx.actor, command)?;
    }
    let mut decision = decide_command(state, ctx, command)?;
    check_bounds(state, &decision.events)?;
    // Storage safety applies to every movement that ends in a magazine or depot, whatever the command.
    storage::check_decision(state, &decision.events)?;
    // The events that mean an incident open one, in the same entries' commit (crate::incidents).
    // (A decision may already carry incidents of its own: a review's raised transfers.)
    let automatic = crate::incidents::openings(state, &decision.events, ctx.at);
    decision.opens.extend(automatic);
    // Every entry fits the ledger's limit: a large movement or count record becomes several entries.
    fit::fit(decision)
}

/// The incident a storage-safety refusal of `command` opens under the incident rules (trigger
/// `safety_refusal`), recorded by the edge as a denied attempt is: the command's movements are
/// decided again without the safety check to find the store it would have put stock into.
pub fn refusal_incident(state: &State, ctx: &Ctx, command: &Command, refusal: &Rejection) -> Option<Event> {
    let Rejection::Refused { rule, message } = refusal else { return None };
    if !rule.starts_with("safety.") {
        return None;
    }
    let decision = decide_command(state, ctx, command).ok()?;
    crate::incidents::safety_refusal(state, &decision.events, &ctx.actor, rule, message, ctx.at)
}

fn decide_command(state: &State, ctx: &Ctx, command: &Command) -> Result<Decision, Rejection> {
    // The one command the site itself gives (no person acts): an overdue incident goes one unit up.
    match command {
        Command::EscalateOverdue { incident } => return incidents::decide_escalate_overdue(state, ctx, incident),
        Command::RecordMissedDeadline { incident, obligation } => return incidents::decide_missed(state, ctx, incident, obligation),
        Command::RecordOverdueReturn { badge } => return incidents::decide_overdue_return(state, ctx, badge),
        Command::RecordDirectiveMissed { directive, unit, what } => return directives::decide_missed(state, ctx, directive, unit, what),
        Command::ReceiveFromParent { .. } => return directives::decide_received(state, ctx, command),
        Command::RecordDoorEvents { source, events, sha256 } => return access::decide_door(state, ctx, source, events, sha256),
        Command::RecordAccessAlerts { location } => return access::decide_alerts(state, ctx, location),
        Command::OpenIncident { .. } if ctx.actor.as_str() == crate::incidents::SITE_ACTOR => {
            return incidents::decide_site_incident(state, ctx, command)
        }
        _ => {}
    }
    let Some(actor) = state.people.get(&ctx.actor) else {
        return not_found("badge", &ctx.actor);
    };
    if let Some(s) = &actor.suspended {
        return refuse("person.suspended", format!("badge {} is suspended since {}: {}", ctx.actor, s.since.date(), s.reason));
    }
    let c = Checker { state, ctx, actor };
    match command {
        Command::CreateUnit { .. }
        | Command::CreateLocation { .. }
        | Command::DefineItemType { .. }
        | Command::RegisterPerson { .. }
        | Command::GrantQualification { .. }
        | Command::SetLocationSafety { .. }
        | Command::SetTimeZone { .. }
        | Command::SetItemTypeStorage { .. }
        | Command::SetItemTypeAttributes { .. }
        | Command::SetCredential { .. }
        | Command::IssueToken { .. }
        | Command::RevokeToken { .. }
        | Command::SetPolicy { .. } => setup::decide_setup(&c, command),
        Command::AdoptRules { rules, text } => setup::decide_rules(&c, *rules, text),
        Command::ChangePerson { badge, change } => setup::decide_person_change(&c, badge, change),
        Command::RecordReadings { location, readings, window, sha256 } => decide_readings(&c, location, readings, window, sha256),
        Command::Receive { to, from, document, lines } => decide_receive(&c, to, from, document, lines),
        Command::Issue { to, from, items } => decide_issue(&c, to, from.as_ref(), items),
        Command::Return { .. }
        | Command::Move { .. }
        | Command::Expend { .. }
        | Command::Destroy { .. }
        | Command::ReportLost { .. }
        | Command::Recover { .. }
        | Command::SetLotStatus { .. } => custody::decide_custody(&c, command),
        Command::Dispatch { .. } => transfers::decide_dispatch(&c, command),
        Command::ReceiveTransfer { transfer, to, received } => decide_receive_transfer(&c, transfer, to, received),
        Command::StartCount { .. } | Command::RecordCount { .. } => counts::decide_count(&c, command),
        Command::CloseCount { count } => decide_close_count(&c, count),
        Command::ResolveDiscrepancy { discrepancy, approve, note, item_type } => {
            decide_resolve(&c, discrepancy, *approve, note, item_type.as_ref())
        }
        Command::OpenIncident { .. }
        | Command::UpdateIncident { .. }
        | Command::EscalateOverdue { .. }
        | Command::RecordMissedDeadline { .. }
        | Command::RecordOverdueReturn { .. } => incidents::decide_incident(&c, command),
        Command::IssueDirective { .. } | Command::UpdateDirective { .. } | Command::RecordDirectiveMissed { .. } => {
            directives::decide_directive(&c, command)
        }
        Command::Correct { original, reason } => decide_correct(&c, original, reason),
        Command::GrantAccess { .. } | Command::RevokeAccess { .. } => access::decide_roster(&c, command),
        Command::RecordDoorEvents { .. } | Command::RecordAccessAlerts { .. } | Command::ReceiveFromParent { .. } => {
            invalid("the site's own command")
        }
    }
}

/// A correction: the reverse of an earlier movement, referring to it (once).
fn decide_correct(c: &Checker, original: &Envelope, reason: &str) -> Result<Decision, Rejection> {
    let state = c.state;
    text("reason", reason, true)?;
    let Event::Movement { kind, from, to, lines, document } = &original.event else {
        return refuse(
            "correction.movement_only",
            format!("entry {} is a {}; only movements are corrected by a reverse movement", original.seq, original.event.type_name()),
        );
    };
    if *kind == MovementKind::Correct {
        return refuse("correction.movement_only", format!("entry {} is itself a correction; record a new movement instead", original.seq));
    }
    // Permission first: someone without the role learns nothing about the entry's corrections.
    let unit = c.unit_of(if from.is_internal() { from } else { to })?;
    c.authorize(Op::Correct, &unit)?;
    if let Some(by) = state.corrected.get(&original.seq) {
        return refuse("correction.once", format!("entry {} was already corrected by entry {by}", original.seq));
    }
    let items: Vec<ItemRef> = lines
        .iter()
        .map(|l| match l {
            Line::Serial { serial, .. } => ItemRef::Serial(serial.clone()),
            Line::Lot { lot, quantity, .. } => ItemRef::Lot { lot: lot.clone(), quantity: *quantity },
        })
        .collect();
    // The reverse movement must itself be possible now: the stock must still be where the entry put it.
    let lines = c.take(to, &items)?;
    c.movement_witness(&unit, &lines, "correction")?;
    Ok(Decision {
        events: vec![Event::Movement {
            kind: MovementKind::Correct,
            from: to.clone(),
            to: from.clone(),
            lines,
            document: document.clone(),
        }],
        corrects: Some(Correction { seq: original.seq, reason: reason.to_string() }),
        opens: vec![],
    })
}
