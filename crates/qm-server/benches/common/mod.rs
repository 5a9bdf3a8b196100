//! What the server's benchmarks share: a new site with its HQ and administrator, requests, and
//! timing GETs over HTTP. Each bench uses what it needs of it.
#![allow(dead_code)]

use qm_app::{Genesis, Request, Site};
use qm_core::*;
use std::time::{Duration, Instant};
use time::OffsetDateTime;

pub fn id<T, E: std::fmt::Debug>(r: Result<T, E>) -> T {
    r.unwrap()
}

pub fn req(actor: &str, command: Command, key: String, at: OffsetDateTime) -> Request {
    Request { token: None, actor: id(Badge::parse(actor)), witness: None, command, idempotency_key: key, at }
}

/// A new SQLite site "bench" at `db`: root unit HQ, administrator 0001 (PIN 1234).
pub fn new_site(db: &str, at: OffsetDateTime) -> Site {
    let key = qm_app::default_key_path(std::path::Path::new(db));
    let hq = id(UnitId::parse("HQ"));
    let g = Genesis {
        site: "bench",
        root_unit: &hq,
        root_unit_name: "HQ",
        admin: &id(Badge::parse("0001")),
        admin_name: "Admin",
        admin_pin: "1234",
        at,
    };
    Site::init(qm_backends::open_store, db, &key, &g).unwrap()
}

/// Best and median of `n` GETs of `path`, and the size of the last answer.
pub async fn time_get(client: &reqwest::Client, url: &str, path: &str, n: usize) -> (Duration, Duration, usize) {
    let mut times = vec![];
    let mut size = 0;
    for _ in 0..n {
        let t = Instant::now();
        let r = client.get(format!("{url}{path}")).send().await.unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        size = r.bytes().await.unwrap().len();
        times.push(t.elapsed());
    }
    times.sort();
    (times[0], times[n / 2], size)
}
