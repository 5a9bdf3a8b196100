//! Incidents over HTTP on loopback (docs/incidents.md): one opens by itself from a count's
//! discrepancy with its clocks, the steps by hand, who may see and close it.

use crate::util::*;
use serde_json::{json, Value};

#[tokio::test]
async fn incidents_open_by_themselves_and_by_hand_and_are_seen_only_inside_the_subtree() {
    let app = spawn_app().await;
    // The fixture's closed count in each department missed a rifle, and each reported ammunition
    // lost: two incidents opened by themselves in each.
    let d11 = sign_in(&app, "1103").await;
    let (s, v) = d11.get("/api/incidents?open=true").await;
    assert_eq!(s, 200, "{v}");
    let kinds: Vec<(&str, &str)> =
        v.as_array().unwrap().iter().map(|i| (i["kind"].as_str().unwrap(), i["unit"].as_str().unwrap())).collect();
    assert_eq!(kinds, [("count_discrepancy", "D-11"), ("loss", "D-11")], "D-11 sees its own incidents only, gravest and newest first: {v}");
    // What the badge beside "Incidents" shows: both are still to be acknowledged.
    let (s, v) = d11.get("/api/incidents/summary").await;
    assert_eq!((s, &v["open"], &v["unacknowledged"]), (200, &json!(2), &json!(2)), "{v}");
    let (_, v) = d11.get("/api/incidents?kind=count_discrepancy").await;
    let list = v.as_array().unwrap();
    let i = &list[0];
    assert_eq!(
        (i["kind"].as_str(), i["severity"].as_str(), i["unit"].as_str()),
        (Some("count_discrepancy"), Some("high"), Some("D-11")),
        "{i}"
    );
    assert!(i["rule"].as_str().unwrap().contains("on discrepancy"), "{i}");
    assert_eq!(i["clocks"][0]["what"], "acknowledge");
    let id = i["id"].as_str().unwrap().to_string();
    // Another department may not read it; HQ sees both.
    let d12 = sign_in(&app, "1203").await;
    let (s, v) = d12.get(&format!("/api/incidents/{id}")).await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("permission.subtree")), "{v}");
    let (s, v) = d12.post(&format!("/api/incidents/{id}/acknowledge"), json!({})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("permission.subtree")), "{v}");
    let (_, all) = sign_in(&app, "0001").await.get("/api/incidents").await;
    // HQ sees both departments' — and the unauthorized access attempt D-12's refused step opened.
    let kinds: Vec<&str> = all.as_array().unwrap().iter().map(|i| i["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.len(), 5, "{all}");
    assert_eq!(kinds.iter().filter(|k| **k == "unauthorized_access").count(), 1, "{all}");
    // The duty officer acknowledges it; the clock is met.
    let officer = sign_in(&app, "1103").await;
    let (s, v) = officer.post(&format!("/api/incidents/{id}/acknowledge"), json!({})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(officer.get("/api/incidents/summary").await.1["unacknowledged"], 1);
    let (_, shown) = officer.get(&format!("/api/incidents/{id}")).await;
    assert_eq!((shown["state"].as_str(), shown["clocks"][0]["status"].as_str()), (Some("acknowledged"), Some("met")), "{shown}");
    // Closing waits for the discrepancy it is about to be resolved.
    let (s, v) = officer.post(&format!("/api/incidents/{id}/close"), json!({"resolution": "found"})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("incident.stock_unsettled")), "{v}");
    // By hand: a step with a missing field is a usage error; an unknown step too.
    let (s, v) = officer.post(&format!("/api/incidents/{id}/note"), json!({})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("usage")), "{v}");
    let (s, _) = officer.post(&format!("/api/incidents/{id}/shred"), json!({})).await;
    assert_eq!(s, 422);
    let armorer = sign_in(&app, "1101").await;
    let (s, v) = armorer
        .post("/api/incidents", json!({"kind": "theft", "severity": "critical", "unit": "D-11", "location": "D11-ARM", "serials": ["R11-005"], "summary": "rifle gone from the rack"}))
        .await;
    assert_eq!(s, 200, "{v}");
    let (_, v) = armorer.get("/api/incidents?kind=theft").await;
    let theft: &Value = &v.as_array().unwrap()[0];
    let whats: Vec<&str> = theft["clocks"].as_array().unwrap().iter().map(|c| c["what"].as_str().unwrap()).collect();
    assert_eq!(whats, ["acknowledge", "us-firearms-theft-loss"], "{theft}");
    app.stop().await;
}

/// Notifications in the web channel (docs/notifications.md): with no notifications file, each
/// unit's duty officers are told of its incidents, in their list; the outbox is for the site's
/// administrators alone, and a look by anyone else is refused and recorded.
#[tokio::test]
async fn duty_officers_are_told_in_their_list_and_only_site_administrators_see_the_outbox() {
    let app = spawn_app_with(|c| c.notify_every_ms = 50).await;
    let officer = sign_in(&app, "1103").await;
    // The first round starts the outbox at the end of the ledger: the fixture's incidents are past.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (s, v) = officer.get("/api/notifications").await;
    assert_eq!((s, v.as_array().map(Vec::len)), (200, Some(0)), "{v}");
    let armorer = sign_in(&app, "1101").await;
    let (s, v) = armorer
        .post(
            "/api/incidents",
            json!({"kind": "accident", "severity": "medium", "unit": "D-11", "summary": "round discharged at the clearing barrel"}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let mut mine = json!([]);
    for _ in 0..100 {
        mine = officer.get("/api/notifications").await.1;
        if !mine.as_array().unwrap().is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let list = mine.as_array().unwrap();
    assert_eq!(list.len(), 1, "{mine}");
    assert!(list[0]["subject"].as_str().unwrap().contains("MEDIUM accident at D-11"), "{mine}");
    assert_eq!((list[0]["channel"].as_str(), list[0]["status"].as_str()), (Some("web"), Some("delivered")), "{mine}");
    // D-12's duty officer is not told of D-11's accident; the armorer (no rule names armorers) neither.
    assert_eq!(sign_in(&app, "1203").await.get("/api/notifications").await.1, json!([]));
    assert_eq!(armorer.get("/api/notifications").await.1, json!([]));
    // The outbox: a department's administrator and an officer are refused, and it is recorded.
    for badge in ["1106", "1103"] {
        let (s, v) = sign_in(&app, badge).await.get("/api/notifications/outbox").await;
        assert_eq!((s, v["error"]["code"].as_str()), (403, Some("permission.role")), "{badge}: {v}");
    }
    let hq = sign_in(&app, "0001").await;
    let (s, v) = hq.get("/api/notifications/outbox").await;
    assert_eq!((s, v), (200, json!([])), "no e-mail or webhook is configured: the outbox holds none");
    let (s, v) = hq.post("/api/notifications/outbox/msg_1_email_x/retry", json!({})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (404, Some("not_found")), "{v}");
    let (_, log) = hq.get("/api/log?limit=50").await;
    let denied = log.to_string();
    assert!(denied.contains("may not see the outbox"), "the refused looks are in the ledger: {denied}");
}
