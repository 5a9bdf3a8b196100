//! Directives (docs/directives.md): issuing one, and each step under it — a unit's
//! acknowledgment and relay (tightening only), a staff member's shift briefing, a review task's
//! sign-off with what the books show, an extension or early end by the issuer or above, and the
//! deadline the site records as missed.

use super::*;
use crate::books::Directive;
use crate::directives::{concerns, in_force_over, measures_at, stores_of, tasks_for, Measure};
use crate::event::DirectiveAction;

/// A directive's text: the order in the issuer's words.
const ORDER_LEN_MAX: usize = 4000;
/// The longest period a directive may run (an organization renews it after that).
const PERIOD_DAYS_MAX: i64 = 366;

fn one(e: Event) -> R<Decision> {
    Ok(Decision { events: vec![e], corrects: None, opens: vec![] })
}

pub(super) fn decide_directive(c: &Checker, command: &Command) -> R<Decision> {
    match command {
        Command::IssueDirective { unit, applies_to, title, text: order, posture, starts_at, ends_at, measures } => {
            issue(c, unit, applies_to, (title, order, posture), (*starts_at, *ends_at), measures)
        }
        Command::UpdateDirective { directive, action } => {
            // Authority first: someone without it learns nothing about the directive from the refusal.
            match action {
                DirectiveAction::Acknowledge { unit } | DirectiveAction::Relay { unit, .. } | DirectiveAction::SignOff { unit, .. } => {
                    c.authorize(Op::Directive, unit)?
                }
                DirectiveAction::Brief { unit } => c.authorize(Op::Brief, unit)?,
                DirectiveAction::Extend { .. } | DirectiveAction::Cancel { .. } | DirectiveAction::Missed { .. } => {
                    c.authorize_role(Op::Directive)?
                }
            }
            let Some(d) = c.state.directives.get(directive) else {
                return not_found("directive", directive);
            };
            step(c, directive, d, action)
        }
        other => invalid(format!("{} is not a directive command", other.name())),
    }
}

fn check_measures(measures: &[Measure]) -> R<()> {
    let mut kinds = std::collections::BTreeSet::new();
    for m in measures {
        if !kinds.insert(m.kind()) {
            return invalid(format!("measure {} is given twice", m.kind()));
        }
        // A measure built by hand (the API's JSON) passes the same checks as one typed as text.
        Measure::parse(&m.to_string()).map_err(Rejection::Invalid)?;
    }
    Ok(())
}

fn issue(
    c: &Checker,
    unit: &UnitId,
    applies_to: &[UnitId],
    (title, order, posture): (&String, &String, &String),
    (starts_at, ends_at): (Option<time::OffsetDateTime>, time::OffsetDateTime),
    measures: &[Measure],
) -> R<Decision> {
    let state = c.state;
    if !state.units.contains_key(unit) {
        return not_found("unit", unit);
    }
    c.authorize(Op::Directive, unit)?;
    text("title", title, true)?;
    if order.trim().is_empty() || order.chars().count() > ORDER_LEN_MAX {
        return invalid(format!("the directive's text is required and at most {ORDER_LEN_MAX} characters"));
    }
    if order.chars().any(|ch| ch.is_control() && ch != '\n' && ch != '\r' && ch != '\t') {
        return invalid("the directive's text contains control characters");
    }
    let levels = &state.postures.0;
    if levels.get(posture).is_none() {
        return refuse(
            "directive.posture",
            format!("{posture:?} is not a posture level of this organization ({})", levels.names().join(", ")),
        );
    }
    let start = starts_at.unwrap_or(c.ctx.at);
    if start < c.ctx.at - time::Duration::minutes(5) {
        return invalid(format!("a directive cannot start in the past ({})", c.ctx.zone.show(start)));
    }
    if ends_at <= start {
        return invalid(format!("the period ends ({}) before it starts ({})", c.ctx.zone.show(ends_at), c.ctx.zone.show(start)));
    }
    if ends_at - start > time::Duration::days(PERIOD_DAYS_MAX) {
        return invalid(format!("a directive runs at most {PERIOD_DAYS_MAX} days; extend it when the time comes"));
    }
    for a in applies_to {
        if !state.units.contains_key(a) {
            return not_found("unit", a);
        }
        if a == unit || !state.unit_within(a, unit) {
            return invalid(format!("unit {a} is not below unit {unit}: a directive applies to the issuing unit's subtree"));
        }
    }
    check_measures(measures)?;
    let site = state.site.as_ref().map(|s| s.site.clone()).unwrap_or_default();
    let n = state.directives.keys().filter(|k| k.as_str().ends_with(&format!(".{site}"))).count() + 1;
    let directive = DirectiveId::parse(&format!("DIR-{n}.{site}")).map_err(|e| Rejection::Invalid(e.to_string()))?;
    one(Event::DirectiveIssued {
        directive,
        unit: unit.clone(),
        applies_to: applies_to.to_vec(),
        title: title.clone(),
        text: order.clone(),
        posture: posture.clone(),
        starts_at: start,
        ends_at,
        measures: measures.to_vec(),
    })
}

