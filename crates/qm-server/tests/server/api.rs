//! API tests over HTTP on loopback: errors, idempotency, limits, sign-in, tokens, scopes, and the
//! permission matrix (every role × every operation × inside/outside the actor's subtree).

use crate::util::*;
use qm_core::permissions::{role_allows, Op};
use serde_json::{json, Value};

async fn denial_recorded(admin: &Session, who: &str) -> bool {
    log(admin, 5)
        .await
        .iter()
        .any(|l| l["type"] == "access_denied" && l["summary"].as_str().unwrap_or("").starts_with(&format!("DENIED {who}")))
}

/// The request that exercises `op` for the actor `actor` (a D-11 person); `d` is the department
/// whose objects it touches ("11": inside the actor's subtree, "12": outside).
fn request(op: Op, d: &str, actor: &str, role_tag: &str, movement_seq: u64) -> (String, Value) {
    let tag = format!("{role_tag}-{d}");
    match op {
        Op::Setup => ("/api/units".into(), json!({"unit": format!("U-{tag}"), "name": "New unit", "parent": format!("D-{d}")})),
        Op::Receive => (
            "/api/receive".into(),
            json!({"to": format!("D{d}-ARM"), "from": "Factory", "document": "DN-9", "item_type": "AMMO", "items": [format!("N-{tag}:10")]}),
        ),
        Op::Issue => ("/api/issue".into(), json!({"to": format!("{d}10"), "from": format!("D{d}-ARM"), "items": [format!("A{d}:1")]})),
        Op::Return => ("/api/return".into(), json!({"from": format!("{d}10"), "to": format!("D{d}-ARM"), "items": [format!("A{d}:1")]})),
        Op::Move => ("/api/move".into(), json!({"from": format!("D{d}-ARM"), "to": format!("D{d}-RACK"), "items": [format!("A{d}:1")]})),
        Op::Transfer => {
            let other = if d == "11" { "12" } else { "11" };
            ("/api/transfers".into(), json!({"from": format!("D{d}-ARM"), "to_unit": format!("D-{other}"), "items": [format!("A{d}:1")]}))
        }
        Op::Expend => ("/api/expend".into(), json!({"from": format!("D{d}-ARM"), "document": "EX-1", "items": [format!("A{d}:1")]})),
        Op::Destroy => ("/api/destroy".into(), json!({"from": format!("D{d}-ARM"), "document": "DS-1", "items": [format!("A{d}:1")]})),
        Op::ReportLost => ("/api/report-loss".into(), json!({"from": format!("D{d}-ARM"), "items": [format!("A{d}:1")]})),
        Op::Recover => ("/api/recover".into(), json!({"to": format!("D{d}-ARM"), "items": [format!("A{d}:1")]})),
        Op::LotStatus => {
            (format!("/api/lots/LS{d}/status"), json!({"status": "suspended", "reason": "inspection", "unit": format!("D-{d}")}))
        }
        Op::Count => ("/api/counts".into(), json!({"location": format!("D{d}-ARM"), "cycle": true})),
        Op::Resolve => {
            (format!("/api/discrepancies/{}/resolve", if d == "11" { "D-1" } else { "D-2" }), json!({"approve": false, "note": "checked"}))
        }
        Op::Correct => ("/api/corrections".into(), json!({"seq": movement_seq, "reason": "typed twice"})),
        Op::Conditions => (
            format!("/api/locations/D{d}-MAG/readings"),
            json!({"readings": [{"at": "2026-01-01T10:00:00Z", "temperature_c": 18.5, "humidity_pct": 40.0}]}),
        ),
        Op::Incident => (
            "/api/incidents".into(),
            json!({"kind": "other", "severity": "low", "unit": format!("D-{d}"), "summary": format!("matrix {tag}")}),
        ),
        Op::Directive => (
            "/api/directives".into(),
            json!({"unit": format!("D-{d}"), "title": format!("matrix {tag}"), "text": "tighten control", "posture": "heightened",
                   "ends_at": "2099-01-01T00:00:00Z", "measures": []}),
        ),
        Op::Brief => ("/api/directives/DIR-9.none/brief".into(), json!({"unit": format!("D-{d}")})),
        Op::Roster => (
            format!("/api/access/D{d}-ARM/roster"),
            json!({"badge": format!("{d}10"), "role": "armorer", "hours": "always", "reason": format!("matrix {tag}")}),
        ),
        // The witness is the role's person of department `d`; the receipt is into D-11's magazine.
        Op::Witness => (
            "/api/receive".into(),
            json!({"to": "D11-MAG", "from": "Supplier", "document": "DN-X", "item_type": "TNT", "items": [format!("T-{tag}:5")],
                   "witness": {"badge": actor, "pin": PIN}}),
        ),
    }
}

