//! The auditor: re-hashes every stored entry, checks every checkpoint, replays the ledger into fresh
//! projections and compares them with the stored ones. Used by `qm verify` and by the tests.

use crate::decode;
use qm_core::State;
use qm_ledger::{leaf_hash, Frontier, Hash};
use qm_store::{EntrySource, StoreHashes};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    pub entries: u64,
    pub checkpoints: usize,
    pub projection_rows: usize,
    pub readings_batches: usize,
    pub door_batches: usize,
    /// False when the events were not replayed (`skip_replay`): only the cryptographic checks ran.
    pub replayed: bool,
    /// Index of the first entry found bad, if any.
    pub first_bad_entry: Option<u64>,
    pub problems: Vec<String>,
    pub root: String,
    /// Entries after the latest signed checkpoint: the tamper window, where a removal or rewrite by
    /// someone holding the key would not yet contradict a signature (docs/ledger.md).
    pub uncheckpointed: u64,
}

impl VerifyReport {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Options for an auditor who brings their own trust anchor.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// Verifier key to check checkpoints with; default: the one recorded at the site's genesis.
    pub verifier_key: Option<String>,
    /// Skip the projection replay (only the cryptographic checks).
    pub skip_replay: bool,
    /// Count entries that no signed checkpoint covers as a problem (`qm verify --require-checkpointed`).
    pub require_checkpointed: bool,
}

/// Entries per chunk of the tree check: a perfect subtree of 2^CHUNK_LEVEL entries (4,096; about
/// 1 MB), small enough that a ledger of a few thousand entries is already read on every core.
pub const CHUNK_LEVEL: u8 = 12;

/// Reader threads for the tree check: one per core, at most four.
fn hash_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(4)
}

/// What one chunk of the ledger showed: its own tree, and where it stopped being whole.
struct ChunkCheck {
    index: u64,
    /// Entries read, contiguous from the chunk's first.
    count: u64,
    /// Why the chunk ends early: an entry missing or unreadable.
    stop: Option<String>,
    /// Entries whose stored hashes (up to the chunk's root) differ from the re-computed ones, each
    /// with the first entry that may be the altered one (see [`suspects_from`]) and the first entry
    /// the differing node covers (see [`Bad`]).
    bad: Vec<Bad>,
    /// The chunk's own tree.
    local: Frontier,
    /// The chunk's tree at each checkpoint size inside it (global size, frontier).
    snapshots: Vec<(u64, Frontier)>,
    /// The stored hashes above the chunk's root that its last entry's append created (from level
    /// `max(level + 1, derived)` up); checked when the chunks are merged, because they depend on
    /// the chunks before.
    upper: Vec<u8>,
}

/// Re-hashes entries `[index << level, min((index + 1) << level, end))` into a tree of their own and
/// compares every stored hash that lies inside the chunk.
fn check_chunk(store: &dyn EntrySource, level: u8, index: u64, end: u64, sizes: &BTreeMap<u64, usize>) -> ChunkCheck {
    let chunk = 1u64 << level;
    let start = index << level;
    let stop_at = (start + chunk).min(end);
    let mut c = ChunkCheck { index, count: 0, stop: None, bad: vec![], local: Frontier::new(), snapshots: vec![], upper: vec![] };
    let mut marks = sizes.range(start + 1..=stop_at).map(|(s, _)| *s).peekable();
    let derived = store.derived_hash_levels();
    let scanned = store.scan_tree(start, stop_at, &mut |seq, bytes, hashes| {
        let expected = start + c.count;
        if seq != expected {
            c.stop = Some(format!("entry {expected} is missing (next stored entry is {seq})"));
            return false;
        }
        // The last entry of a whole chunk also completes parents above the chunk: those are compared
        // when the chunks are merged.
        // `hashes` holds the stored ones only: levels from `derived` up.
        let last_of_chunk = c.count == chunk - 1;
        let mut level = 0usize;
        let mut differs_at: Option<usize> = None;
        c.local.push_visit(leaf_hash(bytes), |h| {
            if let Some(k) = level.checked_sub(derived) {
                if differs_at.is_none() && hashes.get(k * 32..k * 32 + 32) != Some(h.as_slice()) {
                    differs_at = Some(level);
                }
            }
            level += 1;
        });
        let kept = level.saturating_sub(derived);
        if last_of_chunk {
            c.upper = hashes.get(kept * 32..).unwrap_or_default().to_vec();
        } else if differs_at.is_none() && hashes.len() != kept * 32 {
            differs_at = Some(level);
        }
        if let Some(at) = differs_at {
            c.bad.push(Bad::at(seq, at, derived));
        }
        c.count += 1;
        if marks.peek() == Some(&(start + c.count)) {
            marks.next();
            c.snapshots.push((start + c.count, c.local.clone()));
        }
        true
    });
    if let Err(e) = scanned {
        c.stop = Some(format!("entry {}: cannot be read: {e}", start + c.count));
    } else if c.stop.is_none() && start + c.count < stop_at {
        c.stop = Some(format!("entry {} is missing", start + c.count));
    }
    c
}

