//! Helpers shared by the CLI's test binaries.

/// Idempotency keys of every stored entry, read straight from the store (SQLite file or PostgreSQL URL).
pub fn stored_keys(db: &str) -> std::collections::HashSet<String> {
    let store = qm_backends::open_store(db, false).unwrap();
    let mut keys = std::collections::HashSet::new();
    store
        .scan_entries(0, &mut |_, idem, _, _| {
            keys.insert(idem.to_string());
            true
        })
        .unwrap();
    keys
}
