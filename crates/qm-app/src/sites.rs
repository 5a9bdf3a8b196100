//! Many sites (docs/sites.md): a parent site witnesses its children's ledgers (C2SP tlog-witness:
//! it cosigns a child's checkpoint only when it extends the one cosigned before), keeps two
//! contradicting signed checkpoints as evidence and raises a critical incident; a child asks its
//! parent for a cosignature of its latest checkpoint and keeps it.

use crate::{hex, AppError, Request, Result, Site, StoreHashes};
use qm_core::{Badge, Command, IncidentKind, Severity, UnitId};
use qm_ledger::witness::{self, AddCheckpoint};
pub use qm_ledger::witness::{cosigner_verifier_key, CosignatureVerifier, Refusal};
pub use qm_ledger::{CheckpointVerifier, SiteKey};
use qm_store::{Cosignature, ForkEvidence, Witnessed};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use time::OffsetDateTime;

/// One child site this site witnesses: its checkpoint key, and the unit its site serves (where an
/// incident about its ledger is raised).
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Child {
    /// The child's checkpoint verifier key (`qm checkpoint --verifier-key` there).
    pub key: String,
    pub unit: String,
}

/// The children a site witnesses, by their ledgers' origin (their site names): the `--children`
/// file, `[children."ORIGIN"]` tables.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Children {
    #[serde(default)]
    pub children: BTreeMap<String, Child>,
}

impl Children {
    pub fn read(path: &Path) -> Result<Children> {
        let text = std::fs::read_to_string(path).map_err(|e| AppError::Usage(format!("reading {}: {e}", path.display())))?;
        let c: Children = toml::from_str(&text).map_err(|e| AppError::Usage(format!("{}: {e}", path.display())))?;
        for (origin, child) in &c.children {
            CheckpointVerifier::new(&child.key).map_err(|e| AppError::Usage(format!("{}: child {origin}: {e}", path.display())))?;
        }
        Ok(c)
    }
}

/// The witness key's file beside the site's signing key: `site.db.key` → `site.db.witness.key`
/// (its own key, never the site's).
pub fn witness_key_path(site_key: &Path) -> PathBuf {
    let text = site_key.as_os_str().to_string_lossy();
    PathBuf::from(format!("{}.witness.key", text.strip_suffix(".key").unwrap_or(&text)))
}

/// The site's witness key, made (mode 0600) the first time it is needed; named `<site>/witness`.
pub fn witness_key(path: &Path, site: &str) -> Result<SiteKey> {
    if !path.exists() {
        SiteKey::generate(&format!("{site}/witness")).write_new(path)?;
    }
    Ok(SiteKey::read(path)?)
}

/// What a witness answers a child: the cosignature lines (200), or why not (its tlog-witness status).
#[derive(Debug)]
pub enum WitnessAnswer {
    Cosigned(String),
    Refused(Refusal),
}

fn ms(at: OffsetDateTime) -> i64 {
    (at.unix_timestamp_nanos() / 1_000_000) as i64
}

impl Site {
    /// A tlog-witness `add-checkpoint` request from a child: checked against the child's key and the
    /// checkpoint cosigned before, recorded, cosigned. A checkpoint signed by the child's key that
    /// contradicts the one cosigned before is kept with it as evidence, and opens a critical incident.
    pub fn add_checkpoint(&mut self, children: &Children, key: &SiteKey, body: &str, at: OffsetDateTime) -> Result<WitnessAnswer> {
        let req = match AddCheckpoint::parse(body) {
            Ok(r) => r,
            Err(refusal) => return Ok(WitnessAnswer::Refused(refusal)),
        };
        let origin = match witness::origin_of(&req.note) {
            Ok(o) => o.to_string(),
            Err(refusal) => return Ok(WitnessAnswer::Refused(refusal)),
        };
        let Some(child) = children.children.get(&origin) else {
            return Ok(WitnessAnswer::Refused(Refusal::UnknownLog(format!("no child site with the origin {origin:?} is witnessed here"))));
        };
        let log = CheckpointVerifier::new(&child.key)?;
        let held = self.store.witnessed(&origin)?;
        let latest = held.as_ref().map(|w| witness::Witnessed { size: w.size, root: w.root, note: w.note.clone() });
        let cp = match witness::check_add_checkpoint(&req, &log, latest.as_ref()) {
            Ok(cp) => cp,
            Err(Refusal::Inconsistent(why)) => {
                if let Some(w) = &held {
                    self.fork_found(&origin, child, w, &req.note, &why, at)?;
                }
                return Ok(WitnessAnswer::Refused(Refusal::Inconsistent(why)));
            }
            Err(refusal) => return Ok(WitnessAnswer::Refused(refusal)),
        };
        let line = witness::cosign(key, &req.note, at.unix_timestamp().max(0) as u64)?;
        let new = Witnessed { origin, size: cp.size, root: cp.root, note: req.note, cosignature: line.clone(), at_ms: ms(at) };
        if !self.store.witness_advance(req.old, &new)? {
            let latest = self.store.witnessed(&new.origin)?.map_or(0, |w| w.size);
            return Ok(WitnessAnswer::Refused(Refusal::Conflict { latest }));
        }
        Ok(WitnessAnswer::Cosigned(line))
    }

