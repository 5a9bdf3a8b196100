//! Application-service tests: canonical encoding, group commit, idempotency, reload and verify on a real SQLite store.

use proptest::prelude::*;
use qm_app::verify::{verify, VerifyOptions};
use qm_app::{decode, encode, encode_reference, Request, Site};
use qm_core::*;
use time::OffsetDateTime;

mod common;
use common::*;

#[test]
fn stored_entries_are_canonical_json_and_decode_to_themselves() {
    let (_dir, site) = demo();
    let entries = site.store().read_entries(0, 10_000).unwrap();
    assert!(entries.len() > 90);
    let mut kinds = std::collections::BTreeSet::new();
    for e in entries {
        let env = decode(&e.bytes).unwrap();
        kinds.insert(env.event.type_name());
        assert_eq!(encode(&env).unwrap(), e.bytes, "entry {} is not in canonical form", e.seq);
        assert_eq!(encode_reference(&env).unwrap(), e.bytes, "entry {} differs from the RFC 8785 reference encoder", e.seq);
    }
    // The demo day exercises (almost) every kind of event, floats included (magazine licence, NEQ).
    for k in [
        "site_initialized",
        "location_created",
        "item_type_defined",
        "movement",
        "count_closed",
        "discrepancy_opened",
        "discrepancy_resolved",
    ] {
        assert!(kinds.contains(k), "demo lacks {k}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    /// Free text (documents, names, notes) with any characters encodes exactly as RFC 8785 says.
    /// Integers stay below 2^53: RFC 8785 reads numbers as doubles, and so do our limits.
    #[test]
    fn encode_matches_the_reference_on_any_text(doc in "\\PC{0,40}|[\\x00-\\x1f\"\\\\/\u{7f}-\u{10ffff}]{0,10}", neq in proptest::num::f64::NORMAL, n in 0u64..(1u64 << 53)) {
        let env = Envelope {
            site: "s".into(), seq: n, at: OffsetDateTime::UNIX_EPOCH, actor: Badge::parse("1").unwrap(), witness: None,
            token: None,
            idempotency_key: doc.clone(), corrects: None,
            request: None,
            event: Event::Movement { kind: MovementKind::Receive, from: Account::Supplier("x".into()), to: Account::Lost, lines: vec![], document: Some(doc.clone()) },
            opens: vec![],
        };
        prop_assert_eq!(encode(&env).unwrap(), encode_reference(&env).unwrap());
        let env2 = Envelope { event: Event::ItemTypeDefined { item_type: ItemTypeId::parse("T").unwrap(), name: doc, kind: ItemKind::Explosive, tracking: Tracking::Lot, unit_of_measure: "kg".into(), neq_kg_per_unit: neq.abs(), un_code: None, qualification: None }, ..env };
        prop_assert_eq!(encode(&env2).unwrap(), encode_reference(&env2).unwrap());
    }
}

#[test]
fn a_refused_command_in_a_batch_does_not_fail_the_others_and_duplicates_append_once() {
    let (_dir, mut site) = demo();
    let before = site.size();
    let results = site.execute_batch(vec![
        issue("0417", "1001", "R-1043", "k1"),
        issue("0417", "1002", "R-1043", "k2"), // same rifle again: refused
        issue("0417", "1002", "R-1044", "k3"),
        issue("0417", "1002", "R-1044", "k3"), // a retry inside the same batch
    ]);
    assert!(results[0].is_ok());
    let refused = results[1].as_ref().unwrap_err().to_string();
    assert!(refused.contains("serial R-1043 is issued to badge 1001"), "{refused}");
    assert!(results[2].is_ok());
    let dup = results[3].as_ref().unwrap();
    assert!(dup.replayed);
    assert_eq!(dup.first_seq, results[2].as_ref().unwrap().first_seq);
    assert_eq!(site.size(), before + 2);
    // A retry in a later batch also returns the first result.
    let again = site.execute(issue("0417", "1002", "R-1044", "k3")).unwrap();
    assert!(again.replayed);
    assert_eq!(site.size(), before + 2);
    // The books in memory equal the books reloaded from the store, and everything verifies.
    let live = site.state().clone();
    site.reload().unwrap();
    assert_eq!(&live, site.state());
    site.checkpoint().unwrap();
    let report = verify(site.store(), &VerifyOptions::default());
    assert!(report.ok(), "{:?}", report.problems);
}

#[test]
fn proofs_verify_for_every_entry_and_between_checkpoints() {
    let (_dir, mut site) = demo();
    let n = site.size();
    for seq in [0, 1, n / 2, n - 1] {
        let p = site.prove(seq).unwrap();
        assert_eq!(p.tree_size, n);
    }
    let first = site.store().checkpoints().unwrap()[0].size;
    site.execute(issue("0417", "1001", "R-1045", "p1")).unwrap();
    site.checkpoint().unwrap();
    let c = site.prove_consistency(first, site.size()).unwrap();
    assert!(!c.proof.is_empty());
}

#[test]
fn the_writer_encodes_entries_in_order_whichever_way_they_come() {
    // Batches handed over with `submit` and commands run with `execute` meanwhile: the writer thread
    // encodes and hashes all of them in ledger order, and the tree edge only moves forward.
    let (dir, mut site) = demo();
    site.start_writer().unwrap();
    let before = site.size();
    let a = site.submit(vec![issue("0417", "1001", "R-1043", "w1")]);
    let b = site.submit(vec![issue("0417", "1002", "R-1044", "w2")]);
    assert!(site.execute(issue("0417", "1001", "R-1045", "w3")).is_ok());
    assert_eq!(site.size(), before + 3, "the direct command waited for the batches before it");
    let root = site.root();
    assert!(site.finish(a)[0].is_ok());
    assert!(site.finish(b)[0].is_ok());
    assert_eq!((site.size(), site.root()), (before + 3, root), "finishing older batches does not move the edge back");
    let c = site.submit(vec![issue("0417", "1002", "R-1046", "w4")]);
    assert_eq!(site.size(), before + 3, "the edge follows what is durable");
    assert!(site.finish(c)[0].is_ok());
    assert_eq!(site.size(), before + 4);
    let root = site.root();
    drop(site);
    let reopened = open_again(&dir);
    assert_eq!((reopened.size(), reopened.root()), (before + 4, root));
    // One checkpoint per burst: `a` was finished while `b` was with the writer, so `b`'s covers it.
    let sizes: Vec<u64> = reopened.store().checkpoints().unwrap().iter().map(|c| c.size).filter(|s| *s > before).collect();
    assert_eq!(sizes, vec![before + 3, before + 4]);
    assert_verifies(&reopened);
}

#[test]
fn after_a_failed_pipelined_commit_the_site_goes_on_writing() {
    // Another process appends first: the pipelined batch staged on the old books conflicts, fails
    // with nothing recorded, and the next batch is validated on the books re-read and committed.
    let (dir, mut site) = demo();
    site.start_writer().unwrap();
    let mut other = open_again(&dir);
    other.execute(issue("0417", "1001", "R-1043", "o1")).unwrap();
    let t = site.submit(vec![issue("0417", "1002", "R-1044", "f1")]);
    let r = site.finish(t);
    assert!(r[0].as_ref().is_err_and(|e| e.to_string().contains("another writer appended first")), "{r:?}");
    let t = site.submit(vec![issue("0417", "1002", "R-1044", "f2"), issue("0417", "1002", "R-1043", "f3")]);
    let r = site.finish(t);
    assert!(r[0].is_ok(), "{r:?}");
    assert!(r[1].as_ref().unwrap_err().to_string().contains("serial R-1043 is issued to badge 1001"), "{r:?}");
    assert!(site.execute(issue("0417", "1001", "R-1045", "f4")).is_ok());
    drop((site, other));
    let reopened = open_again(&dir);
    assert_verifies(&reopened);
    assert_eq!(reopened.store().find_idempotency_key("f1").unwrap(), None);
    assert!(reopened.store().find_idempotency_key("f2").unwrap().is_some());
}

#[test]
fn reloading_the_books_stops_the_writer_and_nothing_lands_on_a_stale_tree() {
    // Another process appends; this site re-reads its books while its writer runs (as after a
    // refused import): the writer's tree edge was the old one, so it must not encode what follows.
    let (dir, mut site) = demo();
    site.start_writer().unwrap();
    let mut other = open_again(&dir);
    other.execute(issue("0417", "1001", "R-1043", "s1")).unwrap();
    site.reload().unwrap();
    let t = site.submit(vec![issue("0417", "1002", "R-1044", "s2")]);
    assert!(site.finish(t)[0].is_ok());
    // Queued batches behind a failing one fail; the next one, validated on the books re-read, lands.
    site.start_writer().unwrap();
    other.execute(issue("0417", "1002", "R-1045", "s3")).unwrap();
    let t1 = site.submit(vec![issue("0417", "1001", "R-1046", "s4")]);
    let t2 = site.submit(vec![issue("0417", "1001", "R-1047", "s5")]);
    assert!(site.finish(t1)[0].is_err());
    assert!(site.finish(t2)[0].is_err());
    let t3 = site.submit(vec![issue("0417", "1001", "R-1046", "s6")]);
    // A ticket dropped unfinished does not stop later ones from being signed.
    let t4 = site.submit(vec![issue("0417", "1002", "R-1047", "s7")]);
    drop(t3);
    assert!(site.finish(t4)[0].is_ok());
    // Without a writer (it stopped at the failure) a batch submitted after a failed one is staged on
    // the books re-read, not on the failed batch.
    other.execute(issue("0417", "1002", "R-1048", "s8")).unwrap();
    let t5 = site.submit(vec![issue("0417", "1001", "R-1049", "s9")]);
    let t6 = site.submit(vec![issue("0417", "1001", "R-1050", "s10")]);
    assert!(site.finish(t5)[0].is_err());
    assert!(site.finish(t6)[0].is_ok());
    let size = site.size();
    let root = site.root();
    drop((site, other));
    let reopened = open_again(&dir);
    assert_eq!(reopened.size(), size);
    assert_eq!(reopened.root(), root);
    assert_eq!(reopened.store().checkpoints().unwrap().last().unwrap().size, size, "the latest batch is signed");
    for (key, landed) in [("s2", true), ("s4", false), ("s5", false), ("s6", true), ("s7", true), ("s9", false), ("s10", true)] {
        assert_eq!(reopened.store().find_idempotency_key(key).unwrap().is_some(), landed, "{key}");
    }
    assert_verifies(&reopened);
}

#[test]
fn pipelined_group_commit_acknowledges_after_durability_and_honours_retries_in_flight() {
    let (dir, mut site) = demo();
    site.start_writer().unwrap();
    let before = site.size();
    let first = site.submit(vec![issue("0417", "1001", "R-1043", "a1"), issue("0417", "1002", "R-1043", "a2")]);
    // The next batch is validated while the first is being committed: it sees the first's effects,
    // and a retry of a key still in flight gets the first result.
    let second = site.submit(vec![issue("0417", "1002", "R-1044", "b1"), issue("0417", "1001", "R-1043", "a1")]);
    let r1 = site.finish(first);
    assert!(r1[0].is_ok());
    assert!(r1[1].as_ref().unwrap_err().to_string().contains("serial R-1043 is issued to badge 1001"));
    let r2 = site.finish(second);
    assert!(r2[0].is_ok());
    assert!(r2[1].as_ref().unwrap().replayed);
    assert_eq!(site.size(), before + 2);
    // Durable and signed: a fresh process sees both, and everything verifies.
    drop(site);
    let reopened = open_again(&dir);
    assert_eq!(reopened.size(), before + 2);
    let cps = reopened.store().checkpoints().unwrap();
    assert_eq!(cps.last().unwrap().size, before + 2, "one checkpoint per batch, over durable entries");
    assert_verifies(&reopened);
}

#[test]
fn a_signed_ledger_that_issues_a_serial_twice_is_reported_by_verify() {
    let (dir, site) = demo();
    // A serial on a rack issued to one person, then again from the rack it already left, to another.
    let (serial, events) = double_issue(&site);
    drop(site);
    let first = forge(&dir, events);
    let report =
        verify(qm_backends::open_store(dir.path().join("demo.db").to_str().unwrap(), false).unwrap().as_ref(), &VerifyOptions::default());
    assert!(!report.ok(), "a ledger that issues serial {serial} twice verified");
    assert_eq!(report.first_bad_entry, Some(first + 1), "{:?}", report.problems);
    let said = report.problems.join("\n");
    assert!(said.contains("invariant.serial") && said.contains(&format!("serial {serial}")), "{said}");
}

#[test]
fn a_signed_ledger_that_takes_more_than_a_place_holds_is_reported_by_verify() {
    let (dir, site) = demo();
    // A lot at a place: take twice what is there, into a person's hands.
    let ((account, lot), held) = site
        .state()
        .balances
        .iter()
        .find(|((a, _), b)| matches!(a, Account::Location(_)) && b.quantity.is_positive())
        .map(|(k, b)| (k.clone(), b.quantity))
        .unwrap();
    let item_type = site.state().lots[&lot].item_type.clone();
    let person = site.state().people.keys().next().unwrap().clone();
    drop(site);
    let twice = held.checked_add(held).unwrap();
    let forged = forge(
        &dir,
        vec![(
            Badge::parse("0417").unwrap(),
            Event::Movement {
                kind: MovementKind::Issue,
                from: account.clone(),
                to: Account::Person(person),
                lines: vec![Line::Lot { lot: lot.clone(), item_type, quantity: twice }],
                document: None,
            },
        )],
    );
    let report =
        verify(qm_backends::open_store(dir.path().join("demo.db").to_str().unwrap(), false).unwrap().as_ref(), &VerifyOptions::default());
    assert!(!report.ok(), "a ledger that takes {twice} of lot {lot} from {account}, which holds {held}, verified");
    assert_eq!(report.first_bad_entry, Some(forged), "{:?}", report.problems);
    let said = report.problems.join("\n");
    assert!(said.contains("invariant.balance") && said.contains(&format!("lot {lot}")), "{said}");
}

#[test]
fn a_ledger_written_before_credentials_left_it_still_signs_in_and_verifies() {
    let (dir, site) = demo();
    drop(site);
    // Entries as the earlier format wrote them: the hash inside the event.
    let old_pin = qm_app::hash_secret("9876").unwrap();
    forge(
        &dir,
        vec![(
            Badge::parse("0001").unwrap(),
            Event::PersonRegistered {
                badge: Badge::parse("0777").unwrap(),
                name: "Old Timer".into(),
                unit: UnitId::parse("HQ").unwrap(),
                roles: vec![Role::Inspector],
                pin_hash: Some(old_pin),
            },
        )],
    );
    let mut site = open_again(&dir);
    assert_verifies(&site);
    let old = Badge::parse("0777").unwrap();
    site.authenticate(&old, "9876").unwrap();
    assert!(site.authenticate(&old, "1111").is_err());
    // A new PIN goes to the credentials table and supersedes the one the old entry carries.
    let new_pin = qm_app::hash_secret("5555").unwrap();
    site.execute(Request {
        token: None,
        actor: old.clone(),
        witness: None,
        command: Command::SetCredential { badge: old.clone(), kind: qm_core::event::CredentialKind::Pin, hash: new_pin },
        idempotency_key: "new-pin".into(),
        at: OffsetDateTime::now_utc(),
    })
    .unwrap();
    site.authenticate(&old, "5555").unwrap();
    assert!(site.authenticate(&old, "9876").is_err(), "the old PIN no longer works");
    let site = open_again(&dir);
    site.authenticate(&old, "5555").unwrap();
    assert_verifies(&site);
}

#[test]
fn an_entry_stamped_before_the_latest_is_refused_and_a_small_skew_is_recorded_at_the_latest_time() {
    let (_dir, mut site) = demo();
    let last = site.state().last_at.unwrap();
    let size = site.size();
    // A clock stepped back a minute: refused, nothing appended.
    let mut back = issue("0417", "1001", "R-1041", "clock-back");
    back.at = last - time::Duration::minutes(1);
    let e = site.execute(back).unwrap_err();
    assert!(matches!(&e, qm_app::AppError::Rejected(Rejection::Refused { rule: "time.forward", .. })), "{e}");
    assert!(e.to_string().contains("time only moves forward"), "{e}");
    assert_eq!(site.size(), size);
    // Two seconds behind (two processes whose stamps crossed): recorded at the latest entry's time.
    let mut skew = issue("0417", "1001", "R-1041", "clock-skew");
    skew.at = last - time::Duration::seconds(2);
    let o = site.execute(skew).unwrap();
    assert_eq!(o.entries[0].at, last);
    assert_verifies(&site);
}

/// The server's clock escalates an incident nobody acknowledged (one unit up per period) and records
/// a report not made by its deadline, as the site itself, each once however often it asks; the
/// auditor replays it.
#[test]
fn overdue_incidents_are_escalated_by_the_site_once_per_level_and_verify() {
    let (dir, mut site) = demo();
    let at = site.state().last_at.unwrap_or_else(OffsetDateTime::now_utc);
    let open = Command::OpenIncident {
        kind: IncidentKind::Theft,
        severity: Severity::Critical,
        unit: UnitId::parse("D-11").unwrap(),
        location: None,
        objects: qm_core::event::IncidentObjects { serials: vec![Serial::parse("R-1049").unwrap()], ..Default::default() },
        summary: "magazine door forced".into(),
        discovered_at: None,
    };
    site.execute(Request::new(Badge::parse("0417").unwrap(), open, "open-theft".into(), at)).unwrap();
    let id = site.state().incidents.iter().find(|(_, i)| i.summary == "magazine door forced").map(|(k, _)| k.clone()).unwrap();
    // Critical: one hour. Half an hour later nothing; at 1 h 1 min one level; asked again, nothing more.
    assert!(site.escalate_due(at + time::Duration::minutes(30)).unwrap().is_empty());
    let done = site.escalate_due(at + time::Duration::minutes(61)).unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].entries[0].actor.as_str(), "site");
    assert!(site.escalate_due(at + time::Duration::minutes(62)).unwrap().is_empty());
    assert_eq!(site.state().incidents[&id].responsible.as_str(), "NORTH");
    assert_eq!(site.escalate_due(at + time::Duration::minutes(121)).unwrap().len(), 1);
    assert_eq!(site.state().incidents[&id].responsible.as_str(), "HQ");
    // A rifle stolen: the 48-hour report to ATF not made is recorded as missed, once.
    assert!(site.state().incidents[&id].missed.is_empty());
    let done = site.escalate_due(at + time::Duration::hours(49)).unwrap();
    assert_eq!(done.len(), 1, "only the missed report: HQ has no unit above it");
    assert_eq!(site.state().incidents[&id].missed, ["us-firearms-theft-loss"]);
    // The missed report is an incident of its own, for the unit responsible now, in the same entry.
    let Some(Event::IncidentOpened { kind, unit, summary, .. }) = done[0].entries[0].opens.first() else {
        panic!("the missed deadline opened no incident: {:?}", done[0].entries)
    };
    assert_eq!((*kind, unit.as_str()), (IncidentKind::Other, "HQ"));
    assert!(summary.contains("us-firearms-theft-loss") && summary.contains(id.as_str()), "{summary}");
    assert!(site.escalate_due(at + time::Duration::hours(50)).unwrap().is_empty());
    site.checkpoint().unwrap();
    assert_verifies(&site);
    drop(site);
    assert_verifies(&open_again(&dir));
}

