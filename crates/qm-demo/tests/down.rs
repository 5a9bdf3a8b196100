//! Down the tree at the level of the app service (docs/sites.md): what headquarters decides reaches
//! a department's own site with its proof, once, and nothing altered on the way is taken.

use qm_app::down::DownAnswer;
use qm_app::{Request, Site};
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
