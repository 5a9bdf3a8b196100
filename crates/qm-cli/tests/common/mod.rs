//! Helpers shared by the CLI's test binaries; each uses what it needs of them.
#![allow(dead_code)]

pub mod sites;

/// Idempotency keys of every stored entry, read straight from the store (SQLite file or PostgreSQL URL).
pub fn stored_keys(db: &str) -> std::collections::HashSet<String> {
    let store = qm_backends::open_store(db, false).unwrap();
    let mut keys = std::collections::HashSet::new();
    store
        .scan_entries(0, &mut |_, idem, _, _| {
            keys.insert(idem.to_string());
            true
        })
        .unwrap();
    keys
}

/// The URL a started `qm serve` says it serves, read from its stdout, with the rest of its output
/// still to read (the caller keeps draining it so the server never blocks on a full pipe). A server
/// that ends first is killed (by its handle) and its stderr file shown.
pub fn served_url(
    child: &mut std::process::Child,
    stderr: &std::path::Path,
) -> (String, std::io::Lines<std::io::BufReader<std::process::ChildStdout>>) {
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    loop {
        match lines.next() {
            Some(Ok(l)) => {
                if let Some(rest) = l.split("is serving ").nth(1) {
                    return (rest.split_whitespace().next().unwrap().trim_end_matches('/').to_string(), lines);
                }
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("qm serve ended before serving: {}", std::fs::read_to_string(stderr).unwrap_or_default());
            }
        }
    }
}
