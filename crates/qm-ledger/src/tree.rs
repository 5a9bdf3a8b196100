//! Merkle tree maths for the ledger: hashing, stored-hash layout, the append frontier, and proofs.
//!
//! The maths comes from `tlog_tiles` (Go's `tlog` layout and RFC 6962/9162 proofs); this module
//! converts between its `Hash` newtype and our plain arrays and turns its panics-on-bad-storage
//! into errors by checking what our [`HashReader`] returns before handing it over.

use std::cell::RefCell;

use crate::{Hash, LedgerError};
use tlog_tiles as tlog;

/// RFC 9162 leaf hash: SHA256(0x00 || entry).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    tlog::record_hash(entry).0
}

/// RFC 9162 interior node hash: SHA256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    tlog::node_hash(tlog::Hash(*left), tlog::Hash(*right)).0
}

/// Root of the empty tree: SHA256 of the empty string (RFC 9162 section 2.1.1).
pub fn empty_root() -> Hash {
    tlog::EMPTY_HASH.0
}

/// Storage of the tree's "stored hashes" (the Go tlog layout: `StoredHashIndex(level, n)`).
///
/// Our store keeps, with each entry n, the hashes that appending entry n creates (see
/// [`Frontier::push`]), so a storage index maps to (entry n, position) via [`locate_stored_hash`].
/// Implementations must return exactly one hash per requested index, in order.
pub trait HashReader {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, LedgerError>;
}

impl<T: HashReader + ?Sized> HashReader for &T {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, LedgerError> {
        (**self).read_hashes(indexes)
    }
}

/// Storage index of the hash at `level` covering records `[n<<level, (n+1)<<level)`.
/// Same as Go's `tlog.StoredHashIndex`.
pub fn stored_hash_index(level: u8, n: u64) -> u64 {
    tlog::stored_hash_index(level, n)
}

/// Inverse of [`stored_hash_index`] in terms of appends: which entry's append created stored index
/// `idx`, and the position of that hash in the Vec that [`Frontier::push`] returned for that entry.
pub fn locate_stored_hash(idx: u64) -> (u64, usize) {
    let (level, n) = tlog::split_stored_hash_index(idx);
    // The level-L hash number n covers entries [n<<L, (n+1)<<L); it is completed by the append of
    // the last of those entries, and sits at position L (leaf first, then one parent per level).
    let entry = (n << level) | ((1u64 << level) - 1);
    (entry, usize::from(level))
}

/// The right edge of the tree: the roots of the perfect subtrees that make up a tree of `size`
/// entries (one per set bit of `size`, largest first). Enough to append in O(log n) and compute
/// the root without touching storage.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// Subtree roots from the leftmost (largest) to the rightmost (smallest).
    subtrees: Vec<Hash>,
}

impl Frontier {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of entries in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Append one entry's leaf hash; return the stored hashes this append creates, in the order
    /// Go's `tlog.StoredHashes` returns them (leaf hash first, then each completed parent, lowest
    /// level first). They belong at storage indexes `stored_hash_index(0, n)..` consecutively.
    pub fn push(&mut self, leaf: Hash) -> Vec<Hash> {
        let mut created = Vec::with_capacity(2);
        self.push_visit(leaf, |h| created.push(*h));
        created
    }

    /// [`Frontier::push`] without allocating: `visit` sees each created hash in the same order.
    pub fn push_visit(&mut self, leaf: Hash, visit: impl FnMut(&Hash)) {
        self.push_at(0, leaf, visit);
    }

    /// Appends a perfect subtree of `2^level` entries whose root is `root`, as if its entries were
    /// pushed one by one; `visit` sees `root` and then each parent completed above it. The tree's
    /// size must be a multiple of `2^level` (chunked verification appends whole aligned chunks).
    pub fn push_subtree(&mut self, level: u8, root: Hash, visit: impl FnMut(&Hash)) -> Result<(), LedgerError> {
        let width = 1u64.checked_shl(u32::from(level)).filter(|w| self.size.is_multiple_of(*w));
        if width.is_none() || level >= 63 {
            return Err(LedgerError::InvalidInput(format!("a subtree of 2^{level} entries cannot follow a tree of {} entries", self.size)));
        }
        self.push_at(level, root, visit);
        Ok(())
    }