#[tokio::test]
async fn permission_matrix_over_http() {
    let app = spawn_app().await;
    let admin = sign_in(&app, "0001").await;
    // The witness row is driven by a second magazine keeper of D-11 who receives explosives.
    let keeper = sign_in(&app, "1120").await;
    // Each correction needs an entry not corrected yet: the departments' armorers make one each time.
    let movers = [sign_in(&app, "1101").await, sign_in(&app, "1201").await];
    let (mut allowed, mut denied) = (0, 0);
    for (role, suffix) in ROLE_BADGES {
        let actor = format!("11{suffix}");
        let session = sign_in(&app, &actor).await;
        for op in Op::ALL {
            for d in ["11", "12"] {
                let inside = d == "11";
                let witness_badge = format!("{d}{suffix}");
                let mut seq = 0;
                if *op == Op::Correct {
                    let m = &movers[usize::from(!inside)];
                    let (s, v) = m
                        .post("/api/move", json!({"from": format!("D{d}-ARM"), "to": format!("D{d}-RACK"), "items": [format!("A{d}:1")]}))
                        .await;
                    assert_eq!(s, 200, "{v}");
                    seq = v["first_seq"].as_u64().unwrap();
                }
                let (path, body) = request(*op, d, &witness_badge, role.as_str(), seq);
                let (status, v) = if *op == Op::Witness { keeper.post(&path, body).await } else { session.post(&path, body).await };
                let who = if *op == Op::Witness { witness_badge.clone() } else { actor.clone() };
                let expect = role_allows(role, *op) && inside;
                let code = v["error"]["code"].as_str().unwrap_or("").to_string();
                let ctx = format!("{} × {} × {}: {status} {v}", role.as_str(), op.as_str(), if inside { "inside" } else { "outside" });
                if expect {
                    allowed += 1;
                    assert_ne!(status, 403, "{ctx}: expected allowed");
                    assert!(!code.starts_with("permission.") && code != "token.scope", "{ctx}: expected allowed");
                    if *op == Op::Witness {
                        assert_eq!(status, 200, "{ctx}");
                    }
                } else {
                    denied += 1;
                    assert_eq!(status, 403, "{ctx}: expected denied");
                    let rule = if *op == Op::Witness {
                        "two_person"
                    } else if !role_allows(role, *op) {
                        "permission.role"
                    } else {
                        "permission.subtree"
                    };
                    assert_eq!(code, rule, "{ctx}");
                    assert!(v["error"]["message"].as_str().unwrap().contains(&format!("(rule {rule})")), "{ctx}");
                    assert!(denial_recorded(&admin, &who).await, "{ctx}: the denial is not in the ledger");
                }
            }
        }
    }
    assert_eq!(allowed + denied, 6 * Op::ALL.len() * 2);
    assert!(allowed >= 20, "{allowed} allowed cases");
    app.stop().await;
}

