//! CLI tests: run the real `qm` binary as a process on a temporary database and check outputs and exit codes.

mod common;
#[path = "cli/people.rs"]
mod people;
#[path = "cli/returns.rs"]
mod returns;
#[path = "cli/terminal.rs"]
mod terminal;

use std::path::{Path, PathBuf};
use std::process::Command;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

struct Env {
    dir: tempfile::TempDir,
    /// A PostgreSQL URL instead of the SQLite file, with its key file.
    url: Option<String>,
    /// A simulated clock for the commands (`QM_TEST_NOW`), when set.
    now: std::cell::RefCell<Option<String>>,
}

impl Env {
    fn new() -> Env {
        Env { dir: tempfile::tempdir().unwrap(), url: None, now: Default::default() }
    }
    fn db(&self) -> PathBuf {
        self.dir.path().join("site.db")
    }
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
    /// Runs qm as `actor` (PIN 1234) with the given arguments.
    fn qm_as(&self, actor: &str, args: &[&str]) -> Run {
        self.qm_env(actor, &[], args)
    }
    /// Runs qm as `actor` with the given arguments and these environment variables besides.
    fn qm_env(&self, actor: &str, env: &[(&str, &str)], args: &[&str]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_qm"));
        cmd.current_dir(self.dir.path()).env_clear();
        if let Some(url) = &self.url {
            cmd.env("QM_DB", url).env("QM_KEY", self.path("site.key"));
        } else {
            cmd.env("QM_DB", self.db());
        }
        cmd.env("QM_ACTOR", actor)
            .env("QM_PIN", "1234")
            .env("QM_WITNESS_PIN", "1234")
            .env("QM_NEW_PIN", "1234")
            .envs(env.iter().copied())
            .args(args);
        if let Some(t) = self.now.borrow().as_ref() {
            cmd.env("QM_TEST_NOW", t);
        }
        let out = cmd.output().unwrap();
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into(),
            stderr: String::from_utf8_lossy(&out.stderr).into(),
        };
        eprintln!("$ qm {} (as {actor})\n-> exit {}\n{}{}", args.join(" "), run.code, run.stdout, run.stderr);
        run
    }
    fn qm(&self, args: &[&str]) -> Run {
        self.qm_as("0001", args)
    }
    fn ok(&self, actor: &str, args: &[&str]) -> String {
        let r = self.qm_as(actor, args);
        assert_eq!(r.code, 0, "qm {args:?} failed: {}{}", r.stdout, r.stderr);
        r.stdout
    }
    fn json(&self, actor: &str, args: &[&str]) -> serde_json::Value {
        let mut a = args.to_vec();
        a.push("--json");
        serde_json::from_str(&self.ok(actor, &a)).unwrap()
    }
    fn entries(&self) -> u64 {
        let v = self.json("0001", &["log", "--limit", "1"]);
        v.as_array().unwrap().last().map(|e| e["seq"].as_u64().unwrap() + 1).unwrap_or(0)
    }

    /// A small organization: HQ > D-1 with an armory and two racks, an armorer, a duty officer, an officer.
    fn setup(&self) {
        self.ok("0001", &["init", "--site", "test.site", "--admin-pin", "1234"]);
        self.ok("0001", &["unit", "add", "D-1", "--name", "Department 1", "--parent", "HQ"]);
        self.ok("0001", &["unit", "add", "D-2", "--name", "Department 2", "--parent", "HQ"]);
        self.ok("0001", &["location", "add", "ARM", "--name", "Armory", "--unit", "D-1", "--kind", "armory"]);
        self.ok("0001", &["location", "add", "RACK-A", "--name", "Rack A", "--unit", "D-1", "--kind", "rack", "--parent", "ARM"]);
        self.ok("0001", &["location", "add", "RACK-B", "--name", "Rack B", "--unit", "D-1", "--kind", "rack", "--parent", "ARM"]);
        self.ok("0001", &["location", "add", "D2-ARM", "--name", "Armory 2", "--unit", "D-2", "--kind", "armory"]);
        self.ok("0001", &["item-type", "add", "RIFLE", "--name", "Rifle", "--kind", "weapon", "--tracking", "serial"]);
        self.ok(
            "0001",
            &[
                "item-type",
                "add",
                "AMMO",
                "--name",
                "Cartridge",
                "--kind",
                "ammunition",
                "--tracking",
                "lot",
                "--unit-of-measure",
                "round",
                "--un-code",
                "1.4S",
            ],
        );
        self.ok("0001", &["person", "add", "0417", "--name", "J. Armstrong", "--unit", "D-1", "--roles", "armorer"]);
        self.ok("0001", &["person", "add", "0501", "--name", "L. Chen", "--unit", "D-1", "--roles", "duty_officer"]);
        self.ok("0001", &["person", "add", "0502", "--name", "M. Diaz", "--unit", "HQ", "--roles", "inspector"]);
        self.ok("0001", &["person", "add", "1001", "--name", "Q. Hughes", "--unit", "D-1", "--roles", "armorer"]);
        self.ok("0001", &["person", "add", "0710", "--name", "P. Garcia", "--unit", "D-2", "--roles", "logistics,armorer"]);
        self.ok(
            "0417",
            &[
                "receive",
                "--to",
                "RACK-A",
                "--from",
                "Arms Depot",
                "--document",
                "DN-1",
                "--item-type",
                "RIFLE",
                "R-1041",
                "R-1042",
                "R-1043",
            ],
        );
        self.ok(
            "0417",
            &[
                "receive",
                "--to",
                "ARM",
                "--from",
                "Arms Depot",
                "--document",
                "DN-2",
                "--item-type",
                "AMMO",
                "--expires",
                "2099-01-01",
                "L-1:1000",
            ],
        );
    }
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_creates_database_and_owner_only_key_and_refuses_to_overwrite() {
    let e = Env::new();
    e.ok("0001", &["init", "--site", "test.site", "--admin-pin", "1234"]);
    assert!(e.db().exists());
    let key = e.path("site.db.key");
    assert_eq!(mode(&key), 0o600, "signing key must be owner-only");
    let again = e.qm(&["init", "--site", "test.site", "--admin-pin", "1234"]);
    assert_ne!(again.code, 0);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    // The verifier key is in the signed-note format: name+hash+base64.
    let vk = e.ok("0001", &["verifier-key"]);
    assert!(vk.trim().starts_with("test.site+"), "{vk}");
    assert_eq!(vk.trim().splitn(3, '+').count(), 3);
}

