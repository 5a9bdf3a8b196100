//! `qm serve` as a user runs it — the binary as a process, the API over HTTP on loopback — under
//! SIGKILL at random moments, and with a PostgreSQL that goes away in the middle of a request
//! (issue 5), and its notifications through a real SMTP server and webhook receiver across a kill
//! (issue 14). Every test is bounded in count and time and ends only the processes it started.

mod common;

use serde_json::{json, Value};
use std::collections::HashSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PASSWORD: &str = "armory counter 7";

/// A demo site (`qm demo`) on SQLite or on a throwaway PostgreSQL database, with a web password for
/// the armorer 0417.
struct Site {
    dir: tempfile::TempDir,
    db: String,
    _scratch: Option<qm_store_postgres::scratch::ScratchDatabase>,
}

impl Site {
    fn new(postgres: bool) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let (db, scratch) = if postgres {
            let admin = std::env::var(qm_store_postgres::scratch::TEST_URL_VAR).expect(qm_store_postgres::scratch::HOW_TO_RUN);
            let s = qm_store_postgres::scratch::ScratchDatabase::create(&admin).unwrap();
            (s.url().to_string(), Some(s))
        } else {
            (dir.path().join("site.db").to_str().unwrap().to_string(), None)
        };
        let site = Site { dir, db, _scratch: scratch };
        let db = site.db.clone();
        site.qm(&db, &["demo", "--out", &db]);
        site.qm(&db, &["person", "password", "0417"]);
        site
    }
    fn key(&self) -> PathBuf {
        self.dir.path().join("site.key")
    }
    fn command(&self, db: &str) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_qm"));
        c.current_dir(self.dir.path())
            .env_clear()
            .env("QM_DB", db)
            .env("QM_KEY", self.key())
            .env("QM_ACTOR", "0001")
            .env("QM_PIN", "1234")
            .env("QM_NEW_PASSWORD", PASSWORD);
        c
    }
    /// Runs qm against `db` (the site's database, or the same one through a proxy); must succeed.
    fn qm(&self, db: &str, args: &[&str]) -> String {
        let out = self.command(db).args(args).output().unwrap();
        let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "qm {args:?}: {stdout}{stderr}");
        stdout.into_owned()
    }
    /// Idempotency keys of every stored entry, read straight from the store.
    fn stored_keys(&self) -> HashSet<String> {
        common::stored_keys(&self.db)
    }
    fn count_key(&self, key: &str) -> usize {
        let store = qm_backends::open_store(&self.db, false).unwrap();
        let mut n = 0;
        store
            .scan_entries(0, &mut |_, idem, _, _| {
                n += usize::from(idem == key);
                true
            })
            .unwrap();
        n
    }
    /// Waits (bounded by count) until the latest checkpoint and the stored rows cover the whole
    /// ledger: the server stores both through its writer thread after a batch is durable, so a test
    /// that cuts "the next COMMIT" must let those writes go first.
    fn wait_for_checkpoint_of_everything(&self) {
        for _ in 0..400 {
            let store = qm_backends::open_store(&self.db, false).unwrap();
            let size = store.entry_count().unwrap();
            let mut rows_cover = 0;
            store
                .for_each_row(&mut |kind, key, value| {
                    if kind == "meta" && key == "next_seq" {
                        rows_cover = value.parse().unwrap_or(0);
                    }
                    Ok(())
                })
                .unwrap();
            // The writer also writes held-back projection rows on their own once idle, and the
            // notifications task moves the outbox's cursor (every notify_every_ms): neither commit
            // may be the one the proxy cuts.
            let outbox = store.outbox_cursor().unwrap();
            if store.checkpoints().unwrap().last().is_some_and(|c| c.size == size) && rows_cover == size && outbox == Some(size) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(25));
        }
        panic!("the server never stored a checkpoint of the whole ledger");
    }
    fn verify(&self) {
        let v = self.qm(&self.db, &["verify"]);
        assert!(v.contains("verify: OK"), "{v}");
    }
}

/// A running `qm serve` on a free loopback port; its stderr goes to a file that is checked for panics.
struct Server {
    child: Child,
    url: String,
    stderr: PathBuf,
    /// What it printed after its address (its log goes to stdout).
    stdout: Arc<Mutex<String>>,
}

