//! The outside probe's findings (issue "Security hardening"), kept as regression tests over HTTP on
//! loopback: each case failed on the code the probe tried.

use crate::util::*;
use serde_json::{json, Value};

/// The probe's case: a `setup`-only token minted one allowed to `issue`, which then issued a rifle.
#[tokio::test]
async fn a_token_cannot_mint_a_token_wider_than_itself() {
    let app = spawn_app().await;
    let admin = sign_in(&app, "0001").await;
    let (s, v) = admin.post("/api/tokens", json!({"id": "prov-hq", "label": "provisioning", "unit": "HQ", "operations": ["setup"]})).await;
    assert_eq!(s, 200, "{v}");
    let token = v["token"].as_str().unwrap().to_string();
    let mint = |id: &str, ops: Value| {
        app.client
            .post(format!("{}/api/tokens", app.url))
            .bearer_auth(&token)
            .json(&json!({"id": id, "label": "scanner", "unit": "D-11", "operations": ops}))
            .send()
    };
    let r = mint("wide", json!(["setup", "issue"])).await.unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "token.scope", "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("may not issue token wide allowed to issue"), "{v}");
    // As narrow as itself, it may.
    let r = mint("narrow", json!(["setup"])).await.unwrap();
    assert_eq!(r.status(), 200);
    app.stop().await;
}

/// A misspelt key tightened nothing and was silently ignored; every request body refuses unknown keys.
#[tokio::test]
async fn a_request_body_with_an_unknown_key_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    let admin = sign_in(&app, "0001").await;
    let before = log(&admin, 1).await[0]["seq"].as_u64().unwrap();
    let (s, v) = admin.post("/api/policies/D-11", json!({"two_person_all_movement": true})).await;
    assert_eq!(s, 422, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("unknown field `two_person_all_movement`"), "{v}");
    let (s, v) = admin.post("/api/issue", json!({"to": "1001", "items": ["R-1041"], "form": "x"})).await;
    assert_eq!(s, 422, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("unknown field `form`"), "{v}");
    assert_eq!(log(&admin, 1).await[0]["seq"].as_u64().unwrap(), before, "nothing was written");
    app.stop().await;
}

