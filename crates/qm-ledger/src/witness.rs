//! A parent site as the witness of its children's ledgers: cosignatures in the C2SP
//! tlog-cosignature format (`cosignature/v1`, Ed25519, timestamped) and the checks of a C2SP
//! tlog-witness `add-checkpoint` request, as pure functions (the caller keeps the latest checkpoint
//! it cosigned per log and updates it atomically).
//!
//! Note parsing, signature lines and key IDs come from `signed_note`; the witness's key is a
//! [`SiteKey`] of its own (never the site's checkpoint key: tlog-cosignature asks a distinct key per
//! cosigner), presented with the cosignature algorithm byte 0x04.

use base64::prelude::{Engine, BASE64_STANDARD};
use ed25519_dalek::{Signer as _, Verifier as _, VerifyingKey};
use signed_note::{Note, Signature, VerifierList};

use crate::{check_consistency, empty_root, Checkpoint, CheckpointVerifier, Hash, LedgerError, SiteKey};

/// The signed-note key algorithm byte of Ed25519 `cosignature/v1` keys.
const ALG_COSIGNATURE_V1: u8 = 0x04;
/// tlog-witness: a client sends at most 63 proof lines.
const PROOF_LINES_MAX: usize = 63;

/// The message a `cosignature/v1` signs: the header line, the time line, the checkpoint's body.
fn cosigned_message(body: &[u8], time: u64) -> Vec<u8> {
    let mut m = format!("cosignature/v1\ntime {time}\n").into_bytes();
    m.extend_from_slice(body);
    m
}

fn cosigner_public(key: &VerifyingKey) -> Vec<u8> {
    let mut out = vec![ALG_COSIGNATURE_V1];
    out.extend_from_slice(key.as_bytes());
    out
}

/// The witness's verifier key as its children are configured with it:
/// `<name>+<8 hex key ID>+<base64(0x04 || Ed25519 public key)>`.
pub fn cosigner_verifier_key(key: &SiteKey) -> String {
    let public = cosigner_public(&key.verifying_key());
    format!("{}+{:08x}+{}", key.name(), signed_note::key_id(key.name(), &public), BASE64_STANDARD.encode(&public))
}

/// Cosigns a signed checkpoint note at `time` (POSIX seconds): the note signature line, `— <name>
/// <base64(key ID || timestamp || signature)>` and a newline, as a witness answers add-checkpoint.
pub fn cosign(key: &SiteKey, note: &str, time: u64) -> Result<String, LedgerError> {
    let parsed = Note::from_bytes(note.as_bytes()).map_err(|e| LedgerError::Note(e.to_string()))?;
    if time > i64::MAX as u64 {
        return Err(LedgerError::InvalidInput("a cosignature's time may not exceed 2^63 - 1".into()));
    }
    let signature = key.signing_key().sign(&cosigned_message(parsed.text(), time));
    let mut sig = time.to_be_bytes().to_vec();
    sig.extend_from_slice(&signature.to_bytes());
    let public = cosigner_public(&key.verifying_key());
    let line = Signature::new(key.name().to_owned(), signed_note::key_id(key.name(), &public), sig)
        .map_err(|e| LedgerError::Note(e.to_string()))?;
    String::from_utf8(line.to_bytes()).map_err(|_| LedgerError::Note("signature line is not UTF-8".into()))
}

/// Checks `cosignature/v1` signatures by one witness key, for `signed_note::Note::verify`.
pub struct CosignatureVerifier {
    name: String,
    id: u32,
    key: VerifyingKey,
}

impl CosignatureVerifier {
    /// From the witness's verifier key (see [`cosigner_verifier_key`]).
    pub fn new(vkey: &str) -> Result<Self, LedgerError> {
        let bad = |why: &str| LedgerError::MalformedVerifierKey(format!("{why} (a witness key is name+id+base64(0x04||key))"));
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("not three parts"));
        };
        let raw = BASE64_STANDARD.decode(key).map_err(|_| bad("the key is not base64"))?;
        let (Some(&ALG_COSIGNATURE_V1), Ok(public)) = (raw.first(), <[u8; 32]>::try_from(&raw[1.min(raw.len())..])) else {
            return Err(bad("not an Ed25519 cosignature/v1 key"));
        };
        let id = u32::from_str_radix(id, 16).map_err(|_| bad("the key ID is not hex"))?;
        if !signed_note::is_key_name_valid(name) || signed_note::key_id(name, &raw) != id {
            return Err(bad("the name or key ID does not match the key"));
        }
        let key = VerifyingKey::from_bytes(&public).map_err(|_| bad("not an Ed25519 public key"))?;
        Ok(Self { name: name.to_owned(), id, key })
    }

    /// The time a cosignature by this key over `body` states, if the signature is valid.
    pub fn time_of(&self, body: &[u8], sig: &[u8]) -> Option<u64> {
        let (time, signature) = sig.split_first_chunk::<8>()?;
        let time = u64::from_be_bytes(*time);
        let signature = ed25519_dalek::Signature::from_slice(signature).ok()?;
        (time <= i64::MAX as u64 && self.key.verify(&cosigned_message(body, time), &signature).is_ok()).then_some(time)
    }
}