#[test]
fn a_day_at_the_counter() {
    let e = Env::new();
    e.setup();
    let out = e.ok("0417", &["issue", "--to", "1001", "R-1042"]);
    assert!(out.contains("issue: serial R-1042 from location:RACK-A to person:1001"), "{out}");
    let w = e.json("0417", &["where", "R-1042"]);
    assert_eq!(w["account"], "person:1001");
    // The same rifle cannot go out twice: the refusal names the rule and the facts, exit 3, nothing appended.
    let before = e.entries();
    let r = e.qm_as("0417", &["issue", "--to", "0417", "R-1042"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("refused: serial R-1042 is issued to badge 1001 (Q. Hughes) since"), "{}", r.stderr);
    assert!(r.stderr.contains("return it first"), "{}", r.stderr);
    assert_eq!(e.entries(), before);
    // Lots: issue, then a return of more than was issued is refused.
    e.ok("0417", &["issue", "--to", "1001", "--from", "ARM", "L-1:60"]);
    let c = e.json("0417", &["custody", "1001"]);
    let holds = c["holds"].as_array().unwrap();
    assert_eq!(holds.len(), 2, "{c}");
    let r = e.qm_as("0417", &["return", "--from", "1001", "--to", "ARM", "L-1:61"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("badge 1001 holds 60 of lot L-1, not 61"), "{}", r.stderr);
    e.ok("0417", &["return", "--from", "1001", "--to", "ARM", "L-1:60"]);
    let r = e.qm_as("0417", &["return", "--from", "1001", "--to", "RACK-A", "R-1041"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("custody.return_matches"), "{}", r.stderr);
    e.ok("0417", &["return", "--from", "1001", "--to", "RACK-A", "R-1042"]);
    assert_eq!(e.json("0417", &["custody", "1001"])["holds"].as_array().unwrap().len(), 0);
    // Stock by location, as JSON.
    let s = e.json("0417", &["stock", "--location", "ARM"]);
    let lines = s.as_array().unwrap();
    assert!(lines.iter().any(|l| l["account"] == "location:RACK-A" && l["quantity"] == "3"), "{s}");
    assert!(lines.iter().any(|l| l["lot"] == "L-1" && l["quantity"] == "1000"), "{s}");
    // History shows every event for the serial with its actor.
    let h = e.json("0417", &["history", "R-1042"]);
    let kinds: Vec<String> =
        h.as_array().unwrap().iter().map(|x| x["summary"].as_str().unwrap().split(':').next().unwrap().to_string()).collect();
    assert_eq!(kinds, vec!["serial R-1042 registered as RIFLE", "receive", "issue", "return"], "{h}");
    assert!(h.as_array().unwrap().iter().all(|x| x["actor"] == "0417"));
    // Move within the unit; move to another unit is refused.
    e.ok("0417", &["move", "--from", "RACK-A", "--to", "RACK-B", "R-1043"]);
    let r = e.qm_as("0417", &["move", "--from", "RACK-B", "--to", "D2-ARM", "R-1043"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("move.same_unit"), "{}", r.stderr);
    // Expend needs a document; destroy is for the duty officer.
    e.ok("0417", &["expend", "--from", "ARM", "--document", "RANGE-1", "L-1:100"]);
    let r = e.qm_as("0417", &["destroy", "--from", "ARM", "--document", "DEST-1", "L-1:10"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("permission.role"), "{}", r.stderr);
    e.ok("0501", &["destroy", "--from", "ARM", "--document", "DEST-1", "L-1:10"]);
    // Loss and recovery.
    e.ok("0417", &["report-loss", "--from", "RACK-B", "R-1043"]);
    assert_eq!(e.json("0417", &["where", "R-1043"])["account"], "lost");
    e.ok("0501", &["recover", "--to", "RACK-A", "R-1043"]);
    // Suspended lot cannot be issued.
    e.ok("0501", &["lot", "status", "L-1", "suspended", "--reason", "bulletin 26-14"]);
    let r = e.qm_as("0417", &["issue", "--to", "1001", "--from", "ARM", "L-1:10"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("lot L-1 is suspended"), "{}", r.stderr);
    // The whole day verifies.
    let v = e.ok("0001", &["verify"]);
    assert!(v.contains("verify: OK"), "{v}");
}

#[test]
fn exit_codes_for_usage_unknown_objects_and_bad_pins() {
    let e = Env::new();
    e.setup();
    assert_eq!(e.qm_as("0417", &["issue", "--to", "1001", "R-9999"]).code, 4);
    assert_eq!(e.qm_as("0417", &["where", "R-9999"]).code, 4);
    assert_eq!(e.qm_as("0417", &["issue", "--to", "1001", "--from", "ARM", "L-1:abc"]).code, 2);
    assert_eq!(e.qm_as("0417", &["issue"]).code, 2);
    assert_eq!(e.qm_as("0417", &["frobnicate"]).code, 2);
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_qm"));
    let out = cmd
        .env_clear()
        .env("QM_DB", e.db())
        .env("QM_ACTOR", "0417")
        .env("QM_PIN", "9999")
        .args(["issue", "--to", "1001", "R-1041"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("badge or PIN not accepted"));
    // An armorer of D-1 may not act in D-2; the refusal says why.
    let r = e.qm_as("0417", &["receive", "--to", "D2-ARM", "--from", "X", "--document", "D", "--item-type", "RIFLE", "R-1"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("outside its subtree"), "{}", r.stderr);
    // Denied attempts (a wrong PIN, an act outside one's subtree) leave a trace in the ledger.
    let log = e.json("0001", &["log", "--limit", "5"]);
    let denied: Vec<String> = log
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["type"] == "access_denied")
        .map(|l| l["summary"].as_str().unwrap().to_string())
        .collect();
    assert!(denied.iter().any(|d| d.contains("DENIED 0417: issue: badge or PIN not accepted")), "{denied:?}");
    assert!(denied.iter().any(|d| d.contains("DENIED 0417: receive:") && d.contains("outside its subtree")), "{denied:?}");
    // JSON errors carry a stable code.
    let r = e.qm_as("0417", &["issue", "--to", "1001", "R-9999", "--json"]);
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["error"]["code"], "not_found");
}

#[test]
fn a_retried_command_with_the_same_idempotency_key_appends_nothing() {
    let e = Env::new();
    e.setup();
    let first = e.json("0417", &["issue", "--to", "1001", "R-1041", "--idempotency-key", "scan-77"]);
    let n = e.entries();
    let again = e.json("0417", &["issue", "--to", "1001", "R-1041", "--idempotency-key", "scan-77"]);
    assert_eq!(again["replayed"], true);
    assert_eq!(again["first_seq"], first["first_seq"]);
    assert_eq!(e.entries(), n);
}

#[test]
fn count_transfer_resolution_and_correction() {
    let e = Env::new();
    e.setup();
    // A blind count: the book is hidden while open.
    let started = e.json("0502", &["count", "start", "ARM", "--blind"]);
    assert!(started["entries"][0]["event"]["count"] == "C-1");
    let show = e.json("0502", &["count", "show", "C-1"]);
    assert!(show["book"].is_null(), "{show}");
    e.ok("0502", &["count", "record", "C-1", "--location", "RACK-A", "R-1041", "R-1042", "R-7777"]);
    e.ok("0502", &["count", "record", "C-1", "--location", "ARM", "L-1:990"]);
    let closed = e.json("0502", &["count", "close", "C-1"]);
    let kinds: Vec<&str> = closed["discrepancies"].as_array().unwrap().iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, vec!["missing serial", "unexpected serial", "quantity short"], "{closed}");
    // The counter may not resolve; a resolution needs a witness by default.
    let r = e.qm_as("0502", &["count", "resolve", "D-1", "--approve", "--note", "x"]);
    assert_eq!(r.code, 3);
    let r = e.qm_as("0501", &["count", "resolve", "D-1", "--approve", "--note", "rifle missing, reported"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("requires a witness"), "{}", r.stderr);
    let r = e.qm_as("0501", &["count", "resolve", "D-1", "--approve", "--note", "rifle missing, reported", "--witness", "0501"]);
    assert!(r.stderr.contains("different person"), "{}", r.stderr);
    e.ok("0501", &["count", "resolve", "D-1", "--approve", "--note", "rifle missing, reported", "--witness", "0417"]);
    assert_eq!(e.json("0417", &["where", "R-1043"])["account"], "lost");
    e.ok("0501", &["count", "resolve", "D-2", "--approve", "--note", "rifle found", "--item-type", "RIFLE", "--witness", "0417"]);
    assert_eq!(e.json("0417", &["where", "R-7777"])["account"], "location:RACK-A");
    e.ok("0501", &["count", "resolve", "D-3", "--explain", "--note", "10 rounds in the range box", "--witness", "0417"]);
    let show = e.json("0502", &["count", "show", "C-1"]);
    assert!(show["discrepancies"].as_array().unwrap().iter().all(|d| !d["resolution"].is_null()), "{show}");
    // A transfer with a shortage.
    e.ok("0001", &["person", "add", "0611", "--name", "O. Fischer", "--unit", "D-1", "--roles", "logistics"]);
    e.ok("0611", &["transfer", "dispatch", "--from", "ARM", "--to-unit", "D-2", "--document", "TR-9", "L-1:100"]);
    let t = e.json("0611", &["transfers"]);
    assert_eq!(t.as_array().unwrap().len(), 1);
    let r = e.json("0710", &["transfer", "receive", "T-1", "--to", "D2-ARM", "L-1:95"]);
    let types: Vec<&str> = r["entries"].as_array().unwrap().iter().map(|x| x["event"]["type"].as_str().unwrap()).collect();
    // The shortage opens an incident by itself, recorded in the discrepancy's own entry (docs/incidents.md).
    assert_eq!(types, vec!["movement", "discrepancy_opened", "transfer_received"]);
    assert_eq!(r["entries"][1]["opens"][0]["type"], "incident_opened", "{r}");
    assert_eq!(r["entries"][1]["opens"][0]["kind"], "count_discrepancy");
    assert_eq!(r["entries"][1]["event"]["facts"]["kind"], "quantity_short");
    assert_eq!(e.json("0611", &["transfers"]).as_array().unwrap().len(), 0);
    // A correction: a mistaken move is reversed by a new entry that refers to it.
    let mv = e.json("0417", &["move", "--from", "RACK-A", "--to", "RACK-B", "R-1041"]);
    let seq = mv["first_seq"].as_u64().unwrap().to_string();
    e.ok("0501", &["correct", &seq, "--reason", "wrong rack scanned"]);
    assert_eq!(e.json("0417", &["where", "R-1041"])["account"], "location:RACK-A");
    let r = e.qm_as("0501", &["correct", &seq, "--reason", "again"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("already corrected"), "{}", r.stderr);
    assert!(e.ok("0001", &["verify"]).contains("verify: OK"));
}

#[test]
fn checkpoints_and_proofs() {
    let e = Env::new();
    e.setup();
    let note = e.ok("0001", &["checkpoint"]);
    assert!(note.starts_with("test.site\n"), "{note}");
    assert!(note.contains("\n\n— test.site "), "{note}");
    let p = e.json("0001", &["prove", "3"]);
    assert_eq!(p["seq"], 3);
    assert!(p["proof"].as_array().unwrap().len() >= 2);
    let cps = e.json("0001", &["checkpoints"]);
    let sizes: Vec<u64> = cps.as_array().unwrap().iter().map(|c| c["size"].as_u64().unwrap()).collect();
    let (a, b) = (sizes[0].to_string(), sizes[sizes.len() - 1].to_string());
    let c = e.json("0001", &["consistency", &a, &b]);
    assert!(!c["proof"].as_array().unwrap().is_empty());
    // An auditor's wrong key is caught.
    let r = e.qm(&["verify", "--verifier-key", "other+01020304+AWJjZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7fH1+f4A="]);
    assert_eq!(r.code, 1);
    // A key that is not a key at all is said once, not once per checkpoint.
    let r = e.qm(&["verify", "--tree-only", "--verifier-key", "not a key"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stdout.matches("cannot check any checkpoint").count(), 1, "{}", r.stdout);
}

#[test]
fn changing_one_byte_of_a_stored_entry_is_found_by_verify() {
    let e = Env::new();
    e.setup();
    e.ok("0417", &["receive", "--to", "RACK-A", "--from", "Arms Depot", "--document", "DN-TAMPER", "--item-type", "RIFLE", "R-2001"]);
    e.ok("0417", &["issue", "--to", "1001", "R-2001"]);
    // Entries after it, whose stored tree hashes cover it.
    for _ in 0..4 {
        e.ok("0417", &["return", "--from", "1001", "--to", "RACK-A", "R-2001"]);
        e.ok("0417", &["issue", "--to", "1001", "R-2001"]);
    }
    let log = e.json("0001", &["log", "--limit", "100"]);
    let target =
        log.as_array().unwrap().iter().find(|l| l["summary"].as_str().unwrap().contains("DN-TAMPER")).unwrap()["seq"].as_u64().unwrap();
    assert!(e.ok("0001", &["verify"]).contains("OK"));
    let tree = e.ok("0001", &["verify", "--tree-only"]);
    assert!(tree.contains("verify: OK") && tree.contains("not replayed"), "{tree}");
    // Edit the file itself, as someone with a hex editor would: one byte inside that entry.
    let mut bytes = std::fs::read(e.db()).unwrap();
    assert!(!e.path("site.db-wal").exists() || std::fs::metadata(e.path("site.db-wal")).unwrap().len() == 0);
    let needle = b"\"document\":\"DN-TAMPER\"";
    let at = bytes.windows(needle.len()).position(|w| w == needle).expect("entry bytes are in the file");
    assert_eq!(bytes.windows(needle.len()).filter(|w| *w == needle).count(), 1);
    bytes[at + 13] = b'X'; // DN-TAMPER -> XN-TAMPER
    std::fs::write(e.db(), &bytes).unwrap();
    let r = e.qm(&["verify"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains(&format!("first bad entry: {target}")), "{}", r.stdout);
    assert!(r.stdout.contains(&format!("entry {target}: its bytes do not hash")), "{}", r.stdout);
    // Only the altered entry is named: not the later, unaltered ones whose stored tree hashes cover it.
    for line in r.stdout.lines().filter(|l| l.contains("do not hash")) {
        assert!(line.contains(&format!("entry {target}:")), "an unaltered entry is named: {line}\n{}", r.stdout);
    }
    // The auditor's quick check (no replay) finds it too.
    let r = e.qm(&["verify", "--tree-only"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains(&format!("first bad entry: {target}")), "{}", r.stdout);
}

#[test]
fn deleting_the_last_entry_no_longer_matches_the_latest_checkpoint() {
    let e = Env::new();
    e.setup();
    e.ok("0417", &["issue", "--to", "1001", "R-1041"]);
    let n = e.entries();
    {
        let c = rusqlite::Connection::open(e.db()).unwrap();
        // The database refuses deletes by trigger; an attacker drops the trigger first.
        assert!(c.execute("DELETE FROM entries WHERE seq = ?1", [n as i64 - 1]).is_err());
        c.execute_batch("DROP TRIGGER entries_no_delete").unwrap();
        c.execute("DELETE FROM entries WHERE seq = ?1", [n as i64 - 1]).unwrap();
    }
    let r = e.qm(&["verify"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains("the tree no longer matches the latest checkpoint"), "{}", r.stdout);
    // Normal commands refuse to run on a ledger whose projections no longer match it.
    let r = e.qm_as("0417", &["issue", "--to", "1001", "R-1042"]);
    assert_ne!(r.code, 0);
    assert!(r.stderr.contains("run `qm verify`"), "{}", r.stderr);
}

#[test]
fn csv_import_reports_file_line_and_column_and_commits_nothing_from_a_bad_file() {
    let e = Env::new();
    e.setup();
    std::fs::write(e.path("types.csv"), "id,name,kind,tracking,unit_of_measure,neq_kg_per_unit,un_code,qualification\nPISTOL,Pistol P8,weapon,serial,each,,,P8\nDET,Detonator,component,lot,each,0.001,1.1B,\n").unwrap();
    let out = e.ok("0001", &["import", "item-types", "types.csv"]);
    assert!(out.contains("imported 2 rows"), "{out}");
    std::fs::write(
        e.path("people.csv"),
        "badge,name,unit,roles,pin,qualifications\n2001,A. One,D-1,armorer,1234,P8:2030-01-01\n2002,B. Two,D-1,armourer,1234,\n",
    )
    .unwrap();
    let before = e.entries();
    let r = e.qm(&["import", "people", "people.csv"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("people.csv: line 3, column roles"), "{}", r.stderr);
    assert_eq!(e.entries(), before, "nothing from a bad file is committed");
    // A row the rules refuse (a serial already on the books) also discards the whole file.
    std::fs::write(
        e.path("serials.csv"),
        "serial,item_type,lot,location,supplier,document\nR-5001,RIFLE,,RACK-A,Depot,DN-7\nR-1041,RIFLE,,RACK-A,Depot,DN-7\n",
    )
    .unwrap();
    let r = e.qm_as("0417", &["import", "serials", "serials.csv"]);
    // A refusal exits 3 and an unknown object 4, as everywhere (README): a malformed file is 2.
    assert_eq!(r.code, 3);
    assert!(
        r.stderr.contains("serials.csv: line 3") && r.stderr.contains("R-1041") && r.stderr.contains("nothing from this file was recorded"),
        "{}",
        r.stderr
    );
    std::fs::write(
        e.path("lost.csv"),
        "serial,item_type,lot,location,supplier,document
R-5001,RIFLE,,RACK-A,Depot,DN-7
R-5002,RIFLE,,NOWHERE,Depot,DN-8
",
    )
    .unwrap();
    let r = e.qm_as("0417", &["import", "serials", "lost.csv"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("lost.csv: line 3: not found: location NOWHERE"), "{}", r.stderr);
    assert_eq!(e.entries(), before);
    assert_eq!(e.qm_as("0417", &["where", "R-5001"]).code, 4);
    std::fs::write(e.path("lots.csv"), "lot,item_type,quantity,location,manufactured,expires,supplier,document\nL-9,AMMO,500,ARM,2024-01-01,2030-01-01,Depot,DN-8\nL-10,AMMO,250.5,ARM,,,Depot,DN-8\n").unwrap();
    e.ok("0417", &["import", "lots", "lots.csv"]);
    let s = e.json("0417", &["stock", "--item-type", "AMMO"]);
    assert!(s.as_array().unwrap().iter().any(|l| l["lot"] == "L-10" && l["quantity"] == "250.5"), "{s}");
    std::fs::write(e.path("bad.csv"), "lot,item_type,quantity,location,supplier,document\nL-11,AMMO,-5,ARM,Depot,DN-9\n").unwrap();
    let r = e.qm_as("0417", &["import", "lots", "bad.csv"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("bad.csv: line 2, column quantity"), "{}", r.stderr);
}

#[test]
fn a_file_that_is_not_ours_gets_a_clear_error_not_a_panic() {
    let e = Env::new();
    std::fs::write(e.db(), b"this is not a database, it is a shopping list").unwrap();
    let r = e.qm(&["stock"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("is not a Quartermaster database"), "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"));
    std::fs::remove_file(e.db()).unwrap();
    rusqlite::Connection::open(e.db()).unwrap().execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);").unwrap();
    let r = e.qm(&["stock"]);
    assert!(r.stderr.contains("is not a Quartermaster database"), "{}", r.stderr);
    // A Quartermaster file from a newer build is refused, not migrated backwards.
    std::fs::remove_file(e.db()).unwrap();
    e.ok("0001", &["init", "--site", "test.site", "--admin-pin", "1234"]);
    rusqlite::Connection::open(e.db()).unwrap().execute_batch("PRAGMA user_version = 99").unwrap();
    let r = e.qm(&["stock"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("schema version 99"), "{}", r.stderr);
    // A missing file is "not found".
    let r = Command::new(env!("CARGO_BIN_EXE_qm")).env_clear().args(["--db", "/nonexistent/x.db", "stock"]).output().unwrap();
    assert_eq!(r.status.code(), Some(4));
}

#[test]
fn the_demo_runs_a_day_and_verifies() {
    let e = Env::new();
    let out = e.ok("0001", &["demo", "--out", "demo/demo.db"]);
    assert!(out.contains("== Stock status =="), "{out}");
    assert!(out.contains("reconciliation: 2 discrepancies"), "{out}");
    assert!(out.contains("qualification G36 expired"), "{out}");
    assert!(out.contains("verify: OK"), "{out}");
    // Running it again replaces the previous demo.
    e.ok("0001", &["demo", "--out", "demo/demo.db"]);
}

#[test]
fn permissions_doc_matches_the_code() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/permissions.md")).unwrap();
    let e = Env::new();
    let table = e.ok("0001", &["permissions"]);
    assert!(doc.contains(table.trim()), "docs/permissions.md must contain the table `qm permissions` prints:\n{table}");
}

// ---- explosives and ammunition safety (issue 3) ------------------------------------------------

impl Env {
    /// A magazine M2 licensed for 500 kg of HD 1.1 and 1.4, 180 m from an inhabited building, with
    /// TNT (1.1D) in it; detonators (1.1B) and cartridges (1.4S) in the catalog; a keeper and a witness.
    fn magazine(&self) {
        self.setup();
        self.ok(
            "0001",
            &[
                "location",
                "add",
                "M2",
                "--name",
                "Magazine 2",
                "--unit",
                "D-1",
                "--kind",
                "magazine",
                "--neq-limit-kg",
                "500",
                "--hazard-divisions",
                "1.1,1.4",
                "--distance",
                "inhabited_building=180",
            ],
        );
        self.ok("0001", &["location", "add", "M2-BAY", "--name", "Bay 1", "--unit", "D-1", "--kind", "bin", "--parent", "M2"]);
        self.ok(
            "0001",
            &[
                "item-type",
                "add",
                "TNT",
                "--name",
                "TNT block 1 kg",
                "--kind",
                "explosive",
                "--tracking",
                "lot",
                "--neq-kg-per-unit",
                "1",
                "--un-code",
                "1.1D",
            ],
        );
        self.ok(
            "0001",
            &[
                "item-type",
                "add",
                "DET",
                "--name",
                "detonators",
                "--kind",
                "component",
                "--tracking",
                "lot",
                "--neq-kg-per-unit",
                "0.001",
                "--un-code",
                "1.1B",
            ],
        );
        self.ok(
            "0001",
            &[
                "item-type",
                "add",
                "PROP",
                "--name",
                "propellant 1.3C",
                "--kind",
                "explosive",
                "--tracking",
                "lot",
                "--neq-kg-per-unit",
                "1",
                "--un-code",
                "1.3C",
            ],
        );
        self.ok("0001", &["person", "add", "0420", "--name", "K. Baker", "--unit", "D-1", "--roles", "magazine_keeper"]);
        self.ok(
            "0420",
            &[
                "receive",
                "--to",
                "M2",
                "--from",
                "Explosives Co",
                "--document",
                "DN-50",
                "--item-type",
                "TNT",
                "--witness",
                "0501",
                "TNT-3:300",
            ],
        );
    }
}

#[test]
fn unsafe_movements_into_a_magazine_are_refused_before_they_happen() {
    let e = Env::new();
    e.magazine();
    let before = e.entries();
    // Detonators beside high explosive: the mixing chart says no (49 CFR 177.848(f) B/D, "X(4)"):
    // until the catalog says the item type is a detonator, footnote 4's exception concerns neither.
    let r = e.qm_as(
        "0420",
        &[
            "receive",
            "--to",
            "M2-BAY",
            "--from",
            "Explosives Co",
            "--document",
            "DN-51",
            "--item-type",
            "DET",
            "--witness",
            "0501",
            "DET-77:1000",
        ],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("refused: detonators 1.1B (lot DET-77) may not be stored with TNT block 1 kg 1.1D (lot TNT-3) in magazine M2 — mixing chart B/D"), "{}", r.stderr);
    assert!(r.stderr.contains("never, except as footnote 4") && r.stderr.contains("rule safety.mixing"), "{}", r.stderr);
    // An attribute the tables do not know is refused; a detonator still needs the location built for it.
    let bad = e.qm_as("0001", &["item-type", "attributes", "DET", "detonater"]);
    assert!(
        bad.code != 0 && bad.stderr.contains("\"detonater\" is not an item attribute") && bad.stderr.contains("detonator, firework"),
        "{}",
        bad.stderr
    );
    e.ok("0001", &["item-type", "attributes", "DET", "detonator"]);
    let r = e.qm_as(
        "0420",
        &[
            "receive",
            "--to",
            "M2-BAY",
            "--from",
            "Explosives Co",
            "--document",
            "DN-51",
            "--item-type",
            "DET",
            "--witness",
            "0501",
            "DET-77:1000",
        ],
    );
    assert!(
        r.code == 3
            && r.stderr
                .contains("footnote 4 (detonator provisions of 177.835(g)) applies: the location is not flagged detonator_provisions"),
        "{}",
        r.stderr
    );
    // A hazard division the licence does not cover.
    let r = e.qm_as(
        "0420",
        &["receive", "--to", "M2", "--from", "X", "--document", "DN-52", "--item-type", "PROP", "--witness", "0501", "P-1:10"],
    );
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("is hazard division 1.3, which magazine M2 is not licensed for (licensed: 1.1, 1.4)"), "{}", r.stderr);
    // Too much: 300 + 250 = 550 kg against a 500 kg licence and 547.7 kg from quantity-distance at 180 m.
    let r = e.qm_as(
        "0420",
        &["receive", "--to", "M2", "--from", "X", "--document", "DN-53", "--item-type", "TNT", "--witness", "0501", "TNT-4:250"],
    );
    assert_eq!(r.code, 3);
    assert!(
        r.stderr.contains(
            "refused: M2 would hold 550 kg NEQ (HD 1.1); licence 500 kg; quantity-distance to inhabited building at 180 m allows 547.7 kg"
        ),
        "{}",
        r.stderr
    );
    // A refused movement appends nothing of itself; each refusal is an attempt the safety officer
    // learns of: an incident (safety_refusal) about the store, the lot and the person who tried.
    let refused = e.json("0420", &["incidents", "--kind", "safety_refusal"]);
    let refused = refused.as_array().unwrap();
    assert_eq!(refused.len(), 4, "{refused:?}");
    assert_eq!(e.entries(), before + 1 + 4, "DET's attributes and the four incidents, nothing else");
    let det = refused
        .iter()
        .find(|i| i["summary"].as_str().unwrap().contains("DET-77") && i["summary"].as_str().unwrap().contains("mixing"))
        .unwrap();
    assert_eq!(
        (det["severity"].as_str(), det["unit"].as_str(), det["location"].as_str()),
        (Some("medium"), Some("D-1"), Some("M2")),
        "{det}"
    );
    assert!(
        det["summary"].as_str().unwrap().starts_with("refused: badge 0420 tried to put stock from supplier:Explosives Co into M2"),
        "{det}"
    );
    // Explosive weight without a UN classification: it cannot be placed in a magazine at all.
    e.ok(
        "0001",
        &[
            "item-type",
            "add",
            "MYSTERY",
            "--name",
            "Unclassified charge",
            "--kind",
            "explosive",
            "--tracking",
            "lot",
            "--neq-kg-per-unit",
            "0.5",
        ],
    );
    let r = e.qm_as(
        "0420",
        &["receive", "--to", "M2", "--from", "X", "--document", "DN-50", "--item-type", "MYSTERY", "--witness", "0501", "MY-1:2"],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("has no UN classification code") && r.stderr.contains("rule safety.classification"), "{}", r.stderr);
    // Within the limit it passes, into a bay inside the magazine too; moving within the magazine changes nothing there.
    e.ok(
        "0420",
        &["receive", "--to", "M2-BAY", "--from", "X", "--document", "DN-54", "--item-type", "TNT", "--witness", "0501", "TNT-4:150"],
    );
    e.ok("0420", &["move", "--from", "M2-BAY", "--to", "M2", "--witness", "0501", "TNT-4:150"]);
    let m = e.json("0420", &["magazines"]);
    let m2 = &m.as_array().unwrap()[0];
    assert_eq!(m2["neq_kg"], 450.0);
    assert_eq!(m2["governing_division"], "1.1");
    assert!(m2["warning"].as_str().unwrap().contains("within 10% of a limit"), "{m2}");
    // A flag the footnote asks for makes the pair allowed: the condition is data on the location.
    e.ok("0001", &["location", "safety", "M2", "--flag", "detonator_provisions"]);
    e.ok(
        "0420",
        &[
            "receive",
            "--to",
            "M2",
            "--from",
            "Explosives Co",
            "--document",
            "DN-55",
            "--item-type",
            "DET",
            "--witness",
            "0501",
            "DET-77:1000",
        ],
    );
}

#[test]
fn quantity_distance_figures_and_organization_tables() {
    let e = Env::new();
    let d = e.json("0001", &["qd", "--hd", "1.1", "--neq-kg", "500"]);
    let ibd = d.as_array().unwrap().iter().find(|l| l["exposed_site"] == "inhabited_building").unwrap();
    assert!((ibd["value"].as_f64().unwrap() - 174.6).abs() < 0.1, "{ibd}");
    let q = e.ok("0001", &["qd", "--hd", "1.1", "--distance", "inhabited_building=180"]);
    assert!(q.contains("547.7 kg") && q.contains("Q = (D/22)^3"), "{q}");
    // A wrong table is refused with file, key and reason.
    std::fs::write(e.path("bad.toml"), "[meta]\nname = 1\n").unwrap();
    let r = e.qm(&["qd", "--hd", "1.1", "--neq-kg", "1", "--safety-tables", "bad.toml"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("bad.toml: "), "{}", r.stderr);
    // An organization's own table replaces the default: here K = 30 to inhabited buildings.
    let default = qm_safety::DEFAULT_TABLES_TOML;
    let custom = default.replacen("k = 22.0", "k = 30.0", 1);
    assert_ne!(custom, default, "the default table has a K = 22.0 law to replace");
    std::fs::write(e.path("national.toml"), custom).unwrap();
    let d = e.json("0001", &["qd", "--hd", "1.1", "--neq-kg", "1000", "--safety-tables", "national.toml"]);
    let ibd = d.as_array().unwrap().iter().find(|l| l["exposed_site"] == "inhabited_building").unwrap();
    assert!((ibd["value"].as_f64().unwrap() - 300.0).abs() < 0.5, "{ibd}");
}

#[test]
fn expired_and_suspended_lots_are_listed_and_not_issued() {
    let e = Env::new();
    e.setup();
    e.ok(
        "0417",
        &["receive", "--to", "ARM", "--from", "Depot", "--document", "DN-9", "--item-type", "AMMO", "--expires", "2020-01-01", "OLD-1:100"],
    );
    let r = e.qm_as("0417", &["issue", "--to", "1001", "--from", "ARM", "OLD-1:10"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("lot OLD-1 expired on 2020-01-01"), "{}", r.stderr);
    let expired = e.json("0417", &["lots", "--expired"]);
    assert_eq!(expired.as_array().unwrap()[0]["lot"], "OLD-1");
    // A suspension decided at HQ applies in every department below it, and shows where the stock is.
    e.ok("0001", &["person", "add", "0900", "--name", "HQ Duty", "--unit", "HQ", "--roles", "duty_officer"]);
    e.ok("0900", &["lot", "status", "L-1", "suspended", "--reason", "bulletin 26-14", "--unit", "HQ"]);
    let r = e.qm_as("0417", &["issue", "--to", "1001", "--from", "ARM", "L-1:10"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("lot L-1 is suspended"), "{}", r.stderr);
    let s = e.json("0417", &["lots", "--suspended"]);
    let l1 = s.as_array().unwrap().iter().find(|l| l["lot"] == "L-1").unwrap();
    assert_eq!(l1["held"][0]["account"], "location:ARM");
    assert_eq!(l1["held"][0]["quantity"], "1000");
}

#[test]
fn an_excursion_from_a_csv_of_readings_is_recorded_and_charted() {
    let e = Env::new();
    e.magazine();
    // Hourly readings for a day; from 10:00 to 14:00 the magazine sits at 40–46 °C.
    let mut csv = String::from("location,at,temperature_c,humidity_pct\n");
    for h in 0..24 {
        let t = if (10..=14).contains(&h) { 40.0 + (h - 10) as f64 * 1.5 } else { 21.0 };
        csv.push_str(&format!("M2,2026-07-01T{h:02}:00:00Z,{t},45\n"));
    }
    std::fs::write(e.path("readings.csv"), csv).unwrap();
    let r = e.json("0420", &["conditions", "import", "readings.csv"]);
    assert_eq!(r["readings"], 24);
    assert_eq!(r["excursions_started"], 1);
    let v = e.json("0420", &["conditions", "show", "M2", "--since", "2026-07-01", "--until", "2026-07-02", "--svg", "m2.svg"]);
    let x = &v["excursions"][0];
    assert_eq!(x["started_at"], "2026-07-01 10:00 UTC");
    assert_eq!(x["ended_at"], "2026-07-01 15:00 UTC");
    assert_eq!(x["peak"], 46.0);
    assert_eq!(x["lots_exposed"][0], "TNT-3");
    assert_eq!(v["readings"].as_array().unwrap().len(), 24);
    let svg = std::fs::read_to_string(e.path("m2.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("polyline"), "not an SVG chart");
    // One digest entry per batch, and readings are not ledger entries.
    let log = e.json("0001", &["log", "--limit", "5"]);
    assert!(log.as_array().unwrap().iter().any(|l| l["type"] == "readings_recorded"));
    assert!(e.ok("0001", &["verify"]).contains("verify: OK"));
    // A single reading from the CLI, and a bad file that records nothing.
    e.ok("0420", &["conditions", "record", "M2", "--temperature-c", "22.5", "--at", "2026-07-02T08:00:00Z"]);
    std::fs::write(e.path("bad.csv"), "location,at,temperature_c\nM2,yesterday,20\n").unwrap();
    let r = e.qm_as("0420", &["conditions", "import", "bad.csv"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("bad.csv: line 2, column at"), "{}", r.stderr);
    // Altering a stored reading is caught by verify, which names the digest entry.
    let digest_seq = log.as_array().unwrap().iter().find(|l| l["type"] == "readings_recorded").unwrap()["seq"].as_u64().unwrap();
    {
        let c = rusqlite::Connection::open(e.db()).unwrap();
        c.execute_batch("DROP TRIGGER readings_no_update; UPDATE readings SET temperature_c = 30 WHERE temperature_c = 46").unwrap();
    }
    let r = e.qm(&["verify"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.contains(&format!("entry {digest_seq}: the 24 stored condition readings of M2 no longer match")), "{}", r.stdout);
}

#[test]
fn the_daily_summary_of_magazine_transactions() {
    let e = Env::new();
    e.magazine();
    e.ok("0001", &["person", "add", "0611", "--name", "O. Fischer", "--unit", "D-1", "--roles", "logistics"]);
    let today = e.json("0001", &["log", "--limit", "1"])[0]["at"].as_str().unwrap()[..10].to_string();
    e.ok("0420", &["issue", "--to", "0501", "--from", "M2", "--witness", "0501", "TNT-3:20"]);
    e.ok("0611", &["transfer", "dispatch", "--from", "M2", "--to-unit", "D-2", "--witness", "0501", "TNT-3:30"]);
    e.ok("0420", &["return", "--from", "0501", "--to", "M2", "--witness", "0417", "TNT-3:5"]);
    let d = e.json("0420", &["report", "dsmt", "--magazine", "M2", "--date", &today, "--format", "json"]);
    let line = &d["lines"][0];
    assert_eq!(
        (line["opening"].as_str(), line["received"].as_str(), line["removed"].as_str(), line["closing"].as_str()),
        (Some("0"), Some("305"), Some("50"), Some("255")),
        "{d}"
    );
    assert_eq!(line["removals"].as_array().unwrap().len(), 2);
    assert_eq!(line["removals"][1]["counterpart"], "transit:T-1");
    assert_eq!(line["receipts"][0]["by"], "0420");
    assert_eq!(d["book_check"], "closing balances equal the book balances");
    let csv = e.ok("0420", &["report", "dsmt", "--magazine", "M2", "--date", &today, "--format", "csv"]);
    assert!(csv.lines().nth(1).unwrap().starts_with(&format!("M2,{today},TNT,TNT block 1 kg,TNT-3,each,0,305,50,255,")), "{csv}");
    // A day without movement still yields a report that says so, with the balance carried.
    let d = e.ok("0420", &["report", "dsmt", "--magazine", "M2", "--date", "2099-01-01"]);
    assert!(
        d.contains("No receipts or removals on this day.") && d.contains("opening 255 each, received 0, removed 0, closing 255 each"),
        "{d}"
    );
}

// ---- crash safety and backups (issue 5) --------------------------------------------------------

/// Starts `qm load` (pipelined issues and returns) and collects the keys it acknowledges.
fn start_load(e: &Env, run: &str) -> (std::process::Child, std::thread::JoinHandle<Vec<String>>) {
    use std::io::BufRead;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_qm"));
    cmd.current_dir(e.dir.path()).env_clear();
    match &e.url {
        Some(url) => cmd.env("QM_DB", url).env("QM_KEY", e.path("site.key")),
        None => cmd.env("QM_DB", e.db()),
    };
    let mut child = cmd
        .env("QM_ACTOR", "0417")
        .env("QM_PIN", "1234")
        .args(["load", "--batch", "50", "--run", run])
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(e.path(&format!("load-{run}.stderr"))).unwrap())
        .spawn()
        .unwrap();
    let out = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || std::io::BufReader::new(out).lines().map_while(Result::ok).filter(|l| !l.is_empty()).collect());
    (child, reader)
}

fn stored_keys(e: &Env) -> std::collections::HashSet<String> {
    common::stored_keys(&e.url.clone().unwrap_or_else(|| e.db().to_str().unwrap().to_string()))
}

#[test]
fn every_acknowledged_movement_survives_sigkill_on_sqlite() {
    let e = Env::new();
    e.ok("0001", &["demo", "--out", "site.db"]);
    sigkill_story(&e);
}

#[test]
fn every_acknowledged_movement_survives_sigkill_on_postgresql() {
    let admin = std::env::var(qm_store_postgres::scratch::TEST_URL_VAR).expect(qm_store_postgres::scratch::HOW_TO_RUN);
    let scratch = qm_store_postgres::scratch::ScratchDatabase::create(&admin).unwrap();
    let mut e = Env::new();
    e.url = Some(scratch.url().to_string());
    e.ok("0001", &["demo", "--out", scratch.url()]);
    sigkill_story(&e);
}

/// `qm load` (the library's pipelined group commit) killed 20+ times at random moments.
fn sigkill_story(e: &Env) {
    let mut acked: Vec<String> = vec![];
    // A small deterministic generator for the kill moments: 20+ kills, bounded in time.
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let started = std::time::Instant::now();
    let mut kills = 0;
    // Bounded by counts: at least 22 kills and more than 100 acknowledged movements, however slow a
    // loaded machine makes each run; the time bound only stops a run that cannot get there.
    while (kills < 22 || acked.len() <= 100) && kills < 200 && started.elapsed() < std::time::Duration::from_secs(300) {
        let (mut child, reader) = start_load(e, &format!("k{kills}"));
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::thread::sleep(std::time::Duration::from_millis(40 + x % 400));
        child.kill().unwrap(); // SIGKILL, to the process we started, by its handle
        child.wait().unwrap();
        let keys = reader.join().unwrap();
        eprintln!("kill {kills}: {} acknowledged before the kill", keys.len());
        if keys.is_empty() {
            eprintln!("  its stderr: {}", std::fs::read_to_string(e.path(&format!("load-k{kills}.stderr"))).unwrap_or_default());
        }
        acked.extend(keys);
        kills += 1;
    }
    assert!(kills >= 20, "only {kills} kills in the time bound");
    assert!(acked.len() > 100, "the load acknowledged too little to mean anything: {}", acked.len());
    let stored = stored_keys(e);
    let lost: Vec<&String> = acked.iter().filter(|k| !stored.contains(*k)).collect();
    assert!(lost.is_empty(), "{} acknowledged movements are not in the ledger, e.g. {:?}", lost.len(), &lost[..lost.len().min(5)]);
    // The books equal a replay of the ledger, every checkpoint holds, and the site opens for writing.
    let v = e.ok("0001", &["verify"]);
    assert!(v.contains("verify: OK"), "{v}");
    e.ok("0001", &["unit", "add", "D-99", "--name", "After the crashes", "--parent", "HQ"]);
}

#[test]
fn an_online_backup_restores_to_the_same_tree_and_checkpoints() {
    let e = Env::new();
    e.ok("0001", &["demo", "--out", "site.db"]);
    let (mut child, reader) = start_load(&e, "b");
    std::thread::sleep(std::time::Duration::from_millis(300));
    // The backup runs while the load keeps writing.
    let b = e.json("0001", &["backup", "backup.db"]);
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = reader.join();
    assert_eq!(b["verified"], true);
    let n = b["entries"].as_u64().unwrap();
    assert!(n > 90);
    // A backup never overwrites.
    assert_eq!(e.qm(&["backup", "backup.db"]).code, 2);
    // Restore into a new database; it verifies and has the same root and checkpoints.
    let target = e.path("restored.db");
    let r = Command::new(env!("CARGO_BIN_EXE_qm"))
        .env_clear()
        .args(["--db", target.to_str().unwrap(), "--json", "restore", e.path("backup.db").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(r.status.code(), Some(0), "{}", String::from_utf8_lossy(&r.stderr));
    let r: serde_json::Value = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(r["root"], b["root"]);
    assert_eq!(r["checkpoints"], b["checkpoints"]);
    let v = Command::new(env!("CARGO_BIN_EXE_qm")).env_clear().args(["--db", target.to_str().unwrap(), "verify"]).output().unwrap();
    assert!(String::from_utf8_lossy(&v.stdout).contains("verify: OK"), "{}", String::from_utf8_lossy(&v.stdout));
    // The restored backup is a prefix of the live ledger: the same root at that size.
    let live = e.json("0001", &["checkpoints"]);
    let live_has = live.as_array().unwrap().iter().any(|c| c["size"].as_u64() == Some(n));
    let restored_cps = Command::new(env!("CARGO_BIN_EXE_qm"))
        .env_clear()
        .args(["--db", target.to_str().unwrap(), "--json", "checkpoints"])
        .output()
        .unwrap();
    let restored_cps: serde_json::Value = serde_json::from_slice(&restored_cps.stdout).unwrap();
    for cp in restored_cps.as_array().unwrap() {
        assert!(live.as_array().unwrap().iter().any(|l| l == cp), "restored checkpoint {cp} is not one of the live site's");
    }
    let _ = live_has;
}

#[test]
fn a_damaged_database_gets_a_clear_error_and_no_write() {
    let e = Env::new();
    e.setup();
    e.ok("0417", &["issue", "--to", "1001", "R-1041"]);
    // Change a stored tree hash of the newest entry (as a disk error might): start-up check refuses writes.
    {
        let c = rusqlite::Connection::open(e.db()).unwrap();
        c.execute_batch("DROP TRIGGER entries_no_update; UPDATE entries SET hashes = zeroblob(length(hashes)) WHERE seq = (SELECT max(seq) FROM entries)").unwrap();
    }
    let r = e.qm_as("0417", &["return", "--from", "1001", "--to", "RACK-A", "R-1041"]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("does not verify at start-up"), "{}", r.stderr);
    assert!(!r.stderr.contains("panicked"));
    // A truncated file.
    let bytes = std::fs::read(e.db()).unwrap();
    std::fs::write(e.db(), &bytes[..bytes.len() / 3]).unwrap();
    let _ = std::fs::remove_file(e.path("site.db-wal"));
    let r = e.qm_as("0417", &["stock"]);
    assert_ne!(r.code, 0);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    let r = e.qm(&["verify"]);
    assert_ne!(r.code, 0);
    assert!(!r.stderr.contains("panicked") && !r.stdout.contains("panicked"));
}

#[test]
fn a_database_url_needs_an_explicit_key() {
    // The key cannot live "next to" a URL: without --key, a usage error before any connection is made.
    let env = Env::new();
    for args in [
        &["--db", "postgres://nobody@127.0.0.1:1/none", "init", "--site", "s", "--admin-pin", "1234"][..],
        &["--db", "postgresql://127.0.0.1:1/none", "stock"][..],
    ] {
        let r = env.qm(args);
        assert_eq!(r.code, 2, "{args:?}: {}{}", r.stdout, r.stderr);
        assert!(r.stderr.contains("--key"), "{args:?}: {}", r.stderr);
    }
}

// ---- racing clients, on both backends (issue 5) -------------------------------------------------

/// Runs the same command from `n` processes at once and returns their exit codes and stderr.
fn race(e: &Env, n: usize, args: &[&str]) -> Vec<(i32, String)> {
    let children: Vec<_> = (0..n)
        .map(|_| {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_qm"));
            cmd.current_dir(e.dir.path()).env_clear().env("QM_ACTOR", "0417").env("QM_PIN", "1234");
            match &e.url {
                Some(url) => cmd.env("QM_DB", url).env("QM_KEY", e.path("site.key")),
                None => cmd.env("QM_DB", e.db()),
            };
            cmd.args(args).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped()).spawn().unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| {
            let out = c.wait_with_output().unwrap();
            (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
        })
        .collect()
}

fn racing_story(e: &Env) {
    e.setup();
    // Six clients issue the same rifle at the same moment: exactly one wins.
    let r = race(e, 6, &["issue", "--to", "1001", "R-1043"]);
    let wins = r.iter().filter(|(c, _)| *c == 0).count();
    assert_eq!(wins, 1, "{r:?}");
    for (code, err) in r.iter().filter(|(c, _)| *c != 0) {
        assert!(
            (*code == 3 && err.contains("serial R-1043 is issued to badge 1001"))
                || err.contains("another writer appended first")
                || err.contains("commit failed"),
            "a loser gets a clear answer: {code} {err}"
        );
    }
    // Six withdrawals of 400 from a lot of 1000: never negative, never a lost update.
    let r = race(e, 6, &["issue", "--to", "1001", "--from", "ARM", "L-1:400"]);
    let wins = r.iter().filter(|(c, _)| *c == 0).count() as i64;
    assert!((1..=2).contains(&wins), "{r:?}");
    let s = e.json("0417", &["stock", "--location", "ARM"]);
    let left = s
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["lot"] == "L-1")
        .map(|l| l["quantity"].as_str().unwrap().parse::<i64>().unwrap())
        .unwrap_or(0);
    assert_eq!(left, 1000 - 400 * wins, "the books show every acknowledged withdrawal and nothing else");
    // The same idempotency key from four clients at once appends once.
    let r = race(e, 4, &["issue", "--to", "0501", "R-1042", "--idempotency-key", "scan-1"]);
    assert!(r.iter().any(|(c, _)| *c == 0), "{r:?}");
    let log = e.json("0001", &["log", "--limit", "200"]);
    let issued = log.as_array().unwrap().iter().filter(|l| l["summary"].as_str().unwrap().starts_with("issue: serial R-1042")).count();
    assert_eq!(issued, 1, "{log}");
    assert!(e.ok("0001", &["verify"]).contains("verify: OK"));
}

#[test]
fn racing_clients_on_sqlite() {
    racing_story(&Env::new());
}

#[test]
fn racing_clients_on_postgresql() {
    let admin = std::env::var("QM_TEST_POSTGRES_URL")
        .expect("QM_TEST_POSTGRES_URL is not set: run scripts/test-all, which starts a throwaway PostgreSQL, or point it at a server you may create databases on");
    let scratch = qm_store_postgres::scratch::ScratchDatabase::create(&admin).unwrap();
    let mut e = Env::new();
    e.url = Some(scratch.url().to_string());
    racing_story(&e);
}

#[test]
fn quantities_that_add_up_past_the_limit_are_refused_and_nothing_wraps() {
    let e = Env::new();
    e.setup();
    let before = e.entries();
    let stock_before = e.ok("0417", &["stock", "--unit", "D-1"]);
    // 9,300 lines of 999,999,999,999 rounds of one lot: each line is within the limit, the sum is not
    // (it used to wrap the balance in a release build, after which `qm stock` said "No stock").
    let mut args: Vec<String> = ["receive", "--to", "ARM", "--from", "Arms Depot", "--document", "DN-BIG", "--item-type", "AMMO"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(std::iter::repeat_n("HUGE-1:999999999999".to_string(), 9_300));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let r = e.qm_as("0417", &argv);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("lot HUGE-1") && r.stderr.contains("rule quantity.max") && r.stderr.contains("1000000000000"),
        "{}",
        r.stderr
    );
    assert_eq!(e.entries(), before, "a refused receipt appends nothing");
    assert_eq!(e.ok("0417", &["stock", "--unit", "D-1"]), stock_before);
    // Two receipts that are each within the limit but together pass it: the second is refused.
    e.ok("0417", &["receive", "--to", "ARM", "--from", "Arms Depot", "--document", "DN-B1", "--item-type", "AMMO", "BIG-2:600000000000"]);
    let r = e.qm_as(
        "0417",
        &["receive", "--to", "ARM", "--from", "Arms Depot", "--document", "DN-B2", "--item-type", "AMMO", "BIG-2:600000000000"],
    );
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("lot BIG-2") && r.stderr.contains("quantity.max"), "{}", r.stderr);
    // A count that records the same lot past the limit is refused too.
    e.ok("0502", &["count", "start", "ARM"]);
    let r = e.qm_as("0502", &["count", "record", "C-1", "--location", "ARM", "BIG-2:999999999999", "BIG-2:999999999999"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("lot BIG-2") && r.stderr.contains("quantity.max"), "{}", r.stderr);
    // A figure beyond the limit is a usage error at the edge.
    let r = e.qm_as(
        "0417",
        &["receive", "--to", "ARM", "--from", "Arms Depot", "--document", "DN-B3", "--item-type", "AMMO", "BIG-3:1000000000001"],
    );
    assert_eq!(r.code, 2, "{}", r.stderr);
    let stock = e.ok("0417", &["stock", "--unit", "D-1"]);
    assert!(stock.contains("BIG-2") && stock.contains("600000000000"), "{stock}");
    e.ok("0001", &["verify"]);
}

/// Every byte the ledger and the projection rows hold, as text, straight from the SQLite file.
fn ledger_and_rows_text(db: &Path) -> String {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut text = String::new();
    let mut st = conn.prepare("SELECT bytes FROM entries ORDER BY seq").unwrap();
    for b in st.query_map([], |r| r.get::<_, Vec<u8>>(0)).unwrap() {
        text.push_str(&String::from_utf8(b.unwrap()).unwrap());
        text.push('\n');
    }
    let mut st = conn.prepare("SELECT value FROM projection").unwrap();
    for v in st.query_map([], |r| r.get::<_, String>(0)).unwrap() {
        text.push_str(&v.unwrap());
        text.push('\n');
    }
    text
}

#[test]
fn no_secret_is_in_the_ledger_and_a_backup_holds_credentials_only_when_asked() {
    let e = Env::new();
    e.setup();
    e.ok("0417", &["person", "pin", "0417"]);
    let mut pw = Command::new(env!("CARGO_BIN_EXE_qm"));
    pw.env_clear().env("QM_DB", e.db()).env("QM_ACTOR", "0001").env("QM_PIN", "1234").env("QM_NEW_PASSWORD", "a long password");
    assert!(pw.args(["person", "password", "0501"]).status().unwrap().success());
    let token = e.ok("0001", &["token", "issue", "scanner-1", "--label", "Rack scanner", "--unit", "D-1", "--operations", "issue,return"]);
    e.ok("0001", &["token", "revoke", "scanner-1", "--reason", "lost"]);
    let again = e.qm(&["token", "revoke", "scanner-1", "--reason", "lost twice"]);
    assert_eq!(again.code, 3);
    assert!(again.stderr.contains("already revoked") && again.stderr.contains("rule token.revoked"), "{}", again.stderr);
    let text = ledger_and_rows_text(&e.db());
    assert!(!text.contains("argon2"), "a credential hash is in the ledger or the rows");
    // The ledger says that credentials were set and revoked, by whom and when.
    let log = e.json("0001", &["log", "--limit", "1000"]);
    let kinds: Vec<String> = log.as_array().unwrap().iter().map(|x| x["type"].as_str().unwrap_or("").to_string()).collect();
    for k in ["credential_set", "token_issued", "token_revoked"] {
        assert!(kinds.iter().any(|x| x == k), "no {k} in the log: {kinds:?}");
    }
    assert!(!token.is_empty());
    // The hashes are in the credentials table, outside the ledger.
    let conn = rusqlite::Connection::open(e.db()).unwrap();
    let n: i64 = conn.query_row("SELECT count(*) FROM credentials WHERE hash LIKE '$argon2id$%'", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 6 + 1, "five people and the administrator with a PIN, one password; the revoked token is gone");
    drop(conn);
    // A backup leaves them out unless asked; the restored site then accepts nobody's PIN.
    let plain = e.json("0001", &["backup", "plain.db"]);
    assert_eq!(plain["credentials"], 0);
    assert!(!ledger_and_rows_text(&e.path("plain.db")).contains("argon2"));
    let with = e.json("0001", &["backup", "with.db", "--with-credentials"]);
    assert_eq!(with["credentials"], 7);
    assert_eq!(mode(&e.path("with.db")), 0o600, "a backup with credentials is owner-only");
    for (backup, code) in [("plain.db", 3), ("with.db", 0)] {
        let target = e.path(&format!("restored-{backup}"));
        let r = Command::new(env!("CARGO_BIN_EXE_qm"))
            .env_clear()
            .args(["--db", target.to_str().unwrap(), "restore", e.path(backup).to_str().unwrap()])
            .output()
            .unwrap();
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        // Signing in needs a credential: a checkpoint needs the key, so ask for one that only authenticates.
        let r = Command::new(env!("CARGO_BIN_EXE_qm"))
            .env_clear()
            .env("QM_DB", &target)
            .env("QM_ACTOR", "0417")
            .env("QM_PIN", "1234")
            .args(["issue", "--to", "1001", "R-1041"])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&r.stderr);
        assert_eq!(r.status.code(), Some(code), "restored from {backup}: {stderr}");
        if code == 3 {
            assert!(stderr.contains("auth.pin"), "{stderr}");
        }
    }
}

#[test]
fn a_pin_shorter_than_the_minimum_is_refused() {
    let e = Env::new();
    e.setup();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_qm"));
    cmd.env_clear().env("QM_DB", e.db()).env("QM_ACTOR", "0001").env("QM_PIN", "1234").env("QM_NEW_PIN", "123");
    let r = cmd.args(["person", "add", "0999", "--name", "X", "--unit", "D-1", "--roles", "armorer"]).output().unwrap();
    assert_eq!(r.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&r.stderr).contains("4 to 128 characters"), "{}", String::from_utf8_lossy(&r.stderr));
}

#[test]
fn a_site_time_zone_is_set_by_an_administrator_and_times_carry_it() {
    let e = Env::new();
    e.setup();
    assert!(e.ok("0001", &["time-zone"]).starts_with("UTC (now "));
    // Only an administrator at the root sets it, and only to a zone the tz database knows.
    let r = e.qm_as("0417", &["time-zone", "Europe/Paris"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("permission.role"), "{}", r.stderr);
    let r = e.qm(&["time-zone", "Europe/Atlantis"]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("Europe/Atlantis"), "{}", r.stderr);
    e.ok("0001", &["time-zone", "Europe/Paris"]);
    let shown = e.ok("0001", &["time-zone"]);
    assert!(shown.starts_with("Europe/Paris (now ") && (shown.contains(" CET)") || shown.contains(" CEST)")), "{shown}");
    // Refusals and views show times in it, with its abbreviation.
    e.ok("0417", &["issue", "--to", "1001", "R-1041"]);
    let r = e.qm_as("0417", &["issue", "--to", "0501", "R-1041"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains(" CET;") || r.stderr.contains(" CEST;"), "{}", r.stderr);
    let log = e.json("0001", &["log", "--limit", "1"]);
    let at = log[0]["at"].as_str().unwrap();
    assert!(at.ends_with(" CET") || at.ends_with(" CEST"), "{at}");
    e.ok("0001", &["verify"]);
}

#[test]
fn a_sequence_number_beyond_the_ledger_is_not_found_never_another_entry() {
    let e = Env::new();
    e.setup();
    // 2^63 once wrapped to a negative integer in SQLite and read as an earlier entry; u64::MAX overflowed.
    for seq in ["9223372036854775808", "18446744073709551615", "100000"] {
        let r = e.qm_as("0501", &["correct", seq, "--reason", "probe"]);
        assert_eq!(r.code, 4, "correct {seq}: {} {}", r.stdout, r.stderr);
        assert!(r.stderr.contains(&format!("not found: entry {seq}")), "{}", r.stderr);
        let r = e.qm_as("0001", &["prove", seq]);
        assert_eq!(r.code, 4, "prove {seq}: {} {}", r.stdout, r.stderr);
        assert!(r.stderr.contains(&format!("not found: entry {seq}")), "{}", r.stderr);
    }
    e.ok("0001", &["verify"]);
}

#[test]
fn verify_reports_the_tamper_window_and_can_require_it_closed() {
    let e = Env::new();
    e.setup();
    // Every write of the CLI is checkpointed before it returns: no window.
    let v = e.json("0001", &["verify"]);
    assert_eq!(v["report"]["uncheckpointed"], 0, "{v}");
    e.ok("0001", &["verify", "--require-checkpointed"]);
    // A write made while the key file could not be read leaves its entries uncovered.
    let key = e.dir.path().join("site.db.key");
    let away = e.dir.path().join("away.key");
    std::fs::rename(&key, &away).unwrap();
    e.ok("0417", &["issue", "--to", "1001", "R-1041"]);
    std::fs::rename(&away, &key).unwrap();
    let text = e.ok("0001", &["verify"]);
    assert!(text.contains("1 entries after the latest signed checkpoint"), "{text}");
    let r = e.qm_as("0001", &["verify", "--require-checkpointed"]);
    assert_eq!(r.code, 1, "{} {}", r.stdout, r.stderr);
    assert!(r.stdout.contains("are not covered by a signed checkpoint; run `qm checkpoint`"), "{}", r.stdout);
    e.ok("0001", &["checkpoint"]);
    e.ok("0001", &["verify", "--require-checkpointed"]);
}

#[test]
fn look_alike_serials_and_control_characters_are_refused_at_the_command_line() {
    let e = Env::new();
    e.setup();
    let receive = |document: &str, serial: &str| {
        e.qm_as("0417", &["receive", "--to", "RACK-A", "--from", "Arms Depot", "--document", document, "--item-type", "RIFLE", serial])
    };
    // A fullwidth G and a Cherokee GE: they read as G36-D11-001, so they are no other serial.
    for serial in ["\u{FF27}36-D11-001", "\u{13C0}36-D11-001"] {
        let r = receive("DN-9", serial);
        assert_eq!(r.code, 2, "{serial}: {} {}", r.stdout, r.stderr);
        assert!(r.stderr.contains("use letters, digits and . _ - / only"), "{}", r.stderr);
    }
    // A document that would clear the terminal or forge a line of the log.
    for document in ["DN-9\u{1b}[2J", "DN-9\nseq 7 forged", "DN\u{202E}9-ND"] {
        let r = receive(document, "G36-D11-001");
        assert_eq!(r.code, 2, "{document:?}: {} {}", r.stdout, r.stderr);
        assert!(r.stderr.contains("document contains the character U+"), "{}", r.stderr);
    }
    let log = e.ok("0001", &["log", "--limit", "5"]);
    assert!(!log.contains("G36-D11-001") && !log.contains('\u{1b}'), "{log}");
    e.ok("0001", &["verify"]);
}

/// Incidents as an armorer and a duty officer meet them at the command line: a rifle reported lost
/// opens one by itself with its clocks (acknowledge; the 48-hour firearms report), the report stops
/// its clock, closing needs the duty officer and, for a critical one, a witness.
#[test]
fn a_lost_rifle_opens_an_incident_with_its_clocks_and_closes_by_the_rules() {
    let e = Env::new();
    e.setup();
    e.ok("0417", &["report-loss", "--from", "RACK-A", "R-1043"]);
    let list = e.json("0417", &["incidents", "--open"]);
    let i = &list.as_array().unwrap()[0];
    assert_eq!((i["id"].as_str(), i["kind"].as_str(), i["severity"].as_str()), (Some("I-1"), Some("loss"), Some("critical")), "{list}");
    let clocks: Vec<(&str, &str)> =
        i["clocks"].as_array().unwrap().iter().map(|c| (c["what"].as_str().unwrap(), c["status"].as_str().unwrap())).collect();
    assert_eq!(clocks, [("acknowledge", "open"), ("us-firearms-theft-loss", "open")]);
    assert!(i["clocks"][1]["source"].as_str().unwrap().contains("27 CFR 478.39a"), "{i}");
    let text = e.ok("0417", &["incident", "show", "I-1"]);
    assert!(text.contains("incident I-1: critical loss — open") && text.contains("us-firearms-theft-loss"), "{text}");
    e.ok("0501", &["incident", "ack", "I-1"]);
    e.ok(
        "0417",
        &["incident", "report", "I-1", "--obligation", "us-firearms-theft-loss", "--authority", "ATF", "--reference", "ATF-2026-118"],
    );
    let shown = e.json("0417", &["incident", "show", "I-1"]);
    assert!(shown["clocks"].as_array().unwrap().iter().all(|c| c["status"] == "met"), "{shown}");
    // An armorer may not close a critical incident; the duty officer may, with a witness.
    let r = e.qm_as("0417", &["incident", "close", "I-1", "--resolution", "reported; the search goes on"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("rule incident.close_authority"), "{}", r.stderr);
    let r = e.qm_as("0501", &["incident", "close", "I-1", "--resolution", "reported; the search goes on"]);
    assert_eq!(r.code, 3);
    assert!(r.stderr.contains("rule two_person"), "{}", r.stderr);
    e.ok("0501", &["incident", "close", "I-1", "--resolution", "reported; the search goes on", "--witness", "0417"]);
    assert!(e.json("0417", &["incidents", "--open"]).as_array().unwrap().is_empty());
    assert_eq!(e.qm_as("0417", &["incident", "show", "I-9"]).code, 4);
    assert_eq!(e.qm_as("0417", &["incident", "open", "--kind", "fire", "--severity", "low", "--unit", "D-1", "--summary", "x"]).code, 2);
    // By hand: a door found unlocked, escalated to the unit above.
    e.ok(
        "0417",
        &["incident", "open", "--kind", "other", "--severity", "medium", "--unit", "D-1", "--summary", "armory door found unlocked"],
    );
    let out = e.ok("0417", &["incident", "escalate", "I-2", "--reason", "nobody on duty at D-1 tonight"]);
    assert!(out.contains("incident I-2 escalated to unit HQ"), "{out}");
}

/// An organization replaces the shipped incident rules with its own file; a wrong file is refused
/// with the file, the key and the reason, before anything is done.
#[test]
fn an_organizations_incident_rules_replace_the_shipped_ones() {
    let e = Env::new();
    e.setup();
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../qm-core/data/incidents.toml")).unwrap();
    // Here a lost weapon is "high", not "critical", and must be reported within 12 hours.
    let ours =
        shipped.replace("severity = { weapon = \"critical\"", "severity = { weapon = \"high\"").replace("within_h = 48", "within_h = 12");
    std::fs::write(e.path("ours.toml"), &ours).unwrap();
    e.ok("0417", &["--incident-rules", "ours.toml", "report-loss", "--from", "RACK-A", "R-1043"]);
    let i = &e.json("0417", &["--incident-rules", "ours.toml", "incidents"])[0];
    assert_eq!(i["severity"], "high", "{i}");
    assert!(i["clocks"][1]["source"].as_str().unwrap().contains("478.39a"), "{i}");
    std::fs::write(e.path("bad.toml"), ours.replace("acknowledge_within_h = 72", "acknowledge_within_h = 0")).unwrap();
    let r = e.qm_as("0417", &["--incident-rules", "bad.toml", "incidents"]);
    assert_eq!(r.code, 2);
    assert!(r.stderr.contains("bad.toml: key severity.low.acknowledge_within_h"), "{}", r.stderr);
}

/// Issue 19: small-arms cartridges (1.4S) beside high explosive (1.1D) need no flag; a single L item
/// type in an empty magazine is not refused as "may not be stored with" itself; a 1.4S firework is
/// never stored with 1.1D; `qm magazines` says which footnotes are in play.
#[test]
fn footnotes_apply_to_what_they_are_about() {
    let e = Env::new();
    e.magazine();
    for (id, name, code, attributes) in
        [("CART", "Cartridges 5.56", "1.4S", ""), ("GEL", "Water gel", "1.3L", ""), ("FW", "Signal fireworks", "1.4S", "firework")]
    {
        e.ok(
            "0001",
            &[
                "item-type",
                "add",
                id,
                "--name",
                name,
                "--kind",
                "explosive",
                "--tracking",
                "lot",
                "--neq-kg-per-unit",
                "0.001",
                "--un-code",
                code,
            ],
        );
        if !attributes.is_empty() {
            e.ok("0001", &["item-type", "attributes", id, attributes]);
        }
    }
    e.ok("0001", &["location", "add", "M3", "--name", "Empty magazine", "--unit", "D-1", "--kind", "magazine", "--neq-limit-kg", "100"]);
    e.ok("0420", &["receive", "--to", "M2", "--from", "X", "--document", "DN-60", "--item-type", "CART", "--witness", "0501", "C-1:1000"]);
    e.ok("0420", &["receive", "--to", "M3", "--from", "X", "--document", "DN-61", "--item-type", "GEL", "--witness", "0501", "G-1:10"]);
    e.ok("0420", &["receive", "--to", "M3", "--from", "X", "--document", "DN-62", "--item-type", "GEL", "--witness", "0501", "G-2:10"]);
    let r = e
        .qm_as("0420", &["receive", "--to", "M2", "--from", "X", "--document", "DN-63", "--item-type", "FW", "--witness", "0501", "F-1:5"]);
    assert!(r.code == 3 && r.stderr.contains("footnote 5 (no 1.4S fireworks with HD 1.1 or 1.2) applies"), "{}", r.stderr);
    // Detonators, flagged as such, in a magazine built for them: footnote 4 is in play, and met.
    e.ok("0001", &["item-type", "attributes", "DET", "detonator"]);
    e.ok("0001", &["location", "safety", "M2", "--flag", "detonator_provisions"]);
    e.ok("0420", &["receive", "--to", "M2", "--from", "X", "--document", "DN-64", "--item-type", "DET", "--witness", "0501", "DET-1:100"]);
    let m = e.ok("0420", &["magazines"]);
    assert!(m.contains("footnote 4 (detonator provisions of 177.835(g)): DET 1.1B with TNT 1.1D — met"), "{m}");
    let v = e.json("0420", &["magazines"]);
    let m3 = v.as_array().unwrap().iter().find(|x| x["location"] == "M3").unwrap();
    assert_eq!(m3["footnotes"], serde_json::json!([]), "one L item type: nothing to judge");
}

/// Every source of automatic incidents as a user meets them: a count that finds the books wrong, an
/// excursion in a CSV of readings, a wrong PIN, and explosives reported lost with their 24-hour
/// report clock shown, then met; a report never made is recorded as missed by `qm tick`.
#[test]
fn each_source_of_automatic_incidents_opens_one_with_its_clocks() {
    let e = Env::new();
    e.magazine();
    let kinds = |e: &Env| -> Vec<String> {
        let list = e.json("0001", &["incidents"]);
        let mut v: Vec<String> = list.as_array().unwrap().iter().map(|i| i["kind"].as_str().unwrap().to_string()).collect();
        v.sort();
        v
    };
    assert!(kinds(&e).is_empty());
    // A count: a rifle missing from the rack.
    e.ok("0502", &["count", "start", "RACK-A", "--blind"]);
    e.ok("0502", &["count", "record", "C-1", "--location", "RACK-A", "R-1041", "R-1042"]);
    e.ok("0502", &["count", "close", "C-1"]);
    let i = e.json("0001", &["incidents", "--kind", "count_discrepancy"]);
    assert_eq!(i[0]["severity"], "high", "a weapon: {i}");
    assert!(i[0]["summary"].as_str().unwrap().contains("serial R-1043"), "{i}");
    // An excursion in a file of readings.
    let mut csv = String::from("location,at,temperature_c\n");
    for h in 0..6 {
        csv.push_str(&format!("M2,2026-07-01T{h:02}:00:00Z,{}\n", if h == 3 { 45.0 } else { 20.0 }));
    }
    std::fs::write(e.path("r.csv"), csv).unwrap();
    e.ok("0420", &["conditions", "import", "r.csv"]);
    let i = e.json("0001", &["incidents", "--kind", "excursion"]);
    assert_eq!((i[0]["severity"].as_str(), i[0]["location"].as_str()), (Some("medium"), Some("M2")), "{i}");
    // A wrong PIN at the counter.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_qm"));
    let out = cmd.env_clear().env("QM_DB", e.db()).env("QM_ACTOR", "0417").env("QM_PIN", "9999").args(["issue", "--to", "1001", "R-1041"]);
    assert_eq!(out.output().unwrap().status.code(), Some(3));
    let i = e.json("0001", &["incidents", "--kind", "unauthorized_access"]);
    assert!(i[0]["summary"].as_str().unwrap().contains("denied issue for 0417"), "{i}");
    // Explosives reported lost: critical, with the 24-hour report to ATF running, then met.
    e.ok("0420", &["report-loss", "--from", "M2", "--witness", "0501", "TNT-3:10"]);
    let i = e.json("0001", &["incidents", "--kind", "loss"]);
    let loss = &i[0];
    assert_eq!(loss["severity"], "critical", "{loss}");
    let clock = loss["clocks"].as_array().unwrap().iter().find(|c| c["what"] == "us-explosives-theft-loss").unwrap();
    assert_eq!(clock["status"], "open");
    let left = clock["left_s"].as_i64().unwrap();
    assert!((23 * 3600..=24 * 3600).contains(&left), "24 hours from discovery: {clock}");
    assert!(clock["source"].as_str().unwrap().contains("27 CFR 555.30"), "{clock}");
    let id = loss["id"].as_str().unwrap().to_string();
    e.ok(
        "0420",
        &["incident", "report", &id, "--obligation", "us-explosives-theft-loss", "--authority", "ATF", "--reference", "5400.5-77"],
    );
    let shown = e.json("0001", &["incident", "show", &id]);
    assert!(shown["clocks"].as_array().unwrap().iter().any(|c| c["what"] == "us-explosives-theft-loss" && c["status"] == "met"), "{shown}");
    // A theft found 25 hours ago and never reported: the clock is missed, and `qm tick` records it
    // (once) with an incident of its own.
    let found =
        (time::OffsetDateTime::now_utc() - time::Duration::hours(25)).format(&time::format_description::well_known::Rfc3339).unwrap();
    let opened = e.json(
        "0420",
        &[
            "incident",
            "open",
            "--kind",
            "theft",
            "--severity",
            "critical",
            "--unit",
            "D-1",
            "--lot",
            "TNT-3",
            "--summary",
            "a case of TNT gone",
            "--discovered-at",
            &found,
        ],
    );
    let theft = opened["entries"][0]["event"]["incident"].as_str().unwrap().to_string();
    let shown = e.json("0001", &["incident", "show", &theft]);
    assert!(
        shown["clocks"].as_array().unwrap().iter().any(|c| c["what"] == "us-explosives-theft-loss" && c["status"] == "missed"),
        "{shown}"
    );
    let ticked = e.ok("0001", &["tick"]);
    assert!(ticked.contains(theft.as_str()) && ticked.contains("us-explosives-theft-loss"), "{ticked}");
    assert_eq!(e.ok("0001", &["tick"]).trim(), "nothing is due");
    assert_eq!(e.json("0001", &["incident", "show", &theft])["missed"][0], "us-explosives-theft-loss");
    assert_eq!(kinds(&e), ["count_discrepancy", "excursion", "loss", "other", "theft", "unauthorized_access"]);
    assert!(e.ok("0001", &["verify"]).contains("verify: OK"));
}

/// The real case, at the command line, on the demo organization: HQ orders tighter control for
/// ten days (two-person rule, a full count within 24 hours, a transfer-records review); the region
/// relays it with a rounds cap; Riverside (D-11) acknowledges, its armorer is briefed before the
/// first issue, it counts and reviews; Hilltop (D-12) does neither: the site's clock records the
/// missed acknowledgment and count, each an incident that escalates to the region; compliance
/// shows exactly that; at the end of the period the two-person rule stops with nobody acting.
#[test]
fn a_directive_is_issued_relayed_acknowledged_briefed_checked_and_ends_by_itself() {
    let e = Env::new();
    let db = e.db();
    e.ok("0001", &["demo", "--out", db.to_str().unwrap()]);
    let t0 = time::OffsetDateTime::now_utc();
    let at = |h: i64| (t0 + time::Duration::hours(h)).format(&time::format_description::well_known::Rfc3339).unwrap();
    let issued = e.json(
        "0009",
        &[
            "directive",
            "issue",
            "--unit",
            "HQ",
            "--title",
            "Visit of the head of state",
            "--text",
            "Tighten control of weapons, ammunition and explosives so that not a single incident occurs.",
            "--posture",
            "high",
            "--days",
            "10",
            "--measure",
            "two-person",
            "--measure",
            "count=24h",
            "--measure",
            "transfer-review=24h/30d",
        ],
    );
    let id = issued["entries"][0]["event"]["directive"].as_str().unwrap().to_string();
    assert_eq!(id, "DIR-2.demo.quartermaster", "the drill of two days ago is DIR-1");
    // The region relays it and adds a rounds cap; it may not loosen what HQ ordered.
    let r = e.qm_as("0503", &["directive", "relay", &id, "--unit", "NORTH", "--text", "x", "--measure", "count=48h"]);
    assert!(r.code == 3 && r.stderr.contains("rule directive.tighten_only") && r.stderr.contains("a later deadline"), "{}", r.stderr);
    e.ok(
        "0503",
        &[
            "directive",
            "relay",
            &id,
            "--unit",
            "NORTH",
            "--text",
            "Departments: count today, brief every shift.",
            "--measure",
            "rounds-cap=30",
        ],
    );
    let r = e.qm_as("0503", &["directive", "cancel", &id, "--reason", "not needed here"]);
    assert!(r.code == 3 && r.stderr.contains("rule directive.authority"), "{}", r.stderr);
    e.ok("0501", &["directive", "ack", &id, "--unit", "D-11"]);
    // The shift briefing before the first issue at the counter.
    let r = e.qm_as("0417", &["issue", "--to", "1001", "R-1041"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("rule directive.briefing") && r.stderr.contains("Visit of the head of state"), "{}", r.stderr);
    e.ok("0417", &["directive", "brief", &id]);
    let r = e.qm_as("0417", &["issue", "--to", "1001", "R-1041"]);
    assert!(r.code == 3 && r.stderr.contains("two-person posture") && r.stderr.contains(&id), "{}", r.stderr);
    e.ok("0417", &["issue", "--to", "1001", "R-1041", "--witness", "0610"]);
    let r = e.qm_as("0417", &["issue", "--to", "1002", "--from", "D11-AMMO", "L556-2024-07:60", "--witness", "0610"]);
    assert!(r.code == 3 && r.stderr.contains("cap of 30 per issue") && r.stderr.contains(&id), "{}", r.stderr);
    // Riverside counts both its stores (full, blind) and reviews its transfers.
    e.ok("0502", &["directive", "brief", &id, "--unit", "D-11"]);
    for store in ["D11-ARM", "D11-MAG-1"] {
        let c = e.json("0502", &["count", "start", store, "--blind"]);
        let count = c["entries"][0]["event"]["count"].as_str().unwrap().to_string();
        e.ok("0502", &["count", "close", &count]);
    }
    // The transfer review: a transfer the books do not show for D-11 cannot be raised; the one
    // found wrong is raised as a discrepancy, an incident in the same decision.
    let r = e.qm_as(
        "0501",
        &["directive", "sign-off", &id, "--unit", "D-11", "--task", "transfer_review", "--note", "x", "--raise", "T-9: lost"],
    );
    assert!(r.code == 3 && r.stderr.contains("transfer T-9 is not among those the review of unit D-11 covers"), "{}", r.stderr);
    let note = "every transfer checked against its papers";
    let why = "T-1: the receipt's count is not on the papers";
    let signed =
        e.ok("0501", &["directive", "sign-off", &id, "--unit", "D-11", "--task", "transfer_review", "--note", note, "--raise", why]);
    assert!(signed.contains("transfer_review of unit D-11 signed off"), "{signed}");
    let raised = e.json("0001", &["incidents", "--kind", "count_discrepancy", "--unit", "D-11"]);
    let raised: Vec<&str> = raised.as_array().unwrap().iter().map(|i| i["summary"].as_str().unwrap()).collect();
    assert!(raised.iter().any(|s| s.starts_with("transfer T-1 raised as a discrepancy")), "{raised:?}");
    let d11 = e.json("0004", &["compliance", &id]);
    let d11 = d11["rows"].as_array().unwrap().iter().find(|r| r["unit"] == "D-11").unwrap().clone();
    assert!(
        d11["incidents"].as_array().unwrap().iter().any(|i| i.as_str().unwrap().contains("count_discrepancy")),
        "raised under it: {d11}"
    );
    let c = e.json("0004", &["compliance", &id]);
    let row = |c: &serde_json::Value, u: &str| c["rows"].as_array().unwrap().iter().find(|r| r["unit"] == u).unwrap().clone();
    let d11 = row(&c, "D-11");
    assert_eq!(d11["acknowledged_by"], "0501");
    assert!(d11["tasks"].as_array().unwrap().iter().all(|t| t["status"] == "done"), "{d11}");
    assert_eq!(row(&c, "NORTH")["relayed_by"], "0503");
    // A day and a bit later: Hilltop never acknowledged nor counted. The site's clock records both.
    *e.now.borrow_mut() = Some(at(25));
    let ticked = e.ok("0001", &["tick"]);
    assert!(
        ticked.contains("acknowledge of unit D-12 not done by its deadline") && ticked.contains("count of unit D-12 not done"),
        "{ticked}"
    );
    let missed = e.json("0001", &["incidents", "--kind", "directive_missed", "--unit", "D-12"]);
    let what: Vec<&str> = missed.as_array().unwrap().iter().map(|i| i["summary"].as_str().unwrap()).collect();
    assert_eq!(what.len(), 3, "the acknowledgment, the count and the transfer review: {what:?}");
    assert!(what.iter().any(|w| w.starts_with("the count that directive")), "{what:?}");
    // Nobody at Hilltop acknowledges them: 4 hours later (high) they go up to the region.
    *e.now.borrow_mut() = Some(at(30));
    e.ok("0001", &["tick"]);
    let missed = e.json("0001", &["incidents", "--kind", "directive_missed"]);
    assert!(missed.as_array().unwrap().iter().all(|i| i["responsible"] == "NORTH"), "{missed}");
    // Headquarters' compliance shows exactly that, slowest unit first.
    let c = e.json("0004", &["compliance", &id]);
    let names: Vec<&str> = c["rows"].as_array().unwrap().iter().map(|r| r["unit"].as_str().unwrap()).collect();
    assert_eq!(names, ["NORTH", "D-12", "D-11"], "{c}");
    let d12 = row(&c, "D-12");
    assert!(d12["acknowledged_by"].is_null() && d12["acknowledge_late"] == true, "{d12}");
    assert_eq!(d12["incidents"].as_array().unwrap().len(), 3, "{d12}");
    assert_eq!((c["total"]["units"].as_u64(), c["total"]["acknowledged"].as_u64()), (Some(3), Some(2)), "{c}");
    let csv = e.ok("0004", &["compliance", &id, "--csv"]);
    assert!(csv.lines().count() == 4 && csv.contains("D-12,Hilltop Department"), "{csv}");
    // Eleven days on, the directive has ended by itself: one person issues again.
    *e.now.borrow_mut() = Some(at(24 * 11));
    e.ok("0417", &["return", "--from", "1001", "R-1041", "--to", "D11-RACK-A"]);
    e.ok("0417", &["issue", "--to", "1001", "R-1041"]);
    let list = e.json("0001", &["directives", "--in-force"]);
    assert!(list.as_array().unwrap().is_empty(), "{list}");
    assert!(e.ok("0001", &["verify"]).contains("verify: OK"));
}

/// A directive's period at the command line: only later is an extension, only the issuer or above
/// ends it early, and once cancelled it is in force nowhere and says so.
#[test]
fn a_directive_is_extended_and_cancelled_by_its_issuer_only() {
    let e = Env::new();
    let db = e.db();
    e.ok("0001", &["demo", "--out", db.to_str().unwrap()]);
    let at = |d: i64| {
        (time::OffsetDateTime::now_utc() + time::Duration::days(d)).format(&time::format_description::well_known::Rfc3339).unwrap()
    };
    let issued = e.json(
        "0009",
        &[
            "directive",
            "issue",
            "--unit",
            "HQ",
            "--title",
            "Audit",
            "--text",
            "Count everything.",
            "--posture",
            "heightened",
            "--end",
            &at(5),
        ],
    );
    let id = issued["entries"][0]["event"]["directive"].as_str().unwrap().to_string();
    let r = e.qm_as("0009", &["directive", "extend", &id, "--end", &at(3), "--reason", "sooner"]);
    assert!(
        r.code == 3 && r.stderr.contains("an extension must end later") && r.stderr.contains("rule directive.tighten_only"),
        "{}",
        r.stderr
    );
    e.ok("0009", &["directive", "extend", &id, "--end", &at(8), "--reason", "the audit runs longer"]);
    let r = e.qm_as("0503", &["directive", "extend", &id, "--end", &at(9), "--reason", "x"]);
    assert!(r.code == 3 && r.stderr.contains("rule directive.authority"), "{}", r.stderr);
    assert_eq!(e.json("0001", &["directives", "--in-force"]).as_array().unwrap().len(), 1);
    e.ok("0009", &["directive", "cancel", &id, "--reason", "audit done early"]);
    assert!(e.json("0001", &["directives", "--in-force"]).as_array().unwrap().is_empty());
    let shown = e.ok("0001", &["directive", "show", &id]);
    assert!(shown.contains("cancelled") && shown.contains("audit done early"), "{shown}");
    let r = e.qm_as("0009", &["directive", "cancel", &id, "--reason", "again"]);
    assert!(r.code == 3 && r.stderr.contains("rule directive.state"), "{}", r.stderr);
    assert_eq!(e.qm_as("0001", &["directive", "show", "DIR-99.nowhere"]).code, 4);
}

/// Armory access control as an armory meets it, from the command line (docs/access.md): the duty
/// officer keeps the roster, the key register follows it, people badge in at the door (refused when
/// not on it, outside the hours or with a wrong PIN; a duress PIN looks exactly like the real one and
/// raises a critical incident), a directive orders two-person entry and entry hours, the site's clock
/// raises a person left alone, and verify notices a door event altered behind the server's back.
#[test]
fn access_control_at_the_armory_door_from_the_command_line() {
    let e = Env::new();
    e.setup();
    e.ok("0001", &["person", "add", "0009", "--name", "T. Hale", "--unit", "HQ", "--roles", "duty_officer"]);
    // A Monday, in the simulated clock.
    let at = |hm: &str| format!("2030-01-07T{hm}:00Z");
    *e.now.borrow_mut() = Some(at("08:00"));
    // Only someone who keeps rosters grants a place on one, and only for armories, depots, magazines.
    let r = e.qm_as("0417", &["access", "grant", "ARM", "1001", "--role", "armorer", "--hours", "always", "--reason", "x"]);
    assert!(r.code != 0 && r.stderr.contains("permission.role"), "{}", r.stderr);
    let r = e.qm_as("0501", &["access", "grant", "RACK-A", "1001", "--role", "armorer", "--hours", "always", "--reason", "x"]);
    assert!(r.code != 0 && r.stderr.contains("access.place"), "{}", r.stderr);
    let r = e.qm_as("0501", &["access", "grant", "ARM", "0417", "--role", "armorer", "--hours", "mon-fri 25:00-19:00", "--reason", "x"]);
    assert!(r.code != 0 && r.stderr.contains("25:00"), "{}", r.stderr);
    e.ok(
        "0501",
        &[
            "access",
            "grant",
            "ARM",
            "0417",
            "--role",
            "armorer",
            "--hours",
            "mon-fri 07:00-19:00",
            "--except",
            "2030-01-01=closed",
            "--reason",
            "day armorer",
        ],
    );
    e.ok("0501", &["access", "grant", "ARM", "1001", "--role", "armorer", "--hours", "always", "--reason", "armorer on call"]);
    let roster = e.json("0001", &["access", "roster", "ARM"]);
    let hours: Vec<&str> = roster.as_array().unwrap().iter().map(|r| r["hours"].as_str().unwrap()).collect();
    assert_eq!(hours, ["mon-fri 07:00-19:00 (except 2030-01-01=closed)", "always"]);
    // The key register: the armory's key goes to roster members only.
    e.ok("0001", &["item-type", "add", "KEY", "--name", "Armory key", "--kind", "key", "--tracking", "serial"]);
    e.ok("0001", &["item-type", "attributes", "KEY", "opens:ARM"]);
    e.ok("0417", &["receive", "--to", "ARM", "--from", "Locksmith", "--document", "K-DN", "--item-type", "KEY", "K-1"]);
    let r = e.qm_as("0417", &["issue", "--to", "0501", "K-1"]);
    assert!(r.code != 0 && r.stderr.contains("access.key_roster") && r.stderr.contains("opens ARM"), "{}", r.stderr);
    e.ok("0417", &["issue", "--to", "1001", "K-1"]);
    let arm = e.json("0001", &["access", "inside", "ARM"]);
    let due = arm[0]["count_due"].as_str().unwrap_or_default();
    assert!(due.contains("a full count by 2030-01-08 08:00 UTC: key K-1 to badge 1001"), "the key changed hands: {arm}");
    // At the door: granted within the hours; refused off the roster, and with a wrong PIN.
    *e.now.borrow_mut() = Some(at("09:00"));
    assert_eq!(e.ok("0417", &["access", "door", "ARM"]).trim(), "granted: J. Armstrong (badge 0417) may enter ARM");
    let r = e.qm_as("0502", &["access", "door", "ARM"]);
    assert_eq!((r.code, r.stdout.trim()), (1, "refused: badge 0502 is not on the roster of ARM"));
    let mut wrong = Command::new(env!("CARGO_BIN_EXE_qm"));
    wrong.env_clear().env("QM_DB", e.db()).env("QM_TEST_NOW", at("09:01")).env("QM_ACTOR", "1001").env("QM_PIN", "9999");
    let out = wrong.args(["access", "door", "ARM"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "refused: wrong PIN for badge 1001");
    // A duress PIN (it must differ from the PIN) opens the door exactly as the real one does.
    let r = e.qm_as("1001", &["person", "duress-pin", "1001"]);
    assert!(r.code != 0 && r.stderr.contains("must differ"), "{}", r.stderr);
    let mut set = Command::new(env!("CARGO_BIN_EXE_qm"));
    set.env_clear().env("QM_DB", e.db()).env("QM_TEST_NOW", at("09:02")).env("QM_ACTOR", "1001").env("QM_PIN", "1234");
    assert!(set.env("QM_NEW_PIN", "4321").args(["person", "duress-pin", "1001"]).status().unwrap().success());
    *e.now.borrow_mut() = Some(at("09:03"));
    let real = e.ok("1001", &["access", "door", "ARM"]);
    e.ok("1001", &["access", "door", "ARM", "--exit"]);
    let mut duress = Command::new(env!("CARGO_BIN_EXE_qm"));
    duress.env_clear().env("QM_DB", e.db()).env("QM_TEST_NOW", at("09:04")).env("QM_ACTOR", "1001").env("QM_PIN", "4321");
    let out = duress.args(["access", "door", "ARM"]).output().unwrap();
    assert_eq!(
        (out.status.code(), String::from_utf8_lossy(&out.stdout).to_string()),
        (Some(0), real.clone()),
        "nothing tells duress apart"
    );
    let i = e.json("0001", &["incidents", "--kind", "duress"]);
    assert_eq!((i.as_array().unwrap().len(), i[0]["severity"].as_str()), (1, Some("critical")), "{i}");
    let i = e.json("0001", &["incidents", "--kind", "unauthorized_access"]);
    let rules: Vec<&str> = i.as_array().unwrap().iter().map(|x| x["rule"].as_str().unwrap()).collect();
    assert_eq!(rules.iter().filter(|r| r.ends_with("on door_denied")).count(), 2, "the two refusals at the door: {i}");
    assert_eq!(rules.iter().filter(|r| r.ends_with("on access_denied")).count(), 1, "the armorer's attempt at the roster: {i}");
    // Both leave; HQ orders two-person entry and entry hours.
    *e.now.borrow_mut() = Some(at("09:05"));
    e.ok("0417", &["access", "door", "ARM", "--exit"]);
    e.ok("1001", &["access", "door", "ARM", "--exit"]);
    e.ok(
        "0009",
        &[
            "directive",
            "issue",
            "--unit",
            "HQ",
            "--title",
            "Tight control",
            "--text",
            "Nobody alone in an armory.",
            "--posture",
            "high",
            "--days",
            "3",
            "--measure",
            "two-person-entry=5m",
            "--measure",
            "entry-hours=06:00-20:00",
        ],
    );
    *e.now.borrow_mut() = Some(at("09:20"));
    e.ok("0417", &["access", "door", "ARM"]);
    let inside = e.json("0001", &["access", "inside", "ARM"]);
    assert_eq!((inside[0]["alone"].as_bool(), inside[0]["inside"][0]["badge"].as_str()), (Some(true), Some("0417")), "{inside}");
    *e.now.borrow_mut() = Some(at("09:24"));
    e.ok("0001", &["tick"]);
    assert!(e.json("0001", &["incidents", "--kind", "lone_person"]).as_array().unwrap().is_empty(), "within the partner window");
    *e.now.borrow_mut() = Some(at("09:26"));
    assert!(e.ok("0001", &["tick"]).contains("alone inside ARM since"));
    e.ok("0001", &["tick"]);
    let i = e.json("0001", &["incidents", "--kind", "lone_person"]);
    assert_eq!((i.as_array().unwrap().len(), i[0]["severity"].as_str()), (1, Some("high")), "raised once: {i}");
    // After the directive's hours, even someone rostered always is refused.
    *e.now.borrow_mut() = Some(at("20:30"));
    let r = e.qm_as("1001", &["access", "door", "ARM"]);
    assert!(r.code == 1 && r.stdout.contains("no entry to ARM outside 06:00-20:00") && r.stdout.contains("directive"), "{}", r.stdout);
    // The day's log, as the rules judged it.
    let log = e.json("0001", &["access", "log", "ARM", "--date", "2030-01-07"]);
    let kinds: Vec<&str> = log.as_array().unwrap().iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "denied").count(), 3, "{log}");
    assert!(log.as_array().unwrap().iter().any(|r| r["findings"][0] == "duress"), "{log}");
    let text = e.ok("0001", &["access", "log", "ARM", "--date", "2030-01-07"]);
    assert!(text.contains("not on the roster of ARM"), "{text}");
    // The key changed hands at 08:00 and nobody counted the armory: the next morning the clock raises it.
    *e.now.borrow_mut() = Some("2030-01-08T08:30:00Z".into());
    e.ok("0001", &["tick"]);
    let i = e.json("0001", &["incidents", "--kind", "count_missed"]);
    assert_eq!((i.as_array().unwrap().len(), i[0]["severity"].as_str()), (1, Some("high")), "{i}");
    assert!(i[0]["summary"].as_str().unwrap().contains("no full count of ARM within 24 h after its key K-1 changed hands"), "{i}");
    e.ok("0501", &["access", "revoke", "ARM", "1001", "--reason", "moved to D-2"]);
    assert_eq!(e.json("0001", &["access", "roster", "ARM"]).as_array().unwrap().len(), 1);
    assert!(e.ok("0001", &["verify"]).contains("verify: OK"));
    // Someone with the database file alters a door event (the triggers dropped first): verify says which entry.
    let c = rusqlite::Connection::open(e.db()).unwrap();
    c.execute_batch("DROP TRIGGER door_events_no_update; UPDATE door_events SET badge = '0501' WHERE badge = '0502';").unwrap();
    drop(c);
    let r = e.qm(&["verify"]);
    assert!(r.code != 0 && r.stdout.contains("door events") && r.stdout.contains("altered"), "{}{}", r.stdout, r.stderr);
}

/// `qm counts`: every count newest first (C-12 before C-2, not between C-1 and C-2), with its unit,
/// place, kind, counter, times and result; `--schedule`: each armory, depot and magazine with its
/// last full count and the next one due under `full_count_every_days`, set with `qm policy`.
#[test]
fn counts_are_listed_newest_first_and_scheduled_by_policy() {
    let e = Env::new();
    e.ok("0001", &["demo", "--out", "site.db"]);
    for _ in 0..11 {
        let started = e.json("0417", &["count", "start", "D11-RACK-A", "--cycle"]);
        let id = started["entries"][0]["event"]["count"].as_str().unwrap().to_string();
        e.ok("0417", &["count", "close", &id]);
    }
    let list = e.json("0417", &["counts"]);
    let numbers: Vec<u64> =
        list.as_array().unwrap().iter().map(|c| c["count"].as_str().unwrap().trim_start_matches("C-").parse().unwrap()).collect();
    assert!(numbers.len() >= 11 && numbers.windows(2).all(|w| w[0] > w[1]), "newest first: {numbers:?}");
    let first = &list[0];
    assert_eq!(
        (first["unit"].as_str(), first["place"].as_str(), first["kind"].as_str()),
        (Some("D-11"), Some("D11-RACK-A"), Some("cycle"))
    );
    assert!(first["closed"].is_string() && first["result"].as_str().is_some_and(|r| !r.is_empty()), "{first}");
    let text = e.ok("0417", &["counts"]);
    assert!(text.contains("opened") && text.contains("result"), "{text}");
    // D-11 counts weekly under the demo's policy; set here to every 3 days.
    e.ok("0001", &["policy", "D-11", "--full-count-every-days", "3", "--two-person-entry"]);
    let schedule = e.json("0417", &["counts", "--schedule"]);
    let places = schedule.as_array().unwrap();
    assert!(!places.is_empty() && places.iter().all(|p| p["unit"] != "D-11" || p["every_days"] == 3), "{schedule}");
    let never = places.iter().find(|p| p["last_full"].is_null() && p["every_days"] == 3).expect("a place never counted in full");
    assert_eq!(never["overdue"], true, "due at once: {never}");
    assert!(e.ok("0417", &["counts", "--schedule"]).contains("OVERDUE"));
}
