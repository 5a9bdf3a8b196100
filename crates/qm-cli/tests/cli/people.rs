//! `qm person suspend|restore|roles|list`: each change recorded, a suspended person may not act.

use super::Env;

#[test]
fn an_administrator_suspends_restores_and_changes_roles_from_the_cli() {
    let e = Env::new();
    e.setup();
    let out = e.ok("0001", &["person", "suspend", "0417", "--reason", "on leave pending an inquiry"]);
    assert!(out.contains("badge 0417 suspended: on leave pending an inquiry"), "{out}");
    // A suspended armorer may not issue: refused, exit 3, the rule named.
    let r = e.qm_as("0417", &["issue", "--to", "1001", "R-1042"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("badge 0417 is suspended since") && r.stderr.contains("person.suspended"), "{}", r.stderr);
    // Nor suspend themselves back, nor anyone; the same suspension twice changes nothing.
    let r = e.qm_as("0001", &["person", "suspend", "0417", "--reason", "again"]);
    assert!(r.code == 3 && r.stderr.contains("person.unchanged"), "{}", r.stderr);
    let r = e.qm_as("0001", &["person", "roles", "0001", "--roles", "admin,inspector"]);
    assert!(r.code == 3 && r.stderr.contains("person.self"), "{}", r.stderr);
    let list = e.json("0001", &["person", "list", "--unit", "D-1"]);
    let row = list.as_array().unwrap().iter().find(|p| p["badge"] == "0417").unwrap().clone();
    assert!(row["suspended"].as_str().unwrap().contains("by 0001: on leave pending an inquiry"), "{row}");
    assert!(list.as_array().unwrap().iter().all(|p| p["unit"] != "HQ"), "--unit D-1 lists D-1 only: {list}");
    e.ok("0001", &["person", "restore", "0417", "--reason", "inquiry closed"]);
    e.ok("0417", &["issue", "--to", "1001", "R-1042"]);
    e.ok("0001", &["person", "roles", "1001", "--roles", "armorer,duty_officer"]);
    // A token for the armorer's counter script acts as them, not as the administrator who made it.
    let out = e.ok(
        "0001",
        &["token", "issue", "script-d1", "--label", "counter script", "--unit", "D-1", "--operations", "issue,return", "--for", "0417"],
    );
    assert!(out.contains("token (shown once"), "{out}");
    let log = e.ok("0001", &["log"]);
    assert!(log.contains("API token script-d1 (counter script) for unit D-1, acting as badge 0417: issue, return"), "{log}");
    // A lapsed qualification is said where the counter looks first.
    e.ok("0001", &["person", "qualify", "1001", "G36", "--expires", "2020-01-31"]);
    let held = e.ok("0417", &["custody", "1001"]);
    assert!(held.starts_with("note: qualification G36 expired on 2020-01-31: items that need it will be refused"), "{held}");
    let table = e.ok("0001", &["person", "list"]);
    assert!(
        table.contains("armorer,duty_officer") && table.contains("active") && table.contains("G36 until 2020-01-31 (expired)"),
        "{table}"
    );
}