#[tokio::test]
async fn writes_errors_idempotency_and_limits() {
    let app = spawn_app().await;
    let armorer = sign_in(&app, "1101").await;
    // OpenAPI document, generated from the handlers.
    let doc: Value = app.client.get(format!("{}/api/openapi.json", app.url)).send().await.unwrap().json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for p in ["/api/issue", "/api/return", "/api/stock", "/api/counts/{id}/close", "/api/tokens", "/api/log"] {
        assert!(doc["paths"][p].is_object(), "{p} missing from the OpenAPI document");
    }
    // An issue, retried with the same Idempotency-Key, appends once.
    let send = |key: &str| {
        armorer
            .client
            .post(format!("{}/api/issue", app.url))
            .header("x-csrf-token", &armorer.csrf)
            .header("idempotency-key", key)
            .json(&json!({"to": "1110", "items": ["R11-005"]}))
            .send()
    };
    let first: Value = send("issue-1").await.unwrap().json().await.unwrap();
    let again: Value = send("issue-1").await.unwrap().json().await.unwrap();
    assert_eq!(first["replayed"], false);
    assert_eq!(again["replayed"], true);
    assert_eq!(first["first_seq"], again["first_seq"]);
    // The same rifle to someone else: refused with the CLI's message.
    let (s, v) = armorer.post("/api/issue", json!({"to": "1120", "items": ["R11-005"]})).await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["code"], "custody.one_account");
    assert!(v["error"]["message"].as_str().unwrap().starts_with("refused: serial R11-005 is issued to badge 1110"), "{v}");
    // Unknown serial: 404; malformed: 422.
    let (s, v) = armorer.post("/api/issue", json!({"to": "1110", "items": ["NOPE-1"]})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("not_found")), "{v}");
    assert_eq!(v["error"]["message"], "not found: serial NOPE-1");
    let (s, v) = armorer.post("/api/issue", json!({"to": "a b", "items": []})).await;
    assert_eq!(s, 422, "{v}");
    let (s, _) = armorer.post("/api/issue", json!("not an object")).await;
    assert_eq!(s, 422);
    // Return it; then the body limit.
    let (s, v) = armorer.post("/api/return", json!({"from": "1110", "to": "D11-RACK", "items": ["R11-005"]})).await;
    assert_eq!(s, 200, "{v}");
    let big = "x".repeat(100 * 1024);
    let r = armorer
        .client
        .post(format!("{}/api/issue", app.url))
        .header("x-csrf-token", &armorer.csrf)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // A session without its CSRF token cannot write.
    let r = armorer.client.post(format!("{}/api/issue", app.url)).json(&json!({"to": "1110", "items": ["R11-006"]})).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // Without a session or token: 401.
    let r = client().get(format!("{}/api/stock", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // Witness needed for explosives: 409 two_person without one; with a wrong PIN 401.
    let (s, v) =
        armorer.post("/api/receive", json!({"to": "D11-MAG", "from": "S", "document": "D", "item_type": "TNT", "items": ["TX:5"]})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("two_person")), "{v}");
    let (s, v) = armorer.post("/api/receive", json!({"to": "D11-MAG", "from": "S", "document": "D", "item_type": "TNT", "items": ["TX:5"], "witness": {"badge": "1103", "pin": "0000"}})).await;
    assert_eq!(s, 401, "{v}");
    let (s, v) = armorer.post("/api/receive", json!({"to": "D11-MAG", "from": "S", "document": "D", "item_type": "TNT", "items": ["TX:5"], "witness": {"badge": "1103", "pin": PIN}})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["entries"][0]["witness"], "1103");
    // Security headers.
    let r = app.client.get(format!("{}/signin", app.url)).send().await.unwrap();
    let csp = r.headers()["content-security-policy"].to_str().unwrap().to_string();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    app.stop().await;
}

