//! Backend conformance: one story (init, setup, movements, refusals, retries, readings, checkpoints,
//! proofs, reopen, verify) and the store contract, run against SQLite and PostgreSQL alike.
//!
//! SQLite uses a temporary file. PostgreSQL uses a fresh database created for the run on the server
//! named by QM_TEST_POSTGRES_URL and dropped afterwards; without that variable the PostgreSQL tests
//! fail with instructions (`scripts/test-all` starts a throwaway cluster), they never skip.

use qm_app::verify::{verify, VerifyOptions};
use qm_app::{AppError, Request, Site};
use qm_backends::open_store;
use qm_core::conditions::Reading;
use qm_core::*;
use qm_store::{Commit, RowChange, StoreError, StoredEntry};
use qm_store_postgres::scratch::{ScratchDatabase, HOW_TO_RUN, TEST_URL_VAR};
use std::path::PathBuf;
use time::{Duration, OffsetDateTime};

/// Where one run keeps its site: a database location and a key path, and what to clean up afterwards.
struct Place {
    db: String,
    key: PathBuf,
    backend: &'static str,
    _dir: tempfile::TempDir,
    _scratch: Option<ScratchDatabase>,
}

impl Place {
    fn sqlite() -> Place {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("site.db").to_str().unwrap().to_string();
        Place { db, key: dir.path().join("site.key"), backend: "sqlite", _dir: dir, _scratch: None }
    }

    fn postgres() -> Place {
        let url = match std::env::var(TEST_URL_VAR) {
            Ok(u) if !u.trim().is_empty() => u,
            _ => panic!("{HOW_TO_RUN}"),
        };
        let scratch = ScratchDatabase::create(&url).unwrap_or_else(|e| panic!("{e}"));
        let dir = tempfile::tempdir().unwrap();
        Place { db: scratch.url().to_string(), key: dir.path().join("site.key"), backend: "postgres", _dir: dir, _scratch: Some(scratch) }
    }

    /// Runs SQL on the database behind the store's back, as an intruder with database access would.
    fn raw_sql(&self, sql: &str) -> Result<(), String> {
        if self.backend == "postgres" {
            let mut c = postgres::Client::connect(&self.db, postgres::NoTls).map_err(|e| e.to_string())?;
            c.batch_execute(sql).map_err(|e| qm_store_postgres::describe(&e))
        } else {
            let c = rusqlite::Connection::open(&self.db).map_err(|e| e.to_string())?;
            c.execute_batch(sql).map_err(|e| e.to_string())
        }
    }
}

fn badge(s: &str) -> Badge {
    Badge::parse(s).unwrap()
}

fn loc(s: &str) -> LocationId {
    LocationId::parse(s).unwrap()
}

fn serial(s: &str) -> ItemRef {
    ItemRef::Serial(Serial::parse(s).unwrap())
}

fn req(actor: &str, command: Command, key: &str, at: OffsetDateTime) -> Request {
    Request { token: None, actor: badge(actor), witness: None, command, idempotency_key: key.into(), at }
}

fn account_of(site: &Site, s: &str) -> Account {
    site.state().serials.get(&Serial::parse(s).unwrap()).unwrap().account.clone()
}

