//! Armory access control (docs/access.md): rosters granted and revoked, a batch of door events judged
//! against the rosters and the policy in force, the site's alerts about who is inside, and the key
//! register's check that a key goes only to someone on the roster of the place it opens.

use super::*;
use crate::access::{self, DoorInput, DoorKind, Finding, Passage, Proof};

/// Most door events one command may carry; a larger batch is refused (`invalid`), the sender splits it.
pub const DOOR_EVENTS_MAX: usize = 10_000;

pub(super) fn decide_roster(c: &Checker, command: &Command) -> R<Decision> {
    let (location, badge, reason) = match command {
        Command::GrantAccess { location, badge, reason, .. } | Command::RevokeAccess { location, badge, reason } => {
            (location, badge, reason)
        }
        _ => return invalid("not a roster command"),
    };
    let loc = c.location(location)?;
    c.authorize(Op::Roster, &loc.unit)?;
    if !access::controlled(loc.kind) {
        return refuse("access.place", format!("{location} is a {}; rosters are kept for armories, depots and magazines", loc.kind));
    }
    text("reason", reason, true)?;
    let on = c.state.access.get(location).and_then(|p| p.roster.get(badge));
    let event = match command {
        Command::GrantAccess { role, hours, .. } => {
            let person = c.person(badge)?;
            if !person.roles.contains(role) {
                let roles: Vec<&str> = person.roles.iter().map(|r| r.as_str()).collect();
                return refuse(
                    "access.role",
                    format!("badge {badge} ({}) does not hold the role {role}; their roles: {}", person.name, roles.join(", ")),
                );
            }
            if hours.weekly.is_empty() || hours.weekly.len() > 28 || hours.exceptions.len() > 366 {
                return invalid("hours: from 1 to 28 weekly windows and at most 366 dated exceptions");
            }
            if on.is_some_and(|e| e.role == *role && e.hours == *hours) {
                return refuse("access.unchanged", format!("badge {badge} is already on the roster of {location} as {role}, {hours}"));
            }
            Event::RosterGranted {
                location: location.clone(),
                badge: badge.clone(),
                role: *role,
                hours: hours.clone(),
                reason: reason.clone(),
            }
        }
        _ => {
            if on.is_none() {
                return refuse("access.roster", format!("badge {badge} is not on the roster of {location}"));
            }
            Event::RosterRevoked { location: location.clone(), badge: badge.clone(), reason: reason.clone() }
        }
    };
    Ok(Decision::of(vec![event]))
}

/// What the rules make of door events: each judged against the rosters and the policy in force at
/// its time.
pub(super) fn decide_door(state: &State, ctx: &Ctx, source: &str, events: &[DoorInput], sha256: &str) -> R<Decision> {
    super::incidents::site_only(ctx, "access.source", "records door events")?;
    text("source", source, true)?;
    if events.is_empty() || events.len() > DOOR_EVENTS_MAX {
        return invalid(format!("from 1 to {DOOR_EVENTS_MAX} door events per batch"));
    }
    if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
        return invalid("digest must be 64 hex digits of SHA-256");
    }
    let mut seen = BTreeSet::new();
    for (i, e) in events.iter().enumerate() {
        let n = i + 1;
        if !seen.insert(e.id.as_str()) {
            return invalid(format!("door event {n}: id {:?} appears twice in the batch", e.id));
        }
        // Named in the refusal only when one is refused (500 events, four texts each).
        let card = e.card.as_deref().map(|c| ("card", c, true));
        for (what, v, required) in
            [("id", e.id.as_str(), true), ("door", &e.door, true), ("reason", &e.reason, false)].into_iter().chain(card)
        {
            if text("", v, required).is_err() {
                text(&format!("door event {n}: {what}"), v, required)?;
            }
        }
        if e.at > ctx.at + time::Duration::minutes(5) {
            return invalid(format!("door event {n}: time {} is in the future", ctx.zone.show(e.at)));
        }
        if let Some(l) = &e.location {
            if !state.locations.contains_key(l) {
                return not_found("location", l);
            }
        }
    }
    // Judged in time order: the books apply them in that order (who is inside after each).
    let mut order: Vec<&DoorInput> = events.iter().filter(|e| e.kind.accountable()).collect();
    order.sort_by_key(|e| e.at);
    // The policy in force per unit, once per batch when it does not change within it.
    let mut policies: BTreeMap<UnitId, Option<crate::policy::PolicyRules>> = BTreeMap::new();
    let (first, last) = (order.first().map(|e| e.at), order.last().map(|e| e.at));
    let mut policy = |unit: &UnitId, at: time::OffsetDateTime| -> crate::policy::PolicyRules {
        let steady = policies.entry(unit.clone()).or_insert_with(|| {
            let (a, b) = (state.effective_policy(unit, first.unwrap_or(at)).0, state.effective_policy(unit, last.unwrap_or(at)).0);
            (a == b).then_some(a)
        });
        steady.clone().unwrap_or_else(|| state.effective_policy(unit, at).0)
    };
    let passages: Vec<Passage> = order.into_iter().map(|e| judge(state, ctx, e, &mut policy)).collect();
    let first_at = events.iter().map(|e| e.at).min().unwrap_or(ctx.at);
    let last_at = events.iter().map(|e| e.at).max().unwrap_or(ctx.at);
    let count = events.len() as u64;
    let event = Event::DoorEvents { source: source.to_string(), count, first_at, last_at, sha256: sha256.to_ascii_lowercase(), passages };
    Ok(Decision::of(vec![event]))
}

