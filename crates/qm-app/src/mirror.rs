//! Many sites (docs/sites.md): a parent keeps a verified mirror of each child's ledger (C2SP
//! tlog-mirror `add-entries`). It takes a child's entries in packages of up to 256, each proved
//! against the child's signed checkpoint that the parent holds pending (the one its witness last
//! cosigned), stores them durably, replays the whole ledger with the auditor of `qm verify`, and
//! only then cosigns the checkpoint with its *mirror* key (a cosigner distinct from its witness).
//! A child uploads its entries from the parent's next entry and keeps the mirror's cosignature.

use crate::sites::{Children, SiteKey};
use crate::{hex, AppError, Result, Site, StoreHashes};
use qm_ledger::mirror::{check_package, package_ranges, Package, PACKAGES_PER_REQUEST, PACKAGE_ENTRIES};
pub use qm_ledger::mirror::{AddEntries, MirrorInfo};
use qm_ledger::{leaf_hash, witness};
use qm_store::Mirrored;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// The mirror key's file beside the site's signing key: `site.db.key` → `site.db.mirror.key`.
pub fn mirror_key_path(site_key: &Path) -> PathBuf {
    let text = site_key.as_os_str().to_string_lossy();
    PathBuf::from(format!("{}.mirror.key", text.strip_suffix(".key").unwrap_or(&text)))
}

/// The site's mirror key, made (mode 0600) the first time it is needed; named `<site>/mirror`.
pub fn mirror_key(path: &Path, site: &str) -> Result<SiteKey> {
    if !path.exists() {
        SiteKey::generate(&format!("{site}/mirror")).write_new(path)?;
    }
    Ok(SiteKey::read(path)?)
}

/// What a mirror answers an `add-entries` request (its tlog-mirror status).
#[derive(Debug)]
pub enum MirrorAnswer {
    /// 200: every entry up to the checkpoint is stored and verified; the mirror's cosignature line.
    Cosigned(String),
    /// 202: packages were stored, more are needed from `next_entry`.
    Partial(MirrorInfo),
    /// 409: the interval does not fit what the mirror holds.
    Conflict(MirrorInfo),
    /// 400, 404 or 422, and why.
    Refused(u16, String),
}

/// The most entries an upload may send again that the mirror already holds.
const EXCESS_MAX: u64 = 8 * PACKAGE_ENTRIES;
/// Replays of children's ledgers kept between requests, at most (then all are dropped).
const REPLAYS_KEPT: usize = 64;
/// An upload request's entries, at most (bytes; it stops after the package that passes it).
const REQUEST_BYTES: usize = 4 << 20;

