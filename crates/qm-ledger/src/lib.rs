//! Quartermaster's tamper-evident ledger core: RFC 9162 Merkle tree maths, proofs, and signed C2SP checkpoints.
//!
//! Tree maths and proofs delegate to `tlog_tiles` (a port of Go's `golang.org/x/mod/sumdb/tlog`);
//! signed notes delegate to `signed_note` (a port of Go's `note` package). This crate adapts them to
//! plain `[u8; 32]` hashes and a single error type so the rest of the workspace need not know about them.
#![deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod canonical;
mod checkpoint;
pub mod mirror;
pub mod proof;
pub mod subtree;
mod tree;
pub mod witness;

pub use checkpoint::{open_checkpoint, open_note, sign_checkpoint, sign_note, Checkpoint, CheckpointVerifier, SiteKey};
/// Tile paths as tlog_tiles parses them (`tile/H/L/N[.p/W]`, `data` for entries).
pub use tlog_tiles::Tile;
pub use tree::{
    check_consistency, check_inclusion, empty_root, leaf_hash, locate_stored_hash, node_hash, prove_consistency, prove_inclusion,
    stored_hash_index, tree_root, Frontier, HashReader, MemTree,
};
pub use tree::{hash_tile, tile_width, TILE_HEIGHT};

/// A SHA-256 digest: a leaf hash, an interior node hash, or a tree root.
pub type Hash = [u8; 32];

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The storage behind a [`HashReader`] failed or returned the wrong number of hashes.
    #[error("hash store read failed: {0}")]
    HashStore(String),
    /// A caller asked for something outside the tree (e.g. index >= size, old size > new size).
    #[error("invalid request: {0}")]
    InvalidInput(String),
    /// A Merkle proof did not verify against the given root(s).
    #[error("Merkle proof does not verify")]
    InvalidProof,
    /// The tree maths library reported an error we have no better name for.
    #[error("tree computation failed: {0}")]
    Tree(String),
    /// Filesystem error while reading or writing a key file.
    #[error("key file {path}: {source}")]
    KeyIo {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// `SiteKey::write_new` never overwrites an existing key.
    #[error("key file {0} already exists; refusing to overwrite it")]
    KeyFileExists(std::path::PathBuf),
    /// A secret key file that others can read is treated as compromised-by-configuration.
    #[error("key file {path} is accessible by group or others (mode {mode:03o}); run `chmod 600` on it")]
    KeyFilePermissions { path: std::path::PathBuf, mode: u32 },
    /// The key file or key name is not a valid signed-note Ed25519 signer key.
    #[error("malformed signing key: {0}")]
    MalformedKey(String),
    /// The verifier key string is not a valid signed-note Ed25519 verifier key.
    #[error("malformed verifier key: {0}")]
    MalformedVerifierKey(String),
    /// The checkpoint body is not a C2SP tlog-checkpoint we accept.
    #[error("malformed checkpoint: {0}")]
    MalformedCheckpoint(String),
    /// Signing failed or the signed note is malformed or not signed by the expected key.
    #[error("signed note: {0}")]
    Note(String),
}
