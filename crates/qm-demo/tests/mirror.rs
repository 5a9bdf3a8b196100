//! Many sites at the level of the app service (docs/sites.md): a parent's mirror of a child's
//! ledger, and headquarters' read model spanning its children.

use qm_app::{Request, Site};
use qm_core::*;
use time::OffsetDateTime;

mod common;
use common::*;

/// A parent and a child site, as headquarters and a department: the parent's witness and mirror
/// keys, the children file naming the child, the child's first checkpoint cosigned.
fn parent_and_child(
) -> (tempfile::TempDir, Site, tempfile::TempDir, Site, qm_app::sites::Children, qm_app::sites::SiteKey, qm_app::sites::SiteKey) {
    let (hq_dir, mut hq) = demo();
    let (d_dir, mut dept) = demo();
    // More than one package of 256 entries: 200 units more.
    let admin = Badge::parse("0001").unwrap();
    let units = (0..200).map(|i| {
        let c = Command::CreateUnit {
            unit: UnitId::parse(&format!("U-{i}")).unwrap(),
            name: format!("Unit {i}"),
            parent: UnitId::parse("HQ").unwrap(),
        };
        Request::new(admin.clone(), c, format!("unit-{i}"), OffsetDateTime::now_utc())
    });
    for r in dept.execute_batch(units.collect()) {
        r.unwrap();
    }
    let vkey = dept.state().site.as_ref().unwrap().verifier_key.clone();
    let file = hq_dir.path().join("children.toml");
    std::fs::write(&file, format!("[children.\"{}\"]\nkey = \"{vkey}\"\nunit = \"D-11\"\n", dept.site_name())).unwrap();
    let children = qm_app::sites::Children::read(&file).unwrap();
    let wkey = qm_app::sites::witness_key(&hq_dir.path().join("hq.witness.key"), "hq.example").unwrap();
    let mkey = qm_app::mirror::mirror_key(&hq_dir.path().join("hq.mirror.key"), "hq.example").unwrap();
    let req = dept.add_checkpoint_request(0).unwrap();
    let answer = hq.add_checkpoint(&children, &wkey, &req.body(), OffsetDateTime::now_utc()).unwrap();
    assert!(matches!(answer, qm_app::sites::WitnessAnswer::Cosigned(_)), "{answer:?}");
    (hq_dir, hq, d_dir, dept, children, wkey, mkey)
}

/// The child's entries from `from` up to its size uploaded until the mirror cosigns them.
fn mirror_from(hq: &mut Site, dept: &Site, children: &qm_app::sites::Children, mkey: &qm_app::sites::SiteKey, mut from: u64) {
    use qm_app::mirror::MirrorAnswer;
    let size = dept.size();
    loop {
        let up = dept.add_entries_request(from, size).unwrap().to_bytes().unwrap();
        match hq.add_entries(children, mkey, &up, OffsetDateTime::now_utc()).unwrap() {
            MirrorAnswer::Partial(i) => from = i.next_entry,
            MirrorAnswer::Cosigned(_) => return,
            other => panic!("{other:?}"),
        }
    }
}