    fn push_at(&mut self, level: u8, root: Hash, mut visit: impl FnMut(&Hash)) {
        visit(&root);
        let mut h = root;
        // Each trailing 1 bit of the old size (counted in subtrees of this level) is a perfect
        // subtree of the same height as the one we are carrying, so they merge (like binary
        // addition carrying).
        let mut n = self.size >> level;
        while n & 1 == 1 {
            let Some(left) = self.subtrees.pop() else {
                // Unreachable while size and subtrees stay in step (they are private).
                break;
            };
            h = node_hash(&left, &h);
            visit(&h);
            n >>= 1;
        }
        self.subtrees.push(h);
        self.size += 1 << level;
    }

    /// The frontier of this tree followed by the entries of `right` (a tree built on its own from
    /// the entries that come next). Every subtree of `self` must be wider than every subtree of
    /// `right`: `self.size` a multiple of the smallest power of two above `right.size`.
    pub fn joined(&self, right: &Frontier) -> Result<Frontier, LedgerError> {
        let span = right.size.checked_add(1).and_then(u64::checked_next_power_of_two);
        if right.size != 0 && !span.is_some_and(|w| self.size.is_multiple_of(w)) {
            return Err(LedgerError::InvalidInput(format!("a tree of {} entries cannot follow one of {}", right.size, self.size)));
        }
        let mut subtrees = self.subtrees.clone();
        subtrees.extend_from_slice(&right.subtrees);
        Ok(Frontier { size: self.size + right.size, subtrees })
    }

    /// Root of the current tree (RFC 9162 MTH; for size 0 it is SHA256 of the empty string).
    pub fn root(&self) -> Hash {
        let mut iter = self.subtrees.iter().rev();
        let Some(last) = iter.next() else {
            return empty_root();
        };
        // MTH splits at the largest power of two, so the tree is the left-to-right chain of the
        // perfect subtrees, combined from the right.
        iter.fold(*last, |acc, left| node_hash(left, &acc))
    }

    /// Rebuild the frontier for a tree of `size` entries with one read of at most
    /// `popcount(size) <= 64` stored hashes.
    pub fn load(size: u64, reader: &impl HashReader) -> Result<Self, LedgerError> {
        let mut indexes = Vec::new();
        let mut start = 0u64;
        for level in (0..64u8).rev() {
            let width = 1u64 << level;
            if size & width != 0 {
                indexes.push(stored_hash_index(level, start >> level));
                start += width;
            }
        }
        let subtrees = read_exact(reader, &indexes)?;
        Ok(Self { size, subtrees })
    }
}

/// Reads and insists on one hash per index: a short read must never become a wrong root.
pub(crate) fn read_exact(reader: &impl HashReader, indexes: &[u64]) -> Result<Vec<Hash>, LedgerError> {
    if indexes.is_empty() {
        return Ok(Vec::new());
    }
    let hashes = reader.read_hashes(indexes)?;
    if hashes.len() != indexes.len() {
        return Err(LedgerError::HashStore(format!("asked for {} hashes, got {}", indexes.len(), hashes.len())));
    }
    Ok(hashes)
}

/// Presents our [`HashReader`] to `tlog_tiles`. tlog_tiles asserts (panics) if a reader returns the
/// wrong count and can only carry its own error type, so we check the count here and keep our
/// original error aside to return it unchanged.
struct Adapter<'a, R: HashReader> {
    inner: &'a R,
    failure: RefCell<Option<LedgerError>>,
}

impl<'a, R: HashReader> Adapter<'a, R> {
    fn new(inner: &'a R) -> Self {
        Self { inner, failure: RefCell::new(None) }
    }

    fn finish<T>(self, result: Result<T, tlog::Error>) -> Result<T, LedgerError> {
        if let Some(err) = self.failure.into_inner() {
            return Err(err);
        }
        result.map_err(from_tlog)
    }
}

impl<R: HashReader> tlog::HashReader for Adapter<'_, R> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog::Hash>, tlog::Error> {
        match read_exact(self.inner, indexes) {
            Ok(hashes) => Ok(hashes.into_iter().map(tlog::Hash).collect()),
            Err(err) => {
                let msg = err.to_string();
                *self.failure.borrow_mut() = Some(err);
                Err(tlog::Error::InvalidInput(msg))
            }
        }
    }
}