/// 2^63 once wrapped through an `as i64` cast and read as an earlier entry.
#[tokio::test]
async fn a_sequence_number_beyond_the_ledger_is_not_found() {
    let app = spawn_app().await;
    let admin = sign_in(&app, "0001").await;
    for seq in ["9223372036854775808", "18446744073709551615", "99999"] {
        let (s, v) = admin.get(&format!("/api/proofs/inclusion/{seq}")).await;
        assert_eq!(s, 404, "proof of {seq}: {v}");
        assert_eq!(v["error"]["code"], "not_found", "{v}");
        let (s, v) = admin.post("/api/corrections", json!({"seq": seq.parse::<u64>().unwrap(), "reason": "probe"})).await;
        assert_eq!(s, 404, "correction of {seq}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(&format!("entry {seq}")), "{v}");
    }
    app.stop().await;
}

/// The counter page's preview, posted as a form by a signed-in session.
async fn counter_preview(s: &Session, badge: &str, items: &str) -> String {
    let form = [("csrf", s.csrf.as_str()), ("mode", "issue"), ("badge", badge), ("location", ""), ("items", items)];
    let body: Vec<String> = form.iter().map(|(k, v)| format!("{k}={}", qm_server::web::urlencode(v))).collect();
    let r = s
        .client
        .post(format!("{}/counter/preview", s.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.join("&"))
        .send()
        .await
        .unwrap();
    r.text().await.unwrap()
}

/// The counter preview showed another department's person's holdings to a member with no counter role.
#[tokio::test]
async fn the_counter_preview_shows_holdings_only_to_who_may_serve_that_person() {
    let app = spawn_app().await;
    // 1110 (D-11) and 1210 (D-12) each hold 1,000 rounds of their department's lot.
    let inspector = sign_in(&app, "1104").await;
    let armorer = sign_in(&app, "1101").await;
    for (who, badge, lot) in [(&inspector, "1210", "A12"), (&inspector, "1110", "A11"), (&armorer, "1210", "A12")] {
        let page = counter_preview(who, badge, "R11-005").await;
        assert!(!page.contains("Holds now") && !page.contains(lot), "holdings of {badge} shown: {page}");
        assert!(!page.contains("Person 1210"), "the name of another department's person: {page}");
    }
    // Who may serve the person sees what they hold.
    let page = counter_preview(&armorer, "1110", "R11-005").await;
    assert!(page.contains("Holds now") && page.contains("lot A11"), "{page}");
    app.stop().await;
}

/// A custody refusal named who holds a serial in another department ("issued to badge 1210
/// (Officer …)"); authority is judged before custody.
#[tokio::test]
async fn a_custody_refusal_names_nobody_outside_the_subtree() {
    let app = spawn_app().await;
    let d12 = sign_in(&app, "1201").await;
    let (s, v) = d12.post("/api/issue", json!({"to": "1210", "items": ["R12-001"]})).await;
    assert_eq!(s, 200, "{v}");
    let d11 = sign_in(&app, "1101").await;
    let attempts = [
        ("/api/issue", json!({"to": "1110", "items": ["R12-001"]})),
        ("/api/return", json!({"from": "1110", "to": "D11-RACK", "items": ["R12-001"]})),
        ("/api/move", json!({"from": "D11-RACK", "to": "D11-ARM", "items": ["R12-001"]})),
    ];
    for (path, body) in attempts {
        let (s, v) = d11.post(path, body).await;
        assert!(s == 403 || s == 409, "{path}: {s} {v}");
        let msg = v["error"]["message"].as_str().unwrap();
        assert!(!msg.contains("1210") && !msg.contains("D12-") && !msg.contains("return it first"), "{path}: {msg}");
    }
    // Someone without the role to issue learns nothing of where a serial is: the role is refused first.
    let inspector = sign_in(&app, "1104").await;
    let (s, v) = inspector.post("/api/issue", json!({"to": "1110", "items": ["R12-001"]})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("permission.role")), "{v}");
    // Inside the subtree the refusal still gives the facts.
    let (s, v) = d12.post("/api/issue", json!({"to": "1201", "items": ["R12-001"]})).await;
    assert_eq!(s, 409, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("is issued to badge 1210 (Person 1210)"), "{v}");
    app.stop().await;
}

/// A shared lot's history showed other departments' receipts, issues and counts.
#[tokio::test]
async fn a_shared_lots_history_shows_each_department_only_its_own_entries() {
    let app = spawn_app().await;
    let (l11, l12) = (sign_in(&app, "1105").await, sign_in(&app, "1205").await);
    let (s, v) = l11.post("/api/transfers", json!({"from": "D11-ARM", "to_unit": "D-12", "document": "TR-7", "items": ["A11:50"]})).await;
    assert_eq!(s, 200, "{v}");
    let t = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|e| e["summary"].as_str().and_then(|x| x.split_whitespace().find(|w| w.starts_with("T-"))))
        .unwrap()
        .trim_end_matches([',', ':', ';'])
        .to_string();
    let (s, v) = l12.post(&format!("/api/transfers/{t}/receive"), json!({"to": "D12-ARM", "items": ["A11:50"]})).await;
    assert_eq!(s, 200, "{v}");
    let d12 = sign_in(&app, "1204").await;
    let (s, v) = d12.get("/api/history/A11").await;
    assert_eq!(s, 200, "{v}");
    let lines = v.as_array().unwrap();
    let text = serde_json::to_string(lines).unwrap();
    assert!(text.contains("D12-ARM"), "D-12 sees its own receipt of the transfer: {text}");
    for hidden in ["DN-2", "1110", "count_recorded", "lost"] {
        assert!(!text.contains(hidden), "D-12 sees D-11's {hidden}: {text}");
    }
    // D-11 still sees its whole history of the lot, HQ everything.
    let (_, v) = sign_in(&app, "1104").await.get("/api/history/A11").await;
    let d11 = serde_json::to_string(&v).unwrap();
    assert!(d11.contains("DN-2") && d11.contains("1110"), "{d11}");
    let (_, v) = sign_in(&app, "0001").await.get("/api/history/A11").await;
    assert!(v.as_array().unwrap().len() > lines.len(), "HQ sees more than D-12");
    app.stop().await;
}

/// A write with an Idempotency-Key, by a signed-in session.
async fn keyed(s: &Session, key: &str, path: &str, body: Value) -> (u16, Value) {
    s.post_raw(path, &[("content-type", "application/json"), ("idempotency-key", key)], body.to_string()).await
}