/// The story. Returns a summary that must not depend on the backend.
fn story(place: &Place) -> Vec<String> {
    let mut summary = vec![];
    let day = qm_demo::demo::last_day(OffsetDateTime::now_utc());

    // Init and setup, then a day of receipts, issues, returns, expenditure, a transfer and a blind count.
    let (mut site, count) = qm_demo::demo::create(&place.db, &place.key, day).unwrap();
    assert_eq!(site.store().backend(), place.backend);
    assert!(site.has_key());
    assert_eq!(account_of(&site, "R-1051"), Account::Location(loc("D12-ARM")), "the transfer was received");
    assert_eq!(account_of(&site, "R-1041"), Account::Location(loc("D11-RACK-A")), "the rifle was returned");
    assert!(site.state().counts.contains_key(&count), "the count is in the books");
    summary.push(format!("after the demo day: {} entries", site.size()));

    // An issue, then the same request again (a retry after a lost answer): the first result, nothing appended.
    let evening = day + Duration::hours(20);
    let issue = req("0417", Command::Issue { to: badge("1001"), from: None, items: vec![serial("R-1043")] }, "c-issue-1", evening);
    let first = site.execute(issue.clone()).unwrap();
    assert!(!first.replayed);
    assert_eq!(account_of(&site, "R-1043"), Account::Person(badge("1001")));
    let size = site.size();
    assert_eq!(site.store().entry_count().unwrap(), size);
    let again = site.execute(issue).unwrap();
    assert!(again.replayed);
    assert_eq!((again.first_seq, again.last_seq), (first.first_seq, first.last_seq));
    assert_eq!(site.size(), size);
    assert_eq!(site.store().find_idempotency_key("c-issue-1").unwrap(), Some((first.first_seq, first.last_seq)));

    // Refused commands append nothing: the rifle is already out; Officer Jones's qualification lapsed.
    let refused =
        site.execute(req("0417", Command::Issue { to: badge("1002"), from: None, items: vec![serial("R-1043")] }, "c-issue-2", evening));
    assert!(matches!(refused, Err(AppError::Rejected(Rejection::Refused { .. }))), "{refused:?}");
    let refused =
        site.execute(req("0417", Command::Issue { to: badge("1003"), from: None, items: vec![serial("R-1044")] }, "c-issue-3", evening));
    assert!(matches!(refused, Err(AppError::Rejected(Rejection::Refused { .. }))), "{refused:?}");
    assert_eq!(site.size(), size);
    assert_eq!(site.store().entry_count().unwrap(), size);
    assert_eq!(site.store().find_idempotency_key("c-issue-2").unwrap(), None);

    // A batch with a refusal in the middle; the others commit together.
    let results = site.execute_batch(vec![
        req("0610", Command::return_to(badge("1001"), loc("D11-RACK-A"), vec![serial("R-1043")]), "c-ret-1", evening),
        req("0610", Command::return_to(badge("1002"), loc("D11-RACK-A"), vec![serial("R-1043")]), "c-ret-2", evening),
        req("0417", Command::Issue { to: badge("1002"), from: None, items: vec![serial("R-1045")] }, "c-issue-4", evening),
    ]);
    assert!(results[0].is_ok() && results[1].is_err() && results[2].is_ok(), "{results:?}");
    assert_eq!(account_of(&site, "R-1043"), Account::Location(loc("D11-RACK-A")));

    // A transfer through the pipelined writer (a second connection to the same database).
    site.start_writer().unwrap();
    let t1 = site.submit(vec![req(
        "0611",
        Command::Dispatch {
            from: loc("D11-RACK-A"),
            to_unit: UnitId::parse("D-12").unwrap(),
            items: vec![serial("R-1046")],
            document: Some("TR-C-1".into()),
        },
        "c-dispatch",
        evening,
    )]);
    let t2 =
        site.submit(vec![req("0610", Command::return_to(badge("1002"), loc("D11-RACK-A"), vec![serial("R-1045")]), "c-ret-3", evening)]);
    for r in site.finish(t1).into_iter().chain(site.finish(t2)) {
        r.unwrap();
    }
    let transfer = site.state().transfers.keys().max_by_key(|t| t.to_string()).cloned().unwrap();
    site.execute(req(
        "0710",
        Command::ReceiveTransfer { transfer, to: loc("D12-ARM"), received: vec![serial("R-1046")] },
        "c-receive",
        evening,
    ))
    .unwrap();
    assert_eq!(account_of(&site, "R-1046"), Account::Location(loc("D12-ARM")));

    // Storage-condition readings: stored outside the ledger, covered by a digest entry; a retry stores nothing twice.
    let readings: Vec<Reading> = (0..6)
        .map(|i| Reading { at: evening + Duration::minutes(10 * i), temperature_c: Some(18.0 + i as f64 * 0.25), humidity_pct: Some(45.5) })
        .collect();
    let rec =
        site.record_readings(&badge("0420"), &loc("D11-MAG-1"), readings.clone(), "c-readings-1", evening + Duration::hours(1)).unwrap();
    let stored = site.store().readings_of_digest(rec.first_seq).unwrap();
    assert_eq!(stored.len(), 6);
    assert_eq!(stored[2].temperature_c, Some(18.5));
    let again = site.record_readings(&badge("0420"), &loc("D11-MAG-1"), readings, "c-readings-1", evening + Duration::hours(1)).unwrap();
    assert!(again.replayed);
    assert_eq!(site.store().readings_of_digest(rec.first_seq).unwrap().len(), 6);
    let from_ms = (evening.unix_timestamp_nanos() / 1_000_000) as i64;
    assert_eq!(site.store().readings("D11-MAG-1", from_ms, from_ms + 3_600_000, 100).unwrap().len(), 6);

    // Checkpoint and proofs.
    let before = site.store().checkpoints().unwrap().first().map(|c| c.size).unwrap();
    site.checkpoint().unwrap();
    let cps = site.store().checkpoints().unwrap();
    assert_eq!(cps.last().map(|c| c.size), Some(site.size()));
    assert!(cps.windows(2).all(|w| w[0].size < w[1].size), "checkpoints by size");
    for seq in [0, first.first_seq, site.size() - 1] {
        let proof = site.prove(seq).unwrap();
        assert_eq!(proof.tree_size, site.size());
    }
    site.prove_consistency(before, site.size()).unwrap();

    // Reopen: the books and the root come back from the store exactly.
    let (state, root, size) = (site.state().clone(), site.root(), site.size());
    drop(site);
    let site = Site::open(qm_backends::open_store, &place.db, Some(&place.key)).unwrap();
    assert_eq!(site.size(), size);
    assert_eq!(site.root(), root);
    assert!(site.state() == &state, "the reopened books differ from the ones in memory");

    // The auditor agrees.
    let report = verify(site.store(), &VerifyOptions::default());
    assert!(report.ok(), "{:?}", report.problems);
    assert_eq!(report.entries, size);
    assert!(report.readings_batches >= 1);
    summary.push(format!(
        "end: {} entries, {} projection rows, {} readings batches",
        report.entries, report.projection_rows, report.readings_batches
    ));
    summary
}

