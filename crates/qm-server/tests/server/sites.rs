//! Child sites as headquarters sees them (docs/sites.md): three departments' sites listed in the
//! children file — one synced, one never heard from, one that offered a checkpoint contradicting the
//! one cosigned before — through `GET /api/sites`, its denial, and (from the browser test) the page.

use crate::util::*;
use qm_server::sites::{ask_parent, sync_once, Parent, ParentAnswer};

/// Child sites made beside headquarters' database, and the children file naming them.
pub struct Children {
    pub file: String,
    sites: Vec<(String, std::path::PathBuf, &'static str)>,
}

/// d11 and d13 are made and will sync; d12 is listed but never asks.
pub fn children(dir: &std::path::Path) -> Children {
    let mut text = String::new();
    let mut sites = vec![];
    for (origin, unit) in [("d11.example", "D-11"), ("d12.example", "D-12"), ("d13.example", "D-13")] {
        let db = dir.join(format!("{origin}.db")).display().to_string();
        let key = qm_app::default_key_path(std::path::Path::new(&db));
        let g = qm_app::Genesis {
            site: origin,
            root_unit: &qm_core::UnitId::parse(unit).unwrap(),
            root_unit_name: unit,
            admin: &qm_core::Badge::parse("0001").unwrap(),
            admin_name: "Admin",
            admin_pin: "1234",
            at: time::OffsetDateTime::now_utc(),
        };
        let site = qm_app::Site::init(qm_backends::open_store, &db, &key, &g).unwrap();
        let vkey = site.state().site.as_ref().unwrap().verifier_key.clone();
        text.push_str(&format!("[children.\"{origin}\"]\nkey = \"{vkey}\"\nunit = \"HQ\"\n"));
        sites.push((db, key, origin));
    }
    let file = dir.join("children.toml");
    std::fs::write(&file, text).unwrap();
    Children { file: file.display().to_string(), sites }
}

/// d11 and d13 sync with headquarters at `url`; then d13's key signs a checkpoint of the same size
/// with another root (a rewritten history), which headquarters refuses and keeps.
pub async fn sync_children(c: &Children, url: &str, hq_db: &str) {
    let witness =
        qm_app::sites::witness_key(&qm_app::sites::witness_key_path(&qm_app::default_key_path(std::path::Path::new(hq_db))), "x").unwrap();
    let parent = Parent { url: format!("{url}/witness"), key: qm_app::sites::cosigner_verifier_key(&witness) };
    let client = qm_server::sites::parent_client().unwrap();
    for (db, key, origin) in &c.sites {
        if *origin == "d12.example" {
            continue;
        }
        let site = qm_app::Site::open(qm_backends::open_store, db, Some(key)).unwrap();
        let (handle, worker) = qm_server::worker::spawn(site, 3600, 3_600_000);
        let synced = sync_once(&handle, &client, &parent, true).await.unwrap().unwrap();
        assert_eq!(synced.size, 3, "{origin}");
        handle.shutdown().await;
        tokio::task::spawn_blocking(move || worker.join().unwrap()).await.unwrap();
        if *origin == "d13.example" {
            let k = qm_ledger::SiteKey::read(key).unwrap();
            let note =
                qm_ledger::sign_checkpoint(&k, &qm_ledger::Checkpoint { origin: origin.to_string(), size: 3, root: [9; 32] }).unwrap();
            let body = qm_ledger::witness::AddCheckpoint { old: 3, proof: vec![], note }.body();
            match ask_parent(&client, &parent.url, body).await.unwrap() {
                ParentAnswer::Refused(422, why) => assert!(why.contains("not consistent"), "{why}"),
                _ => panic!("a contradicting checkpoint was not refused with 422"),
            }
        }
    }
}

#[tokio::test]
async fn headquarters_lists_its_child_sites_and_only_to_its_own_staff() {
    let dir = tempfile::tempdir().unwrap();
    let c = children(dir.path());
    let file = c.file.clone();
    let app = spawn_app_with(|cfg| cfg.children = Some(file)).await;
    sync_children(&c, &app.url, &app.db).await;
    let admin = sign_in(&app, "0001").await;
    let (s, v) = admin.get("/api/sites").await;
    assert_eq!(s, 200, "{v}");
    let states: Vec<(&str, &str)> =
        v.as_array().unwrap().iter().map(|x| (x["origin"].as_str().unwrap(), x["state"].as_str().unwrap())).collect();
    assert_eq!(states, [("d13.example", "rewritten"), ("d12.example", "never"), ("d11.example", "consistent")], "{v}");
    assert_eq!(v[2]["size"].as_u64(), Some(3), "{v}");
    let (_, incidents) = admin.get("/api/incidents?kind=ledger_fork").await;
    assert_eq!(incidents.as_array().unwrap().len(), 1, "{incidents}");
    // A department's officer may not see them; the attempt is recorded.
    let officer = sign_in(&app, "1103").await;
    let (s, v) = officer.get("/api/sites").await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("permission.scope")), "{v}");
    app.stop().await;
}
