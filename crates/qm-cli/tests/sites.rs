//! Many sites (issue 17, docs/sites.md) as their operators run them: headquarters on PostgreSQL
//! serves as the witness of a department's SQLite site; the department asks for cosignatures with
//! `qm sync`; an administrator who rewrites the department's history, rebuilds its tree and
//! re-signs it with the site's key is refused at the next sync, and headquarters keeps both signed
//! checkpoints and raises a critical incident. Processes on loopback, ended by this test.

mod common;

use common::sites::*;
use serde_json::Value;
use std::path::Path;

#[test]
fn headquarters_witnesses_a_department_and_catches_a_rewritten_history() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let scratch = postgres();
    let (hq, hq_key) = (scratch.url().to_string(), d.join("hq.key"));
    let (dep, dep_key) = (d.join("d11.db").display().to_string(), d.join("d11.key"));
    let init = |db: &str, key: &Path, site: &str, unit: &str| {
        ok(
            d,
            db,
            key,
            &[
                "init",
                "--site",
                site,
                "--root-unit",
                unit,
                "--root-unit-name",
                unit,
                "--admin-badge",
                "0001",
                "--admin-name",
                "Admin",
                "--admin-pin",
                "1234",
            ],
        );
    };
    init(&hq, &hq_key, "hq.example", "HQ");
    init(&dep, &dep_key, "d11.example", "D-11");
    ok(d, &dep, &dep_key, &["unit", "add", "D-11-A", "--name", "Armory section", "--parent", "D-11"]);
    // Headquarters lists the department's site: its origin, its checkpoint key, the unit it serves.
    let dep_vkey = verifier_key(d, &dep, &dep_key);
    let children = d.join("children.toml");
    std::fs::write(&children, format!("[children.\"d11.example\"]\nkey = \"{dep_vkey}\"\nunit = \"HQ\"\n")).unwrap();
    let witness_key = json(d, &hq, &hq_key, &["witness", "key"])["witness_key"].as_str().unwrap().to_string();
    assert!(witness_key.starts_with("hq.example/witness+"), "{witness_key}");
    let mode = std::fs::metadata(qm_app::sites::witness_key_path(&hq_key)).unwrap();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777, 0o600, "the witness key is the owner's only");
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let hq_addr = format!("127.0.0.1:{port}");
    let hq_env = [("QM_CHILDREN", children.to_str().unwrap())];
    let server = serve(d, &hq, &hq_key, &hq_addr, &hq_env, "hq");
    let parent = format!("{}/witness", server.1);
    let sync = |db: &str, key: &Path| qm(d, db, key, &["sync", "--parent", &parent, "--parent-key", &witness_key, "--json"]);
    let synced = |db: &str, key: &Path| -> Value {
        let out = sync(db, key);
        assert!(out.status.success(), "{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    // First sync: from nothing; the cosignature is kept at the department.
    let first = synced(&dep, &dep_key);
    assert_eq!((first["cosigned_size"].as_str(), first["parent_held"].as_str()), (Some("4"), Some("0")), "{first}");
    // The department goes on; the next sync proves its new checkpoint extends the one cosigned.
    ok(d, &dep, &dep_key, &["unit", "add", "D-11-B", "--name", "Magazine section", "--parent", "D-11"]);
    let second = synced(&dep, &dep_key);
    assert_eq!((second["cosigned_size"].as_str(), second["parent_held"].as_str()), (Some("5"), Some("4")), "{second}");
    let status = json(d, &hq, &hq_key, &["witness", "status"]);
    assert_eq!((status[0]["origin"].as_str(), status[0]["size"].as_u64()), (Some("d11.example"), Some(5)), "{status}");
    // A copy of the department's database whose administrator renames a unit in its history,
    // rebuilds the tree and signs it with the site's own key.
    let forged = d.join("forged.db").display().to_string();
    std::fs::copy(&dep, &forged).unwrap();
    rewrite_history(&forged, &dep_key, 3, "Armory section", "Armory sectiom");
    let out = sync(&forged, &dep_key);
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success() && said.contains("(422)") && said.contains("not consistent"), "{said}");
    // Headquarters kept both signed checkpoints and raised a critical incident that names them.
    let evidence = json(d, &hq, &hq_key, &["witness", "evidence"]);
    assert_eq!(evidence.as_array().unwrap().len(), 1, "{evidence}");
    assert!(evidence[0]["held"].as_str().unwrap().starts_with("d11.example\n5\n"), "{evidence}");
    assert!(evidence[0]["offered"].as_str().unwrap().starts_with("d11.example\n5\n"), "{evidence}");
    let incidents = json(d, &hq, &hq_key, &["incidents"]);
    let fork = incidents.as_array().unwrap().iter().find(|i| i["kind"] == "ledger_fork").unwrap_or_else(|| panic!("{incidents}"));
    assert_eq!(fork["severity"], "critical", "{fork}");
    let summary = fork["summary"].as_str().unwrap();
    assert!(summary.contains("d11.example") && summary.contains("size 5"), "{summary}");
    // The honest department is not affected: its next checkpoint is cosigned.
    ok(d, &dep, &dep_key, &["unit", "add", "D-11-C", "--name", "Store", "--parent", "D-11"]);
    assert_eq!(synced(&dep, &dep_key)["cosigned_size"].as_str(), Some("6"));
    // A site headquarters does not witness is told so (404), and nothing is kept for it.
    let (other, other_key) = (d.join("d12.db").display().to_string(), d.join("d12.key"));
    init(&other, &other_key, "d12.example", "D-12");
    let out = sync(&other, &other_key);
    assert!(String::from_utf8_lossy(&out.stderr).contains("(404)"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(json(d, &hq, &hq_key, &["witness", "status"]).as_array().unwrap().len(), 1);
    let v = ok(d, &hq, &hq_key, &["verify"]);
    assert!(v.contains("verify: OK"), "{v}");
    // The department's own server syncs by itself: a write is cosigned within seconds; with
    // headquarters down it works on, and catches up once headquarters is back.
    let dep_server = serve(
        d,
        &dep,
        &dep_key,
        "127.0.0.1:0",
        &[("QM_PARENT", &parent), ("QM_PARENT_KEY", &witness_key), ("QM_SYNC_EVERY_S", "1")],
        "d11",
    );
    let held = |want: u64| {
        for _ in 0..150 {
            if json(d, &hq, &hq_key, &["witness", "status"])[0]["size"].as_u64() == Some(want) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        panic!("headquarters never cosigned size {want}: {}", json(d, &hq, &hq_key, &["witness", "status"]));
    };
    ok(d, &dep, &dep_key, &["unit", "add", "D-11-D", "--name", "Vault", "--parent", "D-11"]);
    held(7);
    drop(server);
    ok(d, &dep, &dep_key, &["unit", "add", "D-11-E", "--name", "Range", "--parent", "D-11"]);
    ok(d, &dep, &dep_key, &["unit", "add", "D-11-F", "--name", "Workshop", "--parent", "D-11"]);
    std::thread::sleep(std::time::Duration::from_secs(3));
    let server = serve(d, &hq, &hq_key, &hq_addr, &hq_env, "hq-again");
    held(9);
    drop(dep_server);
    // No line at all: the request and the answer go on removable media.
    ok(d, &dep, &dep_key, &["unit", "add", "D-11-G", "--name", "Annex", "--parent", "D-11"]);
    let media = d.join("usb");
    std::fs::create_dir(&media).unwrap();
    let (request, answer) = (media.join("d11.request").display().to_string(), media.join("d11.answer").display().to_string());
    let out = json(d, &dep, &dep_key, &["sync", "export", &request]);
    assert_eq!((out["checkpoint_size"].as_str(), out["parent_held"].as_str()), (Some("10"), Some("9")), "{out}");
    let children_arg = children.to_str().unwrap();
    ok(d, &hq, &hq_key, &["--children", children_arg, "witness", "import", &request, "--answer", &answer]);
    let out = json(d, &dep, &dep_key, &["sync", "import", &answer, "--parent-key", &witness_key]);
    assert_eq!(out["cosigned_size"].as_str(), Some("10"), "{out}");
    held(10);
    let status = json(d, &dep, &dep_key, &["sync", "status"]);
    assert_eq!((status["cosigned_size"].as_u64(), status["waiting"].as_u64()), (Some(10), Some(0)), "{status}");
    ok(d, &dep, &dep_key, &["unit", "add", "D-11-H", "--name", "Depot", "--parent", "D-11"]);
    let status = json(d, &dep, &dep_key, &["sync", "status"]);
    assert_eq!((status["size"].as_u64(), status["waiting"].as_u64()), (Some(11), Some(1)), "one entry waits for the next sync: {status}");
    // The same request carried twice is answered from what headquarters holds now (409): nothing changes.
    let again = qm(d, &hq, &hq_key, &["--children", children_arg, "witness", "import", &request, "--answer", &answer]);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("--parent-held 10"), "{again:?}");
    // One entry as a C2SP tlog-proof: the entry, its inclusion proof, the checkpoint headquarters
    // cosigned; checked offline with the department's and headquarters' keys, and by tlog_tiles.
    let text = ok(d, &dep, &dep_key, &["prove", "3", "--tlog-proof"]);
    assert!(text.starts_with("c2sp.org/tlog-proof@v1\nextra "), "{text}");
    let proof = qm_ledger::proof::TlogProof::parse(&text).unwrap();
    let as_json = json(d, &dep, &dep_key, &["prove", "3", "--tlog-proof"]);
    assert_eq!(as_json["tlog_proof"].as_str(), Some(text.as_str()), "--json carries the same proof");
    let entry = proof.extra.clone().unwrap();
    assert!(String::from_utf8_lossy(&entry).contains("Armory section"));
    let log = qm_ledger::CheckpointVerifier::new(&dep_vkey).unwrap();
    let cp = proof.verify(&entry, &log, &[&witness_key]).unwrap();
    assert_eq!((proof.index, cp.size), (3, 10));
    let tiles_proof: Vec<tlog_tiles::Hash> = proof.proof.iter().map(|h| tlog_tiles::Hash(*h)).collect();
    tlog_tiles::check_record(&tiles_proof, cp.size, tlog_tiles::Hash(cp.root), 3, tlog_tiles::record_hash(&entry)).unwrap();
    assert!(proof.verify(b"another entry", &log, &[&witness_key]).is_err(), "another entry is not proved by it");
    // A backup of headquarters keeps what it witnessed and the evidence.
    let backup = d.join("hq.qmbackup").display().to_string();
    ok(d, &hq, &hq_key, &["backup", &backup]);
    assert_eq!(json(d, &backup, &hq_key, &["witness", "evidence"]).as_array().unwrap().len(), 1);
    assert_eq!(json(d, &backup, &hq_key, &["witness", "status"])[0]["size"].as_u64(), Some(10));
    drop(server);
}

/// Headquarters keeps a verified mirror of a department's ledger (C2SP tlog-mirror): `qm sync` with
/// the mirror's key uploads the entries after the witness cosigns, the mirror cosigns once it holds
/// and has replayed them all; the department's server then keeps the mirror up to date by itself;
/// the department serves both cosignatures with its checkpoint; a copy rewritten and re-signed is
/// refused, and the mirror names the entry changed; a backup of headquarters keeps the mirror.
#[test]
fn headquarters_mirrors_a_departments_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let scratch = postgres();
    let (hq, hq_key) = (scratch.url().to_string(), d.join("hq.key"));
    let (dep, dep_key) = (d.join("d11.db").display().to_string(), d.join("d11.key"));
    for (db, key, site, unit) in [(&hq, &hq_key, "hq.example", "HQ"), (&dep, &dep_key, "d11.example", "D-11")] {
        init(d, db, key, site, unit);
    }
    ok(d, &dep, &dep_key, &["unit", "add", "D-11-A", "--name", "Armory section", "--parent", "D-11"]);
    let dep_vkey = verifier_key(d, &dep, &dep_key);
    let children = d.join("children.toml");
    std::fs::write(&children, format!("[children.\"d11.example\"]\nkey = \"{dep_vkey}\"\nunit = \"HQ\"\n")).unwrap();
    let keys = json(d, &hq, &hq_key, &["witness", "key"]);
    let (witness_key, mirror_key) = (keys["witness_key"].as_str().unwrap().to_string(), keys["mirror_key"].as_str().unwrap().to_string());
    assert!(mirror_key.starts_with("hq.example/mirror+") && mirror_key != witness_key, "{keys}");
    let mode = std::fs::metadata(qm_app::mirror::mirror_key_path(&hq_key)).unwrap();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777, 0o600, "the mirror key is the owner's only");
    let server = serve(d, &hq, &hq_key, "127.0.0.1:0", &[("QM_CHILDREN", children.to_str().unwrap())], "hq");
    let parent = format!("{}/witness", server.1);
    let first = json(d, &dep, &dep_key, &["sync", "--parent", &parent, "--parent-key", &witness_key, "--parent-mirror-key", &mirror_key]);
    assert_eq!((first["cosigned_size"].as_str(), first["mirrored_size"].as_str()), (Some("4"), Some("4")), "{first}");
    let status = json(d, &hq, &hq_key, &["witness", "status"]);
    assert_eq!((status[0]["size"].as_u64(), status[0]["mirrored_size"].as_u64()), (Some(4), Some(4)), "{status}");
    // The department's server keeps the mirror up to date by itself.
    let dep_server = serve(
        d,
        &dep,
        &dep_key,
        "127.0.0.1:0",
        &[("QM_PARENT", &parent), ("QM_PARENT_KEY", &witness_key), ("QM_PARENT_MIRROR_KEY", &mirror_key), ("QM_SYNC_EVERY_S", "1")],
        "d11",
    );
    ok(d, &dep, &dep_key, &["unit", "add", "D-11-B", "--name", "Magazine section", "--parent", "D-11"]);
    let mut mirrored = None;
    for _ in 0..150 {
        mirrored = json(d, &hq, &hq_key, &["witness", "status"])[0]["mirrored_size"].as_u64();
        if mirrored == Some(5) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(mirrored, Some(5), "the department's server did not bring the mirror to its 5 entries");
    // Its checkpoint is served with both cosignatures: the witness's and the mirror's.
    let note = reqwest::blocking::get(format!("{}/ledger/checkpoint", dep_server.1)).unwrap().text().unwrap();
    assert!(note.starts_with("d11.example\n5\n"), "{note}");
    assert!(note.contains("— hq.example/witness ") && note.contains("— hq.example/mirror "), "{note}");
    let log = qm_ledger::CheckpointVerifier::new(&dep_vkey).unwrap();
    qm_ledger::witness::open_cosigned(&note, &log, &mirror_key).unwrap();
    drop(dep_server);
    // No line at all: the entries go on removable media beside the checkpoint request.
    let (dep_for_media, mirror_kv) = (dep.clone(), format!("--parent-mirror-key={mirror_key}"));
    media_round(d, (&dep_for_media, &dep_key), (&hq, &hq_key), &children, (&witness_key, &mirror_kv));
    // A copy whose administrator renames a unit in entry 3, rebuilds the tree and signs it with
    // the site key: the witness refuses it, and the mirror names the entry that was changed.
    // (The server was killed: its last entries may still be in the write-ahead log, copied too.)
    let forged = d.join("forged.db").display().to_string();
    std::fs::copy(&dep, &forged).unwrap();
    if Path::new(&format!("{dep}-wal")).exists() {
        std::fs::copy(format!("{dep}-wal"), format!("{forged}-wal")).unwrap();
    }
    rewrite_history(&forged, &dep_key, 3, "Armory section", "Armory sectiom");
    let out = qm(d, &forged, &dep_key, &["sync", "--parent", &parent, "--parent-key", &witness_key, "--parent-mirror-key", &mirror_key]);
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success() && said.contains("(422)") && said.contains("entry 3 of site d11.example was rewritten"), "{said}");
    let incidents = json(d, &hq, &hq_key, &["incidents"]);
    let named: Vec<&Value> = incidents.as_array().unwrap().iter().filter(|i| i["kind"] == "ledger_fork").collect();
    assert!(named.iter().any(|i| i["summary"].as_str().unwrap().contains("entry 3 of site d11.example was rewritten")), "{incidents}");
    assert!(named.iter().all(|i| i["severity"] == "critical"), "{incidents}");
    assert_eq!(json(d, &hq, &hq_key, &["witness", "status"])[0]["mirrored_size"].as_u64(), Some(8), "the mirror is unchanged");
    // A backup of headquarters keeps the mirror: the entries and the checkpoint they make.
    let backup = d.join("hq.qmbackup").display().to_string();
    ok(d, &hq, &hq_key, &["backup", &backup]);
    assert_eq!(json(d, &backup, &hq_key, &["witness", "status"])[0]["mirrored_size"].as_u64(), Some(8));
    drop(server);
}

