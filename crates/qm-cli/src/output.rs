//! Printing: plain text for people at a terminal, JSON with `--json` for scripts.

use qm_app::query::*;
use qm_app::verify::VerifyReport;
use qm_app::{AppError, Outcome};
use qm_core::State;
use serde::Serialize;
use std::process::ExitCode;

pub struct Out {
    pub json: bool,
}

/// What may be printed of a stored text: control and text-direction characters (which old entries or
/// a damaged file may hold) are shown as `\u{..}` escapes, so that nothing a record says can rewrite
/// the terminal, split a line or reorder what is shown. `keep_newlines` leaves this output's own
/// line breaks.
pub fn printable(text: &str, keep_newlines: bool) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if (c == '\n' && keep_newlines) || !qm_core::rules::forbidden_in_text(c) {
            out.push(c);
        } else {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
    out
}

/// Whether colours (ANSI escape codes) may be written to `stream`: only to a terminal, and never
/// with NO_COLOR set (https://no-color.org) or TERM=dumb. A pipe, a file or a test's capture gets
/// plain text. clap's help and errors (anstream) and indicatif's bars (hidden off a terminal)
/// decide this for themselves; `qm serve`'s log asks here.
pub fn colour(stream: &impl std::io::IsTerminal) -> bool {
    colour_allowed(stream.is_terminal(), std::env::var_os("NO_COLOR").as_deref(), std::env::var_os("TERM").as_deref())
}

fn colour_allowed(terminal: bool, no_color: Option<&std::ffi::OsStr>, term: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty()) && term.is_none_or(|t| t != "dumb")
}

pub(crate) fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let rows: Vec<Vec<String>> = rows.into_iter().map(|r| r.iter().map(|c| printable(c, false)).collect()).collect();
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{:<w$}", c, w = widths.get(i).copied().unwrap_or(0)))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![line(headers.iter().map(|h| h.to_string()).collect())];
    out.extend(rows.into_iter().map(line));
    out.join("\n")
}