#[tokio::test]
async fn sign_in_is_rate_limited_and_recorded() {
    let app = spawn_app().await;
    let c = client();
    // Cookies are HttpOnly and SameSite=Strict.
    let r = c.post(format!("{}/api/session", app.url)).json(&json!({"badge": "1102", "password": PASSWORD})).send().await.unwrap();
    let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"), "{cookie}");
    for i in 0..5 {
        let r = c
            .post(format!("{}/api/session", app.url))
            .json(&json!({"badge": "1101", "password": format!("wrong-{i}")}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "auth.required");
    }
    let sign_in = |badge: &str, password: String| {
        let r = c.post(format!("{}/api/session", app.url)).json(&json!({"badge": badge, "password": password})).send();
        async move {
            let r = r.await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (s, v) = sign_in("1101", PASSWORD.into()).await;
    assert_eq!(s, 429, "even the right password waits after five failures");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("5 failed attempts for badge 1101") && msg.contains("others may sign in"), "{msg}");
    assert_eq!(v["error"]["code"], "auth.rate_limited");
    // One person's mistakes do not lock the others out of a shared terminal (the same address).
    assert_eq!(sign_in("0001", PASSWORD.into()).await.0, 200, "another badge from the same address");
    // A sweep over badges from one address does: 20 failures (4 × 5), then every badge waits.
    for badge in ["1102", "1103", "1104"] {
        for i in 0..5 {
            assert_eq!(sign_in(badge, format!("wrong-{i}")).await.0, 401);
        }
    }
    let (s, v) = sign_in("0002", PASSWORD.into()).await;
    let msg = v["error"]["message"].as_str().unwrap_or_default();
    assert!(s == 429 && msg.contains("20 failed attempts from this address"), "{s} {msg}");
    let App { running, db, dir, .. } = app;
    running.unwrap().stop().await.unwrap();
    let site = qm_app::Site::open(qm_backends::open_store, &db, None).unwrap();
    let lines = qm_app::query::log(&site, 20).unwrap();
    // Alike attempts gathered together are one entry that says how many ("(5 times, …)").
    let attempts = |summary: &str| -> usize {
        summary.split_once(" times, ").and_then(|(head, _)| head.rsplit_once('(')).and_then(|(_, n)| n.parse().ok()).unwrap_or(1)
    };
    let entries: Vec<_> = lines.iter().filter(|l| l.r#type == "access_denied" && l.summary.contains("sign_in")).collect();
    let denied: usize = entries.iter().map(|l| attempts(&l.summary)).sum();
    // The twenty failures, summarized per address; the rate-limited attempts wrote nothing.
    assert_eq!(denied, 20, "{lines:?}");
    drop(dir);
}

#[tokio::test]
async fn tokens_are_scoped_and_revocable_and_reads_are_filtered() {
    let app = spawn_app().await;
    let admin = sign_in(&app, "0001").await;
    let (s, v) =
        admin.post("/api/tokens", json!({"id": "kiosk-11", "label": "D-11 setup kiosk", "unit": "D-11", "operations": ["setup"]})).await;
    assert_eq!(s, 200, "{v}");
    let token = v["token"].as_str().unwrap().to_string();
    let bearer = |path: &str, body: Value| app.client.post(format!("{}{path}", app.url)).bearer_auth(&token).json(&body).send();
    // Inside the token's unit: done, recorded as its issuer. No CSRF token needed for Bearer.
    let r = bearer("/api/units", json!({"unit": "D-11-A", "name": "Annex", "parent": "D-11"})).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["entries"][0]["actor"], "0001");
    // Outside its unit, or an operation it does not list: 403 token.scope, recorded.
    let r = bearer("/api/units", json!({"unit": "D-12-A", "name": "Annex", "parent": "D-12"})).await.unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "token.scope");
    assert!(denial_recorded(&admin, "0001").await);
    let r = bearer("/api/issue", json!({"to": "1110", "items": ["R11-001"]})).await.unwrap();
    assert_eq!(r.status(), 403);
    // Revoked: 401.
    let (s, _) = admin.post("/api/tokens/kiosk-11/revoke", json!({"reason": "kiosk replaced"})).await;
    assert_eq!(s, 200);
    let r = bearer("/api/units", json!({"unit": "D-11-B", "name": "Annex B", "parent": "D-11"})).await.unwrap();
    assert_eq!(r.status(), 401);
    let r = app.client.get(format!("{}/api/stock", app.url)).bearer_auth("kiosk-11.wrong").send().await.unwrap();
    assert_eq!(r.status(), 401);

    // Reads: a D-11 armorer sees D-11 only; HQ sees everything.
    let armorer = sign_in(&app, "1101").await;
    let (s, v) = armorer.get("/api/stock").await;
    assert_eq!(s, 200);
    let units: Vec<&str> = v.as_array().unwrap().iter().map(|l| l["unit"].as_str().unwrap()).collect();
    assert!(!units.is_empty() && units.iter().all(|u| *u == "D-11"), "{units:?}");
    let (s, v) = armorer.get("/api/stock?unit=D-12").await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("permission.subtree")), "{v}");
    assert!(denial_recorded(&admin, "1101").await);
    let (s, _) = armorer.get("/api/where/R12-003").await;
    assert_eq!(s, 403);
    let (s, _) = armorer.get("/api/custody/1210").await;
    assert_eq!(s, 403);
    let (s, v) = armorer.get("/api/history/R11-003").await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = admin.get("/api/stock").await;
    assert_eq!(s, 200);
    assert!(v.as_array().unwrap().iter().any(|l| l["unit"] == "D-12"));
    let (s, v) = armorer.get("/api/discrepancies").await;
    assert_eq!(s, 200);
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
    app.stop().await;
}