/// The store contract, below the application: creation refusals, conflicts, history that cannot be
/// edited in the database, scan order, idempotency lookups.
fn store_contract(place: &Place) {
    // Entries with their real tree hashes: a store may derive some of them from the entries.
    let bytes = |seq: u64| format!("{{\"n\":{seq}}}").into_bytes();
    let mut tree = qm_ledger::Frontier::new();
    let tree_hashes: Vec<Vec<qm_store::Hash>> = (0..10).map(|seq| tree.push(qm_ledger::leaf_hash(&bytes(seq)))).collect();
    let entry = |seq: u64, idem: &str| StoredEntry {
        seq,
        idempotency_key: idem.into(),
        bytes: bytes(seq),
        hashes: tree_hashes[seq as usize].clone(),
    };
    assert!(matches!(open_store(&place.db, false).err(), Some(StoreError::Missing(_))));
    let mut store = open_store(&place.db, true).unwrap();
    assert_eq!(store.backend(), place.backend);
    assert!(matches!(open_store(&place.db, true).err(), Some(StoreError::Exists(_))));

    store.commit(&Commit { entries: vec![entry(0, "a"), entry(1, "a")], ..Commit::default() }).unwrap();
    // Another writer appended seq 1 first: the whole commit is refused, nothing of it lands.
    let dup = store.commit(&Commit { entries: vec![entry(2, "b"), entry(1, "b")], ..Commit::default() });
    assert!(matches!(dup, Err(StoreError::Conflict { seq: 1 })), "{dup:?}");
    assert_eq!(store.entry_count().unwrap(), 2);
    assert_eq!(store.find_idempotency_key("b").unwrap(), None);

    // Written in two commits, the later seqs first: a scan still returns them in seq order.
    store.commit(&Commit { entries: (6..10).map(|i| entry(i, &format!("k{i}"))).collect(), ..Commit::default() }).unwrap();
    store.commit(&Commit { entries: (2..6).map(|i| entry(i, &format!("k{i}"))).collect(), ..Commit::default() }).unwrap();
    let mut seen = vec![];
    store
        .scan_entries(1, &mut |seq, idem, bytes, hashes| {
            assert_eq!(bytes, entry(seq, idem).bytes.as_slice());
            let stored: Vec<u8> = entry(seq, idem).hashes.iter().skip(store.derived_hash_levels()).flatten().copied().collect();
            assert_eq!(hashes, stored.as_slice());
            seen.push(seq);
            true
        })
        .unwrap();
    assert_eq!(seen, (1..10).collect::<Vec<_>>());
    let read = store.read_entries(3, 2).unwrap();
    assert_eq!(read, vec![entry(3, "k3"), entry(4, "k4")]);
    assert_eq!(store.read_entry_hashes(&[5, 1]).unwrap(), vec![entry(5, "").hashes, entry(1, "").hashes]);

    let used = store.used_idempotency_keys(&["a", "k7", "nope", "b"]).unwrap();
    assert_eq!(used, ["a", "k7"].iter().map(|s| s.to_string()).collect());
    assert!(store.used_idempotency_keys(&[]).unwrap().is_empty());
    assert_eq!(store.find_idempotency_key("a").unwrap(), Some((0, 1)));

    // The database itself refuses to edit history, whoever asks.
    // (PostgreSQL keeps entries in tiles of 256 and their keys in a table of their own.)
    let edits: &[&str] = match place.backend {
        "postgres" => {
            // (Ten entries: tile 0 is still open, its entries one row each.)
            &[
                "UPDATE open_entries SET bytes = bytes WHERE seq = 0",
                "DELETE FROM open_entries WHERE seq = 9",
                "DELETE FROM entry_keys WHERE seq = 9",
                "TRUNCATE tiles",
            ]
        }
        _ => &["UPDATE entries SET bytes = bytes WHERE seq = 0", "DELETE FROM entries WHERE seq = 9"],
    };
    for sql in edits {
        let r = place.raw_sql(sql);
        assert!(r.as_ref().is_err_and(|e| e.contains("never")), "{}: {sql} was not refused: {r:?}", place.backend);
    }
    assert_eq!(store.entry_count().unwrap(), 10);
    assert_eq!(store.read_entries(0, 1).unwrap(), vec![entry(0, "a")]);

    // Rows that lag the ledger are caught up forward only: never over rows that cover more entries.
    let row = |kind: &str, key: &str, v: Option<&str>| RowChange { kind: kind.into(), key: key.into(), value: v.map(String::from) };
    let rows = |store: &dyn qm_store::Store| {
        let mut all = vec![];
        store
            .for_each_row(&mut |k, key, v| {
                all.push(format!("{k}/{key}={v}"));
                Ok(())
            })
            .unwrap();
        all
    };
    assert!(store.catch_up_rows(&[row("meta", "next_seq", Some("8")), row("serial", "R-1", Some("at 8"))], 8).unwrap());
    let older = store.catch_up_rows(&[row("meta", "next_seq", Some("5")), row("serial", "R-1", Some("at 5"))], 5).unwrap();
    assert!(!older, "{}: rows of 5 entries were written over rows of 8", place.backend);
    assert_eq!(rows(store.as_ref()), ["meta/next_seq=8", "serial/R-1=at 8"]);
    assert!(store.catch_up_rows(&[row("meta", "next_seq", Some("10")), row("serial", "R-1", None)], 10).unwrap());
    assert_eq!(rows(store.as_ref()), ["meta/next_seq=10"]);
    outbox_contract(store.as_mut(), place);
}