impl Server {
    fn start(site: &Site, db: &str, name: &str) -> Server {
        Server::start_with(site, db, name, &[])
    }
    fn start_with(site: &Site, db: &str, name: &str, env: &[(&str, &str)]) -> Server {
        let stderr = site.dir.path().join(format!("{name}.stderr"));
        let mut child = site
            .command(db)
            .envs(env.iter().copied())
            .args(["serve", "--addr", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .unwrap();
        let (url, lines) = common::served_url(&mut child, &stderr);
        // Keep reading stdout so the server never blocks on a full pipe.
        let stdout: Arc<Mutex<String>> = Arc::default();
        let out = stdout.clone();
        std::thread::spawn(move || {
            for l in lines.map_while(Result::ok) {
                let mut o = out.lock().unwrap();
                o.push_str(&l);
                o.push('\n');
            }
        });
        Server { child, url, stderr, stdout }
    }
    /// SIGKILL, to the process this test started, by its handle; returns what it printed.
    fn kill(mut self) -> String {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let err = std::fs::read_to_string(&self.stderr).unwrap_or_default();
        assert!(!err.contains("panicked"), "the server panicked: {err}");
        format!("{}{err}", self.stdout.lock().unwrap())
    }
}

/// A signed-in API client (session cookie + CSRF token), as the counter's scanner app would be.
struct Client {
    http: reqwest::blocking::Client,
    base: String,
    csrf: String,
}

impl Client {
    fn sign_in(base: &str) -> Client {
        let http = reqwest::blocking::Client::builder().cookie_store(true).timeout(Duration::from_secs(30)).build().unwrap();
        let r = http.post(format!("{base}/api/session")).json(&json!({"badge": "0417", "password": PASSWORD})).send().unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let v: Value = r.json().unwrap();
        Client { http, base: base.to_string(), csrf: v["csrf"].as_str().unwrap().to_string() }
    }
    /// A write; `Err` when the server is gone (connection refused or reset).
    fn post(&self, path: &str, body: Value, key: &str) -> Result<(u16, Value), reqwest::Error> {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("X-CSRF-Token", &self.csrf)
            .header("Idempotency-Key", key)
            .json(&body)
            .send()?;
        let status = r.status().as_u16();
        Ok((status, r.json().unwrap_or(Value::Null)))
    }
    fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(format!("{}{path}", self.base)).send().unwrap();
        let status = r.status().as_u16();
        (status, r.json().unwrap_or(Value::Null))
    }
}

fn issue(serial: &str, to: &str) -> (&'static str, Value) {
    ("/api/issue", json!({"to": to, "items": [serial]}))
}
fn return_(serial: &str, from: &str) -> (&'static str, Value) {
    ("/api/return", json!({"from": from, "to": "D11-RACK-A", "items": [serial]}))
}

/// One counter client: issues and returns its own rifles to one officer until the server is killed;
/// returns the idempotency keys of the writes the server acknowledged (HTTP 200).
fn counter(base: String, run: String, officer: &'static str, serials: Vec<&'static str>) -> Vec<String> {
    let c = Client::sign_in(&base);
    let mut issued = vec![false; serials.len()];
    let mut refusals = vec![0u32; serials.len()];
    let mut acked = vec![];
    for n in 0.. {
        let i = n % serials.len();
        if refusals[i] >= 2 {
            // Neither at the rack nor with this officer: not this client's rifle to move.
            if refusals.iter().all(|r| *r >= 2) {
                break;
            }
            continue;
        }
        let key = format!("{run}-{officer}-{n}");
        let (path, body) = if issued[i] { return_(serials[i], officer) } else { issue(serials[i], officer) };
        match c.post(path, body, &key) {
            Err(_) => break, // the server was killed
            Ok((200, _)) => {
                acked.push(key);
                issued[i] = !issued[i];
                refusals[i] = 0;
            }
            // The rifle is elsewhere than this client thought: an earlier write that was never
            // acknowledged did land (or it was never here). Try the other way.
            Ok((409, _)) => {
                issued[i] = !issued[i];
                refusals[i] += 1;
            }
            // Lost the race to another writer (the killed server's last transaction can still be
            // committing while this one starts): retryable, and nothing was recorded. Try again.
            Ok((503, v)) if v["error"]["code"] == "store.conflict" => {}
            Ok((status, v)) => panic!("{path} answered {status}: {v}"),
        }
    }
    acked
}

fn crash_story(postgres: bool) {
    let site = Site::new(postgres);
    let mut acked: Vec<String> = vec![];
    // A small deterministic generator for the kill moments: 20+ kills, bounded in time.
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    let started = Instant::now();
    let mut kills = 0;
    while kills < 21 && started.elapsed() < Duration::from_secs(150) {
        let server = Server::start(&site, &site.db, &format!("serve-{kills}"));
        let clients: Vec<_> =
            [("1001", ["R-1041", "R-1042", "R-1043", "R-1044", "R-1045"]), ("1002", ["R-1046", "R-1047", "R-1048", "R-1049", "R-1050"])]
                .into_iter()
                .map(|(officer, serials)| {
                    let (base, run) = (server.url.clone(), format!("k{kills}"));
                    std::thread::spawn(move || counter(base, run, officer, serials.to_vec()))
                })
                .collect();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        std::thread::sleep(Duration::from_millis(300 + x % 500));
        server.kill();
        let mut n = 0;
        for c in clients {
            let keys = c.join().unwrap();
            n += keys.len();
            acked.extend(keys);
        }
        eprintln!("kill {kills}: {n} writes acknowledged before the kill");
        kills += 1;
    }
    assert!(kills >= 20, "only {kills} kills in the time bound");
    assert!(acked.len() > 100, "the clients got too few acknowledgements to mean anything: {}", acked.len());
    let stored = site.stored_keys();
    let lost: Vec<&String> = acked.iter().filter(|k| !stored.contains(*k)).collect();
    assert!(lost.is_empty(), "{} acknowledged writes are not in the ledger, e.g. {:?}", lost.len(), &lost[..lost.len().min(5)]);
    // Every entry re-hashes, every checkpoint holds, the stored books equal a replay of the ledger.
    site.verify();
    // And the server comes back for work.
    let server = Server::start(&site, &site.db, "after");
    let c = Client::sign_in(&server.url);
    let (status, v) = c.get("/api/stock?location=D11-RACK-A");
    assert_eq!(status, 200, "{v}");
    server.kill();
}

#[test]
fn acknowledged_writes_survive_sigkill_of_the_server_on_sqlite() {
    crash_story(false);
}

#[test]
fn acknowledged_writes_survive_sigkill_of_the_server_on_postgresql() {
    crash_story(true);
}

// ---- PostgreSQL goes away -----------------------------------------------------------------------

const PASS: u8 = 0;
/// Refuses new connections (accepts and closes them at once) and holds none open.
const DOWN: u8 = 1;
/// Forwards the next client message that contains COMMIT, then cuts every connection: the
/// transaction may or may not have committed, and the client cannot tell.
const CUT_AFTER_COMMIT: u8 = 2;
/// Cuts every connection at the next client message, without forwarding it.
const CUT_AT_NEXT: u8 = 3;

/// A TCP proxy on loopback between `qm serve` and PostgreSQL that the test can cut.
struct Proxy {
    addr: SocketAddr,
    mode: Arc<AtomicU8>,
}

impl Proxy {
    fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mode = Arc::new(AtomicU8::new(PASS));
        let live: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let m = mode.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { continue };
                if m.load(Ordering::SeqCst) == DOWN {
                    continue; // dropped: closed at once
                }
                let Ok(server) = TcpStream::connect(upstream) else { continue };
                live.lock().unwrap().extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                let (c2, s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (m1, l1) = (m.clone(), live.clone());
                std::thread::spawn(move || pump(client, server, Some((m1, l1))));
                std::thread::spawn(move || pump(s2, c2, None));
            }
        });
        Proxy { addr, mode }
    }
    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
    fn mode(&self) -> u8 {
        self.mode.load(Ordering::SeqCst)
    }
}

