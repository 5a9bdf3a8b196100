//! Benchmark: issue/return over HTTP with 16 concurrent clients on loopback (throughput, p50/p99),
//! beside the same operations called through the library (`Site::execute`) in the same run.
//!
//! Run: `cargo bench -p qm-server --bench http` (QM_BENCH_ROUNDS sets the issue/return pairs per client).

// The same allocator as the `qm` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod common;

use common::{id, new_site};
use qm_app::{Request, Site};
use qm_core::event::CredentialKind;
use qm_core::*;
use serde_json::json;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

const CLIENTS: usize = 16;
const PASSWORD: &str = "bench password";

/// A site with one department, an armorer, one officer and one rifle per client.
fn site(db: &str) -> Site {
    let at = OffsetDateTime::now_utc();
    let hq = id(UnitId::parse("HQ"));
    let mut site = new_site(db, at);
    let pin = qm_app::hash_secret("1234").unwrap();
    let pw = qm_app::hash_secret(PASSWORD).unwrap();
    let mut cmds = vec![
        Command::CreateUnit { unit: id(UnitId::parse("D-1")), name: "D1".into(), parent: hq.clone() },
        Command::CreateLocation {
            location: id(LocationId::parse("RACK")),
            name: "Rack".into(),
            unit: id(UnitId::parse("D-1")),
            parent: None,
            kind: LocationKind::Rack,
            keeper: None,
            magazine: None,
        },
        Command::DefineItemType {
            item_type: id(ItemTypeId::parse("RIFLE")),
            name: "Rifle".into(),
            kind: ItemKind::Weapon,
            tracking: Tracking::Serial,
            unit_of_measure: "each".into(),
            neq_kg_per_unit: 0.0,
            un_code: None,
            qualification: None,
        },
    ];
    for b in std::iter::once("A0".to_string()).chain((0..CLIENTS).map(|c| format!("O{c}"))) {
        let badge = id(Badge::parse(&b));
        cmds.push(Command::RegisterPerson {
            badge: badge.clone(),
            name: b.clone(),
            unit: id(UnitId::parse("D-1")),
            roles: vec![Role::Armorer],
            pin_hash: pin.clone(),
        });
        cmds.push(Command::SetCredential { badge, kind: CredentialKind::Password, hash: pw.clone() });
    }
    let reqs = cmds
        .into_iter()
        .enumerate()
        .map(|(i, command)| Request {
            token: None,
            actor: id(Badge::parse("0001")),
            witness: None,
            command,
            idempotency_key: format!("setup-{i}"),
            at,
        })
        .collect();
    for r in site.execute_batch(reqs) {
        r.unwrap();
    }
    let lines = (0..CLIENTS * 2)
        .map(|c| ReceiptLine {
            item_type: id(ItemTypeId::parse("RIFLE")),
            serial: Some(id(Serial::parse(&format!("R{c}")))),
            lot: None,
            quantity: Quantity::ONE,
            manufactured: None,
            expires: None,
        })
        .collect();
    site.execute(Request {
        token: None,
        actor: id(Badge::parse("A0")),
        witness: None,
        command: Command::Receive { to: id(LocationId::parse("RACK")), from: "F".into(), document: "D".into(), lines },
        idempotency_key: "receive".into(),
        at,
    })
    .unwrap();
    site
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn report(name: &str, ops: usize, wall: Duration, mut lat: Vec<Duration>) {
    lat.sort();
    println!(
        "{name:<44} {ops:>6} ops  {:>9.0} ops/s  p50 {:>8.3} ms  p99 {:>8.3} ms",
        ops as f64 / wall.as_secs_f64(),
        pct(&lat, 0.50).as_secs_f64() * 1e3,
        pct(&lat, 0.99).as_secs_f64() * 1e3
    );
}

fn issue(c: usize, serial: usize) -> Command {
    Command::Issue {
        to: id(Badge::parse(&format!("O{c}"))),
        from: None,
        items: vec![ItemRef::Serial(id(Serial::parse(&format!("R{serial}"))))],
    }
}
fn ret(c: usize, serial: usize) -> Command {
    Command::return_to(
        id(Badge::parse(&format!("O{c}"))),
        id(LocationId::parse("RACK")),
        vec![ItemRef::Serial(id(Serial::parse(&format!("R{serial}"))))],
    )
}

fn main() {
    let rounds: usize = std::env::var("QM_BENCH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(100);
    let dir = tempfile::tempdir().unwrap();
    println!("issue/return of one rifle per request; {CLIENTS} clients × {rounds} issue/return pairs; SQLite, synchronous=FULL");

    // 1. The library, one request after another (one durable commit per request).
    let db = dir.path().join("lib.db").display().to_string();
    let mut s = site(&db);
    let mut lat = vec![];
    let t = Instant::now();
    for r in 0..rounds {
        for c in 0..CLIENTS {
            for (k, command) in [issue(c, c), ret(c, c)].into_iter().enumerate() {
                let t0 = Instant::now();
                s.execute(Request {
                    token: None,
                    actor: id(Badge::parse("A0")),
                    witness: None,
                    command,
                    idempotency_key: format!("l-{r}-{c}-{k}"),
                    at: OffsetDateTime::now_utc(),
                })
                .unwrap();
                lat.push(t0.elapsed());
            }
        }
    }
    report("library Site::execute, sequential", lat.len(), t.elapsed(), lat);
    drop(s);

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        // 2. The library through the server's worker (group commit), 16 concurrent tasks, no HTTP.
        let db = dir.path().join("worker.db").display().to_string();
        let (handle, join) = qm_server::worker::spawn(site(&db), 10, 30_000);
        let t = Instant::now();
        let mut tasks = vec![];
        for c in 0..CLIENTS {
            let h = handle.clone();
            tasks.push(tokio::spawn(async move {
                let mut lat = vec![];
                for r in 0..rounds {
                    for (k, command) in [issue(c, c), ret(c, c)].into_iter().enumerate() {
                        let t0 = Instant::now();
                        h.execute(Request {
                            token: None,
                            actor: id(Badge::parse("A0")),
                            witness: None,
                            command,
                            idempotency_key: format!("w-{r}-{c}-{k}"),
                            at: OffsetDateTime::now_utc(),
                        })
                        .await
                        .unwrap();
                        lat.push(t0.elapsed());
                    }
                }
                lat
            }));
        }
        let mut lat = vec![];
        for t in tasks {
            lat.extend(t.await.unwrap());
        }
        report("library via worker (group commit), 16 tasks", lat.len(), t.elapsed(), lat);
        handle.shutdown().await;
        let _ = tokio::task::spawn_blocking(move || join.join()).await;

        // 3. HTTP: the real server on loopback, 16 clients each signed in with its own session.
        http_counter(&dir, "http.db", rounds, false, "HTTP on loopback, 16 clients").await;
        // 4. The same, while a flood of bad sign-ins (wrong passwords, 200 a second) arrives.
        http_counter(&dir, "flood.db", rounds, true, "HTTP, 16 clients + 200/s bad sign-ins").await;
        // 5. The baseline: a trivial handler, the same client and request pattern, in this run.
        let app = axum::Router::new()
            .route("/api/issue", axum::routing::post(|| async { axum::Json(json!({"ok": true})) }))
            .route("/api/return", axum::routing::post(|| async { axum::Json(json!({"ok": true})) }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let sessions = (0..CLIENTS).map(|_| (reqwest::Client::new(), String::new())).collect();
        let (lat, wall) = drive(&url, sessions, rounds).await;
        report("trivial axum handler (baseline), 16 clients", lat.len(), wall, lat);
        server.abort();
    });
}

/// 16 clients, each issuing and returning its own rifle `rounds` times; every answer must be 200.
async fn drive(url: &str, sessions: Vec<(reqwest::Client, String)>, rounds: usize) -> (Vec<Duration>, Duration) {
    let t = Instant::now();
    let mut tasks = vec![];
    for (c, (client, csrf)) in sessions.into_iter().enumerate() {
        let url = url.to_string();
        tasks.push(tokio::spawn(async move {
            let mut lat = vec![];
            for _ in 0..rounds {
                let serial = format!("R{c}");
                for (path, body) in [
                    ("/api/issue", json!({"to": format!("O{c}"), "items": [serial]})),
                    ("/api/return", json!({"from": format!("O{c}"), "to": "RACK", "items": [serial]})),
                ] {
                    let t0 = Instant::now();
                    let r = client.post(format!("{url}{path}")).header("x-csrf-token", &csrf).json(&body).send().await.unwrap();
                    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
                    lat.push(t0.elapsed());
                }
            }
            lat
        }));
    }
    let mut lat = vec![];
    for t in tasks {
        lat.extend(t.await.unwrap());
    }
    (lat, t.elapsed())
}

/// The counter over HTTP on a fresh site; with `flood`, a 17th client meanwhile sends 200 bad
/// sign-ins a second (the limiter set high, so each one costs a real Argon2 comparison).
async fn http_counter(dir: &tempfile::TempDir, name: &str, rounds: usize, flood: bool, label: &str) {
    let db = dir.path().join(name).display().to_string();
    let config =
        qm_server::Config { addr: "127.0.0.1:0".into(), db: db.clone(), sign_in_failures_max: u32::MAX, ..qm_server::Config::default() };
    let running = qm_server::start(config, site(&db)).await.unwrap();
    let url = format!("http://{}", running.addr);
    let mut sessions = vec![];
    for _ in 0..CLIENTS {
        let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
        let v: serde_json::Value = client
            .post(format!("{url}/api/session"))
            .json(&json!({"badge": "A0", "password": PASSWORD}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        sessions.push((client, v["csrf"].as_str().unwrap().to_string()));
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooder = flood.then(|| {
        let (url, stop) = (url.clone(), stop.clone());
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut tick = tokio::time::interval(Duration::from_millis(5));
            let mut sent = 0u64;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                tick.tick().await;
                let (client, url) = (client.clone(), url.clone());
                tokio::spawn(async move {
                    let _ = client.post(format!("{url}/api/session")).json(&json!({"badge": "O1", "password": "wrong guess"})).send().await;
                });
                sent += 1;
            }
            sent
        })
    });
    let (lat, wall) = drive(&url, sessions, rounds).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    if let Some(f) = flooder {
        let sent = f.await.unwrap();
        println!("    (bad sign-ins sent meanwhile: {sent}, {:.0}/s)", sent as f64 / wall.as_secs_f64());
    }
    report(label, lat.len(), wall, lat);
    running.stop().await.unwrap();
}