#[tokio::test]
async fn shutdown_finishes_in_flight_commits() {
    let app = spawn_app().await;
    let armorer = std::sync::Arc::new(sign_in(&app, "1101").await);
    let before = {
        let site = qm_app::Site::open(qm_backends::open_store, &app.db, None).unwrap();
        qm_app::query::log(&site, 500).unwrap().iter().filter(|l| l.summary.starts_with("move:") && l.actor == "1101").count()
    };
    let mut tasks = vec![];
    for i in 0..40 {
        let a = armorer.clone();
        tasks.push(tokio::spawn(async move {
            a.post("/api/move", json!({"from": "D11-ARM", "to": "D11-RACK", "items": [format!("A11:{}", i + 1)]})).await
        }));
    }
    // Give the requests a moment to arrive, then stop while they are being committed.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let App { running, db, dir, .. } = app;
    running.unwrap().stop().await.unwrap();
    let mut ok = 0;
    for t in tasks {
        if let Ok((200, _)) = t.await {
            ok += 1;
        }
    }
    // Every request answered 200 is durable; reopening the site finds each of them.
    let site = qm_app::Site::open(qm_backends::open_store, &db, None).unwrap();
    let moves = qm_app::query::log(&site, 200).unwrap().iter().filter(|l| l.summary.starts_with("move:") && l.actor == "1101").count();
    assert_eq!(moves - before, ok, "answered {ok}, found {}", moves - before);
    let report = qm_app::verify::verify(site.store(), &qm_app::verify::VerifyOptions::default());
    assert!(report.ok());
    drop(dir);
}

/// The fixture, plus explosives in D-11's magazine at 92 % of its licence (a lot expiring in 30
/// days) and six hours of temperature readings there with a two-hour excursion.
async fn spawn_safety_app() -> App {
    use qm_core::*;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("site.db").display().to_string();
    let site = tokio::task::spawn_blocking({
        let db = db.clone();
        move || {
            let mut site = fixture(&db);
            let now = time::OffsetDateTime::now_utc();
            let b = |s: &str| Badge::parse(s).unwrap();
            let mag = LocationId::parse("D11-MAG").unwrap();
            site.execute(qm_app::Request {
                token: None,
                actor: b("1102"),
                witness: Some(b("1120")),
                command: Command::Receive {
                    to: mag.clone(),
                    from: "Explosives Supply Co.".into(),
                    document: "DN-TNT".into(),
                    lines: vec![ReceiptLine {
                        item_type: ItemTypeId::parse("TNT").unwrap(),
                        serial: None,
                        lot: Some(LotNo::parse("T11").unwrap()),
                        quantity: Quantity::units(4600),
                        manufactured: None,
                        expires: Some(now.date() + time::Duration::days(30)),
                    }],
                },
                idempotency_key: "tnt-11".into(),
                at: now - time::Duration::hours(1),
            })
            .unwrap();
            let readings = (0..=24)
                .map(|i| qm_core::conditions::Reading {
                    at: now - time::Duration::minutes(6 * 60 - 15 * i),
                    temperature_c: Some(if (8..=16).contains(&i) { 45.0 + i as f64 / 4.0 } else { 21.0 + (i % 3) as f64 }),
                    humidity_pct: Some(50.0),
                })
                .collect();
            site.record_readings(&b("1102"), &mag, readings, "readings-11", now).unwrap();
            site
        }
    })
    .await
    .unwrap();
    serve(dir, db, site).await
}

