//! Site signing keys and signed checkpoints (C2SP tlog-checkpoint bodies in C2SP signed notes).
//!
//! Note parsing, signature lines, key IDs and verifier keys come from `signed_note`; checkpoint
//! body formatting and parsing come from `tlog_tiles::Checkpoint`. Signatures are Ed25519 via
//! `ed25519-dalek`.

use std::fmt;
use std::io::{Read, Write};
use std::path::Path;

use base64::prelude::{Engine, BASE64_STANDARD};
use ed25519_dalek::{Signer as _, SigningKey};
use signed_note::{Note, StandardVerifier, VerifierList};

use crate::{Hash, LedgerError};

/// signed-note algorithm byte for Ed25519 keys.
const ALG_ED25519: u8 = 0x01;

/// Site signing key (Ed25519) with the key name used in note signature lines.
///
/// On disk it is the Go/C2SP signer key string `PRIVATE+KEY+<name>+<keyhash>+<base64(0x01||seed)>`,
/// so it can be used with other signed-note tooling.
pub struct SiteKey {
    name: String,
    signing: SigningKey,
}

impl fmt::Debug for SiteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the secret: logs and panic messages end up in places keys must not.
        f.debug_struct("SiteKey")
            .field("name", &self.name)
            .field("verifier_key", &self.verifier_key())
            .field("secret", &"<redacted>")
            .finish()
    }
}

impl SiteKey {
    /// A fresh key from the OS RNG. `name` is the key name in note signature lines (e.g. the site's
    /// origin); it must be non-empty without spaces or '+', or signing will fail.
    pub fn generate(name: &str) -> Self {
        let signing = SigningKey::generate(&mut rand_core::OsRng);
        Self { name: name.to_owned(), signing }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing
    }

    pub fn verifying_key(&self) -> ed25519_dalek::VerifyingKey {
        self.signing.verifying_key()
    }

    /// signed-note encoded public key: 0x01 || Ed25519 public key.
    fn encoded_public(&self) -> Vec<u8> {
        let mut out = vec![ALG_ED25519];
        out.extend_from_slice(self.signing.verifying_key().as_bytes());
        out
    }

    fn key_id(&self) -> u32 {
        signed_note::key_id(&self.name, &self.encoded_public())
    }

    /// The signed-note verifier key string `<name>+<8 hex keyhash>+<base64(0x01||pubkey)>`.
    pub fn verifier_key(&self) -> String {
        signed_note::new_ed25519_verifier_key(&self.name, &self.signing.verifying_key())
    }

    fn signer_key_string(&self) -> String {
        let mut secret = vec![ALG_ED25519];
        secret.extend_from_slice(self.signing.as_bytes());
        format!("PRIVATE+KEY+{}+{:08x}+{}", self.name, self.key_id(), BASE64_STANDARD.encode(&secret))
    }

    /// Writes the key to `path`, creating it with mode 0600. Refuses if the file already exists.
    pub fn write_new(&self, path: &Path) -> Result<(), LedgerError> {
        if !signed_note::is_key_name_valid(&self.name) {
            return Err(LedgerError::MalformedKey(format!("key name {:?} must be non-empty with no spaces or '+'", self.name)));
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // Set at creation so the secret is never briefly world-readable.
            opts.mode(0o600);
        }
        let mut file = opts.open(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                LedgerError::KeyFileExists(path.to_owned())
            } else {
                LedgerError::KeyIo { path: path.to_owned(), source }
            }
        })?;
        let io_err = |source| LedgerError::KeyIo { path: path.to_owned(), source };
        file.write_all(format!("{}\n", self.signer_key_string()).as_bytes()).map_err(io_err)?;
        file.sync_all().map_err(io_err)
    }

    /// Reads a key written by [`SiteKey::write_new`]. Refuses a file readable or writable by group
    /// or others (mode & 0o077 != 0).
    pub fn read(path: &Path) -> Result<Self, LedgerError> {
        let io_err = |source| LedgerError::KeyIo { path: path.to_owned(), source };
        let mut file = std::fs::File::open(path).map_err(io_err)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            // Check the opened handle, not the path, so the file cannot be swapped in between.
            let mode = file.metadata().map_err(io_err)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(LedgerError::KeyFilePermissions { path: path.to_owned(), mode });
            }
        }
        let mut text = String::new();
        file.read_to_string(&mut text).map_err(io_err)?;
        Self::parse_signer_key(text.trim_end_matches(['\n', '\r']))
    }

    /// Parses `PRIVATE+KEY+<name>+<id>+<base64(0x01||seed)>`, checking the key ID against the
    /// derived public key as Go's `note.NewSigner` does.
    fn parse_signer_key(s: &str) -> Result<Self, LedgerError> {
        let bad = |why: &str| LedgerError::MalformedKey(why.to_owned());
        let rest = s.strip_prefix("PRIVATE+KEY+").ok_or_else(|| bad("missing PRIVATE+KEY+ prefix"))?;
        let (name, rest) = rest.split_once('+').ok_or_else(|| bad("missing key name"))?;
        let (id_hex, key_b64) = rest.split_once('+').ok_or_else(|| bad("missing key id"))?;
        if !signed_note::is_key_name_valid(name) {
            return Err(bad("invalid key name"));
        }
        if id_hex.len() != 8 {
            return Err(bad("key id must be 8 hex digits"));
        }
        let id = u32::from_str_radix(id_hex, 16).map_err(|_| bad("key id is not hex"))?;
        let raw = BASE64_STANDARD.decode(key_b64).map_err(|_| bad("key is not base64"))?;
        let Some((&alg, seed)) = raw.split_first() else {
            return Err(bad("empty key"));
        };
        if alg != ALG_ED25519 {
            return Err(bad("not an Ed25519 key"));
        }
        let seed: &[u8; 32] = seed.try_into().map_err(|_| bad("Ed25519 seed must be 32 bytes"))?;
        let key = Self { name: name.to_owned(), signing: SigningKey::from_bytes(seed) };
        if key.key_id() != id {
            return Err(bad("key id does not match the key"));
        }
        Ok(key)
    }
}