impl signed_note::Verifier for CosignatureVerifier {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        self.id
    }

    fn verify(&self, msg: &[u8], sig: &[u8]) -> bool {
        self.time_of(msg, sig).is_some()
    }
}

/// Opens a checkpoint carrying the log's signature and the witness's cosignature: the checkpoint
/// and the time the witness cosigned it. Both signatures must verify.
pub fn open_cosigned(note: &str, log: &CheckpointVerifier, witness_vkey: &str) -> Result<(Checkpoint, u64), LedgerError> {
    let cp = log.open(note)?;
    let parsed = Note::from_bytes(note.as_bytes()).map_err(|e| LedgerError::Note(e.to_string()))?;
    // Through signed_note's own verification, as any client of the note does.
    let (verified, _) = parsed
        .verify(&VerifierList::new(vec![Box::new(CosignatureVerifier::new(witness_vkey)?)]))
        .map_err(|e| LedgerError::Note(format!("no valid cosignature by the witness's key: {e}")))?;
    let witness = CosignatureVerifier::new(witness_vkey)?;
    let time = verified
        .iter()
        .find_map(|s| witness.time_of(parsed.text(), s.signature()))
        .ok_or_else(|| LedgerError::Note(format!("no valid cosignature by {}", witness.name)))?;
    Ok((cp, time))
}

/// A tlog-witness `add-checkpoint` request: the size the client believes the witness holds, a
/// consistency proof from it, and the signed checkpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddCheckpoint {
    pub old: u64,
    pub proof: Vec<Hash>,
    pub note: String,
}

/// The text shape C2SP's proof-carrying messages share (tlog-witness requests, tlog-proof):
/// `head` lines, one base64 hash per line, an empty line, the checkpoint note.
pub(crate) fn hashes_then_note(head: &str, hashes: &[Hash], note: &str) -> String {
    let mut out = head.to_owned();
    for h in hashes {
        out.push_str(&BASE64_STANDARD.encode(h));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(note);
    out
}

/// The hash lines of such a message, each a base64 SHA-256 hash; the first line that is not, named.
pub(crate) fn parse_hash_lines<'a>(lines: impl Iterator<Item = &'a str>) -> Result<Vec<Hash>, String> {
    lines
        .map(|l| {
            BASE64_STANDARD
                .decode(l)
                .ok()
                .and_then(|h| <Hash>::try_from(h).ok())
                .ok_or_else(|| format!("line {l:?} is not a base64 SHA-256 hash"))
        })
        .collect()
}

impl AddCheckpoint {
    /// The request body: `old N`, one base64 hash per line, an empty line, the checkpoint.
    pub fn body(&self) -> String {
        hashes_then_note(&format!("old {}\n", self.old), &self.proof, &self.note)
    }

    /// Parses a request body; a malformed one is a 400.
    pub fn parse(body: &str) -> Result<Self, Refusal> {
        let bad = |why: String| Refusal::BadRequest(why);
        let (head, note) = body.split_once("\n\n").ok_or_else(|| bad("no empty line before the checkpoint".into()))?;
        let mut lines = head.split('\n');
        let old = lines
            .next()
            .and_then(|l| l.strip_prefix("old "))
            .filter(|n| *n == "0" || (!n.starts_with('0') && n.bytes().all(|b| b.is_ascii_digit())))
            .and_then(|n| n.parse::<u64>().ok())
            .ok_or_else(|| bad("the first line must be `old <size>`".into()))?;
        let proof = parse_hash_lines(lines).map_err(|e| bad(format!("proof {e}")))?;
        if proof.len() > PROOF_LINES_MAX {
            return Err(bad(format!("{} proof lines; at most {PROOF_LINES_MAX}", proof.len())));
        }
        Ok(Self { old, proof, note: note.to_owned() })
    }
}

