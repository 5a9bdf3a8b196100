//! Subtree consistency proofs (draft-ietf-plants-merkle-tree-certs, section 4.4): that the entries
//! `[start, end)` of a log — a *subtree*, aligned as the tree aligns them — hash to a node that the
//! tree of `size` entries with a given root contains. C2SP tlog-mirror's `add-entries` sends one
//! with every package of up to 256 entries, so that a mirror can authenticate each package against
//! the signed checkpoint on its own, before it has the rest.
//!
//! With `start == 0` a subtree consistency proof is the RFC 9162 consistency proof from the tree of
//! `end` entries (the tests check the two agree).

use crate::tree::{node_hash, read_exact, HashReader};
use crate::{Hash, LedgerError};

/// Whether `[start, end)` is a subtree: not empty, and `start` a multiple of the smallest power of
/// two at least `end - start` (section 4.1).
pub fn is_valid_subtree(start: u64, end: u64) -> bool {
    start < end && (end - start).checked_next_power_of_two().is_some_and(|w| start.is_multiple_of(w))
}

/// The hash of the entries `[lo, hi)` as the tree hashes them (RFC 9162's MTH), from stored hashes.
/// `[lo, hi)` must be a subtree, or a range the proofs below split one into.
pub fn subtree_hash(lo: u64, hi: u64, reader: &impl HashReader) -> Result<Hash, LedgerError> {
    if lo >= hi {
        return Err(LedgerError::InvalidInput(format!("the range [{lo}, {hi}) holds no entry")));
    }
    let indexes = tlog_tiles::sub_tree_index(lo, hi, vec![]);
    let hashes = read_exact(reader, &indexes)?;
    let mut h = *hashes.last().ok_or_else(|| LedgerError::HashStore("no hash read".into()))?;
    for left in hashes.iter().rev().skip(1) {
        h = node_hash(left, &h);
    }
    Ok(h)
}

/// The ranges whose hashes make the proof, in the proof's order (section 4.4.2's SUBTREE_PROOF over
/// the entries `[lo, hi)`: the proof of the part holding the subtree, then the other part's hash).
fn proof_ranges(start: u64, end: u64, lo: u64, hi: u64, known: bool, out: &mut Vec<(u64, u64)>) {
    if start == lo && end == hi {
        if !known {
            out.push((lo, hi));
        }
        return;
    }
    // The largest power of two below the width: the tree's left part.
    let k = (hi - lo).next_power_of_two() / 2;
    let mid = lo + k;
    if end <= mid {
        proof_ranges(start, end, lo, mid, known, out);
        out.push((mid, hi));
    } else if start >= mid {
        proof_ranges(start, end, mid, hi, known, out);
        out.push((lo, mid));
    } else {
        // Only a subtree starting at `lo` spans both parts: its right piece is no node of its own.
        proof_ranges(mid, end, mid, hi, false, out);
        out.push((lo, mid));
    }
}

/// The subtree consistency proof of `[start, end)` in the tree of `size` entries.
pub fn prove_subtree_consistency(start: u64, end: u64, size: u64, reader: &impl HashReader) -> Result<Vec<Hash>, LedgerError> {
    if !is_valid_subtree(start, end) || end > size {
        return Err(LedgerError::InvalidInput(format!("[{start}, {end}) is not a subtree of a tree of {size} entries")));
    }
    let mut ranges = vec![];
    proof_ranges(start, end, 0, size, true, &mut ranges);
    ranges.into_iter().map(|(lo, hi)| subtree_hash(lo, hi, reader)).collect()
}

