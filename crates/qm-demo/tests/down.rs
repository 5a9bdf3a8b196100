//! Down the tree at the level of the app service (docs/sites.md): what headquarters decides reaches
//! a department's own site with its proof, once, and nothing altered on the way is taken.

use qm_app::down::DownAnswer;
use qm_app::{Request, Site};
use qm_core::event::PersonChange;
use qm_core::*;
use time::{Duration, OffsetDateTime};

mod common;
use common::*;

/// A department's own site (d11.example, root D-11) and headquarters' children file naming it as
/// serving headquarters' unit D-11.
fn department(hq_dir: &tempfile::TempDir) -> (tempfile::TempDir, Site, qm_app::sites::Children) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("d11.db").display().to_string();
    let g = qm_app::Genesis {
        site: "d11.example",
        root_unit: &UnitId::parse("D-11").unwrap(),
        root_unit_name: "Riverside",
        admin: &Badge::parse("0001").unwrap(),
        admin_name: "Admin",
        admin_pin: "1234",
        at: OffsetDateTime::now_utc(),
    };
    let dept = Site::init(qm_backends::open_store, &db, &qm_app::default_key_path(std::path::Path::new(&db)), &g).unwrap();
    let vkey = dept.state().site.as_ref().unwrap().verifier_key.clone();
    let file = hq_dir.path().join("children.toml");
    std::fs::write(&file, format!("[children.\"d11.example\"]\nkey = \"{vkey}\"\nunit = \"D-11\"\n")).unwrap();
    (dir, dept, qm_app::sites::Children::read(&file).unwrap())
}

fn down(hq: &mut Site, dept: &Site, children: &qm_app::sites::Children, now: OffsetDateTime) -> qm_app::down::Down {
    let req = dept.down_request(&hq.site_name(), now).unwrap();
    match hq.down_for(children, &req, now).unwrap() {
        DownAnswer::Down(d) => d,
        DownAnswer::Refused(s, why) => panic!("{s}: {why}"),
    }
}

