//! Nine sites as an organization runs them (issue 17, docs/sites.md): headquarters on PostgreSQL,
//! two regions (one on SQLite, one on PostgreSQL), six departments on their own sites (one on
//! PostgreSQL), each a `qm serve` process on loopback syncing with its parent every second. A
//! directive issued at headquarters comes down through the regions to every department, is
//! acknowledged at each, and the acknowledgments go up through the regions' mirrors to
//! headquarters; one department's line is cut (a proxy this test owns) while it acknowledges, and
//! it catches up when the line is back; headquarters' catalog, armorers and unit tree come down,
//! and a transfer from one department to another under the other region is matched at
//! headquarters; one department's history is rewritten, its region refuses it and headquarters
//! sees the region's incident. Every process is ended by this test.

mod common;

use common::sites::*;
use serde_json::Value;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A line between a site and its parent: a TCP proxy on loopback that the test cuts (every open
/// connection shut, new ones refused) and restores. It stops when dropped.
struct Line {
    url: String,
    up: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Line {
    fn to(target: &str) -> Line {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let target = target.trim_start_matches("http://").to_string();
        let (up, stop, open) = (Arc::new(AtomicBool::new(true)), Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(vec![])));
        let (up2, stop2, open2) = (up.clone(), stop.clone(), open.clone());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let Ok(server) = TcpStream::connect(&target) else { continue };
                if !up2.load(Ordering::SeqCst) || client.set_nonblocking(false).is_err() {
                    continue;
                }
                let pairs = [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server.try_clone().unwrap(), client.try_clone().unwrap()),
                ];
                open2.lock().unwrap().extend([client, server]);
                for (mut from, mut to) in pairs {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Line { url, up, stop, open }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Line {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        self.cut();
    }
}

/// One site of the simulation: its database (a file, or a PostgreSQL URL), its key, its name.
struct SiteDb {
    origin: String,
    db: String,
    key: PathBuf,
    _scratch: Option<qm_store_postgres::scratch::ScratchDatabase>,
}

fn site(d: &Path, origin: &str, root: &str, on_postgres: bool) -> SiteDb {
    let key = d.join(format!("{origin}.key"));
    let (db, scratch) = if on_postgres {
        let s = postgres();
        (s.url().to_string(), Some(s))
    } else {
        (d.join(format!("{origin}.db")).display().to_string(), None)
    };
    init(d, &db, &key, origin, root);
    SiteDb { origin: origin.to_string(), db, key, _scratch: scratch }
}

impl SiteDb {
    fn ok(&self, d: &Path, args: &[&str]) -> String {
        ok(d, &self.db, &self.key, args)
    }
    fn json(&self, d: &Path, args: &[&str]) -> Value {
        json(d, &self.db, &self.key, args)
    }
    fn vkey(&self, d: &Path) -> String {
        verifier_key(d, &self.db, &self.key)
    }
    /// Its witness and mirror keys, as a parent.
    fn parent_keys(&self, d: &Path) -> (String, String) {
        parent_keys(d, &self.db, &self.key)
    }
    fn serve(&self, d: &Path, env: &[(&str, &str)]) -> Server {
        serve(d, &self.db, &self.key, "127.0.0.1:0", env, &self.origin)
    }
}

/// Waits (at most 60 s) until `done` holds; says what was awaited if it never does, with the end
/// of every server's log in `d`.
fn wait_until(d: &Path, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(60) {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let mut logs = String::new();
    for e in std::fs::read_dir(d).unwrap().flatten().filter(|e| e.path().extension().is_some_and(|x| x == "stderr" || x == "log")) {
        let text = std::fs::read_to_string(e.path()).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(12).collect();
        logs.push_str(&format!("\n--- {}:\n{}", e.path().display(), tail.into_iter().rev().collect::<Vec<_>>().join("\n")));
    }
    panic!("after 60 s: {what}{logs}");
}

/// The children file of a parent: each child's origin, key and the unit it serves there.
fn children_file(d: &Path, name: &str, children: &[(&SiteDb, &str)]) -> String {
    let text: String =
        children.iter().map(|(s, unit)| format!("[children.\"{}\"]\nkey = \"{}\"\nunit = \"{unit}\"\n", s.origin, s.vkey(d))).collect();
    let file = d.join(format!("{name}-children.toml"));
    std::fs::write(&file, text).unwrap();
    file.display().to_string()
}

/// The environment of a site that syncs with `parent` (its server's URL) every second.
fn child_env(parent: &SiteDb, d: &Path, url: &str, children: Option<&str>) -> Vec<(String, String)> {
    let (wk, mk) = parent.parent_keys(d);
    let mut env = vec![
        ("QM_PARENT".to_string(), format!("{url}/witness")),
        ("QM_PARENT_KEY".into(), wk),
        ("QM_PARENT_MIRROR_KEY".into(), mk),
        ("QM_PARENT_MIRROR".into(), format!("{url}/mirror")),
        ("QM_PARENT_LOG_KEY".into(), parent.vkey(d)),
        ("QM_SYNC_EVERY_S".into(), "1".into()),
    ];
    env.extend(children.map(|c| ("QM_CHILDREN".to_string(), c.to_string())));
    env
}

fn serve_with(s: &SiteDb, d: &Path, env: &[(String, String)]) -> Server {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    s.serve(d, &env)
}

/// Whether headquarters, from its mirror of department `origin`, sees directive `id` acknowledged there.
fn acknowledged_at_hq(d: &Path, hq: &SiteDb, hq_children: &str, origin: &str, id: &str) -> bool {
    let out = qm(d, &hq.db, &hq.key, &["--children", hq_children, "witness", "books", origin, "--json"]);
    let Ok(books) = serde_json::from_slice::<Value>(&out.stdout) else { return false };
    books["directives"].as_array().is_some_and(|ds| ds.iter().any(|x| x["id"] == id && x["units_acknowledged"] == 1))
}

#[test]
fn nine_sites_a_directive_down_and_its_acknowledgments_up_through_a_cut_line_and_a_rewritten_site() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hq = site(d, "hq.example", "NHQ", true);
    let regions = [site(d, "north.example", "R-N", false), site(d, "south.example", "R-S", true)];
    let depts: Vec<SiteDb> = (1..=6).map(|i| site(d, &format!("d{i}.example"), &format!("D-{i}"), i == 6)).collect();
    // Each parent's books know the units its children serve; each department has its duty officer.
    for (r, unit) in regions.iter().zip(["R-N", "R-S"]) {
        hq.ok(d, &["unit", "add", unit, "--name", unit, "--parent", "NHQ"]);
        for i in if unit == "R-N" { 1..=3 } else { 4..=6 } {
            let dept = format!("D-{i}");
            hq.ok(d, &["unit", "add", &dept, "--name", &dept, "--parent", unit]);
            r.ok(d, &["unit", "add", &dept, "--name", &dept, "--parent", unit]);
        }
    }
    hq.ok(d, &["person", "add", "0009", "--name", "T. Hale", "--unit", "NHQ", "--roles", "duty_officer", "--new-pin", "1234"]);
    // Headquarters' catalog and the armorers it appoints to two departments come down with the tree.
    hq.ok(d, &["item-type", "add", "RIFLE-G36", "--name", "Rifle G36", "--kind", "weapon", "--tracking", "serial"]);
    // And its own incident rules, adopted in its ledger.
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../qm-core/data/incidents.toml")).unwrap();
    let rules = d.join("hq-incidents.toml");
    std::fs::write(&rules, shipped.replacen("acknowledge_within_h = 4", "acknowledge_within_h = 2", 1)).unwrap();
    hq.ok(d, &["rules", "adopt", "incident-rules", rules.to_str().unwrap()]);
    for (badge, unit) in [("0611", "D-1"), ("0417", "D-4")] {
        let roles = "armorer,logistics";
        hq.ok(d, &["person", "add", badge, "--name", &format!("Armorer {unit}"), "--unit", unit, "--roles", roles, "--new-pin", "1234"]);
    }
    for (i, dept) in depts.iter().enumerate() {
        dept.ok(
            d,
            &[
                "person",
                "add",
                "0501",
                "--name",
                "L. Chen",
                "--unit",
                &format!("D-{}", i + 1),
                "--roles",
                "duty_officer",
                "--new-pin",
                "1234",
            ],
        );
    }
    let mut all_children: Vec<(&SiteDb, String)> = vec![(&regions[0], "R-N".into()), (&regions[1], "R-S".into())];
    all_children.extend(depts.iter().enumerate().map(|(i, s)| (s, format!("D-{}", i + 1))));
    let hq_children = children_file(d, "hq", &all_children.iter().map(|(s, u)| (*s, u.as_str())).collect::<Vec<_>>());
    let hq_server = hq.serve(d, &[("QM_CHILDREN", &hq_children)]);
    let mut servers = vec![];
    let mut lines = vec![];
    for (r, range) in regions.iter().zip([0..3, 3..6]) {
        let kids: Vec<(&SiteDb, String)> = range.clone().map(|i| (&depts[i], format!("D-{}", i + 1))).collect();
        let file = children_file(d, &r.origin, &kids.iter().map(|(s, u)| (*s, u.as_str())).collect::<Vec<_>>());
        let region_server = serve_with(r, d, &child_env(&hq, d, &hq_server.1, Some(&file)));
        for i in range {
            // d2's line to its region goes through a proxy this test cuts.
            let url = if i == 1 {
                lines.push(Line::to(&region_server.1));
                lines[0].url.clone()
            } else {
                region_server.1.clone()
            };
            servers.push((depts[i].origin.clone(), serve_with(&depts[i], d, &child_env(r, d, &url, None))));
        }
        servers.push((r.origin.clone(), region_server));
    }
    // Headquarters orders every unit; the order reaches every department through its region.
    let issued = hq.json(
        d,
        &[
            "--actor",
            "0009",
            "directive",
            "issue",
            "--unit",
            "NHQ",
            "--title",
            "National alert",
            "--text",
            "Two guards at every door.",
            "--posture",
            "high",
            "--days",
            "3",
        ],
    );
    let id = issued["entries"][0]["event"]["directive"].as_str().unwrap().to_string();
    for dept in &depts {
        wait_until(d, &format!("{id} in force at {}", dept.origin), || {
            dept.json(d, &["directives"]).as_array().unwrap().iter().any(|x| x["id"] == id.as_str() && x["status"] == "in_force")
        });
    }
    // d2's line is cut: it acknowledges and works on alone; the others' acknowledgments reach headquarters.
    lines[0].cut();
    for (i, dept) in depts.iter().enumerate() {
        dept.ok(d, &["--actor", "0501", "directive", "ack", &id, "--unit", &format!("D-{}", i + 1)]);
    }
    depts[1].ok(d, &["unit", "add", "D-2-A", "--name", "Armory", "--parent", "D-2"]);
    for dept in depts.iter().filter(|s| s.origin != "d2.example") {
        wait_until(d, &format!("{}'s acknowledgment at headquarters", dept.origin), || {
            acknowledged_at_hq(d, &hq, &hq_children, &dept.origin, &id)
        });
    }
    assert!(!acknowledged_at_hq(d, &hq, &hq_children, "d2.example", &id), "d2's line is cut");
    assert!(depts[1].json(d, &["sync", "status"])["waiting"].as_u64().unwrap() >= 2, "d2's entries wait for the line");
    // The line is back: d2 catches up, nothing lost or twice.
    lines[0].restore();
    wait_until(d, "d2's acknowledgment at headquarters", || acknowledged_at_hq(d, &hq, &hq_children, "d2.example", &id));
    let d2_size = depts[1].json(d, &["sync", "status"])["size"].as_u64().unwrap();
    wait_until(d, "d2's whole ledger mirrored at headquarters", || {
        let status = hq.json(d, &["witness", "status"]);
        status.as_array().unwrap().iter().any(|w| w["origin"] == "d2.example" && w["mirrored_size"] == d2_size)
    });
    let status = hq.json(d, &["witness", "status"]);
    assert_eq!(status.as_array().unwrap().len(), 8, "headquarters holds the regions and every department: {status}");
    assert!(status.as_array().unwrap().iter().all(|w| w["mirrored_size"].as_u64().unwrap() > 0), "{status}");
    transfer_between_departments(d, (&hq, &hq_children), &depts[0], &depts[3], &id);
    let d5 = servers.iter().position(|(o, _)| o == "d5.example").unwrap();
    drop(servers.remove(d5));
    let south_url = servers.iter().find(|(o, _)| o == "south.example").unwrap().1 .1.clone();
    rewritten_department(d, &depts[4], &regions[1], &south_url);
    // The region's incident is in its own ledger: headquarters reads it from its mirror of the region.
    wait_until(d, "the region's ledger_fork incident about d5 at headquarters", || {
        let out = qm(d, &hq.db, &hq.key, &["--children", &hq_children, "witness", "books", "south.example", "--json"]);
        let Ok(books) = serde_json::from_slice::<Value>(&out.stdout) else { return false };
        let forks = |i: &Value| i["kind"] == "ledger_fork" && i["summary"].as_str().is_some_and(|s| s.contains("d5.example"));
        books["row"]["incidents_critical"].as_u64() >= Some(1) && books["incidents"].as_array().is_some_and(|is| is.iter().any(forks))
    });
    drop(servers);
    drop(hq_server);
}

/// d5's administrator (its server stopped) rewrites its history and signs it with the site key:
/// its region refuses the next sync and raises a critical incident naming the site (which goes up
/// to headquarters in the region's own ledger).
fn rewritten_department(d: &Path, d5: &SiteDb, south: &SiteDb, south_url: &str) {
    let log = d5.json(d, &["log", "--limit", "50"]);
    let seq = log.as_array().unwrap().iter().find(|l| l["summary"].as_str().unwrap().contains("L. Chen")).unwrap()["seq"].as_u64().unwrap();
    let forged = d.join("d5-forged.db").display().to_string();
    std::fs::copy(&d5.db, &forged).unwrap();
    for ext in ["-wal", "-shm"] {
        if Path::new(&format!("{}{ext}", d5.db)).exists() {
            std::fs::copy(format!("{}{ext}", d5.db), format!("{forged}{ext}")).unwrap();
        }
    }
    rewrite_history(&forged, &d5.key, seq, "L. Chen", "L. Cheng");
    let (wk, _) = south.parent_keys(d);
    let out = qm(d, &forged, &d5.key, &["sync", "--parent", &format!("{south_url}/witness"), "--parent-key", &wk]);
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success() && said.contains("(422)"), "{said}");
    let forks = south.json(d, &["incidents", "--kind", "ledger_fork"]);
    let forks = forks.as_array().unwrap();
    assert!(forks.iter().any(|i| i["severity"] == "critical" && i["summary"].as_str().unwrap().contains("d5.example")), "{forks:?}");
}

/// A transfer between two departments under different regions, matched at headquarters: d1's
/// armorer (appointed at headquarters, given a PIN and briefed there) receives two rifles of headquarters' catalog and dispatches
/// them to unit D-4, known at d1 from the tree that came down; d4's armorer records them received
/// from `d1.example/T-1`; headquarters, from both mirrors (each relayed by its region), sees the
/// transfer received as sent.
fn transfer_between_departments(d: &Path, (hq, hq_children): (&SiteDb, &str), d1: &SiteDb, d4: &SiteDb, directive: &str) {
    wait_until(d, "headquarters' armorers, catalog, units and incident rules at d1 and d4", || {
        let units = d1.json(d, &["unit", "list"]);
        let known = units.as_array().unwrap().iter().any(|u| u[0] == "D-4" && u[3] == "another site");
        let typed = |s: &SiteDb| s.json(d, &["item-type", "list"]).as_array().unwrap().iter().any(|t| t[0] == "RIFLE-G36");
        let staffed = |s: &SiteDb, b: &str| s.json(d, &["person", "list"]).as_array().unwrap().iter().any(|p| p["badge"] == b);
        let ruled = d4.json(d, &["rules", "list"]).as_array().unwrap().iter().any(|r| r[0] == "incident_rules" && r[2] == "hq.example");
        known && typed(d1) && typed(d4) && staffed(d1, "0611") && staffed(d4, "0417") && ruled
    });
    // No secret came down: each site's administrator gives the armorer a PIN there.
    for (s, place, unit, badge) in [(d1, "D1-ARM", "D-1", "0611"), (d4, "D4-ARM", "D-4", "0417")] {
        s.ok(d, &["location", "add", place, "--name", "Armory", "--unit", unit, "--kind", "armory"]);
        s.ok(d, &["person", "pin", badge, "--new-pin", "1234"]);
        // Headquarters' alert is in force there: the armorer is briefed before the first operation.
        s.ok(d, &["--actor", badge, "directive", "brief", directive]);
    }
    let rifles = ["--item-type", "RIFLE-G36", "G36-0001", "G36-0002"];
    d1.ok(d, &[&["--actor", "0611", "receive", "--to", "D1-ARM", "--from", "factory", "--document", "DN-1"][..], &rifles].concat());
    let sent = d1.json(d, &["--actor", "0611", "transfer", "dispatch", "--from", "D1-ARM", "--to-unit", "D-4", "G36-0001", "G36-0002"]);
    let t = sent["entries"][0]["event"]["transfer"].as_str().unwrap().to_string();
    let from = format!("d1.example/{t}");
    d4.ok(d, &[&["--actor", "0417", "receive", "--to", "D4-ARM", "--from", &from, "--document", "TR-1"][..], &rifles].concat());
    wait_until(d, &format!("{from} matched at headquarters"), || {
        let out = qm(d, &hq.db, &hq.key, &["--children", hq_children, "witness", "transfers", "--json"]);
        let Ok(rows) = serde_json::from_slice::<Value>(&out.stdout) else { return false };
        rows.as_array()
            .is_some_and(|r| r.iter().any(|x| x["id"] == from.as_str() && x["status"] == "received" && x["to_site"] == "d4.example"))
    });
}
