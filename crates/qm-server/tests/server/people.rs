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
