//! Rules: a command checked against the books becomes events, or is refused with the rule and the facts.
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

/// Who is acting, who witnesses, and when. Both people are already authenticated by the edge.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub actor: Badge,
    pub witness: Option<Badge>,
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
}

type R<T> = Result<T, Rejection>;

fn refuse<T>(rule: &'static str, message: impl Into<String>) -> R<T> {
    Err(Rejection::Refused { rule, message: message.into() })
}
fn not_found<T>(what: &'static str, id: impl ToString) -> R<T> {
    Err(Rejection::NotFound { what, id: id.to_string() })
}
fn invalid<T>(message: impl Into<String>) -> R<T> {
    Err(Rejection::Invalid(message.into()))
}

/// Longest free text (names, documents, reasons) a command may carry.
pub const TEXT_LEN_MAX: usize = 500;
/// Most lines one command may carry; a bigger delivery is split into several receipts.
pub const LINES_MAX: usize = 10_000;

fn text(what: &str, value: &str, required: bool) -> R<()> {
    if required && value.trim().is_empty() {
        return invalid(format!("{what} is required"));
    }
    if value.chars().count() > TEXT_LEN_MAX {
        return invalid(format!("{what} is longer than {TEXT_LEN_MAX} characters"));
    }
    Ok(())
}

/// Short form of a time for messages at the counter, in UTC, saying so (`2026-11-23 06:02 UTC`);
/// `LocalZone::show` gives it in a site's own zone.
pub fn when(t: OffsetDateTime) -> String {
    crate::zone::LocalZone::utc().show(t)
}

/// Describes where an account is, in words for a refusal, with times in the site's zone.
fn describe(state: &State, zone: &crate::zone::LocalZone, account: &Account, since: Option<OffsetDateTime>) -> String {
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

struct Checker<'a> {
    state: &'a State,
    ctx: &'a Ctx,
    actor: &'a Person,
}

