//! Headquarters in production (docs/sites.md): PostgreSQL with a synchronous replica that takes over
//! by itself. Headquarters' `qm serve` runs on a multi-host URL (`target_session_attrs=read-write`)
//! and witnesses and mirrors a department (the demo site, on SQLite) that keeps writing and whose
//! own server syncs every second. In the middle of an upload (headquarters has stored entries that
//! its mirror has not cosigned yet) the primary's machine is lost: its keeper and its postmaster
//! are killed (SIGKILL). While the replica is promoted the department records a large delivery, so
//! the upload that resumes carries requests of about 4 MiB. The sync resumes against the same
//! headquarters process, and at the end headquarters' mirror holds exactly the department's ledger:
//! the same entries byte for byte, none lost, none twice, the last checkpoint cosigned by both of
//! headquarters' keys and its root the one the witness holds.
//!
//! The failover is pg_auto_failover's (`pg_autoctl`: a monitor and two keepers replicating
//! synchronously), the setup documented for production, rather than the test promoting the replica
//! itself: it is what decides when to promote in production, and with the monitor's health checks
//! tuned (every second, a node failed after 3 s) it promotes about 4 s after the kill, reliably
//! (its defaults take about 30 s). Every process here is started by this test in its own process
//! group and ended by it; the data directories are removed.

mod common;

use common::sites::*;
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long any one wait may take before the test fails with every log.
const DEADLINE: Duration = Duration::from_secs(60);

const HOW: &str = "the failover test needs PostgreSQL and pg_auto_failover: \
apt-get install postgresql-15-auto-failover (scripts/test-all installs it)";

/// Sends `sig` to `target` (a PID, or `-PGID` for a process group this test started), with bash's
/// own `kill` (a `kill` program is not on every machine; bash is).
fn signal(target: &str, sig: &str) {
    let _ = Command::new("bash").args(["-c", "kill -s \"$0\" -- \"$1\"", sig, target]).stderr(Stdio::null()).status();
}

/// A loopback port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// The last lines of every log under the test's directories: qm's servers, pg_autoctl, Postgres.
fn tails(dirs: &[&Path]) -> String {
    let mut files = vec![];
    let mut todo: Vec<(PathBuf, usize)> = dirs.iter().map(|d| (d.to_path_buf(), 0)).collect();
    while let Some((dir, depth)) = todo.pop() {
        for e in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() && depth < 2 && !p.ends_with("base") && !p.ends_with("pg_wal") {
                todo.push((p, depth + 1));
            } else if p.extension().is_some_and(|x| x == "log" || x == "stderr") {
                files.push(p);
            }
        }
    }
    files.sort();
    let mut out = String::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        let tail: Vec<&str> = text.lines().rev().take(25).collect();
        out.push_str(&format!("\n--- {}:\n{}", f.display(), tail.into_iter().rev().collect::<Vec<_>>().join("\n")));
    }
    out
}

