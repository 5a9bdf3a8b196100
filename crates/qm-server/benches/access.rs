//! Door events (docs/access.md): how fast an access-control system's signed webhooks are taken in,
//! beside raw SQLite inserts of the same rows in the same batches (the in-run baseline), and one
//! event's latency from its receipt to the "inside now" view while events arrive at 200 per second.
//!
//! `cargo bench -p qm-server --bench access`

mod common;

// As `qm` runs (crates/qm-cli/src/main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use base64::Engine;
use common::*;
use qm_core::*;
use serde_json::json;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

const KEY: &[u8] = b"the bench's access-control system key!!";
const BATCH: usize = 500;
const BATCHES: usize = 40;
/// Batches sent first and not timed, on both sides (the first commits after a start pay for the
/// server's own start-up work and cold caches, which are not the steady rate of intake).
const WARMUP: usize = 5;
/// Messages a sender keeps in flight in the second run (webhook dispatchers deliver concurrently).
const IN_FLIGHT: usize = 2;
const PEOPLE: usize = 200;
const PLACES: usize = 20;
const PASSWORD: &str = "bench password";

/// A site with `PLACES` armories, `PEOPLE` armorers on every roster, and the system's file.
fn site(dir: &std::path::Path, at: OffsetDateTime) -> (String, String) {
    let db = dir.join("access.db").display().to_string();
    let mut site = new_site(&db, at);
    let mut reqs = vec![req(
        "0001",
        Command::CreateUnit { unit: id(UnitId::parse("D-1")), name: "D-1".into(), parent: id(UnitId::parse("HQ")) },
        "u".into(),
        at,
    )];
    let pin = qm_app::hash_secret("1234").unwrap();
    let password = qm_app::hash_secret(PASSWORD).unwrap();
    let admin = id(Badge::parse("0001"));
    reqs.push(req(
        "0001",
        Command::SetCredential { badge: admin, kind: qm_core::event::CredentialKind::Password, hash: password },
        "pw".into(),
        at,
    ));
    let mut doors = String::new();
    let mut cards = String::new();
    for p in 0..PLACES {
        let location = id(LocationId::parse(&format!("ARM-{p}")));
        reqs.push(req(
            "0001",
            Command::CreateLocation {
                location,
                name: format!("Armory {p}"),
                unit: id(UnitId::parse("D-1")),
                parent: None,
                kind: LocationKind::Armory,
                keeper: None,
                magazine: None,
            },
            format!("l{p}"),
            at,
        ));
        doors.push_str(&format!("DOOR-{p} = \"ARM-{p}\"\n"));
    }
    for n in 0..PEOPLE {
        let badge = id(Badge::parse(&format!("{}", 1000 + n)));
        let c = Command::RegisterPerson {
            badge,
            name: format!("Armorer {n}"),
            unit: id(UnitId::parse("D-1")),
            roles: vec![Role::Armorer],
            pin_hash: pin.clone(),
        };
        reqs.push(req("0001", c, format!("p{n}"), at));
        cards.push_str(&format!("C{} = \"{}\"\n", 1000 + n, 1000 + n));
    }
    for p in 0..PLACES {
        for n in 0..PEOPLE {
            let c = Command::GrantAccess {
                location: id(LocationId::parse(&format!("ARM-{p}"))),
                badge: id(Badge::parse(&format!("{}", 1000 + n))),
                role: Role::Armorer,
                hours: qm_core::access::Hours::always(),
                reason: "bench".into(),
            };
            reqs.push(req("0001", c, format!("g{p}-{n}"), at));
        }
    }
    for r in site.execute_batch(reqs) {
        r.unwrap();
    }
    site.checkpoint().unwrap();
    drop(site);
    let secret = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(KEY));
    let file = dir.join("access.toml");
    std::fs::write(&file, format!("[systems.acs]\nsecret = \"{secret}\"\n[systems.acs.doors]\n{doors}[systems.acs.cards]\n{cards}"))
        .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    (db, file.display().to_string())
}