#[tokio::test]
async fn safety_reads_are_scoped() {
    let app = spawn_safety_app().await;
    let admin = sign_in(&app, "0001").await;
    let armorer = sign_in(&app, "1101").await;
    let doc: Value = app.client.get(format!("{}/api/openapi.json", app.url)).send().await.unwrap().json().await.unwrap();
    for p in [
        "/api/magazines",
        "/api/lots",
        "/api/locations/{id}/conditions",
        "/api/locations/{id}/conditions.svg",
        "/api/magazines/{id}/dsmt",
        "/api/magazines/{id}/dsmt.csv",
        "/api/qd",
    ] {
        assert!(doc["paths"][p]["get"].is_object(), "{p} missing from the OpenAPI document");
    }
    let today = time::OffsetDateTime::now_utc().date();
    // Every route: 200 inside the subtree, 403 outside it (and the refusal recorded).
    let routes = [
        ("/api/magazines", "/api/magazines?unit=D-12"),
        ("/api/lots", "/api/lots?unit=D-12"),
        ("/api/lots?filter=all", "/api/lots?filter=suspended&unit=NORTH"),
        ("/api/locations/D11-MAG/conditions", "/api/locations/D12-MAG/conditions"),
        ("/api/locations/D11-MAG/conditions.svg", "/api/locations/D12-MAG/conditions.svg"),
        ("/api/magazines/D11-MAG/dsmt", "/api/magazines/D12-MAG/dsmt"),
        ("/api/magazines/D11-MAG/dsmt.csv", "/api/magazines/D12-MAG/dsmt.csv"),
    ];
    for (inside, outside) in routes {
        let r = armorer.client.get(format!("{}{inside}", app.url)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{inside}: {}", r.text().await.unwrap());
        let (s, v) = armorer.get(outside).await;
        assert_eq!((s, v["error"]["code"].as_str()), (403, Some("permission.subtree")), "{outside}: {v}");
        assert!(denial_recorded(&admin, "1101").await, "{outside}");
    }
    // What they return.
    let (_, v) = armorer.get("/api/magazines").await;
    let mags = v.as_array().unwrap();
    assert_eq!(mags.len(), 1, "{v}");
    assert_eq!(mags[0]["location"], "D11-MAG");
    assert!(mags[0]["warning"].as_str().unwrap().contains("within 10%"), "{v}");
    let (_, v) = admin.get("/api/magazines").await;
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");
    let (_, v) = armorer.get("/api/lots?days=90").await;
    assert!(v.as_array().unwrap().iter().any(|l| l["lot"] == "T11" && l["held"][0]["account"] == "location:D11-MAG"), "{v}");
    let (s, v) = armorer.get("/api/lots?filter=sideways").await;
    assert_eq!(s, 422, "{v}");
    let (_, v) = armorer.get(&format!("/api/locations/D11-MAG/conditions?since={}&until={today}", today - time::Duration::days(2))).await;
    let x = &v["excursions"][0];
    assert_eq!(x["measure"], "temperature", "{v}");
    assert!(x["peak"].as_f64().unwrap() >= 45.0 && x["lots_exposed"][0] == "T11", "{v}");
    let r = armorer.client.get(format!("{}/api/locations/D11-MAG/conditions.svg", app.url)).send().await.unwrap();
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    assert!(r.text().await.unwrap().contains("<svg"));
    let (_, v) = armorer.get(&format!("/api/magazines/D11-MAG/dsmt?date={today}")).await;
    assert_eq!(v["magazine"], "D11-MAG", "{v}");
    let r = armorer.client.get(format!("{}/api/magazines/D11-MAG/dsmt.csv?date={today}", app.url)).send().await.unwrap();
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = r.text().await.unwrap();
    assert_eq!(
        csv.lines().next(),
        Some("magazine,date,item_type,item_name,lot,unit_of_measure,opening,received,removed,closing,received_by,removed_by"),
        "{csv}"
    );
    let (s, _) = armorer.get("/api/magazines/D11-ARM/dsmt").await;
    assert_eq!(s, 422, "the daily summary is per magazine");
    let (s, _) = armorer.get("/api/locations/NOWHERE/conditions").await;
    assert_eq!(s, 404);
    let (s, v) = armorer.get("/api/qd?hd=1.1&neq_kg=500").await;
    assert_eq!(s, 200, "{v}");
    assert!(!v.as_array().unwrap().is_empty());
    let (s, v) = armorer.get("/api/qd?hd=1.1&distances=inhabited_building=180").await;
    assert_eq!(s, 200, "{v}");
    // The pages render for the armorer; the dashboard counts D-11's magazine near its limit.
    for page in ["/magazines", "/lots", "/conditions?location=D11-MAG", "/dsmt?magazine=D11-MAG"] {
        let r = armorer.client.get(format!("{}{page}", app.url)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{page}");
    }
    let r = armorer.client.get(format!("{}/conditions?location=D12-MAG", app.url)).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let html = admin.client.get(format!("{}/", app.url)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("Magazines near a limit") && html.contains("href=\"/magazines?unit=D-11\""), "{html}");
    app.stop().await;
}

#[tokio::test]
async fn a_badge_is_locked_after_five_failed_passwords_even_with_the_limiter_set_high() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("site.db").display().to_string();
    let site = tokio::task::spawn_blocking({
        let db = db.clone();
        move || fixture(&db)
    })
    .await
    .unwrap();
    // The address limiter off: the per-badge lockout of the site is what answers.
    let config =
        qm_server::Config { addr: "127.0.0.1:0".into(), db: db.clone(), sign_in_failures_max: 1000, ..qm_server::Config::default() };
    let running = qm_server::start(config, site).await.unwrap();
    let url = format!("http://{}", running.addr);
    let c = client();
    for i in 0..5 {
        let r =
            c.post(format!("{url}/api/session")).json(&json!({"badge": "1102", "password": format!("wrong-{i}")})).send().await.unwrap();
        assert_eq!(r.status(), 401, "attempt {i}");
    }
    let r = c.post(format!("{url}/api/session")).json(&json!({"badge": "1102", "password": PASSWORD})).send().await.unwrap();
    assert_eq!(r.status(), 429, "a locked badge is refused even with the right password");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "auth.locked", "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("badge 1102 is locked"), "{v}");
    // The lock is the badge's: another badge signs in from the same address.
    let r = c.post(format!("{url}/api/session")).json(&json!({"badge": "1101", "password": PASSWORD})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    running.stop().await.unwrap();
    let site = qm_app::Site::open(qm_backends::open_store, &db, None).unwrap();
    let lines = qm_app::query::log(&site, 20).unwrap();
    assert!(lines.iter().any(|l| l.r#type == "access_denied" && l.summary.contains("badge locked")), "{lines:?}");
    drop(dir);
}

/// An API token's operations and unit are held by deciding itself, so they bind every route that
/// acts, imports included: a root token that may only count imports nothing.
#[tokio::test]
async fn a_token_that_may_only_count_cannot_import_lots_or_people() {
    let app = spawn_app().await;
    let admin = sign_in(&app, "0001").await;
    let (s, v) =
        admin.post("/api/tokens", json!({"id": "counter-hq", "label": "HQ count kiosk", "unit": "HQ", "operations": ["count"]})).await;
    assert_eq!(s, 200, "{v}");
    let token = v["token"].as_str().unwrap().to_string();
    let before = log(&admin, 1).await[0]["seq"].as_u64().unwrap();
    let csv = |kind: &str, body: &str| {
        app.client
            .post(format!("{}/api/import/{kind}", app.url))
            .bearer_auth(&token)
            .header("content-type", "text/csv")
            .body(body.to_string())
            .send()
    };
    let lots = "lot,item_type,quantity,location,manufactured,expires,supplier,document\nL-777,AMMO,777,D11-ARM,,,Depot,DN-1\n";
    let people = "badge,name,unit,roles,pin,qualifications\n7777,Intruder,D-11,armorer,7777,\n";
    for (kind, body) in [("lots", lots), ("people", people)] {
        let r = csv(kind, body).await.unwrap();
        assert_eq!(r.status(), 403, "{kind}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "token.scope", "{kind}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("API token counter-hq may not"), "{v}");
    }
    // Nothing was added; each refusal is a denied attempt in the ledger, recorded as the issuer's.
    let (_, stock) = admin.get("/api/stock?lot=L-777").await;
    assert!(!stock.to_string().contains("L-777"), "{stock}");
    let (s, _) = admin.get("/api/custody/7777").await;
    assert_ne!(s, 200, "the imported person must not exist");
    let after: Vec<Value> = log(&admin, 20).await.into_iter().filter(|l| l["seq"].as_u64().unwrap() > before).collect();
    // Each denial, with the incident it opens by itself (an unauthorized access attempt) recorded in
    // the same entry: nothing else.
    assert!(after.iter().all(|l| l["type"] == "access_denied"), "{after:?}");
    assert!(after.iter().any(|l| l["summary"].as_str().unwrap().contains("unauthorized_access, unit HQ) opened by itself")), "{after:?}");
    assert!(after.iter().filter(|l| l["summary"].as_str().unwrap().contains("counter-hq")).count() >= 2, "{after:?}");
    app.stop().await;
}

/// A witness's role and unit are checked before their PIN is: nobody can test another unit's PINs
/// through the witness field, and wrong witness PINs lock that witness only, never the caller.
#[tokio::test]
async fn a_witness_is_judged_eligible_before_their_pin_is_compared() {
    let app = spawn_app().await;
    let armorer = sign_in(&app, "1101").await;
    let receive = |w: &str, pin: &str| json!({"to": "D11-MAG", "from": "S", "document": "D", "item_type": "TNT", "items": ["TX:5"], "witness": {"badge": w, "pin": pin}});
    // D-12's duty officer, right PIN or wrong: the same refusal, and their PIN is never compared.
    for pin in [PIN, "0000", "9999", "1111", "2222", "3333", "4444"] {
        let (s, v) = armorer.post("/api/receive", receive("1203", pin)).await;
        assert_eq!((s, v["error"]["code"].as_str()), (403, Some("two_person")), "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("badge 1203 is not authorized to witness at unit D-11"), "{v}");
    }
    // Not locked: seven wrong PINs compared would have locked the badge (five lock it).
    let d12 = sign_in(&app, "1203").await;
    assert_eq!(d12.get("/api/me").await.0, 200);
    // A role that does not witness (D-11's logistics officer), and the actor as their own witness.
    let (s, v) = armorer.post("/api/receive", receive("1105", PIN)).await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("two_person")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("no role of theirs allows it"), "{v}");
    let (s, v) = armorer.post("/api/receive", receive("1101", PIN)).await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("two_person")), "{v}");
    // Wrong PINs of D-11's duty officer lock that witness…
    for _ in 0..5 {
        let (s, _) = armorer.post("/api/receive", receive("1103", "0000")).await;
        assert!(s == 401 || s == 429, "{s}");
    }
    let (s, v) = armorer.post("/api/receive", receive("1103", PIN)).await;
    assert!(s == 401 || s == 429, "a locked witness stays refused with the right PIN: {s} {v}");
    // …and nobody else: the armorer still works, and another witness of D-11 witnesses.
    let (s, v) = armorer.post("/api/issue", json!({"to": "1110", "items": ["R11-001"]})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = armorer.post("/api/receive", receive("1120", PIN)).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["entries"][0]["witness"], "1120");
    app.stop().await;
}
