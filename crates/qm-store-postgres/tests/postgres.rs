//! PostgreSQL store tests against a real server (QM_TEST_POSTGRES_URL; `scripts/test-all` starts one):
//! create/open refusals, foreign and newer schemas, append-only triggers, conflicts, streaming, readings.

use qm_store::{Commit, EntrySource, RowChange, Store, StoreError, StoredCheckpoint, StoredEntry, StoredReading};
use qm_store_postgres::scratch::{ScratchDatabase, HOW_TO_RUN, TEST_URL_VAR};
use qm_store_postgres::PostgresStore;

fn scratch() -> ScratchDatabase {
    let url = std::env::var(TEST_URL_VAR).unwrap_or_else(|_| panic!("{HOW_TO_RUN}"));
    ScratchDatabase::create(&url).unwrap()
}

/// Entry `seq` of a ledger whose entries are `{"seq":N}`, with its real tree hashes: the store
/// derives the lower ones from the entries, so made-up hashes would not read back.
fn entry(seq: u64, idem: &str) -> StoredEntry {
    static TREE: std::sync::OnceLock<Vec<Vec<qm_store::Hash>>> = std::sync::OnceLock::new();
    let tree = TREE.get_or_init(|| {
        let mut f = qm_ledger::Frontier::new();
        (0..6000).map(|s| f.push(qm_ledger::leaf_hash(format!("{{\"seq\":{s}}}").as_bytes()))).collect()
    });
    StoredEntry { seq, idempotency_key: idem.into(), bytes: format!("{{\"seq\":{seq}}}").into_bytes(), hashes: tree[seq as usize].clone() }
}

/// The hashes a scan passes for entry `seq`: those above its tile.
fn stored_hashes(seq: u64) -> Vec<u8> {
    entry(seq, "").hashes.iter().skip(qm_store_postgres::tiles::DERIVED_LEVELS).flatten().copied().collect()
}

#[test]
fn create_refuses_an_existing_schema_and_open_a_missing_one() {
    let db = scratch();
    assert!(matches!(PostgresStore::open(db.url()), Err(StoreError::Missing(_))));
    let s = PostgresStore::create(db.url()).unwrap();
    assert_eq!(s.entry_count().unwrap(), 0);
    drop(s);
    let e = PostgresStore::create(db.url()).err().unwrap();
    assert!(matches!(e, StoreError::Exists(_)), "{e}");
    let s = PostgresStore::open(db.url()).unwrap();
    assert_eq!(s.backend(), "postgres");
}

#[test]
fn someone_elses_tables_and_a_newer_schema_are_clear_errors() {
    let db = scratch();
    let mut admin = postgres::Client::connect(db.url(), postgres::NoTls).unwrap();
    admin.batch_execute("CREATE TABLE invoices (id int)").unwrap();
    for r in [PostgresStore::open(db.url()).err().unwrap(), PostgresStore::create(db.url()).err().unwrap()] {
        assert!(matches!(&r, StoreError::NotOurs { .. }), "{r}");
        assert!(r.to_string().contains("invoices"), "{r}");
    }
    admin.batch_execute("DROP TABLE invoices; CREATE TABLE qm_schema (version int)").unwrap();
    let r = PostgresStore::open(db.url()).err().unwrap();
    assert!(matches!(&r, StoreError::NotOurs { .. }), "{r}");
    admin.batch_execute("DROP TABLE qm_schema").unwrap();

    drop(PostgresStore::create(db.url()).unwrap());
    admin.batch_execute("INSERT INTO qm_schema (version, name, application) VALUES (99, '0099_future.sql', 'quartermaster')").unwrap();
    match PostgresStore::open(db.url()) {
        Err(StoreError::TooNew { found: 99, supported, .. }) => assert_eq!(supported, qm_store_postgres::MIGRATIONS.len() as i64),
        other => panic!("expected TooNew, got {:?}", other.err()),
    }
}

