//! Up the tree (docs/sites.md, "A grandparent"): a site that mirrors its children's ledgers relays
//! them to its own parent, so that headquarters witnesses and mirrors every site below it. The
//! relay sends exactly what the child sent: the child's own signed checkpoint (the one this site's
//! mirror cosigned) with a consistency proof from the size the grandparent holds, then the child's
//! entries in packages proved against it. Nothing is signed on the way: the grandparent checks the
//! child's signature with the child's key and replays its entries itself.

use crate::mirror::{packages_of, AddEntries};
use crate::{AppError, Result, Site};
use qm_ledger::witness::AddCheckpoint;
use qm_ledger::MemTree;

impl Site {
    /// The tree of a mirrored child's ledger up to `size`, from the leaf hashes the mirror holds.
    fn mirrored_tree(&self, origin: &str, size: u64) -> Result<MemTree> {
        let leaves = self.store.mirror_leaves(origin, 0, size)?;
        if leaves.len() as u64 != size {
            return Err(AppError::Internal(format!("the mirror of {origin} holds {} of its {size} entries", leaves.len())));
        }
        Ok(MemTree::of(&leaves))
    }

    /// The `add-checkpoint` request that relays a mirrored child's latest cosigned checkpoint to
    /// this site's parent, with a consistency proof from `held`, the size the parent holds of it;
    /// `None` when nothing of it is mirrored here, or the parent holds as much already.
    pub fn relay_checkpoint_request(&self, origin: &str, held: u64) -> Result<Option<AddCheckpoint>> {
        let Some(m) = self.store.mirrored(origin)? else { return Ok(None) };
        if held >= m.size {
            return Ok(None);
        }
        let proof = if held == 0 { vec![] } else { qm_ledger::prove_consistency(held, m.size, &self.mirrored_tree(origin, m.size)?)? };
        Ok(Some(AddCheckpoint { old: held, proof, note: m.note }))
    }

    /// The `add-entries` request that relays a mirrored child's entries from `from` up to `end`
    /// (the size of its checkpoint relayed) to this site's parent's mirror.
    pub fn relay_entries_request(&self, origin: &str, from: u64, end: u64) -> Result<AddEntries> {
        let held = self.store.mirrored(origin)?.map_or(0, |m| m.size);
        if end > held || from > end {
            return Err(AppError::Usage(format!("entries {from} to {end} of {origin} are not all mirrored here ({held} are)")));
        }
        let tree = self.mirrored_tree(origin, end)?;
        packages_of(origin, from, end, &tree, |start, n| Ok(self.store.mirror_entries(origin, start, n)?))
    }
}
