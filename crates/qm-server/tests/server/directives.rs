//! Directives over HTTP on loopback (docs/directives.md): HQ issues one for NORTH's subtree; a
//! department acknowledges it; the armorer's first issue waits for the shift briefing; each unit
//! sees it and its compliance within its own subtree only; a department cannot end it; the
//! compliance report as JSON and CSV; the banner.

use crate::util::*;
use serde_json::json;

#[tokio::test]
async fn a_directive_is_issued_acknowledged_and_briefed_and_each_unit_sees_its_own_compliance() {
    let app = spawn_app_with(|c| c.notify_every_ms = 50).await;
    let hq = sign_in(&app, "0003").await;
    // The first round of notifications starts at the end of the ledger: the fixture's entries are past.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let body = |measures: serde_json::Value, posture: &str| {
        json!({"unit": "HQ", "applies_to": ["NORTH"], "title": "Visit", "text": "Tighten control; not a single incident.",
               "posture": posture, "days": 10, "measures": measures})
    };
    let (s, v) = hq.post("/api/directives", body(json!(["two-person", "curfew"]), "high")).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("usage")), "{v}");
    let (s, v) = hq.post("/api/directives", body(json!(["two-person"]), "orange")).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("directive.posture")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("normal, heightened, high, maximum"), "{v}");
    let (s, v) = hq.post("/api/directives", body(json!(["two-person", "count=24h", "rounds-cap=30"]), "high")).await;
    assert_eq!(s, 200, "{v}");
    let (_, list) = hq.get("/api/directives?in_force=true").await;
    let id = list[0]["id"].as_str().unwrap().to_string();
    assert_eq!(list[0]["measures"], json!(["two-person", "count=24h", "rounds-cap=30"]), "{list}");
    // Every unit it concerns is told: D-11's duty officer finds it in their list (the shipped rule
    // tells each unit's duty officers); D-11's armorer is not named by any rule.
    let d11 = sign_in(&app, "1103").await;
    let mut told = json!([]);
    for _ in 0..100 {
        told = d11.get("/api/notifications").await.1;
        if !told.as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let subject = told[0]["subject"].as_str().unwrap_or_default();
    assert!(subject.contains(&format!("directive {id} issued: Visit (high posture")), "{told}");
    // A department's duty officer acknowledges for D-11; not for D-12, outside its subtree.
    let (s, v) = d11.post(&format!("/api/directives/{id}/acknowledge"), json!({"unit": "D-12"})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("permission.subtree")), "{v}");
    let (s, v) = d11.post(&format!("/api/directives/{id}/acknowledge"), json!({"unit": "D-11"})).await;
    assert_eq!(s, 200, "{v}");
    let (s, v) = d11.post(&format!("/api/directives/{id}/cancel"), json!({"reason": "quiet here"})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("directive.authority")), "{v}");
    // The armorer's first issue under it waits for the shift briefing.
    let armorer = sign_in(&app, "1101").await;
    let (_, banner) = armorer.get("/api/directives/banner").await;
    assert_eq!((banner[0]["id"].as_str(), banner[0]["briefed"].as_bool()), (Some(id.as_str()), Some(false)), "{banner}");
    let (s, v) = armorer.post("/api/issue", json!({"to": "1110", "items": ["R11-005"]})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("directive.briefing")), "{v}");
    let (s, v) = armorer.post(&format!("/api/directives/{id}/brief"), json!({})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(armorer.get("/api/directives/banner").await.1[0]["briefed"], true);
    let (s, v) = armorer.post("/api/issue", json!({"to": "1110", "items": ["R11-005"]})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("two_person")), "{v}");
    // HQ sees every unit concerned; D-11 only its own row.
    let (s, c) = hq.get(&format!("/api/directives/{id}/compliance")).await;
    assert_eq!(s, 200, "{c}");
    let units: Vec<&str> = c["rows"].as_array().unwrap().iter().map(|r| r["unit"].as_str().unwrap()).collect();
    assert_eq!(units, ["NORTH", "D-12", "D-11"], "the slowest first under NORTH: {c}");
    assert_eq!((c["total"]["units"].as_u64(), c["total"]["acknowledged"].as_u64()), (Some(3), Some(1)));
    let d11_row = &c["rows"][2];
    assert_eq!((d11_row["acknowledged_by"].as_str(), d11_row["briefed"].as_u64()), (Some("1103"), Some(1)), "{d11_row}");
    let (_, mine) = d11.get(&format!("/api/directives/{id}/compliance")).await;
    let units: Vec<&str> = mine["rows"].as_array().unwrap().iter().map(|r| r["unit"].as_str().unwrap()).collect();
    assert_eq!(units, ["D-11"], "{mine}");
    let r = hq.client.get(format!("{}/api/directives/{id}/compliance.csv", app.url)).send().await.unwrap();
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/csv"));
    let csv = r.text().await.unwrap();
    assert_eq!(csv.lines().count(), 4, "{csv}");
    assert!(csv.lines().any(|l| l.starts_with("D-11,Department 11,1,1103,")), "{csv}");
    // Unknown directives are not found; the OpenAPI document lists the routes.
    assert_eq!(hq.get("/api/directives/DIR-99.nowhere").await.0, 404);
    let doc: serde_json::Value = app.client.get(format!("{}/api/openapi.json", app.url)).send().await.unwrap().json().await.unwrap();
    for p in ["/api/directives", "/api/directives/{id}/{step}", "/api/directives/{id}/compliance"] {
        assert!(doc["paths"][p].is_object(), "{p} missing from the OpenAPI document");
    }
    app.stop().await;
}