    /// Two signed checkpoints of a child that cannot both be true: both kept, and a critical
    /// incident at the child's unit, raised by the site itself.
    fn fork_found(&mut self, origin: &str, child: &Child, held: &Witnessed, offered: &str, why: &str, at: OffsetDateTime) -> Result<()> {
        let offered_size = offered.lines().nth(1).unwrap_or("?").to_string();
        // The same contradicting checkpoint offered again is the same evidence, and the same incident.
        if self.store.fork_evidence()?.iter().any(|e| e.origin == origin && e.offered_note == offered) {
            return Ok(());
        }
        self.store.add_fork_evidence(&ForkEvidence {
            origin: origin.to_string(),
            held_note: held.note.clone(),
            offered_note: offered.to_string(),
            reason: why.to_string(),
            at_ms: ms(at),
        })?;
        let summary = format!(
            "the ledger of site {origin} was rewritten: its checkpoint of size {offered_size} signed with its key contradicts the checkpoint of size {} (root {}) cosigned here on {}; {why}. Both signed checkpoints are kept (qm witness evidence)",
            held.size,
            hex(&held.root),
            crate::conditions::from_ms(held.at_ms).format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        );
        let key = format!(
            "fork-{origin}-{}-{}",
            held.size,
            hex(&sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(offered)))
        );
        self.child_incident(origin, child, &summary, key, at)
    }

    /// A critical `ledger_fork` incident about a child's ledger at the child's unit, opened by the
    /// site itself; once per idempotency key. The summary is cut to what an incident holds.
    pub(crate) fn child_incident(&mut self, origin: &str, child: &Child, summary: &str, key: String, at: OffsetDateTime) -> Result<()> {
        self.child_incident_of(origin, child, (IncidentKind::LedgerFork, Severity::Critical), summary, key, at).map(|_| ())
    }

    /// An incident at the unit a child serves here, of `kind` and severity, opened by the site
    /// itself once per `key`; whether it was opened now (not before).
    pub(crate) fn child_incident_of(
        &mut self,
        origin: &str,
        child: &Child,
        (kind, severity): (IncidentKind, Severity),
        summary: &str,
        key: String,
        at: OffsetDateTime,
    ) -> Result<bool> {
        let unit = UnitId::parse(&child.unit).map_err(|e| AppError::Usage(format!("child {origin}: unit: {e}")))?;
        let site = Badge::parse(qm_core::incidents::SITE_ACTOR).map_err(|e| AppError::Internal(e.to_string()))?;
        let max = qm_core::decide::TEXT_LEN_MAX;
        let summary = if summary.chars().count() > max {
            format!("{}…", summary.chars().take(max - 1).collect::<String>())
        } else {
            summary.to_string()
        };
        let command =
            Command::OpenIncident { kind, severity, unit, location: None, objects: Default::default(), summary, discovered_at: None };
        Ok(!self.execute(Request::new(site, command, key, at))?.replayed)
    }

    /// What a child sends its parent: the latest checkpoint (signed now if the ledger grew) with a
    /// consistency proof from the size the parent holds.
    pub fn add_checkpoint_request(&mut self, parent_holds: u64) -> Result<AddCheckpoint> {
        self.checkpoint_if_grown()?;
        let latest = self
            .store
            .checkpoints()?
            .pop()
            .ok_or_else(|| AppError::Usage("this site has no checkpoint yet; run `qm checkpoint`".into()))?;
        if parent_holds > latest.size {
            return Err(AppError::Usage(format!(
                "the parent holds size {parent_holds} of this site's ledger, which has {} entries: this database is older than what the parent saw (a restored backup?)",
                latest.size
            )));
        }
        let proof = if parent_holds == 0 || parent_holds == latest.size {
            vec![]
        } else {
            qm_ledger::prove_consistency(parent_holds, latest.size, &StoreHashes(self.store.as_ref()))?
        };
        Ok(AddCheckpoint { old: parent_holds, proof, note: latest.note })
    }

    /// Keeps the parent's cosignature of this site's checkpoint, once it verifies against the
    /// parent's witness key.
    pub fn keep_cosignature(&mut self, note: &str, lines: &str, witness_vkey: &str, at: OffsetDateTime) -> Result<Cosignature> {
        let verifier = self.state.site.as_ref().map(|s| s.verifier_key.clone()).unwrap_or_default();
        let log = CheckpointVerifier::new(&verifier)?;
        for line in lines.lines().filter(|l| !l.is_empty()) {
            let line = format!("{line}\n");
            if let Ok((cp, _)) = witness::open_cosigned(&format!("{note}{line}"), &log, witness_vkey) {
                let name = line.trim_start_matches('—').trim().split(' ').next().unwrap_or_default().to_string();
                let c = Cosignature { size: cp.size, witness: name, line, at_ms: ms(at) };
                self.store.add_cosignature(&c)?;
                return Ok(c);
            }
        }
        Err(AppError::Usage(format!("the parent's answer holds no cosignature that verifies with its key {witness_vkey}")))
    }

    /// The size the parent was last seen to hold (its latest cosignature here), 0 if none.
    pub fn cosigned_size(&self) -> Result<u64> {
        Ok(self.store.cosignatures()?.iter().map(|c| c.size).max().unwrap_or(0))
    }

    pub fn cosignatures(&self) -> Result<Vec<Cosignature>> {
        Ok(self.store.cosignatures()?)
    }

    pub fn witnessed(&self) -> Result<Vec<Witnessed>> {
        Ok(self.store.witnessed_all()?)
    }

    pub fn fork_evidence(&self) -> Result<Vec<ForkEvidence>> {
        Ok(self.store.fork_evidence()?)
    }
}

