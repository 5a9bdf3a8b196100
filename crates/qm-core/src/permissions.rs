//! Which role may do which operation. The table here is the one docs/permissions.md shows.

use crate::model::Role;

/// Operations as the permission table names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    /// Units, locations, item types, people, qualifications, policy.
    Setup,
    Receive,
    Issue,
    Return,
    Move,
    Transfer,
    Expend,
    Destroy,
    ReportLost,
    Recover,
    LotStatus,
    Count,
    Resolve,
    Correct,
    Witness,
    /// Record storage-condition readings.
    Conditions,
    /// Open an incident, acknowledge, investigate, note, escalate, report and reopen it; closing
    /// also needs a role the incident rules name for its severity.
    Incident,
    /// Issue, relay, extend and cancel a directive, acknowledge it for a unit, sign off its reviews.
    Directive,
    /// Acknowledge a directive's shift briefing for oneself (before the first operation under it).
    Brief,
    /// Grant and revoke places on the roster of an armory, depot or magazine (docs/access.md).
    Roster,
}

impl Op {
    pub const ALL: &'static [Op] = &[
        Op::Setup,
        Op::Receive,
        Op::Issue,
        Op::Return,
        Op::Move,
        Op::Transfer,
        Op::Expend,
        Op::Destroy,
        Op::ReportLost,
        Op::Recover,
        Op::LotStatus,
        Op::Count,
        Op::Resolve,
        Op::Correct,
        Op::Witness,
        Op::Conditions,
        Op::Incident,
        Op::Directive,
        Op::Brief,
        Op::Roster,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Setup => "setup",
            Op::Receive => "receive",
            Op::Issue => "issue",
            Op::Return => "return",
            Op::Move => "move",
            Op::Transfer => "transfer",
            Op::Expend => "expend",
            Op::Destroy => "destroy",
            Op::ReportLost => "report_lost",
            Op::Recover => "recover",
            Op::LotStatus => "lot_status",
            Op::Count => "count",
            Op::Resolve => "resolve",
            Op::Correct => "correct",
            Op::Witness => "witness",
            Op::Conditions => "conditions",
            Op::Incident => "incident",
            Op::Directive => "directive",
            Op::Brief => "brief",
            Op::Roster => "roster",
        }
    }
}

/// Least privilege: each role gets what its job at the counter, the magazine or the office needs.
/// Book-changing decisions (write-offs, destruction, corrections) sit with the duty officer;
/// the administrator sets the organization up but moves no stock.
impl Op {
    /// Operations at the counter or the door: the first one under a directive needs its shift briefing.
    pub fn needs_briefing(self) -> bool {
        matches!(
            self,
            Op::Receive
                | Op::Issue
                | Op::Return
                | Op::Move
                | Op::Transfer
                | Op::Expend
                | Op::Destroy
                | Op::ReportLost
                | Op::Recover
                | Op::Count
        )
    }
}

pub fn role_allows(role: Role, op: Op) -> bool {
    use Op::*;
    match role {
        Role::Armorer => {
            matches!(op, Receive | Issue | Return | Move | Expend | ReportLost | Count | Witness | Conditions | Incident | Brief)
        }
        Role::MagazineKeeper => {
            matches!(op, Receive | Issue | Return | Move | Expend | ReportLost | Count | Witness | Conditions | Incident | Brief)
        }
        Role::Logistics => matches!(op, Receive | Move | Transfer | Incident | Brief),
        Role::DutyOfficer => matches!(
            op,
            Issue
                | Return
                | Destroy
                | ReportLost
                | Recover
                | LotStatus
                | Count
                | Resolve
                | Correct
                | Witness
                | Incident
                | Directive
                | Brief
                | Roster
        ),
        Role::Inspector => matches!(op, Count | Witness | Incident | Brief),
        Role::Admin => matches!(op, Setup | Roster),
        // Staff who draw weapons and ammunition: they hold what is issued to them and do nothing else.
        Role::Member => false,
    }
}

/// The permission table as Markdown, for docs/permissions.md (a test keeps the file equal to this).
pub fn markdown_table() -> String {
    let mut out = String::from("| operation |");
    for r in Role::ALL {
        out.push_str(&format!(" {} |", r.as_str()));
    }
    out.push_str("\n|---|");
    for _ in Role::ALL {
        out.push_str("---|");
    }
    out.push('\n');
    for op in Op::ALL {
        out.push_str(&format!("| {} |", op.as_str()));
        for r in Role::ALL {
            out.push_str(if role_allows(*r, *op) { " yes |" } else { " – |" });
        }
        out.push('\n');
    }
    out
}
