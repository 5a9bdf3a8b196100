//! `cargo bench -p qm-demo --bench safety`: the cost of the magazine safety check and of condition-reading
//! ingest, each beside an in-run baseline (the same movement into an ordinary location; raw SQLite
//! inserts of the same reading rows with the same connection settings).

// The same allocator as the `qm` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use qm_app::{Genesis, Request, Site};
use qm_core::conditions::Reading;
use qm_core::*;
use std::time::Instant;
use time::{Duration, OffsetDateTime};

fn b(s: &str) -> Badge {
    Badge::parse(s).unwrap()
}
fn loc(s: &str) -> LocationId {
    LocationId::parse(s).unwrap()
}

fn main() {
    let lots = 1000;
    let moves = std::env::var("QM_BENCH_MOVES").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000usize);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("safety.db");
    let hq = UnitId::parse("HQ").unwrap();
    let now = OffsetDateTime::now_utc();
    let mut site = Site::init(
        qm_backends::open_store,
        db.to_str().unwrap(),
        &dir.path().join("k"),
        &Genesis { site: "bench", root_unit: &hq, root_unit_name: "HQ", admin: &b("0001"), admin_name: "A", admin_pin: "1234", at: now },
    )
    .unwrap();
    let pin = qm_app::hash_secret("1234").unwrap();
    let d1 = UnitId::parse("D-1").unwrap();
    let mut setup = vec![
        Command::CreateUnit { unit: d1.clone(), name: "D".into(), parent: hq.clone() },
        Command::CreateLocation {
            location: loc("MAG"),
            name: "Magazine".into(),
            unit: d1.clone(),
            parent: None,
            kind: LocationKind::Magazine,
            keeper: None,
            magazine: Some(MagazineLicence {
                neq_limit_kg: 1e9,
                hazard_divisions: vec!["1.1".into(), "1.4".into()],
                compatibility_groups: vec![],
                exposed_sites: vec![ExposedSite { kind: "inhabited_building".into(), distance_m: 50_000.0 }],
            }),
        },
        Command::CreateLocation {
            location: loc("SHELF"),
            name: "Shelf".into(),
            unit: d1.clone(),
            parent: None,
            kind: LocationKind::Room,
            keeper: None,
            magazine: None,
        },
        Command::CreateLocation {
            location: loc("DOCK"),
            name: "Dock".into(),
            unit: d1.clone(),
            parent: None,
            kind: LocationKind::Room,
            keeper: None,
            magazine: None,
        },
        Command::DefineItemType {
            item_type: ItemTypeId::parse("CHG").unwrap(),
            name: "Charge".into(),
            kind: ItemKind::Explosive,
            tracking: Tracking::Lot,
            unit_of_measure: "each".into(),
            neq_kg_per_unit: 0.5,
            un_code: Some("1.1D".into()),
            qualification: None,
        },
        Command::RegisterPerson {
            badge: b("K"),
            name: "Keeper".into(),
            unit: d1.clone(),
            roles: vec![Role::MagazineKeeper, Role::DutyOfficer],
            pin_hash: pin.clone(),
        },
        Command::RegisterPerson {
            badge: b("W"),
            name: "Witness".into(),
            unit: d1.clone(),
            roles: vec![Role::MagazineKeeper],
            pin_hash: pin,
        },
    ];
    // The same 1,000 lots in the magazine and on an ordinary shelf; stock on the dock to move from.
    for to in ["MAG", "SHELF", "DOCK"] {
        setup.push(Command::Receive {
            to: loc(to),
            from: "Supplier".into(),
            document: "DN".into(),
            lines: (0..lots)
                .map(|i| ReceiptLine {
                    item_type: ItemTypeId::parse("CHG").unwrap(),
                    serial: None,
                    lot: Some(LotNo::parse(&format!("L-{i}")).unwrap()),
                    quantity: Quantity::units(1_000),
                    manufactured: None,
                    expires: None,
                })
                .collect(),
        });
    }
    let reqs: Vec<Request> = setup
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let actor = if matches!(c, Command::Receive { .. }) { "K" } else { "0001" };
            let witness = matches!(c, Command::Receive { .. }).then(|| b("W"));
            Request { token: None, actor: b(actor), witness, command: c, idempotency_key: format!("s{i}"), at: now }
        })
        .collect();
    for r in site.execute_batch(reqs) {
        r.unwrap();
    }
    let movement = |to: &str, i: usize| Command::Move {
        from: loc("DOCK"),
        to: loc(to),
        items: vec![ItemRef::Lot { lot: LotNo::parse(&format!("L-{}", i % lots)).unwrap(), quantity: Quantity::units(1) }],
    };
    let ctx = Ctx { token: None, actor: b("K"), witness: Some(b("W")), at: now, zone: Default::default() };
    // Rule evaluation alone, interleaved so both see the same machine.
    let (mut t_mag, mut t_shelf) = (0.0, 0.0);
    for round in 0..10 {
        for (to, acc) in [("MAG", &mut t_mag), ("SHELF", &mut t_shelf)] {
            let t = Instant::now();
            for i in 0..moves / 10 {
                std::hint::black_box(decide(site.state(), &ctx, &movement(to, i + round)).unwrap());
            }
            *acc += t.elapsed().as_secs_f64();
        }
    }
    let per = |t: f64| t / moves as f64 * 1e6;
    println!(
        "decide a movement into a magazine holding {lots} lots: {:.2} µs; into an ordinary location holding the same: {:.2} µs; overhead {:+.1}% (target <= +20%)",
        per(t_mag),
        per(t_shelf),
        (t_mag / t_shelf - 1.0) * 100.0
    );
    // End to end (decide, encode, append, commit), batches of 1,000, alternating.
    let (mut e_mag, mut e_shelf) = (0.0, 0.0);
    let mut k = 0;
    for round in 0..(moves / 1000).max(2) {
        for (to, acc) in [("MAG", &mut e_mag), ("SHELF", &mut e_shelf)] {
            let batch: Vec<Request> = (0..1000)
                .map(|i| {
                    k += 1;
                    Request {
                        token: None,
                        actor: b("K"),
                        witness: Some(b("W")),
                        command: movement(to, i + round * 7),
                        idempotency_key: format!("m{k}"),
                        at: now,
                    }
                })
                .collect();
            let t = Instant::now();
            for r in site.execute_batch(batch) {
                r.unwrap();
            }
            *acc += t.elapsed().as_secs_f64();
        }
    }
    println!(
        "end to end, batches of 1000: into the magazine {:.2} µs/movement; into the ordinary location {:.2} µs/movement; overhead {:+.1}%",
        e_mag / (k / 2) as f64 * 1e6,
        e_shelf / (k / 2) as f64 * 1e6,
        (e_mag / e_shelf - 1.0) * 100.0
    );

    // Reading ingest: 100,000 readings through the rules and digests, beside raw inserts of the same rows.
    let n = 100_000usize;
    let start = now - Duration::days(200);
    let readings: Vec<Reading> = (0..n)
        .map(|i| Reading {
            at: start + Duration::minutes(i as i64),
            temperature_c: Some(18.0 + (i % 50) as f64 * 0.1),
            humidity_pct: Some(45.0),
        })
        .collect();
    let t = Instant::now();
    for (j, chunk) in readings.chunks(10_000).enumerate() {
        site.record_readings(&b("K"), &loc("MAG"), chunk.to_vec(), &format!("r{j}"), now).unwrap();
    }
    let ingest = n as f64 / t.elapsed().as_secs_f64();
    let raw = rusqlite::Connection::open(dir.path().join("raw.db")).unwrap();
    raw.query_row("PRAGMA journal_mode=WAL", [], |_| Ok(())).unwrap();
    raw.pragma_update(None, "synchronous", "FULL").unwrap();
    raw.execute_batch("CREATE TABLE readings (location TEXT NOT NULL, at_ms INTEGER NOT NULL, temperature_c REAL, humidity_pct REAL, digest_seq INTEGER NOT NULL); CREATE INDEX r1 ON readings(location, at_ms); CREATE INDEX r2 ON readings(digest_seq);").unwrap();
    let mut raw = raw;
    let t = Instant::now();
    for (j, chunk) in readings.chunks(10_000).enumerate() {
        let tx = raw.transaction().unwrap();
        {
            let mut st = tx.prepare_cached("INSERT INTO readings VALUES (?1, ?2, ?3, ?4, ?5)").unwrap();
            for r in chunk {
                st.execute(rusqlite::params!["MAG", r.at.unix_timestamp() * 1000, r.temperature_c, r.humidity_pct, j as i64]).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let raw_rate = n as f64 / t.elapsed().as_secs_f64();
    println!("condition readings ingest, batches of 10,000: {ingest:.0} readings/s; raw SQLite inserts of the same rows: {raw_rate:.0} rows/s; ratio {:.2}", ingest / raw_rate);
}
