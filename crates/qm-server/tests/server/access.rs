//! Armory access control over HTTP (docs/access.md): a simulated access-control system posts
//! signed Standard Webhooks over loopback (granted entries, a denial, a forced door, an unknown card
//! and door, a replayed message, a bad signature, a stale timestamp, a malformed body), and the door
//! terminal's API with its denials.

use crate::util::*;
use base64::Engine;
use serde_json::{json, Value};

/// The simulated access-control system's secret (Standard Webhooks: `whsec_` and base64).
fn secret_key() -> Vec<u8> {
    b"the access-control system's shared key!".to_vec()
}

fn access_file(dir: &std::path::Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let secret = format!("whsec_{}", base64::engine::general_purpose::STANDARD.encode(secret_key()));
    let text = format!(
        "[systems.acs]\nsecret = \"{secret}\"\ntolerance_s = 300\n[systems.acs.doors]\nARM-DOOR = \"D11-ARM\"\n[systems.acs.cards]\nC1101 = \"1101\"\nC1110 = \"1110\"\n"
    );
    let path = dir.join("access.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path.display().to_string()
}

/// The simulated system: posts a message signed with `key` (or the given signature), stamped `ts`.
async fn post(app: &App, system: &str, msg_id: &str, ts: i64, body: &str, signature: Option<&str>) -> (u16, Value) {
    let sig =
        signature.map(String::from).unwrap_or_else(|| qm_server::notify::webhook_signature(&secret_key(), msg_id, ts, body.as_bytes()));
    let r = app
        .client
        .post(format!("{}/api/access/webhooks/{system}", app.url))
        .header("webhook-id", msg_id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sig)
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

fn events(v: Value) -> String {
    json!({ "events": v }).to_string()
}

#[tokio::test]
async fn an_access_control_system_posts_signed_door_events_and_forgeries_are_refused() {
    let conf = tempfile::tempdir().unwrap();
    let file = access_file(conf.path());
    let app = spawn_app_with(|c| {
        c.access = Some(file);
        c.sign_in_summary_s = 1;
    })
    .await;
    let officer = sign_in(&app, "1103").await;
    for who in ["1101", "1110"] {
        let (s, v) = officer
            .post("/api/access/D11-ARM/roster", json!({"badge": who, "role": "armorer", "hours": "always", "reason": "shift"}))
            .await;
        assert_eq!(s, 200, "{v}");
    }
    let admin = sign_in(&app, "0001").await;
    let doors = |v: &[Value]| v.iter().filter(|e| e["type"] == "door_events").count();
    let now = time::OffsetDateTime::now_utc();
    let ts = now.unix_timestamp();
    let at = |s: i64| (now - time::Duration::seconds(s)).format(&time::format_description::well_known::Rfc3339).unwrap();
    // Two granted entries.
    let m1 = events(json!([
        {"id": "e1", "type": "granted", "at": at(30), "door": "ARM-DOOR", "card": "C1101"},
        {"id": "e2", "type": "granted", "at": at(29), "door": "ARM-DOOR", "card": "C1110", "direction": "in"},
    ]));
    let (s, v) = post(&app, "acs", "msg-1", ts, &m1, None).await;
    assert_eq!((s, v["recorded"].as_u64(), v["duplicates"].as_u64()), (200, Some(2), Some(0)), "{v}");
    let (_, places) = officer.get("/api/access").await;
    let arm = places.as_array().unwrap().iter().find(|p| p["location"] == "D11-ARM").unwrap().clone();
    let inside: Vec<&str> = arm["inside"].as_array().unwrap().iter().map(|i| i["badge"].as_str().unwrap()).collect();
    assert_eq!(inside, ["1101", "1110"], "{arm}");
    // A denial, a forced door, an unknown card, and a door mapped to no place: kept, and incidents.
    let m2 = events(json!([
        {"id": "e3", "type": "denied", "at": at(20), "door": "ARM-DOOR", "card": "C1101", "reason": "card suspended"},
        {"id": "e4", "type": "forced", "at": at(19), "door": "ARM-DOOR"},
        {"id": "e5", "type": "granted", "at": at(18), "door": "ARM-DOOR", "card": "FFFF0001"},
        {"id": "e6", "type": "granted", "at": at(17), "door": "GATE-9", "card": "C1110"},
        {"id": "e7", "type": "closed", "at": at(16), "door": "ARM-DOOR"},
    ]));
    let (s, v) = post(&app, "acs", "msg-2", ts, &m2, None).await;
    assert_eq!((s, v["recorded"].as_u64()), (200, Some(5)), "{v}");
    assert_eq!(v["flagged"].as_u64(), Some(3), "the denial, the forced door, the unknown card: {v}");
    assert_eq!(v["incidents"].as_array().unwrap().len(), 3, "the denial, the forced door, the unknown card: {v}");
    let (_, incidents) = officer.get("/api/incidents?kind=door_forced").await;
    assert_eq!(incidents.as_array().unwrap().len(), 1, "{incidents}");
    let (_, incidents) = officer.get("/api/incidents?kind=unauthorized_access").await;
    let summaries: Vec<&str> = incidents.as_array().unwrap().iter().map(|i| i["summary"].as_str().unwrap()).collect();
    assert!(summaries.iter().any(|s| s.contains("unknown card FFFF0001 entered D11-ARM not on the roster")), "{summaries:?}");
    assert!(summaries.iter().any(|s| s.contains("badge 1101 was refused at D11-ARM") && s.contains("card suspended")), "{summaries:?}");
    let (_, log) = officer.get("/api/access/D11-ARM/log").await;
    let kinds: Vec<&str> = log.as_array().unwrap().iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["closed", "entry", "forced", "denied", "entry", "entry"], "newest first: {log}");
    let (s, unmapped) = admin.get("/api/access/unmapped").await;
    assert_eq!((s, unmapped[0]["door"].as_str(), unmapped[0]["badge"].as_str()), (200, Some("GATE-9"), Some("1110")), "{unmapped}");
    let (s, _) = officer.get("/api/access/unmapped").await;
    assert_eq!(s, 403, "doors mapped to no place are for HQ");
    // Forgeries and replays are refused and recorded as nothing at the door.
    let before = doors(&log_of(&admin).await);
    let (s, v) = post(&app, "acs", "msg-1", ts, &m1, None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("webhook.replayed")), "{v}");
    let forged = events(json!([{"id": "e9", "type": "granted", "at": at(5), "door": "ARM-DOOR", "card": "C1101"}]));
    let sig = qm_server::notify::webhook_signature(b"another key, not the system's!!!!", "msg-3", ts, forged.as_bytes());
    let (s, v) = post(&app, "acs", "msg-3", ts, &forged, Some(&sig)).await;
    assert_eq!((s, v["error"]["code"].as_str()), (401, Some("webhook.signature")), "{v}");
    let (s, v) = post(&app, "acs", "msg-4", ts - 3600, &forged, None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (401, Some("webhook.signature")), "a stale timestamp: {v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("more than 300 s"), "{v}");
    let (s, v) = post(&app, "acs", "msg-5", ts, "{\"events\": [{\"id\": 1}]}", None).await;
    assert_eq!(s, 400, "a malformed body: {v}");
    let (s, v) =
        post(&app, "acs", "msg-6", ts, &events(json!([{"id": "e8", "type": "opened", "at": at(3), "door": "ARM-DOOR"}])), None).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("invalid")), "an unknown event type: {v}");
    let (s, _) = post(&app, "nobody", "msg-7", ts, &forged, None).await;
    assert_eq!(s, 404);
    let r = app.client.post(format!("{}/api/access/webhooks/acs", app.url)).body(forged.clone()).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400, "no Standard Webhooks headers");
    // Forgeries from an address are summarized (as failed sign-ins are) and recorded within a second or so.
    let mut after = log_of(&admin).await;
    for _ in 0..50 {
        if after.iter().filter(|e| e["type"] == "access_denied" && e["summary"].as_str().unwrap().contains("webhook:acs")).count() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        after = log_of(&admin).await;
    }
    assert_eq!(doors(&after), before, "no door event recorded");
    let denied: Vec<&Value> = after.iter().filter(|e| e["type"] == "access_denied").collect();
    // The bad signature and the stale timestamp: two attempts, flushed together, each its own entry
    // and incident (numbered apart), stamped no earlier than the entries written meanwhile.
    let forged: Vec<&&Value> = denied.iter().filter(|e| e["summary"].as_str().unwrap().contains("webhook:acs")).collect();
    assert_eq!(forged.len(), 2, "the forgeries are recorded: {denied:?}");
    // The same event id again, in a new message: stored once.
    let again = events(json!([{"id": "e1", "type": "granted", "at": at(30), "door": "ARM-DOOR", "card": "C1101"}]));
    let (s, v) = post(&app, "acs", "msg-8", ts, &again, None).await;
    assert_eq!((s, v["recorded"].as_u64(), v["duplicates"].as_u64()), (200, Some(0), Some(1)), "{v}");
    // The door terminal over the API: run by the duty officer; not by an armorer who does not keep the place.
    let (s, v) = officer.post("/api/access/D11-ARM/terminal", json!({"badge": "1101", "pin": PIN, "exit": true})).await;
    assert_eq!((s, v["granted"].as_bool()), (200, Some(true)), "{v}");
    let (s, v) = officer.post("/api/access/D11-ARM/terminal", json!({"badge": "1102", "pin": PIN})).await;
    assert_eq!((s, v["granted"].as_bool()), (200, Some(false)), "{v}");
    assert!(v["message"].as_str().unwrap().contains("not on the roster"), "{v}");
    let armorer = sign_in(&app, "1110").await;
    let (s, v) = armorer.post("/api/access/D11-ARM/terminal", json!({"badge": "1110", "pin": PIN})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("permission.role")), "{v}");
    let outsider = sign_in(&app, "1203").await;
    let (s, _) = outsider.get("/api/access/D11-ARM/log").await;
    assert_eq!(s, 403, "another department's door log");
    let (s, v) = admin.get("/api/verify").await;
    assert_eq!((s, v["ok"].as_bool()), (200, Some(true)), "{v}");
    app.stop().await;
}

