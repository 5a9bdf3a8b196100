//! Scope: which operation a command is, which units it touches, and what an API token acting for
//! its issuer may do. Deciding checks a token's scope here, before the issuer's roles and unit, for
//! every command whatever edge it came from (API, web, imports, readings).

use super::{refuse, R};
use crate::command::Command;
use crate::event::{DiscrepancyFacts, DiscrepancySource, Event};
use crate::ids::*;
use crate::permissions::Op;
use crate::state::State;

/// The permission-table operation a command needs.
pub fn op_of(cmd: &Command) -> Op {
    match cmd {
        Command::CreateUnit { .. }
        | Command::CreateLocation { .. }
        | Command::DefineItemType { .. }
        | Command::RegisterPerson { .. }
        | Command::SetCredential { .. }
        | Command::IssueToken { .. }
        | Command::RevokeToken { .. }
        | Command::GrantQualification { .. }
        | Command::ChangePerson { .. }
        | Command::SetPolicy { .. }
        | Command::AdoptRules { .. }
        | Command::SetLocationSafety { .. }
        | Command::SetItemTypeStorage { .. }
        | Command::SetItemTypeAttributes { .. }
        | Command::SetTimeZone { .. } => Op::Setup,
        Command::RecordReadings { .. } => Op::Conditions,
        Command::Receive { .. } => Op::Receive,
        Command::Issue { .. } => Op::Issue,
        Command::Return { .. } => Op::Return,
        Command::Move { .. } => Op::Move,
        Command::Dispatch { .. } | Command::ReceiveTransfer { .. } => Op::Transfer,
        Command::Expend { .. } => Op::Expend,
        Command::Destroy { .. } => Op::Destroy,
        Command::ReportLost { .. } => Op::ReportLost,
        Command::Recover { .. } => Op::Recover,
        Command::SetLotStatus { .. } => Op::LotStatus,
        Command::StartCount { .. } | Command::RecordCount { .. } | Command::CloseCount { .. } => Op::Count,
        Command::ResolveDiscrepancy { .. } => Op::Resolve,
        Command::Correct { .. } => Op::Correct,
        Command::OpenIncident { .. }
        | Command::UpdateIncident { .. }
        | Command::EscalateOverdue { .. }
        | Command::RecordMissedDeadline { .. }
        | Command::RecordOverdueReturn { .. } => Op::Incident,
        Command::IssueDirective { .. } | Command::RecordDirectiveMissed { .. } | Command::ReceiveFromParent { .. } => Op::Directive,
        Command::UpdateDirective { action, .. } => match action {
            crate::event::DirectiveAction::Brief { .. } => Op::Brief,
            _ => Op::Directive,
        },
        Command::GrantAccess { .. }
        | Command::RevokeAccess { .. }
        | Command::RecordDoorEvents { .. }
        | Command::RecordAccessAlerts { .. } => Op::Roster,
    }
}

fn loc_unit(s: &State, l: &LocationId) -> Option<UnitId> {
    s.locations.get(l).map(|x| x.unit.clone())
}

fn person_unit(s: &State, b: &Badge) -> Option<UnitId> {
    s.people.get(b).map(|x| x.unit.clone())
}