type Watch = (Arc<AtomicU8>, Arc<Mutex<Vec<TcpStream>>>);

fn pump(mut from: TcpStream, mut to: TcpStream, watch: Option<Watch>) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some((mode, live)) = &watch {
            let cut = |mode: &AtomicU8| {
                mode.store(DOWN, Ordering::SeqCst);
                for s in live.lock().unwrap().drain(..) {
                    let _ = s.shutdown(Shutdown::Both);
                }
            };
            match mode.load(Ordering::SeqCst) {
                CUT_AT_NEXT => {
                    cut(mode);
                    break;
                }
                CUT_AFTER_COMMIT if buf[..n].windows(6).any(|w| w == b"COMMIT") => {
                    let _ = to.write_all(&buf[..n]);
                    cut(mode);
                    break;
                }
                _ => {}
            }
        }
        if to.write_all(&buf[..n]).is_err() {
            break;
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// A URL as the test cluster's (`postgres://[user@]127.0.0.1:PORT/db`) in its parts: scheme,
/// `user@` (or nothing), the address, and the path.
fn url_parts(url: &str) -> (&str, String, SocketAddr, &str) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let (auth, tail) = rest.split_once('@').map(|(a, t)| (format!("{a}@"), t)).unwrap_or((String::new(), rest));
    let (host, path) = tail.split_at(tail.find('/').unwrap());
    let addr: SocketAddr = if host.contains(':') { host.parse().unwrap() } else { format!("{host}:5432").parse().unwrap() };
    (scheme, auth, addr, path)
}