/// C2SP tlog-mirror between two sites: the child uploads its entries in packages, a package at a
/// time (202 and the next entry) and then the rest; the parent holds them all, replayed by the
/// auditor, and cosigns with its mirror key; an entry changed on the way, an interval that does not
/// fit, an unknown log are refused; the next upload goes on from where the mirror stands.
#[test]
fn a_parent_mirrors_a_childs_ledger_verified_package_by_package() {
    use qm_app::mirror::MirrorAnswer;
    let (_hq_dir, mut hq, _d_dir, mut dept, children, wkey, mkey) = parent_and_child();
    let size = dept.size();
    assert!(size > 256, "the demo ledger spans more than one package: {size}");
    let now = OffsetDateTime::now_utc();
    // The first package alone: stored, and the mirror asks for the rest.
    let mut first = dept.add_entries_request(0, size).unwrap();
    first.packages.truncate(1);
    match hq.add_entries(&children, &mkey, &first.to_bytes().unwrap(), now).unwrap() {
        MirrorAnswer::Partial(info) => assert_eq!((info.pending_size, info.next_entry), (size, 256)),
        other => panic!("{other:?}"),
    }
    // A later package with an entry changed on the way: refused, nothing of it kept.
    let mut rest = dept.add_entries_request(256, size).unwrap();
    let mut changed = rest.clone();
    changed.packages[0].entries[1][10] ^= 1;
    match hq.add_entries(&children, &mkey, &changed.to_bytes().unwrap(), now).unwrap() {
        MirrorAnswer::Refused(422, why) => assert!(why.contains("do not hash into the checkpoint"), "{why}"),
        other => panic!("{other:?}"),
    }
    // Starting past the mirror's next entry, or ending elsewhere than the pending checkpoint: 409.
    let past = dept.add_entries_request(512.min(size - 1), size).unwrap();
    assert!(
        matches!(hq.add_entries(&children, &mkey, &past.to_bytes().unwrap(), now).unwrap(), MirrorAnswer::Conflict(i) if i.next_entry == 256)
    );
    let short = dept.add_entries_request(256, size - 1).unwrap();
    assert!(
        matches!(hq.add_entries(&children, &mkey, &short.to_bytes().unwrap(), now).unwrap(), MirrorAnswer::Conflict(i) if i.pending_size == size)
    );
    let mut stranger = rest.clone();
    stranger.origin = "elsewhere.example".into();
    assert!(matches!(hq.add_entries(&children, &mkey, &stranger.to_bytes().unwrap(), now).unwrap(), MirrorAnswer::Refused(404, _)));
    // The rest: every entry held and replayed, the checkpoint cosigned by the mirror key.
    let line = match hq.add_entries(&children, &mkey, &rest.to_bytes().unwrap(), now).unwrap() {
        MirrorAnswer::Cosigned(line) => line,
        other => panic!("{other:?}"),
    };
    let mirror_vkey = qm_app::sites::cosigner_verifier_key(&mkey);
    let note = dept.add_checkpoint_request(size).unwrap().note;
    let c = dept.keep_cosignature(&note, &line, &mirror_vkey, now).unwrap();
    assert_eq!((c.size, c.witness.as_str()), (size, "hq.example/mirror"));
    assert_eq!(dept.mirrored_size("hq.example/mirror").unwrap(), size);
    let held = hq.mirrored().unwrap();
    assert_eq!((held.len(), held[0].size), (1, size));
    // The same upload again is answered with the same cosignature.
    rest.upload_start = size;
    rest.packages.clear();
    assert!(matches!(hq.add_entries(&children, &mkey, &rest.to_bytes().unwrap(), now).unwrap(), MirrorAnswer::Cosigned(l) if l == line));
    // The child writes on; witnessed, then mirrored from where the mirror stands.
    dept.execute(issue("0417", "1001", "R-1044", "after-mirror")).unwrap();
    dept.checkpoint().unwrap();
    let req = dept.add_checkpoint_request(size).unwrap();
    assert!(matches!(hq.add_checkpoint(&children, &wkey, &req.body(), now).unwrap(), qm_app::sites::WitnessAnswer::Cosigned(_)));
    let grown = dept.size();
    let more = dept.add_entries_request(size, grown).unwrap();
    assert!(matches!(hq.add_entries(&children, &mkey, &more.to_bytes().unwrap(), now).unwrap(), MirrorAnswer::Cosigned(_)));
    assert_eq!(hq.mirrored().unwrap()[0].size, grown);
}