/// A rifle not returned within the rules' 24 hours is raised by the site's clock as an overdue
/// return, once for that holding, and again for a new one; the auditor replays it.
#[test]
fn an_item_held_past_its_return_time_opens_an_incident_once_per_holding() {
    let (dir, mut site) = demo();
    let now = OffsetDateTime::now_utc();
    site.execute(issue("0417", "1001", "R-1041", "out-1")).unwrap();
    let mine = |site: &Site| -> Vec<(IncidentId, Severity, Vec<Serial>)> {
        site.state()
            .incidents
            .iter()
            .filter(|(_, i)| i.kind == IncidentKind::OverdueReturn && i.objects.badges.iter().any(|b| b.as_str() == "1001"))
            .map(|(k, i)| (k.clone(), i.severity, i.objects.serials.clone()))
            .collect()
    };
    site.escalate_due(now + time::Duration::hours(23)).unwrap();
    assert!(mine(&site).is_empty(), "within its 24 hours");
    let done = site.escalate_due(now + time::Duration::hours(25)).unwrap();
    assert!(done.iter().all(|o| o.entries[0].actor.as_str() == "site"));
    let raised = mine(&site);
    assert_eq!(raised.len(), 1, "{raised:?}");
    assert_eq!((raised[0].1, raised[0].2.iter().map(|s| s.as_str()).collect::<Vec<_>>()), (Severity::High, vec!["R-1041"]));
    let summary = &site.state().incidents[&raised[0].0].summary;
    assert!(
        summary.starts_with("badge 1001 has held an item past 24 h without returning it") && summary.contains("serial R-1041"),
        "{summary}"
    );
    // Asked again: nothing more about the same holding.
    site.escalate_due(now + time::Duration::hours(26)).unwrap();
    assert_eq!(mine(&site).len(), 1);
    site.checkpoint().unwrap();
    assert_verifies(&site);
    drop(site);
    assert_verifies(&open_again(&dir));
}

