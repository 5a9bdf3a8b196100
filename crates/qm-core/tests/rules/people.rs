//! People suspended, restored and given other roles (`Command::ChangePerson`): an administrator of
//! their unit, never about themselves; a suspended person may not act, witness or be issued anything.

use super::*;
use qm_core::event::PersonChange;

fn change(badge: &str, change: PersonChange) -> Command {
    Command::ChangePerson { badge: b(badge), change }
}

fn suspend(badge: &str) -> Command {
    change(badge, PersonChange::Suspended { reason: "on leave pending an inquiry".into() })
}

#[test]
fn an_administrator_suspends_restores_and_changes_roles() {
    let mut s = stocked();
    assert_eq!(
        events(run(&s, "0002", None, suspend("1001"))),
        vec![Event::PersonChanged { badge: b("1001"), change: PersonChange::Suspended { reason: "on leave pending an inquiry".into() } }]
    );
    // Not about oneself, not outside the subtree, not without the role, not without a reason.
    assert_refused(run(&s, "0002", None, suspend("0002")), "person.self", &["badge 0002 may not suspend"]);
    assert_refused(run(&s, "0002", None, suspend("1201")), "permission.subtree", &["D-12"]);
    assert_refused(run(&s, "0501", None, suspend("1001")), "permission.role", &["badge 0501"]);
    assert_invalid(run(&s, "0002", None, change("1001", PersonChange::Suspended { reason: " ".into() })), "reason");
    assert_not_found(run(&s, "0002", None, suspend("7777")), "badge", "7777");
    exec(&mut s, "0002", None, suspend("1001"));
    let sus = s.people[&b("1001")].suspended.clone().expect("suspended");
    assert_eq!((sus.by.as_str(), sus.reason.as_str()), ("0002", "on leave pending an inquiry"));
    assert_refused(run(&s, "0002", None, suspend("1001")), "person.unchanged", &["badge 1001 is already suspended since"]);
    let restore = || change("1001", PersonChange::Restored { reason: "inquiry closed".into() });
    exec(&mut s, "0002", None, restore());
    assert!(s.people[&b("1001")].suspended.is_none());
    assert_refused(run(&s, "0002", None, restore()), "person.unchanged", &["badge 1001 is not suspended"]);
    // Roles: all of them from now on; the same set again changes nothing; none is invalid.
    let roles = |r: Vec<Role>| change("1002", PersonChange::Roles { roles: r });
    exec(&mut s, "0002", None, roles(vec![Role::Armorer, Role::DutyOfficer]));
    assert_eq!(s.people[&b("1002")].roles, [Role::Armorer, Role::DutyOfficer]);
    assert_refused(run(&s, "0002", None, roles(vec![Role::DutyOfficer, Role::Armorer])), "person.unchanged", &["exactly these roles"]);
    assert_invalid(run(&s, "0002", None, roles(vec![])), "at least one role");
}

#[test]
fn a_suspended_person_may_not_act_witness_or_be_issued_anything() {
    let mut s = stocked();
    exec(&mut s, "0417", None, issue("1001", None, vec![ser("R-1")]));
    exec(&mut s, "0002", None, suspend("1001"));
    exec(&mut s, "0002", None, suspend("0501"));
    // What they hold stays on their name, and may be taken back.
    assert_eq!(s.serials[&Serial::parse("R-1").unwrap()].account, person("1001"));
    // Nothing goes out to them.
    let (rule, message) = refused(run(&s, "0417", None, issue("1001", Some("ARM11"), vec![lots("A-1", 5)])));
    assert_eq!(rule, "issue.suspended", "the armorer is not denied anything: the recipient may not receive");
    assert!(message.contains("badge 1001 (Officer Q. Hughes) is suspended since") && message.contains("on leave"), "{message}");
    // They may not act (a denial, recorded by the edge), nor witness.
    let r = run(&s, "1001", None, issue("1002", None, vec![ser("R-2")]));
    assert!(matches!(&r, Err(e) if e.is_denial()), "{r:?}");
    assert_refused(r, "person.suspended", &["badge 1001 is suspended since"]);
    exec(
        &mut s,
        "0001",
        None,
        Command::SetPolicy { unit: u("D-11"), rules: PolicyRules { two_person_all_movements: true, ..PolicyRules::default() } },
    );
    assert_refused(
        run(&s, "0417", Some("0501"), issue("1002", Some("ARM11"), vec![lots("A-1", 5)])),
        "person.suspended",
        &["badge 0501 is suspended", "may not witness"],
    );
    assert_refused(
        run(&s, "0417", None, Command::return_to(b("1001"), l("RACK11"), vec![ser("R-1")])),
        "two_person",
        &["requires a witness"],
    );
}

/// A suspended person on a roster is turned away at the door like anyone not on it (the terminal, the
/// CLI and an access-control system's events are all judged by the same rule).
#[test]
fn a_suspended_person_is_turned_away_at_the_door() {
    use qm_core::access::{DoorKind::*, Proof};
    let mut s = stocked();
    exec(&mut s, "0501", None, grant("ARM11", "1001", Role::Armorer, "mon-fri 07:00-19:00"));
    exec(&mut s, "0002", None, suspend("1001"));
    let (p, _) = site_records(&mut s, NOW, doors(vec![door("t1", NOW, "1001", Entry, Some(Proof::Pin))])).unwrap();
    assert_eq!(p[0].kind, Denied);
    assert!(p[0].reason.contains("badge 1001 is suspended since") && p[0].reason.contains("may not enter ARM11"), "{}", p[0].reason);
}