/// A stored tree hash that differs from the re-computed one: stored with entry `seq`, over a node
/// whose entries start at `covers_from`; `first` is the first entry that may be to blame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Bad {
    seq: u64,
    first: u64,
    covers_from: u64,
}

impl Bad {
    /// The node at `level` completed by entry `seq`'s append (`usize::MAX`: the count of hashes
    /// stored with it differs, which is its own).
    fn at(seq: u64, level: usize, derived: usize) -> Bad {
        let span = if level >= 63 { 1 } else { 1u64 << level };
        Bad { seq, first: suspects_from(seq, level, derived), covers_from: (seq + 1).saturating_sub(span) }
    }
}

/// Drops the differences that an altered entry below explains: one altered entry changes every node
/// above it, and those are stored with later, unaltered entries. A node's difference is the news
/// only when no entry inside it differs on its own (then the stored hash itself was altered).
fn unexplained(mut bad: Vec<Bad>) -> Vec<Bad> {
    bad.sort_unstable();
    bad.dedup();
    let seqs: std::collections::BTreeSet<u64> = bad.iter().map(|b| b.seq).collect();
    bad.into_iter().filter(|b| seqs.range(b.covers_from..b.seq).next().is_none()).collect()
}

struct Merged {
    frontier: Frontier,
    roots_at: BTreeMap<u64, Hash>,
    bad: Vec<Bad>,
    /// Entries whole and in order from the first.
    entries: u64,
    stop: Option<String>,
}

/// The first entry that may be to blame when a hash stored with entry `seq`, at tree level `level`,
/// differs from the one re-computed. Where every level is stored, the levels below it matched, so
/// it is that entry's own stored hash. Where the store derives the levels below `derived`, a
/// difference at the lowest stored level covers all the entries of that node (a tile of 256 on
/// PostgreSQL): any of them may have been altered.
fn suspects_from(seq: u64, level: usize, derived: usize) -> u64 {
    if derived > 0 && level == derived {
        (seq + 1).saturating_sub(1u64 << derived.min(63))
    } else {
        seq
    }
}

/// Puts the chunks' trees together in order: the tree of the whole ledger, its root at every
/// checkpoint size, and the check of the hashes above each chunk.
fn merge_chunks(chunks: Vec<ChunkCheck>, level: u8, derived: usize, sizes: &BTreeMap<u64, usize>) -> Merged {
    let chunk = 1u64 << level;
    let mut m = Merged { frontier: Frontier::new(), roots_at: BTreeMap::new(), bad: vec![], entries: 0, stop: None };
    if sizes.contains_key(&0) {
        m.roots_at.insert(0, m.frontier.root());
    }
    for (expected_index, c) in chunks.into_iter().enumerate() {
        if c.index != expected_index as u64 {
            m.stop = Some(format!("entries from {} on were not checked", m.entries));
            break;
        }
        m.bad.extend(&c.bad);
        for (size, part) in &c.snapshots {
            if part.size() < chunk {
                if let Ok(joined) = m.frontier.joined(part) {
                    m.roots_at.insert(*size, joined.root());
                }
            }
        }
        if c.count < chunk {
            m.entries += c.count;
            if let Ok(joined) = m.frontier.joined(&c.local) {
                m.frontier = joined;
            }
            // The ledger's last, partial chunk; `stop` says why, if it ended early.
            m.stop = c.stop;
            break;
        }
        // A whole chunk (even one whose scan failed only after its last row): a subtree of the tree.
        let mut above: Vec<Hash> = vec![];
        if m.frontier.push_subtree(level, c.local.root(), |h| above.push(*h)).is_err() {
            m.stop = Some(format!("entries from {} on could not be put in the tree", m.entries));
            break;
        }
        m.entries += chunk;
        // `above` holds levels `level` (the chunk's root) and up; the store keeps those from `derived`.
        let skip = derived.saturating_sub(usize::from(level)).max(1);
        let differs = above.iter().skip(skip).zip(c.upper.chunks_exact(32)).position(|(a, b)| a.as_slice() != b);
        if differs.is_some() || above.len().saturating_sub(skip) * 32 != c.upper.len() {
            // The level that differs (none: the count of hashes does, and it is this entry's own).
            let at = differs.map_or(usize::MAX, |i| usize::from(level) + skip + i);
            m.bad.push(Bad::at(m.entries - 1, at, derived));
        }
        if c.snapshots.last().is_some_and(|(_, part)| part.size() == chunk) {
            m.roots_at.insert(m.entries, m.frontier.root());
        }
        if c.stop.is_some() {
            m.stop = c.stop;
            break;
        }
    }
    m.bad = unexplained(m.bad);
    m
}