/// The units a command acts in (unknown objects are skipped: deciding reports them as not found).
pub fn units_of(s: &State, cmd: &Command) -> Vec<UnitId> {
    let root = s.site.as_ref().map(|x| x.root_unit.clone());
    let mut out: Vec<Option<UnitId>> = match cmd {
        Command::CreateUnit { parent, .. } => vec![Some(parent.clone())],
        Command::CreateLocation { unit, .. }
        | Command::RegisterPerson { unit, .. }
        | Command::SetPolicy { unit, .. }
        | Command::IssueToken { unit, .. } => vec![Some(unit.clone())],
        Command::DefineItemType { .. }
        | Command::AdoptRules { .. }
        | Command::SetItemTypeStorage { .. }
        | Command::SetItemTypeAttributes { .. }
        | Command::SetTimeZone { .. } => vec![root],
        Command::SetLocationSafety { location, .. } | Command::RecordReadings { location, .. } => vec![loc_unit(s, location)],
        Command::SetCredential { badge, .. } | Command::GrantQualification { badge, .. } => vec![person_unit(s, badge)],
        Command::ChangePerson { badge, .. } => vec![person_unit(s, badge)],
        Command::RevokeToken { token, .. } => vec![s.tokens.get(token).map(|t| t.unit.clone())],
        Command::Receive { to, .. } | Command::Recover { to, .. } => vec![loc_unit(s, to)],
        Command::Issue { to, from, items } => issue_units(s, to, from.as_ref(), items),
        Command::Return { from, to, items, elsewhere } => std::iter::once(person_unit(s, from))
            .chain(crate::command::return_groups(to, items, elsewhere).map(|(l, _)| loc_unit(s, l)))
            .collect(),
        Command::Move { from, to, .. } => vec![loc_unit(s, from), loc_unit(s, to)],
        Command::Dispatch { from, .. } | Command::Destroy { from, .. } => vec![loc_unit(s, from)],
        Command::ReceiveTransfer { to, .. } => vec![loc_unit(s, to)],
        Command::Expend { from, .. } | Command::ReportLost { from, .. } => vec![s.account_unit(from)],
        Command::SetLotStatus { lot, unit, .. } => {
            let mut v: Vec<Option<UnitId>> = vec![unit.clone()];
            v.extend(s.balances.iter().filter(|((_, l), b)| l == lot && b.quantity.is_positive()).map(|((a, _), _)| s.account_unit(a)));
            v.extend(s.serials.values().filter(|si| si.lot.as_ref() == Some(lot)).map(|si| s.account_unit(&si.account)));
            v
        }
        Command::StartCount { root: l, .. } | Command::RecordCount { location: l, .. } => vec![loc_unit(s, l)],
        Command::CloseCount { count } => vec![s.counts.get(count).and_then(|c| loc_unit(s, &c.root))],
        Command::OpenIncident { unit, .. } => vec![Some(unit.clone())],
        Command::ResolveDiscrepancy { discrepancy, .. } => match s.discrepancies.get(discrepancy) {
            Some(d) => discrepancy_units(s, &d.facts),
            None => vec![],
        },
        Command::GrantAccess { location: l, .. } | Command::RevokeAccess { location: l, .. } => vec![loc_unit(s, l)],
        Command::RecordAccessAlerts { location: l } => vec![loc_unit(s, l)],
        Command::RecordDoorEvents { events, .. } => events.iter().map(|e| e.location.as_ref().and_then(|l| loc_unit(s, l))).collect(),
        Command::RecordOverdueReturn { badge } => vec![s.people.get(badge).map(|p| p.unit.clone())],
        Command::IssueDirective { unit, .. } | Command::RecordDirectiveMissed { unit, .. } => vec![Some(unit.clone())],
        Command::ReceiveFromParent { .. } => vec![],
        Command::UpdateDirective { directive, action } => {
            vec![action.unit().or_else(|| s.directives.get(directive).map(|d| &d.unit)).cloned()]
        }
        Command::UpdateIncident { incident, .. }
        | Command::EscalateOverdue { incident }
        | Command::RecordMissedDeadline { incident, .. } => {
            vec![s.incidents.get(incident).map(|i| i.unit.clone())]
        }
        Command::Correct { original, .. } => match &original.event {
            Event::Movement { from, to, .. } => vec![s.account_unit(from), s.account_unit(to)],
            _ => vec![],
        },
    };
    let mut units: Vec<UnitId> = out.drain(..).flatten().collect();
    units.sort();
    units.dedup();
    units
}

/// An issue's units: the person's, and the place lots come from or where each serial is racked.
fn issue_units(s: &State, to: &Badge, from: Option<&LocationId>, items: &[crate::command::ItemRef]) -> Vec<Option<UnitId>> {
    let mut v = vec![person_unit(s, to)];
    match from {
        Some(f) => v.push(loc_unit(s, f)),
        None => v.extend(items.iter().filter_map(|i| match i {
            crate::command::ItemRef::Serial(x) => Some(s.serials.get(x).and_then(|si| s.account_unit(&si.account))),
            crate::command::ItemRef::Lot { .. } => None,
        })),
    }
    v
}

/// The units a discrepancy concerns: the accounts it would adjust, and where it was found.
pub fn discrepancy_units(s: &State, f: &DiscrepancyFacts) -> Vec<Option<UnitId>> {
    let mut v = vec![s.account_unit(&f.adjust_from), s.account_unit(&f.adjust_to)];
    v.extend(f.book_account.iter().map(|a| s.account_unit(a)));
    v.extend(f.found_account.iter().map(|a| s.account_unit(a)));
    match &f.source {
        DiscrepancySource::Count(c) => v.push(s.counts.get(c).and_then(|c| loc_unit(s, &c.root))),
        DiscrepancySource::Transfer(t) => v.push(s.transfers.get(t).map(|t| t.to_unit.clone())),
    }
    v
}