/// Why a witness does not cosign, with the HTTP status tlog-witness gives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 400: malformed, or the old size is above the checkpoint's.
    BadRequest(String),
    /// 403: no valid signature by the log's key.
    Forbidden(String),
    /// 404: the witness does not know the log.
    UnknownLog(String),
    /// 409: the witness holds another size for the log (the body says which).
    Conflict { latest: u64 },
    /// 422: the checkpoint is not consistent with the one cosigned before (or the proof is wrong).
    Inconsistent(String),
}

impl Refusal {
    pub fn status(&self) -> u16 {
        match self {
            Refusal::BadRequest(_) => 400,
            Refusal::Forbidden(_) => 403,
            Refusal::UnknownLog(_) => 404,
            Refusal::Conflict { .. } => 409,
            Refusal::Inconsistent(_) => 422,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::BadRequest(m) | Refusal::Forbidden(m) | Refusal::UnknownLog(m) | Refusal::Inconsistent(m) => f.write_str(m),
            Refusal::Conflict { latest } => write!(f, "the witness holds size {latest} for this log"),
        }
    }
}

/// The latest checkpoint a witness cosigned for a log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Witnessed {
    pub size: u64,
    pub root: Hash,
    /// The signed note as the log sent it (kept as evidence if a later one contradicts it).
    pub note: String,
}

/// The origin a checkpoint note names (its first line), before anything is verified: the witness
/// looks the log's key up by it.
pub fn origin_of(note: &str) -> Result<&str, Refusal> {
    note.split_once('\n')
        .map(|(o, _)| o)
        .filter(|o| !o.is_empty())
        .ok_or_else(|| Refusal::BadRequest("the checkpoint has no origin line".into()))
}