async fn log_of(s: &Session) -> Vec<Value> {
    log(s, 200).await
}

/// Messages delivered concurrently (as webhook dispatchers do) are staged while the one before is
/// made durable; an event repeated in a message still in flight is a duplicate, stored once.
#[tokio::test]
async fn door_events_sent_concurrently_are_each_stored_once() {
    let conf = tempfile::tempdir().unwrap();
    let file = access_file(conf.path());
    let app = spawn_app_with(|c| c.access = Some(file)).await;
    let officer = sign_in(&app, "1103").await;
    let ts = time::OffsetDateTime::now_utc().unix_timestamp();
    let at = |s: i64| {
        (time::OffsetDateTime::now_utc() - time::Duration::seconds(s)).format(&time::format_description::well_known::Rfc3339).unwrap()
    };
    let closed = |ids: &[&str]| {
        events(Value::Array(ids.iter().map(|id| json!({"id": id, "type": "closed", "at": at(10), "door": "ARM-DOOR"})).collect()))
    };
    let messages = [closed(&["c1", "c2", "c3"]), closed(&["c2", "c3", "c4"]), closed(&["c4", "c5"]), closed(&["c1", "c5", "c6"])];
    let (a, b, c, d) = tokio::join!(
        post(&app, "acs", "m-a", ts, &messages[0], None),
        post(&app, "acs", "m-b", ts, &messages[1], None),
        post(&app, "acs", "m-c", ts, &messages[2], None),
        post(&app, "acs", "m-d", ts, &messages[3], None),
    );
    let answers = [a, b, c, d];
    for (s, v) in &answers {
        assert_eq!(*s, 200, "{v}");
    }
    let sum = |k: &str| answers.iter().map(|(_, v)| v[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!((sum("recorded"), sum("duplicates")), (6, 5), "six distinct events in eleven: {answers:?}");
    let (_, log) = officer.get("/api/access/D11-ARM/log").await;
    let mut ids: Vec<&str> = log.as_array().unwrap().iter().map(|r| r["event_id"].as_str().unwrap_or_default()).collect();
    ids.sort();
    assert_eq!(ids, ["c1", "c2", "c3", "c4", "c5", "c6"], "{log}");
    let admin = sign_in(&app, "0001").await;
    let (s, v) = admin.get("/api/verify").await;
    assert_eq!((s, v["ok"].as_bool()), (200, Some(true)), "{v}");
    app.stop().await;
}

/// A message too large for one ledger entry (500 forced doors with the longest ids, each opening
/// an incident) is recorded as several entries committed together, each within the 65,535 bytes a
/// C2SP tlog-tiles bundle carries; every event is stored once, the ledger verifies, and the same
/// message again is a replay.
#[tokio::test]
async fn a_door_message_too_large_for_one_entry_is_recorded_in_parts_that_each_fit() {
    let conf = tempfile::tempdir().unwrap();
    let file = access_file(conf.path());
    let app = spawn_app_with(|c| {
        c.access = Some(file);
        c.body_limit_bytes = qm_server::config::BODY_LIMIT_BYTES_DEFAULT;
    })
    .await;
    let ts = time::OffsetDateTime::now_utc().unix_timestamp();
    let at =
        (time::OffsetDateTime::now_utc() - time::Duration::seconds(30)).format(&time::format_description::well_known::Rfc3339).unwrap();
    let forced: Vec<Value> = (0..500).map(|i| json!({"id": format!("{i:0>64}"), "type": "forced", "at": at, "door": "ARM-DOOR"})).collect();
    let body = events(Value::Array(forced));
    let (s, v) = post(&app, "acs", "m-big", ts, &body, None).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!((v["recorded"].as_u64(), v["incidents"].as_array().map(Vec::len)), (Some(500), Some(500)), "{v}");
    let admin = sign_in(&app, "0001").await;
    // Every entry of the ledger in its tlog-tiles bundle: a bundle cannot be served with a larger one.
    let cp = admin.client.get(format!("{}/ledger/checkpoint", app.url)).send().await.unwrap().text().await.unwrap();
    let size: u64 = cp.lines().nth(1).unwrap().parse().unwrap();
    let (mut parts, mut largest) = (0, 0);
    for index in 0..size.div_ceil(256) {
        let width = qm_ledger::tile_width(0, index, size);
        let path =
            if width == 256 { format!("/ledger/tile/entries/{index:03}") } else { format!("/ledger/tile/entries/{index:03}.p/{width}") };
        let r = admin.client.get(format!("{}{path}", app.url)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        let bundle = r.bytes().await.unwrap();
        let mut rest = &bundle[..];
        while rest.len() >= 2 {
            let n = u16::from_be_bytes([rest[0], rest[1]]) as usize;
            let entry: Value = serde_json::from_slice(&rest[2..2 + n]).unwrap();
            if entry["event"]["type"] == "door_events" {
                parts += 1;
                largest = largest.max(n);
            }
            rest = &rest[2 + n..];
        }
    }
    assert!(parts >= 2, "the message was recorded in {parts} entries");
    assert!(largest > 20_000, "the parts are filled, not cut small: the largest is {largest} bytes");
    let (s, v) = admin.get("/api/verify").await;
    assert_eq!((s, v["ok"].as_bool()), (200, Some(true)), "{v}");
    let (s, v) = post(&app, "acs", "m-big", ts, &body, None).await;
    assert_eq!(s, 409, "the same message again: {v}");
    app.stop().await;
}