/// Headquarters' duty officer orders every unit to a heightened guard; the department's site asks
/// with its signed request, gets the directive (and the earlier drill for its region) with their
/// inclusion proofs, and records each once: the directive is in force at the department's root unit,
/// issued by headquarters' officer, its place in headquarters' ledger kept. An entry altered on the
/// way, a request signed by another key or too old, an unknown site: refused. Headquarters cancels
/// it: the cancellation flows down too. The department's ledger verifies.
#[test]
fn a_directive_issued_at_headquarters_reaches_a_department_site_with_its_proof() {
    let (hq_dir, mut hq) = demo();
    let (_d_dir, mut dept, children) = department(&hq_dir);
    let now = OffsetDateTime::now_utc();
    let order = Command::IssueDirective {
        unit: UnitId::parse("HQ").unwrap(),
        applies_to: vec![],
        title: "Heightened guard".into(),
        text: "Two guards at every armory door until further notice.".into(),
        posture: "heightened".into(),
        starts_at: None,
        ends_at: now + Duration::days(2),
        measures: vec![],
    };
    let o = hq.execute(Request::new(Badge::parse("0009").unwrap(), order, "guard".into(), now)).unwrap();
    let Event::DirectiveIssued { directive: id, .. } = &o.entries[0].event else { panic!("not issued") };
    let hq_vkey = hq.state().site.as_ref().unwrap().verifier_key.clone();
    let first = down(&mut hq, &dept, &children, now);
    assert!(first.entries.len() >= 2 && first.entries.iter().any(|e| e.seq == o.first_seq), "the drill and the order: {first:?}");
    // Altered on the way: no proof checks, nothing recorded.
    let mut altered = first.clone();
    let i = altered.entries.iter().position(|e| e.seq == o.first_seq).unwrap();
    altered.entries[i].entry = altered.entries[i].entry.replace("Two guards", "One guard");
    let e = dept.take_down(&altered, &hq_vkey, now).unwrap_err().to_string();
    assert!(e.contains(&format!("entry {} of demo.quartermaster is not in its checkpoint", o.first_seq)), "{e}");
    assert!(dept.state().directives.is_empty());
    let other_key = qm_ledger::SiteKey::generate("demo.quartermaster").verifier_key();
    assert!(dept.take_down(&first, &other_key, now).unwrap_err().to_string().contains("not signed by its key"));
    // As sent: recorded, each once.
    assert_eq!(dept.take_down(&first, &hq_vkey, now).unwrap(), first.entries.len());
    assert_eq!(dept.take_down(&first, &hq_vkey, now).unwrap(), 0, "the same answer again records nothing");
    let d = &dept.state().directives[id];
    assert_eq!((d.unit.as_str(), d.issued_by.as_str(), d.title.as_str()), ("D-11", "0009", "Heightened guard"));
    assert_eq!((d.received[0].origin.as_str(), d.received[0].seq, d.received[0].unit.as_str()), ("demo.quartermaster", o.first_seq, "HQ"));
    assert_eq!(qm_core::directives::units_concerned(dept.state(), d), vec![UnitId::parse("D-11").unwrap()], "its root is concerned");
    let in_force =
        qm_app::directives::list(dept.state(), &qm_app::directives::DirectiveFilter { in_force: true, unit: None }, now, &|_| true);
    assert!(in_force.iter().any(|v| v.id == id.as_str()), "{in_force:?}");
    assert!(down(&mut hq, &dept, &children, now).entries.is_empty(), "asked again: nothing new");
    // Requests headquarters refuses.
    let stale = dept.down_request(&hq.site_name(), now - Duration::hours(1)).unwrap();
    assert!(matches!(hq.down_for(&children, &stale, now).unwrap(), DownAnswer::Refused(403, _)));
    let forged = qm_ledger::sign_note(
        &qm_ledger::SiteKey::generate("d11.example"),
        &format!("qm-down/v1\nd11.example\n-\n{}\n", now.unix_timestamp()),
    )
    .unwrap();
    assert!(matches!(hq.down_for(&children, &forged, now).unwrap(), DownAnswer::Refused(403, _)));
    let stranger =
        qm_ledger::sign_note(&qm_ledger::SiteKey::generate("x.example"), &format!("qm-down/v1\nx.example\n-\n{}\n", now.unix_timestamp()))
            .unwrap();
    assert!(matches!(hq.down_for(&children, &stranger, now).unwrap(), DownAnswer::Refused(404, _)));
    // Headquarters cancels it: the cancellation reaches the department.
    let cancel =
        Command::UpdateDirective { directive: id.clone(), action: event::DirectiveAction::Cancel { reason: "threat passed".into() } };
    hq.execute(Request::new(Badge::parse("0009").unwrap(), cancel, "guard-off".into(), now + Duration::minutes(5))).unwrap();
    let later = now + Duration::minutes(6);
    let next = down(&mut hq, &dept, &children, later);
    assert_eq!(next.entries.len(), 1, "{next:?}");
    assert_eq!(dept.take_down(&next, &hq_vkey, later).unwrap(), 1);
    assert!(dept.state().directives[id].cancelled.is_some());
    assert_verifies(&dept);
    // The department's notification rules tell its duty officers of it, as of a directive issued there.
    let cfg =
        qm_app::notify::NotifyConfig::from_toml_str("[[notify]]\nunit = \"*\"\nroles = [\"admin\"]\n", "n.toml", dept.state()).unwrap();
    let received = dept.store().read_entries(dept.state().directives[id].received[0].entry, 1).unwrap();
    let env = qm_app::decode(&received[0].bytes).unwrap();
    let told = qm_app::notify::messages_for(dept.state(), &cfg, &env, now);
    assert!(told.iter().any(|m| m.channel == "web" && m.target == "0001"), "{told:?}");
    assert!(told[0].subject.contains(&format!("directive {id} issued")) && told[0].body.contains("by badge 0009"), "{told:?}");
    // Its summary in the department's log names where it came from.
    let log = qm_app::query::log(&dept, 3).unwrap();
    assert!(log.iter().any(|l| l.summary.contains("received from site demo.quartermaster")), "{log:?}");
}