fn from_tlog(err: tlog::Error) -> LedgerError {
    match err {
        tlog::Error::InvalidProof => LedgerError::InvalidProof,
        tlog::Error::InvalidInput(msg) => LedgerError::InvalidInput(msg),
        other => LedgerError::Tree(other.to_string()),
    }
}

fn to_tlog(proof: &[Hash]) -> Vec<tlog::Hash> {
    proof.iter().copied().map(tlog::Hash).collect()
}

fn from_tlog_hashes(proof: Vec<tlog::Hash>) -> Vec<Hash> {
    proof.into_iter().map(|h| h.0).collect()
}

/// Root of the tree of the first `size` entries, from at most 1 + log2(size) stored hashes.
pub fn tree_root(size: u64, reader: &impl HashReader) -> Result<Hash, LedgerError> {
    let adapter = Adapter::new(reader);
    let result = tlog::tree_hash(size, &adapter);
    adapter.finish(result).map(|h| h.0)
}

/// RFC 9162 inclusion proof (audit path) for entry `index` in the tree of `size` entries.
pub fn prove_inclusion(index: u64, size: u64, reader: &impl HashReader) -> Result<Vec<Hash>, LedgerError> {
    if index >= size {
        return Err(LedgerError::InvalidInput(format!("entry index {index} is not in a tree of size {size}")));
    }
    let adapter = Adapter::new(reader);
    let result = tlog::prove_record(size, index, &adapter);
    adapter.finish(result).map(from_tlog_hashes)
}

/// RFC 9162 consistency proof that the tree of `old_size` entries is a prefix of the tree of
/// `new_size` entries. For `old_size == 0` the proof is empty (every tree extends the empty one).
pub fn prove_consistency(old_size: u64, new_size: u64, reader: &impl HashReader) -> Result<Vec<Hash>, LedgerError> {
    if old_size > new_size {
        return Err(LedgerError::InvalidInput(format!("old size {old_size} is larger than new size {new_size}")));
    }
    if old_size == 0 {
        return Ok(Vec::new());
    }
    let adapter = Adapter::new(reader);
    let result = tlog::prove_tree(new_size, old_size, &adapter);
    adapter.finish(result).map(from_tlog_hashes)
}

/// Verify that `leaf` is entry `index` of the tree of `size` entries with root `root`.
pub fn check_inclusion(proof: &[Hash], size: u64, root: &Hash, index: u64, leaf: &Hash) -> Result<(), LedgerError> {
    if index >= size {
        return Err(LedgerError::InvalidInput(format!("entry index {index} is not in a tree of size {size}")));
    }
    tlog::check_record(&to_tlog(proof), size, tlog::Hash(*root), index, tlog::Hash(*leaf)).map_err(from_tlog)
}

/// Verify that the tree (`old_size`, `old_root`) is a prefix of (`new_size`, `new_root`).
///
/// `old_size == 0` is accepted only with an empty proof and `old_root` equal to the empty-tree root,
/// matching what [`prove_consistency`] produces.
pub fn check_consistency(proof: &[Hash], old_size: u64, old_root: &Hash, new_size: u64, new_root: &Hash) -> Result<(), LedgerError> {
    if old_size > new_size {
        return Err(LedgerError::InvalidInput(format!("old size {old_size} is larger than new size {new_size}")));
    }
    if old_size == 0 {
        if proof.is_empty() && *old_root == empty_root() {
            return Ok(());
        }
        return Err(LedgerError::InvalidProof);
    }
    tlog::check_tree(&to_tlog(proof), new_size, tlog::Hash(*new_root), old_size, tlog::Hash(*old_root)).map_err(from_tlog)
}

/// The height of C2SP tlog-tiles: 256 hashes (or entries) per tile.
pub const TILE_HEIGHT: u8 = 8;

/// How many hashes the tile at `level`, `index` holds in a tree of `size` (0: the tile does not exist).
pub fn tile_width(level: u8, index: u64, size: u64) -> u32 {
    let count = if u32::from(level) * u32::from(TILE_HEIGHT) >= 64 { 0 } else { size >> (u32::from(level) * u32::from(TILE_HEIGHT)) };
    let start = index.saturating_mul(1 << TILE_HEIGHT);
    count.saturating_sub(start).min(1 << TILE_HEIGHT) as u32
}

