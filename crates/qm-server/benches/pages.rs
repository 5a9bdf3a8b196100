//! Benchmark: the incidents page of a unit with 10,000 closed and 200 open incidents, rendered by the
//! server over HTTP on loopback (the default view: those not closed; and all of them), beside the
//! smallest signed-in request (`GET /api/me`) in the same run.
//!
//! Run: `cargo bench -p qm-server --bench pages`.

// The same allocator as the `qm` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod common;

use common::*;
use qm_app::Site;
use qm_core::event::{CredentialKind, IncidentAction};
use qm_core::*;
use serde_json::json;
use std::time::Instant;
use time::OffsetDateTime;

const PASSWORD: &str = "bench password";
const CLOSED: usize = 10_000;
const OPEN: usize = 200;

/// A site with one department, its duty officer, and the incidents.
fn site(db: &str) -> Site {
    let at = OffsetDateTime::now_utc();
    let hq = id(UnitId::parse("HQ"));
    let mut site = new_site(db, at);
    let d1 = id(UnitId::parse("D-1"));
    let setup = vec![
        Command::CreateUnit { unit: d1.clone(), name: "D1".into(), parent: hq },
        Command::RegisterPerson {
            badge: id(Badge::parse("DO")),
            name: "Duty officer".into(),
            unit: d1.clone(),
            roles: vec![Role::DutyOfficer],
            pin_hash: qm_app::hash_secret("1234").unwrap(),
        },
        Command::SetCredential {
            badge: id(Badge::parse("DO")),
            kind: CredentialKind::Password,
            hash: qm_app::hash_secret(PASSWORD).unwrap(),
        },
    ];
    let reqs = setup.into_iter().enumerate().map(|(i, c)| req("0001", c, format!("setup-{i}"), at)).collect();
    for r in site.execute_batch(reqs) {
        r.unwrap();
    }
    let mut reqs = vec![];
    for k in 0..CLOSED + OPEN {
        let open = Command::OpenIncident {
            kind: IncidentKind::Other,
            severity: Severity::Medium,
            unit: d1.clone(),
            location: None,
            objects: Default::default(),
            summary: format!("bench incident {k}: armory door found unlocked at the round"),
            discovered_at: None,
        };
        reqs.push(req("DO", open, format!("open-{k}"), at));
        if k < CLOSED {
            let incident = id(IncidentId::parse(&format!("I-{}", k + 1)));
            let close =
                Command::UpdateIncident { incident, action: IncidentAction::Close { resolution: "lock replaced; nothing missing".into() } };
            reqs.push(req("DO", close, format!("close-{k}"), at));
        }
    }
    for chunk in reqs.chunks(1000) {
        for r in site.execute_batch(chunk.to_vec()) {
            r.unwrap();
        }
    }
    site
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pages.db").display().to_string();
    let made = Instant::now();
    let site = site(&db);
    println!(
        "incidents page bench: unit D-1 with {CLOSED} closed and {OPEN} open incidents (made in {:.1} s)",
        made.elapsed().as_secs_f64()
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let config = qm_server::Config { addr: "127.0.0.1:0".into(), db: db.clone(), ..qm_server::Config::default() };
        let running = qm_server::start(config, site).await.unwrap();
        let url = format!("http://{}", running.addr);
        let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
        let r = client.post(format!("{url}/api/session")).json(&json!({"badge": "DO", "password": PASSWORD})).send().await.unwrap();
        assert!(r.status().is_success());
        let (base, base_median, _) = time_get(&client, &url, "/api/me", 50).await;
        println!("  baseline GET /api/me: best {:.2} ms, median {:.2} ms", base.as_secs_f64() * 1e3, base_median.as_secs_f64() * 1e3);
        for (label, path, n) in [("not closed (the default view)", "/incidents", 30), ("all, closed too", "/incidents?state=all", 5)] {
            let (best, median, size) = time_get(&client, &url, path, n).await;
            println!(
                "  GET {path} ({label}): best {:.2} ms, median {:.2} ms, {} KiB; {:.1}x the baseline's median",
                best.as_secs_f64() * 1e3,
                median.as_secs_f64() * 1e3,
                size / 1024,
                median.as_secs_f64() / base_median.as_secs_f64()
            );
        }
        running.stop().await.unwrap();
    });
}
