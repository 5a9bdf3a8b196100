//! Helpers shared by the app-level test files: the demo site, a request, a forged ledger.
#![allow(dead_code)]

use qm_app::verify::{verify, VerifyOptions};
use qm_app::{decode, encode, Request, Site};
use qm_core::*;
use time::OffsetDateTime;

/// A new demo site in a temporary directory.
pub fn demo() -> (tempfile::TempDir, Site) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db");
    let day = qm_demo::demo::last_day(OffsetDateTime::now_utc());
    let (site, _) = qm_demo::demo::create(db.to_str().unwrap(), &dir.path().join("demo.key"), day).unwrap();
    (dir, site)
}

/// The demo site of `dir` opened again, as another process would.
pub fn open_again(dir: &tempfile::TempDir) -> Site {
    Site::open(qm_backends::open_store, dir.path().join("demo.db").to_str().unwrap(), Some(&dir.path().join("demo.key"))).unwrap()
}

pub fn assert_verifies(site: &Site) {
    let report = verify(site.store(), &VerifyOptions::default());
    assert!(report.ok(), "{:?}", report.problems);
}

pub fn issue(actor: &str, to: &str, serial: &str, key: &str) -> Request {
    Request {
        token: None,
        actor: Badge::parse(actor).unwrap(),
        witness: None,
        command: Command::Issue { to: Badge::parse(to).unwrap(), from: None, items: vec![ItemRef::Serial(Serial::parse(serial).unwrap())] },
        idempotency_key: key.into(),
        at: OffsetDateTime::now_utc(),
    }
}

/// Appends hand-made envelopes after the ledger's end, as someone holding the database and the site
/// key could, bypassing the rules: the entries are hashed into the tree and a checkpoint over them
/// is signed with the site key, so every cryptographic check passes.
pub fn forge(dir: &tempfile::TempDir, events: Vec<(Badge, Event)>) -> u64 {
    let db = dir.path().join("demo.db");
    let mut store = qm_backends::open_store(db.to_str().unwrap(), false).unwrap();
    let size = store.entry_count().unwrap();
    let last = decode(&store.read_entries(size - 1, 1).unwrap()[0].bytes).unwrap();
    let mut frontier = qm_ledger::Frontier::load(size, &qm_store::StoreHashes(store.as_ref())).unwrap();
    let mut commit = qm_store::Commit::default();
    for (i, (actor, event)) in events.into_iter().enumerate() {
        let env = Envelope {
            site: last.site.clone(),
            seq: size + i as u64,
            at: last.at,
            actor,
            witness: None,
            token: None,
            idempotency_key: format!("forged-{i}"),
            request: None,
            corrects: None,
            event,
            opens: vec![],
        };
        let bytes = encode(&env).unwrap();
        let hashes = frontier.push(qm_ledger::leaf_hash(&bytes));
        commit.entries.push(qm_store::StoredEntry { seq: env.seq, idempotency_key: env.idempotency_key.clone(), bytes, hashes });
    }
    store.commit(&commit).unwrap();
    let key = qm_ledger::SiteKey::read(&dir.path().join("demo.key")).unwrap();
    let cp = qm_ledger::Checkpoint { origin: last.site.clone(), size: frontier.size(), root: frontier.root() };
    let note = qm_ledger::sign_checkpoint(&key, &cp).unwrap();
    store.add_checkpoint(&qm_store::StoredCheckpoint { size: cp.size, note }).unwrap();
    size
}

/// The events of a serial on a rack issued twice, to two people, written around the rules (for
/// `forge`): the serial, and the two movements (the second from the rack it already left).
pub fn double_issue(site: &Site) -> (Serial, Vec<(Badge, Event)>) {
    let (serial, item) =
        site.state().serials.iter().find(|(_, s)| matches!(s.account, Account::Location(_))).map(|(k, v)| (k.clone(), v.clone())).unwrap();
    let people: Vec<Badge> = site.state().people.keys().take(2).cloned().collect();
    let issue_to = |who: &Badge| {
        let line = Line::Serial { serial: serial.clone(), item_type: item.item_type.clone() };
        let to = Account::Person(who.clone());
        (
            Badge::parse("0417").unwrap(),
            Event::Movement { kind: MovementKind::Issue, from: item.account.clone(), to, lines: vec![line], document: None },
        )
    };
    let events = vec![issue_to(&people[0]), issue_to(&people[1])];
    (serial, events)
}