/// An API token acting for its issuer may run only its listed operations, only inside its unit's
/// subtree, only while it is not revoked, and may issue no token wider than itself (rule `token.scope`). The books are the truth: a token
/// revoked a moment ago is refused even if an edge still holds it in a cache.
/// The operations a token issued for another badge may list: a device's work.
pub const DEVICE_WORK: [&str; 9] = ["receive", "issue", "return", "move", "transfer", "expend", "report_lost", "count", "conditions"];

pub fn check_token(s: &State, token: &str, actor: &Badge, cmd: &Command) -> R<()> {
    let Some(t) = s.tokens.get(token).filter(|t| !t.revoked && t.actor() == actor) else {
        return refuse("token.scope", format!("API token {token} is unknown or revoked and may not act for badge {actor}"));
    };
    // A token issued for another badge holds only while its issuer still may issue it.
    if t.acts_as.is_some() && !issuer_stands(s, t, actor) {
        return refuse(
            "token.scope",
            format!("API token {token} was issued by badge {}, who may no longer issue a token for badge {actor}", t.issued_by),
        );
    }
    let op = op_of(cmd);
    if !t.operations.iter().any(|o| o == op.as_str()) {
        return refuse("token.scope", format!("API token {token} may not {} (it allows: {})", op.as_str(), t.operations.join(", ")));
    }
    // A token mints no token wider than itself: every operation it grants, it must hold.
    if let Command::IssueToken { token: new, operations, .. } = cmd {
        if let Some(wider) = operations.iter().find(|o| !t.operations.contains(o)) {
            return refuse(
                "token.scope",
                format!("API token {token} may not issue token {new} allowed to {wider}: it allows only {}", t.operations.join(", ")),
            );
        }
    }
    match units_of(s, cmd).into_iter().find(|u| !s.unit_within(u, &t.unit)) {
        Some(u) => {
            refuse("token.scope", format!("API token {token} is limited to unit {} and may not {} at unit {u}", t.unit, op.as_str()))
        }
        None => Ok(()),
    }
}

/// Whether the issuer of a token for `actor` still stands: registered, not suspended, an
/// administrator of a unit holding `actor`'s.
pub fn issuer_stands(s: &State, t: &crate::state::ApiToken, actor: &Badge) -> bool {
    let (Some(issuer), Some(p)) = (s.people.get(&t.issued_by), s.people.get(actor)) else { return false };
    issuer.suspended.is_none()
        && issuer.roles.iter().any(|r| crate::permissions::role_allows(*r, Op::Setup))
        && s.unit_within(&p.unit, &issuer.unit)
}

/// The units an entry of the books concerns, for reading it: the accounts a movement touches, the
/// place a count was recorded at, the unit a lot decision covers (None: the whole site, so only the
/// root's). A registration of a serial or lot concerns whoever may see that item: `None` here.
pub fn event_units(s: &State, event: &Event) -> Option<Vec<UnitId>> {
    let units: Vec<Option<UnitId>> = match event {
        Event::SerialRegistered { .. } | Event::LotRegistered { .. } => return None,
        Event::Movement { from, to, .. } => vec![s.account_unit(from), s.account_unit(to)],
        Event::CountStarted { root: location, .. } | Event::CountRecorded { location, .. } => vec![loc_unit(s, location)],
        Event::DiscrepancyOpened { facts, .. } => discrepancy_units(s, facts),
        Event::LotStatusChanged { unit, .. } => vec![unit.clone().or_else(|| s.site.as_ref().map(|x| x.root_unit.clone()))],
        Event::TransferDispatched { from_unit, to_unit, .. } => vec![Some(from_unit.clone()), Some(to_unit.clone())],
        Event::TransferReceived { location, .. } => vec![loc_unit(s, location)],
        Event::IncidentOpened { unit, .. } => vec![Some(unit.clone())],
        Event::IncidentUpdated { incident, .. } => vec![s.incidents.get(incident).map(|i| i.unit.clone())],
        _ => vec![s.site.as_ref().map(|x| x.root_unit.clone())],
    };
    Some(units.into_iter().flatten().collect())
}

/// May someone at `viewer` read this entry of an item's history? (HQ, at the root, reads all.)
pub fn entry_visible(s: &State, viewer: &UnitId, event: &Event) -> bool {
    event_units(s, event).is_none_or(|units| units.iter().any(|u| s.unit_within(u, viewer)))
}