/// The outbox: messages with the cursor in one transaction, a message put twice kept once, attempts
/// recorded, and the queries (due soonest first, by person, pending only, newest first).
fn outbox_contract(store: &mut dyn qm_store::Store, place: &Place) {
    use qm_store::{OutboxMessage, OutboxQuery};
    let m = |id: &str, seq: u64, channel: &str, target: &str, next_ms: i64| OutboxMessage {
        id: id.into(),
        seq,
        channel: channel.into(),
        target: target.into(),
        subject: format!("subject {id}"),
        body: "body ✓".into(),
        created_ms: 1_000,
        attempts: 0,
        next_ms,
        last_error: None,
        delivered_ms: (channel == "web").then_some(1_000),
    };
    assert_eq!(store.outbox_cursor().unwrap(), None, "{}", place.backend);
    store
        .outbox_put(&[m("a", 3, "email", "x@example.org", 5_000), m("b", 4, "webhook", "soc", 2_000), m("w", 4, "web", "0501", 1_000)], 5)
        .unwrap();
    assert_eq!(store.outbox_cursor().unwrap(), Some(5));
    // Derived again (a crash before the cursor moved): the same ids are kept as they were.
    let mut again = m("a", 3, "email", "x@example.org", 9_999);
    again.subject = "changed".into();
    store.outbox_put(&[again], 5).unwrap();
    let due = store.outbox(&OutboxQuery { due_by_ms: Some(6_000), limit: 10, ..Default::default() }).unwrap();
    assert_eq!(
        due.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(),
        ["b", "a"],
        "{}: due soonest first, delivered left out",
        place.backend
    );
    assert_eq!(due[1], m("a", 3, "email", "x@example.org", 5_000));
    let mut failed = due[0].clone();
    failed.attempts = 1;
    failed.next_ms = 60_000;
    failed.last_error = Some("connection refused".into());
    store.outbox_update(&failed).unwrap();
    let due = store.outbox(&OutboxQuery { due_by_ms: Some(6_000), limit: 10, ..Default::default() }).unwrap();
    assert_eq!(due.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(), ["a"]);
    let mut done = due[0].clone();
    done.attempts = 1;
    done.delivered_ms = Some(7_000);
    store.outbox_update(&done).unwrap();
    let pending = store.outbox(&OutboxQuery { pending_only: true, limit: 10, ..Default::default() }).unwrap();
    assert_eq!(pending, vec![failed]);
    let web =
        store.outbox(&OutboxQuery { channel: Some("web".into()), target: Some("0501".into()), limit: 10, ..Default::default() }).unwrap();
    assert_eq!(web.iter().map(|x| x.id.as_str()).collect::<Vec<_>>(), ["w"]);
    let all = store.outbox(&OutboxQuery { limit: 10, ..Default::default() }).unwrap();
    assert_eq!(all.iter().map(|x| x.seq).collect::<Vec<_>>(), [4, 4, 3], "newest first");
    assert_eq!(store.outbox(&OutboxQuery { limit: 1, ..Default::default() }).unwrap().len(), 1);
}

