//! `qm sync` (ask the parent site to witness this site's ledger) and `qm witness …` (this site as
//! the witness of its children), docs/sites.md.

use super::*;
use crate::args::WitnessCmd;
use qm_app::conditions::from_ms;
use qm_server::sites::{ask_parent, ParentAnswer};

/// `qm sync`: the latest checkpoint with a proof from the size the parent holds; once more from the
/// size it says it holds (409); the cosignature kept once it verifies with the parent's key.
fn sync(cli: &Cli, parent: &str, parent_key: &str, out: &Out) -> R<u8> {
    let mut site = open_site(cli)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| AppError::Internal(e.to_string()))?;
    let client = qm_server::sites::parent_client().map_err(AppError::Internal)?;
    let mut holds = site.cosigned_size()?;
    for _ in 0..2 {
        let req = site.add_checkpoint_request(holds)?;
        let note = req.note.clone();
        match rt.block_on(ask_parent(&client, parent, req.body())).map_err(AppError::Usage)? {
            ParentAnswer::Cosigned(lines) => {
                let c = site.keep_cosignature(&note, &lines, parent_key, now())?;
                out.kv(&[("cosigned_size", c.size.to_string()), ("witness", c.witness), ("parent_held", holds.to_string())]);
                return Ok(0);
            }
            ParentAnswer::Holds(n) if n != holds => holds = n,
            ParentAnswer::Holds(n) => return Err(AppError::Usage(format!("the parent holds size {n} and refused it again"))),
            ParentAnswer::Refused(status, why) => {
                return Err(AppError::Usage(format!("the parent refused this site's checkpoint ({status}): {why}")));
            }
        }
    }
    Err(AppError::Usage("the parent's size kept changing; try again".into()))
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