impl<'a> Checker<'a> {
    /// The actor's role allows `op`, and `unit` is inside the actor's unit subtree.
    fn authorize(&self, op: Op, unit: &UnitId) -> R<()> {
        if !self.actor.roles.iter().any(|r| role_allows(*r, op)) {
            let roles: Vec<&str> = self.actor.roles.iter().map(|r| r.as_str()).collect();
            return refuse(
                "permission.role",
                format!("badge {} ({}) may not {}: no role of theirs allows it", self.ctx.actor, roles.join(", "), op.as_str()),
            );
        }
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
        Ok(())
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
                            (Account::Person(_), Account::Location(_)) => "; return it first",
                            _ => "",
                        };
                        return refuse(
                            "custody.one_account",
                            format!("serial {s} {}{hint}, not {from}", describe(self.state, &self.ctx.zone, &si.account, Some(si.since))),
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
        let policy = self.state.effective_policy(unit).0;
        if policy.two_person_all_movements {
            return self.witness(unit, &format!("{what} under a two-person posture"));
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

fn single_movement(kind: MovementKind, from: Account, to: Account, lines: Vec<Line>, document: Option<String>) -> Decision {
    Decision { events: vec![Event::Movement { kind, from, to, lines, document }], corrects: None }
}

/// Refusal of a sum that would pass the largest quantity, naming the lot.
fn over_limit(lot: &LotNo, what: &str) -> Rejection {
    Rejection::Refused {
        rule: "quantity.max",
        message: format!("lot {lot}: {what} add up to more than {QUANTITY_MAX_UNITS}, the most one line, balance or sum may hold"),
    }
}
fn over_limit_text(what: &str) -> Rejection {
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
    let decision = decide_command(state, ctx, command)?;
    check_bounds(state, &decision.events)?;
    // Storage safety applies to every movement that ends in a magazine or depot, whatever the command.
    crate::safety::check_decision(state, &decision.events)?;
    Ok(decision)
}

fn decide_command(state: &State, ctx: &Ctx, command: &Command) -> Result<Decision, Rejection> {
    let Some(actor) = state.people.get(&ctx.actor) else {
        return not_found("badge", &ctx.actor);
    };
    let c = Checker { state, ctx, actor };
    let one = |e: Event| Ok(Decision { events: vec![e], corrects: None });
    match command {
        Command::CreateUnit { unit, name, parent } => {
            text("unit name", name, true)?;
            if !state.units.contains_key(parent) {
                return not_found("unit", parent);
            }
            c.authorize(Op::Setup, parent)?;
            if state.units.contains_key(unit) {
                return refuse("unique", format!("unit {unit} already exists"));
            }
            one(Event::UnitCreated { unit: unit.clone(), name: name.clone(), parent: parent.clone() })
        }
        Command::CreateLocation { location, name, unit, parent, kind, keeper, magazine } => {
            text("location name", name, true)?;
            if !state.units.contains_key(unit) {
                return not_found("unit", unit);
            }
            c.authorize(Op::Setup, unit)?;
            if state.locations.contains_key(location) {
                return refuse("unique", format!("location {location} already exists"));
            }
            if let Some(p) = parent {
                let pl = c.location(p)?;
                if pl.unit != *unit {
                    return refuse(
                        "location.same_unit",
                        format!("location {location} is in unit {unit} but its parent {p} is in unit {}", pl.unit),
                    );
                }
            }
            if let Some(k) = keeper {
                c.person(k)?;
            }
            if let Some(m) = magazine {
                if *kind != LocationKind::Magazine {
                    return invalid(format!("only a magazine carries a licence; {location} is a {kind}"));
                }
                if !(m.neq_limit_kg.is_finite() && m.neq_limit_kg >= 0.0)
                    || m.exposed_sites.iter().any(|e| !(e.distance_m.is_finite() && e.distance_m >= 0.0))
                {
                    return invalid("licence figures must be finite, non-negative numbers");
                }
            }
            one(Event::LocationCreated {
                location: location.clone(),
                name: name.clone(),
                unit: unit.clone(),
                parent: parent.clone(),
                kind: *kind,
                keeper: keeper.clone(),
                magazine: magazine.clone(),
            })
        }
        Command::DefineItemType { item_type, name, kind, tracking, unit_of_measure, neq_kg_per_unit, un_code, qualification } => {
            text("item type name", name, true)?;
            text("unit of measure", unit_of_measure, true)?;
            let root = state.site.as_ref().map(|s| s.root_unit.clone()).unwrap_or_else(|| actor.unit.clone());
            // The catalog is shared by the whole site, so only an administrator at the root may change it.
            c.authorize(Op::Setup, &root)?;
            if state.item_types.contains_key(item_type) {
                return refuse("unique", format!("item type {item_type} already exists"));
            }
            if !(neq_kg_per_unit.is_finite() && *neq_kg_per_unit >= 0.0) {
                return invalid(format!("NEQ per unit {neq_kg_per_unit} kg must be a finite number ≥ 0"));
            }
            if let Some(code) = un_code {
                if !valid_un_code(code) {
                    return invalid(format!("UN code {code:?} is not a class 1 classification code such as 1.1D or 1.4S"));
                }
            }
            if matches!(kind, ItemKind::Weapon | ItemKind::Key) && *tracking == Tracking::Lot {
                return invalid(format!("a {kind} is tracked by serial, not by lot alone"));
            }
            if let Some(q) = qualification {
                text("qualification", q, true)?;
            }
            one(Event::ItemTypeDefined {
                item_type: item_type.clone(),
                name: name.clone(),
                kind: *kind,
                tracking: *tracking,
                unit_of_measure: unit_of_measure.clone(),
                neq_kg_per_unit: *neq_kg_per_unit,
                un_code: un_code.clone(),
                qualification: qualification.clone(),
            })
        }
        Command::RegisterPerson { badge, name, unit, roles, pin_hash } => {
            text("name", name, true)?;
            if !state.units.contains_key(unit) {
                return not_found("unit", unit);
            }
            c.authorize(Op::Setup, unit)?;
            if state.people.contains_key(badge) {
                return refuse("unique", format!("badge {badge} is already registered"));
            }
            if roles.is_empty() {
                return invalid("a person needs at least one role");
            }
            if pin_hash.is_empty() {
                return invalid("empty credential hash");
            }
            // The ledger records that a PIN was set; its hash goes to the credentials table (qm-app).
            Ok(Decision {
                events: vec![
                    Event::PersonRegistered {
                        badge: badge.clone(),
                        name: name.clone(),
                        unit: unit.clone(),
                        roles: roles.clone(),
                        pin_hash: None,
                    },
                    Event::CredentialSet { badge: badge.clone(), kind: CredentialKind::Pin, hash: None },
                ],
                corrects: None,
            })
        }
        Command::GrantQualification { badge, qualification, expires } => {
            text("qualification", qualification, true)?;
            let p = c.person(badge)?;
            c.authorize(Op::Setup, &p.unit)?;
            one(Event::QualificationGranted { badge: badge.clone(), qualification: qualification.clone(), expires: *expires })
        }
        Command::SetLocationSafety { location, flags, conditions } => {
            let loc = c.location(location)?;
            c.authorize(Op::Setup, &loc.unit)?;
            if flags.len() > 32
                || flags.iter().any(|f| f.is_empty() || f.len() > 64 || !f.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_'))
            {
                return invalid("flags are up to 32 words of letters, digits and '_'");
            }
            if let Some(cond) = conditions {
                for r in [cond.temperature_c, cond.humidity_pct].into_iter().flatten() {
                    if !(r.min.is_finite() && r.max.is_finite() && r.min <= r.max) {
                        return invalid(format!("range {}–{} is not a range", r.min, r.max));
                    }
                }
                if cond.excursion_minutes.is_some_and(|m| !(0..=60 * 24 * 30).contains(&m)) {
                    return invalid("excursion time is 0 to 43200 minutes");
                }
            }
            one(Event::LocationSafetySet { location: location.clone(), flags: flags.clone(), conditions: *conditions })
        }
        Command::SetTimeZone { zone } => {
            let root = state.site.as_ref().map(|s| s.root_unit.clone()).unwrap_or_else(|| actor.unit.clone());
            c.authorize(Op::Setup, &root)?;
            if !crate::zone::valid_zone_name(zone) {
                return invalid(format!("{zone:?} is not a time zone name such as Europe/Paris or UTC"));
            }
            one(Event::SiteTimeZoneSet { zone: zone.clone() })
        }
        Command::SetItemTypeStorage { item_type, temperature_c, humidity_pct } => {
            c.item_type(item_type)?;
            let root = state.site.as_ref().map(|s| s.root_unit.clone()).unwrap_or_else(|| actor.unit.clone());
            c.authorize(Op::Setup, &root)?;
            for r in [temperature_c, humidity_pct].into_iter().flatten() {
                if !(r.min.is_finite() && r.max.is_finite() && r.min <= r.max) {
                    return invalid(format!("range {}–{} is not a range", r.min, r.max));
                }
            }
            one(Event::ItemTypeStorageSet { item_type: item_type.clone(), temperature_c: *temperature_c, humidity_pct: *humidity_pct })
        }
        Command::RecordReadings { location, readings, window, sha256 } => decide_readings(&c, location, readings, window, sha256),
        Command::SetCredential { badge, kind, hash } => {
            let p = c.person(badge)?;
            if *badge != ctx.actor {
                c.authorize(Op::Setup, &p.unit)?;
            }
            if hash.is_empty() {
                return invalid("empty credential hash");
            }
            one(Event::CredentialSet { badge: badge.clone(), kind: *kind, hash: None })
        }
        Command::IssueToken { token, label, unit, operations, secret_hash } => {
            text("token label", label, true)?;
            if !state.units.contains_key(unit) {
                return not_found("unit", unit);
            }
            c.authorize(Op::Setup, unit)?;
            if token.is_empty() || token.len() > 64 || !token.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-') {
                return invalid("a token id has 1 to 64 letters, digits or '-'");
            }
            if state.tokens.contains_key(token) {
                return refuse("unique", format!("token {token} already exists"));
            }
            if operations.is_empty() {
                return invalid("a token needs at least one operation");
            }
            if secret_hash.is_empty() {
                return invalid("empty credential hash");
            }
            one(Event::TokenIssued {
                token: token.clone(),
                label: label.clone(),
                unit: unit.clone(),
                operations: operations.clone(),
                secret_hash: None,
            })
        }
        Command::RevokeToken { token, reason } => {
            text("reason", reason, true)?;
            let Some(t) = state.tokens.get(token) else { return not_found("token", token) };
            c.authorize(Op::Setup, &t.unit)?;
            if t.revoked {
                return refuse("token.revoked", format!("token {token} is already revoked"));
            }
            one(Event::TokenRevoked { token: token.clone(), reason: reason.clone() })
        }
        Command::SetPolicy { unit, rules } => {
            if !state.units.contains_key(unit) {
                return not_found("unit", unit);
            }
            c.authorize(Op::Setup, unit)?;
            one(Event::PolicySet { unit: unit.clone(), rules: rules.clone() })
        }
        Command::Receive { to, from, document, lines } => decide_receive(&c, to, from, document, lines),
        Command::Issue { to, from, items } => decide_issue(&c, to, from.as_ref(), items),
        Command::Return { from, to, items } => {
            let loc = c.location(to)?;
            c.authorize(Op::Return, &loc.unit)?;
            let p = c.person(from)?;
            if !state.unit_within(&p.unit, &actor.unit) {
                return refuse(
                    "permission.subtree",
                    format!("badge {from} belongs to unit {}, outside the subtree of badge {}", p.unit, ctx.actor),
                );
            }
            let account = Account::Person(from.clone());
            let lines = c.take(&account, items).map_err(|e| match e {
                Rejection::Refused { rule: "custody.one_account", message } => Rejection::Refused {
                    rule: "custody.return_matches",
                    message: format!("{message}; a return must match what badge {from} holds"),
                },
                other => other,
            })?;
            c.movement_witness(&loc.unit, &lines, "return")?;
            Ok(single_movement(MovementKind::Return, account, Account::Location(to.clone()), lines, None))
        }
        Command::Move { from, to, items } => {
            let (fl, tl) = (c.location(from)?, c.location(to)?);
            c.authorize(Op::Move, &fl.unit)?;
            if fl.unit != tl.unit {
                return refuse(
                    "move.same_unit",
                    format!("{from} is in unit {} and {to} in unit {}; stock leaves a unit only by transfer", fl.unit, tl.unit),
                );
            }
            if from == to {
                return invalid(format!("{from} is both source and destination"));
            }
            let lines = c.take(&Account::Location(from.clone()), items)?;
            c.movement_witness(&fl.unit, &lines, "move")?;
            Ok(single_movement(MovementKind::Move, Account::Location(from.clone()), Account::Location(to.clone()), lines, None))
        }
        Command::Dispatch { from, to_unit, items, document } => {
            if let Some(d) = document {
                text("document", d, false)?;
            }
            let fl = c.location(from)?;
            c.authorize(Op::Transfer, &fl.unit)?;
            if !state.units.contains_key(to_unit) {
                return not_found("unit", to_unit);
            }
            if *to_unit == fl.unit {
                return invalid(format!("transfer from unit {} to itself; use move", fl.unit));
            }
            let lines = c.take(&Account::Location(from.clone()), items)?;
            // Suspended stock stays where it is until the unit that suspended it decides otherwise.
            for line in &lines {
                if let Line::Lot { lot, .. } = line {
                    if let Some((LotStatus::Suspended, by)) = state.lot_status_at(lot, &fl.unit) {
                        let by = by.map(|u| format!(" by decision of unit {u}")).unwrap_or_default();
                        return refuse(
                            "lot.status",
                            format!("lot {lot} is suspended{by}; suspended stock does not move until that decision is lifted"),
                        );
                    }
                }
            }
            c.movement_witness(&fl.unit, &lines, "dispatch")?;
            let transfer = TransferId::parse(&format!("T-{}", state.transfers.len() + 1)).map_err(|e| Rejection::Invalid(e.to_string()))?;
            Ok(Decision {
                events: vec![
                    Event::TransferDispatched {
                        transfer: transfer.clone(),
                        from_unit: fl.unit.clone(),
                        to_unit: to_unit.clone(),
                        document: document.clone(),
                    },
                    Event::Movement {
                        kind: MovementKind::Dispatch,
                        from: Account::Location(from.clone()),
                        to: Account::Transit(transfer),
                        lines,
                        document: document.clone(),
                    },
                ],
                corrects: None,
            })
        }
        Command::ReceiveTransfer { transfer, to, received } => decide_receive_transfer(&c, transfer, to, received),
        Command::Expend { from, items, document } => {
            text("document", document, true)?;
            let unit = c.unit_of(from)?;
            c.authorize(Op::Expend, &unit)?;
            let lines = c.take(from, items)?;
            c.movement_witness(&unit, &lines, "expenditure")?;
            Ok(single_movement(MovementKind::Expend, from.clone(), Account::Expended, lines, Some(document.clone())))
        }
        Command::Destroy { from, items, document } => {
            text("document", document, true)?;
            let fl = c.location(from)?;
            c.authorize(Op::Destroy, &fl.unit)?;
            let lines = c.take(&Account::Location(from.clone()), items)?;
            c.movement_witness(&fl.unit, &lines, "destruction")?;
            Ok(single_movement(MovementKind::Destroy, Account::Location(from.clone()), Account::Destroyed, lines, Some(document.clone())))
        }
        Command::ReportLost { from, items, document } => {
            if let Some(d) = document {
                text("document", d, false)?;
            }
            let unit = c.unit_of(from)?;
            c.authorize(Op::ReportLost, &unit)?;
            let lines = c.take(from, items)?;
            Ok(single_movement(MovementKind::Lose, from.clone(), Account::Lost, lines, document.clone()))
        }
        Command::Recover { to, items, document } => {
            let loc = c.location(to)?;
            c.authorize(Op::Recover, &loc.unit)?;
            let lines = c.take(&Account::Lost, items)?;
            c.movement_witness(&loc.unit, &lines, "recovery")?;
            Ok(single_movement(MovementKind::Recover, Account::Lost, Account::Location(to.clone()), lines, document.clone()))
        }
        Command::SetLotStatus { lot, status, reason, unit } => {
            text("reason", reason, true)?;
            let Some(l) = state.lots.get(lot) else {
                return not_found("lot", lot);
            };
            let unit = unit.clone().unwrap_or_else(|| actor.unit.clone());
            if !state.units.contains_key(&unit) {
                return not_found("unit", &unit);
            }
            c.authorize(Op::LotStatus, &unit)?;
            let root = state.site.as_ref().map(|s| &s.root_unit);
            let current =
                if Some(&unit) == root { l.status } else { l.decisions.get(&unit).map(|d| d.status).unwrap_or(LotStatus::Serviceable) };
            if current == *status {
                return refuse("lot.status", format!("lot {lot} is already {status} by decision of unit {unit}"));
            }
            one(Event::LotStatusChanged { lot: lot.clone(), status: *status, reason: reason.clone(), unit: Some(unit) })
        }
        Command::StartCount { root, kind, blind } => {
            let loc = c.location(root)?;
            c.authorize(Op::Count, &loc.unit)?;
            let policy = state.effective_policy(&loc.unit).0;
            let subtree = state.location_subtree(root);
            if policy.counter_not_keeper {
                if let Some(l) = subtree.iter().find(|l| state.locations.get(*l).and_then(|x| x.keeper.as_ref()) == Some(&ctx.actor)) {
                    return refuse(
                        "count.counter_not_keeper",
                        format!(
                            "badge {} keeps location {l} in the counted subtree; policy at unit {} requires someone else to count it",
                            ctx.actor, loc.unit
                        ),
                    );
                }
            }
            if policy.counter_not_previous && state.last_counter.get(root) == Some(&ctx.actor) {
                return refuse(
                    "count.counter_not_previous",
                    format!(
                        "badge {} did the previous count of {root}; policy at unit {} requires a different counter",
                        ctx.actor, loc.unit
                    ),
                );
            }
            if let Some((id, _)) =
                state.counts.iter().find(|(_, k)| !k.closed && (subtree.contains(&k.root) || state.location_within(root, &k.root)))
            {
                return refuse("count.one_open", format!("count {id} is still open over {root}; close it first"));
            }
            let count = CountId::parse(&format!("C-{}", state.counts.len() + 1)).map_err(|e| Rejection::Invalid(e.to_string()))?;
            one(Event::CountStarted { count, root: root.clone(), kind: *kind, blind: *blind, counter: ctx.actor.clone() })
        }
        Command::RecordCount { count, location, serials, lots } => {
            let Some(k) = state.counts.get(count) else {
                return not_found("count", count);
            };
            if k.closed {
                return refuse("count.open", format!("count {count} is closed"));
            }
            if k.counter != ctx.actor {
                return refuse("count.counter", format!("count {count} is being counted by badge {}, not {}", k.counter, ctx.actor));
            }
            c.location(location)?;
            if !state.location_within(location, &k.root) {
                return refuse("count.scope", format!("location {location} is not inside {}, the subtree of count {count}", k.root));
            }
            if serials.len() + lots.len() > LINES_MAX {
                return invalid(format!("at most {LINES_MAX} lines per recording"));
            }
            if lots.iter().any(|(_, q)| !q.is_positive()) {
                return invalid("counted quantities must be more than zero; leave out what is not there");
            }
            one(Event::CountRecorded { count: count.clone(), location: location.clone(), serials: serials.clone(), lots: lots.clone() })
        }
        Command::CloseCount { count } => decide_close_count(&c, count),
        Command::ResolveDiscrepancy { discrepancy, approve, note, item_type } => {
            decide_resolve(&c, discrepancy, *approve, note, item_type.as_ref())
        }
        Command::Correct { original, reason } => {
            text("reason", reason, true)?;
            let Event::Movement { kind, from, to, lines, document } = &original.event else {
                return refuse(
                    "correction.movement_only",
                    format!(
                        "entry {} is a {}; only movements are corrected by a reverse movement",
                        original.seq,
                        original.event.type_name()
                    ),
                );
            };
            if *kind == MovementKind::Correct {
                return refuse(
                    "correction.movement_only",
                    format!("entry {} is itself a correction; record a new movement instead", original.seq),
                );
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
                corrects: Some(Correction { seq: original.seq, reason: reason.clone() }),
            })
        }
    }
}

/// `1.1D`, `1.4S` …: division 1 to 6 and a compatibility group letter.
pub fn valid_un_code(code: &str) -> bool {
    let b = code.as_bytes();
    b.len() == 4 && b[0] == b'1' && b[1] == b'.' && (b'1'..=b'6').contains(&b[2]) && b"ABCDEFGHJKLNS".contains(&b[3])
}

fn decide_receive(c: &Checker, to: &LocationId, from: &str, document: &str, lines: &[ReceiptLine]) -> R<Decision> {
    let state = c.state;
    text("document", document, true)?;
    text("supplier", from, true)?;
    let loc = c.location(to)?;
    c.authorize(Op::Receive, &loc.unit)?;
    if lines.is_empty() {
        return invalid("a receipt needs at least one line");
    }
    if lines.len() > LINES_MAX {
        return invalid(format!("{} lines; at most {LINES_MAX} per receipt", lines.len()));
    }
    let mut events = vec![];
    let mut out = vec![];
    let mut new_serials = BTreeSet::new();
    let mut new_lots: BTreeMap<&LotNo, &ItemTypeId> = BTreeMap::new();
    for (i, line) in lines.iter().enumerate() {
        let n = i + 1;
        let t = c.item_type(&line.item_type)?;
        match (t.tracking, &line.serial, &line.lot) {
            (Tracking::Serial, None, _) | (Tracking::Both, None, _) => {
                return invalid(format!("line {n}: item type {} is tracked by serial; give a serial", line.item_type))
            }
            (Tracking::Both, Some(_), None) => {
                return invalid(format!("line {n}: item type {} is tracked by serial and lot; give both", line.item_type))
            }
            (Tracking::Lot, Some(_), _) => {
                return invalid(format!("line {n}: item type {} is tracked by lot; a serial is not expected", line.item_type))
            }
            (Tracking::Lot, None, None) => {
                return invalid(format!("line {n}: item type {} is tracked by lot; give a lot number", line.item_type))
            }
            _ => {}
        }
        if let Some(lot) = &line.lot {
            match state.lots.get(lot) {
                Some(l) if l.item_type != line.item_type => {
                    return refuse(
                        "lot.one_item_type",
                        format!("line {n}: lot {lot} is already on the books as item type {}, not {}", l.item_type, line.item_type),
                    );
                }
                Some(_) => {}
                None => match new_lots.get(lot) {
                    Some(t) if **t != line.item_type => {
                        return refuse("lot.one_item_type", format!("line {n}: lot {lot} is named with two item types"))
                    }
                    Some(_) => {}
                    None => {
                        new_lots.insert(lot, &line.item_type);
                        if let (Some(m), Some(e)) = (line.manufactured, line.expires) {
                            if e < m {
                                return invalid(format!("line {n}: lot {lot} expires ({e}) before it was made ({m})"));
                            }
                        }
                        events.push(Event::LotRegistered {
                            lot: lot.clone(),
                            item_type: line.item_type.clone(),
                            manufactured: line.manufactured,
                            expires: line.expires,
                        });
                    }
                },
            }
        }
        if let Some(s) = &line.serial {
            if let Some(si) = state.serials.get(s) {
                return refuse(
                    "custody.one_account",
                    format!(
                        "line {n}: serial {s} is already on the books: it {}",
                        describe(state, &c.ctx.zone, &si.account, Some(si.since))
                    ),
                );
            }
            if !new_serials.insert(s) {
                return invalid(format!("line {n}: serial {s} is named twice"));
            }
            events.push(Event::SerialRegistered { serial: s.clone(), item_type: line.item_type.clone(), lot: line.lot.clone() });
            out.push(Line::Serial { serial: s.clone(), item_type: line.item_type.clone() });
        } else if let Some(lot) = &line.lot {
            if !line.quantity.is_positive() {
                return invalid(format!("line {n}: quantity must be more than zero"));
            }
            out.push(Line::Lot { lot: lot.clone(), item_type: line.item_type.clone(), quantity: line.quantity });
        }
    }
    c.movement_witness(&loc.unit, &out, "receipt")?;
    events.push(Event::Movement {
        kind: MovementKind::Receive,
        from: Account::Supplier(from.trim().to_string()),
        to: Account::Location(to.clone()),
        lines: out,
        document: Some(document.to_string()),
    });
    Ok(Decision { events, corrects: None })
}

fn decide_issue(c: &Checker, to: &Badge, from: Option<&LocationId>, items: &[ItemRef]) -> R<Decision> {
    let state = c.state;
    let person = c.person(to)?;
    if items.is_empty() {
        return invalid("no items given");
    }
    // Serials come from wherever they are racked; lots need the place they are drawn from.
    let mut by_source: BTreeMap<LocationId, Vec<ItemRef>> = BTreeMap::new();
    for item in items {
        let source = match (item, from) {
            (_, Some(f)) => f.clone(),
            (ItemRef::Serial(s), None) => match state.serials.get(s) {
                None => return not_found("serial", s),
                Some(si) => match &si.account {
                    Account::Location(l) => l.clone(),
                    other => {
                        let hint = if matches!(other, Account::Person(_)) { "; return it first" } else { "" };
                        return refuse(
                            "custody.one_account",
                            format!("serial {s} {}{hint}", describe(state, &c.ctx.zone, other, Some(si.since))),
                        );
                    }
                },
            },
            (ItemRef::Lot { lot, .. }, None) => return invalid(format!("lot {lot}: say which location it is drawn from")),
        };
        by_source.entry(source).or_default().push(item.clone());
    }
    let mut events = vec![];
    for (source, items) in &by_source {
        let loc = c.location(source)?;
        c.authorize(Op::Issue, &loc.unit)?;
        if !state.unit_within(&person.unit, &c.actor.unit) {
            return refuse(
                "permission.subtree",
                format!("badge {to} belongs to unit {}, outside the subtree of badge {}", person.unit, c.ctx.actor),
            );
        }
        let lines = c.take(&Account::Location(source.clone()), items)?;
        let policy = state.effective_policy(&loc.unit).0;
        let mut ammunition = Quantity::ZERO;
        for line in &lines {
            c.issuable(line, &loc.unit)?;
            let t = c.item_type(line.item_type())?;
            if let Some(q) = &t.qualification {
                match person.qualifications.get(q) {
                    None => {
                        return refuse(
                            "qualification",
                            format!("badge {to} ({}) is not qualified on {q}, required for item type {}", person.name, line.item_type()),
                        )
                    }
                    Some(exp) if *exp < c.ctx.at.date() => {
                        return refuse(
                            "qualification",
                            format!(
                                "badge {to} ({}) qualification {q} expired on {exp}; item type {} requires it",
                                person.name,
                                line.item_type()
                            ),
                        )
                    }
                    Some(_) => {}
                }
            }
            if t.kind == ItemKind::Ammunition {
                ammunition = ammunition.checked_add(line.quantity()).ok_or_else(|| over_limit_text("the ammunition of this issue"))?;
            }
        }
        if let Some(cap) = policy.max_issue_quantity {
            if ammunition > cap {
                return refuse(
                    "policy.max_issue_quantity",
                    format!("issue of {ammunition} rounds to badge {to} exceeds the cap of {cap} per issue in force at unit {}", loc.unit),
                );
            }
        }
        c.movement_witness(&loc.unit, &lines, "issue")?;
        events.push(Event::Movement {
            kind: MovementKind::Issue,
            from: Account::Location(source.clone()),
            to: Account::Person(to.clone()),
            lines,
            document: None,
        });
    }
    Ok(Decision { events, corrects: None })
}

fn next_discrepancy_ids(state: &State, n: usize) -> R<Vec<DiscrepancyId>> {
    let start = state.discrepancies.len() + 1;
    (start..start + n).map(|i| DiscrepancyId::parse(&format!("D-{i}")).map_err(|e| Rejection::Invalid(e.to_string()))).collect()
}

fn decide_receive_transfer(c: &Checker, transfer: &TransferId, to: &LocationId, received: &[ItemRef]) -> R<Decision> {
    let state = c.state;
    let Some(t) = state.transfers.get(transfer) else {
        return not_found("transfer", transfer);
    };
    if t.received_at_location.is_some() {
        return refuse("transfer.once", format!("transfer {transfer} was already received"));
    }
    let loc = c.location(to)?;
    if loc.unit != t.to_unit {
        return refuse(
            "transfer.destination",
            format!("transfer {transfer} is addressed to unit {}, and {to} is in unit {}", t.to_unit, loc.unit),
        );
    }
    c.authorize(Op::Transfer, &loc.unit)?;
    let transit = Account::Transit(transfer.clone());
    let dest = Account::Location(to.clone());
    let mut sent_serials: BTreeMap<&Serial, &ItemTypeId> = BTreeMap::new();
    let mut sent_lots: BTreeMap<&LotNo, (Quantity, &ItemTypeId)> = BTreeMap::new();
    // What is still in transit, not what was dispatched: stock may have left transit since
    // (reported lost on the road, or the dispatch corrected), and only what is there can arrive.
    for l in &t.lines {
        match l {
            Line::Serial { serial, item_type } => {
                if state.serials.get(serial).is_some_and(|s| s.account == transit) {
                    sent_serials.insert(serial, item_type);
                }
            }
            Line::Lot { lot, item_type, .. } => {
                let held = state.balance(&transit, lot);
                if held.is_positive() {
                    sent_lots.insert(lot, (held, item_type));
                }
            }
        }
    }
    let mut got_serials = BTreeSet::new();
    let mut got_lots: BTreeMap<&LotNo, Quantity> = BTreeMap::new();
    for r in received {
        match r {
            ItemRef::Serial(s) => {
                if !got_serials.insert(s) {
                    return invalid(format!("serial {s} is named twice"));
                }
            }
            ItemRef::Lot { lot, quantity } => {
                if !quantity.is_positive() {
                    return invalid(format!("received quantity of lot {lot} must be more than zero; leave out what did not arrive"));
                }
                let got = got_lots.entry(lot).or_default();
                *got = got.checked_add(*quantity).ok_or_else(|| over_limit(lot, "the received lines"))?;
            }
        }
    }
    let mut lines = vec![];
    let mut facts = vec![];
    let fact = |kind,
                serial: Option<&Serial>,
                lot: Option<&LotNo>,
                item_type: Option<&ItemTypeId>,
                book: Quantity,
                counted: Quantity,
                from: Account,
                to_acc: Account,
                qty: Quantity| DiscrepancyFacts {
        kind,
        source: DiscrepancySource::Transfer(transfer.clone()),
        serial: serial.cloned(),
        lot: lot.cloned(),
        item_type: item_type.cloned(),
        book_account: Some(transit.clone()),
        found_account: Some(dest.clone()),
        book_quantity: book,
        counted_quantity: counted,
        adjust_from: from,
        adjust_to: to_acc,
        adjust_quantity: qty,
    };
    for (s, it) in &sent_serials {
        if got_serials.contains(*s) {
            lines.push(Line::Serial { serial: (*s).clone(), item_type: (*it).clone() });
        } else {
            facts.push(fact(
                DiscrepancyKind::MissingSerial,
                Some(s),
                None,
                Some(it),
                Quantity::ONE,
                Quantity::ZERO,
                transit.clone(),
                Account::Lost,
                Quantity::ONE,
            ));
        }
    }
    for s in &got_serials {
        if !sent_serials.contains_key(*s) {
            let known = state.serials.get(*s);
            let from = known.map(|k| k.account.clone()).unwrap_or(Account::Found);
            facts.push(fact(
                DiscrepancyKind::UnexpectedSerial,
                Some(s),
                None,
                known.map(|k| &k.item_type),
                Quantity::ZERO,
                Quantity::ONE,
                from,
                dest.clone(),
                Quantity::ONE,
            ));
        }
    }
    for (lot, (sent, it)) in &sent_lots {
        let got = got_lots.get(*lot).copied().unwrap_or_default();
        let moved = got.min(*sent);
        if moved.is_positive() {
            lines.push(Line::Lot { lot: (*lot).clone(), item_type: (*it).clone(), quantity: moved });
        }
        if got < *sent {
            facts.push(fact(
                DiscrepancyKind::QuantityShort,
                None,
                Some(lot),
                Some(it),
                *sent,
                got,
                transit.clone(),
                Account::Lost,
                sent.checked_sub(got).ok_or_else(|| over_limit(lot, "the shortage"))?,
            ));
        } else if got > *sent {
            facts.push(fact(
                DiscrepancyKind::QuantityOver,
                None,
                Some(lot),
                Some(it),
                *sent,
                got,
                Account::Found,
                dest.clone(),
                got.checked_sub(*sent).ok_or_else(|| over_limit(lot, "the excess"))?,
            ));
        }
    }
    for (lot, got) in &got_lots {
        if !sent_lots.contains_key(*lot) {
            let it = state.lots.get(*lot).map(|l| &l.item_type);
            facts.push(fact(DiscrepancyKind::QuantityOver, None, Some(lot), it, Quantity::ZERO, *got, Account::Found, dest.clone(), *got));
        }
    }
    let mut events = vec![];
    if !lines.is_empty() {
        c.movement_witness(&loc.unit, &lines, "transfer receipt")?;
        events.push(Event::Movement {
            kind: MovementKind::TransferReceive,
            from: transit.clone(),
            to: dest.clone(),
            lines,
            document: t.document.clone(),
        });
    }
    let ids = next_discrepancy_ids(state, facts.len())?;
    for (id, f) in ids.iter().zip(facts) {
        events.push(Event::DiscrepancyOpened { discrepancy: id.clone(), facts: f });
    }
    events.push(Event::TransferReceived { transfer: transfer.clone(), location: to.clone(), discrepancies: ids });
    Ok(Decision { events, corrects: None })
}

fn decide_close_count(c: &Checker, count: &CountId) -> R<Decision> {
    let state = c.state;
    let Some(k) = state.counts.get(count) else {
        return not_found("count", count);
    };
    if k.closed {
        return refuse("count.open", format!("count {count} is already closed"));
    }
    let root = c.location(&k.root)?;
    if k.counter != c.ctx.actor {
        c.authorize(Op::Resolve, &root.unit)?;
    } else {
        c.authorize(Op::Count, &root.unit)?;
    }
    // A full count covers every place in the subtree; a cycle count only the places it recorded.
    let counted: BTreeSet<LocationId> = match k.kind {
        CountKind::Full => state.location_subtree(&k.root),
        CountKind::Cycle => k.serials.keys().chain(k.lots.keys()).cloned().collect(),
    };
    let mut seen_at: BTreeMap<&Serial, &LocationId> = BTreeMap::new();
    for (loc, serials) in &k.serials {
        for s in serials {
            seen_at.entry(s).or_insert(loc);
        }
    }
    let source = DiscrepancySource::Count(count.clone());
    let mut facts = vec![];
    let mut explained: BTreeSet<&Serial> = BTreeSet::new();
    for (s, si) in &state.serials {
        let Account::Location(book) = &si.account else {
            continue;
        };
        if !counted.contains(book) {
            continue;
        }
        match seen_at.get(s) {
            Some(found) if *found == book => {
                explained.insert(s);
            }
            Some(found) => {
                explained.insert(s);
                facts.push(DiscrepancyFacts {
                    kind: DiscrepancyKind::WrongPlace,
                    source: source.clone(),
                    serial: Some(s.clone()),
                    lot: None,
                    item_type: Some(si.item_type.clone()),
                    book_account: Some(si.account.clone()),
                    found_account: Some(Account::Location((*found).clone())),
                    book_quantity: Quantity::ONE,
                    counted_quantity: Quantity::ONE,
                    adjust_from: si.account.clone(),
                    adjust_to: Account::Location((*found).clone()),
                    adjust_quantity: Quantity::ONE,
                });
            }
            None => facts.push(DiscrepancyFacts {
                kind: DiscrepancyKind::MissingSerial,
                source: source.clone(),
                serial: Some(s.clone()),
                lot: None,
                item_type: Some(si.item_type.clone()),
                book_account: Some(si.account.clone()),
                found_account: None,
                book_quantity: Quantity::ONE,
                counted_quantity: Quantity::ZERO,
                adjust_from: si.account.clone(),
                adjust_to: Account::Lost,
                adjust_quantity: Quantity::ONE,
            }),
        }
    }
    for (s, found) in &seen_at {
        if explained.contains(s) {
            continue;
        }
        let known = state.serials.get(*s);
        let book = known.map(|k| k.account.clone());
        let kind = match &book {
            Some(a) if a.is_internal() => DiscrepancyKind::WrongPlace,
            _ => DiscrepancyKind::UnexpectedSerial,
        };
        facts.push(DiscrepancyFacts {
            kind,
            source: source.clone(),
            serial: Some((*s).clone()),
            lot: None,
            item_type: known.map(|k| k.item_type.clone()),
            book_account: book.clone(),
            found_account: Some(Account::Location((*found).clone())),
            book_quantity: Quantity::ZERO,
            counted_quantity: Quantity::ONE,
            adjust_from: book.unwrap_or(Account::Found),
            adjust_to: Account::Location((*found).clone()),
            adjust_quantity: Quantity::ONE,
        });
    }
    // Lots: compare book and count per place; a box in the wrong place shows as short here and over there.
    let mut book_lots: BTreeMap<(&LocationId, &LotNo), Quantity> = BTreeMap::new();
    for ((a, lot), b) in &state.balances {
        if let Account::Location(l) = a {
            if counted.contains(l) && b.quantity.is_positive() {
                book_lots.insert((l, lot), b.quantity);
            }
        }
    }
    let mut all_keys: BTreeSet<(&LocationId, &LotNo)> = book_lots.keys().copied().collect();
    for (loc, lots) in &k.lots {
        for lot in lots.keys() {
            all_keys.insert((loc, lot));
        }
    }
    for (loc, lot) in all_keys {
        let book = book_lots.get(&(loc, lot)).copied().unwrap_or_default();
        let got = k.lots.get(loc).and_then(|m| m.get(lot)).copied().unwrap_or_default();
        if book == got {
            continue;
        }
        let here = Account::Location(loc.clone());
        let (kind, from, to, q) = if got < book {
            (DiscrepancyKind::QuantityShort, here.clone(), Account::Lost, book.checked_sub(got))
        } else {
            (DiscrepancyKind::QuantityOver, Account::Found, here.clone(), got.checked_sub(book))
        };
        let q = q.ok_or_else(|| over_limit(lot, "the difference between book and count"))?;
        facts.push(DiscrepancyFacts {
            kind,
            source: source.clone(),
            serial: None,
            lot: Some(lot.clone()),
            item_type: state.lots.get(lot).map(|l| l.item_type.clone()),
            book_account: Some(here.clone()),
            found_account: Some(here),
            book_quantity: book,
            counted_quantity: got,
            adjust_from: from,
            adjust_to: to,
            adjust_quantity: q,
        });
    }
    let ids = next_discrepancy_ids(state, facts.len())?;
    let mut events: Vec<Event> =
        ids.iter().zip(facts).map(|(id, f)| Event::DiscrepancyOpened { discrepancy: id.clone(), facts: f }).collect();
    events.push(Event::CountClosed { count: count.clone(), discrepancies: ids });
    Ok(Decision { events, corrects: None })
}

fn decide_resolve(c: &Checker, id: &DiscrepancyId, approve: bool, note: &str, item_type: Option<&ItemTypeId>) -> R<Decision> {
    let state = c.state;
    text("note", note, true)?;
    let Some(d) = state.discrepancies.get(id) else {
        return not_found("discrepancy", id);
    };
    if let Some(r) = &d.resolution {
        return refuse("discrepancy.once", format!("discrepancy {id} was already resolved by badge {} in entry {}", r.by, r.seq));
    }
    let f = &d.facts;
    let place = f.found_account.as_ref().or(f.book_account.as_ref());
    let unit = match place.and_then(|a| state.account_unit(a)) {
        Some(u) => u,
        None => c.actor.unit.clone(),
    };
    c.authorize(Op::Resolve, &unit)?;
    // The adjustment may touch a second unit (a find whose books are elsewhere): the resolver needs
    // authority there too, and stock never changes unit except by transfer.
    // A transit account belongs to both ends of its transfer; the receiving unit may write off a shortage.
    for account in [&f.adjust_from, &f.adjust_to].into_iter().filter(|a| !matches!(a, Account::Transit(_))) {
        if let Some(u) = state.account_unit(account) {
            c.authorize(Op::Resolve, &u)?;
            if u != unit && matches!(account, Account::Location(_)) {
                return refuse(
                    "move.same_unit",
                    format!("approving discrepancy {id} would move stock between unit {u} and unit {unit}; stock leaves a unit only by transfer: transfer it, then resolve with --explain"),
                );
            }
        }
    }
    if let DiscrepancySource::Count(count) = &f.source {
        if state.counts.get(count).is_some_and(|k| k.counter == c.ctx.actor) {
            return refuse(
                "count.resolver_not_counter",
                format!("badge {} counted {count} and may not resolve its discrepancies", c.ctx.actor),
            );
        }
    }
    if state.effective_policy(&unit).0.two_person_count_resolution {
        c.witness(&unit, &format!("resolving discrepancy {id}"))?;
    }
    let mut events = vec![];
    if approve {
        let it = match (&f.item_type, item_type) {
            (Some(t), _) => t.clone(),
            (None, Some(t)) => {
                c.item_type(t)?;
                t.clone()
            }
            (None, None) => {
                return invalid(format!("discrepancy {id} is about something the catalog does not know; give its item type to approve it"))
            }
        };
        // Bring unknown finds onto the books first, so the adjustment moves a known thing.
        let mut items = vec![];
        if let Some(s) = &f.serial {
            if !state.serials.contains_key(s) {
                events.push(Event::SerialRegistered { serial: s.clone(), item_type: it.clone(), lot: None });
            }
            items.push(ItemRef::Serial(s.clone()));
        }
        if let Some(lot) = &f.lot {
            if !state.lots.contains_key(lot) {
                events.push(Event::LotRegistered { lot: lot.clone(), item_type: it.clone(), manufactured: None, expires: None });
            }
            items.push(ItemRef::Lot { lot: lot.clone(), quantity: f.adjust_quantity });
        }
        let lines = if events.is_empty() {
            c.take(&f.adjust_from, &items).map_err(|e| match e {
                Rejection::Refused { message, .. } => Rejection::Refused {
                    rule: "discrepancy.still_applies",
                    message: format!("the books changed since discrepancy {id} was found: {message}"),
                },
                other => other,
            })?
        } else {
            vec![match &f.serial {
                Some(s) => Line::Serial { serial: s.clone(), item_type: it.clone() },
                None => Line::Lot {
                    lot: f.lot.clone().ok_or_else(|| Rejection::Invalid("discrepancy without serial or lot".into()))?,
                    item_type: it.clone(),
                    quantity: f.adjust_quantity,
                },
            }]
        };
        events.push(Event::DiscrepancyResolved { discrepancy: id.clone(), adjusted: true, note: note.to_string() });
        events.push(Event::Movement {
            kind: MovementKind::Adjust,
            from: f.adjust_from.clone(),
            to: f.adjust_to.clone(),
            lines,
            document: Some(format!("discrepancy {id}")),
        });
    } else {
        events.push(Event::DiscrepancyResolved { discrepancy: id.clone(), adjusted: false, note: note.to_string() });
    }
    Ok(Decision { events, corrects: None })
}

/// The first events of a new site: its identity, its root unit, and its first administrator.
pub fn genesis(site: &str, verifier_key: &str, root_unit: &UnitId, root_unit_name: &str, admin: &Badge, admin_name: &str) -> Vec<Event> {
    vec![
        Event::SiteInitialized {
            site: site.to_string(),
            verifier_key: verifier_key.to_string(),
            root_unit: root_unit.clone(),
            root_unit_name: root_unit_name.to_string(),
        },
        Event::PersonRegistered {
            badge: admin.clone(),
            name: admin_name.to_string(),
            unit: root_unit.clone(),
            roles: vec![Role::Admin],
            pin_hash: None,
        },
        Event::CredentialSet { badge: admin.clone(), kind: CredentialKind::Pin, hash: None },
    ]
}

/// Most readings one command may carry; a larger file is split by the edge.
pub const READINGS_MAX: usize = 100_000;

fn decide_readings(
    c: &Checker,
    location: &LocationId,
    readings: &[crate::conditions::Reading],
    window: &[crate::conditions::Reading],
    sha256: &str,
) -> R<Decision> {
    use crate::conditions::{detect, Range};
    let state = c.state;
    let loc = c.location(location)?;
    c.authorize(Op::Conditions, &loc.unit)?;
    if readings.is_empty() {
        return invalid("no readings given");
    }
    if readings.len() > READINGS_MAX || window.len() > READINGS_MAX {
        return invalid(format!("at most {READINGS_MAX} readings per batch"));
    }
    for (i, r) in readings.iter().enumerate() {
        if r.temperature_c.is_none() && r.humidity_pct.is_none() {
            return invalid(format!("reading {}: neither temperature nor humidity", i + 1));
        }
        if r.temperature_c.is_some_and(|t| !(t.is_finite() && (-80.0..=150.0).contains(&t))) {
            return invalid(format!("reading {}: temperature {:?} °C is not plausible (-80 to 150)", i + 1, r.temperature_c));
        }
        if r.humidity_pct.is_some_and(|h| !(h.is_finite() && (0.0..=100.0).contains(&h))) {
            return invalid(format!("reading {}: humidity {:?} % is not between 0 and 100", i + 1, r.humidity_pct));
        }
        if r.at > c.ctx.at + time::Duration::minutes(5) {
            return invalid(format!("reading {}: time {} is in the future", i + 1, c.ctx.zone.show(r.at)));
        }
    }
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return invalid("digest must be 64 hex digits of SHA-256");
    }
    let span = |f: fn(&crate::conditions::Reading) -> Option<f64>| -> Option<Range> {
        let vals: Vec<f64> = readings.iter().filter_map(f).collect();
        let first = *vals.first()?;
        Some(vals.iter().fold(Range { min: first, max: first }, |r, v| Range { min: r.min.min(*v), max: r.max.max(*v) }))
    };
    let first_at = readings.iter().map(|r| r.at).min().unwrap_or(c.ctx.at);
    let last_at = readings.iter().map(|r| r.at).max().unwrap_or(c.ctx.at);
    let mut events = vec![Event::ReadingsRecorded {
        location: location.clone(),
        count: readings.len() as u64,
        first_at,
        last_at,
        temperature_c: span(|r| r.temperature_c),
        humidity_pct: span(|r| r.humidity_pct),
        sha256: sha256.to_ascii_lowercase(),
    }];
    let mut series: Vec<crate::conditions::Reading> = window.iter().chain(readings.iter()).cloned().collect();
    series.sort_by_key(|r| r.at);
    let band = state.band_at(location);
    let (lots, serials) = state.stored_below(location);
    let serials_exposed = serials.values().sum();
    let mut next = state.excursions.len() + 1;
    for d in detect(&series, &band) {
        let known = state.excursions.iter().find(|(_, x)| x.location == *location && x.measure == d.measure && x.started_at == d.start);
        match known {
            Some((id, x)) => {
                if x.ended_at.is_none() {
                    if let Some(end) = d.end {
                        events.push(Event::ExcursionEnded { excursion: id.clone(), ended_at: end, peak: d.peak });
                    }
                }
            }
            None => {
                // Only runs that reach into the new readings are news; older ones were judged before.
                if d.end.is_some_and(|e| e < first_at) {
                    continue;
                }
                let id = format!("X-{next}");
                next += 1;
                events.push(Event::ExcursionStarted {
                    excursion: id.clone(),
                    location: location.clone(),
                    measure: d.measure,
                    direction: d.direction,
                    started_at: d.start,
                    limit: d.limit,
                    peak: d.peak,
                    lots_exposed: lots.clone(),
                    serials_exposed,
                });
                if let Some(end) = d.end {
                    events.push(Event::ExcursionEnded { excursion: id, ended_at: end, peak: d.peak });
                }
            }
        }
    }
    Ok(Decision { events, corrects: None })
}