/// The unit concerned by the directive, and the directive still running (not ended or cancelled).
fn concerned_and_running(c: &Checker, id: &DirectiveId, d: &Directive, unit: &UnitId, what: &str) -> R<()> {
    if !c.state.units.contains_key(unit) {
        return not_found("unit", unit);
    }
    if !concerns(c.state, d, unit) {
        return refuse("directive.scope", format!("directive {id} (issued at unit {}) does not concern unit {unit}", d.unit));
    }
    if c.ctx.at >= d.stops_at() {
        return refuse(
            "directive.state",
            format!("directive {id} stopped applying at {}; it can no longer be {what}", c.ctx.zone.show(d.stops_at())),
        );
    }
    Ok(())
}

/// Extending or ending early is for the issuing unit or a unit above it.
fn issuer_or_above(c: &Checker, id: &DirectiveId, d: &Directive, what: &str) -> R<()> {
    c.authorize_role(Op::Directive)?;
    if !c.state.unit_within(&d.unit, &c.actor.unit) {
        return refuse(
            "directive.authority",
            format!(
                "badge {} belongs to unit {}, below unit {} which issued directive {id}; only the issuer or a unit above it may {what} it",
                c.ctx.actor, c.actor.unit, d.unit
            ),
        );
    }
    c.authorize(Op::Directive, &d.unit)?;
    if d.cancelled.is_some() || c.ctx.at >= d.stops_at() {
        return refuse("directive.state", format!("directive {id} stopped applying at {}; issue a new one", c.ctx.zone.show(d.stops_at())));
    }
    Ok(())
}

fn step(c: &Checker, id: &DirectiveId, d: &Directive, action: &DirectiveAction) -> R<Decision> {
    let state = c.state;
    let action = match action {
        DirectiveAction::Acknowledge { unit } => {
            c.authorize(Op::Directive, unit)?;
            concerned_and_running(c, id, d, unit, "acknowledged")?;
            if let Some(a) = d.units.get(unit).and_then(|u| u.acknowledged.as_ref()) {
                return refuse(
                    "directive.state",
                    format!("unit {unit} acknowledged directive {id} already (badge {}, {})", a.by, c.ctx.zone.show(a.at)),
                );
            }
            action.clone()
        }
        DirectiveAction::Relay { unit, text: instructions, measures } => {
            relay(c, id, d, unit, instructions, measures)?;
            action.clone()
        }
        DirectiveAction::Brief { unit } => {
            c.authorize(Op::Brief, unit)?;
            if !in_force_over(state, unit, c.ctx.at).iter().any(|(k, _)| *k == id) {
                return refuse(
                    "directive.state",
                    format!("directive {id} is not in force at unit {unit} now; there is nothing to be briefed on"),
                );
            }
            if let Some(at) = d.briefed.get(&c.ctx.actor) {
                return refuse(
                    "directive.state",
                    format!("badge {} was briefed on directive {id} already ({})", c.ctx.actor, c.ctx.zone.show(*at)),
                );
            }
            action.clone()
        }
        DirectiveAction::SignOff { unit, task, note, raised, .. } => return sign_off(c, id, d, unit, task, note, raised),
        DirectiveAction::Extend { ends_at, reason } => {
            issuer_or_above(c, id, d, "extend")?;
            text("reason", reason, true)?;
            if *ends_at <= d.ends_at {
                return refuse(
                    "directive.tighten_only",
                    format!(
                        "directive {id} runs until {}; an extension must end later, not at {}",
                        c.ctx.zone.show(d.ends_at),
                        c.ctx.zone.show(*ends_at)
                    ),
                );
            }
            if *ends_at - d.starts_at > time::Duration::days(PERIOD_DAYS_MAX) {
                return invalid(format!("a directive runs at most {PERIOD_DAYS_MAX} days; issue a new one"));
            }
            action.clone()
        }
        DirectiveAction::Cancel { reason } => {
            issuer_or_above(c, id, d, "cancel")?;
            text("reason", reason, true)?;
            action.clone()
        }
        DirectiveAction::Missed { .. } => {
            return refuse("directive.state", "only the site records a missed deadline, by itself");
        }
    };
    one(Event::DirectiveUpdated { directive: id.clone(), action })
}

