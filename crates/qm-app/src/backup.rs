//! Online backup and restore of a site's ledger, for every backend.
//!
//! A backup is a new SQLite file holding the ledger up to the size it saw when it started (entries
//! with their tree hashes, the checkpoints up to that size, and the condition readings and door events
//! those entries cover), with projections rebuilt by replay. Writers may go on meanwhile: the backup never reads
//! past the size it started from, so it is a consistent prefix of the ledger. A restore copies a
//! backup into a new database (SQLite or PostgreSQL) the same way. Both end with a full verify.
//! The site's signing key is not in the backup: it is the site's identity; keep it apart. Nor are
//! the credentials (PIN, password and token hashes), unless asked for (`--with-credentials`): a
//! backup made with them is written owner-only, and a restore copies whatever credentials it holds.
//! Without them, a restored site's people need their PINs set again (docs/operations.md).

use crate::verify::{verify, VerifyOptions};
use crate::{decode, AppError, Opener, Result};
use qm_core::{Event, State};
use qm_ledger::{leaf_hash, Frontier};
use qm_store::{Commit, RowChange, Store, StoredEntry};
use serde::Serialize;

/// Entries per transaction while copying.
const CHUNK: usize = 5000;

#[derive(Clone, Debug, Serialize)]
pub struct CopyReport {
    pub entries: u64,
    pub checkpoints: usize,
    pub readings: usize,
    /// Credentials copied (only when asked for).
    pub credentials: usize,
    pub root: String,
    pub verified: bool,
}