/// A second issue of a different rifle, a destroy and another department's request all came back
/// "replayed" with the first entry: a key is bound to its caller and its request.
#[tokio::test]
async fn an_idempotency_key_is_answered_only_to_its_own_caller_and_request() {
    let app = spawn_app().await;
    let armorer = sign_in(&app, "1101").await;
    let issue = json!({"to": "1110", "items": ["R11-002"]});
    let (s, first) = keyed(&armorer, "shift-42", "/api/issue", issue.clone()).await;
    assert_eq!(s, 200, "{first}");
    // The same request again: the first result, nothing appended.
    let (s, again) = keyed(&armorer, "shift-42", "/api/issue", issue).await;
    assert_eq!((s, &again["replayed"], &again["first_seq"]), (200, &json!(true), &first["first_seq"]), "{again}");
    let size = log(&armorer, 1).await[0]["seq"].as_u64().unwrap();
    let others = [
        (&armorer, "/api/issue", json!({"to": "1110", "items": ["R11-003"]})),
        (&armorer, "/api/expend", json!({"from": "D11-ARM", "items": ["A11:1"], "document": "range day"})),
    ];
    for (who, path, body) in others {
        let (s, v) = keyed(who, "shift-42", path, body).await;
        assert_eq!((s, v["error"]["code"].as_str()), (409, Some("idempotency.mismatch")), "{path}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("idempotency key shift-42 was already used"), "{v}");
        assert!(v.get("entries").is_none(), "no entries of the first request are returned: {v}");
    }
    // Another caller with the very same body, from another department or the same one.
    for badge in ["1201", "1120"] {
        let other = sign_in(&app, badge).await;
        let (s, v) = keyed(&other, "shift-42", "/api/issue", json!({"to": "1110", "items": ["R11-002"]})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (409, Some("idempotency.mismatch")), "{badge}: {v}");
    }
    assert_eq!(log(&armorer, 1).await[0]["seq"].as_u64().unwrap(), size, "nothing was appended");
    app.stop().await;
}

/// 105,000 `GET /signin` in 75 s filled the session table and evicted every signed-in user: the
/// sign-in page keeps nothing on the server; its CSRF token is a cookie repeated in the form.
#[tokio::test]
async fn the_sign_in_page_keeps_no_state_on_the_server() {
    let app = spawn_app().await;
    let armorer = sign_in(&app, "1101").await;
    let r = reqwest::Client::new().get(format!("{}/signin", app.url)).send().await.unwrap();
    let cookies: Vec<String> = r.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_string()).collect();
    assert!(cookies.iter().all(|c| !c.starts_with("qm_session=")), "no session for a visitor: {cookies:?}");
    assert!(cookies.iter().any(|c| c.starts_with("qm_signin=") && c.contains("HttpOnly") && c.contains("SameSite=Strict")), "{cookies:?}");
    // A bounded flood from cookie-less clients, 8 at a time.
    let flood = (0..8).map(|_| {
        let url = format!("{}/signin", app.url);
        tokio::spawn(async move {
            let c = reqwest::Client::new();
            for _ in 0..250 {
                assert_eq!(c.get(&url).send().await.unwrap().status(), 200);
            }
        })
    });
    for t in flood {
        t.await.unwrap();
    }
    let (s, v) = armorer.get("/api/me").await;
    assert_eq!(s, 200, "the signed-in armorer is still signed in: {v}");
    // The form's token must match its cookie: a form posted without it is refused, and signs nobody in.
    let c = client();
    let r = c
        .post(format!("{}/signin", app.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={}&badge=1101&password=correct+horse", "0".repeat(64)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.text().await.unwrap().contains("This sign-in form expired"));
    app.stop().await;
}

/// Each failed sign-in was one ledger entry and one durable commit, and rate-limited attempts were
/// recorded too: failures are summarized per address and interval; rate-limited ones write nothing.
/// And a valid token was refused because someone at the same address mistyped a password.
#[tokio::test]
async fn failed_sign_ins_are_summarized_and_limits_are_separate_per_kind_of_secret() {
    let app = spawn_app_with(|c| c.sign_in_summary_s = 1).await;
    let admin = sign_in(&app, "0001").await;
    let (s, v) = admin.post("/api/tokens", json!({"id": "scan-1", "label": "scanner", "unit": "D-11", "operations": ["count"]})).await;
    assert_eq!(s, 200, "{v}");
    let token = v["token"].as_str().unwrap().to_string();
    let before = log(&admin, 1).await[0]["seq"].as_u64().unwrap();
    let c = client();
    let mut statuses = vec![];
    // A sweep over badges, one or two tries each: the address waits after 20 failures (4 × 5; one
    // badge waits after 5, and others at the same terminal go on: api.rs).
    for i in 0..23 {
        let body = json!({"badge": format!("11{:02}", i / 2), "password": format!("wrong-{i}")});
        statuses.push(c.post(format!("{}/api/session", app.url)).json(&body).send().await.unwrap().status().as_u16());
    }
    assert_eq!(statuses[..20], [401; 20], "twenty failures from the address");
    assert_eq!(statuses[20..], [429; 3], "then 429");
    // The token is its own kind of secret: the address's password failures do not refuse it.
    let r = app.client.get(format!("{}/api/me", app.url)).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 200, "a valid token from the same address");
    // Within the summary's interval nothing is written; then one entry for the address.
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    let after = log(&admin, 20).await;
    let new: Vec<&Value> = after.iter().filter(|l| l["seq"].as_u64().unwrap() > before).collect();
    assert_eq!(new.len(), 1, "one summary entry, no entry for the rate-limited attempts: {new:?}");
    let summary = new[0]["summary"].as_str().unwrap();
    assert!(summary.contains("sign_in") && summary.contains("(20 times,"), "{summary}");
    for badge in ["1100", "1101", "1102"] {
        assert!(summary.contains(badge), "the summary names the badges tried: {summary}");
    }
    app.stop().await;
}

/// A CSV body posted by a signed-in session to `/api/import/{kind}`.
async fn import_csv(s: &Session, kind: &str, body: String) -> (u16, Value) {
    s.post_raw(&format!("/api/import/{kind}"), &[("content-type", "text/csv")], body).await
}

/// 400s from query, path and form extraction and the 413 were plain text; every API error is the
/// documented JSON, permission refusals are 403 (the import answered 422), and no answer shows a
/// path on the server (the import named its temporary file).
#[tokio::test]
async fn every_api_error_is_json_with_a_code_and_reveals_no_server_path() {
    let app = spawn_app().await;
    let admin = sign_in(&app, "0001").await;
    let raw = |method: reqwest::Method, path: &str| {
        admin.client.request(method, format!("{}{path}", app.url)).header("x-csrf-token", &admin.csrf)
    };
    let cases = [
        (raw(reqwest::Method::GET, "/api/log?limit=lots"), 422, "usage"),
        (raw(reqwest::Method::GET, "/api/proofs/inclusion/seven"), 422, "usage"),
        (raw(reqwest::Method::GET, "/api/proofs/consistency?old=x"), 422, "usage"),
        (raw(reqwest::Method::GET, "/api/no-such-route"), 404, "not_found"),
        (raw(reqwest::Method::DELETE, "/api/issue"), 405, "method"),
        (raw(reqwest::Method::POST, "/api/import/lots").header("content-type", "text/csv").body("x".repeat(200 * 1024)), 413, "limit.body"),
    ];
    for (req, status, code) in cases {
        let r = req.send().await.unwrap();
        let got = r.status().as_u16();
        let ct = r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        let v: Value = r.json().await.unwrap_or(Value::Null);
        assert_eq!((got, v["error"]["code"].as_str()), (status, Some(code)), "{ct} {v}");
        assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    }
    // Importing people needs the setup role: 403 with the rule, as every other permission refusal.
    let armorer = sign_in(&app, "1101").await;
    let (s, v) = import_csv(&armorer, "people", "badge,name,unit,roles,pin\n7777,New,D-11,armorer,7777\n".into()).await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("permission.role")), "{v}");
    // A refused row is named in the request body's words, not by a file on the server.
    let (s, v) = import_csv(&admin, "lots", "lot,item_type,quantity,location,supplier,document\nL-1,AMMO,5,NOWHERE,S,D\n".into()).await;
    assert_eq!(s, 404, "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.starts_with("the request body: line 2: not found: location NOWHERE"), "{msg}");
    assert!(!msg.contains("/tmp") && !msg.contains(".csv"), "{msg}");
    app.stop().await;
}

