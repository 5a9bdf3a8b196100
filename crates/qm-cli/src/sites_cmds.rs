//! `qm sync` (ask the parent site to witness this site's ledger) and `qm witness …` (this site as
//! the witness of its children), docs/sites.md.

use super::*;
use crate::args::WitnessCmd;
use qm_app::conditions::from_ms;
use qm_server::sites::{sync_once, Parent};

/// `qm sync`: one exchange with the parent, as the server's sync task makes them
/// (`qm_server::sites::sync_once`), through the site's worker started for it.
fn sync(cli: &Cli, parent: &str, parent_key: &str, out: &Out) -> R<u8> {
    let site = open_site(cli)?;
    qm_app::sites::CosignatureVerifier::new(parent_key).map_err(|e| AppError::Usage(format!("--parent-key: {e}")))?;
    let parent = Parent { url: parent.to_string(), key: parent_key.to_string() };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| AppError::Internal(e.to_string()))?;
    let client = qm_server::sites::parent_client().map_err(AppError::Internal)?;
    let r = rt.block_on(async {
        let (handle, worker) = qm_server::worker::spawn(site, u64::MAX / 4, u64::MAX / 4);
        let r = sync_once(&handle, &client, &parent, true).await;
        handle.shutdown().await;
        let _ = worker.join();
        r
    });
    match r.map_err(AppError::Usage)? {
        Some(s) => out.kv(&[("cosigned_size", s.size.to_string()), ("witness", s.witness), ("parent_held", s.held.to_string())]),
        None => out.kv(&[
            ("cosigned_size", open_site(cli)?.cosigned_size()?.to_string()),
            ("note", "the parent holds the whole ledger already".into()),
        ]),
    }
    Ok(0)
}

pub(crate) fn run(cli: &Cli, out: &Out) -> R<u8> {
    match &cli.command {
        Cmd::Sync { parent, parent_key } => sync(cli, parent, parent_key, out),
        Cmd::Witness(WitnessCmd::Key) => {
            let site = open_site(cli)?;
            let key = qm_app::sites::witness_key(&qm_app::sites::witness_key_path(&key_path(cli)?), &site.site_name())?;
            out.kv(&[("witness_key", qm_app::sites::cosigner_verifier_key(&key))]);
            Ok(0)
        }
        Cmd::Witness(WitnessCmd::Status) => {
            let site = open_site(cli)?;
            let rows: Vec<serde_json::Value> = site
                .witnessed()?
                .iter()
                .map(|w| serde_json::json!({"origin": w.origin, "size": w.size, "root": qm_app::hex(&w.root), "cosigned_at_ms": w.at_ms}))
                .collect();
            out.json_or(&rows, || {
                let lines: Vec<String> = site
                    .witnessed()
                    .unwrap_or_default()
                    .iter()
                    .map(|w| format!("{:<32} size {:>8}  cosigned {}", w.origin, w.size, from_ms(w.at_ms)))
                    .collect();
                if lines.is_empty() {
                    "no child site has asked for a cosignature yet".into()
                } else {
                    lines.join("\n")
                }
            });
            Ok(0)
        }
        Cmd::Witness(WitnessCmd::Evidence) => {
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
        _ => Err(AppError::Internal("not a sites command".into())),
    }
}
