//! `qm return` without `--to`: each item goes back to its home (the rack a serial was issued from,
//! the store holding its lot), or to the place typed after `>`; one entry set, or nothing.

use super::Env;

#[test]
fn a_return_without_a_place_sends_each_item_home() {
    let e = Env::new();
    e.setup();
    e.ok("0417", &["issue", "--to", "1001", "R-1042"]);
    e.ok("0417", &["issue", "--to", "1001", "--from", "ARM", "L-1:60"]);
    // The rifle and its rounds handed back together: the rifle to Rack A, the rounds to the armory.
    let out = e.ok("0417", &["return", "--from", "1001", "R-1042", "L-1:60"]);
    assert!(out.contains("return: serial R-1042 from person:1001 to location:RACK-A"), "{out}");
    assert!(out.contains("60 of lot L-1 from person:1001 to location:ARM"), "{out}");
    assert_eq!(e.json("0417", &["where", "R-1042"])["account"], "location:RACK-A");
    // A line may name another place: the rifle goes to Rack B this time.
    e.ok("0417", &["issue", "--to", "1001", "R-1042"]);
    e.ok("0417", &["issue", "--to", "1001", "--from", "ARM", "L-1:10"]);
    let out = e.ok("0417", &["return", "--from", "1001", "R-1042 > RACK-B", "L-1:10"]);
    assert!(out.contains("to location:RACK-B"), "{out}");
    assert_eq!(e.json("0417", &["where", "R-1042"])["account"], "location:RACK-B");
    // One wrong line refuses the whole return: nothing is booked in, not even the rifle.
    e.ok("0417", &["issue", "--to", "1001", "R-1042"]);
    let before = e.entries();
    let r = e.qm_as("0417", &["return", "--from", "1001", "R-1042", "L-1:5"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("badge 1001 holds 0 of lot L-1, not 5"), "{}", r.stderr);
    assert_eq!(e.entries(), before);
    assert_eq!(e.json("0417", &["where", "R-1042"])["account"], "person:1001");
    // A bad place is named.
    let r = e.qm_as("0417", &["return", "--from", "1001", "R-1042 > NOWHERE"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("NOWHERE"), "{}", r.stderr);
}