/// The same URL through the proxy.
fn through(url: &str, proxy: SocketAddr) -> String {
    let (scheme, auth, _, path) = url_parts(url);
    format!("{scheme}://{auth}{proxy}{path}")
}

fn assert_unavailable(status: u16, v: &Value) {
    assert_eq!(status, 503, "{v}");
    assert_eq!(v["error"]["code"], "store.unavailable", "{v}");
    let m = v["error"]["message"].as_str().unwrap();
    assert!(m.starts_with("the database is unavailable; nothing was recorded by this request (request "), "{v}");
    // What the database driver said stays in the server's log.
    assert!(!m.contains("127.0.0.1") && !m.contains("connection"), "{v}");
}

#[test]
fn postgresql_going_away_mid_request_gets_a_clear_error_and_loses_nothing() {
    let site = Site::new(true);
    let proxy = Proxy::start(url_parts(&site.db).2);
    let via_proxy = through(&site.db, proxy.addr);
    let server = Server::start(&site, &via_proxy, "serve");
    let c = Client::sign_in(&server.url);
    assert_eq!(c.post("/api/issue", json!({"to": "1001", "items": ["R-1044"]}), "pg-1").unwrap().0, 200);

    // 1. The connection drops right after COMMIT was sent: the outcome is unknown to the server.
    site.wait_for_checkpoint_of_everything();
    proxy.set(CUT_AFTER_COMMIT);
    let (status, v) = c.post("/api/return", json!({"from": "1001", "to": "D11-RACK-A", "items": ["R-1044"]}), "pg-2").unwrap();
    assert_eq!(proxy.mode(), DOWN, "the proxy never saw the commit");
    assert_unavailable(status, &v);
    assert!(v["error"]["message"].as_str().unwrap().contains("retry with the same idempotency key"), "{v}");
    // While the database is away, neither reads of the books nor writes are answered from memory
    // that may hold a movement never recorded.
    let (status, v) = c.get("/api/stock?location=D11-RACK-A");
    assert_unavailable(status, &v);
    let (status, v) = c.post("/api/issue", json!({"to": "1002", "items": ["R-1045"]}), "pg-3").unwrap();
    assert_unavailable(status, &v);
    // The database comes back; the retry with the same key returns one result and records one return.
    proxy.set(PASS);
    let (status, v) = c.post("/api/return", json!({"from": "1001", "to": "D11-RACK-A", "items": ["R-1044"]}), "pg-2").unwrap();
    assert_eq!(status, 200, "{v}");
    // `replayed` tells whether the cut commit had landed (the usual case) or not; both are right.
    eprintln!("retry after the cut commit: replayed = {}", v["replayed"]);
    assert_eq!(site.count_key("pg-2"), 1);
    let (status, v) = c.get("/api/stock?location=D11-RACK-A");
    assert_eq!(status, 200, "{v}");

    // 2. The connection drops before the database hears the request: nothing is recorded, and the
    // retry records it once.
    proxy.set(CUT_AT_NEXT);
    let (status, v) = c.post("/api/issue", json!({"to": "1002", "items": ["R-1045"]}), "pg-4").unwrap();
    assert_unavailable(status, &v);
    proxy.set(PASS);
    let (status, v) = c.post("/api/issue", json!({"to": "1002", "items": ["R-1045"]}), "pg-4").unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["replayed"], false, "{v}");
    assert_eq!(site.count_key("pg-4"), 1);

    // The CLI against a database that is away: a clear error, exit 1, no panic.
    proxy.set(DOWN);
    let out = site.command(&via_proxy).args(["stock"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("the database is unavailable: connecting to"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    proxy.set(PASS);

    let log = server.kill();
    assert!(log.contains("unavailable"), "the server logged nothing about the outage: {log}");
    site.verify();
}

/// A password set with `qm person password` beside a running server ends that person's sessions on
/// it (within `PASSWORD_CHECK_EVERY`, 15 s): nobody stays signed in with a password that was changed.
#[test]
fn a_password_changed_by_the_cli_ends_the_sessions_on_a_running_server() {
    let site = Site::new(false);
    let server = Server::start(&site, &site.db, "password");
    let client = Client::sign_in(&server.url);
    assert_eq!(client.get("/api/me").0, 200);
    let out = site.command(&site.db).env("QM_NEW_PASSWORD", "a second password").args(["person", "password", "0417"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut status = 200;
    while status == 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(500));
        status = client.get("/api/me").0;
    }
    assert_eq!(status, 401, "the session outlived the password it was opened with");
    // The new password signs in; the old one no longer does.
    let http = reqwest::blocking::Client::new();
    let with = |pw: &str| {
        http.post(format!("{}/api/session", server.url)).json(&json!({"badge": "0417", "password": pw})).send().unwrap().status().as_u16()
    };
    assert_eq!(with(PASSWORD), 401);
    assert_eq!(with("a second password"), 200);
    server.kill();
}

/// A policy set with `qm policy` beside a running server is in the counter's very next preview: the
/// server re-reads its books when another process appended entries, before a read or a preview —
/// not only after its own next write, as the first users saw (issue 18).
#[test]
fn the_counters_preview_sees_a_policy_the_cli_set_beside_a_running_server() {
    let site = Site::new(false);
    let server = Server::start(&site, &site.db, "preview");
    let client = Client::sign_in(&server.url);
    let preview = || {
        let (s, v) = client.post("/api/preview", json!({"mode": "issue", "badge": "1001", "items": ["R-1041"]}), "preview").unwrap();
        assert_eq!(s, 200, "{v}");
        v
    };
    let before = preview();
    assert!(before["ok"] == true && before["needs_witness"] == false, "{before}");
    site.qm(&site.db, &["policy", "D-11", "--two-person-all-movements"]);
    let after = preview();
    assert!(after["ok"] == false && after["needs_witness"] == true, "the CLI's policy is in force at once: {after}");
    // And nothing was recorded by previewing: the rifle is still on its rack.
    let (s, v) = client.get("/api/where/R-1041");
    assert!(s == 200 && v["account"].as_str().is_some_and(|a| a.starts_with("location:")), "{v}");
    server.kill();
}

/// A free port on loopback (nobody listens on it once this returns).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A webhook receiver on loopback: answers every POST with 204 and keeps its headers and body.
type Received = Arc<Mutex<Vec<(Vec<(String, String)>, Vec<u8>)>>>;

struct Receiver {
    got: Received,
}

impl Receiver {
    fn start_at(port: u16) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
        let got: Received = Arc::default();
        let keep = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(50) {
                let Ok(stream) = stream else { continue };
                stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
                let mut r = BufReader::new(stream);
                let mut headers = vec![];
                let mut line = String::new();
                r.read_line(&mut line).unwrap();
                loop {
                    line.clear();
                    if r.read_line(&mut line).unwrap() == 0 || line.trim().is_empty() {
                        break;
                    }
                    let (k, v) = line.trim().split_once(':').unwrap();
                    headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
                }
                let len: usize = headers.iter().find(|(k, _)| k == "content-length").map_or(0, |(_, v)| v.parse().unwrap());
                let mut body = vec![0; len];
                r.read_exact(&mut body).unwrap();
                keep.lock().unwrap().push((headers, body));
                let mut stream = r.into_inner();
                stream.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
                let _ = stream.shutdown(Shutdown::Both);
            }
        });
        Receiver { got }
    }
}

