//! Down the tree (docs/sites.md): what a higher unit decides reaches the sites below it. A child
//! asks its parent, with a request signed by its own site key, for the parent's entries that
//! concern it since the last one it took; the parent answers with each entry exactly as its ledger
//! holds it and its inclusion proof in a checkpoint the parent signed; the child checks the
//! signature and every proof, and records each entry in its own ledger (`Event::FromParent`), where
//! its books take it (a directive issued, extended or cancelled). So a child can prove what it was
//! told and when, and its acknowledgments go back up in its own ledger, through the mirror.

use crate::sites::Children;
use crate::{AppError, Request, Result, Site, StoreHashes};
use qm_core::event::DirectiveAction;
use qm_core::{Badge, Command, Event};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// How old a child's signed request may be when the parent reads it.
const REQUEST_FRESH_S: i64 = 300;
/// The most entries one answer carries (the child asks again from the last).
const ENTRIES_PER_ANSWER: usize = 256;

/// What a parent sends down to one child: its entries that concern the child, in order, each with
/// its inclusion proof (hex hashes) in the signed checkpoint `checkpoint`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Down {
    pub origin: String,
    pub checkpoint: String,
    pub entries: Vec<DownEntry>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct DownEntry {
    pub seq: u64,
    pub entry: String,
    pub proof: Vec<String>,
}

/// How a parent answers a child's request.
#[derive(Debug)]
pub enum DownAnswer {
    Down(Down),
    Refused(u16, String),
}

/// The text a child signs to ask for what concerns it after entry `after` of its parent's ledger.
fn request_text(child: &str, after: Option<u64>, at: OffsetDateTime) -> String {
    let after = after.map_or("-".to_string(), |a| a.to_string());
    format!("qm-down/v1\n{child}\n{after}\n{}\n", at.unix_timestamp())
}

/// The child, the entry after which it asks, and when it asked, from a request's text.
fn parse_request(text: &str) -> Option<(String, Option<u64>, i64)> {
    let mut lines = text.lines();
    if lines.next()? != "qm-down/v1" {
        return None;
    }
    let child = lines.next()?.to_string();
    let after = match lines.next()? {
        "-" => None,
        n => Some(n.parse().ok()?),
    };
    Some((child, after, lines.next()?.parse().ok()?))
}

/// Whether the books take this entry of a parent's ledger when it is sent down.
fn flows_down(env: &qm_core::Envelope) -> bool {
    let decided = match &env.event {
        Event::FromParent { entry, .. } => match qm_core::directives::decided_entry(entry) {
            Ok(e) => e.event,
            Err(_) => return false,
        },
        e => e.clone(),
    };
    qm_core::down::takes(&decided)
        || matches!(
            decided,
            Event::DirectiveIssued { .. }
                | Event::DirectiveUpdated { action: DirectiveAction::Extend { .. } | DirectiveAction::Cancel { .. }, .. }
        )
}

impl Site {
    /// The child's request, signed with this site's key, for what its parent `parent` decided since
    /// the last entry taken from it.
    pub fn down_request(&self, parent: &str, at: OffsetDateTime) -> Result<String> {
        let Some(key) = &self.key else {
            return Err(AppError::Usage("the site's signing key is not available here; give --key".into()));
        };
        let after = qm_core::down::last_taken(&self.state, parent);
        Ok(qm_ledger::sign_note(key, &request_text(&self.site_name(), after, at))?)
    }

    /// The parent's answer to a child's signed request: the child known here and its signature
    /// good, the request fresh; the entries of directives and of other decisions that concern the
    /// unit it serves (`qm_core::down`), after the one it names, proved in a checkpoint signed now if
    /// the latest does not cover them.
    pub fn down_for(&mut self, children: &Children, request: &str, now: OffsetDateTime) -> Result<DownAnswer> {
        let text = request.split_once("\n\n").map_or(request, |(t, _)| t);
        let Some((origin, after, at)) = parse_request(&format!("{text}\n")) else {
            return Ok(DownAnswer::Refused(400, "not a qm-down/v1 request".into()));
        };
        let Some(child) = children.children.get(&origin) else {
            return Ok(DownAnswer::Refused(404, format!("no child site with the origin {origin:?} is known here")));
        };
        if qm_ledger::open_note(request, &child.key).is_err() {
            return Ok(DownAnswer::Refused(403, format!("the request is not signed by site {origin}'s key")));
        }
        if (now.unix_timestamp() - at).abs() > REQUEST_FRESH_S {
            return Ok(DownAnswer::Refused(
                403,
                format!("the request was signed at {at}, more than {REQUEST_FRESH_S} s from this site's clock"),
            ));
        }
        let unit = qm_core::UnitId::parse(&child.unit).map_err(|e| AppError::Usage(e.to_string()))?;
        let state = self.state();
        let mut seqs: Vec<u64> = state
            .directives
            .values()
            .filter(|d| qm_core::directives::units_concerned(state, d).contains(&unit))
            .flat_map(|d| d.entries.iter().copied())
            .chain(state.down.iter().filter(|(_, r)| qm_core::down::concerns(state, r, &unit)).map(|(s, _)| *s))
            .filter(|s| after.is_none_or(|a| *s > a))
            .collect();
        seqs.sort_unstable();
        seqs.dedup();
        let mut entries = vec![];
        for seq in seqs {
            let bytes = self.store.read_entries(seq, 1)?.pop().map(|e| e.bytes).unwrap_or_default();
            let env = crate::decode(&bytes).map_err(AppError::Internal)?;
            if flows_down(&env) {
                entries.push((seq, String::from_utf8(bytes).map_err(|e| AppError::Internal(e.to_string()))?));
            }
            if entries.len() >= ENTRIES_PER_ANSWER {
                break;
            }
        }
        self.down_answer(entries).map(DownAnswer::Down)
    }

