//! `cargo bench -p qm-demo --bench incidents`: what opening incidents by themselves adds to the
//! movements that trigger them (a reported loss opens one), beside an in-run baseline — the same
//! losses on a site whose rules open no incident — one command per commit as at the counter, and in
//! batches of 100 (250 losses per measurement: the demo's one lot of 5.56 mm lasts nine); and the incidents page's data for a unit with 10,000 closed and 200 open ones.

// The same allocator as the `qm` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use qm_app::{Request, Site};
use qm_core::event::{IncidentAction, IncidentObjects};
use qm_core::incidents::IncidentRules;
use qm_core::*;
use std::time::Instant;
use time::{Duration, OffsetDateTime};

fn demo(dir: &tempfile::TempDir, name: &str, incidents_open: bool) -> Site {
    let db = dir.path().join(format!("{name}.db"));
    let day = qm_demo::demo::last_day(OffsetDateTime::now_utc());
    let (mut site, _) = qm_demo::demo::create(db.to_str().unwrap(), &dir.path().join(format!("{name}.key")), day).unwrap();
    if !incidents_open {
        let mut rules = IncidentRules::default_rules();
        rules.open.clear();
        site.set_incident_rules(rules);
    }
    site
}

fn loss(n: usize, at: OffsetDateTime) -> Request {
    let cmd = Command::ReportLost {
        from: Account::Location(LocationId::parse("D11-AMMO").unwrap()),
        items: vec![ItemRef::Lot { lot: LotNo::parse("L556-2024-07").unwrap(), quantity: Quantity::units(1) }],
        document: None,
    };
    Request::new(Badge::parse("0417").unwrap(), cmd, format!("bench-loss-{n}"), at)
}

/// Seconds for `count` losses on `site`, `batch` per commit: through the pipelined writer thread as
/// the server commits (`submit`, then `finish`: durable before the answer), or in place as the CLI.
fn losses(site: &mut Site, from: usize, count: usize, batch: usize, pipelined: bool) -> f64 {
    let at = site.state().last_at.unwrap_or_else(OffsetDateTime::now_utc) + Duration::seconds(1);
    if pipelined {
        site.start_writer().unwrap();
    } else {
        site.stop_writer();
    }
    let t = Instant::now();
    for chunk in (from..from + count).collect::<Vec<_>>().chunks(batch) {
        let reqs = chunk.iter().map(|n| loss(*n, at)).collect();
        let results = if pipelined {
            let ticket = site.submit(reqs);
            site.finish(ticket)
        } else {
            site.execute_batch(reqs)
        };
        for r in results {
            r.unwrap();
        }
    }
    t.elapsed().as_secs_f64()
}

fn main() {
    let n = std::env::var("QM_BENCH_LOSSES").ok().and_then(|v| v.parse().ok()).unwrap_or(250usize);
    let dir = tempfile::tempdir().unwrap();
    let mut with = demo(&dir, "with", true);
    let mut without = demo(&dir, "without", false);
    println!("incidents bench: {n} reported losses per measurement, best of 3 rounds, alternating");
    let modes = [
        ("one command per commit, through the server's pipelined writer (the counter)", 1usize, true),
        ("one command per commit, committed in place (the CLI)", 1, false),
        ("batches of 100, through the pipelined writer", 100, true),
    ];
    for (m, (label, batch, pipelined)) in modes.into_iter().enumerate() {
        let (mut best_with, mut best_without) = (f64::MAX, f64::MAX);
        for round in 0..3 {
            let from = (m * 3 + round) * n;
            best_without = best_without.min(losses(&mut without, from, n, batch, pipelined));
            best_with = best_with.min(losses(&mut with, from, n, batch, pipelined));
        }
        println!(
            "  {label}: with incidents {:.1} µs/loss, without (baseline) {:.1} µs/loss, ratio {:.3}",
            best_with * 1e6 / n as f64,
            best_without * 1e6 / n as f64,
            best_with / best_without
        );
    }
    with.stop_writer();
    without.stop_writer();
    // The incidents page's data: 10,000 closed and 200 open incidents in D-11 (on the baseline
    // site, whose losses above opened none; the demo's own two are acknowledged).
    let mut state = without.state().clone();
    let at = state.last_at.unwrap_or_else(OffsetDateTime::now_utc);
    let mut seq = state.next_seq;
    let mut put = |state: &mut State, event: Event| {
        let env = Envelope {
            site: state.site.as_ref().unwrap().site.clone(),
            seq,
            at,
            actor: Badge::parse("0417").unwrap(),
            witness: None,
            token: None,
            idempotency_key: format!("p{seq}"),
            request: None,
            corrects: None,
            event,
            opens: vec![],
        };
        state.apply(&env).unwrap();
        seq += 1;
    };
    let first = state.incidents.len();
    for k in 0..10_200 {
        let incident = IncidentId::parse(&format!("I-{}", first + k + 1)).unwrap();
        let objects = IncidentObjects { lots: vec![LotNo::parse("L9-2025-02").unwrap()], ..Default::default() };
        let opened = Event::IncidentOpened {
            incident: incident.clone(),
            kind: IncidentKind::Loss,
            severity: Severity::High,
            unit: UnitId::parse("D-11").unwrap(),
            location: None,
            objects,
            summary: format!("bench incident {k}"),
            discovered_at: at,
            rule: None,
        };
        put(&mut state, opened);
        if k >= 200 {
            put(&mut state, Event::IncidentUpdated { incident, action: IncidentAction::Close { resolution: "settled".into() } });
        }
    }
    let f = qm_app::incidents::IncidentFilter { open_only: true, unit: Some(UnitId::parse("D-11").unwrap()), kind: None };
    let mut best = f64::MAX;
    let mut shown = 0;
    for _ in 0..5 {
        let t = Instant::now();
        let list = qm_app::incidents::list(&state, &f, at, &|_| true);
        best = best.min(t.elapsed().as_secs_f64());
        shown = list.len();
    }
    let hq_state = &state;
    let scan = Instant::now();
    let all = hq_state.incidents.values().filter(|i| hq_state.unit_within(&i.unit, &UnitId::parse("D-11").unwrap())).count();
    println!(
        "  incidents page data (D-11: {} incidents, {shown} not closed, clocks computed): {:.2} ms (baseline: one pass over them, {:.2} ms)",
        all,
        best * 1e3,
        scan.elapsed().as_secs_f64() * 1e3
    );
}
