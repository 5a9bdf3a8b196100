//! C2SP tlog-mirror's `add-entries`, as pure functions: the request body (the log's origin, the
//! upload's interval, a ticket, then *entry packages* aligned at multiples of 256, each its entries
//! after a two-byte length and a subtree consistency proof), the `text/x.tlog.mirror-info` answer,
//! and the check of one package against the signed checkpoint of the upload's end.
//!
//! A mirror (a parent keeping its children's ledgers) authenticates each package on its own: the
//! entries of `[start, end)`, with those it already holds before `start` in the same 256-block,
//! hash to the subtree `[block start, end)`, which the proof places in the tree of `upload_end`
//! entries whose root the child signed.

use crate::subtree::check_subtree_consistency;
use crate::tree::{leaf_hash, node_hash};
use crate::{Hash, LedgerError};

/// Entries per package (and per tlog-tiles entry bundle).
pub const PACKAGE_ENTRIES: u64 = 256;
/// A package's proof has at most this many hashes.
const PROOF_HASHES_MAX: usize = 63;
/// tlog-mirror: a client should send at most 32 packages per request.
pub const PACKAGES_PER_REQUEST: usize = 32;

/// The intervals of the canonical package sequence of an upload `[start, end)`.
pub fn package_ranges(start: u64, end: u64) -> Vec<(u64, u64)> {
    if start >= end {
        return vec![];
    }
    let first = start - start % PACKAGE_ENTRIES;
    (first..end).step_by(PACKAGE_ENTRIES as usize).map(|block| (block.max(start), (block + PACKAGE_ENTRIES).min(end))).collect()
}

/// One package: the entries of its interval and the subtree consistency proof of
/// `[block start, end)` in the tree of the upload's end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Package {
    pub start: u64,
    pub entries: Vec<Vec<u8>>,
    pub proof: Vec<Hash>,
}

impl Package {
    pub fn end(&self) -> u64 {
        self.start + self.entries.len() as u64
    }
}

/// An `add-entries` request: which log, the interval it uploads, the mirror's ticket, and the
/// packages (a prefix of the canonical sequence: possibly not all of them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddEntries {
    pub origin: String,
    pub upload_start: u64,
    pub upload_end: u64,
    pub ticket: Vec<u8>,
    pub packages: Vec<Package>,
}

fn u16_len(n: usize, what: &str) -> Result<[u8; 2], LedgerError> {
    u16::try_from(n).map(u16::to_be_bytes).map_err(|_| LedgerError::InvalidInput(format!("{what} of {n} bytes is longer than 65,535")))
}

impl AddEntries {
    /// The request body (`application/octet-stream`).
    pub fn to_bytes(&self) -> Result<Vec<u8>, LedgerError> {
        let mut out = vec![];
        out.extend_from_slice(&u16_len(self.origin.len(), "the origin")?);
        out.extend_from_slice(self.origin.as_bytes());
        out.extend_from_slice(&self.upload_start.to_be_bytes());
        out.extend_from_slice(&self.upload_end.to_be_bytes());
        out.extend_from_slice(&u16_len(self.ticket.len(), "the ticket")?);
        out.extend_from_slice(&self.ticket);
        for p in &self.packages {
            for (i, e) in p.entries.iter().enumerate() {
                out.extend_from_slice(&u16_len(e.len(), &format!("entry {}", p.start + i as u64))?);
                out.extend_from_slice(e);
            }
            if p.proof.len() > PROOF_HASHES_MAX {
                return Err(LedgerError::InvalidInput(format!("a package's proof has at most {PROOF_HASHES_MAX} hashes")));
            }
            out.push(p.proof.len() as u8);
            for h in &p.proof {
                out.extend_from_slice(h);
            }
        }
        Ok(out)
    }

