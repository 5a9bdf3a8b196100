//! Incidents by hand: opening one, and each step of its life (docs/incidents.md). The incidents that
//! open by themselves come from `crate::incidents::openings`, recorded in the entries that open them (`decide`).

use super::*;
use crate::incidents::obligations;

/// The incident opened by a command already checked (by hand, or by the site itself).
fn opened(state: &State, ctx: &Ctx, command: &Command) -> R<Decision> {
    let Command::OpenIncident { kind, severity, unit, location, objects, summary, discovered_at } = command else {
        return invalid("not an incident to open");
    };
    let at = discovered_at.unwrap_or(ctx.at);
    if at > ctx.at {
        return invalid(format!("an incident cannot be discovered in the future ({})", ctx.zone.show(at)));
    }
    let incident = IncidentId::parse(&format!("I-{}", state.incidents.len() + 1)).map_err(|e| Rejection::Invalid(e.to_string()))?;
    Ok(Decision {
        events: vec![Event::IncidentOpened {
            incident,
            kind: *kind,
            severity: *severity,
            unit: unit.clone(),
            location: location.clone(),
            objects: objects.clone(),
            summary: summary.clone(),
            discovered_at: at,
            rule: None,
        }],
        corrects: None,
        opens: vec![],
    })
}

/// An incident the site itself opens, about what only it can see (a child site's rewritten ledger,
/// docs/sites.md): at a unit, naming no location or object.
pub(super) fn decide_site_incident(state: &State, ctx: &Ctx, command: &Command) -> R<Decision> {
    site_only(ctx, "incident.state", "opens an incident")?;
    let Command::OpenIncident { unit, location, objects, summary, .. } = command else {
        return invalid("not an incident to open");
    };
    text("summary", summary, true)?;
    if !state.units.contains_key(unit) {
        return not_found("unit", unit);
    }
    if location.is_some() || *objects != Default::default() {
        return invalid("an incident the site opens by itself names a unit only");
    }
    opened(state, ctx, command)
}

pub(super) fn decide_incident(c: &Checker, command: &Command) -> R<Decision> {
    let state = c.state;
    let one = |e: Event| Ok(Decision { events: vec![e], corrects: None, opens: vec![] });
    match command {
        Command::OpenIncident { unit, location, objects, summary, .. } => {
            text("summary", summary, true)?;
            if !state.units.contains_key(unit) {
                return not_found("unit", unit);
            }
            c.authorize(Op::Incident, unit)?;
            if let Some(l) = location {
                let loc = c.location(l)?;
                if !state.unit_within(&loc.unit, unit) {
                    return invalid(format!("location {l} belongs to unit {}, not to unit {unit} or below it", loc.unit));
                }
            }
            for s in &objects.serials {
                if !state.serials.contains_key(s) {
                    return not_found("serial", s);
                }
            }
            for l in &objects.lots {
                if !state.lots.contains_key(l) {
                    return not_found("lot", l);
                }
            }
            for b in &objects.badges {
                c.person(b)?;
            }
            for d in &objects.discrepancies {
                if !state.discrepancies.contains_key(d) {
                    return not_found("discrepancy", d);
                }
            }
            if let Some(e) = objects.entries.iter().find(|e| **e >= state.next_seq) {
                return not_found("entry", e);
            }
            opened(state, c.ctx, command)
        }
        Command::UpdateIncident { incident, action } => {
            let Some(i) = state.incidents.get(incident) else {
                return not_found("incident", incident);
            };
            c.authorize(Op::Incident, &i.unit)?;
            step(c, incident, i, action)?;
            one(Event::IncidentUpdated { incident: incident.clone(), action: action.clone() })
        }
        other => invalid(format!("{} is not an incident command", other.name())),
    }
}