/// A child whose own signed ledger breaks the books (a serial issued twice, written around the
/// rules and signed with the site key) is not mirrored: the auditor's replay finds it, and the
/// parent raises a critical incident once.
#[test]
fn a_childs_signed_ledger_that_does_not_replay_is_refused_by_the_mirror() {
    use qm_app::mirror::MirrorAnswer;
    let (_hq_dir, mut hq, d_dir, dept, children, wkey, mkey) = parent_and_child();
    let size = dept.size();
    let origin = dept.site_name();
    let (serial, events) = double_issue(&dept);
    drop(dept);
    forge(&d_dir, events);
    // The forged ledger no longer opens as a site: its requests are made from its store.
    let store = qm_backends::open_store(d_dir.path().join("demo.db").to_str().unwrap(), false).unwrap();
    let end = store.entry_count().unwrap();
    let note = store.checkpoints().unwrap().pop().unwrap().note;
    let proof = qm_ledger::prove_consistency(size, end, &qm_store::StoreHashes(store.as_ref())).unwrap();
    let req = qm_ledger::witness::AddCheckpoint { old: size, proof, note };
    let now = OffsetDateTime::now_utc();
    assert!(matches!(hq.add_checkpoint(&children, &wkey, &req.body(), now).unwrap(), qm_app::sites::WitnessAnswer::Cosigned(_)));
    let mut from = 0;
    let why = loop {
        let up = qm_app::mirror::upload_request(store.as_ref(), &origin, from, end).unwrap();
        match hq.add_entries(&children, &mkey, &up.to_bytes().unwrap(), now).unwrap() {
            MirrorAnswer::Partial(i) => from = i.next_entry,
            MirrorAnswer::Refused(422, why) => break why,
            other => panic!("{other:?}"),
        }
    };
    assert!(why.contains("does not replay") && why.contains(&format!("serial {serial}")), "{why}");
    assert!(hq.mirrored().unwrap().is_empty(), "nothing cosigned");
    // Asked again: the same refusal, and still one incident.
    let up = qm_app::mirror::upload_request(store.as_ref(), &origin, end, end).unwrap();
    assert!(matches!(hq.add_entries(&children, &mkey, &up.to_bytes().unwrap(), now).unwrap(), MirrorAnswer::Refused(422, _)));
    let forks: Vec<_> = hq.state().incidents.values().filter(|i| i.kind == IncidentKind::LedgerFork).collect();
    assert_eq!(forks.len(), 1, "{forks:?}");
    assert_eq!(forks[0].severity, Severity::Critical);
    assert!(forks[0].summary.contains("does not replay"), "{}", forks[0].summary);
}

/// A child's history rewritten past the first package (entry 300 changed, the tree rebuilt and
/// signed with the site key): the witness refuses its checkpoint; its entries, sent against that
/// checkpoint (its root as the ticket), are compared with the mirror package by package, and the
/// mirror names entry 300, once, in a critical incident; the mirror itself is unchanged.
#[test]
fn the_mirror_names_the_entry_a_child_rewrote() {
    use qm_app::mirror::{upload_request, MirrorAnswer};
    let (_hq_dir, mut hq, d_dir, dept, children, wkey, mkey) = parent_and_child();
    let now = OffsetDateTime::now_utc();
    let size = dept.size();
    mirror_from(&mut hq, &dept, &children, &mkey, 0);
    drop(dept);
    // The administrator's rewrite: entry 300's bytes, every tree hash, a checkpoint signed anew.
    let db = d_dir.path().join("demo.db");
    let c = rusqlite::Connection::open(&db).unwrap();
    c.execute_batch("DROP TRIGGER entries_no_update;").unwrap();
    let bytes: Vec<u8> = c.query_row("SELECT bytes FROM entries WHERE seq = 300", [], |r| r.get(0)).unwrap();
    let text = String::from_utf8(bytes).unwrap().replacen("Unit ", "Unit-", 1);
    c.execute("UPDATE entries SET bytes = ?1 WHERE seq = 300", [text.into_bytes()]).unwrap();
    let mut tree = qm_ledger::Frontier::new();
    let all: Vec<(i64, Vec<u8>)> = c
        .prepare("SELECT seq, bytes FROM entries ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (s, b) in &all {
        let hashes = tree.push(qm_ledger::leaf_hash(b));
        c.execute("UPDATE entries SET hashes = ?1 WHERE seq = ?2", rusqlite::params![qm_store::hashes_to_blob(&hashes), s]).unwrap();
    }
    let key = qm_ledger::SiteKey::read(&d_dir.path().join("demo.key")).unwrap();
    let note = qm_ledger::sign_checkpoint(&key, &qm_ledger::Checkpoint { origin: key.name().into(), size: tree.size(), root: tree.root() })
        .unwrap();
    drop(c);
    let req = qm_ledger::witness::AddCheckpoint { old: size, proof: vec![], note: note.clone() };
    match hq.add_checkpoint(&children, &wkey, &req.body(), now).unwrap() {
        qm_app::sites::WitnessAnswer::Refused(r) => assert_eq!(r.status(), 422, "{r}"),
        other => panic!("{other:?}"),
    }
    let store = qm_backends::open_store(db.to_str().unwrap(), false).unwrap();
    let origin = key.name().to_string();
    let mut from = 0;
    let why = loop {
        let mut up = upload_request(store.as_ref(), &origin, from, size).unwrap();
        up.packages.truncate(1);
        up.ticket = tree.root().to_vec();
        match hq.add_entries(&children, &mkey, &up.to_bytes().unwrap(), now).unwrap() {
            MirrorAnswer::Partial(i) => from = i.next_entry,
            MirrorAnswer::Refused(422, why) => break why,
            other => panic!("{other:?}"),
        }
    };
    assert_eq!(from, 256, "the first package is the same as the mirror's");
    assert!(why.contains(&format!("entry 300 of site {origin} was rewritten")), "{why}");
    // Another root in the ticket is no evidence kept here.
    let mut up = upload_request(store.as_ref(), &origin, 0, size).unwrap();
    up.ticket = vec![7; 32];
    assert!(
        matches!(hq.add_entries(&children, &mkey, &up.to_bytes().unwrap(), now).unwrap(), MirrorAnswer::Refused(422, w) if w.contains("no checkpoint"))
    );
    let named: Vec<_> = hq.state().incidents.values().filter(|i| i.summary.contains("entry 300")).collect();
    assert_eq!((named.len(), named[0].severity), (1, Severity::Critical), "{named:?}");
    assert_eq!(hq.mirrored().unwrap()[0].size, size, "the mirror is unchanged");
}