    /// Reads a request body: the header, then every complete package of the canonical sequence
    /// (bytes after the last complete one are left, as tlog-mirror says). A malformed header, or an
    /// interval the wrong way round, is an error (400).
    pub fn parse(body: &[u8]) -> Result<AddEntries, LedgerError> {
        let bad = |why: &str| LedgerError::InvalidInput(format!("add-entries: {why}"));
        let mut r = Reader(body);
        let n = r.u16().ok_or_else(|| bad("no origin"))?;
        let origin = std::str::from_utf8(r.take(n.into()).ok_or_else(|| bad("the origin is cut short"))?)
            .map_err(|_| bad("the origin is not UTF-8"))?
            .to_string();
        let upload_start = r.u64().ok_or_else(|| bad("no upload_start"))?;
        let upload_end = r.u64().ok_or_else(|| bad("no upload_end"))?;
        if upload_start > upload_end {
            return Err(bad("upload_start is above upload_end"));
        }
        let n = r.u16().ok_or_else(|| bad("no ticket"))?;
        let ticket = r.take(n.into()).ok_or_else(|| bad("the ticket is cut short"))?.to_vec();
        let mut packages = vec![];
        for (start, end) in package_ranges(upload_start, upload_end) {
            let mut at = Reader(r.0);
            let Some(p) = at.package(start, end) else { break };
            packages.push(p);
            r = at;
        }
        Ok(AddEntries { origin, upload_start, upload_end, ticket, packages })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes)
    }
    fn package(&mut self, start: u64, end: u64) -> Option<Package> {
        let mut entries = Vec::with_capacity((end - start) as usize);
        for _ in start..end {
            let n = self.u16()?;
            entries.push(self.take(n.into())?.to_vec());
        }
        let hashes = usize::from(*self.take(1)?.first()?);
        if hashes > PROOF_HASHES_MAX {
            return None;
        }
        let proof = (0..hashes).map(|_| self.take(32).and_then(|h| h.try_into().ok())).collect::<Option<Vec<Hash>>>()?;
        Some(Package { start, entries, proof })
    }
}

/// The hash of `[block start, package end)`: the leaves held before the package in its block, then
/// the package's entries.
fn package_subtree_hash(held: &[Hash], package: &Package) -> Option<Hash> {
    let leaves: Vec<Hash> = held.iter().copied().chain(package.entries.iter().map(|e| leaf_hash(e))).collect();
    fn mth(leaves: &[Hash]) -> Option<Hash> {
        match leaves.len() {
            0 => None,
            1 => Some(leaves[0]),
            n => {
                let k = n.next_power_of_two() / 2;
                Some(node_hash(&mth(&leaves[..k])?, &mth(&leaves[k..])?))
            }
        }
    }
    mth(&leaves)
}

/// Checks one package against the checkpoint of the upload's end (`size`, `root`): `held` are the
/// leaf hashes of the entries the mirror already holds from the package's block start up to the
/// package's start.
pub fn check_package(package: &Package, held: &[Hash], size: u64, root: &Hash) -> Result<(), LedgerError> {
    let block = package.start - package.start % PACKAGE_ENTRIES;
    if held.len() as u64 != package.start - block || package.entries.is_empty() {
        return Err(LedgerError::InvalidInput(format!(
            "package at {}: {} entries held before it in its block, {} expected",
            package.start,
            held.len(),
            package.start - block
        )));
    }
    let node = package_subtree_hash(held, package).ok_or(LedgerError::InvalidProof)?;
    check_subtree_consistency(&package.proof, block, package.end(), size, &node, root)
}

/// The `text/x.tlog.mirror-info` body of a 409 or 202 answer: a valid pending size, the mirror's
/// next entry, and its ticket (base64).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MirrorInfo {
    pub pending_size: u64,
    pub next_entry: u64,
    pub ticket: Vec<u8>,
}

impl MirrorInfo {
    pub fn to_text(&self) -> String {
        use base64::prelude::{Engine, BASE64_STANDARD};
        format!("{}\n{}\n{}\n", self.pending_size, self.next_entry, BASE64_STANDARD.encode(&self.ticket))
    }