/// The configured body limit is the one in force: a CSV of 3 MiB under a 4 MiB limit was refused
/// at axum's own 2 MiB with 413; it is now read (and refused for what it says, not for its size).
#[tokio::test]
async fn a_body_under_the_configured_limit_is_read_even_above_two_mebibytes() {
    let app = spawn_app_with(|c| c.body_limit_bytes = 4 * 1024 * 1024).await;
    let admin = sign_in(&app, "0001").await;
    let head = "lot,item_type,quantity,location,supplier,document\n";
    let rows = "L-1,AMMO,5,NOWHERE,S,D\n".repeat(3 * 1024 * 1024 / 22);
    let (s, v) = import_csv(&admin, "lots", format!("{head}{rows}")).await;
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("not_found")), "{v}");
    let (s, v) = import_csv(&admin, "lots", format!("{head}{}", rows.repeat(2))).await;
    assert_eq!((s, v["error"]["code"].as_str()), (413, Some("limit.body")), "over the limit: {v}");
    app.stop().await;
}

/// CSV import named the wrong line with Windows line endings, and the first row of a chunk for a
/// refusal of the whole receipt.
#[tokio::test]
async fn an_import_names_the_right_line_with_any_line_ending_and_the_rows_a_receipt_refusal_is_about() {
    let app = spawn_app().await;
    let admin = sign_in(&app, "1101").await;
    let head = "lot,item_type,quantity,location,supplier,document";
    let bad = [head, "L-1,AMMO,5,D11-ARM,S,D", "L-2,AMMO,five,D11-ARM,S,D"].join("\r\n") + "\r\n";
    let (s, v) = import_csv(&admin, "lots", bad).await;
    assert_eq!(s, 422, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().starts_with("the request body: line 3, column quantity:"), "{v}");
    // The same lot on two rows adds up past the largest quantity: the refusal is about those two rows.
    let mut rows = vec![head.to_string()];
    rows.extend((0..6).map(|i| format!("L-{i},AMMO,5,D11-ARM,S,D")));
    rows.insert(3, "L-9,AMMO,600000000000,D11-ARM,S,D".into());
    rows.push("L-9,AMMO,600000000000,D11-ARM,S,D".into());
    let (s, v) = import_csv(&admin, "lots", rows.join("\r\n")).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("quantity.max")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().starts_with("the request body: lines 4 and 9:"), "{v}");
    // A serial already on the books: the receipt's own line, as a CSV line.
    let serials = [
        "serial,item_type,lot,location,supplier,document",
        "N-1,RIFLE,,D11-RACK,S,D",
        "N-2,RIFLE,,D11-RACK,S,D",
        "R11-004,RIFLE,,D11-RACK,S,D",
    ]
    .join("\r\n");
    let (s, v) = import_csv(&admin, "serials", serials).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("custody.one_account")), "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().starts_with("the request body: line 4: refused: serial R11-004 is already on the books"),
        "{v}"
    );
    app.stop().await;
}