/// Waits until `done` holds (at most `DEADLINE`); how long it took. Fails with every log.
fn wait_until(what: &str, logs: &[&Path], mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        if done() {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("after {} s: {what}{}", DEADLINE.as_secs(), tails(logs));
}

/// The PostgreSQL programs of the newest version that has pg_auto_failover's extension, and the
/// environment they run in (a directory of their own). As root they run as the postgres user
/// (PostgreSQL refuses to run as root) through runuser; otherwise as this user.
struct PgTools {
    bin: PathBuf,
    root: bool,
    /// The cluster's superuser: the operating-system user its initdb ran as.
    user: String,
    env: Vec<(String, String)>,
}

impl PgTools {
    fn find(dir: &Path) -> PgTools {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .expect(HOW)
            .flatten()
            .filter(|e| e.path().join("bin/initdb").exists() && e.path().join("lib/pgautofailover.so").exists())
            .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
            .collect();
        versions.sort();
        let bin = versions.pop().expect(HOW).1;
        let ours = Command::new("pg_autoctl").arg("--version").output();
        assert!(ours.is_ok_and(|o| o.status.success()), "pg_autoctl does not run: {HOW}");
        let id = |arg: &str| String::from_utf8(Command::new("id").arg(arg).output().unwrap().stdout).unwrap().trim().to_string();
        let root = id("-u") == "0";
        let user = if root { "postgres".to_string() } else { id("-un") };
        if root {
            let chown = Command::new("chown").args(["-R", "postgres"]).arg(dir).status().unwrap();
            assert!(chown.success(), "chown postgres {}", dir.display());
        }
        let path = |p: &str| dir.join(p).display().to_string();
        let env = [
            ("PATH", format!("{}:/usr/bin:/bin", bin.display())),
            ("LANG", "C.UTF-8".into()),
            ("LC_ALL", "C.UTF-8".into()),
            ("HOME", path("")),
            // pg_autoctl's local connections go through the sockets' directory below.
            ("PGHOST", path("sock")),
            ("XDG_CONFIG_HOME", path("xdg/config")),
            ("XDG_DATA_HOME", path("xdg/data")),
            ("XDG_RUNTIME_DIR", path("xdg/run")),
        ];
        PgTools { bin, root, user, env: env.into_iter().map(|(k, v)| (k.to_string(), v)).collect() }
    }

    /// `program` with `args`, as the cluster's user, in the cluster's environment only.
    fn command(&self, program: &str, args: &[&str]) -> Command {
        let program = if self.bin.join(program).exists() { self.bin.join(program) } else { PathBuf::from(program) };
        let mut c = if self.root {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", "env", "-i"]).args(self.env.iter().map(|(k, v)| format!("{k}={v}"))).arg(program);
            c
        } else {
            let mut c = Command::new(program);
            c.env_clear().envs(self.env.iter().map(|(k, v)| (k, v)));
            c
        };
        c.args(args);
        c
    }

    /// What `program` printed; it must succeed.
    fn run(&self, program: &str, args: &[&str]) -> String {
        let out = self.command(program, args).output().unwrap();
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "{program} {args:?}: {text}");
        text
    }

    /// One SQL statement's result (unaligned), or why it failed.
    fn psql(&self, port: u16, db: &str, sql: &str) -> Result<String, String> {
        let port = port.to_string();
        let out = self
            .command(
                "psql",
                &["-h", "127.0.0.1", "-p", &port, "-U", &self.user, "-d", db, "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
            )
            .output()
            .unwrap();
        match out.status.success() {
            true => Ok(String::from_utf8_lossy(&out.stdout).trim().to_string()),
            false => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        }
    }
}

/// One `pg_autoctl create … --run` (the monitor, or a keeper with its Postgres) in a process group
/// of its own, its output in NAME.log. Dropped: the group is sent SIGQUIT (pg_autoctl stops its
/// Postgres at once, an immediate shutdown); a group still there after 15 s is killed.
struct Keeper {
    port: u16,
    pgdata: PathBuf,
    child: Child,
}

impl Keeper {
    fn start(pg: &PgTools, dir: &Path, name: &str, args: &[&str]) -> Keeper {
        let port = free_port();
        let pgdata = dir.join(name);
        let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
        let (port_s, data_s) = (port.to_string(), pgdata.display().to_string());
        let pg_ctl = pg.bin.join("pg_ctl").display().to_string();
        let common = ["--pgdata", &data_s, "--pgport", &port_s, "--pgctl", &pg_ctl, "--hostname", "127.0.0.1"];
        let child = pg
            .command(
                "pg_autoctl",
                &[&args[..2], &common[..], &["--listen", "127.0.0.1", "--auth", "trust", "--no-ssl"], &args[2..], &["--run"]].concat(),
            )
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        Keeper { port, pgdata, child }
    }

    fn group(&self) -> String {
        format!("-{}", self.child.id())
    }

    /// Asks pg_autoctl to stop its Postgres at once (an immediate shutdown), if it still runs.
    fn quit(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            signal(&self.group(), "QUIT");
        }
    }

    /// The node's machine is lost: pg_autoctl and its postmaster killed at once (SIGKILL to the
    /// group, so that the keeper cannot start Postgres again), and the postmaster by its PID.
    fn kill(&mut self) -> u32 {
        let pid_file = std::fs::read_to_string(self.pgdata.join("postmaster.pid")).unwrap();
        let postmaster = pid_file.lines().next().unwrap().trim().to_string();
        signal(&self.group(), "KILL");
        signal(&postmaster, "KILL");
        let _ = self.child.wait();
        postmaster.parse().unwrap()
    }
}