/// The C2SP tlog-tiles hash tile at `level`, `index` of a tree of `size`, `width` hashes wide
/// (256 for a full tile), read from the stored hashes. A tile wider than the tree holds is refused.
pub fn hash_tile(level: u8, index: u64, width: u32, size: u64, reader: &impl HashReader) -> Result<Vec<u8>, LedgerError> {
    let have = tile_width(level, index, size);
    if width == 0 || width > have {
        return Err(LedgerError::InvalidInput(format!("tile {level}/{index} holds {have} hashes in a tree of {size}; {width} asked")));
    }
    let tile = tlog::Tile::new(TILE_HEIGHT, level, index, width, false);
    let adapter = Adapter::new(reader);
    let data = tile.read_data(&adapter);
    adapter.finish(data)
}

/// A tree kept in memory as the store keeps it (the hashes each append created), built from its
/// leaf hashes: proofs over a ledger of which only the leaves are at hand (a parent's mirror of a
/// child's ledger, relayed to its own parent; tests).
pub struct MemTree(pub(crate) Vec<Vec<Hash>>);

impl MemTree {
    /// The tree of these leaves.
    pub fn of(leaves: &[Hash]) -> MemTree {
        let mut f = Frontier::new();
        MemTree(leaves.iter().map(|l| f.push(*l)).collect())
    }
}

impl HashReader for MemTree {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, LedgerError> {
        indexes
            .iter()
            .map(|i| {
                let (entry, pos) = locate_stored_hash(*i);
                self.0.get(entry as usize).and_then(|h| h.get(pos)).copied().ok_or(LedgerError::InvalidProof)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_built_apart_and_joined_give_the_same_tree() {
        // Entries in aligned chunks of 8: each chunk's own tree, pushed as a subtree, creates the
        // same hashes above it as pushing every entry; a partial chunk joins the frontier.
        let leaves: Vec<Hash> = (0..61u64).map(|n| leaf_hash(&n.to_be_bytes())).collect();
        let mut whole = Frontier::new();
        let mut created_whole = vec![];
        for l in &leaves {
            created_whole.push(whole.push(*l));
        }
        let mut chunked = Frontier::new();
        for (j, chunk) in leaves.chunks(8).enumerate() {
            let mut local = Frontier::new();
            let mut last = vec![];
            for l in chunk {
                last = local.push(*l);
            }
            if chunk.len() == 8 {
                let mut above = vec![];
                chunked.push_subtree(3, local.root(), |h| above.push(*h)).unwrap();
                assert_eq!(above[0], local.root());
                let expected = &created_whole[j * 8 + 7];
                assert_eq!(&last[..], &expected[..4]);
                assert_eq!(&above[1..], &expected[4..]);
            } else {
                let joined = chunked.joined(&local).unwrap();
                assert_eq!(joined, whole);
                assert_eq!(joined.root(), whole.root());
            }
            // A checkpoint inside a chunk: the frontier before the chunk joined with its first part.
            let before = {
                let mut f = Frontier::new();
                leaves[..j * 8].iter().for_each(|l| drop(f.push(*l)));
                f
            };
            let mut part = Frontier::new();
            let mut reference = before.clone();
            for l in &chunk[..chunk.len().min(5)] {
                part.push(*l);
                reference.push(*l);
            }
            assert_eq!(before.joined(&part).unwrap(), reference);
        }
        assert_eq!(chunked.size(), 56);
        assert!(chunked.push_subtree(4, [0; 32], |_| {}).is_err(), "56 entries are not a multiple of 16");
        assert!(
            chunked.joined(&Frontier { size: 8, subtrees: vec![[0; 32]] }).is_err(),
            "a chunk of 8 after 56 must be pushed, not joined"
        );
    }

    #[test]
    fn locate_inverts_push_layout() {
        // Lay out push outputs consecutively (the Go storage order) and check every index.
        let mut f = Frontier::new();
        let mut idx = 0u64;
        for n in 0..200u64 {
            assert_eq!(stored_hash_index(0, n), idx);
            let created = f.push(leaf_hash(&n.to_be_bytes()));
            for pos in 0..created.len() {
                assert_eq!(locate_stored_hash(idx), (n, pos));
                idx += 1;
            }
        }
    }
}
