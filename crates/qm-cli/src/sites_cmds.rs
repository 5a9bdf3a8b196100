//! `qm sync` (ask the parent site to witness this site's ledger) and `qm witness …` (this site as
//! the witness of its children), docs/sites.md.

use super::*;
use crate::args::{SyncMedia, WitnessCmd};
use qm_app::conditions::from_ms;
use qm_server::sites::{sync_once, Parent};

/// `qm sync`: one exchange with the parent, as the server's sync task makes them
/// (`qm_server::sites::sync_once`), through the site's worker started for it.
fn sync(cli: &Cli, parent: &str, parent_key: &str, mirror: (Option<&str>, Option<&str>), log_key: Option<&str>, out: &Out) -> R<u8> {
    let site = open_site(cli)?;
    qm_app::sites::CosignatureVerifier::new(parent_key).map_err(|e| AppError::Usage(format!("--parent-key: {e}")))?;
    let mirror = match mirror {
        (Some(key), url) => Some(qm_server::mirror::parent_mirror(parent, url, key).map_err(AppError::Usage)?),
        (None, _) => None,
    };
    if let Some(k) = log_key {
        qm_app::sites::CheckpointVerifier::new(k).map_err(|e| AppError::Usage(format!("--parent-log-key: {e}")))?;
    }
    let parent = Parent { url: parent.to_string(), key: parent_key.to_string(), mirror, log_key: log_key.map(str::to_string) };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| AppError::Internal(e.to_string()))?;
    let client = qm_server::sites::parent_client().map_err(AppError::Internal)?;
    let (r, relayed) = rt.block_on(async {
        let (handle, worker) = qm_server::worker::spawn(site, u64::MAX / 4, u64::MAX / 4);
        let r = sync_once(&handle, &client, &parent, true).await;
        // The child ledgers this site mirrors go up too (docs/sites.md, "A grandparent").
        let relayed = match &r {
            Ok(_) => qm_server::relay::relay_children(&handle, &client, &parent, &mut Default::default()).await,
            Err(_) => Ok(vec![]),
        };
        // What the parent decided for this site comes down.
        let received = match (&r, &relayed) {
            (Ok(_), Ok(_)) => qm_server::down::pull_down(&handle, &client, &parent).await,
            _ => Ok(0),
        };
        handle.shutdown().await;
        let _ = worker.join();
        (r, relayed.and_then(|list| received.map(|n| (list, n))))
    });
    let mut kv = match r.map_err(AppError::Usage)? {
        Some(s) => {
            let mut kv = vec![("cosigned_size", s.size.to_string()), ("witness", s.witness), ("parent_held", s.held.to_string())];
            kv.extend(s.mirrored.map(|m| ("mirrored_size", m.to_string())));
            kv
        }
        None => vec![
            ("cosigned_size", open_site(cli)?.cosigned_size()?.to_string()),
            ("note", "the parent holds the whole ledger already".into()),
        ],
    };
    match relayed {
        Ok((list, received)) => {
            if parent.log_key.is_some() {
                kv.push(("received", received.to_string()));
            }
            if !list.is_empty() {
                kv.push(("relayed", list.iter().map(|c| format!("{} {}", c.origin, c.size)).collect::<Vec<_>>().join(", ")));
            }
            out.kv(&kv);
            Ok(0)
        }
        Err(e) => {
            out.kv(&kv);
            Err(AppError::Usage(e))
        }
    }
}

/// The entries file carried beside a request on media: `d11.request` → `d11.request.entries`.
fn entries_file(request: &str) -> String {
    format!("{request}.entries")
}

/// `qm sync export`: what `qm sync` would send, in a file for removable media; with the parent's
/// mirror key, the entries the mirror lacks in a second file beside it.
fn export(cli: &Cli, file: &str, held: (Option<u64>, Option<u64>), mirror_key: Option<&str>, out: &Out) -> R<u8> {
    let mut site = open_site(cli)?;
    let parent_held = match held.0 {
        Some(n) => n,
        None => site.cosigned_size()?,
    };
    let req = site.add_checkpoint_request(parent_held)?;
    let write = |f: &str, b: &[u8]| std::fs::write(f, b).map_err(|e| AppError::Usage(format!("writing {f}: {e}")));
    write(file, req.body().as_bytes())?;
    let size: u64 = req.note.lines().nth(1).and_then(|l| l.parse().ok()).unwrap_or(0);
    let mut kv = vec![("file", file.to_string()), ("checkpoint_size", size.to_string()), ("parent_held", parent_held.to_string())];
    match (mirror_key, held.1) {
        (Some(key), mirrored) => {
            let name = key.split_once('+').map_or(key, |(n, _)| n);
            let from = match mirrored {
                Some(n) => n,
                None => site.mirrored_size(name)?,
            };
            let bytes = qm_app::mirror::media_requests(site.store(), &site.site_name(), from.min(size), size)?;
            write(&entries_file(file), &bytes)?;
            kv.extend([("entries_file", entries_file(file)), ("entries_from", from.min(size).to_string())]);
        }
        (None, Some(_)) => return Err(AppError::Usage("--mirrored goes with --parent-mirror-key (the entries for the mirror)".into())),
        (None, None) => {}
    }
    out.kv(&kv);
    Ok(0)
}

