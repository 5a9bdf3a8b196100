//! Storage compatibility over HTTP (issue 19, docs/safety.md): item attributes set through the API,
//! validated against the safety tables, and the footnote they bring into play, on a refusal and on
//! the magazines page.

use crate::util::*;
use qm_core::*;
use serde_json::json;

#[tokio::test]
async fn attributes_bring_a_footnote_into_play_for_the_items_it_is_about() {
    // The fixture, with a magazine D11-MAGB licensed for B and D and built under the detonator
    // provisions (a location flag).
    let app = spawn_app_prepared(
        |site| {
            let at = time::OffsetDateTime::now_utc();
            let mag = LocationId::parse("D11-MAGB").unwrap();
            let licence = MagazineLicence {
                neq_limit_kg: 1000.0,
                hazard_divisions: vec!["1.1".into()],
                compatibility_groups: vec!["B".into(), "D".into()],
                exposed_sites: vec![],
            };
            let setup = [
                Command::CreateLocation {
                    location: mag.clone(),
                    name: "Magazine B".into(),
                    unit: UnitId::parse("D-11").unwrap(),
                    parent: None,
                    kind: LocationKind::Magazine,
                    keeper: None,
                    magazine: Some(licence),
                },
                Command::SetLocationSafety { location: mag.clone(), flags: vec!["detonator_provisions".into()], conditions: None },
            ];
            for (i, c) in setup.into_iter().enumerate() {
                site.execute(qm_app::Request::new(Badge::parse("0001").unwrap(), c, format!("mag-{i}"), at)).unwrap();
            }
        },
        |_| {},
    )
    .await;
    let admin = sign_in(&app, "0001").await;
    let armorer = sign_in(&app, "1101").await;
    let witness = json!({"badge": "1103", "pin": PIN});
    let detonators = json!({"item_type": "DETO", "name": "Detonators, electric", "kind": "component", "tracking": "lot", "unit_of_measure": "each", "neq_kg_per_unit": 0.001, "un_code": "1.1B"});
    let (s, v) = admin.post("/api/item-types", detonators).await;
    assert_eq!(s, 200, "{v}");
    let receive = |doc: &str, t: &str, lot: &str| json!({"to": "D11-MAGB", "from": "S", "document": doc, "item_type": t, "items": [format!("{lot}:100")], "witness": witness});
    let (s, v) = armorer.post("/api/receive", receive("D0", "TNT", "TB")).await;
    assert_eq!(s, 200, "{v}");
    // B beside the magazine's TNT (D): the chart's X(4) — never, unless a detonator (footnote 4).
    let (s, v) = armorer.post("/api/receive", receive("D1", "DETO", "DX")).await;
    assert_eq!((s, v["error"]["code"].as_str()), (409, Some("safety.mixing")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("never, except as footnote 4"), "{v}");
    // Attributes: only the tables' own, only by an administrator at the root.
    let (s, v) = admin.post("/api/item-types/DETO/attributes", json!({"attributes": ["detonater"]})).await;
    assert_eq!((s, v["error"]["code"].as_str()), (422, Some("invalid")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("\"detonater\" is not an item attribute"), "{v}");
    let (s, v) = armorer.post("/api/item-types/DETO/attributes", json!({"attributes": ["detonator"]})).await;
    assert_eq!(s, 403, "{v}");
    let (s, v) = admin.post("/api/item-types/DETO/attributes", json!({"attributes": ["detonator"]})).await;
    assert_eq!(s, 200, "{v}");
    // Detonators, in a magazine built for them: allowed, and the page says footnote 4 is in play and met.
    let (s, v) = armorer.post("/api/receive", receive("D2", "DETO", "DY")).await;
    assert_eq!(s, 200, "{v}");
    let page = admin.client.get(format!("{}/magazines", app.url)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("footnote 4 (detonator provisions of 177.835(g)): DETO 1.1B with TNT 1.1D — met"), "{page}");
    app.stop().await;
}