impl Drop for Keeper {
    fn drop(&mut self) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        self.quit();
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(15) {
            std::thread::sleep(Duration::from_millis(50));
            // Its leader not reaped yet, the group's id cannot have been reused.
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
        }
        signal(&self.group(), "KILL");
        let _ = self.child.wait();
    }
}

/// pg_auto_failover on loopback: a monitor and two Postgres nodes, node1 the primary and node2 its
/// synchronous standby. Dropped: all asked to stop at once, the monitor first (stopped after the
/// nodes, it sometimes took 10 s), then each waited for; the directory removed last.
struct Ha {
    nodes: Vec<Keeper>,
    monitor: Keeper,
    pg: PgTools,
    dir: tempfile::TempDir,
}

impl Ha {
    fn start() -> Ha {
        let dir = tempfile::Builder::new().prefix("qm-failover-pg.").tempdir().unwrap();
        let d = dir.path();
        // pg_autoctl keeps its PID files in XDG_RUNTIME_DIR when it exists, else in /tmp.
        for sub in ["sock", "xdg/run"] {
            std::fs::create_dir_all(d.join(sub)).unwrap();
        }
        let pg = PgTools::find(d);
        initdb(&pg, &d.join("monitor"));
        let monitor = Keeper::start(&pg, d, "monitor", &["create", "monitor"]);
        let mut ha = Ha { nodes: vec![], monitor, pg, dir };
        ha.wait("the monitor to run", |ha| {
            ha.pg.psql(ha.monitor.port, "pg_auto_failover", "SELECT count(*) FROM pgautofailover.node").is_ok()
        });
        // Health checks every second; a node that fails them and has not reported for 3 s has
        // failed; the primary is given 1 s to drain: promotion within seconds (the defaults take
        // about 30 s), with room for a loaded machine's slow answers before the kill.
        for (name, v) in [
            ("health_check_period", 1000),
            ("health_check_timeout", 2000),
            ("health_check_max_retries", 1),
            ("health_check_retry_delay", 500),
            ("node_considered_unhealthy_timeout", 3000),
            ("primary_demote_timeout", 1000),
            ("startup_grace_period", 1000),
        ] {
            ha.monitor_sql(&format!("ALTER SYSTEM SET pgautofailover.{name} = {v}"));
        }
        ha.monitor_sql("SELECT pg_reload_conf()");
        initdb(&ha.pg, &ha.dir.path().join("node1"));
        ha.add_node("node1", "single");
        ha.add_node("node2", "secondary");
        ha.wait("node1 primary, node2 its secondary", |ha| ha.states() == "node1 primary/primary, node2 secondary/secondary");
        // Nothing acknowledged is lost: node1 commits only once node2 has the commit too.
        assert_ne!(ha.pg.psql(ha.nodes[0].port, "qm", "SHOW synchronous_standby_names").unwrap(), "");
        assert_eq!(ha.pg.psql(ha.nodes[0].port, "qm", "SHOW synchronous_commit").unwrap(), "on");
        // Headquarters' own database (pg_autoctl keeps an extension in the one it made).
        ha.pg.psql(ha.nodes[0].port, "qm", "CREATE DATABASE hq TEMPLATE template0 ENCODING 'UTF8'").unwrap();
        ha
    }

    fn add_node(&mut self, name: &str, state: &str) {
        let monitor = format!("postgres://autoctl_node@127.0.0.1:{}/pg_auto_failover", self.monitor.port);
        let args = ["create", "postgres", "--monitor", &monitor, "--dbname", "qm", "--name", name];
        self.nodes.push(Keeper::start(&self.pg, self.dir.path(), name, &args));
        self.wait(&format!("{name} registered ({state})"), |ha| ha.states().contains(&format!("{name} {state}/")));
    }