fn relay(c: &Checker, id: &DirectiveId, d: &Directive, unit: &UnitId, instructions: &str, measures: &[Measure]) -> R<()> {
    let state = c.state;
    c.authorize(Op::Directive, unit)?;
    concerned_and_running(c, id, d, unit, "relayed")?;
    text("instructions", instructions, true)?;
    if d.units.get(unit).is_some_and(|u| u.relayed.is_some()) {
        return refuse("directive.state", format!("unit {unit} relayed directive {id} already"));
    }
    if !state.units.iter().any(|(k, x)| x.parent.as_ref() == Some(unit) && concerns(state, d, k)) {
        return refuse("directive.scope", format!("unit {unit} has no unit below it that directive {id} concerns; acknowledge it instead"));
    }
    check_measures(measures)?;
    // Tighten only: nothing looser than what is ordered above, by the directive or a relay higher up.
    let above = measures_at(state, d, unit);
    for m in measures {
        if let Some(why) = above.iter().find_map(|a| m.loosens(a)) {
            return refuse("directive.tighten_only", format!("unit {unit} may only tighten directive {id}: {why}"));
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn sign_off(c: &Checker, id: &DirectiveId, d: &Directive, unit: &UnitId, task: &str, note: &str, raised: &[String]) -> R<Decision> {
    c.authorize(Op::Directive, unit)?;
    concerned_and_running(c, id, d, unit, "signed off")?;
    text("note", note, true)?;
    let tasks = tasks_for(c.state, d, unit);
    let Some(m) = tasks.get(task) else {
        let names: Vec<&str> = tasks.keys().copied().collect();
        let names = if names.is_empty() { "none".to_string() } else { names.join(", ") };
        return refuse("directive.scope", format!("directive {id} sets unit {unit} no task {task:?} (its tasks: {names})"));
    };
    if let Some(s) = d.units.get(unit).and_then(|u| u.signoffs.get(task)) {
        return refuse("directive.state", format!("unit {unit} signed off {task} already (badge {}, {})", s.by, c.ctx.zone.show(s.at)));
    }
    let reviewed = review(c, id, unit, m)?;
    // Each transfer raised opens an incident recorded in the sign-off's own entry.
    let mut opens = vec![];
    for (k, r) in raised.iter().enumerate() {
        opens.push((0, raise_transfer(c, id, unit, task, r, &reviewed, k)?));
    }
    let action =
        DirectiveAction::SignOff { unit: unit.clone(), task: task.to_string(), reviewed, note: note.to_string(), raised: raised.to_vec() };
    Ok(Decision { events: vec![Event::DirectiveUpdated { directive: id.clone(), action }], corrects: None, opens })
}

/// A transfer the review found wrong (`T-3: why`): an incident about its items, for the unit.
fn raise_transfer(c: &Checker, id: &DirectiveId, unit: &UnitId, task: &str, raised: &str, reviewed: &[String], k: usize) -> R<Event> {
    let (t, why) = raised.split_once(':').map(|(t, w)| (t.trim(), w.trim())).unwrap_or((raised.trim(), ""));
    if task != "transfer_review" || why.is_empty() {
        return invalid(format!("raise a transfer as `T-3: why`, in a transfer review only (not {raised:?} in {task})"));
    }
    let transfer = TransferId::parse(t).map_err(|e| Rejection::Invalid(e.to_string()))?;
    let Some(tr) = c.state.transfers.get(&transfer).filter(|_| reviewed.iter().any(|r| r.starts_with(&format!("transfer {transfer} "))))
    else {
        return refuse("directive.review", format!("transfer {transfer} is not among those the review of unit {unit} covers"));
    };
    let mut objects = crate::event::IncidentObjects::default();
    for l in &tr.lines {
        match l {
            Line::Serial { serial, .. } => objects.serials.push(serial.clone()),
            Line::Lot { lot, .. } => objects.lots.push(lot.clone()),
        }
    }
    let incident = IncidentId::parse(&format!("I-{}", c.state.incidents.len() + 1 + k)).map_err(|e| Rejection::Invalid(e.to_string()))?;
    let summary = format!("transfer {transfer} raised as a discrepancy by the transfer review of directive {id}: {why}");
    Ok(Event::IncidentOpened {
        incident,
        kind: IncidentKind::CountDiscrepancy,
        severity: Severity::Medium,
        unit: unit.clone(),
        location: None,
        objects,
        summary: summary.chars().take(TEXT_LEN_MAX).collect(),
        discovered_at: c.ctx.at,
        rule: Some(format!("the transfer review of directive {id}")),
    })
}

/// What a review task covers, from the books; refused while the books show it cannot be signed off.
fn review(c: &Checker, id: &DirectiveId, unit: &UnitId, m: &Measure) -> R<Vec<String>> {
    match m {
        Measure::TransferReview { days, .. } => Ok(transfer_review(c, unit, *days)),
        Measure::StorageReview { readings_within_h, .. } => storage_review(c, id, unit, *readings_within_h),
        Measure::AccessReview { .. } => Ok(access_review(c.state, unit)),
        other => refuse("directive.scope", format!("{} is done in the books (a count is done by counting), not signed off", other.kind())),
    }
}

/// Every transfer of the unit in transit, and every one dispatched in the last `days` days, with its state.
fn transfer_review(c: &Checker, unit: &UnitId, days: u32) -> Vec<String> {
    let since = c.ctx.at - time::Duration::days(i64::from(days));
    let zone = &c.ctx.zone;
    c.state
        .transfers
        .iter()
        .filter(|(_, t)| (&t.from_unit == unit || &t.to_unit == unit) && (t.received_at_location.is_none() || t.dispatched_at >= since))
        .map(|(k, t)| {
            let state_word = match &t.received_at_location {
                None => "in transit".to_string(),
                Some(l) if t.discrepancies.is_empty() => format!("received at {l}"),
                Some(l) => format!(
                    "received at {l} with discrepancies {}",
                    t.discrepancies.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")
                ),
            };
            format!("transfer {k} {} → {} dispatched {}: {state_word}", t.from_unit, t.to_unit, zone.show(t.dispatched_at))
        })
        .collect()
}

/// Every magazine of the unit with readings within the last hours asked, and no excursion unacknowledged.
fn storage_review(c: &Checker, id: &DirectiveId, unit: &UnitId, readings_within_h: u32) -> R<Vec<String>> {
    let (state, zone) = (c.state, &c.ctx.zone);
    let since = c.ctx.at - time::Duration::hours(i64::from(readings_within_h));
    let (mut out, mut stale) = (vec![], vec![]);
    for store in stores_of(state, unit) {
        match state.locations.get(&store).filter(|l| l.kind == LocationKind::Magazine).map(|l| l.last_reading_at) {
            None => {}
            Some(Some(t)) if t >= since => out.push(format!("{store}: last reading {}", zone.show(t))),
            Some(Some(t)) => stale.push(format!("{store} (last reading {})", zone.show(t))),
            Some(None) => stale.push(format!("{store} (no reading ever)")),
        }
    }
    if !stale.is_empty() {
        let why =
            format!("readings within the last {readings_within_h} h for every magazine of unit {unit}: none for {}", stale.join(", "));
        return refuse("directive.review", format!("the storage review of directive {id} needs {why}"));
    }
    let places: Vec<&LocationId> = state.locations.iter().filter(|(_, l)| &l.unit == unit).map(|(k, _)| k).collect();
    let excursions = state
        .incidents
        .iter()
        .filter(|(_, i)| i.kind == IncidentKind::Excursion && i.location.as_ref().is_some_and(|l| places.contains(&l)));
    let unreviewed: Vec<String> =
        excursions.clone().filter(|(_, i)| i.acknowledged_at.is_none()).map(|(k, i)| format!("{k} ({})", i.summary)).collect();
    if !unreviewed.is_empty() {
        let why = format!("every excursion at unit {unit} reviewed (its incident acknowledged): {}", unreviewed.join("; "));
        return refuse("directive.review", format!("the storage review of directive {id} needs {why}"));
    }
    out.extend(excursions.filter(|(_, i)| i.state != IncidentState::Closed).map(|(k, _)| format!("excursion incident {k} acknowledged")));
    Ok(out)
}

/// Who holds the unit's keys and who may issue there.
fn access_review(state: &State, unit: &UnitId) -> Vec<String> {
    let keys = state.serials.iter().filter(|(_, s)| state.item_types.get(&s.item_type).is_some_and(|t| t.kind == ItemKind::Key));
    let mut out: Vec<String> = keys
        .filter_map(|(k, s)| match &s.account {
            Account::Person(b) if state.people.get(b).is_some_and(|p| &p.unit == unit) => Some(format!("key {k} held by badge {b}")),
            _ => None,
        })
        .collect();
    let issuers = state.people.iter().filter(|(_, p)| &p.unit == unit && p.roles.iter().any(|r| role_allows(*r, Op::Issue)));
    out.extend(
        issuers.map(|(b, p)| format!("badge {b} ({}) may issue", p.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>().join(", "))),
    );
    out
}

/// The site records a deadline passed unmet: only one `crate::directives::missed` finds now.
pub(super) fn decide_missed(state: &State, ctx: &Ctx, id: &DirectiveId, unit: &UnitId, what: &str) -> R<Decision> {
    super::incidents::site_only(ctx, "directive.state", "records a directive's missed deadline")?;
    let Some(d) = state.directives.get(id) else {
        return not_found("directive", id);
    };
    if !crate::directives::missed_of(state, d, ctx.at).iter().any(|(u, w)| u == unit && w == what) {
        return refuse(
            "directive.state",
            format!("{what} of unit {unit} under directive {id} is not past its deadline unmet, or is recorded already"),
        );
    }
    one(Event::DirectiveUpdated { directive: id.clone(), action: DirectiveAction::Missed { unit: unit.clone(), what: what.to_string() } })
}

/// An entry of the parent site's ledger, received by the site itself: a directive issued there
/// (not known here yet), or its extension or cancellation (of one received before); an item type, a
/// lot's status, a person, a qualification or a policy decided there (`crate::down::takes`). The
/// parent's signature and the inclusion proof are checked by the application before it asks.
pub(super) fn decide_received(state: &State, ctx: &Ctx, command: &Command) -> R<Decision> {
    super::incidents::site_only(ctx, "parent.received", "records what the parent site decided")?;
    let Command::ReceiveFromParent { origin, seq, entry, proof, checkpoint } = command else {
        return invalid("not an entry of the parent");
    };
    let env = crate::directives::parent_entry(entry).map_err(Rejection::Invalid)?;
    if env.site != *origin || env.seq != *seq {
        return invalid(format!("the entry is entry {} of site {}, not entry {seq} of {origin}", env.seq, env.site));
    }
    if state.site.as_ref().is_some_and(|s| s.site == *origin) {
        return invalid("an entry of this site's own ledger is not received from a parent");
    }
    if let Some(t) = state.received.get(&crate::down::received_key(origin, *seq)) {
        return refuse("parent.received", format!("entry {seq} of site {origin} is recorded here already (entry {})", t.entry));
    }
    let env = crate::directives::decided_entry(entry).map_err(Rejection::Invalid)?;
    match &env.event {
        Event::DirectiveIssued { directive, .. } if state.directives.contains_key(directive) => {
            refuse("parent.received", format!("directive {directive} is known here already"))
        }
        Event::DirectiveIssued { .. } => Ok(()),
        Event::DirectiveUpdated { directive, action: DirectiveAction::Extend { .. } | DirectiveAction::Cancel { .. } } => {
            match state.directives.get(directive) {
                Some(d) if d.received.first().is_some_and(|r| r.origin == *origin) => Ok(()),
                Some(_) => invalid(format!("directive {directive} was not received from site {origin}")),
                None => not_found("directive", directive),
            }
        }
        e if crate::down::takes(e) => Ok(()),
        other => invalid(format!(
            "a {} entry of the parent does not flow down (directives, the catalog, lots' status, staff, qualifications and policies do)",
            other.type_name()
        )),
    }?;
    let event =
        Event::FromParent { origin: origin.clone(), seq: *seq, entry: entry.clone(), proof: proof.clone(), checkpoint: checkpoint.clone() };
    one(event)
}
