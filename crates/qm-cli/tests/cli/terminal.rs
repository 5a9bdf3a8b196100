//! What `qm` writes where nobody reads colours — a pipe or a file, as in these tests, whatever TERM
//! says, and with NO_COLOR set —: no ANSI escape codes, from clap's help and errors, the tables, the
//! progress bars or `qm serve`'s log. And `qm serve --listen`, a flag people try, names `--addr`.

use super::Env;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a colour terminal's environment says; the output still goes to the test's pipes.
const COLOUR_TERMINAL: &[(&str, &str)] = &[("TERM", "xterm-256color"), ("COLORTERM", "truecolor")];

fn assert_plain(what: &str, text: &str) {
    assert!(!text.contains('\u{1b}'), "{what} wrote an escape code to a pipe: {text:?}");
}

#[test]
fn serve_listen_is_refused_with_a_pointer_to_addr() {
    let e = Env::new();
    for args in [&["serve", "--listen", "0.0.0.0:8080"][..], &["serve", "--listen=0.0.0.0:8080"], &["serve", "--bind", "0.0.0.0:8080"]] {
        let r = e.qm_env("0001", COLOUR_TERMINAL, args);
        assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
        assert!(r.stderr.contains("--addr HOST:PORT (e.g. --addr 0.0.0.0:8080)"), "{}", r.stderr);
        assert!(r.stderr.contains("Usage: qm serve"), "{}", r.stderr);
        assert!(r.stdout.is_empty(), "{}", r.stdout);
        assert_plain("qm serve --listen", &r.stderr);
    }
    // Nothing was served, nothing created.
    assert!(!e.db().exists());
}

#[test]
fn nothing_written_to_a_pipe_holds_an_escape_code() {
    let e = Env::new();
    e.setup();
    e.ok("0417", &["issue", "--to", "1001", "R-1042"]);
    for (round, no_color) in [(1, None), (2, Some("1"))] {
        let mut env = COLOUR_TERMINAL.to_vec();
        env.extend(no_color.map(|v| ("NO_COLOR", v)));
        let backup = format!("site-{round}.qmbackup");
        let commands: [(&str, &[&str], i32); 10] = [
            ("0001", &["--help"], 0),
            ("0001", &["issue", "--help"], 0),
            ("0001", &["stokc"], 2),                           // clap's error, with a tip
            ("0001", &["issue", "--to"], 2),                   // a value missing
            ("0417", &["issue", "--to", "0501", "R-1042"], 3), // refused: the error on stderr
            ("0001", &["stock"], 0),                           // tables
            ("0001", &["log"], 0),
            ("0001", &["custody", "1001"], 0),
            ("0001", &["backup", &backup], 0), // a progress bar
            ("0001", &["verify"], 0),
        ];
        for (actor, args, code) in commands {
            let r = e.qm_env(actor, &env, args);
            assert_eq!(r.code, code, "qm {args:?}: {}{}", r.stdout, r.stderr);
            assert!(!(r.stdout.trim().is_empty() && r.stderr.trim().is_empty()), "qm {args:?} said nothing");
            assert_plain(&format!("qm {args:?} (NO_COLOR={no_color:?}) on stdout"), &r.stdout);
            assert_plain(&format!("qm {args:?} (NO_COLOR={no_color:?}) on stderr"), &r.stderr);
        }
    }
}

/// `qm serve` logs with tracing; to a pipe (its log goes to stdout) the lines carry no colours.
#[test]
fn serve_logs_to_a_pipe_without_escape_codes() {
    let e = Env::new();
    e.ok("0001", &["init", "--site", "test.site", "--admin-pin", "1234"]);
    // A parent that never answers (a port just freed), so that the server logs a warning at once.
    let key = e.json("0001", &["witness", "key"])["witness_key"].as_str().unwrap().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let stderr = e.path("serve.stderr");
    let mut child = Command::new(env!("CARGO_BIN_EXE_qm"))
        .current_dir(e.dir.path())
        .env_clear()
        .envs(COLOUR_TERMINAL.iter().copied())
        .env("QM_DB", e.db())
        .env("QM_LOG", "info")
        .env("QM_PARENT", format!("http://127.0.0.1:{port}/witness"))
        .env("QM_PARENT_KEY", &key)
        .env("QM_SYNC_EVERY_S", "1")
        .args(["serve", "--addr", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&stderr).unwrap())
        .spawn()
        .unwrap();
    let (_, lines) = crate::common::served_url(&mut child, &stderr);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let mut log = String::new();
    let until = Instant::now() + Duration::from_secs(60);
    while !log.contains("sync with the parent failed") && Instant::now() < until {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            log.push_str(&l);
            log.push('\n');
        }
    }
    // Only the server this test started, by its handle.
    child.kill().unwrap();
    child.wait().unwrap();
    let err = std::fs::read_to_string(&stderr).unwrap_or_default();
    assert!(log.contains("WARN") && log.contains("sync with the parent failed"), "the server logged no warning: {log}{err}");
    assert_plain("qm serve's log", &log);
    assert_plain("qm serve's stderr", &err);
}
