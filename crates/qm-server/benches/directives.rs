//! Benchmark (docs/directives.md, BENCHMARKS.md "Directives"):
//!
//! 1. What directives in force add to a movement's rule check: the same issue decided
//!    (`qm_core::decide`, no commit) on a 100-unit tree with none, and with 50 directives in force
//!    (25 from HQ over everything, 25 from the regions over theirs, with tightenings and tasks),
//!    side by side in one run, alternating rounds, best of 5.
//! 2. The compliance page of a directive over 1,000 units (HQ, 10 regions, 989 departments with an
//!    armory each, half of them acknowledged), rendered by the server over HTTP on loopback, and its
//!    JSON, beside the smallest signed-in request (`GET /api/me`) in the same run.
//!
//! Run: `cargo bench -p qm-server --bench directives`.

// The same allocator as the `qm` binary.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod common;

use common::*;
use qm_app::{Request, Site};
use qm_core::directives::Measure;
use qm_core::event::{CredentialKind, DirectiveAction};
use qm_core::*;
use serde_json::json;
use std::time::Instant;
use time::OffsetDateTime;

const PASSWORD: &str = "bench password";

fn run(site: &mut Site, reqs: Vec<Request>) {
    for chunk in reqs.chunks(2000) {
        for r in site.execute_batch(chunk.to_vec()) {
            r.unwrap();
        }
    }
}

/// A site with HQ, `regions` regions and `departments` departments spread over them, an armory in
/// each department, an HQ duty officer (`DO`) with a password, each region's duty officer (`RnDO`),
/// and in department D-1 an armorer (`ARM`), a member (`MEM`) and a lot of 5.56 mm in the armory.
fn tree(db: &str, regions: usize, departments: usize, at: OffsetDateTime) -> Site {
    let hq = id(UnitId::parse("HQ"));
    let mut site = new_site(db, at);
    let pin = qm_app::hash_secret("1234").unwrap();
    let person = |badge: &str, unit: &UnitId, role: Role| Command::RegisterPerson {
        badge: id(Badge::parse(badge)),
        name: badge.into(),
        unit: unit.clone(),
        roles: vec![role],
        pin_hash: pin.clone(),
    };
    let mut setup = vec![person("DO", &hq, Role::DutyOfficer)];
    setup.push(Command::SetCredential {
        badge: id(Badge::parse("DO")),
        kind: CredentialKind::Password,
        hash: qm_app::hash_secret(PASSWORD).unwrap(),
    });
    for r in 1..=regions {
        let unit = id(UnitId::parse(&format!("R-{r}")));
        setup.push(Command::CreateUnit { unit: unit.clone(), name: format!("Region {r}"), parent: hq.clone() });
        setup.push(person(&format!("R{r}DO"), &unit, Role::DutyOfficer));
    }
    for d in 1..=departments {
        let unit = id(UnitId::parse(&format!("D-{d}")));
        let region = id(UnitId::parse(&format!("R-{}", (d - 1) % regions + 1)));
        setup.push(Command::CreateUnit { unit: unit.clone(), name: format!("Department {d}"), parent: region });
        setup.push(Command::CreateLocation {
            location: id(LocationId::parse(&format!("ARM-{d}"))),
            name: format!("Armory {d}"),
            unit: unit.clone(),
            parent: None,
            kind: LocationKind::Armory,
            keeper: None,
            magazine: None,
        });
        setup.push(person(&format!("D{d}DO"), &unit, Role::DutyOfficer));
    }
    let d1 = id(UnitId::parse("D-1"));
    setup.push(person("ARM", &d1, Role::Armorer));
    setup.push(person("ARM2", &d1, Role::Armorer));
    setup.push(person("MEM", &d1, Role::Member));
    setup.push(Command::DefineItemType {
        item_type: id(ItemTypeId::parse("AMMO")),
        name: "5.56 mm".into(),
        kind: ItemKind::Ammunition,
        tracking: Tracking::Lot,
        unit_of_measure: "round".into(),
        neq_kg_per_unit: 0.0,
        un_code: Some("1.4S".into()),
        qualification: None,
    });
    let mut reqs: Vec<Request> = setup.into_iter().enumerate().map(|(i, c)| req("0001", c, format!("setup-{i}"), at)).collect();
    let receipt = Command::Receive {
        to: id(LocationId::parse("ARM-1")),
        from: "Factory".into(),
        document: "DN-1".into(),
        lines: vec![ReceiptLine {
            item_type: id(ItemTypeId::parse("AMMO")),
            serial: None,
            lot: Some(id(LotNo::parse("L-1"))),
            quantity: Quantity::units(1_000_000),
            manufactured: None,
            expires: None,
        }],
    };
    reqs.push(req("ARM", receipt, "receipt".into(), at));
    run(&mut site, reqs);
    site
}

fn directive(unit: &str, title: String, applies_to: Vec<UnitId>, measures: &[&str], at: OffsetDateTime) -> Command {
    Command::IssueDirective {
        unit: id(UnitId::parse(unit)),
        applies_to,
        title,
        text: "Tighten control for the period.".into(),
        posture: "high".into(),
        starts_at: None,
        ends_at: at + time::Duration::days(10),
        measures: measures.iter().map(|m| Measure::parse(m).unwrap()).collect(),
    }
}

