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

/// d11 and d13 sync with headquarters at `url` (d11's entries mirrored there too, its gzipped);
/// then d13's key signs a checkpoint of the same size with another root (a rewritten history),
/// which headquarters refuses and keeps.
pub async fn sync_children(c: &Children, url: &str, hq_db: &str) {
    let hq_key = qm_app::default_key_path(std::path::Path::new(hq_db));
    let witness = qm_app::sites::witness_key(&qm_app::sites::witness_key_path(&hq_key), "x").unwrap();
    let mirror = qm_app::mirror::mirror_key(&qm_app::mirror::mirror_key_path(&hq_key), "x").unwrap();
    let mirror = qm_server::mirror::MirrorParent { url: format!("{url}/mirror"), key: qm_app::sites::cosigner_verifier_key(&mirror) };
    let witness_only =
        Parent { url: format!("{url}/witness"), key: qm_app::sites::cosigner_verifier_key(&witness), mirror: None, log_key: None };
    let client = qm_server::sites::parent_client().unwrap();
    for (db, key, origin) in &c.sites {
        if *origin == "d12.example" {
            continue;
        }
        let site = qm_app::Site::open(qm_backends::open_store, db, Some(key)).unwrap();
        let (handle, worker) = qm_server::worker::spawn(site, 3600, 3_600_000);
        let parent = Parent { mirror: (*origin == "d11.example").then(|| mirror.clone()), ..witness_only.clone() };
        let synced = sync_once(&handle, &client, &parent, true).await.unwrap().unwrap();
        assert_eq!((synced.size, synced.mirrored), (3, parent.mirror.as_ref().map(|_| 3)), "{origin}");
        handle.shutdown().await;
        tokio::task::spawn_blocking(move || worker.join().unwrap()).await.unwrap();
        if *origin == "d13.example" {
            let k = qm_ledger::SiteKey::read(key).unwrap();
            let note =
                qm_ledger::sign_checkpoint(&k, &qm_ledger::Checkpoint { origin: origin.to_string(), size: 3, root: [9; 32] }).unwrap();
            let body = qm_ledger::witness::AddCheckpoint { old: 3, proof: vec![], note }.body();
            // Offered twice: refused twice, kept once.
            for _ in 0..2 {
                match ask_parent(&client, &witness_only.url, body.clone()).await.unwrap() {
                    ParentAnswer::Refused(422, why) => assert!(why.contains("not consistent"), "{why}"),
                    _ => panic!("a contradicting checkpoint was not refused with 422"),
                }
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
    let mirrors: Vec<(u64, u64)> =
        v.as_array().unwrap().iter().map(|x| (x["mirrored"].as_u64().unwrap(), x["backlog"].as_u64().unwrap())).collect();
    assert_eq!(mirrors, [(0, 3), (0, 0), (3, 0)], "d11 mirrored whole, d13 witnessed only: {v}");
    assert_eq!(v[0]["evidence"].as_u64(), Some(1), "the same contradicting checkpoint twice is kept once: {v}");
    let (_, incidents) = admin.get("/api/incidents?kind=ledger_fork").await;
    assert_eq!(incidents.as_array().unwrap().len(), 1, "{incidents}");
    mirror_over_http(&c, &app.url).await;
    // Headquarters' read model: d11's books as its mirrored entries replay them; d12 (never
    // synced) and d13 (witnessed, not mirrored) are not in it.
    let (s, v) = admin.get("/api/sites/books").await;
    assert_eq!(s, 200, "{v}");
    let rows: Vec<(&str, u64, &str, u64)> = v["sites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (r["origin"].as_str().unwrap(), r["mirrored"].as_u64().unwrap(), r["root_unit"].as_str().unwrap(), r["units"].as_u64().unwrap())
        })
        .collect();
    assert_eq!(rows, [("d11.example", 3, "D-11", 1)], "{v}");
    let (s, v) = admin.get("/api/sites/d11.example/books").await;
    assert_eq!((s, v["row"]["origin"].as_str(), v["stock"].as_array().map(Vec::len)), (200, Some("d11.example"), Some(0)), "{v}");
    for (path, code) in [("/api/sites/d13.example/books", "not_found"), ("/api/sites/elsewhere.example/books", "not_found")] {
        let (s, v) = admin.get(path).await;
        assert_eq!((s, v["error"]["code"].as_str()), (404, Some(code)), "{path}: {v}");
    }
    // What flows down is asked for with a request signed by the child's key (docs/sites.md).
    let down = |body: String| {
        let url = format!("{}/down", app.url);
        async move {
            let r = reqwest::Client::new().post(url).body(body).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(down("nonsense".into()).await.0, 400);
    let at = time::OffsetDateTime::now_utc().unix_timestamp();
    let stranger = qm_ledger::sign_note(&qm_ledger::SiteKey::generate("x.example"), &format!("qm-down/v1\nx.example\n-\n{at}\n")).unwrap();
    assert_eq!(down(stranger).await.0, 404);
    let forged =
        qm_ledger::sign_note(&qm_ledger::SiteKey::generate("d11.example"), &format!("qm-down/v1\nd11.example\n-\n{at}\n")).unwrap();
    let (s, text) = down(forged).await;
    assert!(s == 403 && text.contains("not signed by site d11.example's key"), "{s} {text}");
    let d11_key = qm_ledger::SiteKey::read(&c.sites.iter().find(|s| s.2 == "d11.example").unwrap().1).unwrap();
    let signed = qm_ledger::sign_note(&d11_key, &format!("qm-down/v1\nd11.example\n-\n{at}\n")).unwrap();
    let (s, text) = down(signed).await;
    let answer: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("{s} {text}"));
    // No directive yet: the unit tree, the catalog and the staff of the unit it serves come down,
    // and nothing else (no credential, no stock).
    let entries = answer["entries"].as_array().unwrap_or_else(|| panic!("{s} {text}"));
    let types: std::collections::BTreeSet<String> = entries
        .iter()
        .map(|e| serde_json::from_str::<serde_json::Value>(e["entry"].as_str().unwrap()).unwrap()["event"]["type"].as_str().unwrap().into())
        .collect();
    let flows = ["unit_created", "item_type_defined", "person_registered"];
    assert!(s == 200 && types.iter().eq(flows.iter().copied().collect::<std::collections::BTreeSet<_>>().iter()), "{types:?}");
    // A department's officer may not see them; the attempts are recorded.
    let officer = sign_in(&app, "1103").await;
    let (s, v) = officer.get("/api/sites").await;
    assert_eq!((s, v["error"]["code"].as_str()), (403, Some("permission.scope")), "{v}");
    let (s, v) = admin.get("/api/sites/transfers").await;
    assert_eq!((s, v.as_array().map(Vec::len)), (200, Some(0)), "no transfer between these sites: {v}");
    for path in ["/api/sites/books", "/api/sites/d11.example/books", "/api/sites/transfers"] {
        let (s, v) = officer.get(path).await;
        assert_eq!((s, v["error"]["code"].as_str()), (403, Some("permission.scope")), "{path}: {v}");
    }
    app.stop().await;
}

/// The mirror's answers over HTTP, as tlog-mirror has them: a gzipped upload of what it holds is
/// answered with its cosignature; a body that is no request 400; an unknown log 404; a site it
/// holds no checkpoint of 422; an upload that ends elsewhere than the pending checkpoint 409 with
/// the mirror-info.
async fn mirror_over_http(c: &Children, url: &str) {
    use std::io::Write;
    let post = |body: Vec<u8>, gzip: bool| {
        let mut r = reqwest::Client::new().post(format!("{url}/mirror/add-entries")).header("content-type", "application/octet-stream");
        if gzip {
            r = r.header("content-encoding", "gzip");
        }
        async move {
            let r = r.body(body).send().await.unwrap();
            let accept = r.headers().get("accept-encoding").map(|v| v.to_str().unwrap().to_string());
            (r.status().as_u16(), r.headers().get("content-type").map(|v| v.to_str().unwrap().to_string()), accept, r.text().await.unwrap())
        }
    };
    let store = |origin: &str| {
        let (db, _, _) = c.sites.iter().find(|s| s.2 == origin).unwrap();
        qm_backends::open_store(db, false).unwrap()
    };
    let d11 = store("d11.example");
    let again = qm_app::mirror::upload_request(d11.as_ref(), "d11.example", 0, 3).unwrap().to_bytes().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&again).unwrap();
    let (s, _, accept, text) = post(gz.finish().unwrap(), true).await;
    assert_eq!((s, accept.as_deref()), (200, Some("gzip")), "{text}");
    assert!(text.starts_with("— ") && text.contains("/mirror "), "the mirror key's cosignature: {text}");
    let (s, _, _, text) = post(b"nonsense".to_vec(), false).await;
    assert_eq!(s, 400, "{text}");
    let mut stranger = qm_app::mirror::upload_request(d11.as_ref(), "d11.example", 0, 3).unwrap();
    stranger.origin = "elsewhere.example".into();
    assert_eq!(post(stranger.to_bytes().unwrap(), false).await.0, 404);
    let d12 = qm_app::mirror::upload_request(store("d12.example").as_ref(), "d12.example", 0, 3).unwrap();
    assert_eq!(post(d12.to_bytes().unwrap(), false).await.0, 422, "d12 never sent a checkpoint");
    let short = qm_app::mirror::upload_request(d11.as_ref(), "d11.example", 0, 2).unwrap();
    let (s, ctype, _, text) = post(short.to_bytes().unwrap(), false).await;
    assert_eq!((s, ctype.as_deref(), text.as_str()), (409, Some("text/x.tlog.mirror-info"), "3\n3\n\n"));
}

/// Tiles fetched beforehand over HTTP, presented to tlog_tiles at their C2SP paths.
struct Fetched(std::collections::HashMap<String, Vec<u8>>);

impl tlog_tiles::TileReader for Fetched {
    fn height(&self) -> u8 {
        8
    }
    fn read_tiles(&self, tiles: &[tlog_tiles::Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        // tlog_tiles names a tile `tile/8/L/N`; C2SP tlog-tiles serves it at `tile/L/N`.
        tiles
            .iter()
            .map(|t| self.0.get(&t.path().replacen("tile/8/", "tile/", 1)).cloned().ok_or(tlog_tiles::Error::IndexesNotInTree))
            .collect()
    }
    fn save_tiles(&self, _: &[tlog_tiles::Tile], _: &[Vec<u8>]) {}
}

/// The ledger as C2SP tlog-tiles, checked by implementations that are not ours: the checkpoint by
/// `signed_note`'s verifier, the hash tiles by `tlog_tiles`' authenticating tile reader (it rebuilds
/// the root from them), an entry from its bundle by `tlog_tiles::check_record`.
#[tokio::test]
async fn the_ledger_is_served_as_tiles_that_independent_verifiers_accept() {
    let app = spawn_app_prepared(
        |site| {
            let admin = qm_core::Badge::parse("0001").unwrap();
            let reqs: Vec<qm_app::Request> = (0..300)
                .map(|i| {
                    let c = qm_core::Command::CreateUnit {
                        unit: qm_core::UnitId::parse(&format!("T-{i}")).unwrap(),
                        name: format!("Tile unit {i}"),
                        parent: qm_core::UnitId::parse("HQ").unwrap(),
                    };
                    qm_app::Request::new(admin.clone(), c, format!("tiles-{i}"), time::OffsetDateTime::now_utc())
                })
                .collect();
            for r in site.execute_batch(reqs) {
                r.unwrap();
            }
            site.checkpoint().unwrap();
        },
        |_| {},
    )
    .await;
    let session = sign_in(&app, "0001").await;
    let (_, v) = session.get("/api/verifier-key").await;
    let vkey = v["verifier_key"].as_str().unwrap_or_else(|| panic!("{v}")).to_string();
    let http = reqwest::Client::new();
    let get = |path: String| {
        let (http, url) = (http.clone(), app.url.clone());
        async move {
            let r = http.get(format!("{url}{path}")).send().await.unwrap();
            (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
        }
    };
    let (s, note) = get("/ledger/checkpoint".into()).await;
    assert_eq!(s, 200);
    let parsed = signed_note::Note::from_bytes(&note).unwrap();
    let verifier = signed_note::StandardVerifier::new(&vkey).unwrap();
    parsed.verify(&signed_note::VerifierList::new(vec![Box::new(verifier)])).unwrap();
    let cp = tlog_tiles::Checkpoint::from_bytes(parsed.text()).unwrap();
    let size = cp.size();
    assert!(size > 300, "{size}");
    // Every hash tile of the tree, as a client downloads them.
    let mut tiles = std::collections::HashMap::new();
    for level in 0..3u8 {
        for index in 0..=(size >> (8 * u32::from(level))) / 256 {
            let width = qm_ledger::tile_width(level, index, size);
            if width == 0 {
                continue;
            }
            let t = tlog_tiles::Tile::new(8, level, index, width, false);
            let path = t.path().replacen("tile/8/", "tile/", 1);
            let (s, data) = get(format!("/ledger/{path}")).await;
            assert_eq!((s, data.len()), (200, width as usize * 32), "{path}");
            tiles.insert(path, data);
        }
    }
    let fetched = Fetched(tiles);
    let reader = tlog_tiles::TileHashReader::new(size, *cp.hash(), &fetched);
    // Entry 271 from its bundle (the second, partial one), proved included by tlog_tiles.
    let i = 271u64;
    let width = qm_ledger::tile_width(0, 1, size);
    let r = session.client.get(format!("{}/ledger/tile/entries/001.p/{width}", app.url)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let bundle = r.bytes().await.unwrap().to_vec();
    let mut at = 0;
    let mut entries = vec![];
    while at < bundle.len() {
        let n = u16::from_be_bytes([bundle[at], bundle[at + 1]]) as usize;
        entries.push(bundle[at + 2..at + 2 + n].to_vec());
        at += 2 + n;
    }
    assert_eq!(entries.len(), width as usize);
    let entry = &entries[(i - 256) as usize];
    assert!(String::from_utf8_lossy(entry).contains("unit_created"), "{}", String::from_utf8_lossy(entry));
    let proof = tlog_tiles::prove_record(size, i, &reader).unwrap();
    tlog_tiles::check_record(&proof, size, *cp.hash(), i, tlog_tiles::record_hash(entry)).unwrap();
    // A tile altered on the way yields no proof that checks.
    let mut bad = fetched.0.clone();
    bad.get_mut("tile/0/000").unwrap()[2 * 32 + 5] ^= 1;
    let bad = Fetched(bad);
    let leaf3 = tlog_tiles::record_hash(&{
        let r = session.client.get(format!("{}/ledger/tile/entries/000", app.url)).send().await.unwrap();
        let b = r.bytes().await.unwrap().to_vec();
        let (n0, rest) = (u16::from_be_bytes([b[0], b[1]]) as usize, &b[2..]);
        let mut rest = &rest[n0..];
        for _ in 0..2 {
            let n = u16::from_be_bytes([rest[0], rest[1]]) as usize;
            rest = &rest[2 + n..];
        }
        let n = u16::from_be_bytes([rest[0], rest[1]]) as usize;
        rest[2..2 + n].to_vec()
    });
    let honest = tlog_tiles::prove_record(size, 3, &reader).unwrap();
    tlog_tiles::check_record(&honest, size, *cp.hash(), 3, leaf3).unwrap();
    let altered = tlog_tiles::prove_record(size, 3, &tlog_tiles::TileHashReader::new(size, *cp.hash(), &bad));
    assert!(altered.is_err() || tlog_tiles::check_record(&altered.unwrap(), size, *cp.hash(), 3, leaf3).is_err());
    // A tile beyond the tree is not there; the entries are for headquarters' staff only.
    assert_eq!(get("/ledger/tile/0/005".into()).await.0, 404);
    assert_eq!(get("/ledger/tile/entries/000".into()).await.0, 401);
    let officer = sign_in(&app, "1103").await;
    let r = officer.client.get(format!("{}/ledger/tile/entries/000", app.url)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 403);
    app.stop().await;
}

/// A department whose headquarters cannot be reached works on; its dashboard says how many entries
/// wait for the parent's cosignature.
#[tokio::test]
async fn a_child_shows_what_waits_for_its_parent() {
    let witness = qm_app::sites::SiteKey::generate("hq.example/witness");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let app = spawn_app_with(|c| {
        c.parent = Some(format!("http://127.0.0.1:{closed}/witness"));
        c.parent_key = Some(qm_app::sites::cosigner_verifier_key(&witness));
        c.sync_every_s = 1;
    })
    .await;
    let admin = sign_in(&app, "0001").await;
    let html = admin.client.get(format!("{}/", app.url)).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("id=\"parent-status\"") && html.contains("no checkpoint of this site cosigned yet"), "{html}");
    assert!(html.contains("entries waiting"), "{html}");
    assert!(html.contains("id=\"parent-received\"") && html.contains("0 decisions received from above"), "{html}");
    // A parent key that is not a witness key stops the server at start.
    let r = qm_server::start(
        qm_server::Config {
            addr: "127.0.0.1:0".into(),
            db: app.db.clone(),
            parent: Some("http://127.0.0.1:1/witness".into()),
            parent_key: Some(witness.verifier_key()),
            ..qm_server::Config::default()
        },
        qm_app::Site::open(qm_backends::open_store, &app.db, None).unwrap(),
    )
    .await;
    assert!(r.err().is_some_and(|e| e.contains("QM_PARENT_KEY")));
    app.stop().await;
}