    pub fn parse(text: &str) -> Result<MirrorInfo, LedgerError> {
        use base64::prelude::{Engine, BASE64_STANDARD};
        let bad = || LedgerError::InvalidInput(format!("not a tlog mirror-info body: {:?}", text.chars().take(80).collect::<String>()));
        let lines: Vec<&str> = text.strip_suffix('\n').ok_or_else(bad)?.split('\n').collect();
        let [size, next, ticket] = lines[..] else { return Err(bad()) };
        Ok(MirrorInfo {
            pending_size: size.parse().map_err(|_| bad())?,
            next_entry: next.parse().map_err(|_| bad())?,
            ticket: BASE64_STANDARD.decode(ticket).map_err(|_| bad())?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subtree::prove_subtree_consistency;
    use crate::tree::{tree_root, MemTree};

    fn log(n: u64) -> (Vec<Vec<u8>>, MemTree) {
        let entries: Vec<Vec<u8>> = (0..n).map(|i| format!("{{\"entry\":{i}}}").into_bytes()).collect();
        let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
        (entries, MemTree::of(&leaves))
    }

    fn upload(entries: &[Vec<u8>], mem: &MemTree, start: u64, end: u64) -> AddEntries {
        let packages = package_ranges(start, end)
            .into_iter()
            .map(|(s, e)| Package {
                start: s,
                entries: entries[s as usize..e as usize].to_vec(),
                proof: prove_subtree_consistency(s - s % PACKAGE_ENTRIES, e, end, mem).unwrap(),
            })
            .collect();
        AddEntries { origin: "d11.example".into(), upload_start: start, upload_end: end, ticket: vec![], packages }
    }

    #[test]
    fn the_canonical_sequence_is_aligned_at_256() {
        assert_eq!(package_ranges(0, 0), vec![]);
        assert_eq!(package_ranges(3, 3), vec![]);
        assert_eq!(package_ranges(0, 10), vec![(0, 10)]);
        assert_eq!(package_ranges(300, 600), vec![(300, 512), (512, 600)]);
        assert_eq!(package_ranges(256, 768), vec![(256, 512), (512, 768)]);
    }

    #[test]
    fn an_upload_round_trips_and_each_package_checks_against_the_signed_root() {
        let (entries, mem) = log(700);
        let root = tree_root(700, &mem).unwrap();
        let up = upload(&entries, &mem, 300, 700);
        let bytes = up.to_bytes().unwrap();
        assert_eq!(AddEntries::parse(&bytes).unwrap(), up);
        // The mirror holds 0..300: the first package needs the leaves 256..300 it holds.
        let held: Vec<Hash> = entries[256..300].iter().map(|e| leaf_hash(e)).collect();
        check_package(&up.packages[0], &held, 700, &root).unwrap();
        check_package(&up.packages[1], &[], 700, &root).unwrap();
        // An entry changed, a held leaf wrong, another root: refused.
        let mut changed = up.packages[1].clone();
        changed.entries[3] = b"{\"entry\":\"rewritten\"}".to_vec();
        assert!(check_package(&changed, &[], 700, &root).is_err());
        let mut wrong = held.clone();
        wrong[0] = leaf_hash(b"x");
        assert!(check_package(&up.packages[0], &wrong, 700, &root).is_err());
        assert!(check_package(&up.packages[1], &[], 700, &leaf_hash(b"x")).is_err());
        assert!(check_package(&up.packages[0], &held[1..], 700, &root).is_err());
        // A body cut inside its last package keeps the complete ones before it.
        let cut = AddEntries::parse(&bytes[..bytes.len() - 10]).unwrap();
        assert_eq!(cut.packages, up.packages[..1].to_vec());
        let header = 2 + up.origin.len() + 8 + 8 + 2;
        assert!(AddEntries::parse(&bytes[..header + 40]).unwrap().packages.is_empty());
        // A malformed header is refused.
        assert!(AddEntries::parse(&bytes[..5]).is_err());
        let mut backwards = up.clone();
        (backwards.upload_start, backwards.upload_end) = (700, 300);
        backwards.packages.clear();
        assert!(AddEntries::parse(&backwards.to_bytes().unwrap()).is_err());
    }

    #[test]
    fn mirror_info_round_trips() {
        let info = MirrorInfo { pending_size: 700, next_entry: 512, ticket: b"t".to_vec() };
        assert_eq!(info.to_text(), "700\n512\ndA==\n");
        assert_eq!(MirrorInfo::parse(&info.to_text()).unwrap(), info);
        assert!(MirrorInfo::parse("700\n512\n").is_err());
    }
}