fn run(site: &mut Site, actor: &str, command: Command, key: &str, at: OffsetDateTime) -> qm_app::Outcome {
    site.execute(Request::new(Badge::parse(actor).unwrap(), command, key.into(), at)).unwrap_or_else(|e| panic!("{key}: {e}"))
}

/// Everything headquarters sends the department, taken until nothing new comes.
fn take_all(hq: &mut Site, dept: &mut Site, children: &qm_app::sites::Children, at: OffsetDateTime) -> usize {
    let hq_vkey = hq.state().site.as_ref().unwrap().verifier_key.clone();
    let mut taken = 0;
    loop {
        let d = down(hq, dept, children, at);
        if d.entries.is_empty() {
            return taken;
        }
        taken += dept.take_down(&d, &hq_vkey, at).unwrap();
    }
}

/// Besides directives, what headquarters decides for the department reaches its own site and takes
/// effect there: the catalog (an item type the department tracks otherwise is recorded, not taken,
/// with the reason); the staff of D-11 and their qualifications (no other department's, and no
/// secret: the person sets a PIN there); a lot suspended for the whole organization, which the
/// department then may not issue once it holds it; the standing policies of D-11 and of headquarters
/// above it (not D-12's). Each is recorded once with its place in headquarters' ledger.
#[test]
fn the_catalog_staff_lots_and_policies_decided_above_reach_a_department_site() {
    let (hq_dir, mut hq) = demo();
    let (_d_dir, mut dept, children) = department(&hq_dir);
    let now = OffsetDateTime::now_utc();
    let (lot, ammo) = {
        let s = hq.state();
        let (lot, l) = s.lots.iter().find(|(_, l)| s.item_types[&l.item_type].tracking == Tracking::Lot).unwrap();
        (lot.clone(), l.item_type.clone())
    };
    let weapon = hq.state().item_types.iter().find(|(_, t)| t.tracking == Tracking::Serial).map(|(id, _)| id.clone()).unwrap();
    // The department had defined that weapon's id as a lot-tracked accessory before.
    let own = Command::DefineItemType {
        item_type: weapon.clone(),
        name: "Slings".into(),
        kind: ItemKind::Accessory,
        tracking: Tracking::Lot,
        unit_of_measure: "each".into(),
        neq_kg_per_unit: 0.0,
        un_code: None,
        qualification: None,
    };
    run(&mut dept, "0001", own, "own-type", now);
    let suspend = Command::SetLotStatus { lot: lot.clone(), status: LotStatus::Suspended, reason: "misfires reported".into(), unit: None };
    let suspended = run(&mut hq, "0009", suspend, "suspend", now).first_seq;
    let pin = qm_app::credentials::hash_secret("9876").unwrap();
    let person = |badge: &str, unit: &str| Command::RegisterPerson {
        badge: Badge::parse(badge).unwrap(),
        name: format!("Officer {badge}"),
        unit: UnitId::parse(unit).unwrap(),
        roles: vec![Role::Armorer],
        pin_hash: pin.clone(),
    };
    run(&mut hq, "0001", person("1199", "D-11"), "p1199", now);
    run(&mut hq, "0001", person("1299", "D-12"), "p1299", now);
    let qual = Command::GrantQualification {
        badge: Badge::parse("1199").unwrap(),
        qualification: "G36".into(),
        expires: now.date() + Duration::days(365),
    };
    run(&mut hq, "0001", qual, "q1199", now);
    let cap = policy::PolicyRules { max_issue_quantity: Some(quantity::Quantity::units(30)), ..Default::default() };
    run(&mut hq, "0001", Command::SetPolicy { unit: UnitId::parse("HQ").unwrap(), rules: cap }, "cap", now);
    let night = policy::PolicyRules { counter_not_keeper: true, ..Default::default() };
    run(&mut hq, "0001", Command::SetPolicy { unit: UnitId::parse("D-12").unwrap(), rules: night }, "d12", now);

    assert!(take_all(&mut hq, &mut dept, &children, now) > 10);
    assert_eq!(take_all(&mut hq, &mut dept, &children, now), 0, "each is taken once");
    let (h, d) = (hq.state(), dept.state());
    // The catalog, but the department's own type of that id is left as it was, with the reason kept.
    assert_eq!(d.item_types[&ammo].name, h.item_types[&ammo].name);
    assert_eq!(d.item_types[&weapon].name, "Slings");
    let not_taken: Vec<&str> = d.received.values().filter(|t| !t.note.is_empty()).map(|t| t.note.as_str()).collect();
    assert!(not_taken.iter().any(|n| n.contains(&format!("item type {weapon} is"))), "{not_taken:?}");
    // D-11's staff, with roles and qualification; not D-12's; no PIN came with them.
    for (b, p) in h.people.iter().filter(|(_, p)| p.unit.as_str() == "D-11") {
        assert_eq!(d.people.get(b).map(|x| &x.roles), Some(&p.roles), "badge {b}");
    }
    assert!(d.people[&Badge::parse("1199").unwrap()].qualifications.contains_key("G36"));
    assert!(!d.people.contains_key(&Badge::parse("1299").unwrap()) && d.people.values().all(|p| p.pin_hash.is_none() || p.name == "Admin"));
    // Policies of D-11 and above it; not D-12's.
    let eff = d.effective_policy(&UnitId::parse("D-11").unwrap(), now).0;
    assert!(eff.two_person_entry && eff.max_issue_quantity == Some(quantity::Quantity::units(30)), "{eff:?}");
    assert!(!eff.counter_not_keeper && !d.above_policies.contains_key(&UnitId::parse("D-12").unwrap()));
    assert_eq!(d.received[&qm_core::down::received_key("demo.quartermaster", suspended)].what, "lot_status_changed");
    // The department receives that lot: it may not issue it.
    let rack = LocationId::parse("D11-AMMO").unwrap();
    let place = Command::CreateLocation {
        location: rack.clone(),
        name: "Ammunition locker".into(),
        unit: UnitId::parse("D-11").unwrap(),
        parent: None,
        kind: LocationKind::Locker,
        keeper: None,
        magazine: None,
    };
    run(&mut dept, "0001", place, "locker", now);
    let q = quantity::Quantity::units(100);
    let line = ReceiptLine { item_type: ammo, serial: None, lot: Some(lot.clone()), quantity: q, manufactured: None, expires: None };
    let receive = Command::Receive { to: rack.clone(), from: "HQ depot".into(), document: "T-1".into(), lines: vec![line] };
    run(&mut dept, "1199", receive, "in", now);
    assert_eq!(dept.state().lot_status_at(&lot, &UnitId::parse("D-11").unwrap()).map(|s| s.0), Some(LotStatus::Suspended));
    let items = vec![ItemRef::Lot { lot: lot.clone(), quantity: quantity::Quantity::units(10) }];
    let to = dept.state().people.iter().find(|(b, p)| p.unit.as_str() == "D-11" && b.as_str() != "1199").map(|(b, _)| b.clone());
    let issue = Command::Issue { to: to.unwrap(), from: Some(rack), items };
    let e = dept.execute(Request::new(Badge::parse("1199").unwrap(), issue, "out".into(), now)).unwrap_err().to_string();
    assert!(e.contains(&format!("lot {lot}")) && e.contains("suspended"), "{e}");
    // Headquarters suspends the armorer and gives them other roles: both come down; a suspended
    // person may not act at the department either.
    let officer = Badge::parse("1199").unwrap();
    let change = |c: PersonChange| Command::ChangePerson { badge: officer.clone(), change: c };
    run(&mut hq, "0001", change(PersonChange::Roles { roles: vec![Role::Armorer, Role::DutyOfficer] }), "roles-1199", now);
    run(&mut hq, "0001", change(PersonChange::Suspended { reason: "inquiry".into() }), "suspend-1199", now);
    assert_eq!(take_all(&mut hq, &mut dept, &children, now), 2);
    let p = &dept.state().people[&officer];
    assert_eq!(
        (p.roles.clone(), p.suspended.as_ref().map(|s| s.reason.clone())),
        (vec![Role::Armorer, Role::DutyOfficer], Some("inquiry".into()))
    );
    let again = Command::StartCount { root: LocationId::parse("D11-AMMO").unwrap(), kind: CountKind::Full, blind: false };
    let e = dept.execute(Request::new(officer.clone(), again, "count".into(), now)).unwrap_err();
    assert_eq!(e.code(), "person.suspended", "{e}");
    // Only headquarters lifts it: the department's administrator may not; headquarters' restoration comes down.
    let restore = Command::ChangePerson { badge: officer.clone(), change: PersonChange::Restored { reason: "inquiry closed".into() } };
    let e = dept.execute(Request::new(Badge::parse("0001").unwrap(), restore.clone(), "local-restore".into(), now)).unwrap_err();
    assert_eq!(e.code(), "person.suspended_above", "{e}");
    assert!(e.to_string().contains("was suspended by site demo.quartermaster, above this one"), "{e}");
    run(&mut hq, "0001", restore, "restore-1199", now);
    assert_eq!(take_all(&mut hq, &mut dept, &children, now), 1);
    assert!(dept.state().people[&officer].suspended.is_none());
    assert_verifies(&dept);
}