/// Headquarters' read model spans its children: once the mirror cosigns, the span shows the
/// child's books in brief and its stock per item type, the same as the child's own books; the child
/// issues a rifle, and the next upload brings the span forward; a site not witnessed here is not
/// found; headquarters opened again (a restart) reads the same, replayed from its mirror.
#[test]
fn headquarters_sees_each_childs_books_from_its_mirror() {
    use qm_app::span::{child_books, span};
    let (hq_dir, mut hq, _d_dir, mut dept, children, wkey, mkey) = parent_and_child();
    let now = OffsetDateTime::now_utc();
    let origin = dept.site_name();
    assert!(span(&mut hq, &children, now).unwrap().sites.is_empty(), "nothing mirrored yet: nothing spanned");
    mirror_from(&mut hq, &dept, &children, &mkey, 0);
    let issued = |s: &Site| s.state().serials.values().filter(|x| matches!(x.account, Account::Person(_))).count();
    let first = span(&mut hq, &children, now).unwrap();
    let row = &first.sites[0];
    assert_eq!((first.sites.len(), row.origin.as_str(), row.unit.as_str()), (1, origin.as_str(), "D-11"));
    assert_eq!((row.mirrored, row.units, row.issued), (dept.size(), dept.state().units.len(), issued(&dept)));
    let rifles: usize =
        qm_app::query::stock(dept.state(), &Default::default()).iter().filter(|l| l.item_type == "RIFLE-G36").map(|l| l.serials).sum();
    let t = first.totals.iter().find(|t| t.item_type == "RIFLE-G36").expect("rifles in the totals");
    assert!(rifles > 0);
    assert_eq!((t.total.clone(), t.per_site[&origin].clone()), (rifles.to_string(), rifles.to_string()));
    // The child issues a rifle; witnessed and mirrored, headquarters sees it.
    let held = dept.size();
    dept.execute(issue("0417", "1001", "R-1044", "span-issue")).unwrap();
    dept.checkpoint().unwrap();
    let req = dept.add_checkpoint_request(held).unwrap();
    assert!(matches!(hq.add_checkpoint(&children, &wkey, &req.body(), now).unwrap(), qm_app::sites::WitnessAnswer::Cosigned(_)));
    assert_eq!(span(&mut hq, &children, now).unwrap().sites[0].issued, issued(&dept) - 1, "not before the mirror holds it");
    mirror_from(&mut hq, &dept, &children, &mkey, held);
    let second = span(&mut hq, &children, now).unwrap();
    assert_eq!((second.sites[0].issued, second.sites[0].mirrored), (issued(&dept), dept.size()));
    // One site's books in full: its stock is the child's own, line for line.
    let books = child_books(&mut hq, &children, &origin, now).unwrap();
    assert_eq!(books.stock, qm_app::query::stock(dept.state(), &Default::default()));
    assert_eq!(books.incidents.len(), books.row.incidents_open);
    let e = child_books(&mut hq, &children, "elsewhere.example", now).unwrap_err().to_string();
    assert!(e.contains("not found: child site elsewhere.example"), "{e}");
    // A restart: the same, replayed from the mirror.
    drop(hq);
    let mut hq = open_again(&hq_dir);
    let again = span(&mut hq, &children, now).unwrap();
    assert_eq!((again.sites[0].issued, again.totals.len()), (issued(&dept), second.totals.len()));
}