/// One door event judged: a terminal's request granted or refused (and why), a system's event with
/// what the rules find wrong about it.
fn judge(
    state: &State,
    ctx: &Ctx,
    e: &DoorInput,
    policy_at: &mut dyn FnMut(&UnitId, time::OffsetDateTime) -> crate::policy::PolicyRules,
) -> Passage {
    let mut p = Passage { findings: vec![], ..e.event.clone() };
    let (Some(location), Some(loc)) = (&e.location, e.location.as_ref().and_then(|l| state.locations.get(l))) else {
        return p;
    };
    let policy = policy_at(&loc.unit, e.at);
    let who = || e.badge.as_ref().map_or_else(|| format!("card {}", e.card.as_deref().unwrap_or("?")), |b| format!("badge {b}"));
    match (e.kind, e.proof) {
        (DoorKind::Entry, Some(Proof::WrongPin | Proof::Unknown)) => {
            p.kind = DoorKind::Denied;
            p.reason = match e.proof {
                Some(Proof::Unknown) => format!("{} is not known here, or has no PIN", who()),
                _ => format!("wrong PIN for {}", who()),
            };
        }
        (DoorKind::Entry | DoorKind::Duress, proof) => {
            let refusal = e.badge.as_ref().map_or_else(
                || Some((Finding::NotOnRoster, format!("{} is not a badge known here", who()))),
                |b| access::entry_refusal(state, location, b, e.at, &ctx.zone, &policy),
            );
            let duress = proof == Some(Proof::Duress) || e.kind == DoorKind::Duress;
            match (refusal, proof) {
                // At a terminal the rules decide; under duress the door opens as for the real PIN.
                (Some((_, why)), Some(_)) if !duress => {
                    p.kind = DoorKind::Denied;
                    p.reason = why;
                }
                (Some((finding, why)), _) => {
                    p.findings.push(finding);
                    p.reason = why;
                }
                (None, _) => {}
            }
            if duress {
                p.findings.push(Finding::Duress);
            }
            if proof.is_some() {
                p.kind = if p.kind == DoorKind::Denied { DoorKind::Denied } else { DoorKind::Entry };
            }
        }
        _ => {}
    }
    p
}

/// The site raises what its clock finds at one place: someone alone too long under a two-person
/// rule, a stay past the longest allowed, its key kept past its return, a count its key's change
/// of hands called for and nobody did.
pub(super) fn decide_alerts(state: &State, ctx: &Ctx, location: &LocationId) -> R<Decision> {
    super::incidents::site_only(ctx, "access.source", "raises access alerts")?;
    let keys = access::key_alerts_due(state, ctx.at).into_iter().filter(|k| k.0 == *location).map(|(_, a, b, s, m)| (a, b, s, m));
    let events: Vec<Event> = access::alerts_due(state, location, ctx.at)
        .into_iter()
        .chain(keys)
        .map(|(alert, badge, since, message)| Event::AccessAlert { location: location.clone(), alert, badge, since, message })
        .collect();
    if events.is_empty() {
        return refuse("access.alert", format!("nothing at {location} calls for an alert now, or it was raised already"));
    }
    Ok(Decision::of(events))
}

/// A key goes only to someone on the roster of the place it opens (`opens:<location>` on its item type).
pub(super) fn check_key_holder(state: &State, to: &Badge, lines: &[Line]) -> R<()> {
    for line in lines {
        let Line::Serial { serial, item_type } = line else { continue };
        let Some(place) = access::key_opens(state, item_type) else { continue };
        if !state.access.get(&place).is_some_and(|p| p.roster.contains_key(to)) {
            return refuse(
                "access.key_roster",
                format!("key {serial} opens {place}; badge {to} is not on its roster (qm access grant {place} {to} …)"),
            );
        }
    }
    Ok(())
}