/// SQL that replaces every stored projection row with `rows` (as a process stopped in the middle of
/// a burst leaves them: covering fewer entries than the ledger holds).
fn replace_rows_sql(rows: &[(String, String, String)]) -> String {
    let q = |s: &str| format!("'{}'", s.replace('\'', "''"));
    let values: Vec<String> = rows.iter().map(|(k, key, v)| format!("({}, {}, {})", q(k), q(key), q(v))).collect();
    format!("DELETE FROM projection; INSERT INTO projection (kind, key, value) VALUES {};", values.join(", "))
}

fn stored_rows(store: &dyn qm_store::Store) -> Vec<(String, String, String)> {
    let mut all = vec![];
    store
        .for_each_row(&mut |k, key, v| {
            all.push((k.to_string(), key.to_string(), v.to_string()));
            Ok(())
        })
        .unwrap();
    all.sort();
    all
}

/// Projection rows that lag the ledger (the pipelined writer holds them back during a burst): opening
/// replays the tail, verify compares them with a replay up to where they stop, the next commit
/// brings them up to date, and rows altered while they lag are still caught.
fn lagging_rows(place: &Place) {
    let day = qm_demo::demo::last_day(OffsetDateTime::now_utc());
    let evening = day + Duration::hours(20);
    let (mut site, _) = qm_demo::demo::create(&place.db, &place.key, day).unwrap();
    let old_rows = stored_rows(site.store());
    let old_size = site.size();
    site.execute(req("0417", Command::Issue { to: badge("1001"), from: None, items: vec![serial("R-1043")] }, "l-1", evening)).unwrap();
    site.execute(req("0417", Command::Issue { to: badge("1002"), from: None, items: vec![serial("R-1045")] }, "l-2", evening)).unwrap();
    let (books, size) = (site.state().all_rows(), site.size());
    drop(site);

    // Rows of an earlier size, one of them altered: verify names it.
    let mut altered = old_rows.clone();
    let r = altered.iter_mut().find(|(k, key, _)| k == "serial" && key == "R-1041").unwrap();
    r.2 = r.2.replace("D11-RACK-A", "D11-RACK-B");
    place.raw_sql(&replace_rows_sql(&altered)).unwrap();
    let report = verify(open_store(&place.db, false).unwrap().as_ref(), &VerifyOptions::default());
    assert!(report.problems.iter().any(|p| p.contains("R-1041")), "{}: {:?}", place.backend, report.problems);

    // The same rows as they were: they verify, though they cover fewer entries than the ledger holds.
    place.raw_sql(&replace_rows_sql(&old_rows)).unwrap();
    let report = verify(open_store(&place.db, false).unwrap().as_ref(), &VerifyOptions::default());
    assert!(report.ok(), "{}: {:?}", place.backend, report.problems);

    // Opening replays the two entries the rows miss: the same books.
    let mut site = Site::open(qm_backends::open_store, &place.db, Some(&place.key)).unwrap();
    assert_eq!(site.size(), size);
    assert!(site.state().all_rows() == books, "{}: the books after a replay of the tail differ", place.backend);
    assert_eq!(stored_rows(site.store()).iter().find(|r| r.0 == "meta").map(|r| r.2.clone()), Some(old_size.to_string()));

    // The next commit writes the tail's rows with its own: the stored rows equal a full replay.
    site.execute(req("0417", Command::return_to(badge("1002"), loc("D11-RACK-A"), vec![serial("R-1045")]), "l-3", evening)).unwrap();
    let now: Vec<(String, String, String)> = site.state().all_rows().into_iter().map(|(k, v)| (k.kind.to_string(), k.key, v)).collect();
    assert_eq!(stored_rows(site.store()), now);

    // Through the pipelined writer, rows held back (for a minute here, 20 ms by default): another
    // process opening the site meanwhile replays the tail and sees the same books.
    site.start_writer_with(std::time::Duration::from_secs(60)).unwrap();
    let covered = size + 1;
    let t = site.submit(vec![req("0417", Command::Issue { to: badge("1002"), from: None, items: vec![serial("R-1045")] }, "l-4", evening)]);
    let u = site.submit(vec![req("0417", Command::Issue { to: badge("1001"), from: None, items: vec![serial("R-1046")] }, "l-5", evening)]);
    assert!(site.finish(t)[0].is_ok() && site.finish(u)[0].is_ok());
    let meta = |rows: &[(String, String, String)]| rows.iter().find(|r| r.0 == "meta").map(|r| r.2.clone());
    assert_eq!(meta(&stored_rows(site.store())), Some(covered.to_string()), "{}: the rows were not held back", place.backend);
    assert_eq!(site.size(), covered + 2);
    let other = Site::open(qm_backends::open_store, &place.db, None).unwrap();
    assert!(other.state().all_rows() == site.state().all_rows(), "{}: a second process sees other books", place.backend);
    assert!(verify(other.store(), &VerifyOptions::default()).ok());
    // Once the writer has stopped, the rows are all written.
    let (books, size) = (site.state().all_rows(), site.size());
    drop(site);
    let store = open_store(&place.db, false).unwrap();
    let stored = stored_rows(store.as_ref());
    let books: Vec<(String, String, String)> = books.into_iter().map(|(k, v)| (k.kind.to_string(), k.key, v)).collect();
    assert_eq!(stored, books);
    assert!(stored.contains(&("meta".into(), "next_seq".into(), size.to_string())));
    assert!(verify(store.as_ref(), &VerifyOptions::default()).ok());
}