/// `qm sync import`: the parent's answer brought back, kept once it verifies (the mirror's
/// cosignature too, with --parent-mirror-key).
fn import_answer(cli: &Cli, file: &str, keys: (Option<&str>, Option<&str>), out: &Out) -> R<u8> {
    let key = keys.0.ok_or_else(|| AppError::Usage("give --parent-key KEY (or QM_PARENT_KEY)".into()))?;
    let text = std::fs::read_to_string(file).map_err(|e| AppError::Usage(format!("reading {file}: {e}")))?;
    let mut site = open_site(cli)?;
    let (note, lines) = qm_app::sites::split_cosigned(&text, &site.site_name());
    let c = site.keep_cosignature(&note, &lines, key, now())?;
    let mut kv = vec![("cosigned_size", c.size.to_string()), ("witness", c.witness)];
    if let Some(mirror) = keys.1 {
        let m = site
            .keep_cosignature(&note, &lines, mirror, now())
            .map_err(|e| AppError::Usage(format!("the witness's cosignature of size {} is kept; the mirror's is missing: {e}", c.size)))?;
        kv.push(("mirrored_size", m.size.to_string()));
    }
    out.kv(&kv);
    Ok(0)
}

/// `qm witness import`: a child's request brought on media, checked as a push is; the cosigned
/// checkpoint written to `answer`. An entries file beside the request goes to the mirror, whose
/// cosignature is added to the answer.
fn witness_import(cli: &Cli, file: &str, answer: &str, out: &Out) -> R<u8> {
    let mut site = open_site(cli)?;
    let children = children_file(cli)?;
    let key = qm_app::sites::witness_key(&qm_app::sites::witness_key_path(&key_path(cli)?), &site.site_name())?;
    let body = std::fs::read_to_string(file).map_err(|e| AppError::Usage(format!("reading {file}: {e}")))?;
    let line = match site.add_checkpoint(&children, &key, &body, now())? {
        qm_app::sites::WitnessAnswer::Cosigned(line) => line,
        qm_app::sites::WitnessAnswer::Refused(qm_app::sites::Refusal::Conflict { latest }) => {
            return Err(AppError::Usage(format!(
                "this site holds size {latest} of that ledger: export again there with --parent-held {latest}"
            )))
        }
        qm_app::sites::WitnessAnswer::Refused(r) => return Err(AppError::Usage(format!("refused ({}): {r}", r.status()))),
    };
    let note = body.split_once("\n\n").map_or("", |(_, n)| n);
    let mut kv = vec![("answer", answer.to_string()), ("cosigned", note.lines().take(2).collect::<Vec<_>>().join(" size "))];
    let write = |text: String| std::fs::write(answer, text).map_err(|e| AppError::Usage(format!("writing {answer}: {e}")));
    write(format!("{note}{line}"))?;
    match std::fs::read(entries_file(file)) {
        Ok(bytes) => {
            let mirror_line = mirror_import(cli, &mut site, &children, &bytes)
                .map_err(|e| AppError::Usage(format!("{answer} holds the witness's cosignature; {e}")))?;
            write(format!("{note}{line}{mirror_line}"))?;
            kv.push(("mirrored", "yes".into()));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(AppError::Usage(format!("reading {}: {e}", entries_file(file)))),
    }
    out.kv(&kv);
    Ok(0)
}

/// The entries file of a request, taken by this site's mirror: its cosignature line.
fn mirror_import(cli: &Cli, site: &mut qm_app::Site, children: &qm_app::sites::Children, bytes: &[u8]) -> R<String> {
    use qm_app::mirror::MirrorAnswer;
    let key = qm_app::mirror::mirror_key(&qm_app::mirror::mirror_key_path(&key_path(cli)?), &site.site_name())?;
    match site.add_entries_from_media(children, &key, bytes, now())? {
        MirrorAnswer::Cosigned(line) => Ok(line),
        MirrorAnswer::Partial(info) | MirrorAnswer::Conflict(info) => Err(AppError::Usage(format!(
            "the checkpoint is cosigned by the witness, but the mirror holds {} entries of that ledger and the file does not follow on: export again there with --mirrored {}",
            info.next_entry, info.next_entry
        ))),
        MirrorAnswer::Refused(status, why) => Err(AppError::Usage(format!("the mirror refused the entries ({status}): {why}"))),
    }
}

fn witness_status(cli: &Cli, out: &Out) -> R<u8> {
    let site = open_site(cli)?;
    let list = site.witnessed()?;
    let mirrored: std::collections::BTreeMap<String, u64> = site.mirrored()?.into_iter().map(|m| (m.origin, m.size)).collect();
    let held = |o: &str| mirrored.get(o).copied().unwrap_or(0);
    let rows: Vec<serde_json::Value> = list
        .iter()
        .map(|w| {
            serde_json::json!({"origin": w.origin, "size": w.size, "root": qm_app::hex(&w.root), "cosigned_at_ms": w.at_ms,
                "mirrored_size": held(&w.origin)})
        })
        .collect();
    out.json_or(&rows, || {
        let zone = qm_app::zone::SiteZone::of(site.state());
        let lines: Vec<String> = list
            .iter()
            .map(|w| format!("{:<32} size {:>8}  cosigned {}  mirrored {}", w.origin, w.size, zone.show(from_ms(w.at_ms)), held(&w.origin)))
            .collect();
        if lines.is_empty() {
            "no child site has asked for a cosignature yet".into()
        } else {
            lines.join("\n")
        }
    });
    Ok(0)
}

fn witness_evidence(cli: &Cli, out: &Out) -> R<u8> {
    let site = open_site(cli)?;
    let ev = site.fork_evidence()?;
    let rows: Vec<serde_json::Value> = ev
        .iter()
        .map(|e| serde_json::json!({"origin": e.origin, "reason": e.reason, "held": e.held_note, "offered": e.offered_note, "at_ms": e.at_ms}))
        .collect();
    out.json_or(&rows, || {
        if ev.is_empty() {
            return "no contradicting checkpoints".into();
        }
        ev.iter()
            .map(|e| format!("{}: {}\n-- cosigned before:\n{}-- offered:\n{}", e.origin, e.reason, e.held_note, e.offered_note))
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(0)
}

/// The children file given with --children (or QM_CHILDREN).
fn children_file(cli: &Cli) -> R<qm_app::sites::Children> {
    let file = cli
        .children
        .as_deref()
        .ok_or_else(|| AppError::Usage("give --children FILE (or QM_CHILDREN): the sites this one witnesses".into()))?;
    qm_app::sites::Children::read(std::path::Path::new(file))
}

/// `qm witness books [ORIGIN]`: headquarters' read model over its children's mirrors.
fn witness_books(cli: &Cli, origin: Option<&str>, out: &Out) -> R<u8> {
    let mut site = open_site(cli)?;
    let children = children_file(cli)?;
    let Some(origin) = origin else {
        let span = qm_app::span::span(&mut site, &children, now())?;
        out.json_or(&span, || {
            let sites = span.sites.iter().map(|r| {
                let n = |x: usize| x.to_string();
                vec![
                    r.origin.clone(),
                    n(r.mirrored as usize),
                    n(r.units),
                    n(r.incidents_open),
                    n(r.incidents_critical),
                    n(r.in_transit),
                    n(r.issued),
                ]
            });
            let totals = span
                .totals
                .iter()
                .map(|t| vec![t.item_type.clone(), format!("{} {}", t.total, t.unit_of_measure), t.per_site.len().to_string()]);
            let head = ["site", "mirrored", "units", "open incidents", "critical", "in transit", "issued"];
            format!(
                "{}\n\nstock over every site:\n{}",
                crate::output::table(&head, sites.collect()),
                crate::output::table(&["item type", "total", "sites"], totals.collect())
            )
        });
        return Ok(0);
    };
    let b = qm_app::span::child_books(&mut site, &children, origin, now())?;
    out.json_or(&b, || {
        let stock = b.stock.iter().map(|l| {
            vec![l.unit.clone(), l.account.clone(), l.item_type.clone(), l.lot.clone().unwrap_or_default(), format!("{} {}", l.quantity, l.unit_of_measure)]
        });
        let incidents = b.incidents.iter().map(|i| format!("{} {} {} at {}: {}", i.id, i.severity, i.kind, i.unit, i.summary));
        format!(
            "site {} as its {} mirrored entries replay (cosigned {}):\n{}\nopen incidents: {}\n{}\ntransfers in transit: {}; directives in force: {}",
            b.row.origin,
            b.row.mirrored,
            b.row.mirrored_at,
            crate::output::table(&["unit", "held at / by", "item type", "lot", "quantity"], stock.collect()),
            b.incidents.len(),
            incidents.collect::<Vec<_>>().join("\n"),
            b.transfers.len(),
            b.directives.len()
        )
    });
    Ok(0)
}

/// `qm witness transfers`: transfers between the child sites, matched from their mirrors.
fn witness_transfers(cli: &Cli, out: &Out) -> R<u8> {
    let mut site = open_site(cli)?;
    let rows = qm_app::across::transfers_across(&mut site, &children_file(cli)?, now())?;
    out.json_or(&rows, || {
        let lines = rows.iter().map(|t| {
            let what = if t.differences.is_empty() { t.lines.join(", ") } else { t.differences.join("; ") };
            vec![t.id.clone(), t.to_site.clone(), t.status.to_string(), format!("{} h", t.hours), what]
        });
        crate::output::table(&["transfer", "to site", "status", "since dispatch", "lines / differences"], lines.collect())
    });
    Ok(0)
}

/// `qm witness compliance ID`: a directive at every child site, from the mirrors.
fn witness_compliance(cli: &Cli, id: &str, out: &Out) -> R<u8> {
    let mut site = open_site(cli)?;
    let rows = qm_app::span::directive_across(&mut site, &children_file(cli)?, id, now())?;
    out.json_or(&rows, || {
        let lines = rows.iter().map(|r| {
            let got = if r.recorded { r.status.unwrap_or("recorded").replace('_', " ") } else { "not received yet".into() };
            vec![
                r.origin.clone(),
                got,
                format!("{} of {}", r.units_acknowledged, r.units_concerned),
                r.briefed.to_string(),
                format!("{} entries, {}", r.mirrored, r.mirrored_at),
            ]
        });
        crate::output::table(&["site", "there", "units acknowledged", "briefed", "as of"], lines.collect())
    });
    Ok(0)
}

pub(crate) fn run(cli: &Cli, out: &Out) -> R<u8> {
    match &cli.command {
        Cmd::Sync { media: None, parent, parent_key, parent_mirror_key, parent_mirror, parent_log_key } => {
            let need = |v: &Option<String>, what: &str| v.clone().ok_or_else(|| AppError::Usage(format!("give {what}")));
            let mirror = (parent_mirror_key.as_deref(), parent_mirror.as_deref());
            let (url, key) = (need(parent, "--parent URL (or QM_PARENT)")?, need(parent_key, "--parent-key KEY (or QM_PARENT_KEY)")?);
            sync(cli, &url, &key, mirror, parent_log_key.as_deref(), out)
        }
        Cmd::Sync { media: Some(SyncMedia::Export { file, parent_held, mirrored }), parent_mirror_key, .. } => {
            export(cli, file, (*parent_held, *mirrored), parent_mirror_key.as_deref(), out)
        }
        Cmd::Sync { media: Some(SyncMedia::Import { file }), parent_key, parent_mirror_key, .. } => {
            import_answer(cli, file, (parent_key.as_deref(), parent_mirror_key.as_deref()), out)
        }
        Cmd::Witness(WitnessCmd::Import { file, answer }) => witness_import(cli, file, answer, out),
        Cmd::Sync { media: Some(SyncMedia::Status), .. } => {
            let s = open_site(cli)?.parent_status(now())?;
            out.json_or(&s, || {
                let up = match &s.cosigned_at {
                    None => format!("{} entries; no checkpoint of this site was cosigned by a parent yet", s.size),
                    Some(at) => format!(
                        "{} entries; the parent ({}) cosigned {} of them on {at} ({} h ago); {} waiting",
                        s.size,
                        s.witness.as_deref().unwrap_or("?"),
                        s.cosigned_size,
                        s.age_h.unwrap_or(0),
                        s.waiting
                    ),
                };
                let down = format!("\n{} entries of the parent recorded here; {} not taken", s.received, s.not_taken.len());
                let why: String = s.not_taken.iter().map(|n| format!("\n  {n}")).collect();
                format!("{up}{down}{why}")
            });
            Ok(0)
        }
        Cmd::Witness(WitnessCmd::Key) => {
            let site = open_site(cli)?;
            let key = qm_app::sites::witness_key(&qm_app::sites::witness_key_path(&key_path(cli)?), &site.site_name())?;
            let mirror = qm_app::mirror::mirror_key(&qm_app::mirror::mirror_key_path(&key_path(cli)?), &site.site_name())?;
            out.kv(&[
                ("witness_key", qm_app::sites::cosigner_verifier_key(&key)),
                ("mirror_key", qm_app::sites::cosigner_verifier_key(&mirror)),
            ]);
            Ok(0)
        }
        Cmd::Witness(WitnessCmd::Status) => witness_status(cli, out),
        Cmd::Witness(WitnessCmd::Evidence) => witness_evidence(cli, out),
        Cmd::Witness(WitnessCmd::Books { origin }) => witness_books(cli, origin.as_deref(), out),
        Cmd::Witness(WitnessCmd::Compliance { directive }) => witness_compliance(cli, directive, out),
        Cmd::Witness(WitnessCmd::Transfers) => witness_transfers(cli, out),
        _ => Err(AppError::Internal("not a sites command".into())),
    }
}