/// Headquarters adopts its own incident rules (high incidents acknowledged within 2 h, not 4) and
/// safety tables in its ledger: they are in force there at once, refused when they do not read as
/// such or change nothing, and by an administrator only; the department takes both from above,
/// and keeps them over a configured file and after opening again; its ledger verifies.
#[test]
fn incident_rules_and_safety_tables_adopted_at_headquarters_are_in_force_below() {
    let (hq_dir, mut hq) = demo();
    let (d_dir, mut dept, children) = department(&hq_dir);
    let now = OffsetDateTime::now_utc();
    let shipped = include_str!("../../qm-core/data/incidents.toml");
    let ours = shipped.replacen("[severity.high]\nacknowledge_within_h = 4", "[severity.high]\nacknowledge_within_h = 2", 1);
    assert_ne!(ours, shipped);
    let adopt = |rules: &str, text: &str| Command::AdoptRules { rules: event::RulesKind::parse(rules).unwrap(), text: text.into() };
    let refused = |site: &mut Site, actor: &str, c: Command| {
        site.execute(Request::new(Badge::parse(actor).unwrap(), c, format!("r-{actor}"), now)).unwrap_err().to_string()
    };
    assert!(refused(&mut hq, "0001", adopt("incident-rules", "[severity.high]\nacknowledge_within_h = \"soon\"\n")).contains("invalid"));
    assert!(refused(&mut hq, "0009", adopt("incident-rules", &ours)).contains("permission.role"));
    run(&mut hq, "0001", adopt("incident-rules", &ours), "rules", now);
    assert!(refused(&mut hq, "0001", adopt("incidents", &ours)).contains("rules.unchanged"));
    let tables = include_str!("../../qm-safety/data/default.toml");
    run(&mut hq, "0001", adopt("safety-tables", tables), "tables", now);
    let high = |s: &Site| s.state().incident_rules.0.severity[&Severity::High].acknowledge_within_h;
    assert_eq!(high(&hq), 2);
    take_all(&mut hq, &mut dept, &children, now);
    assert_eq!(high(&dept), 2, "in force at the department");
    let a = &dept.state().adopted[&event::RulesKind::IncidentRules];
    assert_eq!((a.from.as_deref(), a.text.as_str()), (Some("demo.quartermaster"), ours.as_str()));
    assert!(dept.state().adopted.contains_key(&event::RulesKind::SafetyTables));
    // A configured file does not replace what the ledger adopted; opening again keeps them.
    let why = dept.set_incident_rules(incidents::IncidentRules::default_rules()).expect("the adopted rules stay");
    assert!(why.contains("adopted in the ledger") && why.contains("site demo.quartermaster"), "{why}");
    assert_eq!(high(&dept), 2);
    assert_verifies(&dept);
    drop(dept);
    let db = d_dir.path().join("d11.db");
    let again = Site::open(qm_backends::open_store, db.to_str().unwrap(), None).unwrap();
    assert_eq!(high(&again), 2, "after opening again");
}