impl Out {
    pub fn json_or<T: Serialize>(&self, value: &T, text: impl FnOnce() -> String) {
        if self.json {
            println!("{}", serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")));
        } else {
            println!("{}", printable(&text(), true));
        }
    }

    pub fn kv(&self, pairs: &[(&str, String)]) {
        let map: serde_json::Map<String, serde_json::Value> =
            pairs.iter().map(|(k, v)| (k.to_string(), serde_json::Value::String(v.clone()))).collect();
        self.json_or(&map, || pairs.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join("\n"));
    }

    pub fn outcome(&self, o: &Outcome) {
        self.json_or(o, || {
            let head = if o.replayed {
                format!("already recorded as entries {}–{} (same idempotency key); nothing appended", o.first_seq, o.last_seq)
            } else {
                format!("recorded entries {}–{}", o.first_seq, o.last_seq)
            };
            let lines: Vec<String> = o.entries.iter().map(|e| format!("  {:>6}  {}", e.seq, summarize(e))).collect();
            format!("{head}\n{}", lines.join("\n"))
        });
    }

    pub fn stock(&self, lines: &[StockLine]) {
        self.json_or(&lines, || {
            if lines.is_empty() {
                return "no stock".into();
            }
            table(
                &["unit", "account", "item type", "lot", "status", "quantity", "uom"],
                lines
                    .iter()
                    .map(|l| {
                        vec![
                            l.unit.clone(),
                            l.account.clone(),
                            l.item_type.clone(),
                            l.lot.clone().unwrap_or_else(|| "-".into()),
                            l.status.clone().unwrap_or_else(|| "-".into()),
                            l.quantity.clone(),
                            l.unit_of_measure.clone(),
                        ]
                    })
                    .collect(),
            )
        });
    }

    pub fn log(&self, lines: &[LogLine]) {
        self.json_or(&lines, || {
            table(
                &["seq", "at", "actor", "witness", "what"],
                lines
                    .iter()
                    .map(|l| {
                        vec![
                            l.seq.to_string(),
                            l.at.clone(),
                            l.actor.clone(),
                            l.witness.clone().unwrap_or_else(|| "-".into()),
                            l.summary.clone(),
                        ]
                    })
                    .collect(),
            )
        });
    }

    pub fn custody(&self, c: &Custody) {
        self.json_or(c, || {
            // What would stop items going out to them (a lapsed qualification), said first.
            let notes: String = c.notes.iter().map(|n| format!("note: {n}\n")).collect();
            if c.holds.is_empty() {
                return format!("{notes}badge {} ({}, unit {}) holds nothing", c.badge, c.name, c.unit);
            }
            format!(
                "{notes}badge {} ({}, unit {}) holds:\n{}",
                c.badge,
                c.name,
                c.unit,
                table(
                    &["item", "item type", "quantity", "since"],
                    c.holds.iter().map(|h| vec![h.item.clone(), h.item_type.clone(), h.quantity.clone(), h.since.clone()]).collect()
                )
            )
        });
    }

    pub fn transfers(&self, t: &[TransferView]) {
        self.json_or(&t, || {
            if t.is_empty() {
                return "no transfers in transit".into();
            }
            table(
                &["transfer", "from", "to", "dispatched", "document", "lines", "received at"],
                t.iter()
                    .map(|x| {
                        vec![
                            x.transfer.clone(),
                            x.from_unit.clone(),
                            x.to_unit.clone(),
                            x.dispatched_at.clone(),
                            x.document.clone().unwrap_or_default(),
                            x.lines.join(", "),
                            x.received_at.clone().unwrap_or_else(|| "in transit".into()),
                        ]
                    })
                    .collect(),
            )
        });
    }

    pub fn count(&self, c: &CountView) {
        self.json_or(c, || {
            let mut s = format!(
                "count {} of {} ({}{}) by badge {}, started {} — {}\n",
                c.count,
                c.root,
                c.kind,
                if c.blind { ", blind" } else { "" },
                c.counter,
                c.started_at,
                if c.closed { "closed" } else { "open" }
            );
            s.push_str(&format!("recorded ({}):\n", c.recorded.len()));
            for r in &c.recorded {
                s.push_str(&format!("  {r}\n"));
            }
            match &c.book {
                Some(b) => {
                    s.push_str("book:\n");
                    for r in b {
                        s.push_str(&format!("  {r}\n"));
                    }
                }
                None => s.push_str("book: hidden until the blind count closes\n"),
            }
            if c.closed {
                s.push_str(&format!("reconciliation: {} discrepancies\n", c.discrepancies.len()));
                for d in &c.discrepancies {
                    s.push_str(&format!(
                        "  {}  {}\n      proposed: {}\n      {}\n",
                        d.id,
                        d.description,
                        d.proposed_adjustment,
                        d.resolution.clone().unwrap_or_else(|| "OPEN: needs resolution".into())
                    ));
                }
            }
            s.trim_end().to_string()
        });
    }

    pub fn verify(&self, r: &VerifyReport) {
        self.json_or(&serde_json::json!({"ok": r.ok(), "report": r}), || {
            let window = match r.uncheckpointed {
                0 => String::new(),
                n => format!("\n{n} entries after the latest signed checkpoint (`qm checkpoint` covers them)"),
            };
            let text = if r.ok() && !r.replayed {
                format!(
                    "verify: OK — {} entries re-hashed, {} checkpoints verified (tree only: events not replayed); root {}",
                    r.entries, r.checkpoints, r.root
                )
            } else if r.ok() {
                format!(
                    "verify: OK — {} entries re-hashed, {} checkpoints verified, {} projection rows equal a replay; root {}",
                    r.entries, r.checkpoints, r.projection_rows, r.root
                )
            } else {
                let first = r.first_bad_entry.map(|i| format!("first bad entry: {i}\n")).unwrap_or_default();
                format!("verify: FAILED\n{first}{}", r.problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))
            };
            text + &window
        });
    }

    pub fn units(&self, s: &State) {
        // This site's tree, then the organization's other units its parent made known (docs/sites.md).
        let here = s.units.iter().map(|u| (u, "here"));
        let rows: Vec<Vec<String>> = here
            .chain(s.elsewhere.iter().map(|u| (u, "another site")))
            .map(|((id, u), at)| {
                let parent = u.parent.as_ref().map(|p| p.to_string()).unwrap_or_else(|| "-".into());
                vec![id.to_string(), u.name.clone(), parent, at.to_string()]
            })
            .collect();
        self.json_or(&rows, || table(&["unit", "name", "parent", "site"], rows.clone()));
    }

