//! Opening a site: the books from stored rows, the ledger's tail replayed, the tree edge loaded and
//! checked against the latest signed checkpoint.

use super::*;

/// Loads the books from stored rows and the tree edge from stored hashes.
pub(crate) fn load(store: &dyn Store) -> Result<(State, Frontier)> {
    // The rows, the entry count and the checkpoints are separate reads. SQLite gives them one
    // snapshot (`Store::in_snapshot`); elsewhere another process committing between them (e.g. a
    // second `qm` at the same counter) can make them disagree for a moment. Every commit writes
    // entries and rows together, so disagreement that lasts is damage; one that goes away on a
    // second read was a race.
    let mut attempt = 0;
    loop {
        match load_once(store) {
            Err(AppError::Store(StoreError::Damaged(_))) if attempt < 4 => {
                attempt += 1;
                std::thread::sleep(std::time::Duration::from_millis(10 << attempt));
            }
            other => return other,
        }
    }
}

fn load_once(store: &dyn Store) -> Result<(State, Frontier)> {
    let mut loaded = None;
    store.in_snapshot(&mut || {
        loaded = Some(read_books(store));
        Ok(())
    })?;
    loaded.unwrap_or_else(|| Err(AppError::Internal("the store did not run the load".into())))
}

fn read_books(store: &dyn Store) -> Result<(State, Frontier)> {
    let mut state = State::new();
    store.for_each_row(&mut |kind, key, value| state.load_row(kind, key, value))?;
    state.rebuild_indexes().map_err(|e| AppError::Store(StoreError::Damaged(format!("stored rows: {e}; run `qm verify`"))))?;
    let size = store.entry_count()?;
    if state.next_seq > size {
        return Err(AppError::Store(StoreError::Damaged(format!(
            "the stored projections cover {} entries but the ledger holds {size}; run `qm verify`",
            state.next_seq
        ))));
    }
    if state.next_seq < size {
        replay_tail(store, &mut state, size)?;
    }
    if state.last_at.is_none() && size > 0 {
        let last = store.read_entries(size - 1, 1)?;
        let env = last
            .first()
            .map(|e| decode(&e.bytes))
            .transpose()
            .map_err(|m| AppError::Store(StoreError::Damaged(format!("entry {}: {m}; run `qm verify`", size - 1))))?;
        state.last_at = env.map(|e| e.at);
    }
    let frontier = Frontier::load(size, &StoreHashes(store))?;
    startup_check(store, &state, &frontier)?;
    Ok((state, frontier))
}

/// Brings rows that lag behind the ledger up to its end by replaying the entries they do not cover.
/// The pipelined writer writes rows after a burst, not with every commit (`Site::start_writer`), so
/// a process stopped during one leaves a tail of at most `ROWS_DEFERRED_AT_MOST` entries. The rows
/// the tail touched stay marked, and the next commit writes them.
fn replay_tail(store: &dyn Store, state: &mut State, size: u64) -> Result<()> {
    let from = state.next_seq;
    let mut failed = None;
    store.scan_range(from, size, &mut |seq, _, bytes, _| {
        let applied = decode(bytes).and_then(|env| state.apply(&env).map_err(|e| e.to_string()));
        match applied {
            Ok(()) => true,
            Err(e) => {
                failed = Some(format!("entry {seq} (beyond the stored projections, which cover {from}): {e}"));
                false
            }
        }
    })?;
    if let Some(m) = failed {
        return Err(AppError::Store(StoreError::Damaged(format!("{m}; run `qm verify`"))));
    }
    if state.next_seq != size {
        return Err(AppError::Store(StoreError::Damaged(format!(
            "the ledger holds {size} entries but only {} could be read in order; run `qm verify`",
            state.next_seq
        ))));
    }
    Ok(())
}

/// The cheap part of `verify`, run whenever a site is opened, so that no write proceeds on a
/// ledger that no longer matches what the site signed: the latest checkpoint's signature, and its
/// root against the tree rebuilt from stored hashes (O(log n) reads).
fn startup_check(store: &dyn Store, state: &State, frontier: &Frontier) -> Result<()> {
    let damaged =
        |m: String| AppError::Store(StoreError::Damaged(format!("the database does not verify at start-up: {m}; run `qm verify`")));
    let Some(latest) = store.checkpoints()?.pop() else { return Ok(()) };
    let Some(site) = &state.site else { return Err(damaged("the ledger has checkpoints but no genesis".into())) };
    let cp = qm_ledger::open_checkpoint(&latest.note, &site.verifier_key).map_err(|e| damaged(format!("latest checkpoint: {e}")))?;
    if cp.size > frontier.size() {
        return Err(damaged(format!("checkpoint {} was signed but the ledger holds only {} entries", cp.size, frontier.size())));
    }
    let root = if cp.size == frontier.size() { frontier.root() } else { qm_ledger::tree_root(cp.size, &StoreHashes(store))? };
    if root != cp.root {
        return Err(damaged(format!("the tree of size {} no longer has the root the site signed", cp.size)));
    }
    Ok(())
}