/// A cosigned checkpoint brought back on media, split into the note as `site` signed it and the
/// other signature lines (the witness's cosignatures).
pub fn split_cosigned(text: &str, site: &str) -> (String, String) {
    let (body, sigs) = text.split_once("\n\n").unwrap_or((text, ""));
    let own = format!("— {site} ");
    let (mine, others): (Vec<&str>, Vec<&str>) = sigs.lines().filter(|l| !l.is_empty()).partition(|l| l.starts_with(&own));
    let note = format!("{body}\n\n{}", mine.iter().map(|l| format!("{l}\n")).collect::<String>());
    (note, others.iter().map(|l| format!("{l}\n")).collect())
}

/// A child site not heard from for longer than this is shown as silent (docs/sites.md).
pub const SILENT_AFTER_H: i64 = 24;

/// One child site as headquarters sees it: the latest checkpoint cosigned for it and when, and
/// whether it stands (`consistent`), has not been heard from for a day (`silent`), never asked
/// (`never`), or offered a checkpoint that contradicts one cosigned before (`rewritten`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct SiteView {
    pub origin: String,
    pub unit: String,
    pub size: Option<u64>,
    pub cosigned_at: Option<String>,
    pub age_h: Option<i64>,
    pub evidence: usize,
    pub state: &'static str,
    /// Entries held here as the site's mirror, stored, replayed and cosigned.
    pub mirrored: u64,
    /// Entries witnessed but not yet mirrored (the site's upload is behind, or refused).
    pub backlog: u64,
}