/// Makes the scratch database what an older build made: our schema at `version`.
fn schema_at(admin: &mut postgres::Client, version: usize) {
    admin
        .batch_execute(
            "DROP SCHEMA public CASCADE; CREATE SCHEMA public;
             CREATE TABLE qm_schema (version integer PRIMARY KEY, name text NOT NULL, application text NOT NULL,
                                     applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .unwrap();
    for (i, (name, sql)) in qm_store_postgres::MIGRATIONS[..version].iter().enumerate() {
        admin.batch_execute(sql).unwrap();
        admin
            .execute("INSERT INTO qm_schema (version, name, application) VALUES ($1, $2, 'quartermaster')", &[&(i as i32 + 1), name])
            .unwrap();
    }
}

#[test]
fn an_old_schema_is_migrated_forward_on_open() {
    let db = scratch();
    drop(PostgresStore::create(db.url()).unwrap());
    let mut admin = postgres::Client::connect(db.url(), postgres::NoTls).unwrap();
    schema_at(&mut admin, 1);
    let s = PostgresStore::open(db.url()).unwrap();
    let v: i32 = admin.query_one("SELECT max(version) FROM qm_schema", &[]).unwrap().get(0);
    assert_eq!(v as usize, qm_store_postgres::MIGRATIONS.len());
    assert!(s.readings("X", 0, i64::MAX, 10).unwrap().is_empty());
    assert_eq!(s.entry_count().unwrap(), 0);
}

#[test]
fn a_ledger_of_one_row_per_entry_moves_into_tiles_and_goes_on_growing() {
    let db = scratch();
    drop(PostgresStore::create(db.url()).unwrap());
    let mut admin = postgres::Client::connect(db.url(), postgres::NoTls).unwrap();
    // Version 2 kept one row per entry; 600 of them fill two tiles and start a third.
    schema_at(&mut admin, 2);
    let old: Vec<StoredEntry> = (0..600u64).map(|i| entry(i, &format!("k{}", i / 4))).collect();
    for e in &old {
        let hashes: Vec<u8> = e.hashes.concat();
        admin
            .execute(
                "INSERT INTO entries (seq, idem, bytes, hashes) VALUES ($1, $2, $3, $4)",
                &[&(e.seq as i64), &e.idempotency_key, &e.bytes, &hashes],
            )
            .unwrap();
    }
    let mut s = PostgresStore::open(db.url()).unwrap();
    let tiles = |admin: &mut postgres::Client| -> (Vec<(i64, i32)>, i64) {
        let full = admin
            .query("SELECT tile, get_byte(data, 0) FROM tiles ORDER BY tile", &[])
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        (full, admin.query_one("SELECT count(*) FROM open_entries", &[]).unwrap().get(0))
    };
    // Two full tiles (uncompressed, as SQL wrote them); the third tile's 88 entries stay open.
    assert_eq!(tiles(&mut admin), (vec![(0, 0), (1, 0)], 88));
    assert_eq!(s.entry_count().unwrap(), 600);
    assert_eq!(s.read_entries(0, 1000).unwrap(), old);
    assert_eq!(s.read_entries(250, 10).unwrap(), old[250..260]);
    assert_eq!(s.find_idempotency_key("k10").unwrap(), Some((40, 43)));
    // Entry 511 completes a node above its tile: that hash moved with it; the others are derived.
    let read = s.read_entry_hashes(&[599, 0, 256, 511]).unwrap();
    assert_eq!(read, [599, 0, 256, 511].map(|i: usize| old[i].hashes.clone()).to_vec());
    // The open tile takes more entries; the commit that completes it seals it (compressed) and the
    // next entries start a fourth, open.
    let more: Vec<StoredEntry> = (600..800u64).map(|i| entry(i, "more")).collect();
    s.commit(&Commit { entries: more[..100].to_vec(), ..Commit::default() }).unwrap();
    assert_eq!(tiles(&mut admin), (vec![(0, 0), (1, 0)], 188));
    s.commit(&Commit { entries: more[100..].to_vec(), ..Commit::default() }).unwrap();
    assert_eq!(tiles(&mut admin), (vec![(0, 0), (1, 0), (2, 1)], 32));
    let all = [old, more].concat();
    assert_eq!(s.read_entries(0, 1000).unwrap(), all);
    let mut scanned = 0;
    s.scan_range(255, 769, &mut |seq, idem, bytes, _| {
        assert_eq!((idem, bytes), (all[seq as usize].idempotency_key.as_str(), all[seq as usize].bytes.as_slice()));
        assert_eq!(seq, 255 + scanned);
        scanned += 1;
        true
    })
    .unwrap();
    assert_eq!(scanned, 769 - 255);
}

#[test]
fn history_cannot_be_edited_in_the_database() {
    let db = scratch();
    let mut s = PostgresStore::create(db.url()).unwrap();
    let reading = StoredReading { location: "M1".into(), at_ms: 5, temperature_c: Some(20.5), humidity_pct: None, digest_seq: 0 };
    // A full tile (sealed) and one entry of the next (open): every table holding entries has rows.
    let entries: Vec<StoredEntry> = (0..257).map(|i| entry(i, "k0")).collect();
    s.commit(&Commit { entries: entries.clone(), rows: vec![], readings: vec![reading], ..Default::default() }).unwrap();
    let mut c = postgres::Client::connect(db.url(), postgres::NoTls).unwrap();
    for sql in [
        "UPDATE entry_keys SET idem = 'x'",
        "DELETE FROM entry_keys",
        "TRUNCATE entry_keys",
        "UPDATE tiles SET data = 'x'",
        "DELETE FROM tiles",
        "TRUNCATE tiles",
        "UPDATE open_entries SET bytes = 'x'",
        "DELETE FROM open_entries",
        "TRUNCATE open_entries",
        "UPDATE readings SET temperature_c = 99",
        "DELETE FROM readings",
        "TRUNCATE readings",
        // PostgreSQL has no INSERT OR REPLACE; its upsert runs the update triggers.
        "INSERT INTO entry_keys (seq, idem) VALUES (0, 'x') ON CONFLICT (seq) DO UPDATE SET idem = excluded.idem",
        "INSERT INTO tiles (tile, data) VALUES (0, 'x') ON CONFLICT (tile) DO UPDATE SET data = excluded.data",
        "INSERT INTO open_entries (seq, idem, bytes, hashes) VALUES (256, 'x', 'x', 'x') ON CONFLICT (seq) DO UPDATE SET bytes = excluded.bytes",
    ] {
        let e = c.batch_execute(sql).err().unwrap_or_else(|| panic!("{sql} was allowed"));
        let msg = qm_store_postgres::describe(&e);
        assert!(msg.contains("never"), "{sql}: {msg}");
    }
    assert_eq!(s.read_entries(0, 300).unwrap(), entries);
    assert_eq!(s.readings_of_digest(0).unwrap().len(), 1);
}

#[test]
fn a_commit_is_all_or_nothing_and_a_taken_seq_is_a_conflict() {
    let db = scratch();
    let mut s = PostgresStore::create(db.url()).unwrap();
    let row = |k: &str, v: Option<&str>| RowChange { kind: "serial".into(), key: k.into(), value: v.map(String::from) };
    s.commit(&Commit {
        entries: vec![entry(0, "a"), entry(1, "a")],
        rows: vec![row("R-1", Some("{}"))],
        readings: vec![],
        ..Default::default()
    })
    .unwrap();
    let bad =
        Commit { entries: vec![entry(2, "b"), entry(1, "b")], rows: vec![row("R-2", Some("{}"))], readings: vec![], ..Default::default() };
    match s.commit(&bad) {
        Err(StoreError::Conflict { seq: 1 }) => {}
        other => panic!("expected Conflict at 1, got {other:?}"),
    }
    // Twice the same seq within one batch is a conflict too.
    assert!(matches!(
        s.commit(&Commit { entries: vec![entry(2, "c"), entry(2, "c")], ..Commit::default() }),
        Err(StoreError::Conflict { seq: 2 })
    ));
    assert_eq!(s.entry_count().unwrap(), 2);
    let mut rows = vec![];
    s.for_each_row(&mut |k, key, v| {
        rows.push(format!("{k}/{key}={v}"));
        Ok(())
    })
    .unwrap();
    assert_eq!(rows, vec!["serial/R-1={}"]);
    // Upsert then delete of one key in one commit ends deleted; delete then upsert ends present.
    s.commit(&Commit {
        entries: vec![entry(2, "d")],
        rows: vec![row("R-1", Some("[1]")), row("R-1", None), row("R-3", None), row("R-3", Some("3"))],
        readings: vec![],
        door_events: vec![],
        credentials: vec![],
    })
    .unwrap();
    let mut rows = vec![];
    s.for_each_row(&mut |k, key, v| {
        rows.push(format!("{k}/{key}={v}"));
        Ok(())
    })
    .unwrap();
    assert_eq!(rows, vec!["serial/R-3=3"]);
    assert_eq!(s.find_idempotency_key("a").unwrap(), Some((0, 1)));
    assert_eq!(s.find_idempotency_key("b").unwrap(), None);
    let used = s.used_idempotency_keys(&["a", "b", "d"]).unwrap();
    assert_eq!(used, ["a".to_string(), "d".to_string()].into_iter().collect());
    assert!(s.used_idempotency_keys(&[]).unwrap().is_empty());
}

#[test]
fn door_events_are_kept_in_order_idempotent_by_id_and_never_changed() {
    use qm_store::{DoorQuery, StoredDoorEvent};
    let db = scratch();
    let mut s = PostgresStore::create(db.url()).unwrap();
    let ev = |id: &str, at_ms: i64, location: Option<&str>, badge: Option<&str>| StoredDoorEvent {
        source: "acs".into(),
        event_id: id.into(),
        at_ms,
        door: "D-1".into(),
        card: Some("C1".into()),
        kind: "entry".into(),
        location: location.map(String::from),
        badge: badge.map(String::from),
        proof: None,
        digest_seq: 0,
    };
    let batch = vec![ev("e2", 20, Some("ARM"), Some("0417")), ev("e1", 10, Some("ARM"), None), ev("e3", 30, None, None)];
    s.commit(&Commit { entries: vec![entry(0, "a")], door_events: batch.clone(), ..Commit::default() }).unwrap();
    assert_eq!(s.door_events_of_digest(0).unwrap(), batch, "in the order written");
    let q = |location: Option<&str>| DoorQuery { location: location.map(String::from), from_ms: 0, to_ms: 100, limit: 10 };
    let ids = |v: Vec<StoredDoorEvent>| v.into_iter().map(|e| e.event_id).collect::<Vec<_>>();
    assert_eq!(ids(s.door_events(&q(Some("ARM"))).unwrap()), ["e2", "e1"], "newest first");
    assert_eq!(ids(s.door_events(&q(None)).unwrap()), ["e3"], "doors mapped to no place");
    let known = s.door_event_ids("acs", &["e1", "e9"]).unwrap();
    assert_eq!(known, ["e1".to_string()].into_iter().collect());
    assert!(s.door_event_ids("other", &["e1"]).unwrap().is_empty());
    // The same id from the same source twice is refused, and nothing lands.
    let again = s.commit(&Commit { entries: vec![entry(1, "b")], door_events: vec![ev("e1", 40, None, None)], ..Commit::default() });
    assert!(again.is_err());
    assert_eq!(s.entry_count().unwrap(), 1);
    let mut c = postgres::Client::connect(db.url(), postgres::NoTls).unwrap();
    let e = c.execute("UPDATE door_events SET badge = '9999'", &[]).unwrap_err();
    assert!(format!("{e:?}").contains("door events are never updated"), "{e:?}");
    let e = c.execute("DELETE FROM door_events", &[]).unwrap_err();
    assert!(format!("{e:?}").contains("door events are never deleted"), "{e:?}");
}

#[test]
fn scanning_streams_in_order_and_stops_when_asked() {
    let db = scratch();
    let mut s = PostgresStore::create(db.url()).unwrap();
    // More than one fetch of the portal.
    let n = 5000u64;
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        s.commit(&Commit { entries: chunk.iter().map(|i| entry(*i, &format!("k{i}"))).collect(), ..Commit::default() }).unwrap();
    }
    assert_eq!(s.entry_count().unwrap(), n);
    let mut seen = vec![];
    s.scan_entries(10, &mut |seq, idem, bytes, hashes| {
        assert_eq!(idem, format!("k{seq}"));
        assert_eq!(bytes, format!("{{\"seq\":{seq}}}").as_bytes());
        assert_eq!(hashes, stored_hashes(seq));
        seen.push(seq);
        true
    })
    .unwrap();
    assert_eq!(seen, (10..n).collect::<Vec<_>>());
    let mut count = 0;
    s.scan_entries(0, &mut |_, _, _, _| {
        count += 1;
        count < 3000
    })
    .unwrap();
    assert_eq!(count, 3000);
    // The connection is usable after a stopped scan.
    assert_eq!(s.read_entries(4998, 10).unwrap().len(), 2);
    let hashes = |seq| entry(seq, "").hashes;
    assert_eq!(s.read_entry_hashes(&[7, 3, 7, 4095]).unwrap(), vec![hashes(7), hashes(3), hashes(7), hashes(4095)]);
    assert_eq!(stored_hashes(4095).len(), 4 * 32, "entry 4095 completes levels 9 to 12, above its tile");
    assert!(matches!(s.read_entry_hashes(&[n]), Err(StoreError::Damaged(_))));
}

#[test]
fn checkpoints_and_readings_round_trip() {
    let db = scratch();
    let mut s = PostgresStore::create(db.url()).unwrap();
    s.add_checkpoint(&StoredCheckpoint { size: 3, note: "three".into() }).unwrap();
    s.add_checkpoint(&StoredCheckpoint { size: 1, note: "one".into() }).unwrap();
    s.add_checkpoint(&StoredCheckpoint { size: 3, note: "again".into() }).unwrap();
    let cps: Vec<(u64, String)> = s.checkpoints().unwrap().into_iter().map(|c| (c.size, c.note)).collect();
    assert_eq!(cps, vec![(1, "one".into()), (3, "three".into())]);
    let r = |loc: &str, at: i64, t: Option<f64>, d: u64| StoredReading {
        location: loc.into(),
        at_ms: at,
        temperature_c: t,
        humidity_pct: Some(40.25),
        digest_seq: d,
    };
    // Written out of time order: readings_of_digest keeps the written order, readings() sorts by time.
    let batch = vec![r("M1", 30, Some(21.5), 0), r("M1", 10, None, 0), r("M2", 20, Some(-3.0), 0), r("M1", 20, Some(1e-3), 0)];
    s.commit(&Commit { entries: vec![entry(0, "r")], rows: vec![], readings: batch.clone(), ..Default::default() }).unwrap();
    assert_eq!(s.readings_of_digest(0).unwrap(), batch);
    let m1: Vec<i64> = s.readings("M1", 0, 100, 10).unwrap().iter().map(|x| x.at_ms).collect();
    assert_eq!(m1, vec![10, 20, 30]);
    assert_eq!(s.readings("M1", 11, 30, 1).unwrap(), vec![r("M1", 20, Some(1e-3), 0)]);
}

#[test]
fn a_tile_completed_by_another_writer_holds_every_entry() {
    let db = scratch();
    let mut a = PostgresStore::create(db.url()).unwrap();
    let mut b = PostgresStore::open(db.url()).unwrap();
    let batch = |r: std::ops::Range<u64>| Commit { entries: r.map(|i| entry(i, "k")).collect(), ..Commit::default() };
    // A remembers the open tile as it left it (entries 0–9); B appends 10–19 behind its back; A's
    // next commit completes the tile and must take B's entries from the table, not its memory.
    a.commit(&batch(0..10)).unwrap();
    b.commit(&batch(10..20)).unwrap();
    assert!(matches!(a.commit(&batch(10..30)), Err(StoreError::Conflict { seq: 10 })));
    a.commit(&batch(20..300)).unwrap();
    // And B, whose memory ends at 20, completes the next tile after A's 300.
    b.commit(&batch(300..600)).unwrap();
    let all: Vec<StoredEntry> = (0..600).map(|i| entry(i, "k")).collect();
    for s in [&a, &b] {
        assert_eq!(s.read_entries(0, 1000).unwrap(), all);
    }
    let mut admin = postgres::Client::connect(db.url(), postgres::NoTls).unwrap();
    let open: i64 = admin.query_one("SELECT count(*) FROM open_entries", &[]).unwrap().get(0);
    let tiles: i64 = admin.query_one("SELECT count(*) FROM tiles", &[]).unwrap().get(0);
    assert_eq!((tiles, open), (2, 600 - 512));
}

#[test]
fn a_witness_advances_only_from_the_size_it_holds_and_keeps_evidence_for_good() {
    use qm_store::{Cosignature, ForkEvidence, Witnessed};
    let db = scratch();
    let mut s = PostgresStore::create(db.url()).unwrap();
    let w = |size: u64| Witnessed {
        origin: "d11.example".into(),
        size,
        root: [size as u8; 32],
        note: format!("d11.example\n{size}\n…\n"),
        cosignature: "— hq/witness abc\n".into(),
        at_ms: size as i64,
    };
    assert_eq!(s.witnessed("d11.example").unwrap(), None);
    assert!(!s.witness_advance(3, &w(5)).unwrap(), "nothing held: only from 0");
    assert!(s.witness_advance(0, &w(5)).unwrap());
    assert!(!s.witness_advance(0, &w(7)).unwrap(), "5 is held now");
    assert!(s.witness_advance(5, &w(7)).unwrap());
    assert_eq!(s.witnessed("d11.example").unwrap(), Some(w(7)));
    assert_eq!(s.witnessed_all().unwrap(), vec![w(7)]);
    let e = ForkEvidence { origin: "d11.example".into(), held_note: "a".into(), offered_note: "b".into(), reason: "r".into(), at_ms: 9 };
    s.add_fork_evidence(&e).unwrap();
    assert_eq!(s.fork_evidence().unwrap(), vec![e]);
    let mut c = postgres::Client::connect(db.url(), postgres::NoTls).unwrap();
    let err = c.execute("DELETE FROM fork_evidence", &[]).unwrap_err();
    assert!(format!("{err:?}").contains("evidence is never deleted"), "{err:?}");
    let err = c.execute("UPDATE fork_evidence SET reason = 'none'", &[]).unwrap_err();
    assert!(format!("{err:?}").contains("evidence is never updated"), "{err:?}");
    let cs = Cosignature { size: 7, witness: "hq/witness".into(), line: "— hq/witness abc\n".into(), at_ms: 1 };
    s.add_cosignature(&cs).unwrap();
    s.add_cosignature(&cs).unwrap();
    assert_eq!(s.cosignatures().unwrap(), vec![cs], "kept once");
}

#[test]
fn a_mirror_holds_a_childs_entries_without_gaps_for_good_and_never_goes_back() {
    use qm_store::Mirrored;
    let db = scratch();
    let mut s = PostgresStore::create(db.url()).unwrap();
    let entry = |i: u64| (format!("{{\"entry\":{i}}}").into_bytes(), qm_ledger::leaf_hash(format!("{{\"entry\":{i}}}").as_bytes()));
    assert_eq!(s.mirror_next("d11.example").unwrap(), 0);
    s.mirror_add("d11.example", 0, &(0..300).map(entry).collect::<Vec<_>>()).unwrap();
    // Sent again in part, overlapping: the entries held are kept, the new ones added.
    s.mirror_add("d11.example", 250, &(250..400).map(entry).collect::<Vec<_>>()).unwrap();
    assert_eq!(s.mirror_next("d11.example").unwrap(), 400);
    assert!(s.mirror_add("d11.example", 401, &[entry(401)]).is_err(), "a gap is refused");
    assert_eq!(s.mirror_leaves("d11.example", 298, 302).unwrap(), (298..302).map(|i| entry(i).1).collect::<Vec<_>>());
    assert_eq!(s.mirror_entries("d11.example", 398, 10).unwrap(), vec![entry(398).0, entry(399).0]);
    assert_eq!(s.mirror_next("d12.example").unwrap(), 0, "per origin");
    let m = |size: u64| Mirrored {
        origin: "d11.example".into(),
        size,
        note: format!("n{size}"),
        cosignature: "— hq/mirror x\n".into(),
        at_ms: 1,
    };
    assert!(s.mirror_advance(&m(300)).unwrap());
    assert!(!s.mirror_advance(&m(200)).unwrap(), "a mirror checkpoint never goes back");
    assert!(s.mirror_advance(&m(400)).unwrap());
    assert_eq!(s.mirrored("d11.example").unwrap(), Some(m(400)));
    assert_eq!(s.mirrored_all().unwrap(), vec![m(400)]);
    let mut c = postgres::Client::connect(db.url(), postgres::NoTls).unwrap();
    let err = c.execute("DELETE FROM mirror_entries WHERE seq = 3", &[]).unwrap_err();
    assert!(format!("{err:?}").contains("mirrored entries are never deleted"), "{err:?}");
    let err = c.execute("UPDATE mirror_entries SET bytes = 'x' WHERE seq = 3", &[]).unwrap_err();
    assert!(format!("{err:?}").contains("mirrored entries are never updated"), "{err:?}");
}