#[test]
fn lagging_rows_on_sqlite() {
    lagging_rows(&Place::sqlite());
}

#[test]
fn lagging_rows_on_postgres() {
    lagging_rows(&Place::postgres());
}

#[test]
fn story_on_sqlite() {
    story(&Place::sqlite());
}

#[test]
fn story_on_postgres() {
    story(&Place::postgres());
}

#[test]
fn store_contract_on_sqlite() {
    store_contract(&Place::sqlite());
}

#[test]
fn store_contract_on_postgres() {
    store_contract(&Place::postgres());
}

/// Both backends tell the same story: the same number of entries, rows and readings batches.
#[test]
fn both_backends_end_the_story_alike() {
    assert_eq!(story(&Place::sqlite()), story(&Place::postgres()));
}

/// PostgreSQL keeps entries in compressed tiles and derives the tree hashes inside each tile: an
/// entry altered in its tile, or a tile that no longer decompresses, is still named by verify, and
/// the site refuses to write on it.
#[test]
fn altered_tiles_are_named_by_verify_on_postgres() {
    use qm_store_postgres::tiles;
    let place = Place::postgres();
    let day = qm_demo::demo::last_day(OffsetDateTime::now_utc());
    let (mut site, _) = qm_demo::demo::create(&place.db, &place.key, day).unwrap();
    // More than two tiles: entry 511 then stores the tree hash over entries 0–511, above its tile.
    let evening = day + Duration::hours(20);
    let pairs: Vec<Request> = (0..300)
        .flat_map(|i| {
            [
                req("0417", Command::Issue { to: badge("1001"), from: None, items: vec![serial("R-1043")] }, &format!("t-i{i}"), evening),
                req("0610", Command::return_to(badge("1001"), loc("D11-RACK-A"), vec![serial("R-1043")]), &format!("t-r{i}"), evening),
            ]
        })
        .collect();
    assert!(site.execute_batch(pairs).iter().all(|r| r.is_ok()));
    assert!(site.size() > 600);
    drop(site);
    let check = || verify(open_store(&place.db, false).unwrap().as_ref(), &VerifyOptions::default());
    assert!(check().ok());
    let mut c = postgres::Client::connect(&place.db, postgres::NoTls).unwrap();
    // An intruder with the database's owner rights can switch the guard off.
    c.batch_execute("ALTER TABLE tiles DISABLE TRIGGER tiles_no_update").unwrap();
    let data: Vec<u8> = c.query_one("SELECT data FROM tiles WHERE tile = 0", &[]).unwrap().get(0);
    let mut buf = vec![];
    let records = tiles::unseal(0, &data, &mut buf).unwrap().to_vec();
    // One location changed in one entry, the length kept: the tile still reads, the tree does not match.
    let at = records.windows(10).position(|w| w == b"D11-RACK-A").expect("the demo stores rifles in D11-RACK-A");
    let mut altered = records.clone();
    altered[at + 9] = b'B';
    c.execute("UPDATE tiles SET data = $1 WHERE tile = 0", &[&tiles::seal(&altered)]).unwrap();
    let report = check();
    assert!(report.problems.iter().any(|p| p.contains("history was altered")), "{:?}", report.problems);
    // The hashes inside a tile are derived: the first stored one over the altered entry is named,
    // with every entry it covers.
    assert!(report.problems.iter().any(|p| p.starts_with("entries 0–511: they do not hash")), "{:?}", report.problems);
    assert_eq!(report.first_bad_entry, Some(0));
    let r = Site::open(qm_backends::open_store, &place.db, Some(&place.key)).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(r.contains("does not verify"), "{r}");
    // Data that no longer decompresses: the tile and its entries are named.
    c.execute("UPDATE tiles SET data = $1 WHERE tile = 0", &[&vec![1u8, 0, 0, 16, 0, 0xff, 0xff]]).unwrap();
    let report = check();
    assert!(report.problems.iter().any(|p| p.contains("ledger tile 0 (entries 0–255)")), "{:?}", report.problems);
    // Put back as it was: it verifies again.
    c.execute("UPDATE tiles SET data = $1 WHERE tile = 0", &[&data]).unwrap();
    assert!(check().ok());
}
