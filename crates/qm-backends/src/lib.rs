//! The store backends, chosen by a database's location. The application service (`qm-app`) knows only
//! the `Store` trait and is handed [`open_store`] as its `qm_store::Opener`; the binaries (CLI, server)
//! and the tests choose it here.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use qm_store::{Store, StoreError};
use qm_store_postgres::PostgresStore;
use qm_store_sqlite::SqliteStore;
use std::path::Path;

/// Opens a store by its location: a `postgres://` or `postgresql://` URL selects PostgreSQL (the
/// database must exist; `create` makes our schema in it), anything else is a SQLite file path.
pub fn open_store(db: &str, create: bool) -> Result<Box<dyn Store>, StoreError> {
    if is_url(db) {
        return Ok(if create { Box::new(PostgresStore::create(db)?) } else { Box::new(PostgresStore::open(db)?) });
    }
    let path = Path::new(db);
    Ok(if create { Box::new(SqliteStore::create(path)?) } else { Box::new(SqliteStore::open(path)?) })
}

/// Is `db` a PostgreSQL URL (rather than a SQLite file path)?
pub fn is_url(db: &str) -> bool {
    qm_store_postgres::is_url(db)
}

/// A database location fit for messages and logs: a PostgreSQL URL without its password.
pub fn redacted(db: &str) -> String {
    qm_store_postgres::redacted(db)
}