type Rows = Vec<(String, String, String)>;

/// What the replay found: the rows of the fresh books when they had replayed as many entries as the
/// stored rows cover, readings digests, problems, and whether the whole ledger replayed.
type Replayed = (Option<Rows>, Vec<Digest>, Vec<(u64, String)>, bool);

/// A batch kept outside the ledger that an entry's digest covers: `(seq, door events?, location or
/// source, count, sha256)`.
type Digest = (u64, bool, String, u64, String);

fn rows_of(state: &State) -> Rows {
    state.all_rows().into_iter().map(|(k, v)| (k.kind.to_string(), k.key, v)).collect()
}

/// The auditor's replay, entry by entry: the books rebuilt by `State::apply`, and beside them the
/// auditor's own fold (`qm_core::invariants`), independent of `State::apply`. `qm verify` replays a
/// site's ledger with it; a parent replays each child's mirrored ledger with it (docs/sites.md).
pub struct Replay {
    state: State,
    audit: qm_core::invariants::Audit,
    problems: Vec<(u64, String)>,
    ok: bool,
}

impl Default for Replay {
    fn default() -> Self {
        Replay { state: State::new(), audit: qm_core::invariants::Audit::new(), problems: vec![], ok: true }
    }
}

impl Replay {
    /// How many entries have been folded in.
    pub fn size(&self) -> u64 {
        self.state.next_seq
    }

    /// The books as replayed so far.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// Whether every entry so far was read and applied.
    pub fn ok(&self) -> bool {
        self.ok
    }

    /// Folds entry `seq` in; its event, or `None` once the replay cannot go on (an entry that cannot
    /// be read, or that the books refuse: the problem is noted).
    pub fn feed(&mut self, seq: u64, bytes: &[u8]) -> Option<qm_core::Envelope> {
        if !self.ok {
            return None;
        }
        match decode(bytes) {
            Err(e) => {
                self.problems.push((seq, format!("entry {seq}: not a readable event: {e}")));
                self.ok = false;
                None
            }
            Ok(env) => {
                self.audit.observe(&env);
                if let Err(e) = self.state.apply(&env) {
                    self.problems.push((seq, format!("entry {seq}: replay fails: {}", e.reason)));
                    self.ok = false;
                }
                Some(env)
            }
        }
    }

    /// Notes a problem found outside the replay (the entry `seq` is not what it must be) and stops it.
    pub fn refuse(&mut self, seq: u64, why: String) {
        self.problems.push((seq, why));
        self.ok = false;
    }

    /// Every problem found so far, the auditor's comparison with the books included (made now, when
    /// every entry replayed).
    pub fn problems(&mut self) -> Vec<(u64, String)> {
        if self.ok {
            self.audit.compare(&self.state);
        }
        let mut out = self.problems.clone();
        for v in self.audit.violations() {
            out.push((v.seq, format!("entry {}: impossible books: {} (rule {})", v.seq, v.message, v.rule)));
        }
        out
    }
}