/// The department, offline, writes three entries and carries its checkpoint request and the
/// entries the mirror lacks on media; an entries file altered on the way is refused by the mirror
/// (the witness's cosignature stands); exported again, the mirror takes it and both cosignatures
/// come back.
fn media_round(d: &Path, dep: (&str, &Path), hq: (&str, &Path), children: &Path, keys: (&str, &str)) {
    let ((dep, dep_key), (hq, hq_key), (witness_key, mirror_kv)) = (dep, hq, keys);
    for (unit, name) in [("D-11-C", "Store room"), ("D-11-D", "Vault"), ("D-11-E", "Range")] {
        ok(d, dep, dep_key, &["unit", "add", unit, "--name", name, "--parent", "D-11"]);
    }
    let media = d.join("usb");
    std::fs::create_dir_all(&media).unwrap();
    let (request, answer) = (media.join("d11.request").display().to_string(), media.join("d11.answer").display().to_string());
    let out = json(d, dep, dep_key, &["sync", mirror_kv, "export", &request]);
    assert_eq!((out["checkpoint_size"].as_str(), out["entries_from"].as_str()), (Some("8"), Some("5")), "{out}");
    let entries = format!("{request}.entries");
    let good = std::fs::read(&entries).unwrap();
    let pos = good.windows(10).position(|w| w == b"Store room").expect("the entry's text is in the file");
    let mut bad = good.clone();
    bad[pos + 9] = b'n';
    std::fs::write(&entries, &bad).unwrap();
    let children = children.to_str().unwrap();
    let out = qm(d, hq, hq_key, &["--children", children, "witness", "import", &request, "--answer", &answer]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && said.contains("holds the witness's cosignature") && said.contains("mirror refused the entries (422)"),
        "{said}"
    );
    let status = json(d, hq, hq_key, &["witness", "status"]);
    assert_eq!((status[0]["size"].as_u64(), status[0]["mirrored_size"].as_u64()), (Some(8), Some(5)), "{status}");
    let kept = json(d, dep, dep_key, &["sync", "import", &answer, "--parent-key", witness_key]);
    assert_eq!(kept["cosigned_size"].as_str(), Some("8"), "{kept}");
    let missing = qm(d, dep, dep_key, &["sync", mirror_kv, "import", &answer, "--parent-key", witness_key]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("the mirror's is missing"), "{missing:?}");
    // Exported again (the witness holds 8 now): the mirror checks, stores, replays and cosigns.
    let out = json(d, dep, dep_key, &["sync", mirror_kv, "export", &request]);
    assert_eq!((out["parent_held"].as_str(), out["entries_from"].as_str()), (Some("8"), Some("5")), "{out}");
    assert_eq!(std::fs::read(&entries).unwrap(), good, "the same entries, proved against the same checkpoint");
    let out = json(d, hq, hq_key, &["--children", children, "witness", "import", &request, "--answer", &answer]);
    assert_eq!(out["mirrored"].as_str(), Some("yes"), "{out}");
    let back = json(d, dep, dep_key, &["sync", mirror_kv, "import", &answer, "--parent-key", witness_key]);
    assert_eq!((back["cosigned_size"].as_str(), back["mirrored_size"].as_str()), (Some("8"), Some("8")), "{back}");
    let status = json(d, hq, hq_key, &["witness", "status"]);
    assert_eq!((status[0]["size"].as_u64(), status[0]["mirrored_size"].as_u64()), (Some(8), Some(8)), "{status}");
}