fn ms(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

impl Site {
    /// A tlog-mirror `add-entries` request from a child: each package checked against the child's
    /// pending checkpoint and stored; once every entry up to it is held, the ledger replayed by the
    /// auditor and the checkpoint cosigned with the mirror key.
    pub fn add_entries(&mut self, children: &Children, key: &SiteKey, body: &[u8], at: OffsetDateTime) -> Result<MirrorAnswer> {
        let req = match AddEntries::parse(body) {
            Ok(r) => r,
            Err(e) => return Ok(MirrorAnswer::Refused(400, e.to_string())),
        };
        let origin = req.origin.clone();
        let Some(child) = children.children.get(&origin) else {
            return Ok(MirrorAnswer::Refused(404, format!("no child site with the origin {origin:?} is mirrored here")));
        };
        let Some(pending) = self.store.witnessed(&origin)? else {
            return Ok(MirrorAnswer::Refused(422, format!("site {origin} has sent no checkpoint yet: add-checkpoint first")));
        };
        if req.ticket.len() == 32 {
            return self.compare_with_evidence(&req, child, at);
        }
        let mirrored = self.store.mirrored(&origin)?;
        let mirror_size = mirrored.as_ref().map_or(0, |m| m.size);
        let next = self.store.mirror_next(&origin)?;
        let info = |next| MirrorInfo { pending_size: pending.size, next_entry: next, ticket: vec![] };
        if let Some(m) = mirrored.as_ref().filter(|m| m.size == req.upload_end && m.size > 0) {
            return Ok(MirrorAnswer::Cosigned(m.cosignature.clone()));
        }
        if req.upload_end != pending.size || req.upload_end < mirror_size || req.upload_start > next {
            return Ok(MirrorAnswer::Conflict(info(next)));
        }
        if next.min(req.upload_end).saturating_sub(req.upload_start) > EXCESS_MAX {
            return Ok(MirrorAnswer::Conflict(info(next)));
        }
        if req.packages.is_empty() && req.upload_start < req.upload_end {
            return Ok(MirrorAnswer::Refused(400, "add-entries: the body holds no complete entry package".into()));
        }
        let next = match self.store_packages(&req, &pending, next)? {
            Ok(next) => next,
            Err(answer) => return Ok(answer),
        };
        if next < req.upload_end {
            return Ok(MirrorAnswer::Partial(info(next)));
        }
        let problems = self.replay_mirror(&origin, req.upload_end)?;
        if !problems.is_empty() {
            self.mirror_does_not_replay(&origin, child, &pending.note, &problems, at)?;
            return Ok(MirrorAnswer::Refused(422, format!("the ledger of site {origin} does not replay: {}", problems.join("; "))));
        }
        let line = witness::cosign(key, &pending.note, at.unix_timestamp().max(0) as u64)?;
        let new = Mirrored { origin, size: req.upload_end, note: pending.note.clone(), cosignature: line.clone(), at_ms: ms(at) };
        if !self.store.mirror_advance(&new)? {
            let next = self.store.mirror_next(&new.origin)?;
            return Ok(MirrorAnswer::Conflict(info(next)));
        }
        self.child_summary(&new.origin, &child.unit, at)?;
        self.transfer_incidents(children, &new.origin, at)?;
        Ok(MirrorAnswer::Cosigned(line))
    }

    /// Checks each package of an upload against the pending checkpoint and stores it; the mirror's
    /// next entry after them, or the answer that stops the upload.
    fn store_packages(
        &mut self,
        req: &AddEntries,
        pending: &qm_store::Witnessed,
        mut next: u64,
    ) -> Result<std::result::Result<u64, MirrorAnswer>> {
        let origin = &req.origin;
        for p in &req.packages {
            if p.end() <= next {
                continue;
            }
            if p.start > next {
                return Ok(Err(MirrorAnswer::Conflict(MirrorInfo { pending_size: pending.size, next_entry: next, ticket: vec![] })));
            }
            let block = p.start - p.start % PACKAGE_ENTRIES;
            let held = self.store.mirror_leaves(origin, block, p.start)?;
            if let Err(e) = check_package(p, &held, pending.size, &pending.root) {
                let why = format!(
                    "entries {} to {} do not hash into the checkpoint of size {} (root {}) that site {origin} signed: {e}",
                    p.start,
                    p.end() - 1,
                    pending.size,
                    hex(&pending.root)
                );
                return Ok(Err(MirrorAnswer::Refused(422, why)));
            }
            let entries: Vec<(Vec<u8>, qm_ledger::Hash)> = p.entries.iter().map(|e| (e.clone(), leaf_hash(e))).collect();
            self.store.mirror_add(origin, p.start, &entries)?;
            next = next.max(p.end());
        }
        Ok(Ok(next))
    }

    /// Entries of a history the witness refused, named by its root in the ticket: compared with the
    /// mirror, to name the entry that was changed (they are proved against the contradicting
    /// checkpoint, signed with the child's key and kept as evidence; nothing of them is stored).
    fn compare_with_evidence(&mut self, req: &AddEntries, child: &crate::sites::Child, at: OffsetDateTime) -> Result<MirrorAnswer> {
        let offered = self.store.fork_evidence()?.into_iter().find(|e| {
            e.origin == req.origin
                && qm_ledger::open_checkpoint(&e.offered_note, &child.key)
                    .is_ok_and(|cp| cp.size == req.upload_end && cp.root[..] == req.ticket[..])
        });
        match offered {
            Some(e) => self.compare_with_mirror(req, child, &e, at),
            None => Ok(MirrorAnswer::Refused(
                422,
                format!("no checkpoint of site {} with that root and size {} is kept as evidence here", req.origin, req.upload_end),
            )),
        }
    }

    /// An upload of the entries of a checkpoint the witness refused as contradicting the one it
    /// cosigned: each package proved against that checkpoint, its entries compared with the ones
    /// the mirror holds. The first that differs is named, in the answer and in a critical incident.
    fn compare_with_mirror(
        &mut self,
        req: &AddEntries,
        child: &crate::sites::Child,
        e: &qm_store::ForkEvidence,
        at: OffsetDateTime,
    ) -> Result<MirrorAnswer> {
        let origin = &req.origin;
        let cp = qm_ledger::open_checkpoint(&e.offered_note, &child.key)?;
        if !req.upload_start.is_multiple_of(PACKAGE_ENTRIES) {
            return Ok(MirrorAnswer::Refused(400, "entries of a contradicting checkpoint are sent from a multiple of 256".into()));
        }
        let next = self.store.mirror_next(origin)?;
        let mut checked = req.upload_start;
        for p in &req.packages {
            if let Err(why) = check_package(p, &[], cp.size, &cp.root) {
                return Ok(MirrorAnswer::Refused(
                    422,
                    format!(
                        "entries {} to {} do not hash into the checkpoint of size {} site {origin} signed: {why}",
                        p.start,
                        p.end() - 1,
                        cp.size
                    ),
                ));
            }
            let held = self.store.mirror_leaves(origin, p.start, p.end().min(next).max(p.start))?;
            let theirs = p.entries.iter().map(|b| leaf_hash(b));
            if let Some((i, (mine, theirs))) = held.iter().zip(theirs).enumerate().find(|(_, (m, t))| *m != t) {
                let seq = p.start + i as u64;
                let why = format!(
                    "entry {seq} of site {origin} was rewritten: its checkpoint of size {} signed with its key holds an entry {seq} (leaf {}) other than the one mirrored here (leaf {}); entries before it are the same",
                    cp.size,
                    &hex(&theirs)[..16],
                    &hex(mine)[..16]
                );
                let summary = format!("{why}. Both checkpoints are kept (qm witness evidence)");
                self.child_incident(origin, child, &summary, format!("rewritten-{origin}-{}-{seq}", cp.size), at)?;
                return Ok(MirrorAnswer::Refused(422, why));
            }
            checked = p.end();
            if checked >= next {
                return Ok(MirrorAnswer::Refused(
                    422,
                    format!("the {next} entries mirrored here are the same in the checkpoint of size {} site {origin} signed: what changed came after them", cp.size),
                ));
            }
        }
        Ok(MirrorAnswer::Partial(MirrorInfo { pending_size: req.upload_end, next_entry: checked, ticket: vec![] }))
    }

    /// Replays a child's mirrored entries up to `end` with the auditor, going on from the replay kept
    /// from the last request when there is one; the problems found (none: it stands).
    pub(crate) fn replay_mirror(&mut self, origin: &str, end: u64) -> Result<Vec<String>> {
        let mut replay = self.mirror_replays.remove(origin).filter(|r| r.ok() && r.size() <= end).unwrap_or_default();
        if replay.size() == 0 {
            self.site_receipts.remove(origin);
        }
        while replay.size() < end {
            let from = replay.size();
            let batch = self.store.mirror_entries(origin, from, 4_096.min((end - from) as usize))?;
            if batch.is_empty() {
                return Err(AppError::Internal(format!("the mirror of {origin} holds no entry {from}")));
            }
            for (i, bytes) in batch.iter().enumerate() {
                let seq = from + i as u64;
                match replay.feed(seq, bytes) {
                    // A child's ledger holds its own entries only.
                    Some(env) if env.site != origin => replay.refuse(seq, format!("entry {seq} is of site {}, not of {origin}", env.site)),
                    Some(env) => {
                        if let Some(r) = crate::across::receipt_of(seq, &env) {
                            self.site_receipts.entry(origin.to_string()).or_default().push(r);
                        }
                    }
                    None => break,
                }
                if !replay.ok() {
                    break;
                }
            }
            if !replay.ok() {
                break;
            }
        }
        let problems: Vec<String> = replay.problems().into_iter().map(|(_, p)| p).take(5).collect();
        if problems.is_empty() {
            if self.mirror_replays.len() >= REPLAYS_KEPT {
                self.mirror_replays.clear();
            }
            self.mirror_replays.insert(origin.to_string(), replay);
        }
        Ok(problems)
    }

    /// A child's own signed ledger whose entries hash to its checkpoint but break the books: a
    /// critical incident at its unit, once per checkpoint.
    fn mirror_does_not_replay(
        &mut self,
        origin: &str,
        child: &crate::sites::Child,
        note: &str,
        problems: &[String],
        at: OffsetDateTime,
    ) -> Result<()> {
        let size = note.lines().nth(1).unwrap_or("?");
        let summary = format!(
            "the ledger of site {origin}, as signed in its checkpoint of size {size}, does not replay on the books: {}. Its entries are kept here (the mirror); nothing of it was cosigned",
            problems.join("; ")
        );
        self.child_incident(origin, child, &summary, format!("mirror-replay-{origin}-{size}"), at)
    }

    /// The `add-entries` request that uploads this site's entries from `from` up to `end` (the size
    /// of the checkpoint the parent holds pending); see [`upload_request`].
    pub fn add_entries_request(&self, from: u64, end: u64) -> Result<AddEntries> {
        upload_request(self.store.as_ref(), &self.site_name(), from, end)
    }

    /// The largest checkpoint of this site its parent's mirror cosigned (its key name ends `/mirror`
    /// when it is a Quartermaster site; `mirror` names it otherwise), 0 if none.
    pub fn mirrored_size(&self, mirror: &str) -> Result<u64> {
        Ok(self.store.cosignatures()?.iter().filter(|c| c.witness == mirror).map(|c| c.size).max().unwrap_or(0))
    }

    /// Every child's mirror checkpoint held here.
    pub fn mirrored(&self) -> Result<Vec<Mirrored>> {
        Ok(self.store.mirrored_all()?)
    }
}

/// The `add-entries` request that uploads the entries of the ledger `store` (of the site `origin`)
/// from `from` up to `end`: as many packages as fit about 4 MiB, at most 32 (tlog-mirror).
pub fn upload_request(store: &dyn qm_store::EntrySource, origin: &str, from: u64, end: u64) -> Result<AddEntries> {
    let size = store.entry_count()?;
    if end > size || from > end {
        return Err(AppError::Usage(format!("entries {from} to {end} are not in this ledger of {size} entries")));
    }
    let read = |start, n| Ok(store.read_entries(start, n)?.into_iter().map(|e| e.bytes).collect());
    packages_of(origin, from, end, &StoreHashes(store), read)
}

/// An `add-entries` request of the entries `[from, end)` of the ledger `origin`, read with `read`
/// (start, count) and proved with the tree `hashes` of `end` entries.
pub(crate) fn packages_of(
    origin: &str,
    from: u64,
    end: u64,
    hashes: &impl qm_ledger::HashReader,
    read: impl Fn(u64, usize) -> Result<Vec<Vec<u8>>>,
) -> Result<AddEntries> {
    let mut packages = vec![];
    let mut bytes = 0;
    for (start, stop) in package_ranges(from, end).into_iter().take(PACKAGES_PER_REQUEST) {
        let entries = read(start, (stop - start) as usize)?;
        if entries.len() as u64 != stop - start {
            return Err(AppError::Internal(format!("entries {start} to {stop} of {origin} are not all held here")));
        }
        let proof = qm_ledger::subtree::prove_subtree_consistency(start - start % PACKAGE_ENTRIES, stop, end, hashes)?;
        bytes += entries.iter().map(Vec::len).sum::<usize>();
        packages.push(Package { start, entries, proof });
        if bytes > REQUEST_BYTES {
            break;
        }
    }
    Ok(AddEntries { origin: origin.to_string(), upload_start: from, upload_end: end, ticket: vec![], packages })
}

/// The entries file that goes on removable media beside a checkpoint request (docs/sites.md, "No
/// line at all"): every `add-entries` request from `from` up to `end`, each after its length in
/// four big-endian bytes. At least one request, so that a mirror holding every entry already
/// still cosigns the new checkpoint.
pub fn media_requests(store: &dyn qm_store::EntrySource, origin: &str, mut from: u64, end: u64) -> Result<Vec<u8>> {
    let mut out = vec![];
    loop {
        let req = upload_request(store, origin, from, end)?;
        from = req.packages.last().map_or(end, Package::end);
        let body = req.to_bytes()?;
        out.extend_from_slice(&(body.len() as u32).to_be_bytes());
        out.extend_from_slice(&body);
        if from >= end {
            return Ok(out);
        }
    }
}

/// The requests of an entries file, in order; `Err` names what is wrong with the framing.
fn media_bodies(mut bytes: &[u8]) -> std::result::Result<Vec<&[u8]>, String> {
    let mut bodies = vec![];
    while !bytes.is_empty() {
        let Some((len, rest)) = bytes.split_first_chunk::<4>() else {
            return Err(format!("the entries file ends inside a length, after {} requests", bodies.len()));
        };
        let len = u32::from_be_bytes(*len) as usize;
        if rest.len() < len {
            return Err(format!("the entries file is cut short: request {} needs {len} bytes, {} are left", bodies.len() + 1, rest.len()));
        }
        let (body, rest) = rest.split_at(len);
        bodies.push(body);
        bytes = rest;
    }
    if bodies.is_empty() {
        return Err("the entries file holds no request".into());
    }
    Ok(bodies)
}

impl Site {
    /// An entries file brought on media: its requests taken in order as if they were pushed; the
    /// answer is the first that is not a 202 (a cosignature, a conflict, a refusal).
    pub fn add_entries_from_media(&mut self, children: &Children, key: &SiteKey, bytes: &[u8], at: OffsetDateTime) -> Result<MirrorAnswer> {
        let bodies = match media_bodies(bytes) {
            Ok(b) => b,
            Err(e) => return Ok(MirrorAnswer::Refused(400, e)),
        };
        let mut last = None;
        for body in bodies {
            match self.add_entries(children, key, body, at)? {
                MirrorAnswer::Partial(info) => last = Some(MirrorAnswer::Partial(info)),
                other => return Ok(other),
            }
        }
        Ok(last.unwrap_or_else(|| MirrorAnswer::Refused(400, "the entries file holds no request".into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mirror_key_sits_beside_the_site_key() {
        assert_eq!(mirror_key_path(Path::new("/d/site.db.key")), PathBuf::from("/d/site.db.mirror.key"));
        assert_eq!(mirror_key_path(Path::new("/d/k")), PathBuf::from("/d/k.mirror.key"));
    }

    #[test]
    fn an_entries_file_that_is_cut_or_empty_is_named_so() {
        assert_eq!(media_bodies(&[0, 0, 0, 2, 7, 7, 0, 0, 0, 1, 9]).unwrap(), vec![&[7u8, 7][..], &[9u8][..]]);
        assert!(media_bodies(&[]).unwrap_err().contains("no request"));
        assert!(media_bodies(&[0, 0]).unwrap_err().contains("inside a length"));
        assert!(media_bodies(&[0, 0, 0, 9, 1]).unwrap_err().contains("request 1 needs 9 bytes, 1 are left"));
    }
}