/// Decodes every entry below `end` into fresh books, rows read in place without copies, and takes
/// their rows at `rows_at` entries (the stored rows may lag the ledger: see `Site::start_writer`).
fn replay(store: &dyn EntrySource, end: u64, rows_at: u64) -> Replayed {
    let mut r = Replay::default();
    let mut digests: Vec<Digest> = vec![];
    let mut idem_problems: Vec<(u64, String)> = vec![];
    let mut rows = (rows_at == 0).then(|| rows_of(&r.state));
    let scanned = store.scan_range(0, end, &mut |seq, idem, bytes, _| {
        if let Some(env) = r.feed(seq, bytes) {
            if env.idempotency_key != idem {
                idem_problems.push((seq, format!("entry {seq}: idempotency key column differs from the entry")));
            }
            match &env.event {
                qm_core::Event::ReadingsRecorded { location, count, sha256, .. } => {
                    digests.push((seq, false, location.to_string(), *count, sha256.clone()))
                }
                qm_core::Event::DoorEvents { source, count, sha256, .. } => {
                    digests.push((seq, true, source.clone(), *count, sha256.clone()))
                }
                _ => {}
            }
            if r.ok && r.state.next_seq == rows_at {
                rows = Some(rows_of(&r.state));
            }
        }
        r.ok
    });
    if let Err(e) = scanned {
        r.problems.push((r.state.next_seq, format!("entry {}: cannot be read for the replay: {e}", r.state.next_seq)));
        r.ok = false;
    }
    let mut problems = idem_problems;
    problems.extend(r.problems());
    (rows, digests, problems, r.ok)
}

/// Condition readings and door events, kept outside the ledger: each batch must still hash to the
/// digest its entry recorded.
fn check_batches(store: &dyn EntrySource, digests: &[Digest], report: &mut VerifyReport) {
    for (seq, doors, name, count, sha) in digests {
        if *doors {
            if let Some(msg) = crate::access::check_digest(store, *seq, name, *count, sha) {
                problem(report, Some(*seq), msg);
            }
            continue;
        }
        let location = name;
        match store.readings_of_digest(*seq) {
            Err(e) => problem(report, Some(*seq), format!("entry {seq}: cannot read its condition readings: {e}")),
            Ok(rows) => {
                let actual = crate::conditions::digest(
                    rows.iter().map(|r| crate::conditions::digest_line(&r.location, r.at_ms, r.temperature_c, r.humidity_pct)),
                );
                if rows.len() as u64 != *count || actual != *sha || rows.iter().any(|r| r.location != *location) {
                    problem(
                        report,
                        Some(*seq),
                        format!("entry {seq}: the {} stored condition readings of {location} no longer match the digest recorded for {count} readings: the series was altered", rows.len()),
                    );
                }
            }
        }
    }
}

/// Notes a problem (the first 50), and the first bad entry.
fn problem(r: &mut VerifyReport, bad: Option<u64>, msg: String) {
    if let Some(b) = bad {
        r.first_bad_entry = Some(r.first_bad_entry.map_or(b, |f| f.min(b)));
    }
    if r.problems.len() < 50 {
        r.problems.push(msg);
    }
}

/// With `--require-checkpointed`: the entries after the latest signed checkpoint, as a problem.
fn window_problem(uncheckpointed: u64, entries: u64) -> Option<String> {
    (uncheckpointed > 0).then(|| {
        let first = entries - uncheckpointed;
        format!("{uncheckpointed} entries ({first} to {}) are not covered by a signed checkpoint; run `qm checkpoint`", entries - 1)
    })
}

/// Runs every check; never stops at the first problem of a kind it can still look past.
pub fn verify(store: &dyn EntrySource, opts: &VerifyOptions) -> VerifyReport {
    verify_in_chunks(store, opts, CHUNK_LEVEL)
}

