//! C2SP tlog-proof: one entry's offline-verifiable proof of inclusion, with the checkpoint it is
//! included in and the witnesses' cosignatures of that checkpoint.

use base64::prelude::{Engine, BASE64_STANDARD};

use crate::{check_inclusion, leaf_hash, Checkpoint, CheckpointVerifier, Hash, LedgerError};

const HEADER: &str = "c2sp.org/tlog-proof@v1";

/// A parsed tlog-proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlogProof {
    /// Opaque data (here: the entry's canonical bytes, so the file alone says what is proved).
    pub extra: Option<Vec<u8>>,
    pub index: u64,
    pub proof: Vec<Hash>,
    /// The checkpoint note, with its signatures and cosignatures.
    pub note: String,
}

impl TlogProof {
    /// The text form: header, optional `extra`, `index`, one base64 hash per line, an empty line,
    /// the checkpoint.
    pub fn text(&self) -> String {
        let mut head = format!("{HEADER}\n");
        if let Some(e) = &self.extra {
            head.push_str(&format!("extra {}\n", BASE64_STANDARD.encode(e)));
        }
        head.push_str(&format!("index {}\n", self.index));
        crate::witness::hashes_then_note(&head, &self.proof, &self.note)
    }

    pub fn parse(text: &str) -> Result<TlogProof, LedgerError> {
        let bad = |why: &str| LedgerError::InvalidInput(format!("not a tlog-proof: {why}"));
        let (head, note) = text.split_once("\n\n").ok_or_else(|| bad("no empty line before the checkpoint"))?;
        let mut lines = head.split('\n').peekable();
        if lines.next() != Some(HEADER) {
            return Err(bad("the first line must be c2sp.org/tlog-proof@v1"));
        }
        let extra = match lines.peek().and_then(|l| l.strip_prefix("extra ")) {
            Some(e) => {
                let e = BASE64_STANDARD.decode(e).map_err(|_| bad("extra is not base64"))?;
                lines.next();
                Some(e)
            }
            None => None,
        };
        let index = lines
            .next()
            .and_then(|l| l.strip_prefix("index "))
            .filter(|n| *n == "0" || !n.starts_with('0'))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| bad("no `index N` line"))?;
        let proof = crate::witness::parse_hash_lines(lines).map_err(|e| LedgerError::InvalidInput(format!("not a tlog-proof: {e}")))?;
        Ok(TlogProof { extra, index, proof, note: note.to_owned() })
    }

    /// Checks the proof for `entry` (the logged bytes): the checkpoint signed by the log's key, a
    /// valid cosignature by each of `witnesses`, and the inclusion proof against its root.
    pub fn verify(&self, entry: &[u8], log: &CheckpointVerifier, witnesses: &[&str]) -> Result<Checkpoint, LedgerError> {
        let cp = log.open(&self.note)?;
        for w in witnesses {
            crate::witness::open_cosigned(&self.note, log, w)?;
        }
        check_inclusion(&self.proof, cp.size, &cp.root, self.index, &leaf_hash(entry))?;
        Ok(cp)
    }
}