/// Every child site in the children file, rewritten ones first, then the silent, the never heard
/// from, and the consistent.
pub fn sites_view(site: &Site, children: &Children, now: OffsetDateTime) -> Result<Vec<SiteView>> {
    let witnessed: BTreeMap<String, Witnessed> = site.witnessed()?.into_iter().map(|w| (w.origin.clone(), w)).collect();
    let evidence = site.fork_evidence()?;
    let mirrored: BTreeMap<String, u64> = site.mirrored()?.into_iter().map(|m| (m.origin, m.size)).collect();
    let zone = crate::zone::SiteZone::of(site.state());
    let mut out: Vec<SiteView> = children
        .children
        .iter()
        .map(|(origin, child)| {
            let w = witnessed.get(origin);
            let at = w.map(|w| crate::conditions::from_ms(w.at_ms));
            let age_h = at.map(|a| (now - a).whole_hours());
            let evidence = evidence.iter().filter(|e| e.origin == *origin).count();
            let state = match (evidence, age_h) {
                (1.., _) => "rewritten",
                (0, None) => "never",
                (0, Some(h)) if h >= SILENT_AFTER_H => "silent",
                _ => "consistent",
            };
            let held = mirrored.get(origin).copied().unwrap_or(0);
            SiteView {
                origin: origin.clone(),
                unit: child.unit.clone(),
                size: w.map(|w| w.size),
                cosigned_at: at.map(|a| zone.show(a)),
                age_h,
                evidence,
                state,
                mirrored: held,
                backlog: w.map_or(0, |w| w.size.saturating_sub(held)),
            }
        })
        .collect();
    let rank = |s: &str| ["rewritten", "silent", "never", "consistent"].iter().position(|x| *x == s).unwrap_or(4);
    out.sort_by_key(|v| rank(v.state));
    Ok(out)
}

/// A tile the ledger is served as (C2SP tlog-tiles, docs/sites.md): a hash tile, or an entry bundle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TileAt {
    /// `None`: the entry bundle; otherwise the hash tile's level.
    pub level: Option<u8>,
    pub index: u64,
    /// How many hashes or entries (256 for a full tile).
    pub width: u32,
}

/// Reads a tlog-tiles path after `tile/`: `<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`, N in groups
/// of three digits (`x001/234`). None: not a tile path.
pub fn tile_at(path: &str) -> Option<TileAt> {
    let go = match path.strip_prefix("entries/") {
        Some(rest) => format!("tile/8/data/{rest}"),
        None => format!("tile/8/{path}"),
    };
    let t = qm_ledger::Tile::from_path(&go).ok()?;
    Some(TileAt { level: (!t.is_data()).then_some(t.level()), index: t.level_index(), width: t.width() })
}

impl Site {
    /// The latest checkpoint, with the parent's cosignatures of it attached (the note a tlog-tiles
    /// client starts from).
    pub fn served_checkpoint(&self) -> Result<String> {
        let latest = self.store.checkpoints()?.pop().ok_or_else(|| AppError::Usage("no checkpoint yet".into()))?;
        let cosigs: String = self.store.cosignatures()?.into_iter().filter(|c| c.size == latest.size).map(|c| c.line).collect();
        Ok(format!("{}{cosigs}", latest.note))
    }

    /// A tile of the ledger as it is now: hash tiles from the stored tree hashes; an entry bundle is
    /// each entry with its length in two bytes (tlog-tiles), refused if an entry is longer.
    pub fn tile(&self, t: TileAt) -> Result<Vec<u8>> {
        let size = self.size();
        let Some(level) = t.level else {
            let have = qm_ledger::tile_width(0, t.index, size);
            if t.width == 0 || t.width > have {
                return Err(AppError::Rejected(qm_core::Rejection::NotFound {
                    what: "tile",
                    id: format!("entries/{} ({} entries)", t.index, t.width),
                }));
            }
            let mut out = vec![];
            for e in self.store.read_entries(t.index * 256, t.width as usize)? {
                let n = u16::try_from(e.bytes.len()).map_err(|_| {
                    AppError::Usage(format!(
                        "entry {} is {} bytes, more than a tlog-tiles bundle carries (65,535): it was written before entries were \
                         limited to that size (docs/sites.md)",
                        e.seq,
                        e.bytes.len()
                    ))
                })?;
                out.extend_from_slice(&n.to_be_bytes());
                out.extend_from_slice(&e.bytes);
            }
            return Ok(out);
        };
        // A tile wider than the tree holds is the ledger's refusal, and a 404 to the client.
        qm_ledger::hash_tile(level, t.index, t.width, size, &StoreHashes(self.store.as_ref())).map_err(|e| match e {
            qm_ledger::LedgerError::InvalidInput(m) => AppError::Rejected(qm_core::Rejection::NotFound { what: "tile", id: m }),
            other => other.into(),
        })
    }
}

