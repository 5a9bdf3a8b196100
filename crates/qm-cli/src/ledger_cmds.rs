//! `qm` ledger commands: the log, checkpoints, proofs, the verifier key, verify, backup and restore.

use super::*;
use qm_app::verify::VerifyOptions;
use qm_backends::open_store;

pub(crate) fn run(cli: &Cli, out: &Out) -> R<u8> {
    let open = || open_site(cli);
    match &cli.command {
        Cmd::Log { limit } => {
            let s = open()?;
            out.log(&query::log(&s, (*limit).min(10_000))?);
            Ok(0)
        }
        Cmd::Checkpoint => {
            let mut s = open()?;
            let note = s.checkpoint()?;
            out.json_or(&serde_json::json!({ "checkpoint": note }), || note.clone());
            Ok(0)
        }
        Cmd::Checkpoints => {
            let s = open()?;
            let cps = s.store().checkpoints()?;
            let rows: Vec<_> = cps.iter().map(|c| serde_json::json!({"size": c.size, "note": c.note})).collect();
            out.json_or(&rows, || cps.iter().map(|c| c.note.clone()).collect::<Vec<_>>().join("\n"));
            Ok(0)
        }
        Cmd::Prove { seq, tlog_proof } => prove(&open()?, *seq, *tlog_proof, out),
        Cmd::Consistency { old, new } => {
            let s = open()?;
            let pr = s.prove_consistency(*old, *new)?;
            out.json_or(&pr, || {
                format!(
                    "consistency {} → {} verified\nproof:\n{}",
                    pr.old_size,
                    pr.new_size,
                    pr.proof.iter().map(|h| format!("  {h}")).collect::<Vec<_>>().join("\n")
                )
            });
            Ok(0)
        }
        Cmd::VerifierKey => {
            let s = open()?;
            let vk = s.state().site.as_ref().map(|x| x.verifier_key.clone()).unwrap_or_default();
            out.json_or(&serde_json::json!({ "verifier_key": vk }), || vk.clone());
            Ok(0)
        }
        Cmd::Verify { verifier_key, tree_only, require_checkpointed } => {
            // Verify reads the store directly: a damaged file must still be examined, not refused at open.
            let store = open_store(&cli.db, false)?;
            let opts =
                VerifyOptions { verifier_key: verifier_key.clone(), skip_replay: *tree_only, require_checkpointed: *require_checkpointed };
            let report = qm_app::verify::verify(store.as_ref(), &opts);
            out.verify(&report);
            Ok(if report.ok() { 0 } else { 1 })
        }
        Cmd::Backup { file, with_credentials } => {
            let r = output::with_progress(out, |step| qm_app::backup::backup(open_store, &cli.db, file, *with_credentials, step))?;
            out.json_or(&r, || {
                format!(
                    "backed up {} entries, {} checkpoints, {} readings, {} credentials to {file}; verified; root {}",
                    r.entries, r.checkpoints, r.readings, r.credentials, r.root
                )
            });
            Ok(0)
        }
        Cmd::Restore { file } => {
            let r = output::with_progress(out, |step| qm_app::backup::restore(open_store, file, &cli.db, step))?;
            out.json_or(&r, || {
                format!(
                    "restored {} entries, {} checkpoints, {} readings, {} credentials into {}; verified; root {}",
                    r.entries, r.checkpoints, r.readings, r.credentials, cli.db, r.root
                )
            });
            Ok(0)
        }
        other => Err(AppError::Internal(format!("{other:?} is not a ledger command"))),
    }
}

/// `qm prove SEQ [--tlog-proof]`: entry SEQ's inclusion proof, or the same as a C2SP tlog-proof.
fn prove(s: &Site, seq: u64, tlog_proof: bool, out: &Out) -> R<u8> {
    if tlog_proof {
        let text = s.tlog_proof(seq)?;
        out.json_or(&serde_json::json!({ "seq": seq, "tlog_proof": text }), || text.trim_end().to_string());
        return Ok(0);
    }
    let pr = s.prove(seq)?;
    out.json_or(&pr, || {
        format!(
            "entry {} in tree of size {}\nleaf hash {}\nproof:\n{}\ncheckpoint:\n{}\nentry:\n{}",
            pr.seq,
            pr.tree_size,
            pr.leaf_hash,
            pr.proof.iter().map(|h| format!("  {h}")).collect::<Vec<_>>().join("\n"),
            pr.checkpoint,
            pr.entry
        )
    });
    Ok(0)
}
