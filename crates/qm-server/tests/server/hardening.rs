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