/// Checks a subtree consistency proof (section 4.4.3): that `node` is the hash of `[start, end)`
/// and that the tree of `size` entries containing it has the root `root`.
pub fn check_subtree_consistency(proof: &[Hash], start: u64, end: u64, size: u64, node: &Hash, root: &Hash) -> Result<(), LedgerError> {
    if !is_valid_subtree(start, end) || end > size {
        return Err(LedgerError::InvalidInput(format!("[{start}, {end}) is not a subtree of a tree of {size} entries")));
    }
    let (mut f, mut s, mut t) = (start, end - 1, size - 1);
    // Up to the lowest node that holds the subtree's last entry and is a left child or the edge.
    if s == t {
        while f != s {
            (f, s, t) = (f >> 1, s >> 1, t >> 1);
        }
    } else {
        while f != s && s & 1 == 1 {
            (f, s, t) = (f >> 1, s >> 1, t >> 1);
        }
    }
    let mut rest = proof.iter();
    let (mut fr, mut sr) = if f == s {
        (*node, *node)
    } else {
        let first = rest.next().ok_or(LedgerError::InvalidProof)?;
        (*first, *first)
    };
    for c in rest {
        if t == 0 {
            return Err(LedgerError::InvalidProof);
        }
        if s & 1 == 1 || s == t {
            if f < s {
                fr = node_hash(c, &fr);
            }
            sr = node_hash(c, &sr);
            while s & 1 == 0 && s != 0 {
                (f, s, t) = (f >> 1, s >> 1, t >> 1);
            }
        } else {
            sr = node_hash(&sr, c);
        }
        (f, s, t) = (f >> 1, s >> 1, t >> 1);
    }
    if t != 0 || fr != *node || sr != *root {
        return Err(LedgerError::InvalidProof);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::{leaf_hash, prove_consistency, tree_root, MemTree};

    fn tree(n: u64) -> (MemTree, Vec<Hash>) {
        let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(format!("leaf{i}").as_bytes())).collect();
        (MemTree::of(&leaves), leaves)
    }

    /// MTH by the RFC's definition, from the leaves alone.
    fn mth(leaves: &[Hash]) -> Hash {
        if leaves.len() == 1 {
            return leaves[0];
        }
        let k = leaves.len().next_power_of_two() / 2;
        node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
    }

    #[test]
    fn the_drafts_figure_is_two_hashes_and_checks() {
        let (mem, leaves) = tree(14);
        let proof = prove_subtree_consistency(4, 8, 14, &mem).unwrap();
        assert_eq!(proof, vec![mth(&leaves[0..4]), mth(&leaves[8..14])]);
        check_subtree_consistency(&proof, 4, 8, 14, &mth(&leaves[4..8]), &mth(&leaves)).unwrap();
        let bad = [leaf_hash(b"bad"), proof[1]];
        assert!(check_subtree_consistency(&bad, 4, 8, 14, &mth(&leaves[4..8]), &mth(&leaves)).is_err());
    }

    #[test]
    fn every_subtree_of_every_small_tree_proves_and_nothing_else_checks() {
        for size in 1..=70u64 {
            let (mem, leaves) = tree(size);
            let root = tree_root(size, &mem).unwrap();
            assert_eq!(root, mth(&leaves));
            for start in 0..size {
                for end in start + 1..=size {
                    if !is_valid_subtree(start, end) {
                        assert!(prove_subtree_consistency(start, end, size, &mem).is_err());
                        continue;
                    }
                    let node = subtree_hash(start, end, &mem).unwrap();
                    assert_eq!(node, mth(&leaves[start as usize..end as usize]), "[{start}, {end})");
                    let proof = prove_subtree_consistency(start, end, size, &mem).unwrap();
                    check_subtree_consistency(&proof, start, end, size, &node, &root)
                        .unwrap_or_else(|e| panic!("[{start}, {end}) in {size}: {e}"));
                    if start == 0 {
                        assert_eq!(proof, prove_consistency(end, size, &mem).unwrap(), "[0, {end}) in {size}");
                    }
                    // Another node, another root, a hash changed, dropped or added: refused.
                    let other = leaf_hash(b"other");
                    assert!(check_subtree_consistency(&proof, start, end, size, &other, &root).is_err());
                    assert!(check_subtree_consistency(&proof, start, end, size, &node, &other).is_err());
                    for i in 0..proof.len() {
                        let mut p = proof.clone();
                        p[i][0] ^= 1;
                        assert!(check_subtree_consistency(&p, start, end, size, &node, &root).is_err(), "{i} changed");
                    }
                    if !proof.is_empty() {
                        assert!(check_subtree_consistency(&proof[..proof.len() - 1], start, end, size, &node, &root).is_err());
                    }
                    let mut longer = proof.clone();
                    longer.push(other);
                    assert!(check_subtree_consistency(&longer, start, end, size, &node, &root).is_err());
                }
            }
        }
    }
}