    fn monitor_sql(&self, sql: &str) -> String {
        self.pg.psql(self.monitor.port, "pg_auto_failover", sql).unwrap_or_else(|e| panic!("{sql}: {e}{}", tails(&[self.dir.path()])))
    }

    /// Each node's state as the monitor has it, reported/assigned: `node1 primary/primary, …`.
    fn states(&self) -> String {
        let sql = "SELECT string_agg(nodename || ' ' || reportedstate || '/' || goalstate, ', ' ORDER BY nodeid) FROM pgautofailover.node";
        self.pg.psql(self.monitor.port, "pg_auto_failover", sql).unwrap_or_else(|e| e)
    }

    fn wait(&self, what: &str, mut done: impl FnMut(&Ha) -> bool) -> Duration {
        wait_until(&format!("{what} (the monitor has: {})", self.states()), &[self.dir.path()], || done(self))
    }

    /// The URL Quartermaster is given: both nodes, the one that accepts writes.
    fn url(&self) -> String {
        let hosts: Vec<String> = self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
        format!("postgres://{}@{}/hq?target_session_attrs=read-write", self.pg.user, hosts.join(","))
    }

    /// One node's URL.
    fn node_url(&self, i: usize) -> String {
        format!("postgres://{}@127.0.0.1:{}/hq", self.pg.user, self.nodes[i].port)
    }
}

impl Drop for Ha {
    fn drop(&mut self) {
        self.monitor.quit();
        self.nodes.iter_mut().for_each(Keeper::quit);
    }
}

/// A new cluster in `pgdata` (UTF8, trust on loopback) whose sockets are in the directory's `sock`
/// and whose shared buffers are small (pg_autoctl would size them for a whole machine); a base
/// backup of it (the standby) does not wait for a spread checkpoint.
fn initdb(pg: &PgTools, pgdata: &Path) {
    let data = pgdata.display().to_string();
    pg.run("initdb", &["-D", &data, "-A", "trust", "-U", &pg.user, "-E", "UTF8"]);
    let sock = pgdata.parent().unwrap().join("sock");
    let conf = format!("unix_socket_directories = '{}'\nshared_buffers = '32MB'\ncheckpoint_completion_target = 0\n", sock.display());
    let mut f = std::fs::OpenOptions::new().append(true).open(pgdata.join("postgresql.auto.conf")).unwrap();
    std::io::Write::write_all(&mut f, conf.as_bytes()).unwrap();
}

/// The department's staff at work: `qm load` (issues and returns of the demo's rifles, pipelined)
/// run again and again until stopped. What it acknowledged, and how each run that failed said so.
/// Each run holds `turn`: another writer at the department takes it (two appending at once: one
/// is refused).
struct Writer {
    stop: Arc<AtomicBool>,
    turn: Arc<Mutex<()>>,
    thread: Option<std::thread::JoinHandle<(Vec<String>, Vec<String>)>>,
}