/// A password change left the person's other sessions signed in; a password of spaces was accepted.
#[tokio::test]
async fn a_new_password_ends_the_other_sessions_and_spaces_are_no_password() {
    let app = spawn_app().await;
    let (here, there) = (sign_in(&app, "1101").await, sign_in(&app, "1101").await);
    let (s, v) = here.post("/api/people/1101/password", json!({"secret": "          "})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("usage")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("only spaces"), "{v}");
    let (s, v) = here.post("/api/people/1101/password", json!({"secret": "a much better one"})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(here.get("/api/me").await.0, 200, "the session that changed it goes on");
    assert_eq!(there.get("/api/me").await.0, 401, "the other session ended");
    // An administrator's change ends every session of that person.
    let officer = sign_in(&app, "1110").await;
    let admin = sign_in(&app, "0001").await;
    let (s, v) = admin.post("/api/people/1110/password", json!({"secret": "reset by the admin"})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(officer.get("/api/me").await.0, 401);
    assert_eq!(admin.get("/api/me").await.0, 200);
    app.stop().await;
}

/// Banners echoed text from the URL (`/log?msg=…`), so a link could make a page say anything.
#[tokio::test]
async fn a_banner_never_shows_text_from_the_url() {
    let app = spawn_app().await;
    let admin = sign_in(&app, "0001").await;
    for path in ["/log?msg=Call+555-0100+to+unlock", "/counts/C-1?err=Call+555-0100+to+unlock&msg=Call+555-0100+to+unlock"] {
        let page = admin.client.get(format!("{}{path}", app.url)).send().await.unwrap().text().await.unwrap();
        assert!(!page.contains("555-0100"), "{path}: {page}");
    }
    // The outcome of a form still shows, once, on the page it leads to.
    let body = format!("csrf={}", admin.csrf);
    let r = admin
        .client
        .post(format!("{}/log/checkpoint", app.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "a redirect to the log");
    assert_eq!(r.headers()["location"], "/log");
    let page = admin.client.get(format!("{}/log", app.url)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Checkpoint signed at size"), "{page}");
    let again = admin.client.get(format!("{}/log", app.url)).send().await.unwrap().text().await.unwrap();
    assert!(!again.contains("Checkpoint signed at size"), "shown once");
    app.stop().await;
}

/// Injection, as the probe tried it: SQL and markup in identifiers and texts are refused or shown
/// as text, never run; the ledger is unchanged by a refused one.
#[tokio::test]
async fn sql_and_markup_in_requests_are_refused_or_shown_as_text() {
    let app = spawn_app().await;
    let admin = sign_in(&app, "0001").await;
    let before = log(&admin, 1).await[0]["seq"].as_u64().unwrap();
    for unit in ["D-1'; DROP TABLE entries;--", "D-1\" OR \"1\"=\"1", "<script>alert(1)</script>"] {
        let (s, v) = admin.post("/api/units", json!({"unit": unit, "name": "x", "parent": "HQ"})).await;
        assert_eq!((s, v["error"]["code"].as_str()), (422, Some("usage")), "{unit}: {v}");
    }
    let (s, v) = admin.get("/api/where/R11-001'%20OR%20'1'%3D'1").await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(log(&admin, 1).await[0]["seq"].as_u64().unwrap(), before, "nothing was written");
    // Markup in a free text is kept as text and escaped on every page.
    let (s, v) = admin.post("/api/units", json!({"unit": "D-13", "name": "<img src=x onerror=alert(1)>", "parent": "NORTH"})).await;
    assert_eq!(s, 200, "{v}");
    let page = admin.client.get(format!("{}/log", app.url)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;") && !page.contains("<img src=x"), "escaped on the page");
    app.stop().await;
}

/// A refusal anywhere keeps the page's menu and a way back: a handler's refusal (a count that does
/// not exist) and axum's own answer to a form that does not read (plain text before) are pages with
/// the signed-in person's navigation; machines' routes keep answering as they do.
#[tokio::test]
async fn refusal_pages_keep_the_menu_and_a_way_back() {
    let app = spawn_app().await;
    let s = sign_in(&app, "1101").await;
    let page = |r: reqwest::Response| async move {
        let status = r.status().as_u16();
        let kind = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        (status, kind, r.text().await.unwrap())
    };
    let (status, kind, body) = page(s.client.get(format!("{}/counts/C-999", app.url)).send().await.unwrap()).await;
    assert_eq!(status, 404);
    assert!(kind.starts_with("text/html") && body.contains("not found: count C-999") && body.contains("<nav"), "{body}");
    assert!(body.contains("Back to the dashboard") && body.contains("Not found"), "{body}");
    // A form missing its fields, posted from the counter page: a page, with the way back to it.
    let r = s
        .client
        .post(format!("{}/counter/preview", app.url))
        .header("referer", format!("{}/counter?mode=return", app.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("mode=issue")
        .send()
        .await
        .unwrap();
    let (status, kind, body) = page(r).await;
    assert_eq!(status, 422);
    assert!(kind.starts_with("text/html") && body.contains("not accepted:") && body.contains("<nav"), "{kind} {body}");
    assert!(body.contains("href=\"/counter?mode=return\""), "a way back to the page before: {body}");
    // Signed out, the same is a plain page without a menu; the API stays JSON.
    let (_, kind, body) = page(client().post(format!("{}/signin", app.url)).body("x").send().await.unwrap()).await;
    assert!(kind.starts_with("text/html") && !body.contains("<nav"), "{kind} {body}");
    let r = s.client.post(format!("{}/api/issue", app.url)).header("x-csrf-token", &s.csrf).body("{").send().await.unwrap();
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/json"));
    app.stop().await;
}