/// Whether `action` may be taken on the incident as it stands, by this actor.
fn step(c: &Checker, id: &IncidentId, i: &Incident, action: &IncidentAction) -> R<()> {
    let state = c.state;
    let closed = i.state == IncidentState::Closed;
    let refuse_state = |what: &str| refuse("incident.state", format!("incident {id} is {}: it cannot be {what}", i.state));
    match action {
        IncidentAction::Acknowledge if closed || i.acknowledged_at.is_some() => refuse_state("acknowledged again"),
        IncidentAction::Investigate if closed || i.state == IncidentState::Investigating => refuse_state("put under investigation"),
        IncidentAction::Acknowledge | IncidentAction::Investigate => Ok(()),
        IncidentAction::Note { text: t } => text("note", t, true),
        IncidentAction::Escalate { to, reason } => {
            text("reason", reason, true)?;
            if closed {
                return refuse_state("escalated");
            }
            if to == &i.responsible || !state.unit_within(&i.responsible, to) {
                return invalid(format!("unit {to} is not above unit {}, which is responsible for incident {id} now", i.responsible));
            }
            Ok(())
        }
        IncidentAction::Report { obligation, authority, reference, at } => may_report(c, id, i, obligation, authority, reference, *at),
        IncidentAction::Close { resolution } => {
            text("resolution", resolution, true)?;
            if closed {
                return refuse_state("closed again");
            }
            may_close(c, id, i)
        }
        IncidentAction::Reopen { reason } => {
            text("reason", reason, true)?;
            if !closed {
                return refuse_state("reopened");
            }
            Ok(())
        }
        IncidentAction::DeadlineMissed { .. } => refuse("incident.state", "only the site records a missed deadline, from its clock"),
    }
}

/// A report an obligation requires: one that applies, recorded once, made between discovery and now.
fn may_report(
    c: &Checker,
    id: &IncidentId,
    i: &Incident,
    obligation: &str,
    authority: &str,
    reference: &str,
    at: time::OffsetDateTime,
) -> R<()> {
    let state = c.state;
    text("authority", authority, true)?;
    text("reference", reference, true)?;
    let rules = &state.incident_rules.0;
    let applies = obligations(state, rules, i);
    if !applies.iter().any(|o| o.id == obligation) {
        let ids: Vec<&str> = applies.iter().map(|o| o.id.as_str()).collect();
        return invalid(format!(
            "obligation {obligation:?} does not apply to incident {id} ({} involving {:?}); it has: {}",
            i.kind,
            crate::incidents::item_kinds(state, &i.objects),
            if ids.is_empty() { "none".to_string() } else { ids.join(", ") }
        ));
    }
    if i.reports.iter().any(|r| r.obligation == obligation) {
        return refuse("incident.state", format!("the report for {obligation} on incident {id} is already recorded"));
    }
    if at > c.ctx.at || at < i.discovered_at {
        return invalid(format!("a report is made between the discovery ({}) and now", c.ctx.zone.show(i.discovered_at)));
    }
    Ok(())
}

/// Who may close it (the rules' roles for its severity, a witness where they say so), and only once
/// the stock question it is about is settled.
fn may_close(c: &Checker, id: &IncidentId, i: &Incident) -> R<()> {
    let state = c.state;
    let rule = state.incident_rules.0.for_severity(i.severity).cloned();
    let Some(rule) = rule else {
        return refuse("incident.close_authority", format!("no rule says who closes a {} incident", i.severity));
    };
    if !c.actor.roles.iter().any(|r| rule.close_roles.contains(r)) {
        let roles: Vec<&str> = rule.close_roles.iter().map(|r| r.as_str()).collect();
        return refuse(
            "incident.close_authority",
            format!("badge {} may not close a {} incident ({id}): that needs one of {}", c.ctx.actor, i.severity, roles.join(", ")),
        );
    }
    // The stock question first: a discrepancy it is about must be resolved (found, or
    // written off with approval) before the incident is closed.
    if let Some(d) = i.objects.discrepancies.iter().find(|d| state.discrepancies.get(*d).is_some_and(|x| x.resolution.is_none())) {
        return refuse(
            "incident.stock_unsettled",
            format!(
                "incident {id} is about discrepancy {d}, which is not resolved: resolve it first (found, or written off with approval)"
            ),
        );
    }
    if let Some((serial, account)) = unsettled_serial(state, i) {
        return refuse(
            "incident.stock_unsettled",
            format!(
                "incident {id} ({}) is about serial {serial}, which the books still hold at {account} as when it was opened, \
                 and no count has seen since: report it lost, or count it where it is found, before closing",
                i.kind
            ),
        );
    }
    if rule.close_witness {
        c.witness(&i.unit, &format!("closing {} incident {id}", i.severity))?;
    }
    Ok(())
}