    /// The entries with their proofs in the latest checkpoint (one signed now if it is older than them).
    fn down_answer(&mut self, entries: Vec<(u64, String)>) -> Result<Down> {
        let need = entries.last().map_or(0, |(s, _)| s + 1);
        let latest = self.store.checkpoints()?.into_iter().max_by_key(|c| c.size);
        let (size, checkpoint) = match latest {
            Some(c) if c.size >= need && c.size > 0 => (c.size, c.note),
            _ => {
                let note = self.checkpoint()?;
                (self.size(), note)
            }
        };
        let hashes = StoreHashes(self.store.as_ref());
        let mut out = vec![];
        for (seq, entry) in entries {
            let proof = qm_ledger::prove_inclusion(seq, size, &hashes)?;
            out.push(DownEntry { seq, entry, proof: proof.iter().map(|h| crate::hex(h)).collect() });
        }
        Ok(Down { origin: self.site_name(), checkpoint, entries: out })
    }

    /// The child takes its parent's answer: the checkpoint signed by the parent's key
    /// (`parent_log_key`, its `qm verifier-key`), each entry in it by its proof and of the parent's
    /// ledger; each recorded here in order, once. Returns how many were recorded.
    pub fn take_down(&mut self, down: &Down, parent_log_key: &str, now: OffsetDateTime) -> Result<usize> {
        let cp = qm_ledger::open_checkpoint(&down.checkpoint, parent_log_key)
            .map_err(|e| AppError::Usage(format!("the parent's answer is not signed by its key {parent_log_key}: {e}")))?;
        if cp.origin != down.origin {
            return Err(AppError::Usage(format!("the parent's checkpoint is of {}, not of {}", cp.origin, down.origin)));
        }
        let site = Badge::parse(qm_core::incidents::SITE_ACTOR).map_err(|e| AppError::Internal(e.to_string()))?;
        let mut reqs = vec![];
        for e in &down.entries {
            let proof: Vec<qm_ledger::Hash> = e.proof.iter().map(|h| crate::parse_hash(h)).collect::<Result<_>>()?;
            let leaf = qm_ledger::leaf_hash(e.entry.as_bytes());
            qm_ledger::check_inclusion(&proof, cp.size, &cp.root, e.seq, &leaf).map_err(|err| {
                AppError::Usage(format!("entry {} of {} is not in its checkpoint of size {}: {err}", e.seq, cp.origin, cp.size))
            })?;
            let command = Command::ReceiveFromParent {
                origin: cp.origin.clone(),
                seq: e.seq,
                entry: e.entry.clone(),
                proof: e.proof.clone(),
                checkpoint: down.checkpoint.clone(),
            };
            reqs.push(Request::new(site.clone(), command, format!("down-{}-{}", cp.origin, e.seq), now));
        }
        let mut recorded = 0;
        for r in self.execute_batch(reqs) {
            match r {
                Ok(o) if !o.replayed => recorded += 1,
                Ok(_) => {}
                Err(AppError::Rejected(qm_core::Rejection::Refused { rule: "parent.received", .. })) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(recorded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_reads_back_as_written_and_nothing_else_reads() {
        let at = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        assert_eq!(parse_request(&request_text("d11.example", Some(41), at)), Some(("d11.example".into(), Some(41), 1_800_000_000)));
        assert_eq!(parse_request(&request_text("d11.example", None, at)), Some(("d11.example".into(), None, 1_800_000_000)));
        assert_eq!(parse_request("qm-down/v2\nx\n-\n1\n"), None);
        assert_eq!(parse_request("qm-down/v1\nx\nforty\n1\n"), None);
    }
}