/// A region relays its department's ledger to headquarters exactly as the department sent it: the
/// department's own signed checkpoint with a consistency proof from what headquarters holds, then
/// the entries in packages proved against it from the region's mirror; headquarters witnesses and
/// mirrors it with the department's key alone, across several packages and a second round that
/// starts inside a package, and reads the department's books from it.
#[test]
fn a_region_relays_its_departments_ledger_to_headquarters() {
    use qm_app::mirror::MirrorAnswer;
    use qm_app::sites::WitnessAnswer;
    let (_r_dir, mut region, _d_dir, mut dept, children, wkey, mkey) = parent_and_child();
    mirror_from(&mut region, &dept, &children, &mkey, 0);
    let (hq_dir, mut hq) = demo();
    let hq_wkey = qm_app::sites::witness_key(&hq_dir.path().join("hq.witness.key"), "hq.example").unwrap();
    let hq_mkey = qm_app::mirror::mirror_key(&hq_dir.path().join("hq.mirror.key"), "hq.example").unwrap();
    let origin = dept.site_name();
    let relay = |hq: &mut Site, region: &Site, held: u64, size: u64| {
        let now = OffsetDateTime::now_utc();
        let req = region.relay_checkpoint_request(&origin, held).unwrap().expect("something to relay");
        assert_eq!((req.old, req.note.lines().nth(1)), (held, Some(size.to_string().as_str())));
        assert!(matches!(hq.add_checkpoint(&children, &hq_wkey, &req.body(), now).unwrap(), WitnessAnswer::Cosigned(_)));
        let mut from = held;
        loop {
            let up = region.relay_entries_request(&origin, from, size).unwrap();
            match hq.add_entries(&children, &hq_mkey, &up.to_bytes().unwrap(), now).unwrap() {
                MirrorAnswer::Partial(i) => from = i.next_entry,
                MirrorAnswer::Cosigned(_) => break,
                other => panic!("{other:?}"),
            }
        }
        assert!(region.relay_checkpoint_request(&origin, size).unwrap().is_none(), "nothing more to relay");
    };
    let first = dept.size();
    relay(&mut hq, &region, 0, first);
    assert_eq!(hq.mirrored().unwrap()[0].size, first);
    // The department writes on (more than a package), syncs with its region, which relays again.
    let admin = Badge::parse("0001").unwrap();
    let more = (0..300).map(|i| {
        let c = Command::CreateUnit {
            unit: UnitId::parse(&format!("V-{i}")).unwrap(),
            name: format!("More {i}"),
            parent: UnitId::parse("HQ").unwrap(),
        };
        Request::new(admin.clone(), c, format!("more-{i}"), OffsetDateTime::now_utc())
    });
    for r in dept.execute_batch(more.collect()) {
        r.unwrap();
    }
    dept.checkpoint().unwrap();
    let req = dept.add_checkpoint_request(first).unwrap();
    let now = OffsetDateTime::now_utc();
    assert!(matches!(region.add_checkpoint(&children, &wkey, &req.body(), now).unwrap(), qm_app::sites::WitnessAnswer::Cosigned(_)));
    mirror_from(&mut region, &dept, &children, &mkey, first);
    relay(&mut hq, &region, first, dept.size());
    let books = qm_app::span::child_books(&mut hq, &children, &origin, now).unwrap();
    assert_eq!((books.row.mirrored, books.row.units), (dept.size(), dept.state().units.len()));
    assert_eq!(books.stock, qm_app::query::stock(dept.state(), &Default::default()));
}