/// Headquarters (on PostgreSQL) reads a department's books from its mirror: the demo organization's
/// site syncs with the mirror's key; `qm witness books` gives the site in brief and the stock of each
/// item type over every site, equal to the department's own `qm stock`; with the site's origin, its
/// stock lines; a rifle issued at the department shows at headquarters after the next sync only.
#[test]
fn headquarters_reads_a_departments_books_from_its_mirror() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let scratch = postgres();
    let (hq, hq_key) = (scratch.url().to_string(), d.join("hq.key"));
    let (dep, dep_key) = (d.join("dep.db").display().to_string(), d.join("dep.key"));
    init(d, &hq, &hq_key, "hq.example", "NHQ");
    ok(d, &dep, &dep_key, &["demo", "--out", &dep]);
    let dep_vkey = verifier_key(d, &dep, &dep_key);
    let children = d.join("children.toml");
    std::fs::write(&children, format!("[children.\"demo.quartermaster\"]\nkey = \"{dep_vkey}\"\nunit = \"NHQ\"\n")).unwrap();
    let children = children.to_str().unwrap();
    let keys = json(d, &hq, &hq_key, &["witness", "key"]);
    let (witness_key, mirror_key) = (keys["witness_key"].as_str().unwrap().to_string(), keys["mirror_key"].as_str().unwrap().to_string());
    let server = serve(d, &hq, &hq_key, "127.0.0.1:0", &[("QM_CHILDREN", children)], "hq-books");
    let parent = format!("{}/witness", server.1);
    let sync = || json(d, &dep, &dep_key, &["sync", "--parent", &parent, "--parent-key", &witness_key, "--parent-mirror-key", &mirror_key]);
    let first = sync();
    let size = first["mirrored_size"].as_str().unwrap().parse::<u64>().unwrap();
    let books = json(d, &hq, &hq_key, &["--children", children, "witness", "books"]);
    let row = &books["sites"][0];
    assert_eq!(
        (row["origin"].as_str(), row["mirrored"].as_u64(), row["root_unit"].as_str()),
        (Some("demo.quartermaster"), Some(size), Some("HQ")),
        "{books}"
    );
    // The totals are the department's own stock, summed per item type.
    let own = json(d, &dep, &dep_key, &["stock"]);
    let rifles: u64 =
        own.as_array().unwrap().iter().filter(|l| l["item_type"] == "RIFLE-G36").map(|l| l["serials"].as_u64().unwrap()).sum();
    let total = |b: &Value, t: &str| {
        b["totals"].as_array().unwrap().iter().find(|x| x["item_type"] == t).map(|x| x["total"].as_str().unwrap().to_string())
    };
    assert_eq!(total(&books, "RIFLE-G36"), Some(rifles.to_string()), "{books}");
    let issued = row["issued"].as_u64().unwrap();
    let site = json(d, &hq, &hq_key, &["--children", children, "witness", "books", "demo.quartermaster"]);
    assert_eq!(site["stock"], own, "line for line the department's own stock");
    let text = ok(d, &hq, &hq_key, &["--children", children, "witness", "books"]);
    assert!(text.contains("demo.quartermaster") && text.contains("stock over every site") && text.contains("RIFLE-G36"), "{text}");
    // A rifle issued at the department: seen at headquarters once synced, not before.
    let w = json(d, &dep, &dep_key, &["where", "R-1044"]);
    assert!(w["account"].as_str().unwrap().starts_with("location:"), "{w}");
    ok(d, &dep, &dep_key, &["--actor", "0417", "issue", "--to", "1001", "R-1044"]);
    let before = json(d, &hq, &hq_key, &["--children", children, "witness", "books"]);
    assert_eq!(before["sites"][0]["issued"].as_u64(), Some(issued), "not synced yet");
    sync();
    let after = json(d, &hq, &hq_key, &["--children", children, "witness", "books"]);
    assert_eq!(after["sites"][0]["issued"].as_u64(), Some(issued + 1), "{after}");
    let missing = qm(d, &hq, &hq_key, &["--children", children, "witness", "books", "elsewhere.example"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("not found: child site elsewhere.example"), "{missing:?}");
    drop(server);
}