impl Writer {
    fn start(d: &Path, db: &str, key: &Path) -> Writer {
        let (d, db, key) = (d.to_path_buf(), db.to_string(), key.to_path_buf());
        let (stop, turn) = (Arc::new(AtomicBool::new(false)), Arc::new(Mutex::new(())));
        let (stopped, mine) = (stop.clone(), turn.clone());
        let thread = std::thread::spawn(move || {
            let (mut acked, mut failed) = (vec![], vec![]);
            let mut run = 0;
            while !stopped.load(Ordering::SeqCst) {
                run += 1;
                let held = mine.lock().unwrap();
                let out = qm(&d, &db, &key, &["--actor", "0417", "load", "--batch", "20", "--batches", "5", "--run", &format!("w{run}")]);
                drop(held);
                let text = String::from_utf8_lossy(&out.stdout);
                acked.extend(text.lines().filter(|l| !l.is_empty()).map(String::from));
                if !out.status.success() {
                    failed.push(String::from_utf8_lossy(&out.stderr).into_owned());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            (acked, failed)
        });
        Writer { stop, turn, thread: Some(thread) }
    }

    /// Holds the writer between two runs.
    fn pause(&self) -> std::sync::MutexGuard<'_, ()> {
        self.turn.lock().unwrap()
    }

    /// Stops after the run under way; every key acknowledged. Every run succeeded.
    fn stop(mut self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        let (acked, failed) = self.thread.take().unwrap().join().unwrap();
        assert!(failed.is_empty(), "{} runs of qm load failed at the department: {:?}", failed.len(), failed);
        acked
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Headquarters on the replicated cluster and the department (the demo site, on SQLite), each
/// with its server; the department's syncs every second with headquarters' witness and mirror.
struct Sites {
    d: PathBuf,
    hq: String,
    hq_key: PathBuf,
    dep: String,
    dep_key: PathBuf,
    origin: String,
    children: String,
    keys: (String, String),
    hq_server: Server,
    dep_server: Server,
}

impl Sites {
    fn start(ha: &Ha, d: &Path) -> Sites {
        let (hq, hq_key) = (ha.url(), d.join("hq.key"));
        init(d, &hq, &hq_key, "hq.example", "HQ");
        let (dep, dep_key) = (d.join("d11.db").display().to_string(), d.join("d11.db.key"));
        ok(d, &dep, &dep_key, &["demo", "--out", &dep]);
        let vkey = verifier_key(d, &dep, &dep_key);
        let origin = vkey.split('+').next().unwrap().to_string();
        let children = d.join("children.toml");
        std::fs::write(&children, format!("[children.\"{origin}\"]\nkey = \"{vkey}\"\nunit = \"HQ\"\n")).unwrap();
        let children = children.display().to_string();
        let (wk, mk) = parent_keys(d, &hq, &hq_key);
        let hq_server = serve(d, &hq, &hq_key, "127.0.0.1:0", &[("QM_CHILDREN", &children)], "hq");
        let parent = format!("{}/witness", hq_server.1);
        let env = [("QM_PARENT", parent.as_str()), ("QM_PARENT_KEY", &wk), ("QM_PARENT_MIRROR_KEY", &mk), ("QM_SYNC_EVERY_S", "1")];
        let dep_server = serve(d, &dep, &dep_key, "127.0.0.1:0", &env, "d11");
        Sites { d: d.to_path_buf(), hq, hq_key, dep, dep_key, origin, children, keys: (wk, mk), hq_server, dep_server }
    }

    fn hq(&self, args: &[&str]) -> Value {
        json(&self.d, &self.hq, &self.hq_key, args)
    }

    fn dep(&self, args: &[&str]) -> Value {
        json(&self.d, &self.dep, &self.dep_key, args)
    }

    /// Headquarters' witness and mirror sizes of the department (`qm witness status`), or nothing
    /// while headquarters' database cannot be reached.
    fn held(&self) -> Option<(u64, u64)> {
        let out = qm(&self.d, &self.hq, &self.hq_key, &["witness", "status", "--json"]);
        let rows: Value = serde_json::from_slice(&out.stdout).ok()?;
        let row = rows.as_array()?.iter().find(|r| r["origin"] == self.origin.as_str())?;
        Some((row["size"].as_u64()?, row["mirrored_size"].as_u64()?))
    }

    /// The department's ledger size.
    fn size(&self) -> u64 {
        self.dep(&["sync", "status"])["size"].as_u64().unwrap()
    }
}

/// Waits until headquarters is in the middle of an upload of the department's entries: it stores
/// entries past the checkpoint its mirror last cosigned, and has not cosigned them yet. Read on the
/// primary directly, every few milliseconds. What its mirror held then: (cosigned size, entries).
fn wait_mid_upload(ha: &Ha, s: &Sites) -> (u64, u64) {
    let store = qm_backends::open_store(&ha.node_url(0), false).unwrap();
    let start = Instant::now();
    while start.elapsed() < DEADLINE {
        let cosigned = store.mirrored(&s.origin).unwrap().map_or(0, |m| m.size);
        let stored = store.mirror_next(&s.origin).unwrap();
        if stored > cosigned {
            return (cosigned, stored);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("headquarters was never seen in the middle of an upload{}", tails(&[&s.d, ha.dir.path()]));
}

#[test]
fn headquarters_mirror_survives_a_postgresql_failover_in_the_middle_of_a_sync() {
    let started = Instant::now();
    let mut ha = Ha::start();
    let set_up = started.elapsed();
    let dir = tempfile::tempdir().unwrap();
    let mut s = Sites::start(&ha, dir.path());
    let logs = [dir.path(), ha.dir.path()];
    let demo = s.size();
    wait_until("the demo ledger mirrored at headquarters", &logs, || s.held() == Some((demo, demo)));
    // The department works on; headquarters' primary is lost in the middle of an upload.
    let writer = Writer::start(&s.d, &s.dep, &s.dep_key);
    wait_until("the department writing", &logs, || s.size() > demo);
    assert_eq!(ha.states(), "node1 primary/primary, node2 secondary/secondary", "no failover before the kill");
    let (cosigned, stored) = wait_mid_upload(&ha, &s);
    let killed = Instant::now();
    let postmaster = ha.nodes[0].kill();
    let primary = format!("127.0.0.1:{}", ha.nodes[0].port);
    wait_until(&format!("node1's postmaster {postmaster} gone"), &logs, || std::net::TcpStream::connect(&primary).is_err());
    // Meanwhile a delivery of 12,000 rifles is recorded at the department: the upload that resumes
    // carries requests of about 4 MiB (8,192 entries of 238 bytes and more each, at least 2 MiB).
    let delivery = delivery(&s.d, 12_000);
    let paused = writer.pause();
    let imported = ok(&s.d, &s.dep, &s.dep_key, &["--actor", "0417", "import", "serials", &delivery]);
    drop(paused);
    assert!(imported.contains("imported 12000 rows"), "{imported}");
    // pg_auto_failover promotes node2; the same headquarters process goes on with it.
    ha.wait("node2 promoted, accepting writes", |ha| {
        ha.pg.psql(ha.nodes[1].port, "qm", "SELECT pg_is_in_recovery()::text || ' ' || current_setting('transaction_read_only')").as_deref()
            == Ok("false off")
    });
    let promoted = killed.elapsed();
    let resumed =
        wait_until("headquarters' mirror past what it held at the kill", &logs, || s.held().is_some_and(|(_, mirrored)| mirrored > stored));
    let acked = writer.stop();
    let n = s.size();
    let caught_up = wait_until("the department's whole ledger witnessed and mirrored", &logs, || s.held() == Some((n, n)));
    eprintln!(
        "set-up {set_up:?}; killed node1 (postmaster {postmaster}) when headquarters had cosigned {cosigned} entries and stored {stored}; \
         node2 accepted writes {promoted:?} after the kill, the mirror moved on {resumed:?} after that; {} movements acknowledged, \
         {n} entries, all mirrored {caught_up:?} after the writes stopped; {:?} in all",
        acked.len(),
        started.elapsed()
    );
    assert!(ha.states().contains("node2 wait_primary/wait_primary") || ha.states().contains("node2 primary/"), "{}", ha.states());
    check_interrupted_and_resumed(&mut s);
    check_mirror(&ha, &s, n, &acked);
    check_cosigned(&s, n);
}

/// A supplier's delivery of `n` rifles to the department's rack B, a thousand to a document (so a
/// receipt of a thousand serials, about 59 KB, and an entry for each serial), as a CSV file.
fn delivery(d: &Path, n: usize) -> String {
    let mut csv = String::from("serial,item_type,lot,location,supplier,document\n");
    for i in 0..n {
        csv.push_str(&format!("X-{i:06},RIFLE-G36,,D11-RACK-B,Heckler,DOC-{}\n", i / 1000));
    }
    let file = d.join("delivery.csv");
    std::fs::write(&file, csv).unwrap();
    file.display().to_string()
}

/// The sync failed while the primary was gone and went on afterwards: the department's server said
/// so, and both servers are the processes started before the kill.
fn check_interrupted_and_resumed(s: &mut Sites) {
    let dep_log = std::fs::read_to_string(s.d.join("d11.log")).unwrap();
    assert!(dep_log.contains("sync with the parent failed"), "the department's sync never failed: {dep_log}");
    assert!(matches!(s.hq_server.0.try_wait(), Ok(None)), "headquarters' server ended");
    assert!(matches!(s.dep_server.0.try_wait(), Ok(None)), "the department's server ended");
}

/// Headquarters' mirror holds exactly the department's ledger: entries 0 to n - 1, each the
/// department's own bytes with its leaf hash, none missing and none twice. So every movement the
/// department acknowledged during the failover, each in its ledger once, is mirrored once.
fn check_mirror(ha: &Ha, s: &Sites, n: u64, acked: &[String]) {
    let hq = qm_backends::open_store(&ha.url(), false).unwrap();
    let dep = qm_backends::open_store(&s.dep, false).unwrap();
    assert_eq!(dep.entry_count().unwrap(), n);
    let own: Vec<Vec<u8>> = dep.read_entries(0, n as usize).unwrap().into_iter().map(|e| e.bytes).collect();
    assert_eq!(hq.mirror_next(&s.origin).unwrap(), n, "the mirror's next entry");
    let mirrored = hq.mirror_entries(&s.origin, 0, n as usize + 1).unwrap();
    assert_eq!(mirrored.len() as u64, n, "entries mirrored");
    if let Some(i) = (0..own.len()).find(|&i| mirrored[i] != own[i]) {
        panic!("mirrored entry {i} is not the department's entry {i}");
    }
    // Contiguous (a missing seq is an error here), each leaf the hash of its entry.
    let leaves = hq.mirror_leaves(&s.origin, 0, n).unwrap();
    assert!(leaves.len() as u64 == n && leaves.iter().zip(&own).all(|(l, b)| *l == qm_ledger::leaf_hash(b)));
    let distinct: std::collections::HashSet<&String> = acked.iter().collect();
    assert_eq!(distinct.len(), acked.len(), "a movement acknowledged twice");
    assert!(acked.len() >= 50, "the department acknowledged too little to mean anything: {}", acked.len());
    let kept = common::stored_keys(&s.dep);
    let lost: Vec<&String> = acked.iter().filter(|k| !kept.contains(*k)).collect();
    assert!(lost.is_empty(), "{} acknowledged movements are not in the department's ledger: {lost:?}", lost.len());
}

/// The department's checkpoint of size n is cosigned by headquarters' witness and its mirror (both
/// cosignatures verified in a proof of the last entry) and its root is the one the witness holds;
/// the department has nothing waiting; headquarters saw no fork, replays the mirror into the
/// child's books, and its own ledger verifies.
fn check_cosigned(s: &Sites, n: u64) {
    let status = s.dep(&["sync", "status"]);
    let got = (status["size"].as_u64(), status["cosigned_size"].as_u64(), status["waiting"].as_u64());
    assert_eq!(got, (Some(n), Some(n), Some(0)), "{status}");
    let text = ok(&s.d, &s.dep, &s.dep_key, &["prove", &(n - 1).to_string(), "--tlog-proof"]);
    let proof = qm_ledger::proof::TlogProof::parse(&text).unwrap();
    let log = qm_ledger::CheckpointVerifier::new(&verifier_key(&s.d, &s.dep, &s.dep_key)).unwrap();
    let cp = proof.verify(proof.extra.as_ref().unwrap(), &log, &[&s.keys.0, &s.keys.1]).unwrap();
    assert_eq!((proof.index, cp.size), (n - 1, n));
    let witnessed = s.hq(&["witness", "status"]);
    assert_eq!(witnessed.as_array().unwrap().len(), 1, "{witnessed}");
    assert_eq!(witnessed[0]["root"].as_str(), Some(qm_app::hex(&cp.root).as_str()), "{witnessed}");
    assert_eq!(s.hq(&["witness", "evidence"]), serde_json::json!([]));
    assert_eq!(s.hq(&["incidents", "--kind", "ledger_fork"]), serde_json::json!([]));
    let books = s.hq(&["--children", &s.children, "witness", "books", &s.origin]);
    assert_eq!(books["row"]["mirrored"].as_u64(), Some(n), "{books}");
    let v = ok(&s.d, &s.hq, &s.hq_key, &["verify"]);
    assert!(v.contains("verify: OK"), "{v}");
}