/// A serial a loss or theft incident is about whose fate the books do not yet tell: still at the
/// account it held when the incident opened (not reported lost, written off or expended, not moved
/// since — found and put back, or recovered —, and not seen by a count closed since).
fn unsettled_serial<'a>(state: &State, i: &'a Incident) -> Option<(&'a Serial, String)> {
    if !matches!(i.kind, IncidentKind::Loss | IncidentKind::Theft) {
        return None;
    }
    let opened = i.entries.first().copied().unwrap_or(0);
    i.objects.serials.iter().find_map(|s| {
        let item = state.serials.get(s)?;
        let settled = matches!(item.account, Account::Lost | Account::Destroyed | Account::Expended)
            || item.since_seq > opened
            || state.counts.values().any(|c| c.closed && c.started_at >= i.opened_at && c.serials.values().any(|seen| seen.contains(s)));
        (!settled).then(|| (s, item.account.to_string()))
    })
}

/// The site escalates an incident one unit up when its acknowledgment periods passed outnumber the
/// units it has already gone up (`crate::incidents::escalation_due`); only as the site itself.
pub(super) fn site_only(ctx: &Ctx, rule: &'static str, what: &str) -> R<()> {
    if ctx.actor.as_str() != crate::incidents::SITE_ACTOR {
        return refuse(rule, format!("only the site {what} by itself; badge {} may not", ctx.actor));
    }
    Ok(())
}

/// The site records a report's deadline as missed: an obligation that applies, not reported, past
/// its deadline, not recorded as missed before.
pub(super) fn decide_missed(state: &State, ctx: &Ctx, id: &IncidentId, obligation: &str) -> R<Decision> {
    site_only(ctx, "incident.state", "records a missed deadline")?;
    let Some(i) = state.incidents.get(id) else {
        return not_found("incident", id);
    };
    if !crate::incidents::missed_deadlines(state, i, ctx.at).iter().any(|o| o == obligation) {
        return refuse(
            "incident.state",
            format!("the report {obligation} of incident {id} is not past its deadline unmade, or is recorded as missed already"),
        );
    }
    let action = IncidentAction::DeadlineMissed { obligation: obligation.to_string() };
    Ok(Decision { events: vec![Event::IncidentUpdated { incident: id.clone(), action }], corrects: None, opens: vec![] })
}

/// The site opens an incident about what a person has held past the rules' time and nobody has
/// raised yet (`crate::incidents::overdue_return`).
pub(super) fn decide_overdue_return(state: &State, ctx: &Ctx, badge: &Badge) -> R<Decision> {
    site_only(ctx, "incident.state", "raises an overdue return")?;
    if !state.people.contains_key(badge) {
        return not_found("badge", badge);
    }
    match crate::incidents::overdue_return(state, badge, ctx.at) {
        Some(e) => Ok(Decision { events: vec![e], corrects: None, opens: vec![] }),
        None => refuse("incident.state", format!("badge {badge} holds nothing past its return time that is not raised already")),
    }
}

pub(super) fn decide_escalate_overdue(state: &State, ctx: &Ctx, id: &IncidentId) -> R<Decision> {
    site_only(ctx, "incident.state", "escalates an overdue incident (escalate by hand instead)")?;
    let Some(i) = state.incidents.get(id) else {
        return not_found("incident", id);
    };
    let Some(to) = crate::incidents::escalation_due(state, i, ctx.at) else {
        return refuse(
            "incident.state",
            format!("incident {id} is not overdue for escalation (it is {}, responsible: unit {})", i.state, i.responsible),
        );
    };
    let rule = state.incident_rules.0.for_severity(i.severity).map(|r| r.acknowledge_within_h).unwrap_or_default();
    let reason = format!("not acknowledged within {rule} h ({} incident): escalated by the site", i.severity);
    Ok(Decision {
        events: vec![Event::IncidentUpdated { incident: id.clone(), action: IncidentAction::Escalate { to, reason } }],
        corrects: None,
        opens: vec![],
    })
}