/// Copies the ledger prefix of `src` (up to its size now) into the empty store `dest`, rebuilding
/// projections by replay, then verifies `dest`.
pub fn copy_ledger(
    src: &dyn Store,
    dest: &mut dyn Store,
    with_credentials: bool,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<CopyReport> {
    let n = src.entry_count()?;
    let mut state = State::new();
    let mut chunk: Vec<StoredEntry> = Vec::with_capacity(CHUNK);
    let mut digests: Vec<u64> = vec![];
    let mut failure: Option<AppError> = None;
    let mut copied = 0u64;
    let flush = |chunk: &mut Vec<StoredEntry>, dest: &mut dyn Store| -> Result<()> {
        if chunk.is_empty() {
            return Ok(());
        }
        dest.commit(&Commit { entries: std::mem::take(chunk), ..Commit::default() })?;
        Ok(())
    };
    let mut tree = Frontier::new();
    let derived = src.derived_hash_levels();
    src.scan_entries(0, &mut |seq, idem, bytes, stored| {
        if seq >= n {
            return false;
        }
        let env = match decode(bytes) {
            Ok(e) => e,
            Err(m) => {
                failure = Some(AppError::Internal(format!("entry {seq} cannot be read: {m}; run `qm verify` on the source")));
                return false;
            }
        };
        if let Event::ReadingsRecorded { .. } | Event::DoorEvents { .. } = env.event {
            digests.push(seq);
        }
        if let Err(e) = state.apply(&env) {
            failure = Some(AppError::Internal(format!("{e}; run `qm verify` on the source")));
            return false;
        }
        // The tree hashes are made again from the bytes (the source may derive some of them
        // rather than store them, and the destination may keep a different set), and must equal
        // those the source stores: a copy never hides a difference `qm verify` would report.
        let hashes = tree.push(leaf_hash(bytes));
        if !hashes.iter().skip(derived).flatten().copied().eq(stored.iter().copied()) {
            failure = Some(AppError::Internal(format!(
                "entry {seq}: its bytes do not hash to the tree hashes stored with it; run `qm verify` on the source"
            )));
            return false;
        }
        chunk.push(StoredEntry { seq, idempotency_key: idem.to_string(), bytes: bytes.to_vec(), hashes });
        copied += 1;
        if chunk.len() == CHUNK {
            if let Err(e) = flush(&mut chunk, dest) {
                failure = Some(e);
                return false;
            }
            progress(copied, n);
        }
        true
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    flush(&mut chunk, dest)?;
    progress(copied, n);
    let mut readings = 0;
    for seq in digests {
        let rs = src.readings_of_digest(seq)?;
        readings += rs.len();
        dest.commit(&Commit { readings: rs, door_events: src.door_events_of_digest(seq)?, ..Commit::default() })?;
    }
    let rows: Vec<RowChange> =
        state.all_rows().into_iter().map(|(k, v)| RowChange { kind: k.kind.to_string(), key: k.key, value: Some(v) }).collect();
    dest.commit(&Commit { rows, ..Commit::default() })?;
    let cps: Vec<_> = src.checkpoints()?.into_iter().filter(|c| c.size <= n).collect();
    for cp in &cps {
        dest.add_checkpoint(cp)?;
    }
    let credentials = copy_beside(src, dest, n, with_credentials)?;
    let report = verify(dest, &VerifyOptions::default());
    if !report.ok() {
        return Err(AppError::Internal(format!("the copy does not verify: {}", report.problems.join("; "))));
    }
    Ok(CopyReport { entries: copied, checkpoints: cps.len(), readings, credentials, root: report.root, verified: true })
}

/// What is kept beside the ledger and copied with it: the credentials set by the `n` entries copied
/// (only when asked for; how many), what this site witnessed of its children, the evidence it keeps
/// and its parent's cosignatures, and the children's ledgers it mirrors (docs/sites.md: a witness
/// restored without them would cosign a rewritten child from nothing).
fn copy_beside(src: &dyn Store, dest: &mut dyn Store, n: u64, with_credentials: bool) -> Result<usize> {
    let creds: Vec<_> = if with_credentials { src.all_credentials()?.into_iter().filter(|c| c.seq < n).collect() } else { vec![] };
    dest.put_credentials(&creds)?;
    for w in src.witnessed_all()? {
        dest.witness_advance(0, &w)?;
    }
    for e in src.fork_evidence()? {
        dest.add_fork_evidence(&e)?;
    }
    for c in src.cosignatures()? {
        dest.add_cosignature(&c)?;
    }
    // The children's ledgers this site mirrors, 4,096 entries at a time, then their checkpoints.
    for m in src.mirrored_all()? {
        let next = src.mirror_next(&m.origin)?;
        let mut at = 0;
        while at < next {
            let bytes = src.mirror_entries(&m.origin, at, 4_096)?;
            let leaves = src.mirror_leaves(&m.origin, at, at + bytes.len() as u64)?;
            let n = bytes.len() as u64;
            dest.mirror_add(&m.origin, at, &bytes.into_iter().zip(leaves).collect::<Vec<_>>())?;
            at += n.max(1);
        }
        dest.mirror_advance(&m)?;
    }
    Ok(creds.len())
}

/// `qm backup FILE`: an online backup of the database `db` into a new SQLite file.
pub fn backup(stores: Opener, db: &str, file: &str, with_credentials: bool, progress: &mut dyn FnMut(u64, u64)) -> Result<CopyReport> {
    let src = stores(db, false)?;
    if std::path::Path::new(file).exists() {
        return Err(AppError::Usage(format!("{file} already exists; a backup never overwrites a file")));
    }
    let mut dest = stores(file, true)?;
    #[cfg(unix)]
    if with_credentials {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| AppError::Internal(format!("making {file} owner-only: {e}")))?;
    }
    let r = copy_ledger(src.as_ref(), dest.as_mut(), with_credentials, progress);
    if r.is_err() {
        drop(dest);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{file}{suffix}"));
        }
    }
    r
}

/// `qm restore FILE --db TARGET`: a verified backup into a new database.
pub fn restore(stores: Opener, file: &str, db: &str, progress: &mut dyn FnMut(u64, u64)) -> Result<CopyReport> {
    let src = stores(file, false)?;
    let check = verify(src.as_ref(), &VerifyOptions::default());
    if !check.ok() {
        return Err(AppError::Usage(format!("{file} does not verify, so it is not restored: {}", check.problems.join("; "))));
    }
    let mut dest = stores(db, true)?;
    copy_ledger(src.as_ref(), dest.as_mut(), true, progress)
}
