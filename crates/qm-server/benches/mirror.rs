//! Headquarters as the mirror of many sites (docs/sites.md): how many entries per second it takes
//! in over HTTP — checked package by package against each site's signed checkpoint, stored, the
//! whole ledger replayed by the auditor, cosigned — from 100 sites that each come back with a
//! backlog (C2SP tlog-witness add-checkpoint, then tlog-mirror add-entries), 8 requests in flight;
//! beside the in-run baseline of raw inserts of the same rows (origin, seq, bytes, leaf hash) into a
//! table of the same shape in the same database, in the same batches, one transaction each.
//!
//! `cargo bench -p qm-server --bench mirror` (headquarters on PostgreSQL when QM_TEST_POSTGRES_URL is
//! set, else on SQLite). QM_BENCH_MIRROR_ENTRIES: entries per site (default 500).

mod common;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use common::*;
use std::time::Instant;
use time::OffsetDateTime;

/// One batch of rows as the baseline inserts them: (entry bytes, leaf hash).
type Rows = Vec<(Vec<u8>, [u8; 32])>;

const SITES: usize = 100;
const IN_FLIGHT: usize = 8;

/// A department's site with `n` entries (units created under its root), and its store.
fn department(dir: &std::path::Path, i: usize, n: usize, at: OffsetDateTime) -> (String, String, std::path::PathBuf) {
    let origin = format!("d{i}.bench");
    let db = dir.join(format!("{origin}.db")).display().to_string();
    let key = qm_app::default_key_path(std::path::Path::new(&db));
    let root = id(qm_core::UnitId::parse("D"));
    let g = qm_app::Genesis {
        site: &origin,
        root_unit: &root,
        root_unit_name: "Department",
        admin: &id(qm_core::Badge::parse("0001")),
        admin_name: "Admin",
        admin_pin: "1234",
        at,
    };
    let mut site = qm_app::Site::init(qm_backends::open_store, &db, &key, &g).unwrap();
    let grow = site.size() as usize;
    let reqs = (grow..n)
        .map(|u| {
            let c = qm_core::Command::CreateUnit {
                unit: id(qm_core::UnitId::parse(&format!("D-{u}"))),
                name: format!("Section {u}"),
                parent: root.clone(),
            };
            req("0001", c, format!("u{u}"), at)
        })
        .collect();
    for r in site.execute_batch(reqs) {
        r.unwrap();
    }
    site.checkpoint().unwrap();
    (origin, db, key)
}

fn main() {
    let per_site: usize = std::env::var("QM_BENCH_MIRROR_ENTRIES").ok().and_then(|v| v.parse().ok()).unwrap_or(500);
    let dir = tempfile::tempdir().unwrap();
    let at = OffsetDateTime::now_utc();
    let scratch = std::env::var("QM_TEST_POSTGRES_URL").ok().map(|u| qm_store_postgres::scratch::ScratchDatabase::create(&u).unwrap());
    let (db, key) = match &scratch {
        Some(s) => (s.url().to_string(), dir.path().join("hq.key")),
        None => (dir.path().join("hq.db").display().to_string(), dir.path().join("hq.db.key")),
    };
    let g = qm_app::Genesis {
        site: "hq.bench",
        root_unit: &id(qm_core::UnitId::parse("HQ")),
        root_unit_name: "HQ",
        admin: &id(qm_core::Badge::parse("0001")),
        admin_name: "Admin",
        admin_pin: "1234",
        at,
    };
    let hq = qm_app::Site::init(qm_backends::open_store, &db, &key, &g).unwrap();
    let t = Instant::now();
    let sites: Vec<(String, String, std::path::PathBuf)> = (0..SITES).map(|i| department(dir.path(), i, per_site, at)).collect();
    eprintln!("{SITES} department sites of {per_site} entries made in {:.1} s", t.elapsed().as_secs_f64());
    let mut children = String::new();
    // What each site sends: its checkpoint (add-checkpoint from nothing), then its entries.
    let mut work: Vec<(String, Vec<Vec<u8>>, Vec<Rows>)> = vec![];
    for (origin, sdb, skey) in &sites {
        let mut site = qm_app::Site::open(qm_backends::open_store, sdb, Some(skey)).unwrap();
        let vkey = site.state().site.as_ref().unwrap().verifier_key.clone();
        children.push_str(&format!("[children.\"{origin}\"]\nkey = \"{vkey}\"\nunit = \"HQ\"\n"));
        let cp = site.add_checkpoint_request(0).unwrap();
        let size = site.size();
        let mut uploads = vec![];
        let mut rows = vec![];
        let mut from = 0;
        while from < size {
            let up = site.add_entries_request(from, size).unwrap();
            rows.push(up.packages.iter().flat_map(|p| p.entries.iter().map(|e| (e.clone(), qm_ledger::leaf_hash(e)))).collect());
            from = up.packages.last().unwrap().end();
            uploads.push(up.to_bytes().unwrap());
        }
        work.push((cp.body(), uploads, rows));
    }
    let file = dir.path().join("children.toml");
    std::fs::write(&file, children).unwrap();
    let entries: usize = work.iter().map(|w| w.2.iter().map(Vec::len).sum::<usize>()).sum();
    let batches: Vec<(String, Rows)> = work.iter().zip(&sites).flat_map(|(w, s)| w.2.iter().map(|r| (s.0.clone(), r.clone()))).collect();
    let base = baseline(&db, &batches);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let config = qm_server::Config {
            addr: "127.0.0.1:0".into(),
            db: db.to_string(),
            key: Some(key.display().to_string()),
            children: Some(file.display().to_string()),
            ..qm_server::Config::default()
        };
        let running = qm_server::start(config, hq).await.unwrap();
        let url = format!("http://{}", running.addr);
        let client = reqwest::Client::new();
        let start = Instant::now();
        let mut sending = tokio::task::JoinSet::new();
        for (checkpoint, uploads, _) in work {
            if sending.len() == IN_FLIGHT {
                sending.join_next().await.unwrap().unwrap();
            }
            let (client, url) = (client.clone(), url.clone());
            sending.spawn(async move {
                let r = client.post(format!("{url}/witness/add-checkpoint")).body(checkpoint).send().await.unwrap();
                assert_eq!(r.status().as_u16(), 200, "{}", r.text().await.unwrap_or_default());
                for (i, body) in uploads.iter().enumerate() {
                    let r = client.post(format!("{url}/mirror/add-entries")).body(body.clone()).send().await.unwrap();
                    let want = if i + 1 == uploads.len() { 200 } else { 202 };
                    assert_eq!(r.status().as_u16(), want, "{}", r.text().await.unwrap_or_default());
                }
            });
        }
        while let Some(r) = sending.join_next().await {
            r.unwrap();
        }
        let secs = start.elapsed().as_secs_f64();
        let ours = entries as f64 / secs;
        let backend = if db.starts_with("postgres") { "PostgreSQL" } else { "SQLite" };
        println!("mirror: {SITES} sites × {per_site} entries ({entries} in all), {IN_FLIGHT} sites in flight, headquarters on {backend}");
        println!("  baseline: raw inserts of the same rows, same batches, one transaction each: {base:>8.0} entries/s");
        println!(
            "  witnessed and mirrored over HTTP (checked, stored, replayed, cosigned):     {ours:>8.0} entries/s   ratio {:.2}   ({secs:.1} s)",
            ours / base
        );
        running.stop().await.unwrap();
    });
}