/// The tlog-witness checks of a request against the log's key and the latest checkpoint cosigned
/// for it: the checkpoint to cosign and record, or why not.
pub fn check_add_checkpoint(req: &AddCheckpoint, log: &CheckpointVerifier, latest: Option<&Witnessed>) -> Result<Checkpoint, Refusal> {
    let cp = log.open(&req.note).map_err(|e| Refusal::Forbidden(format!("no valid signature by the log's key: {e}")))?;
    if req.old > cp.size {
        return Err(Refusal::BadRequest(format!("old size {} is above the checkpoint's size {}", req.old, cp.size)));
    }
    let held = latest.map_or(0, |w| w.size);
    if req.old != held {
        return Err(Refusal::Conflict { latest: held });
    }
    if cp.size == 0 && cp.root != empty_root() {
        return Err(Refusal::Inconsistent("a checkpoint of size 0 must have the empty tree's root".into()));
    }
    match latest {
        None if !req.proof.is_empty() => Err(Refusal::Inconsistent("from size 0 the proof must be empty".into())),
        None => Ok(cp),
        Some(w) if w.size == cp.size && w.root != cp.root => Err(Refusal::Inconsistent(format!(
            "the checkpoint of size {} is not consistent with the one cosigned before: that had root {}, this one has root {}",
            cp.size,
            BASE64_STANDARD.encode(w.root),
            BASE64_STANDARD.encode(cp.root)
        ))),
        Some(w) if w.size == cp.size => Ok(cp),
        Some(w) => check_consistency(&req.proof, w.size, &w.root, cp.size, &cp.root).map(|()| cp).map_err(|_| {
            Refusal::Inconsistent(format!("the checkpoint of size {} is not consistent with size {} cosigned before", req.old, w.size))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{sign_checkpoint, Frontier};

    fn log(n: u64, key: &SiteKey) -> (Frontier, String) {
        let mut f = Frontier::new();
        for i in 0..n {
            f.push(crate::leaf_hash(format!("entry {i}").as_bytes()));
        }
        let note = sign_checkpoint(key, &Checkpoint { origin: key.name().into(), size: n, root: f.root() }).unwrap();
        (f, note)
    }

    #[test]
    fn the_cosigned_message_and_key_id_follow_tlog_cosignature() {
        let witness = SiteKey::generate("witness.example/w1");
        let site = SiteKey::generate("d11.example");
        let (_, note) = log(3, &site);
        let line = cosign(&witness, &note, 1_679_315_147).unwrap();
        let raw = BASE64_STANDARD.decode(line.trim_end().rsplit(' ').next().unwrap()).unwrap();
        // key ID = SHA-256(name || "\n" || 0x04 || public key)[:4], then the big-endian time, then 64 bytes.
        let mut public = vec![0x04];
        public.extend_from_slice(witness.verifying_key().as_bytes());
        let id = sha2::Sha256::digest([b"witness.example/w1\n".as_slice(), &public].concat());
        use sha2::Digest;
        assert_eq!(raw[..4], id[..4]);
        assert_eq!(u64::from_be_bytes(raw[4..12].try_into().unwrap()), 1_679_315_147);
        assert_eq!(raw.len(), 4 + 8 + 64);
        let body = note.split_once("\n\n").unwrap().0.to_string() + "\n";
        let message = format!("cosignature/v1\ntime 1679315147\n{body}");
        let sig = ed25519_dalek::Signature::from_slice(&raw[12..]).unwrap();
        witness.verifying_key().verify(message.as_bytes(), &sig).unwrap();
        let (cp, time) = open_cosigned(
            &(note.clone() + &line),
            &CheckpointVerifier::new(&site.verifier_key()).unwrap(),
            &cosigner_verifier_key(&witness),
        )
        .unwrap();
        assert_eq!((cp.size, time), (3, 1_679_315_147));
        // Another witness's key does not open it.
        let other = SiteKey::generate("witness.example/w1");
        assert!(open_cosigned(&(note + &line), &CheckpointVerifier::new(&site.verifier_key()).unwrap(), &cosigner_verifier_key(&other))
            .is_err());
    }

    #[test]
    fn a_witness_cosigns_only_what_extends_what_it_cosigned_before() {
        let site = SiteKey::generate("d11.example");
        let verifier = CheckpointVerifier::new(&site.verifier_key()).unwrap();
        let (f4, note4) = log(4, &site);
        let first = AddCheckpoint { old: 0, proof: vec![], note: note4.clone() };
        assert_eq!(AddCheckpoint::parse(&first.body()).unwrap(), first);
        let cp = check_add_checkpoint(&first, &verifier, None).unwrap();
        let held = Witnessed { size: cp.size, root: cp.root, note: note4.clone() };
        // Grown honestly: the proof from 4 to 7 verifies.
        let (_, note7) = log(7, &site);
        // Every stored hash in storage order, as the site's store keeps them.
        let mut all = Frontier::new();
        let stored: Vec<Hash> = (0..7u64).flat_map(|i| all.push(crate::leaf_hash(format!("entry {i}").as_bytes()))).collect();
        struct R(Vec<Hash>);
        impl crate::HashReader for R {
            fn read_hashes(&self, idx: &[u64]) -> Result<Vec<Hash>, LedgerError> {
                Ok(idx.iter().map(|i| self.0[*i as usize]).collect())
            }
        }
        let proof = crate::prove_consistency(4, 7, &R(stored)).unwrap();
        let grown = AddCheckpoint { old: 4, proof: proof.clone(), note: note7.clone() };
        assert_eq!(check_add_checkpoint(&grown, &verifier, Some(&held)).unwrap().size, 7);
        // A stale old size: 409 with the size held.
        let stale = AddCheckpoint { old: 2, ..grown.clone() };
        assert_eq!(check_add_checkpoint(&stale, &verifier, Some(&held)), Err(Refusal::Conflict { latest: 4 }));
        // A rewritten history signed with the same key: size 4 with another root, or 7 not extending 4.
        let mut forged = Frontier::new();
        for i in 0..7u64 {
            forged.push(crate::leaf_hash(format!("rewritten {i}").as_bytes()));
        }
        let note = sign_checkpoint(&site, &Checkpoint { origin: site.name().into(), size: 7, root: forged.root() }).unwrap();
        let r = check_add_checkpoint(&AddCheckpoint { old: 4, proof, note }, &verifier, Some(&held));
        assert_eq!(r.as_ref().map_err(Refusal::status), Err(422));
        let same = sign_checkpoint(&site, &Checkpoint { origin: site.name().into(), size: 4, root: forged.root() }).unwrap();
        let r = check_add_checkpoint(&AddCheckpoint { old: 4, proof: vec![], note: same }, &verifier, Some(&held));
        assert_eq!(r.map_err(|e| e.status()), Err(422));
        // Someone else's key: 403. Old above new: 400. A malformed body: 400.
        let intruder = SiteKey::generate("d11.example");
        let (_, theirs) = log(8, &intruder);
        let r = check_add_checkpoint(&AddCheckpoint { old: 4, proof: vec![], note: theirs }, &verifier, Some(&held));
        assert_eq!(r.map_err(|e| e.status()), Err(403));
        let r = check_add_checkpoint(&AddCheckpoint { old: 9, proof: vec![], note: note7 }, &verifier, Some(&held));
        assert_eq!(r.map_err(|e| e.status()), Err(400));
        assert_eq!(AddCheckpoint::parse("old 04\n\nx").map_err(|e| e.status()), Err(400));
        assert_eq!(f4.size(), 4);
    }
}