/// A receipt the storage-safety rules refuse appends no movement, but the attempt opens a
/// safety-refusal incident about the magazine, the lot and the person who tried.
#[test]
fn a_put_away_the_safety_rules_refuse_opens_an_incident_about_the_attempt() {
    let (_dir, mut site) = demo();
    let state = site.state();
    // A magazine of the demo, and an item type whose division its licence does not cover.
    let (mag, m) = state.locations.iter().find(|(_, l)| l.kind == LocationKind::Magazine && l.magazine.is_some()).unwrap();
    let licensed = &m.magazine.as_ref().unwrap().hazard_divisions;
    let keeper = m.keeper.clone().unwrap();
    let unit = m.unit.clone();
    let mag = mag.clone();
    assert!(!licensed.iter().any(|d| d == "1.3"), "{licensed:?}");
    let code = "1.3C";
    let define = Command::DefineItemType {
        item_type: ItemTypeId::parse("ODD").unwrap(),
        name: "odd charge".into(),
        kind: ItemKind::Explosive,
        tracking: Tracking::Lot,
        unit_of_measure: "each".into(),
        neq_kg_per_unit: 0.5,
        un_code: Some(code.into()),
        qualification: None,
    };
    site.execute(Request::new(Badge::parse("0001").unwrap(), define, "define-odd".into(), OffsetDateTime::now_utc())).unwrap();
    let before = site.size();
    let receive = Command::Receive {
        to: mag.clone(),
        from: "Explosives Co".into(),
        document: "DN-9".into(),
        lines: vec![ReceiptLine {
            item_type: ItemTypeId::parse("ODD").unwrap(),
            serial: None,
            lot: Some(LotNo::parse("ODD-1").unwrap()),
            quantity: qm_core::quantity::Quantity::units(2),
            manufactured: None,
            expires: None,
        }],
    };
    let mut req = Request::new(keeper.clone(), receive, "put-odd".into(), OffsetDateTime::now_utc());
    req.witness = Some(Badge::parse("0501").unwrap());
    let r = site.execute(req);
    assert!(matches!(&r, Err(qm_app::AppError::Rejected(x)) if x.code().starts_with("safety.")), "{r:?}");
    assert_eq!(site.size(), before + 1, "one entry: the incident, no movement");
    let (_, i) = site.state().incidents.iter().find(|(_, i)| i.kind == IncidentKind::SafetyRefusal).unwrap();
    assert_eq!((i.unit.clone(), i.location.clone(), i.severity), (unit, Some(mag.clone()), Severity::Medium));
    assert_eq!(i.discovered_by, keeper);
    assert!(i.objects.lots.iter().any(|l| l.as_str() == "ODD-1") && i.objects.badges.contains(&keeper), "{i:?}");
    assert_verifies(&site);
}

