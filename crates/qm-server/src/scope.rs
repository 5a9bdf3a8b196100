//! Scope: which operation a command is, which units it touches, and what a principal may see.
//!
//! The core authorizes every command by the actor's roles and unit. The server adds two checks on
//! top: an API token may only use its listed operations inside its unit's subtree, and every read
//! is filtered to the principal's subtree (HQ, at the root, sees everything).

use crate::auth::{Principal, Via};
use qm_core::event::DiscrepancySource;
use qm_core::permissions::Op;
use qm_core::*;

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
        | Command::SetPolicy { .. }
        | Command::SetLocationSafety { .. }
        | Command::SetItemTypeStorage { .. }
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
    }
}

fn loc_unit(s: &State, l: &LocationId) -> Option<UnitId> {
    s.locations.get(l).map(|x| x.unit.clone())
}

fn person_unit(s: &State, b: &Badge) -> Option<UnitId> {
    s.people.get(b).map(|x| x.unit.clone())
}

/// The units a command acts in (unknown objects are skipped: the core reports them as not found).
pub fn units_of(s: &State, cmd: &Command) -> Vec<UnitId> {
    let root = s.site.as_ref().map(|x| x.root_unit.clone());
    let mut out: Vec<Option<UnitId>> = match cmd {
        Command::CreateUnit { parent, .. } => vec![Some(parent.clone())],
        Command::CreateLocation { unit, .. } | Command::RegisterPerson { unit, .. } | Command::SetPolicy { unit, .. } => {
            vec![Some(unit.clone())]
        }
        Command::IssueToken { unit, .. } => vec![Some(unit.clone())],
        Command::DefineItemType { .. } | Command::SetItemTypeStorage { .. } | Command::SetTimeZone { .. } => vec![root],
        Command::SetLocationSafety { location, .. } | Command::RecordReadings { location, .. } => vec![loc_unit(s, location)],
        Command::SetCredential { badge, .. } | Command::GrantQualification { badge, .. } => vec![person_unit(s, badge)],
        Command::RevokeToken { token, .. } => vec![s.tokens.get(token).map(|t| t.unit.clone())],
        Command::Receive { to, .. } | Command::Recover { to, .. } => vec![loc_unit(s, to)],
        Command::Issue { to, from, items } => {
            let mut v = vec![person_unit(s, to)];
            match from {
                Some(f) => v.push(loc_unit(s, f)),
                None => {
                    for i in items {
                        if let ItemRef::Serial(x) = i {
                            v.push(s.serials.get(x).and_then(|si| s.account_unit(&si.account)));
                        }
                    }
                }
            }
            v
        }
        Command::Return { from, to, .. } => vec![person_unit(s, from), loc_unit(s, to)],
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
        Command::StartCount { root, .. } => vec![loc_unit(s, root)],
        Command::RecordCount { location, .. } => vec![loc_unit(s, location)],
        Command::CloseCount { count } => vec![s.counts.get(count).and_then(|c| loc_unit(s, &c.root))],
        Command::ResolveDiscrepancy { discrepancy, .. } => match s.discrepancies.get(discrepancy) {
            Some(d) => discrepancy_units(s, &d.facts),
            None => vec![],
        },
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

/// The units a discrepancy concerns: the accounts it would adjust, and where it was found.
pub fn discrepancy_units(s: &State, f: &qm_core::event::DiscrepancyFacts) -> Vec<Option<UnitId>> {
    let mut v = vec![s.account_unit(&f.adjust_from), s.account_unit(&f.adjust_to)];
    v.extend(f.book_account.iter().map(|a| s.account_unit(a)));
    v.extend(f.found_account.iter().map(|a| s.account_unit(a)));
    match &f.source {
        DiscrepancySource::Count(c) => v.push(s.counts.get(c).and_then(|c| loc_unit(s, &c.root))),
        DiscrepancySource::Transfer(t) => v.push(s.transfers.get(t).map(|t| t.to_unit.clone())),
    }
    v
}

/// Why a token may not run this command, or None when it may.
pub fn token_denies(s: &State, p: &Principal, cmd: &Command) -> Option<String> {
    let Via::Token { id, operations } = &p.via else { return None };
    let op = op_of(cmd);
    if !operations.iter().any(|o| o == op.as_str()) {
        return Some(format!("API token {id} may not {} (it allows: {})", op.as_str(), operations.join(", ")));
    }
    units_of(s, cmd)
        .into_iter()
        .find(|u| !s.unit_within(u, &p.unit))
        .map(|u| format!("API token {id} is limited to unit {} and may not {} at unit {u}", p.unit, op.as_str()))
}

/// May `p` see something that belongs to `unit`? Things without a unit (written off, external) only HQ sees.
pub fn sees(s: &State, p: &Principal, unit: Option<&UnitId>) -> bool {
    match unit {
        Some(u) => s.unit_within(u, &p.unit),
        None => p.at_root,
    }
}

/// The refusal a read outside the principal's subtree gets (and records).
pub fn outside(p: &Principal, what: &str) -> String {
    format!("badge {} (unit {}) may not see {what}, which is outside its subtree", p.badge, p.unit)
}
