//! The auditor and the backup on a whole demo site: verify's chunked tree check names what was
//! altered wherever it lies, and a backup refuses a source whose stored hashes disagree with its
//! bytes. (Here rather than in qm-app: the demo site lives in qm-demo.)

use qm_app::backup::backup;
use qm_app::verify::{verify, verify_in_chunks, VerifyOptions, CHUNK_LEVEL};

fn demo() -> (tempfile::TempDir, String, qm_app::Site) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("demo.db").to_str().unwrap().to_string();
    let day = qm_demo::demo::last_day(time::OffsetDateTime::now_utc());
    let (site, _) = qm_demo::demo::create(&db, &dir.path().join("demo.key"), day).unwrap();
    (dir, db, site)
}

fn alter_hashes(db: &str, seq: u64, byte: usize) {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut hashes: Vec<u8> = conn.query_row("SELECT hashes FROM entries WHERE seq = ?1", [seq as i64], |r| r.get(0)).unwrap();
    hashes[byte] ^= 1;
    // Someone with write access to the file, past the triggers that refuse edits.
    conn.execute_batch("DROP TRIGGER IF EXISTS entries_no_update").unwrap();
    conn.execute("UPDATE entries SET hashes = ?1 WHERE seq = ?2", rusqlite::params![hashes, seq as i64]).unwrap();
}

#[test]
fn chunks_of_any_size_give_the_same_verdict_and_root() {
    let (_dir, _db, site) = demo();
    let store = site.store();
    assert!(store.checkpoints().unwrap().len() > 1, "the demo signs several checkpoints");
    let whole = verify(store, &VerifyOptions::default());
    assert!(whole.ok(), "{:?}", whole.problems);
    for level in [0u8, 1, 2, 3, 5] {
        let r = verify_in_chunks(store, &VerifyOptions::default(), level);
        assert!(r.ok(), "chunks of 2^{level}: {:?}", r.problems);
        assert_eq!((r.root.as_str(), r.entries, r.checkpoints), (whole.root.as_str(), whole.entries, whole.checkpoints));
    }
}

#[test]
fn a_hash_above_a_chunk_or_inside_one_that_was_altered_is_named() {
    let (_dir, db, site) = demo();
    // With chunks of 8, entry 15 closes chunk 1 and its append also created the level-4 node
    // over entries 0..16: its fifth stored hash lies above the chunk and is checked at the merge.
    alter_hashes(&db, 15, 4 * 32 + 3);
    alter_hashes(&db, 42, 0);
    for level in [3u8, CHUNK_LEVEL] {
        let r = verify_in_chunks(site.store(), &VerifyOptions { verifier_key: None, skip_replay: true, ..Default::default() }, level);
        assert_eq!(r.first_bad_entry, Some(15), "chunks of 2^{level}: {:?}", r.problems);
        assert!(r.problems.iter().any(|p| p.starts_with("entry 15: its bytes do not hash")), "{:?}", r.problems);
        assert!(r.problems.iter().any(|p| p.starts_with("entry 42: its bytes do not hash")), "{:?}", r.problems);
    }
}

#[test]
fn one_absurd_sequence_number_is_reported_without_walking_up_to_it() {
    let (_dir, db, site) = demo();
    let n = site.size();
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(&format!("DROP TRIGGER entries_no_update; UPDATE entries SET seq = 1000000000000000 WHERE seq = {}", n - 1))
        .unwrap();
    for level in [2u8, CHUNK_LEVEL] {
        let r = verify_in_chunks(site.store(), &VerifyOptions::default(), level);
        assert_eq!((r.entries, r.first_bad_entry), (n - 1, Some(n - 1)), "chunks of 2^{level}: {:?}", r.problems);
        let expected = format!("entry {} is missing", n - 1);
        assert!(r.problems.iter().any(|p| p.contains(&expected)), "{:?}", r.problems);
    }
}

#[test]
fn a_missing_entry_in_a_middle_chunk_stops_the_tree_there() {
    let (_dir, db, site) = demo();
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("DROP TRIGGER entries_no_delete; DELETE FROM entries WHERE seq = 21").unwrap();
    for level in [2u8, CHUNK_LEVEL] {
        let r = verify_in_chunks(site.store(), &VerifyOptions::default(), level);
        assert_eq!(r.entries, 21, "chunks of 2^{level}");
        assert_eq!(r.first_bad_entry, Some(21));
        assert!(r.problems.iter().any(|p| p.contains("entry 21 is missing (next stored entry is 22)")), "{:?}", r.problems);
    }
}

#[test]
fn a_backup_refuses_a_source_whose_stored_hashes_disagree_with_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("site.db").to_str().unwrap().to_string();
    let day = qm_demo::demo::last_day(time::OffsetDateTime::now_utc());
    drop(qm_demo::demo::create(&db, &dir.path().join("site.key"), day).unwrap());
    let good = dir.path().join("good.qmbackup").to_str().unwrap().to_string();
    assert!(backup(qm_backends::open_store, &db, &good, false, &mut |_, _| {}).unwrap().verified);
    // A stored hash flipped (past the trigger), as a disk error might: the copy would hash
    // clean, so the backup must say so instead of hiding it.
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("DROP TRIGGER entries_no_update; UPDATE entries SET hashes = zeroblob(length(hashes)) WHERE seq = 7").unwrap();
    drop(conn);
    let bad = dir.path().join("bad.qmbackup").to_str().unwrap().to_string();
    let e = backup(qm_backends::open_store, &db, &bad, false, &mut |_, _| {}).unwrap_err().to_string();
    assert!(e.contains("entry 7: its bytes do not hash to the tree hashes stored with it"), "{e}");
}

/// After a one-byte change in an entry, verify named 8 unaltered entries after it (every one whose
/// stored tree hash covers the altered one): it names the altered entry, and no other.
#[test]
fn a_one_byte_change_names_the_altered_entry_and_no_neighbour() {
    let (_dir, db, site) = demo();
    let n = site.size();
    let seq = n / 2 + 3;
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        let mut bytes: Vec<u8> = conn.query_row("SELECT bytes FROM entries WHERE seq = ?1", [seq as i64], |r| r.get(0)).unwrap();
        // The last digit of the entry's own sequence number's neighbour: the site name's last letter.
        let at = bytes.windows(6).position(|w| w == b"\"site\"").unwrap() + 9;
        bytes[at] ^= 0x01;
        conn.execute_batch("DROP TRIGGER IF EXISTS entries_no_update").unwrap();
        conn.execute("UPDATE entries SET bytes = ?1 WHERE seq = ?2", rusqlite::params![bytes, seq as i64]).unwrap();
    }
    for level in [3u8, CHUNK_LEVEL] {
        let r = verify_in_chunks(site.store(), &VerifyOptions::default(), level);
        assert!(!r.ok());
        assert_eq!(r.first_bad_entry, Some(seq), "chunks of 2^{level}: {:?}", r.problems);
        let named: Vec<&String> = r.problems.iter().filter(|p| p.starts_with("entry ") || p.starts_with("entries ")).collect();
        assert!(!named.is_empty(), "{:?}", r.problems);
        for p in named {
            assert!(p.starts_with(&format!("entry {seq}:")), "chunks of 2^{level}: a neighbour is named: {p}\nall: {:?}", r.problems);
        }
    }
}
