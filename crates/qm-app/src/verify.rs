//! The auditor: re-hashes every stored entry, checks every checkpoint, replays the ledger into fresh
//! projections and compares them with the stored ones. Used by `qm verify` and by the tests.

use crate::decode;
use qm_core::State;
use qm_ledger::{leaf_hash, open_checkpoint, Frontier, Hash};
use qm_store::{Store, StoreHashes};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Default, Serialize)]
pub struct VerifyReport {
    pub entries: u64,
    pub checkpoints: usize,
    pub projection_rows: usize,
    pub readings_batches: usize,
    /// Index of the first entry found bad, if any.
    pub first_bad_entry: Option<u64>,
    pub problems: Vec<String>,
    pub root: String,
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
}

/// Runs every check; never stops at the first problem of a kind it can still look past.
pub fn verify(store: &dyn Store, opts: &VerifyOptions) -> VerifyReport {
    let mut report = VerifyReport::default();
    let problem = |r: &mut VerifyReport, bad: Option<u64>, msg: String| {
        if let Some(b) = bad {
            r.first_bad_entry = Some(r.first_bad_entry.map_or(b, |f| f.min(b)));
        }
        if r.problems.len() < 50 {
            r.problems.push(msg);
        }
    };
    let checkpoints = match store.checkpoints() {
        Ok(c) => c,
        Err(e) => {
            problem(&mut report, None, format!("cannot read checkpoints: {e}"));
            vec![]
        }
    };
    report.checkpoints = checkpoints.len();
    let sizes: BTreeMap<u64, usize> = checkpoints.iter().enumerate().map(|(i, c)| (c.size, i)).collect();
    let mut roots_at: BTreeMap<u64, Hash> = BTreeMap::new();
    let mut frontier = Frontier::new();
    let mut state = State::new();
    let mut replay_ok = !opts.skip_replay;
    let mut expected = 0u64;
    let mut digests: Vec<(u64, String, u64, String)> = vec![];
    // Three stages overlap: this thread reads rows from the store; a hasher re-hashes them and
    // rebuilds the tree; a replayer decodes them into fresh books. Chunks are shared, not copied twice.
    let replay = !opts.skip_replay;
    type Row = (u64, String, Vec<u8>, Vec<u8>);
    type Chunk = std::sync::Arc<Vec<Row>>;
    let (hashed, replayed) = std::thread::scope(|scope| {
        let (htx, hrx) = std::sync::mpsc::sync_channel::<Chunk>(16);
        let (rtx, rrx) = std::sync::mpsc::sync_channel::<Chunk>(16);
        let sizes = &sizes;
        let hasher = scope.spawn(move || {
            let mut frontier = Frontier::new();
            let mut roots_at: BTreeMap<u64, Hash> = BTreeMap::new();
            if sizes.contains_key(&0) {
                roots_at.insert(0, frontier.root());
            }
            let mut bad: Vec<u64> = vec![];
            for chunk in hrx {
                for (seq, _, bytes, hashes) in chunk.iter() {
                    let created = frontier.push(leaf_hash(bytes));
                    let same =
                        created.len() * 32 == hashes.len() && created.iter().zip(hashes.chunks_exact(32)).all(|(a, b)| a.as_slice() == b);
                    if !same {
                        bad.push(*seq);
                    }
                    if sizes.contains_key(&frontier.size()) {
                        roots_at.insert(frontier.size(), frontier.root());
                    }
                }
            }
            (frontier, roots_at, bad)
        });
        let replayer = replay.then(|| {
            scope.spawn(move || {
                let mut state = State::new();
                let mut digests: Vec<(u64, String, u64, String)> = vec![];
                let mut problems: Vec<(u64, String)> = vec![];
                let mut ok = true;
                for chunk in rrx {
                    for (seq, idem, bytes, _) in chunk.iter() {
                        if !ok {
                            break;
                        }
                        let seq = *seq;
                        match decode(bytes) {
                            Err(e) => {
                                problems.push((seq, format!("entry {seq}: not a readable event: {e}")));
                                ok = false;
                            }
                            Ok(env) => {
                                if env.idempotency_key != *idem {
                                    problems.push((seq, format!("entry {seq}: idempotency key column differs from the entry")));
                                }
                                if let qm_core::Event::ReadingsRecorded { location, count, sha256, .. } = &env.event {
                                    digests.push((seq, location.to_string(), *count, sha256.clone()));
                                }
                                if let Err(e) = state.apply(&env) {
                                    problems.push((seq, format!("entry {seq}: replay fails: {}", e.reason)));
                                    ok = false;
                                }
                            }
                        }
                    }
                }
                (state, digests, problems, ok)
            })
        });
        let mut chunk: Vec<Row> = Vec::with_capacity(1024);
        let mut gap = None;
        let send = |chunk: Vec<Row>| {
            let shared = std::sync::Arc::new(chunk);
            let a = htx.send(shared.clone()).is_ok();
            let b = !replay || rtx.send(shared).is_ok();
            a && b
        };
        // Without a replay there is nothing to overlap with, and hashing the rows in place, without
        // copying them, is the fastest path; the hasher thread then only receives nothing.
        let mut local = Frontier::new();
        let mut local_roots: BTreeMap<u64, Hash> = BTreeMap::new();
        let mut local_bad: Vec<u64> = vec![];
        let scanned = store.scan_entries(0, &mut |seq, idem, bytes, hashes| {
            if seq != expected {
                gap = Some(seq);
                return false;
            }
            expected += 1;
            if !replay {
                let created = local.push(leaf_hash(bytes));
                let same =
                    created.len() * 32 == hashes.len() && created.iter().zip(hashes.chunks_exact(32)).all(|(a, b)| a.as_slice() == b);
                if !same {
                    local_bad.push(seq);
                }
                if sizes.contains_key(&local.size()) {
                    local_roots.insert(local.size(), local.root());
                }
                return true;
            }
            chunk.push((seq, idem.to_string(), bytes.to_vec(), hashes.to_vec()));
            chunk.len() < 1024 || send(std::mem::replace(&mut chunk, Vec::with_capacity(1024)))
        });
        if let Err(e) = scanned {
            problem(&mut report, Some(expected), format!("entry {expected}: cannot be read: {e}"));
        }
        if let Some(next) = gap {
            problem(&mut report, Some(expected), format!("entry {expected} is missing (next stored entry is {next})"));
        }
        if !chunk.is_empty() {
            send(chunk);
        }
        drop(htx);
        drop(rtx);
        let hashed = hasher.join().ok().map(|(f, mut r, mut bad)| {
            if replay {
                (f, r, bad)
            } else {
                r.extend(local_roots);
                bad.extend(local_bad);
                (local, r, bad)
            }
        });
        (hashed, replayer.and_then(|w| w.join().ok()))
    });
    if let Some((f, r, bad)) = hashed {
        frontier = f;
        roots_at = r;
        for seq in bad {
            problem(
                &mut report,
                Some(seq),
                format!("entry {seq}: its bytes do not hash to the tree hashes stored with it: the entry or its hashes were altered"),
            );
        }
    } else {
        problem(&mut report, None, "the hashing thread failed".into());
    }
    if let Some((s, d, problems, ok)) = replayed {
        state = s;
        digests = d;
        replay_ok = ok;
        for (seq, msg) in problems {
            problem(&mut report, Some(seq), msg);
        }
    }
    report.entries = expected;
    report.root = crate::hex(&frontier.root());

    // Checkpoints: each signed by the site key, and each root equal to the tree rebuilt from the entries.
    let genesis_key = || -> Option<String> {
        let first = store.read_entries(0, 1).ok()?.into_iter().next()?;
        match decode(&first.bytes).ok()?.event {
            qm_core::Event::SiteInitialized { verifier_key, .. } => Some(verifier_key),
            _ => None,
        }
    };
    let verifier = opts.verifier_key.clone().or_else(|| state.site.as_ref().map(|s| s.verifier_key.clone())).or_else(genesis_key);
    match &verifier {
        None => problem(&mut report, None, "no verifier key: the ledger has no readable genesis entry; pass --verifier-key".into()),
        Some(vk) => {
            let mut previous: Option<(u64, Hash)> = None;
            for cp in &checkpoints {
                match open_checkpoint(&cp.note, vk) {
                    Err(e) => problem(&mut report, None, format!("checkpoint of size {}: signature does not verify: {e}", cp.size)),
                    Ok(c) if c.size != cp.size => {
                        problem(&mut report, None, format!("checkpoint stored as size {} says size {}", cp.size, c.size))
                    }
                    Ok(c) => {
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
                        // Each checkpoint must extend the previous one (a consistency proof from stored hashes).
                        if let Some((psize, proot)) = previous {
                            if c.size <= expected {
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
                        previous = Some((c.size, c.root));
                    }
                }
            }
        }
    }

    // Condition readings: each batch must still hash to the digest its ledger entry recorded.
    for (seq, location, count, sha) in &digests {
        match store.readings_of_digest(*seq) {
            Err(e) => problem(&mut report, Some(*seq), format!("entry {seq}: cannot read its condition readings: {e}")),
            Ok(rows) => {
                let actual = crate::conditions::digest(
                    rows.iter().map(|r| crate::conditions::digest_line(&r.location, r.at_ms, r.temperature_c, r.humidity_pct)),
                );
                if rows.len() as u64 != *count || actual != *sha || rows.iter().any(|r| r.location != *location) {
                    problem(
                        &mut report,
                        Some(*seq),
                        format!("entry {seq}: the {} stored condition readings of {location} no longer match the digest recorded for {count} readings: the series was altered", rows.len()),
                    );
                }
            }
        }
    }
    report.readings_batches = digests.len();

    // Projections: the stored rows must equal a fresh replay, row for row.
    if replay_ok {
        let fresh = state.all_rows();
        let mut stored: Vec<(String, String, String)> = vec![];
        if let Err(e) = store.for_each_row(&mut |k, key, v| {
            stored.push((k.to_string(), key.to_string(), v.to_string()));
            Ok(())
        }) {
            problem(&mut report, None, format!("cannot read stored projections: {e}"));
        }
        stored.sort();
        report.projection_rows = stored.len();
        let fresh: Vec<(String, String, String)> = fresh.into_iter().map(|(k, v)| (k.kind.to_string(), k.key, v)).collect();
        if fresh != stored {
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
    }
    report
}
