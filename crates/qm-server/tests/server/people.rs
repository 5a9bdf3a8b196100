//! People suspended, restored and given other roles over the API: who may, what a suspension stops
//! at once (the session, sign-in — recorded as a denied attempt), and that the people list shows it.

use crate::util::*;
use serde_json::json;

#[tokio::test]
async fn an_administrator_suspends_restores_and_changes_roles_over_the_api() {
    let app = spawn_app().await;
    let admin = sign_in(&app, "1106").await;
    let armorer = sign_in(&app, "1101").await;
    assert_eq!(armorer.get("/api/me").await.0, 200);

    // Who may not: a duty officer (role), an administrator of another unit (subtree), oneself.
    let officer = sign_in(&app, "1103").await;
    let (status, v) = officer.post("/api/people/1101/suspend", json!({"reason": "inquiry"})).await;
    assert_eq!((status, v["error"]["code"].as_str()), (403, Some("permission.role")), "{v}");
    let (status, v) = admin.post("/api/people/1201/suspend", json!({"reason": "inquiry"})).await;
    assert_eq!((status, v["error"]["code"].as_str()), (403, Some("permission.subtree")), "{v}");
    let (status, v) = admin.post("/api/people/1106/suspend", json!({"reason": "inquiry"})).await;
    assert_eq!((status, v["error"]["code"].as_str()), (409, Some("person.self")), "{v}");

    let (status, v) = admin.post("/api/people/1101/suspend", json!({"reason": "on leave pending an inquiry"})).await;
    assert_eq!(status, 200, "{v}");
    // Their session ends at the next request; signing in again is refused and recorded.
    assert_eq!(armorer.get("/api/me").await.0, 401);
    let r = client().post(format!("{}/api/session", app.url)).json(&json!({"badge": "1101", "password": PASSWORD})).send().await.unwrap();
    assert_eq!(r.status(), 403);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "person.suspended", "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("badge 1101 is suspended since"), "{v}");
    // A wrong password says nothing of the suspension.
    let r = client()
        .post(format!("{}/api/session", app.url))
        .json(&json!({"badge": "1101", "password": "not-it-at-all"}))
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["message"], "refused: badge 1101: badge or password not accepted (rule auth.password)", "{v}");

    // The people list shows it, with the roles changed below.
    let (status, v) = admin.post("/api/people/1110/roles", json!({"roles": ["armorer", "duty_officer"]})).await;
    assert_eq!(status, 200, "{v}");
    let (status, v) = admin.post("/api/people/1110/roles", json!({"roles": ["duty_officer", "armorer"]})).await;
    assert_eq!((status, v["error"]["code"].as_str()), (409, Some("person.unchanged")), "{v}");
    let (_, people) = admin.get("/api/people").await;
    let find = |b: &str| people.as_array().unwrap().iter().find(|p| p["badge"] == b).cloned().unwrap();
    assert!(find("1101")["suspended"].as_str().unwrap().contains("by 1106: on leave pending an inquiry"), "{people}");
    assert_eq!(find("1110")["roles"], json!(["armorer", "duty_officer"]));
    assert!(find("1102")["suspended"].is_null());

    // A member (an officer who only draws weapons) may not read the staff list: who holds which key.
    let member = json!({"badge": "1150", "name": "Officer Member", "unit": "D-11", "roles": ["member"], "pin": "739184"});
    assert_eq!(admin.post("/api/people", member).await.0, 200);
    assert_eq!(admin.post("/api/people/1150/password", json!({"secret": PASSWORD})).await.0, 200);
    let (status, v) = sign_in(&app, "1150").await.get("/api/people").await;
    assert_eq!((status, v["error"]["code"].as_str()), (403, Some("permission.role")), "{v}");
    let (status, v) = admin.post("/api/people/1101/restore", json!({"reason": "inquiry closed"})).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(sign_in(&app, "1101").await.get("/api/me").await.0, 200);
    // Each change is an entry by the administrator; the refused sign-in is recorded as a denial.
    let App { running, db, dir, .. } = app;
    running.unwrap().stop().await.unwrap();
    let site = qm_app::Site::open(qm_backends::open_store, &db, None).unwrap();
    let lines = qm_app::query::log(&site, 30).unwrap();
    let said = |what: &str, actor: &str| lines.iter().any(|l| l.summary.contains(what) && l.actor == actor);
    assert!(said("DENIED 1101: sign_in: refused: badge 1101 is suspended since", "1101"), "{lines:?}");
    assert!(said("badge 1101 suspended: on leave pending an inquiry", "1106"), "{lines:?}");
    assert!(said("badge 1101 restored: inquiry closed", "1106"), "{lines:?}");
    drop(dir);
}

/// A counter tablet gets a token of its own: registered as staff with the one role it needs, it is
/// given a token that acts as it, so a script records movements the administrator who set it up
/// could not (an administrator may not move stock). The token does only what it lists.
#[tokio::test]
async fn a_token_for_a_device_records_movements_as_the_device() {
    let app = spawn_app().await;
    let admin = sign_in(&app, "1106").await;
    let device = json!({"badge": "TAB-D11", "name": "Counter tablet, D-11", "unit": "D-11", "roles": ["armorer"], "pin": "739184"});
    let (status, v) = admin.post("/api/people", device).await;
    assert_eq!(status, 200, "{v}");
    // A token acting as the administrator cannot issue: their role may not.
    let (_, v) = admin.post("/api/tokens", json!({"id": "admin-script", "label": "script", "unit": "D-11", "operations": ["issue"]})).await;
    let own = v["token"].as_str().unwrap().to_string();
    let body = json!({"to": "1110", "from": "D11-ARM", "items": ["A11:10"]});
    let r = app.client.post(format!("{}/api/issue", app.url)).bearer_auth(&own).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // Not for a badge outside the administrator's unit.
    let other = json!({"id": "t-12", "label": "tablet", "unit": "D-12", "operations": ["issue"], "acts_as": "1201"});
    let (status, v) = admin.post("/api/tokens", other).await;
    assert_eq!((status, v["error"]["code"].as_str()), (403, Some("permission.subtree")), "{v}");
    let (status, v) = admin
        .post(
            "/api/tokens",
            json!({"id": "tablet-d11", "label": "Counter tablet", "unit": "D-11", "operations": ["issue", "return"], "acts_as": "TAB-D11"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    let token = v["token"].as_str().unwrap().to_string();
    let bearer = |path: &str, body: serde_json::Value| app.client.post(format!("{}{path}", app.url)).bearer_auth(&token).json(&body).send();
    let r = bearer("/api/issue", body.clone()).await.unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["entries"][0]["actor"], "TAB-D11", "{v}");
    // The entry says which token acted: a token issued for a badge acts without its credentials.
    assert_eq!(v["entries"][0]["token"], "tablet-d11", "{v}");
    let r = bearer("/api/return", json!({"from": "1110", "items": ["A11:10"]})).await.unwrap();
    assert_eq!(r.status(), 200, "without a place, the rounds go back to their store");
    // Only what it lists.
    let r = bearer("/api/counts", json!({"location": "D11-ARM"})).await.unwrap();
    assert_eq!(r.status(), 403);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "token.scope", "{v}");
    // The device suspended: its token is refused.
    let (status, _) = admin.post("/api/people/TAB-D11/suspend", json!({"reason": "tablet lost"})).await;
    assert_eq!(status, 200);
    assert_eq!(bearer("/api/issue", body).await.unwrap().status(), 401);
    app.stop().await;
}
