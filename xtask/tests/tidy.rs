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
    // toml parses the incident rules text the core is given (embedded, or read by the app): no I/O.
    let allowed = ["qm-safety", "serde", "serde_json", "thiserror", "time", "toml", "proptest"];
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
    ("crates/qm-store-sqlite/migrations/0004_no_replace.sql", "6296c3eebe648c6755a7ef8158ff5031561ce9841005a0b2da59ae4f324038f8"),
    ("crates/qm-store-sqlite/migrations/0005_outbox.sql", "59e45751fd2a8ea002a6499e48e78fd352d04a40631437240ef7bf6a2553e7ea"),
    ("crates/qm-store-postgres/migrations/0005_outbox.sql", "5291f222afa5cd3f3ce4bac93c6119b140c17d6a49fce668c789fcb1649c9c0e"),
    ("crates/qm-store-sqlite/migrations/0006_door_events.sql", "218cbeb6d2f5b9d312b7ae795735549a0317371b9131e60b9dd10c1047613db5"),
    ("crates/qm-store-postgres/migrations/0006_door_events.sql", "8d81eff63bbd902155c27930ee58b1de31f37b17e08073bf57f3b5c6434e72e9"),
    ("crates/qm-store-sqlite/migrations/0007_witness.sql", "fee7c5803e8bd5c26275d2779257e53823b09bc1cf39cab40d8e06ccaabe061e"),
    ("crates/qm-store-postgres/migrations/0007_witness.sql", "ed53b7528990af74566bdf5f1088c3bef238a630f81436756d5b451e4b8c8ddf"),
    ("crates/qm-store-sqlite/migrations/0008_mirror.sql", "cc2fdea17509d20eb996d89a04649fb63463bc1c3e2e9c50fc2255bb21b6d43c"),
    ("crates/qm-store-postgres/migrations/0008_mirror.sql", "0fee7ad52e6e073a82988c7a0e9216340e17c601abddb9774dcfb3d2336b6f97"),
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
    // Every library crate denies unwrap/expect/panic outside tests (clippy enforces it); this checks
    // the attribute is there, parsed: `#![cfg_attr(not(test), deny(…))]` naming all three lints.
    let mut libs = 0;
    for dir in std::fs::read_dir(root().join("crates")).unwrap().flatten() {
        let lib = dir.path().join("src/lib.rs");
        let Ok(text) = std::fs::read_to_string(&lib) else { continue };
        libs += 1;
        let denied: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| l.starts_with("#![") && l.contains("deny("))
            .filter_map(|l| l.split_once("deny(").map(|(_, rest)| rest.split(')').next().unwrap_or("").to_string()))
            .flat_map(|list| list.split(',').map(|x| x.trim().to_string()).collect::<Vec<_>>())
            .collect();
        for lint in ["clippy::unwrap_used", "clippy::expect_used", "clippy::panic"] {
            assert!(denied.iter().any(|d| d == lint), "{} must deny {lint} (found {denied:?})", lib.display());
        }
    }
    assert!(libs >= 8, "found only {libs} library crates");
}

/// Functions longer than this many lines are listed in `xtask/long-functions.txt`; the list may only
/// shrink: a new long function, or a listed one growing, fails the test.
const LONG_FUNCTION_LINES: usize = 70;

/// (file, function, lines) for every function in the libraries' and binaries' sources, by brace
/// counting from its `fn` line (strings and comments are not parsed: good enough to ratchet).
fn functions() -> Vec<(String, String, usize)> {
    let mut out = vec![];
    for f in files(&root().join("crates"), "rs") {
        let rel = f.strip_prefix(root()).unwrap().display().to_string();
        if rel.contains("/tests/") || rel.contains("/benches/") {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let mut i = 0;
        while i < lines.len() {
            let l = lines[i].trim_start();
            let is_fn = ["fn ", "pub fn ", "pub(crate) fn ", "pub(super) fn ", "async fn ", "pub async fn ", "const fn ", "pub const fn "]
                .iter()
                .any(|p| l.starts_with(p));
            if !is_fn {
                i += 1;
                continue;
            }
            let name: String = l.split("fn ").nth(1).unwrap_or("").chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            let (mut depth, mut opened, mut j) = (0i32, false, i);
            while j < lines.len() {
                for ch in lines[j].chars() {
                    match ch {
                        '{' => {
                            depth += 1;
                            opened = true;
                        }
                        '}' => depth -= 1,
                        ';' if !opened && depth == 0 => break,
                        _ => {}
                    }
                }
                if (opened && depth <= 0) || (!opened && lines[j].trim_end().ends_with(';')) {
                    break;
                }
                j += 1;
            }
            out.push((rel.clone(), name, j + 1 - i));
            i += 1;
        }
    }
    out
}

#[test]
fn long_functions_may_only_shrink() {
    let listed_text = std::fs::read_to_string(root().join("xtask/long-functions.txt")).unwrap_or_default();
    let listed: std::collections::BTreeMap<(String, String), usize> = listed_text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(|l| {
            let mut p = l.split_whitespace();
            Some(((p.next()?.to_string(), p.next()?.to_string()), p.next()?.parse().ok()?))
        })
        .collect();
    let long: Vec<(String, String, usize)> = functions().into_iter().filter(|(_, _, n)| *n > LONG_FUNCTION_LINES).collect();
    let mut grown = vec![];
    for (file, name, n) in &long {
        match listed.get(&(file.clone(), name.clone())) {
            Some(max) if n <= max => {}
            Some(max) => grown.push(format!("{file} {name}: {n} lines, listed at {max}")),
            None => grown.push(format!("{file} {name}: {n} lines, over {LONG_FUNCTION_LINES} and not listed")),
        }
    }
    if std::env::var_os("QM_BLESS").is_some() {
        let mut text = format!("# Functions over {LONG_FUNCTION_LINES} lines (xtask/tests/tidy.rs): this list may only shrink.\n");
        for (file, name, n) in &long {
            text.push_str(&format!("{file} {name} {n}\n"));
        }
        std::fs::write(root().join("xtask/long-functions.txt"), text).unwrap();
        return;
    }
    assert!(grown.is_empty(), "split these functions (at most {LONG_FUNCTION_LINES} lines) instead of growing them:\n{}", grown.join("\n"));
}

#[test]
fn documents_named_in_code_exist() {
    let mut missing = vec![];
    for f in files(&root().join("crates"), "rs").into_iter().chain(files(&root().join("xtask"), "rs")) {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, _) in text.match_indices("docs/") {
            let name: String = text[i..].chars().take_while(|c| c.is_alphanumeric() || "/._-".contains(*c)).collect();
            let name = name.trim_end_matches(['.', ',']);
            if name.ends_with(".md") && !root().join(name).exists() {
                missing.push(format!("{}: {name}", f.display()));
            }
        }
    }
    assert!(missing.is_empty(), "documents named in code that do not exist:\n{}", missing.join("\n"));
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