/// Three levels: a department syncs with its region, the region relays the department's ledger to
/// headquarters (on PostgreSQL), which witnesses and mirrors it as it does the region's own — first
/// with `qm sync` by hand at the region, then by the region's server on its own; headquarters reads
/// the department's books from its mirror.
#[test]
fn headquarters_holds_a_grandchilds_ledger_relayed_by_its_region() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let scratch = postgres();
    let (hq, hq_key) = (scratch.url().to_string(), d.join("hq.key"));
    let (region, region_key) = (d.join("r1.db").display().to_string(), d.join("r1.key"));
    let (dep, dep_key) = (d.join("d11.db").display().to_string(), d.join("d11.key"));
    let mut vkeys = vec![];
    for (db, key, site, unit) in
        [(&hq, &hq_key, "hq.example", "NHQ"), (&region, &region_key, "r1.example", "R-1"), (&dep, &dep_key, "d11.example", "D-11")]
    {
        init(d, db, key, site, unit);
        vkeys.push(verifier_key(d, db, key));
    }
    ok(d, &dep, &dep_key, &["unit", "add", "D-11-A", "--name", "Armory section", "--parent", "D-11"]);
    let child = |origin: &str, vkey: &str, unit: &str| format!("[children.\"{origin}\"]\nkey = \"{vkey}\"\nunit = \"{unit}\"\n");
    let (hq_children, region_children) = (d.join("hq-children.toml"), d.join("r1-children.toml"));
    std::fs::write(&hq_children, child("r1.example", &vkeys[1], "NHQ") + &child("d11.example", &vkeys[2], "NHQ")).unwrap();
    std::fs::write(&region_children, child("d11.example", &vkeys[2], "R-1")).unwrap();
    let keys = |db: &str, key: &Path| parent_keys(d, db, key);
    let ((hq_wk, hq_mk), (r_wk, r_mk)) = (keys(&hq, &hq_key), keys(&region, &region_key));
    let hq_server = serve(d, &hq, &hq_key, "127.0.0.1:0", &[("QM_CHILDREN", hq_children.to_str().unwrap())], "hq-3");
    let hq_parent = format!("{}/witness", hq_server.1);
    // The department syncs with its region's server (which does not sync with headquarters yet).
    let region_server = serve(d, &region, &region_key, "127.0.0.1:0", &[("QM_CHILDREN", region_children.to_str().unwrap())], "r1-a");
    let (r_addr, r_parent) = (region_server.1.trim_start_matches("http://").to_string(), format!("{}/witness", region_server.1));
    let dep_sync = || json(d, &dep, &dep_key, &["sync", "--parent", &r_parent, "--parent-key", &r_wk, "--parent-mirror-key", &r_mk]);
    assert_eq!(dep_sync()["mirrored_size"].as_str(), Some("4"));
    drop(region_server);
    // `qm sync` at the region: its own ledger, then the department's, relayed.
    let out = json(d, &region, &region_key, &["sync", "--parent", &hq_parent, "--parent-key", &hq_wk, "--parent-mirror-key", &hq_mk]);
    assert_eq!((out["mirrored_size"].as_str(), out["relayed"].as_str()), (Some("3"), Some("d11.example 4")), "{out}");
    let held = |origin: &str| {
        let status = json(d, &hq, &hq_key, &["witness", "status"]);
        let row = status.as_array().unwrap().iter().find(|w| w["origin"] == origin).cloned();
        row.map(|w| (w["size"].as_u64().unwrap(), w["mirrored_size"].as_u64().unwrap()))
    };
    assert_eq!((held("r1.example"), held("d11.example")), (Some((3, 3)), Some((4, 4))));
    // Now the region's server relays by itself: the department writes on and syncs with it.
    let region_env = [
        ("QM_CHILDREN", region_children.to_str().unwrap()),
        ("QM_PARENT", hq_parent.as_str()),
        ("QM_PARENT_KEY", hq_wk.as_str()),
        ("QM_PARENT_MIRROR_KEY", hq_mk.as_str()),
        ("QM_SYNC_EVERY_S", "1"),
    ];
    let region_server = serve(d, &region, &region_key, &r_addr, &region_env, "r1-b");
    ok(d, &dep, &dep_key, &["unit", "add", "D-11-B", "--name", "Magazine section", "--parent", "D-11"]);
    ok(d, &dep, &dep_key, &["unit", "add", "D-11-C", "--name", "Store room", "--parent", "D-11"]);
    assert_eq!(dep_sync()["mirrored_size"].as_str(), Some("6"));
    let mut seen = None;
    for _ in 0..150 {
        seen = held("d11.example");
        if seen == Some((6, 6)) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(seen, Some((6, 6)), "the region's server did not relay the department's new entries");
    let books = json(d, &hq, &hq_key, &["--children", hq_children.to_str().unwrap(), "witness", "books", "d11.example"]);
    assert_eq!((books["row"]["mirrored"].as_u64(), books["row"]["units"].as_u64()), (Some(6), Some(4)), "{books}");
    drop(region_server);
    drop(hq_server);
}