    pub fn locations(&self, s: &State) {
        let rows: Vec<Vec<String>> = s
            .locations
            .iter()
            .map(|(id, l)| {
                vec![
                    id.to_string(),
                    l.kind.to_string(),
                    l.name.clone(),
                    l.unit.to_string(),
                    l.parent.as_ref().map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                    l.keeper.as_ref().map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        self.json_or(&rows, || table(&["location", "kind", "name", "unit", "parent", "keeper"], rows.clone()));
    }

    pub fn item_types(&self, s: &State) {
        let rows: Vec<Vec<String>> = s
            .item_types
            .iter()
            .map(|(id, t)| {
                vec![
                    id.to_string(),
                    t.kind.to_string(),
                    t.tracking.to_string(),
                    t.unit_of_measure.clone(),
                    t.neq_kg_per_unit.to_string(),
                    t.un_code.clone().unwrap_or_else(|| "-".into()),
                    t.name.clone(),
                ]
            })
            .collect();
        self.json_or(&rows, || table(&["item type", "kind", "tracking", "uom", "NEQ kg", "UN", "name"], rows.clone()));
    }

    pub fn people(&self, s: &State, unit: Option<&qm_core::UnitId>) {
        let list = qm_app::people::list(s, unit, time::OffsetDateTime::now_utc().date());
        let rows: Vec<Vec<String>> = list
            .iter()
            .map(|v| {
                let quals = v
                    .qualifications
                    .iter()
                    .map(|q| format!("{} until {}{}", q.qualification, q.expires, if q.expired { " (expired)" } else { "" }));
                vec![
                    v.badge.clone(),
                    v.name.clone(),
                    v.unit.clone(),
                    v.roles.join(","),
                    quals.collect::<Vec<_>>().join(", "),
                    v.suspended.as_ref().map(|x| format!("suspended {x}")).unwrap_or_else(|| "active".into()),
                    v.holds.to_string(),
                    v.keys.join(", "),
                ]
            })
            .collect();
        let head = ["badge", "name", "unit", "roles", "qualifications", "status", "holds", "keys"];
        self.json_or(&list, || table(&head, rows));
    }
}

/// Prints an error (as JSON too with --json) and turns it into the documented exit code.
pub fn fail(out: &Out, e: &AppError) -> ExitCode {
    if out.json {
        println!("{}", serde_json::json!({"error": {"code": e.code(), "message": e.to_string()}}));
    }
    eprintln!("{}", printable(&e.to_string(), true));
    ExitCode::from(e.exit_code() as u8)
}

pub fn bench_text(r: &qm_demo::bench::BenchReport) -> String {
    let mut s = format!("qm bench on {} — {} ledger entries; organization built in {:.1} s\n", r.backend, r.entries, r.build_seconds);
    s.push_str(&table(
        &["operation", "count", "per second", "p50 ms", "p99 ms"],
        r.operations
            .iter()
            .map(|o| {
                vec![
                    o.operation.clone(),
                    o.count.to_string(),
                    format!("{:.0}", o.per_second),
                    format!("{:.2}", o.p50_ms),
                    format!("{:.2}", o.p99_ms),
                ]
            })
            .collect(),
    ));
    s.push_str(&format!(
        "\nbaseline: raw inserts of rows of the same size into {}: {:.0} rows/s — movements at {:.2} of it (target >= 0.30)\n",
        r.backend, r.raw_inserts_per_second, r.movements_to_raw_inserts
    ));
    s.push_str(&format!(
        "  (best of three rounds each; in the best round of movements the writer thread was busy committing {:.2} s of {:.2} s)\n",
        r.movement_writer_busy_seconds, r.movement_seconds
    ));
    s.push_str(&format!(
        "verify (re-hash, tree, checkpoints): {:.1} MB/s; raw SHA-256 of the same bytes: {:.1} MB/s — ratio {:.2} (target >= 0.50)\n",
        r.verify_mb_per_second, r.sha256_mb_per_second, r.verify_to_sha256
    ));
    s.push_str(&format!(
        "projection rebuild: {:.0} entries/s\npeak memory of this process: {:.0} MB",
        r.rebuild_entries_per_second, r.peak_rss_mb
    ));
    s
}

pub fn progress(out: &Out) -> indicatif::ProgressBar {
    if out.json {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(0);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{msg} {bar:40} {pos}/{len} {elapsed}") {
        bar.set_style(style);
    }
    bar
}

/// `qm demo`: a fresh demo site, a day of operations, and what an armorer and an inspector would look at.
pub fn demo(path: &str, key: Option<&str>, out: &Out) -> Result<u8, AppError> {
    use qm_core::*;
    let url = qm_backends::is_url(path);
    let db = std::path::Path::new(path);
    let key = match key {
        Some(k) => std::path::PathBuf::from(k),
        None if url => {
            return Err(AppError::Usage("--out is a PostgreSQL URL: pass --key FILE for the demo site's signing key".into()));
        }
        None => qm_app::default_key_path(db),
    };
    if let Some(dir) = db.parent().filter(|d| !url && !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| AppError::Usage(format!("cannot create {}: {e}", dir.display())))?;
    }
    // Replace only a previous demo: a file whose site is the demo site. (A PostgreSQL database is
    // never replaced: its history cannot be deleted; `Site::init` refuses one that holds a site.)
    if !url && db.exists() {
        let previous = qm_app::Site::open(qm_backends::open_store, path, None).map(|s| s.site_name());
        if previous.as_deref().ok() != Some("demo.quartermaster") {
            return Err(AppError::Usage(format!("{path} exists and is not a demo database; choose another --out")));
        }
        for suffix in ["", "-wal", "-shm", ".key"] {
            let _ = std::fs::remove_file(format!("{path}{suffix}"));
        }
    }
    let day = qm_demo::demo::last_day(time::OffsetDateTime::now_utc());
    let (mut site, count) = qm_demo::demo::create(path, &key, day)?;
    // Show one refusal as the armorer would see it: Officer Jones's rifle qualification has lapsed.
    let refusal = site
        .execute(qm_app::Request::new(
            Badge::parse("0417").map_err(|e| AppError::Internal(e.to_string()))?,
            Command::Issue {
                to: Badge::parse("1003").map_err(|e| AppError::Internal(e.to_string()))?,
                from: None,
                items: vec![ItemRef::Serial(Serial::parse("R-1043").map_err(|e| AppError::Internal(e.to_string()))?)],
            },
            "demo-refusal".into(),
            day + time::Duration::hours(20),
        ))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    let stock = stock(site.state(), &StockFilter::default());
    let count_view = count_view(site.state(), &count)?;
    let report = qm_app::verify::verify(site.store(), &qm_app::verify::VerifyOptions::default());
    let path = crate::shown_db(path);
    if out.json {
        println!("{}", serde_json::to_string_pretty(&serde_json::json!({"database": path, "stock": stock, "count": count_view, "refusal_example": refusal, "verify": report, "verify_ok": report.ok()})).unwrap_or_default());
    } else {
        println!("Quartermaster demo — database {path} (site key {})\n", key.display());
        println!("== Stock status ==");
        out.stock(&stock);
        println!("\n== Count reconciliation ==");
        out.count(&count_view);
        println!("\n== A refusal at the counter ==\n{refusal}\n");
        println!("== Verify ==");
        out.verify(&report);
        println!("\nTry it (every demo PIN is {}):", qm_demo::demo::DEMO_PIN);
        if url {
            println!("  export QM_DB=<the URL> QM_KEY={} QM_ACTOR=0417 QM_PIN={}", key.display(), qm_demo::demo::DEMO_PIN);
        } else {
            println!("  export QM_DB={path} QM_ACTOR=0417 QM_PIN={}", qm_demo::demo::DEMO_PIN);
        }
        println!("  qm stock --location D11-ARM    qm where R-1042    qm history R-1049    qm custody 1001    qm log");
        println!("  qm issue --to 1001 R-1043      qm return --from 1001 --to D11-RACK-A R-1043");
        println!("  qm prove 40    qm verify");
    }
    Ok(if report.ok() { 0 } else { 1 })
}

/// Runs a long task (a copy, an import) with a progress bar (hidden with --json), cleared when it ends.
pub fn with_progress<T>(out: &Out, f: impl FnOnce(&mut dyn FnMut(u64, u64)) -> T) -> T {
    let bar = progress(out);
    let r = f(&mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_only_on_a_terminal_and_never_with_no_color() {
        let os = |s: &'static str| Some(std::ffi::OsStr::new(s));
        assert!(colour_allowed(true, None, os("xterm-256color")));
        assert!(colour_allowed(true, os(""), None), "an empty NO_COLOR is unset (no-color.org)");
        assert!(!colour_allowed(false, None, os("xterm-256color")), "a pipe or a file");
        assert!(!colour_allowed(true, os("1"), os("xterm-256color")));
        assert!(!colour_allowed(true, os("false"), None), "NO_COLOR set to anything");
        assert!(!colour_allowed(true, None, os("dumb")));
    }

    #[test]
    fn stored_text_is_printed_escaped_never_as_terminal_control() {
        // What an old entry or a damaged file might hold: ESC sequences, a forged line, a reversal.
        assert_eq!(printable("DN-1\u{1b}[2J", false), "DN-1\\u{1b}[2J");
        assert_eq!(printable("a\r\nseq 5 forged", false), "a\\u{d}\\u{a}seq 5 forged");
        assert_eq!(printable("DN\u{202E}1-ND", false), "DN\\u{202e}1-ND");
        assert_eq!(printable("two\nlines", true), "two\nlines");
        let t = table(&["document"], vec![vec!["DN\u{0}1".into()]]);
        assert!(t.contains("DN\\u{0}1") && !t.contains('\u{0}'), "{t}");
    }
}