/// Event `i`: person `i % PEOPLE` going in and out of armory `i % PLACES` in turn.
fn event(i: usize, at: OffsetDateTime) -> serde_json::Value {
    let person = i % PEOPLE;
    let direction = if (i / PEOPLE).is_multiple_of(2) { "in" } else { "out" };
    let t = (at + time::Duration::milliseconds(i as i64)).format(&time::format_description::well_known::Rfc3339).unwrap();
    json!({"id": format!("e{i}"), "type": "granted", "at": t, "door": format!("DOOR-{}", person % PLACES), "card": format!("C{}", 1000 + person), "direction": direction})
}

async fn post(client: &reqwest::Client, url: &str, msg: &str, body: String) {
    let ts = OffsetDateTime::now_utc().unix_timestamp();
    let sig = qm_server::notify::webhook_signature(KEY, msg, ts, body.as_bytes());
    let r = client
        .post(format!("{url}/api/access/webhooks/acs"))
        .header("webhook-id", msg)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}: {}", r.status(), r.text().await.unwrap_or_default());
}

/// A door event's row as the baseline inserts it: id, time, door, card, place, badge.
type Row = (String, i64, String, String, String, String);

/// Raw SQLite: the same rows, the same batches, one durable transaction each (as the site commits),
/// the rows built before the clock starts.
fn baseline(dir: &std::path::Path, at: OffsetDateTime) -> Duration {
    let c = rusqlite::Connection::open(dir.join("raw.db")).unwrap();
    c.execute_batch(
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;
         CREATE TABLE door_events (source TEXT NOT NULL, event_id TEXT NOT NULL, at_ms INTEGER NOT NULL, door TEXT NOT NULL, card TEXT,
           kind TEXT NOT NULL, location TEXT, badge TEXT, proof TEXT, digest_seq INTEGER NOT NULL, UNIQUE (source, event_id));
         CREATE INDEX door_events_location_at ON door_events(location, at_ms); CREATE INDEX door_events_digest ON door_events(digest_seq);",
    )
    .unwrap();
    let rows: Vec<Vec<Row>> = (0..WARMUP + BATCHES)
        .map(|b| {
            (b * BATCH..(b + 1) * BATCH)
                .map(|i| {
                    let e = event(i, at);
                    let person = i % PEOPLE;
                    let at_ms = (at.unix_timestamp_nanos() / 1_000_000) as i64 + i as i64;
                    let text = |k: &str| e[k].as_str().unwrap().to_string();
                    (text("id"), at_ms, text("door"), text("card"), format!("ARM-{}", person % PLACES), format!("{}", 1000 + person))
                })
                .collect()
        })
        .collect();
    let mut c = c;
    let mut start = Instant::now();
    for (b, batch) in rows.iter().enumerate() {
        if b == WARMUP {
            start = Instant::now();
        }
        let tx = c.transaction().unwrap();
        {
            let mut ins = tx.prepare_cached("INSERT INTO door_events VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, NULL, ?9)").unwrap();
            for (id, at_ms, door, card, location, badge) in batch {
                ins.execute(rusqlite::params!["acs", id, at_ms, door, card, "entry", location, badge, b as i64]).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    start.elapsed()
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let at = OffsetDateTime::now_utc() - time::Duration::seconds(60);
    let (db, file) = site(dir.path(), at);
    let raw = baseline(dir.path(), at);
    let n = BATCH * BATCHES;
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let site = qm_app::Site::open(qm_backends::open_store, &db, None).unwrap();
        let config = qm_server::Config { addr: "127.0.0.1:0".into(), db: db.clone(), access: Some(file), ..qm_server::Config::default() };
        let running = qm_server::start(config, site).await.unwrap();
        let url = format!("http://{}", running.addr);
        let client = reqwest::Client::new();
        // Throughput: batches of signed events, one after the other.
        let mut bodies: Vec<String> = (0..WARMUP + 2 * BATCHES).map(|b| json!({"events": (b * BATCH..(b + 1) * BATCH).map(|i| event(i, at)).collect::<Vec<_>>()}).to_string()).collect();
        // The HTTP floor: the same messages to a system nobody configured, refused once the body
        // is read (nothing checked, parsed or recorded).
        let floor = Instant::now();
        for (b, body) in bodies.iter().skip(WARMUP).enumerate() {
            let r = client.post(format!("{url}/api/access/webhooks/nobody")).header("webhook-id", format!("f{b}")).body(body.clone()).send().await.unwrap();
            assert_eq!(r.status(), 404);
        }
        let floor = floor.elapsed();
        let concurrent = bodies.split_off(WARMUP + BATCHES);
        let mut start = Instant::now();
        for (b, body) in bodies.into_iter().enumerate() {
            if b == WARMUP {
                start = Instant::now();
            }
            post(&client, &url, &format!("batch-{b}"), body).await;
        }
        let ours = start.elapsed();
        // The next batches with IN_FLIGHT messages in flight at a time: the site judges one while
        // the one before is made durable.
        let start = Instant::now();
        let mut sending = tokio::task::JoinSet::new();
        for (b, body) in concurrent.into_iter().enumerate() {
            if sending.len() == IN_FLIGHT {
                sending.join_next().await.unwrap().unwrap();
            }
            let (client, url) = (client.clone(), url.clone());
            sending.spawn(async move { post(&client, &url, &format!("more-{b}"), body).await });
        }
        while let Some(r) = sending.join_next().await {
            r.unwrap();
        }
        let ours_concurrent = start.elapsed();
        let r_concurrent = n as f64 / ours_concurrent.as_secs_f64();
        let (r_raw, r_ours) = (n as f64 / raw.as_secs_f64(), n as f64 / ours.as_secs_f64());
        println!("door events: {n} in batches of {BATCH}, signed (HMAC-SHA256), over HTTP on loopback");
        println!("  raw SQLite inserts of the same rows, same batches (baseline): {r_raw:>9.0} events/s");
        println!("  Quartermaster's webhook receiver, judged, digested, ledgered, one message at a time: {r_ours:>9.0} events/s   ratio {:.2}", r_ours / r_raw);
        println!(
            "  the same, the sender keeping {IN_FLIGHT} messages in flight:                          {r_concurrent:>9.0} events/s   ratio {:.2} (target ≥ 0.50)",
            r_concurrent / r_raw
        );
        println!(
            "  the HTTP exchange alone (the same bodies, refused unread by any rule): {:.2} ms per batch of {BATCH}, raw inserts {:.2} ms, ours {:.2} ms",
            floor.as_secs_f64() * 1e3 / BATCHES as f64,
            raw.as_secs_f64() * 1e3 / BATCHES as f64,
            ours.as_secs_f64() * 1e3 / BATCHES as f64
        );
        if std::env::var_os("QM_BENCH_INGEST_ONLY").is_some() {
            running.stop().await.unwrap();
            return;
        }
        // Latency at 200 events per second: each one's receipt to the "inside now" view showing it.
        let officer = reqwest::Client::builder().cookie_store(true).build().unwrap();
        let r = officer.post(format!("{url}/api/session")).json(&json!({"badge": "0001", "password": PASSWORD})).send().await.unwrap();
        assert!(r.status().is_success());
        let mut lat = vec![];
        let per = Duration::from_millis(5);
        let t0 = Instant::now();
        for k in 0..1000usize {
            let due = t0 + per * k as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                tokio::time::sleep(wait).await;
            }
            let i = (WARMUP + 2 * BATCHES) * BATCH + k;
            let e = event(i, at + time::Duration::seconds(1));
            let (badge, going_in) = (format!("{}", 1000 + i % PEOPLE), e["direction"] == "in");
            let place = format!("ARM-{}", (i % PEOPLE) % PLACES);
            let body = json!({ "events": [e] }).to_string();
            let sent = Instant::now();
            post(&client, &url, &format!("one-{k}"), body).await;
            // The view as people see it: who is inside each place now.
            let v: serde_json::Value = officer.get(format!("{url}/api/access")).send().await.unwrap().json().await.unwrap();
            let p = v.as_array().unwrap().iter().find(|x| x["location"] == place.as_str()).unwrap();
            let inside = p["inside"].as_array().unwrap().iter().any(|x| x["badge"] == badge.as_str());
            assert_eq!(inside, going_in, "{place} {badge}");
            lat.push(sent.elapsed());
        }
        let rate = 1000.0 / t0.elapsed().as_secs_f64();
        lat.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "  one event's receipt to the inside-now view, {rate:.0} events/s offered: median {:.2} ms, p99 {:.2} ms, max {:.2} ms (target < 50 ms)",
            ms(lat[lat.len() / 2]),
            ms(lat[lat.len() * 99 / 100]),
            ms(lat[lat.len() - 1])
        );
        running.stop().await.unwrap();
    });
}