/// Down and back up: headquarters (the demo organization, on PostgreSQL) orders every unit to a
/// heightened guard; the department's own site, at its next `qm sync` with headquarters' checkpoint
/// key, records the order with its proof and shows it in force; the department's duty officer
/// acknowledges it; the next sync carries the acknowledgment up in the department's ledger, and
/// headquarters reads it from its mirror.
#[test]
fn a_directive_from_headquarters_is_acknowledged_at_a_department_and_seen_at_headquarters() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let scratch = postgres();
    let (hq, hq_key) = (scratch.url().to_string(), d.join("hq.key"));
    let (dep, dep_key) = (d.join("d11.db").display().to_string(), d.join("d11.key"));
    ok(d, &hq, &hq_key, &["demo", "--out", &hq, "--key", hq_key.to_str().unwrap()]);
    init(d, &dep, &dep_key, "d11.example", "D-11");
    ok(
        d,
        &dep,
        &dep_key,
        &["person", "add", "0501", "--name", "L. Chen", "--unit", "D-11", "--roles", "duty_officer", "--new-pin", "1234"],
    );
    let vkey = |db: &str, key: &Path| verifier_key(d, db, key);
    let (hq_vkey, dep_vkey) = (vkey(&hq, &hq_key), vkey(&dep, &dep_key));
    let children = d.join("children.toml");
    std::fs::write(&children, format!("[children.\"d11.example\"]\nkey = \"{dep_vkey}\"\nunit = \"D-11\"\n")).unwrap();
    let children = children.to_str().unwrap();
    let (wk, mk) = parent_keys(d, &hq, &hq_key);
    let server = serve(d, &hq, &hq_key, "127.0.0.1:0", &[("QM_CHILDREN", children)], "hq-down");
    let parent = format!("{}/witness", server.1);
    let issued = json(
        d,
        &hq,
        &hq_key,
        &[
            "--actor",
            "0009",
            "directive",
            "issue",
            "--unit",
            "HQ",
            "--title",
            "Heightened guard",
            "--text",
            "Two guards at every armory door.",
            "--posture",
            "high",
            "--days",
            "2",
        ],
    );
    let id = issued["entries"][0]["event"]["directive"].as_str().unwrap().to_string();
    let sync = || {
        json(
            d,
            &dep,
            &dep_key,
            &["sync", "--parent", &parent, "--parent-key", &wk, "--parent-mirror-key", &mk, "--parent-log-key", &hq_vkey],
        )
    };
    let first = sync();
    assert!(first["received"].as_str().unwrap().parse::<u32>().unwrap() >= 1, "{first}");
    let here = json(d, &dep, &dep_key, &["directives"]);
    let ours =
        here.as_array().unwrap().iter().find(|x| x["id"] == id.as_str()).unwrap_or_else(|| panic!("{id} not at the department: {here}"));
    assert_eq!(
        (ours["unit"].as_str(), ours["status"].as_str(), ours["issued_by"].as_str()),
        (Some("D-11"), Some("in_force"), Some("0009")),
        "{ours}"
    );
    let log = ok(d, &dep, &dep_key, &["log", "--limit", "5"]);
    assert!(log.contains("received from site demo.quartermaster"), "{log}");
    // The same sync again receives nothing new.
    assert_eq!(sync()["received"].as_str(), Some("0"));
    // The department's duty officer acknowledges; the next sync carries it up.
    ok(d, &dep, &dep_key, &["--actor", "0501", "directive", "ack", &id, "--unit", "D-11"]);
    let up = sync();
    let size = json(d, &dep, &dep_key, &["sync", "status"])["size"].as_u64().unwrap();
    assert_eq!(up["mirrored_size"].as_str(), Some(size.to_string().as_str()), "{up}");
    let books = json(d, &hq, &hq_key, &["--children", children, "witness", "books", "d11.example"]);
    let seen = books["directives"].as_array().unwrap().iter().find(|x| x["id"] == id.as_str()).cloned();
    let seen = seen.unwrap_or_else(|| panic!("{id} not in the department's books at headquarters: {books}"));
    assert_eq!((seen["units_acknowledged"].as_u64(), seen["units_concerned"].as_u64()), (Some(1), Some(1)), "{seen}");
    assert!(seen["received_from"].as_str().unwrap().starts_with("site demo.quartermaster, its entry "), "{seen}");
    // The directive across the sites below headquarters, from their mirrors.
    let across = json(d, &hq, &hq_key, &["--children", children, "witness", "compliance", &id]);
    assert_eq!(across[0]["origin"].as_str(), Some("d11.example"), "{across}");
    assert_eq!((across[0]["recorded"].as_bool(), across[0]["units_acknowledged"].as_u64()), (Some(true), Some(1)), "{across}");
    let (s, v) = {
        let c = reqwest::blocking::Client::builder().cookie_store(true).build().unwrap();
        let r = c.get(format!("{}/api/directives/{id}/sites", server.1)).send().unwrap();
        (r.status().as_u16(), r.text().unwrap())
    };
    assert_eq!(s, 401, "the API asks who is asking: {v}");
    drop(server);
}

