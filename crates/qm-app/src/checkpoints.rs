//! Checkpoints and proofs: signing the tree head, reading entries back, inclusion and consistency proofs.

use crate::*;

impl Site {
    /// Signs a checkpoint of the whole (durable) tree with the site key and stores it.
    pub fn checkpoint(&mut self) -> Result<String> {
        self.checkpoint_at(self.frontier.size(), self.frontier.root())
    }

    /// Signs a checkpoint of the tree at a size already durable, without storing it.
    pub(crate) fn sign(&self, size: u64, root: qm_ledger::Hash) -> Result<StoredCheckpoint> {
        let Some(key) = &self.key else {
            return Err(AppError::Usage("the site's signing key is not available here; give --key".into()));
        };
        let note = sign_checkpoint(key, &Checkpoint { origin: self.site_name(), size, root })?;
        Ok(StoredCheckpoint { size, note })
    }

    /// Signs a checkpoint of the tree at a size already durable.
    pub(crate) fn checkpoint_at(&mut self, size: u64, root: qm_ledger::Hash) -> Result<String> {
        let Some(key) = &self.key else {
            return Err(AppError::Usage("the site's signing key is not available here; give --key".into()));
        };
        let cp = Checkpoint { origin: self.site_name(), size, root };
        let note = sign_checkpoint(key, &cp)?;
        self.store.add_checkpoint(&StoredCheckpoint { size: cp.size, note: note.clone() })?;
        Ok(note)
    }

    /// Checkpoints only if the key is here and the tree grew since the last one.
    pub fn checkpoint_if_grown(&mut self) -> Result<Option<String>> {
        if self.key.is_none() {
            return Ok(None);
        }
        let last = self.store.checkpoints()?.last().map(|c| c.size).unwrap_or(0);
        if last == self.frontier.size() {
            return Ok(None);
        }
        self.checkpoint().map(Some)
    }

    pub fn read_envelopes(&self, first: u64, last: u64) -> Result<Vec<Envelope>> {
        // Nothing past the end of the ledger is read, whatever number was asked for (2^63 is not entry 0).
        let end = last.saturating_add(1).min(self.size());
        if first >= end {
            return Ok(vec![]);
        }
        let n = usize::try_from(end - first).unwrap_or(usize::MAX);
        self.store
            .read_entries(first, n)?
            .into_iter()
            .map(|e| decode(&e.bytes).map_err(|m| AppError::Store(StoreError::Damaged(format!("entry {}: {m}", e.seq)))))
            .collect()
    }

    /// Calls `f` with every entry of the ledger, decoded, oldest first, streaming from the store
    /// without copies (for reports that must see all of history). Stops at the first error.
    pub fn for_each_envelope(&self, f: &mut dyn FnMut(Envelope) -> Result<()>) -> Result<()> {
        let mut failure = None;
        self.store.scan_entries(0, &mut |seq, _, bytes, _| {
            let r = decode(bytes).map_err(|m| AppError::Internal(format!("entry {seq}: {m}"))).and_then(&mut *f);
            match r {
                Ok(()) => true,
                Err(e) => {
                    failure = Some(e);
                    false
                }
            }
        })?;
        failure.map_or(Ok(()), Err)
    }

    pub fn envelope(&self, seq: u64) -> Result<Envelope> {
        self.read_envelopes(seq, seq)?
            .into_iter()
            .next()
            .ok_or_else(|| AppError::Rejected(Rejection::NotFound { what: "entry", id: seq.to_string() }))
    }

    /// An inclusion proof of entry `seq` against the latest checkpoint.
    pub fn prove(&self, seq: u64) -> Result<query::InclusionProof> {
        if seq >= self.size() {
            return Err(AppError::Rejected(Rejection::NotFound { what: "entry", id: seq.to_string() }));
        }
        let cps = self.store.checkpoints()?;
        let Some(cp) = cps.last() else {
            return Err(AppError::Usage("no checkpoint yet; run `qm checkpoint`".into()));
        };
        if seq >= cp.size {
            return Err(AppError::Usage(format!(
                "entry {seq} is not covered by the latest checkpoint (size {}); run `qm checkpoint` first",
                cp.size
            )));
        }
        let entry = self
            .store
            .read_entries(seq, 1)?
            .into_iter()
            .next()
            .ok_or_else(|| AppError::Rejected(Rejection::NotFound { what: "entry", id: seq.to_string() }))?;
        let leaf = leaf_hash(&entry.bytes);
        let reader = StoreHashes(self.store.as_ref());
        let proof = qm_ledger::prove_inclusion(seq, cp.size, &reader)?;
        let verifier = self.state.site.as_ref().map(|s| s.verifier_key.clone()).unwrap_or_default();
        let opened = qm_ledger::open_checkpoint(&cp.note, &verifier)?;
        qm_ledger::check_inclusion(&proof, cp.size, &opened.root, seq, &leaf)?;
        Ok(query::InclusionProof {
            seq,
            tree_size: cp.size,
            leaf_hash: hex(&leaf),
            proof: proof.iter().map(|h| hex(h)).collect(),
            checkpoint: cp.note.clone(),
            entry: String::from_utf8_lossy(&entry.bytes).into_owned(),
        })
    }

    /// A consistency proof between two tree sizes, each of which must have a stored checkpoint.
    pub fn prove_consistency(&self, old: u64, new: u64) -> Result<query::ConsistencyProof> {
        if old > new {
            return Err(AppError::Usage(format!("a consistency proof runs from the older size to the newer: {old} is more than {new}")));
        }
        let cps = self.store.checkpoints()?;
        let find = |n: u64| {
            cps.iter()
                .find(|c| c.size == n)
                .cloned()
                .ok_or_else(|| AppError::Usage(format!("no checkpoint of size {n}; `qm checkpoints` lists them")))
        };
        let (a, b) = (find(old)?, find(new)?);
        let verifier = self.state.site.as_ref().map(|s| s.verifier_key.clone()).unwrap_or_default();
        let (ca, cb) = (qm_ledger::open_checkpoint(&a.note, &verifier)?, qm_ledger::open_checkpoint(&b.note, &verifier)?);
        let reader = StoreHashes(self.store.as_ref());
        let proof = qm_ledger::prove_consistency(old, new, &reader)?;
        qm_ledger::check_consistency(&proof, old, &ca.root, new, &cb.root)?;
        Ok(query::ConsistencyProof {
            old_size: old,
            new_size: new,
            proof: proof.iter().map(|h| hex(h)).collect(),
            old_checkpoint: a.note,
            new_checkpoint: b.note,
        })
    }
}