/// Debian's aiosmtpd (python3-aiosmtpd), a real SMTP server, on loopback with STARTTLS required,
/// delivering into a Maildir. Ended (by its PID) when dropped, whatever the test did.
struct Smtpd(Child);

impl Drop for Smtpd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn smtp_server(dir: &std::path::Path, port: u16, cert: &std::path::Path, key: &std::path::Path) -> Smtpd {
    let maildir = dir.join("maildir");
    let child = Command::new("/usr/bin/python3")
        .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
        .arg("--tlscert")
        .arg(cert)
        .arg("--tlskey")
        .arg(key)
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(&maildir)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("smtpd.stderr")).unwrap())
        .spawn()
        .expect("python3-aiosmtpd is needed (scripts/test-all installs it)");
    let smtpd = Smtpd(child);
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return smtpd;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(smtpd);
    panic!("aiosmtpd did not start: {}", std::fs::read_to_string(dir.join("smtpd.stderr")).unwrap_or_default());
}

/// The e-mails in the Maildir, as text.
fn mails(dir: &std::path::Path) -> Vec<String> {
    let new = dir.join("maildir").join("new");
    let Ok(rd) = std::fs::read_dir(new) else { return vec![] };
    rd.filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok()).collect()
}

const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

fn outbox(site: &Site) -> Vec<Value> {
    let out = site.qm(&site.db, &["--json", "notifications", "list"]);
    serde_json::from_str(&out).unwrap()
}