/// A transfer between two sites, matched by headquarters (on PostgreSQL) from both ledgers: the
/// demo organization's site dispatches rifles to unit D-12, which its own site serves; that site
/// records the receipts from `demo.quartermaster/T-n`; once both have synced, headquarters sees one
/// transfer received as sent, one received with a rifle missing, one still awaited.
#[test]
fn headquarters_matches_a_transfer_between_two_sites_from_both_ledgers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let scratch = postgres();
    let (hq, hq_key) = (scratch.url().to_string(), d.join("hq.key"));
    let (a, a_key) = (d.join("a.db").display().to_string(), d.join("a.key"));
    let (b, b_key) = (d.join("d12.db").display().to_string(), d.join("d12.key"));
    let init = |db: &str, key: &Path, site: &str, unit: &str| {
        init(d, db, key, site, unit);
    };
    init(&hq, &hq_key, "hq.example", "NHQ");
    init(&b, &b_key, "d12.example", "D-12");
    ok(d, &a, &a_key, &["demo", "--out", &a]);
    ok(d, &b, &b_key, &["item-type", "add", "RIFLE-G36", "--name", "Rifle G36", "--kind", "weapon", "--tracking", "serial"]);
    ok(d, &b, &b_key, &["location", "add", "D12-ARM", "--name", "Armory", "--unit", "D-12", "--kind", "armory"]);
    ok(d, &b, &b_key, &["person", "add", "0417", "--name", "K. Osei", "--unit", "D-12", "--roles", "armorer", "--new-pin", "1234"]);
    // Four rifles racked at one place of the department D-11 in the demo organization.
    let mut at: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for n in 1040..1080 {
        let out = qm(d, &a, &a_key, &["where", &format!("R-{n}"), "--json"]);
        if let Ok(w) = serde_json::from_slice::<Value>(&out.stdout) {
            if let (Some(acc), Some("D-11")) = (w["account"].as_str(), w["unit"].as_str()) {
                if let Some(loc) = acc.strip_prefix("location:") {
                    at.entry(loc.to_string()).or_default().push(format!("R-{n}"));
                }
            }
        }
    }
    let (rack, rifles) = at.into_iter().find(|(_, v)| v.len() >= 4).expect("four rifles racked together at D-11");
    let dispatch = |items: &[&str], doc: &str| {
        let args =
            [&["--actor", "0611", "transfer", "dispatch", "--from", &rack, "--to-unit", "D-12", "--document", doc][..], items].concat();
        json(d, &a, &a_key, &args)["entries"][0]["event"]["transfer"].as_str().unwrap().to_string()
    };
    let whole = dispatch(&[&rifles[0]], "TR-71");
    let short = dispatch(&[&rifles[1], &rifles[2]], "TR-72");
    let pending = dispatch(&[&rifles[3]], "TR-73");
    let receive = |from: &str, doc: &str, items: &[&str]| {
        let from = format!("demo.quartermaster/{from}");
        let args =
            [&["--actor", "0417", "receive", "--to", "D12-ARM", "--from", &from, "--document", doc, "--item-type", "RIFLE-G36"][..], items]
                .concat();
        ok(d, &b, &b_key, &args);
    };
    receive(&whole, "TR-71", &[&rifles[0]]);
    receive(&short, "TR-72", &[&rifles[1]]);
    // Both sites sync with headquarters, which mirrors them.
    let vkey = |db: &str, key: &Path| verifier_key(d, db, key);
    let children = d.join("children.toml");
    let text = format!(
        "[children.\"demo.quartermaster\"]\nkey = \"{}\"\nunit = \"NHQ\"\n[children.\"d12.example\"]\nkey = \"{}\"\nunit = \"D-12\"\n",
        vkey(&a, &a_key),
        vkey(&b, &b_key)
    );
    std::fs::write(&children, text).unwrap();
    let children = children.to_str().unwrap();
    let (wk, mk) = parent_keys(d, &hq, &hq_key);
    let server = serve(d, &hq, &hq_key, "127.0.0.1:0", &[("QM_CHILDREN", children)], "hq-transfers");
    let parent = format!("{}/witness", server.1);
    for (db, key) in [(&a, &a_key), (&b, &b_key)] {
        json(d, db, key, &["sync", "--parent", &parent, "--parent-key", &wk, "--parent-mirror-key", &mk]);
    }
    let matched = json(d, &hq, &hq_key, &["--children", children, "witness", "transfers"]);
    let row = |t: &str| {
        let id = format!("demo.quartermaster/{t}");
        matched
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == id.as_str())
            .cloned()
            .unwrap_or_else(|| panic!("{id} not matched: {matched}"))
    };
    assert_eq!((row(&whole)["status"].as_str(), row(&whole)["to_site"].as_str()), (Some("received"), Some("d12.example")));
    let s = row(&short);
    assert_eq!(s["status"].as_str(), Some("mismatch"), "{s}");
    assert!(s["differences"][0].as_str().unwrap().contains(&format!("serial {}", rifles[2])), "{s}");
    assert_eq!(row(&pending)["status"].as_str(), Some("awaited"));
    assert_eq!(matched[0]["id"].as_str(), Some(format!("demo.quartermaster/{short}").as_str()), "mismatches first: {matched}");
    let text = ok(d, &hq, &hq_key, &["--children", children, "witness", "transfers"]);
    assert!(text.contains("mismatch") && text.contains("awaited"), "{text}");
    // The mismatch is a discrepancy incident at headquarters, at the unit the sending site serves, once.
    // The discrepancy incidents at headquarters about one transfer.
    let incidents_about = |t: &str| -> Vec<Value> {
        let all = json(d, &hq, &hq_key, &["incidents", "--kind", "count_discrepancy"]);
        let about = |i: &&Value| i["summary"].as_str().unwrap().contains(&format!("demo.quartermaster/{t} "));
        all.as_array().unwrap().iter().filter(about).cloned().collect()
    };
    let about = incidents_about(&short);
    let incidents = Value::from(about.clone());
    assert_eq!(about.len(), 1, "{incidents}");
    assert_eq!((about[0]["unit"].as_str(), about[0]["severity"].as_str()), (Some("NHQ"), Some("high")), "{incidents}");
    assert!(about[0]["summary"].as_str().unwrap().contains("received with differences"), "{incidents}");
    // Headquarters' clock, 73 hours on, with nothing new from either site: the transfer still
    // awaited is overdue, a medium incident once; the next tick finds nothing new.
    drop(server);
    let later =
        (time::OffsetDateTime::now_utc() + time::Duration::hours(73)).format(&time::format_description::well_known::Rfc3339).unwrap();
    let tick = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_qm"))
            .current_dir(d)
            .env_clear()
            .envs([("QM_DB", hq.as_str()), ("QM_KEY", hq_key.to_str().unwrap()), ("QM_TEST_NOW", later.as_str())])
            .args(["--children", children, "tick", "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()["transfers_across"].as_u64()
    };
    assert_eq!(tick(), Some(1));
    assert_eq!(tick(), Some(0), "once");
    let overdue = incidents_about(&pending);
    let incidents = Value::from(overdue.clone());
    assert_eq!(overdue.len(), 1, "{incidents}");
    assert_eq!(overdue[0]["severity"].as_str(), Some("medium"), "{incidents}");
    assert!(overdue[0]["summary"].as_str().unwrap().contains("is not received there after 72 hours"), "{incidents}");
}
