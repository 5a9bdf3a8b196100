//! Tidy: the codebase checks itself — file headers, the core's purity, released migrations.

use xtask::{files, root, sha256_hex};

#[test]
fn every_rust_file_says_what_it_is_for() {
    let mut missing = vec![];
    for f in files(&root().join("crates"), "rs").into_iter().chain(files(&root().join("xtask"), "rs")) {
        let text = std::fs::read_to_string(&f).unwrap();
        if !text.trim_start().starts_with("//!") {
            missing.push(f.display().to_string());
        }
    }
    assert!(missing.is_empty(), "files without a leading //! line:\n{}", missing.join("\n"));
}

#[test]
fn the_core_does_no_io() {
    // The domain core may depend only on these: no database, no network, no async runtime, no clock.
    let allowed = ["qm-safety", "serde", "serde_json", "thiserror", "time", "proptest"];
    let manifest = std::fs::read_to_string(root().join("crates/qm-core/Cargo.toml")).unwrap();
    let mut in_deps = false;
    for line in manifest.lines() {
        let l = line.trim();
        if l.starts_with('[') {
            in_deps = l.contains("dependencies");
            continue;
        }
        if in_deps && !l.is_empty() && !l.starts_with('#') {
            let name = l.split(['=', '.']).next().unwrap().trim();
            assert!(allowed.contains(&name), "qm-core must not depend on {name}: the core does no I/O");
        }
    }
    for f in files(&root().join("crates/qm-core/src"), "rs") {
        let text = std::fs::read_to_string(&f).unwrap();
        for banned in ["std::fs", "std::net", "std::process", "now_utc()", "SystemTime", "std::thread"] {
            assert!(!text.contains(banned), "{} uses {banned}: the core does no I/O and reads no clock", f.display());
        }
    }
}

/// Released migrations are never edited: add a new file instead. Update this list only when adding one.
const RELEASED_MIGRATIONS: &[(&str, &str)] = &[
    ("crates/qm-store-sqlite/migrations/0001_ledger.sql", "c721cced4be53fdcfc54fa37cceaab21a77b93b7d302684b6a4fb33b93dad1ce"),
    ("crates/qm-store-sqlite/migrations/0002_readings.sql", "fa218b8e4126f22c3ab5fe42c8bb8d70b750529181802f20e067ae3ba351e44b"),
    ("crates/qm-store-postgres/migrations/0001_ledger.sql", "351a3cd33bf88ef14ea07fd3cd60de5c66ab333cd70cf72ea0f4255efd384577"),
    ("crates/qm-store-postgres/migrations/0002_readings.sql", "76fe0d5ffe96c6da20550ff6bedb7893dee830ed60652068c3e3f2c5b66c9edd"),
    ("crates/qm-store-postgres/migrations/0003_tiles.sql", "ad3fdf0d3287aadba6475c1354bd23c9f586e4dc80da9c449db5241e6b30d08c"),
    ("crates/qm-store-sqlite/migrations/0003_credentials.sql", "19e5184b7e456b6bfddf30fa5ac8a3bb8df02f71cb94a2a3f082aa20630d6b73"),
    ("crates/qm-store-postgres/migrations/0004_credentials.sql", "3729e73759f85eb59ef446413376cba96606653b046e68ece39a074efa7b59cb"),
];

#[test]
fn released_migrations_are_never_edited() {
    for (path, pinned) in RELEASED_MIGRATIONS {
        let bytes = std::fs::read(root().join(path)).unwrap();
        let actual = sha256_hex(&bytes);
        assert_eq!(&actual, pinned, "{path} changed: released migrations are never edited; add a new migration");
    }
    let all = files(&root().join("crates"), "sql");
    for f in all {
        let rel = f.strip_prefix(root()).unwrap().display().to_string();
        assert!(RELEASED_MIGRATIONS.iter().any(|(p, _)| *p == rel), "{rel} is not listed in RELEASED_MIGRATIONS (tidy.rs)");
    }
}

#[test]
fn libraries_do_not_unwrap() {
    // The libraries deny unwrap/expect/panic outside tests (checked by clippy); this keeps the attribute there.
    for lib in ["qm-core", "qm-ledger", "qm-store", "qm-store-sqlite", "qm-store-postgres", "qm-app"] {
        let text = std::fs::read_to_string(root().join(format!("crates/{lib}/src/lib.rs"))).unwrap();
        assert!(
            text.contains("clippy::unwrap_used") && text.contains("clippy::panic"),
            "crates/{lib}/src/lib.rs must deny unwrap/expect/panic"
        );
    }
}

/// The rule codes the code can answer with: the first string literal of `refuse("…"`, `rule: "…"`,
/// `forbidden("…"` and the codes of `ApiError::new(…, "…"`, and the invariant codes.
fn rule_codes() -> std::collections::BTreeSet<String> {
    let mut codes = std::collections::BTreeSet::new();
    let openers = ["refuse(\"", "rule: \"", "forbidden(\"", "flag(seq, \"", "bad(\"", "StatusCode::TOO_MANY_REQUESTS, \""];
    for f in files(&root().join("crates"), "rs") {
        let path = f.display().to_string();
        if path.contains("/tests/") || path.contains("/benches/") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        for opener in openers {
            for (i, _) in text.match_indices(opener) {
                let rest = &text[i + opener.len()..];
                let code: String = rest.chars().take_while(|c| *c != '"').collect();
                // A rule code is dotted lower-case words (`custody.one_account`) or one word (`unique`).
                if !code.is_empty() && code.chars().all(|c| c.is_ascii_lowercase() || c == '.' || c == '_') {
                    codes.insert(code);
                }
            }
        }
    }
    codes
}

#[test]
fn every_rule_code_is_documented_and_tested() {
    let docs: String = files(&root().join("docs"), "md").iter().map(|f| std::fs::read_to_string(f).unwrap()).collect();
    let docs = docs + &std::fs::read_to_string(root().join("README.md")).unwrap();
    let tests: String = files(&root().join("crates"), "rs")
        .iter()
        .filter(|f| f.display().to_string().contains("/tests/") || std::fs::read_to_string(f).unwrap().contains("#[cfg(test)]"))
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    let codes = rule_codes();
    assert!(codes.len() > 20, "the scan found too few rule codes: {codes:?}");
    let undocumented: Vec<&String> = codes.iter().filter(|c| !docs.contains(&format!("`{c}`"))).collect();
    let untested: Vec<&String> =
        codes.iter().filter(|c| !tests.contains(&format!("\"{c}\"")) && !tests.contains(&format!("rule {c}"))).collect();
    assert!(
        undocumented.is_empty() && untested.is_empty(),
        "rule codes not documented (as `code`) in docs/ or README.md: {undocumented:?}; rule codes no test names: {untested:?}"
    );
}