/// Issue 14: a reported loss opens an incident; its notifications wait in the outbox while the
/// SMTP server and the webhook receiver are down (the failures visible to an administrator), survive
/// a SIGKILL of the server, and arrive once both are up and the server is restarted: the e-mail over
/// STARTTLS to a real SMTP server, the webhook signed in the Standard Webhooks format.
#[test]
fn notifications_wait_in_the_outbox_across_a_kill_and_arrive_by_smtp_and_webhook() {
    let site = Site::new(false);
    let dir = site.dir.path().to_path_buf();
    // A private CA and the SMTP server's certificate signed by it; qm trusts the CA (smtp.ca_file).
    let (ca, ca_key, cert, key) = (dir.join("ca.pem"), dir.join("ca-key.pem"), dir.join("smtp-cert.pem"), dir.join("smtp-key.pem"));
    let openssl = |args: &[&str]| {
        let made = Command::new("openssl").current_dir(&dir).args(args).output().unwrap();
        assert!(made.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&made.stderr));
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=Test CA",
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
    ]);
    openssl(&["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", "smtp-key.pem", "-out", "smtp.csr"]);
    std::fs::write(dir.join("leaf.ext"), "basicConstraints=CA:FALSE\nsubjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "smtp.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca-key.pem",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "leaf.ext",
        "-out",
        "smtp-cert.pem",
    ]);
    assert!(ca_key.exists() && key.exists());
    let (smtp_port, hook_port) = (free_port(), free_port());
    let file = dir.join("notifications.toml");
    std::fs::write(
        &file,
        format!(
            r#"public_url = "https://qm.example.org"
[smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "starttls"
from = "Quartermaster <qm@example.org>"
ca_file = "{ca}"
timeout_s = 5

[webhooks.soc]
url = "http://127.0.0.1:{hook_port}/hook"
secret = "{WEBHOOK_SECRET}"

[people]
"0501" = "l.chen@example.org"

[retry]
first_s = 1
max_s = 2

[[notify]]
unit = "*"
roles = ["duty_officer"]

[[notify]]
unit = "HQ"
min_severity = "medium"
email = ["ops-desk@example.org"]
webhooks = ["soc"]
"#,
            ca = ca.display()
        ),
    )
    .unwrap();
    // An inline webhook secret makes the file a secret: readable by others, it is refused.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let refused = site.command(&site.db).args(["notifications", "check"]).arg(&file).output().unwrap();
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("chmod 600"), "{refused:?}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let checked = site.qm(&site.db, &["notifications", "check", file.to_str().unwrap()]);
    assert!(checked.contains("valid") && checked.contains("0501 <l.chen@example.org>"), "{checked}");

    let env = [("QM_NOTIFICATIONS", file.to_str().unwrap()), ("QM_NOTIFY_EVERY_MS", "200")];
    let server = Server::start_with(&site, &site.db, "notify-1", &env);
    // The first round starts the outbox at the end of the ledger: the demo's past is not sent.
    std::thread::sleep(Duration::from_millis(600));
    let c = Client::sign_in(&server.url);
    let (status, v) = c
        .post("/api/report-loss", json!({"from": "D11-AMMO", "items": ["L556-2024-07:3"], "document": "shift report 12"}), "loss-1")
        .unwrap();
    assert_eq!(status, 200, "{v}");
    // Nothing listens yet: both messages fail, are kept, and say why.
    let started = Instant::now();
    let failing = loop {
        let out = outbox(&site);
        if out.len() == 3 && out.iter().all(|m| m["status"] == "failing") {
            break out;
        }
        assert!(started.elapsed() < Duration::from_secs(30), "the outbox never showed the failures: {out:?}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let targets: HashSet<&str> = failing.iter().map(|m| m["target"].as_str().unwrap()).collect();
    assert_eq!(targets, HashSet::from(["l.chen@example.org", "ops-desk@example.org", "soc"]), "{failing:?}");
    assert!(failing.iter().all(|m| !m["last_error"].as_str().unwrap_or("").is_empty()), "{failing:?}");
    let incident = failing[0]["incident"].as_str().expect("the message names its incident").to_string();
    server.kill();

    // Both come up; the server restarts with the messages still queued.
    let smtpd = smtp_server(&dir, smtp_port, &cert, &key);
    let receiver = Receiver::start_at(hook_port);
    let server = Server::start_with(&site, &site.db, "notify-2", &env);
    let started = Instant::now();
    while mails(&dir).len() < 2 || receiver.got.lock().unwrap().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(40), "not delivered: {:?}", outbox(&site));
        std::thread::sleep(Duration::from_millis(100));
    }
    // Let a wrong extra delivery show itself before counting.
    std::thread::sleep(Duration::from_millis(1000));
    let out = outbox(&site);
    assert!(out.iter().all(|m| m["status"] == "delivered"), "{out:?}");
    server.kill();
    drop(smtpd);

    let mails = mails(&dir);
    assert_eq!(mails.len(), 2, "one e-mail per address, once: {mails:?}");
    for m in &mails {
        assert!(m.contains(&format!("loss at D-11: {incident} opened")), "{m}");
        assert!(m.contains("https://qm.example.org/incidents/"), "{m}");
    }
    assert!(
        mails.iter().any(|m| m.contains("To: l.chen@example.org")) && mails.iter().any(|m| m.contains("To: ops-desk@example.org")),
        "{mails:?}"
    );
    let got = receiver.got.lock().unwrap();
    assert_eq!(got.len(), 1, "one webhook, once");
    let (headers, body) = &got[0];
    let h = |k: &str| headers.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let key = qm_app::notify::webhook_key(WEBHOOK_SECRET).unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    qm_server::notify::verify_webhook(&key, &h("webhook-id"), &h("webhook-timestamp"), &h("webhook-signature"), body, now, 300)
        .expect("the webhook is signed in the Standard Webhooks format");
    let payload: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(payload["type"], "incident.opened", "{payload}");
    assert_eq!(payload["data"]["incident"]["id"], incident.as_str(), "{payload}");
    assert_eq!(payload["data"]["incident"]["kind"], "loss", "{payload}");
    assert!(out.iter().any(|m| m["id"].as_str() == Some(h("webhook-id").as_str())), "webhook-id is the outbox id");
    site.verify();
}