/// [`verify`] with chunks of `2^level` entries (tests use small ones to cross many chunk edges).
pub fn verify_in_chunks(store: &dyn EntrySource, opts: &VerifyOptions, level: u8) -> VerifyReport {
    let mut report = VerifyReport { replayed: !opts.skip_replay, ..VerifyReport::default() };
    let checkpoints = store.checkpoints().unwrap_or_else(|e| {
        problem(&mut report, None, format!("cannot read checkpoints: {e}"));
        vec![]
    });
    report.checkpoints = checkpoints.len();
    let sizes: BTreeMap<u64, usize> = checkpoints.iter().enumerate().map(|(i, c)| (c.size, i)).collect();
    let mut replay_ok = !opts.skip_replay;
    let mut digests: Vec<Digest> = vec![];
    // The stored rows are read before the entries are counted: rows are written with or after the
    // entries they cover, so a commit meanwhile cannot make them cover more than the count.
    let mut stored: Rows = vec![];
    if !opts.skip_replay {
        if let Err(e) = store.for_each_row(&mut |k, key, v| {
            stored.push((k.to_string(), key.to_string(), v.to_string()));
            Ok(())
        }) {
            problem(&mut report, None, format!("cannot read stored projections: {e}"));
            replay_ok = false;
        }
        stored.sort();
    }
    let rows_at = stored.iter().find(|(k, key, _)| k == "meta" && key == "next_seq").and_then(|r| r.2.parse::<u64>().ok()).unwrap_or(0);
    let end = store.entry_count().unwrap_or_else(|e| {
        problem(&mut report, Some(0), format!("cannot count the entries: {e}"));
        0
    });
    // The key that signed the checkpoints: the auditor's own, or the one the genesis entry records.
    let genesis_key = || -> Option<String> {
        let first = store.read_entries(0, 1).ok()?.into_iter().next()?;
        match decode(&first.bytes).ok()?.event {
            qm_core::Event::SiteInitialized { verifier_key, .. } => Some(verifier_key),
            _ => None,
        }
    };
    let verifier = opts.verifier_key.clone().or_else(genesis_key);
    let key = verifier.as_deref().map(qm_ledger::CheckpointVerifier::new);
    // Chunks are handed out in order to whichever reader is free, so all finish together.
    let next = AtomicU64::new(0);
    let first_stop = AtomicU64::new(u64::MAX);
    let (hashed, replayed, opened) = std::thread::scope(|scope| {
        // Every checkpoint's signature, on a thread of its own from the start (it parses the key
        // again: a verifier is not Sync): it has a core to itself while the readers connect.
        let signatures = scope.spawn(|| match verifier.as_deref().map(qm_ledger::CheckpointVerifier::new) {
            Some(Ok(v)) => checkpoints.iter().map(|cp| v.open(&cp.note)).collect(),
            _ => vec![],
        });
        // The tree is checked in aligned chunks on reader threads of their own (one connection
        // each, each reader starting as soon as its connection is open); meanwhile this thread
        // replays the ledger into fresh books, decoding rows in place.
        let (tx, rx) = std::sync::mpsc::channel::<ChunkCheck>();
        let mut workers = 0;
        for reader in (0..hash_threads()).map_while(|_| store.open_reader().ok().flatten()) {
            workers += 1;
            let (tx, next, first_stop, sizes) = (tx.clone(), &next, &first_stop, &sizes);
            scope.spawn(move || loop {
                let index = next.fetch_add(1, Ordering::Relaxed);
                // Past a chunk where the ledger stopped being whole nothing more is merged: a gap or
                // one absurd sequence number must not send the readers through every index up to it.
                if index << level >= end || index > first_stop.load(Ordering::Relaxed) {
                    return;
                }
                let c = check_chunk(reader.as_ref(), level, index, end, sizes);
                if c.stop.is_some() {
                    first_stop.fetch_min(index, Ordering::Relaxed);
                }
                if tx.send(c).is_err() {
                    return;
                }
            });
        }
        drop(tx);
        let replayed = (!opts.skip_replay).then(|| replay(store, end, rows_at));
        let mut chunks: Vec<ChunkCheck> = if workers == 0 {
            // No second connection (a backend that cannot give one): the same checks, here.
            let mut chunks = vec![];
            for i in 0..end.div_ceil(1 << level) {
                let c = check_chunk(store, level, i, end, &sizes);
                let stop = c.stop.is_some();
                chunks.push(c);
                if stop {
                    break;
                }
            }
            chunks
        } else {
            rx.into_iter().collect()
        };
        chunks.sort_by_key(|c| c.index);
        // A check that stopped (a panic on some note) counts as every signature unchecked, never as none to check.
        let opened: Vec<_> = signatures.join().unwrap_or_else(|_| {
            checkpoints.iter().map(|_| Err(qm_ledger::LedgerError::Note("the signature check stopped unexpectedly".into()))).collect()
        });
        (merge_chunks(chunks, level, store.derived_hash_levels(), &sizes), replayed, opened)
    });
    let Merged { frontier, roots_at, bad, entries: expected, stop } = hashed;
    for Bad { first, seq, .. } in bad {
        let msg = if first == seq {
            format!("entry {seq}: its bytes do not hash to the tree hashes stored with it: the entry or its hashes were altered")
        } else {
            format!("entries {first}–{seq}: they do not hash to the tree hash stored above them with entry {seq}: one of them, or that hash, was altered")
        };
        problem(&mut report, Some(first), msg);
    }
    if let Some(msg) = stop {
        problem(&mut report, Some(expected), msg);
    }
    let mut fresh: Option<Rows> = None;
    if let Some((rows, d, problems, ok)) = replayed {
        fresh = rows;
        digests = d;
        replay_ok = ok;
        for (seq, msg) in problems {
            problem(&mut report, Some(seq), msg);
        }
    }
    report.entries = expected;
    report.root = crate::hex(&frontier.root());

    // Checkpoints: each signed by the site key, and each root equal to the tree rebuilt from the entries.
    match &key {
        None => problem(&mut report, None, "no verifier key: the ledger has no readable genesis entry; pass --verifier-key".into()),
        // Said once, not once per checkpoint.
        Some(Err(e)) => problem(
            &mut report,
            None,
            format!("the verifier key {:?} cannot check any checkpoint: {e}", verifier.as_deref().unwrap_or_default()),
        ),
        Some(Ok(_)) => {
            let mut previous: Option<(u64, Hash, bool)> = None;
            for (cp, opened) in checkpoints.iter().zip(opened) {
                match opened {
                    Err(e) => problem(&mut report, None, format!("checkpoint of size {}: signature does not verify: {e}", cp.size)),
                    Ok(c) if c.size != cp.size => {
                        problem(&mut report, None, format!("checkpoint stored as size {} says size {}", cp.size, c.size))
                    }
                    Ok(c) => {
                        let rebuilt = roots_at.get(&c.size) == Some(&c.root);
                        match roots_at.get(&c.size) {
                            None => problem(
                                &mut report,
                                Some(expected),
                                format!("checkpoint of size {} is signed, but the ledger holds only {expected} entries: the tree no longer matches the latest checkpoint (entries were removed)", c.size),
                            ),
                            Some(root) if *root != c.root => problem(
                                &mut report,
                                None,
                                format!("checkpoint of size {}: the tree rebuilt from the stored entries has a different root: history was altered", c.size),
                            ),
                            Some(_) => {}
                        }
                        // Each checkpoint must extend the previous one. When both roots equal the
                        // tree rebuilt from the entries, they are two sizes of one tree and so
                        // consistent; otherwise a consistency proof from stored hashes decides.
                        if let Some((psize, proot, prebuilt)) = previous {
                            if c.size <= expected && !(rebuilt && prebuilt) {
                                let reader = StoreHashes(store);
                                let ok = qm_ledger::prove_consistency(psize, c.size, &reader)
                                    .and_then(|p| qm_ledger::check_consistency(&p, psize, &proot, c.size, &c.root));
                                if let Err(e) = ok {
                                    problem(
                                        &mut report,
                                        None,
                                        format!("checkpoints of size {psize} and {} are not consistent: {e}", c.size),
                                    );
                                }
                            }
                        }
                        previous = Some((c.size, c.root, rebuilt));
                    }
                }
            }
        }
    }

    // The tamper window: entries the latest signed checkpoint does not cover yet.
    report.uncheckpointed = expected.saturating_sub(checkpoints.iter().map(|c| c.size).max().unwrap_or(0));
    if let Some(msg) = opts.require_checkpointed.then(|| window_problem(report.uncheckpointed, expected)).flatten() {
        problem(&mut report, None, msg);
    }

    check_batches(store, &digests, &mut report);
    report.readings_batches = digests.iter().filter(|d| !d.1).count();
    report.door_batches = digests.iter().filter(|d| d.1).count();

    // Projections: the stored rows must equal a fresh replay up to the entry they cover, row for row.
    if replay_ok {
        report.projection_rows = stored.len();
        let held = report.entries;
        match fresh {
            None => {
                problem(&mut report, None, format!("the stored projections say they cover {rows_at} entries but the ledger holds {held}"))
            }
            Some(fresh) if fresh != stored => {
                let diff = fresh.iter().zip(stored.iter()).find(|(a, b)| a != b);
                let msg = match diff {
                    Some((a, b)) => format!(
                        "stored projection differs from a replay of the ledger: replay has {} {:?} = {}, store has {} {:?} = {}",
                        a.0, a.1, a.2, b.0, b.1, b.2
                    ),
                    None => format!("stored projection has {} rows, a replay of the ledger gives {}", stored.len(), fresh.len()),
                };
                problem(&mut report, None, msg);
            }
            Some(_) => {}
        }
    }
    report
}
