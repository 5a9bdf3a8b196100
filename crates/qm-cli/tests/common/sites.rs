//! Processes of many sites (docs/sites.md): `qm` run against one site's database, `qm serve` for a
//! site ended by its PID when dropped, and an administrator's rewrite of a site's history.

use serde_json::Value;
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub fn qm(dir: &Path, db: &str, key: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_qm"))
        .current_dir(dir)
        .env_clear()
        .env("QM_DB", db)
        .env("QM_KEY", key)
        .env("QM_ACTOR", "0001")
        .env("QM_PIN", "1234")
        .args(args)
        .output()
        .unwrap()
}

pub fn ok(dir: &Path, db: &str, key: &Path, args: &[&str]) -> String {
    let out = qm(dir, db, key, args);
    let (o, e) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "qm {args:?}: {o}{e}");
    o.into_owned()
}

pub fn json(dir: &Path, db: &str, key: &Path, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.push("--json");
    serde_json::from_str(&ok(dir, db, key, &all)).unwrap()
}

/// `qm serve` for headquarters, ended by its PID when dropped.
pub struct Server(pub Child, pub String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `qm serve` at `addr` with `env` (the children file, or the parent to sync with).
pub fn serve(dir: &Path, db: &str, key: &Path, addr: &str, env: &[(&str, &str)], name: &str) -> Server {
    let stderr = dir.join(format!("{name}.stderr"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_qm"))
        .current_dir(dir)
        .env_clear()
        .env("QM_DB", db)
        .env("QM_KEY", key)
        .envs(env.iter().copied())
        .args(["serve", "--addr", addr])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let (url, lines) = super::served_url(&mut child, &stderr);
    // The rest of its output goes to NAME.log beside the stderr file, for a test to show when it fails.
    let mut log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    std::thread::spawn(move || {
        use std::io::Write;
        for l in lines.map_while(Result::ok) {
            let _ = writeln!(log, "{l}");
        }
    });
    Server(child, url)
}

/// What an administrator with the database and the key file can do: change an entry's bytes, rebuild
/// every tree hash stored with the entries, and sign a checkpoint of the rewritten tree.
pub fn rewrite_history(db: &str, key: &Path, seq: u64, from: &str, to: &str) {
    let c = rusqlite::Connection::open(db).unwrap();
    c.execute_batch("DROP TRIGGER entries_no_update;").unwrap();
    let bytes: Vec<u8> = c.query_row("SELECT bytes FROM entries WHERE seq = ?1", [seq as i64], |r| r.get(0)).unwrap();
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains(from), "entry {seq} does not say {from:?}: {text}");
    c.execute("UPDATE entries SET bytes = ?1 WHERE seq = ?2", rusqlite::params![text.replace(from, to).into_bytes(), seq as i64]).unwrap();
    let mut tree = qm_ledger::Frontier::new();
    let all: Vec<(i64, Vec<u8>)> = c
        .prepare("SELECT seq, bytes FROM entries ORDER BY seq")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (s, b) in &all {
        let hashes = tree.push(qm_ledger::leaf_hash(b));
        c.execute("UPDATE entries SET hashes = ?1 WHERE seq = ?2", rusqlite::params![qm_store::hashes_to_blob(&hashes), s]).unwrap();
    }
    let key = qm_ledger::SiteKey::read(key).unwrap();
    let note = qm_ledger::sign_checkpoint(&key, &qm_ledger::Checkpoint { origin: key.name().into(), size: tree.size(), root: tree.root() })
        .unwrap();
    c.execute("DELETE FROM checkpoints", []).unwrap();
    c.execute("INSERT INTO checkpoints (size, note) VALUES (?1, ?2)", rusqlite::params![tree.size() as i64, note]).unwrap();
}

/// A new PostgreSQL database for one site (QM_TEST_POSTGRES_URL), dropped with the handle.
pub fn postgres() -> qm_store_postgres::scratch::ScratchDatabase {
    let admin = std::env::var(qm_store_postgres::scratch::TEST_URL_VAR).expect(qm_store_postgres::scratch::HOW_TO_RUN);
    qm_store_postgres::scratch::ScratchDatabase::create(&admin).unwrap()
}

/// `qm init` of a site whose root unit is `unit` (named the same) and whose administrator is 0001
/// with PIN 1234.
pub fn init(d: &Path, db: &str, key: &Path, site: &str, unit: &str) {
    let args = ["init", "--site", site, "--root-unit", unit, "--root-unit-name", unit, "--admin-badge", "0001", "--admin-name", "Admin"];
    ok(d, db, key, &[&args[..], &["--admin-pin", "1234"]].concat());
}

/// The site's checkpoint verifier key (`qm verifier-key`).
pub fn verifier_key(d: &Path, db: &str, key: &Path) -> String {
    json(d, db, key, &["verifier-key"])["verifier_key"].as_str().unwrap().to_string()
}

/// A parent's witness and mirror keys (`qm witness key`).
pub fn parent_keys(d: &Path, db: &str, key: &Path) -> (String, String) {
    let k = json(d, db, key, &["witness", "key"]);
    (k["witness_key"].as_str().unwrap().to_string(), k["mirror_key"].as_str().unwrap().to_string())
}