impl Site {
    /// Entry `seq` as a C2SP tlog-proof (docs/sites.md): its canonical bytes as the `extra` data, its
    /// inclusion proof in the largest checkpoint that covers it and that the parent cosigned (the
    /// latest that covers it when none was cosigned), and that checkpoint with its cosignatures.
    pub fn tlog_proof(&self, seq: u64) -> Result<String> {
        let cosigs = self.store.cosignatures()?;
        let covering: Vec<_> = self.store.checkpoints()?.into_iter().filter(|c| c.size > seq).collect();
        let cp = covering
            .iter()
            .rev()
            .find(|c| cosigs.iter().any(|s| s.size == c.size))
            .or(covering.last())
            .ok_or_else(|| AppError::Usage(format!("no checkpoint covers entry {seq} yet; run `qm checkpoint`")))?;
        let lines: String = cosigs.iter().filter(|s| s.size == cp.size).map(|s| s.line.clone()).collect();
        let entry = self
            .store
            .read_entries(seq, 1)?
            .pop()
            .ok_or_else(|| AppError::Rejected(qm_core::Rejection::NotFound { what: "entry", id: seq.to_string() }))?;
        let proof = qm_ledger::prove_inclusion(seq, cp.size, &StoreHashes(self.store.as_ref()))?;
        let p = qm_ledger::proof::TlogProof { extra: Some(entry.bytes), index: seq, proof, note: format!("{}{lines}", cp.note) };
        // Checked before it leaves: the site's key, and the inclusion against the signed root.
        let verifier = self.state.site.as_ref().map(|s| s.verifier_key.clone()).unwrap_or_default();
        let entry = p.extra.clone().unwrap_or_default();
        p.verify(&entry, &CheckpointVerifier::new(&verifier)?, &[])?;
        Ok(p.text())
    }
}

/// Where this site stands with its parent: the largest size it cosigned, when, and how many entries
/// wait to be (the next sync carries them all).
#[derive(Clone, Debug, serde::Serialize)]
pub struct ParentStatus {
    pub size: u64,
    pub cosigned_size: u64,
    pub cosigned_at: Option<String>,
    pub age_h: Option<i64>,
    pub waiting: u64,
    pub witness: Option<String>,
    /// Entries of the parent's ledger recorded here (docs/sites.md, "Down the tree").
    pub received: usize,
    /// Those the books here could not take: `entry 12 of hq.example (item_type_defined): why`.
    pub not_taken: Vec<String>,
}

impl Site {
    pub fn parent_status(&self, now: OffsetDateTime) -> Result<ParentStatus> {
        let latest = self.store.cosignatures()?.into_iter().max_by_key(|c| (c.size, c.at_ms));
        let at = latest.as_ref().map(|c| crate::conditions::from_ms(c.at_ms));
        let cosigned_size = latest.as_ref().map_or(0, |c| c.size);
        Ok(ParentStatus {
            size: self.size(),
            cosigned_size,
            cosigned_at: at.map(|a| crate::zone::SiteZone::of(self.state()).show(a)),
            age_h: at.map(|a| (now - a).whole_hours()),
            waiting: self.size().saturating_sub(cosigned_size),
            witness: latest.map(|c| c.witness),
            received: self.state.received.len(),
            not_taken: self
                .state
                .received
                .iter()
                .filter(|(_, t)| !t.note.is_empty())
                .map(|(k, t)| match qm_core::down::parse_received_key(k) {
                    Some((origin, seq)) => format!("entry {seq} of {origin} ({}): {}", t.what, t.note),
                    None => format!("{k} ({}): {}", t.what, t.note),
                })
                .collect(),
        })
    }
}