/// Raw inserts of the same rows into a table shaped like the mirror's, in the same batches.
fn baseline(db: &str, batches: &[(String, Rows)]) -> f64 {
    let n: usize = batches.iter().map(|b| b.1.len()).sum();
    if db.starts_with("postgres") {
        let mut c = postgres::Client::connect(db, postgres::NoTls).unwrap();
        c.batch_execute("CREATE TABLE raw_mirror (origin TEXT NOT NULL, seq BIGINT NOT NULL, bytes BYTEA NOT NULL, leaf BYTEA NOT NULL, PRIMARY KEY (origin, seq))").unwrap();
        let t = Instant::now();
        for (origin, rows) in batches {
            let mut tx = c.transaction().unwrap();
            let seqs: Vec<i64> = (0..rows.len() as i64).collect();
            let bytes: Vec<&[u8]> = rows.iter().map(|r| r.0.as_slice()).collect();
            let leaves: Vec<&[u8]> = rows.iter().map(|r| r.1.as_slice()).collect();
            let offset =
                tx.query_one("SELECT COALESCE(MAX(seq) + 1, 0) FROM raw_mirror WHERE origin = $1", &[origin]).unwrap().get::<_, i64>(0);
            let seqs: Vec<i64> = seqs.iter().map(|s| s + offset).collect();
            tx.execute(
                "INSERT INTO raw_mirror SELECT $1, s, b, l FROM UNNEST($2::BIGINT[], $3::BYTEA[], $4::BYTEA[]) AS u(s, b, l)",
                &[origin, &seqs, &bytes, &leaves],
            )
            .unwrap();
            tx.commit().unwrap();
        }
        n as f64 / t.elapsed().as_secs_f64()
    } else {
        let raw = std::path::Path::new(db).with_extension("raw.db");
        let mut c = rusqlite::Connection::open(raw).unwrap();
        c.execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; CREATE TABLE raw_mirror (origin TEXT NOT NULL, seq INTEGER NOT NULL, bytes BLOB NOT NULL, leaf BLOB NOT NULL, PRIMARY KEY (origin, seq)) WITHOUT ROWID").unwrap();
        let t = Instant::now();
        for (origin, rows) in batches {
            let tx = c.transaction().unwrap();
            let offset: i64 =
                tx.query_row("SELECT COALESCE(MAX(seq) + 1, 0) FROM raw_mirror WHERE origin = ?1", [origin], |r| r.get(0)).unwrap();
            {
                let mut st = tx.prepare("INSERT INTO raw_mirror VALUES (?1, ?2, ?3, ?4)").unwrap();
                for (i, (b, l)) in rows.iter().enumerate() {
                    st.execute(rusqlite::params![origin, offset + i as i64, b, l.as_slice()]).unwrap();
                }
            }
            tx.commit().unwrap();
        }
        n as f64 / t.elapsed().as_secs_f64()
    }
}