/// Seconds for `n` decisions of the same issue on `state`.
fn decide_n(state: &State, n: usize, at: OffsetDateTime) -> f64 {
    let cmd = Command::Issue {
        to: id(Badge::parse("MEM")),
        from: Some(id(LocationId::parse("ARM-1"))),
        items: vec![ItemRef::Lot { lot: id(LotNo::parse("L-1")), quantity: Quantity::units(30) }],
    };
    let ctx = Ctx { token: None, actor: id(Badge::parse("ARM")), witness: Some(id(Badge::parse("ARM2"))), at, zone: Default::default() };
    let t = Instant::now();
    for _ in 0..n {
        std::hint::black_box(decide(state, &ctx, &cmd).unwrap());
    }
    t.elapsed().as_secs_f64()
}

fn rule_check() {
    let dir = tempfile::tempdir().unwrap();
    let at = OffsetDateTime::now_utc();
    let mut site = tree(&dir.path().join("rules.db").display().to_string(), 9, 90, at);
    let none = site.state().clone();
    let mut reqs = vec![];
    let measures =
        ["rounds-cap=500", "counter-not-keeper", "blind-counts", "issue-hours=00:00-24:00", "count=24h/7d", "transfer-review=24h/30d"];
    for k in 0..25 {
        reqs.push(req("DO", directive("HQ", format!("national {k}"), vec![], &measures[k % 3..k % 3 + 3], at), format!("hq-{k}"), at));
        let r = k % 9 + 1;
        reqs.push(req(
            &format!("R{r}DO"),
            directive(&format!("R-{r}"), format!("regional {k}"), vec![], &measures[..2], at),
            format!("r-{k}"),
            at,
        ));
    }
    run(&mut site, reqs);
    let in_force: Vec<DirectiveId> = site.state().directives.keys().cloned().collect();
    let over_d1 = qm_core::directives::in_force_over(site.state(), &id(UnitId::parse("D-1")), at).len();
    let briefings = in_force
        .iter()
        .filter(|d| qm_core::directives::in_force_over(site.state(), &id(UnitId::parse("D-1")), at).iter().any(|(k, _)| k == d))
        .enumerate()
        .map(|(i, d)| {
            let c = Command::UpdateDirective { directive: d.clone(), action: DirectiveAction::Brief { unit: id(UnitId::parse("D-1")) } };
            req("ARM", c, format!("brief-{i}"), at)
        })
        .collect();
    run(&mut site, briefings);
    let with = site.state().clone();
    let n = 20_000;
    let (mut best_none, mut best_with) = (f64::MAX, f64::MAX);
    for _ in 0..5 {
        best_none = best_none.min(decide_n(&none, n, at));
        best_with = best_with.min(decide_n(&with, n, at));
    }
    println!(
        "rule check of one issue (decide, no commit), 100-unit tree, {n} per round, best of 5 alternating:\n  \
         no directive:                                {:.2} µs\n  \
         50 directives in force ({over_d1} over the issuing unit): {:.2} µs   ratio {:.3} (target ≤ 1.10)",
        best_none / n as f64 * 1e6,
        best_with / n as f64 * 1e6,
        best_with / best_none
    );
}

fn compliance_page() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("pages.db").display().to_string();
    let at = OffsetDateTime::now_utc();
    let made = Instant::now();
    let mut site = tree(&db, 10, 989, at);
    run(
        &mut site,
        vec![req(
            "DO",
            directive("HQ", "Visit".into(), vec![], &["two-person", "count=24h", "transfer-review=24h/30d"], at),
            "visit".into(),
            at,
        )],
    );
    let d = site.state().directives.keys().next().unwrap().clone();
    let acks = (1..=989)
        .step_by(2)
        .map(|n| {
            let c = Command::UpdateDirective {
                directive: d.clone(),
                action: DirectiveAction::Acknowledge { unit: id(UnitId::parse(&format!("D-{n}"))) },
            };
            req(&format!("D{n}DO"), c, format!("ack-{n}"), at)
        })
        .collect();
    run(&mut site, acks);
    println!(
        "compliance page bench: directive {d} over {} units (made in {:.1} s)",
        qm_core::directives::units_concerned(site.state(), &site.state().directives[&d]).len(),
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
        for (label, path) in [("the page", format!("/directives/{d}")), ("the JSON", format!("/api/directives/{d}/compliance"))] {
            let (best, median, size) = time_get(&client, &url, &path, 20).await;
            println!(
                "  GET {path} ({label}): best {:.2} ms, median {:.2} ms, {} KiB; {:.1}x the baseline's median (target: within 100 ms)",
                best.as_secs_f64() * 1e3,
                median.as_secs_f64() * 1e3,
                size / 1024,
                median.as_secs_f64() / base_median.as_secs_f64()
            );
        }
        running.stop().await.unwrap();
    });
}

fn main() {
    rule_check();
    compliance_page();
}