/// No entry is larger than a C2SP tlog-tiles bundle carries (65,535 bytes): a receipt of 3,000
/// rifles with serials of 60 characters is recorded as several movement entries committed
/// together, the books hold every rifle once, and the ledger verifies after opening again.
#[test]
fn a_receipt_too_large_for_one_entry_becomes_several_that_each_fit() {
    let (dir, mut site) = demo();
    let before = site.size();
    let rack = LocationId::parse("D11-RACK-A").unwrap();
    let serials: Vec<Serial> = (0..3_000).map(|i| Serial::parse(&format!("R-{i:0>58}")).unwrap()).collect();
    let lines = serials
        .iter()
        .map(|s| ReceiptLine {
            item_type: ItemTypeId::parse("RIFLE-G36").unwrap(),
            serial: Some(s.clone()),
            lot: None,
            quantity: qm_core::quantity::Quantity::units(1),
            manufactured: None,
            expires: None,
        })
        .collect();
    let receive = Command::Receive { to: rack.clone(), from: "National Arms Depot".into(), document: "DN-BIG".into(), lines };
    let req = Request::new(Badge::parse("0417").unwrap(), receive, "big-receipt".into(), OffsetDateTime::now_utc());
    let o = site.execute(req.clone()).unwrap();
    let movements: Vec<usize> = o
        .entries
        .iter()
        .filter_map(|e| match &e.event {
            Event::Movement { lines, .. } => Some(lines.len()),
            _ => None,
        })
        .collect();
    assert!(movements.len() >= 3, "one movement per part: {movements:?}");
    assert_eq!(movements.iter().sum::<usize>(), 3_000);
    let stored = site.store().read_entries(before, (site.size() - before) as usize).unwrap();
    assert_eq!(stored.len() as u64, site.size() - before);
    let largest = stored.iter().map(|e| e.bytes.len()).max().unwrap();
    assert!(largest <= qm_core::decide::fit::ENTRY_BYTES_MAX, "an entry of {largest} bytes");
    assert!(largest > 40_000, "the parts are filled, not cut small: the largest is {largest} bytes");
    // The same request again is the same outcome, every part replayed, nothing appended.
    let size = site.size();
    let again = site.execute(req).unwrap();
    assert!(again.replayed);
    assert_eq!((again.first_seq, again.last_seq, site.size()), (o.first_seq, o.last_seq, size));
    drop(site);
    let site = open_again(&dir);
    let at_rack =
        serials.iter().filter(|s| site.state().serials.get(*s).is_some_and(|x| x.account == Account::Location(rack.clone()))).count();
    assert_eq!(at_rack, 3_000);
    assert_verifies(&site);
}