/// Lets `signed_note::Note::add_sigs` sign with a [`SiteKey`] without re-encoding the secret.
impl signed_note::Signer for SiteKey {
    fn name(&self) -> &str {
        &self.name
    }

    fn key_id(&self) -> u32 {
        SiteKey::key_id(self)
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, ed25519_dalek::SignatureError> {
        Ok(self.signing.try_sign(msg)?.to_vec())
    }
}

/// A checkpoint body per C2SP tlog-checkpoint: `"<origin>\n<size>\n<base64 root>\n"`.
/// We write no extension lines and refuse notes that carry any.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The exact body bytes that get signed.
    pub fn body(&self) -> Result<String, LedgerError> {
        // tlog_tiles only rejects an empty origin; a control character (notably '\n') would let
        // the origin forge extra body lines, and signed notes forbid control characters anyway.
        if self.origin.chars().any(char::is_control) {
            return Err(LedgerError::MalformedCheckpoint("origin contains a control character".into()));
        }
        let cp = tlog_tiles::Checkpoint::new(&self.origin, self.size, tlog_tiles::Hash(self.root), "")
            .map_err(|_| LedgerError::MalformedCheckpoint("origin must not be empty".into()))?;
        String::from_utf8(cp.to_bytes()).map_err(|_| LedgerError::MalformedCheckpoint("body is not UTF-8".into()))
    }
}

/// Sign a checkpoint: returns the full signed note text (body, blank line, "— name base64sig" line).
pub fn sign_checkpoint(key: &SiteKey, cp: &Checkpoint) -> Result<String, LedgerError> {
    let body = cp.body()?;
    let mut note = Note::new(body.as_bytes(), &[]).map_err(|e| LedgerError::Note(e.to_string()))?;
    note.add_sigs(&[key]).map_err(|e| LedgerError::Note(e.to_string()))?;
    String::from_utf8(note.to_bytes()).map_err(|_| LedgerError::Note("note is not UTF-8".into()))
}

/// Signs any text as a signed note (a site's request of its parent, docs/sites.md): the note's text.
pub fn sign_note(key: &SiteKey, text: &str) -> Result<String, LedgerError> {
    let mut note = Note::new(text.as_bytes(), &[]).map_err(|e| LedgerError::Note(e.to_string()))?;
    note.add_sigs(&[key]).map_err(|e| LedgerError::Note(e.to_string()))?;
    String::from_utf8(note.to_bytes()).map_err(|_| LedgerError::Note("note is not UTF-8".into()))
}

/// Verifies a signed note with `verifier_key`: its text.
pub fn open_note(note: &str, verifier_key: &str) -> Result<String, LedgerError> {
    let verifier = StandardVerifier::new(verifier_key).map_err(|e| LedgerError::MalformedVerifierKey(e.to_string()))?;
    let parsed = Note::from_bytes(note.as_bytes()).map_err(|e| LedgerError::Note(e.to_string()))?;
    parsed.verify(&VerifierList::new(vec![Box::new(verifier)])).map_err(|e| LedgerError::Note(e.to_string()))?;
    String::from_utf8(parsed.text().to_vec()).map_err(|_| LedgerError::Note("note text is not UTF-8".into()))
}

/// Parse and verify a signed checkpoint note against a verifier key string; returns the checkpoint.
///
/// Signatures by other keys (e.g. witness cosignatures) are tolerated, but the note must carry a
/// valid signature by `verifier_key`.
pub fn open_checkpoint(note: &str, verifier_key: &str) -> Result<Checkpoint, LedgerError> {
    CheckpointVerifier::new(verifier_key)?.open(note)
}

/// A verifier key parsed once, for opening many checkpoints (the auditor checks every one).
pub struct CheckpointVerifier {
    verifiers: VerifierList,
}

impl CheckpointVerifier {
    pub fn new(verifier_key: &str) -> Result<Self, LedgerError> {
        let verifier = StandardVerifier::new(verifier_key).map_err(|e| LedgerError::MalformedVerifierKey(e.to_string()))?;
        Ok(Self { verifiers: VerifierList::new(vec![Box::new(verifier)]) })
    }

    /// [`open_checkpoint`] with this key.
    pub fn open(&self, note: &str) -> Result<Checkpoint, LedgerError> {
        let parsed = Note::from_bytes(note.as_bytes()).map_err(|e| LedgerError::Note(e.to_string()))?;
        parsed.verify(&self.verifiers).map_err(|e| LedgerError::Note(e.to_string()))?;
        let cp = tlog_tiles::Checkpoint::from_bytes(parsed.text())
            .map_err(|_| LedgerError::MalformedCheckpoint("body is not origin, size, base64 root lines".into()))?;
        if !cp.extension().is_empty() {
            return Err(LedgerError::MalformedCheckpoint("unexpected extension lines after the root hash".into()));
        }
        Ok(Checkpoint { origin: cp.origin().to_owned(), size: cp.size(), root: cp.hash().0 })
    }
}
