//! The schema: versioned migrations run on open under an advisory lock, and how a connected
//! schema is recognised as ours, empty, or someone else's.

use crate::*;

/// Marks a schema as ours: the `application` column of `qm_schema`.
pub const APPLICATION: &str = "quartermaster";

/// Key of the advisory lock taken while creating or migrating a schema ("QMLG", as SQLite's application id).
pub(crate) const MIGRATION_LOCK: i64 = 0x514D_4C47;

/// Migrations in order; index + 1 is the schema version they bring the database to.
/// Released migrations are never edited (a tidy test pins their hashes).
pub const MIGRATIONS: &[(&str, &str)] = &[
    ("0001_ledger.sql", include_str!("../migrations/0001_ledger.sql")),
    ("0002_readings.sql", include_str!("../migrations/0002_readings.sql")),
    ("0003_tiles.sql", include_str!("../migrations/0003_tiles.sql")),
    ("0004_credentials.sql", include_str!("../migrations/0004_credentials.sql")),
    ("0005_outbox.sql", include_str!("../migrations/0005_outbox.sql")),
    ("0006_door_events.sql", include_str!("../migrations/0006_door_events.sql")),
    ("0007_witness.sql", include_str!("../migrations/0007_witness.sql")),
    ("0008_mirror.sql", include_str!("../migrations/0008_mirror.sql")),
];

/// The version table, created with the first migration. It never changes: it is how we recognise our
/// schema and how far it has been migrated (one row per applied migration).
pub(crate) const SCHEMA_TABLE: &str = "CREATE TABLE qm_schema (
    version     integer PRIMARY KEY,
    name        text NOT NULL,
    application text NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)";

/// What the connected schema holds.
pub(crate) enum Found {
    /// Nothing of ours and no tables at all.
    Empty,
    /// Our version table, at this version.
    Ours(i64),
}

impl PostgresStore {
    pub(crate) fn migrate(&mut self) -> Result<()> {
        let supported = MIGRATIONS.len() as i64;
        let shown = self.shown.clone();
        let client = self.client.get_mut();
        loop {
            // One transaction per migration, under a lock, re-reading the version inside it: two
            // processes opening an old schema at once migrate it once.
            let mut tx = client.transaction().map_err(be)?;
            tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).map_err(be)?;
            let version = match inspect(&mut tx, &shown)? {
                Found::Ours(v) => v,
                Found::Empty => return Err(StoreError::Missing(shown)),
            };
            if version > supported {
                return Err(StoreError::TooNew { path: shown, found: version, supported });
            }
            let Some((name, sql)) = MIGRATIONS.get(version as usize) else { return Ok(()) };
            tx.batch_execute(sql).map_err(|e| StoreError::Backend(format!("migration {name}: {}", describe(&e))))?;
            tx.execute(
                "INSERT INTO qm_schema (version, name, application) VALUES ($1, $2, $3)",
                &[&((version + 1) as i32), name, &APPLICATION],
            )
            .map_err(be)?;
            tx.commit().map_err(be)?;
        }
    }
}

/// Looks at the current schema: ours (at which version), empty, or someone else's (an error).
pub(crate) fn inspect(tx: &mut postgres::Transaction<'_>, shown: &str) -> Result<Found> {
    let schema: Option<String> = tx.query_one("SELECT current_schema()", &[]).map_err(be)?.get(0);
    let Some(schema) = schema else {
        return Err(StoreError::Backend(format!("{shown}: no schema to work in (search_path names no existing schema)")));
    };
    let columns: Vec<String> = tx
        .query("SELECT column_name::text FROM information_schema.columns WHERE table_schema = $1 AND table_name = 'qm_schema'", &[&schema])
        .map_err(be)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if columns.is_empty() {
        let tables: Vec<String> = tx
            .query(
                "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1 LIMIT 5",
                &[&schema],
            )
            .map_err(be)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if tables.is_empty() {
            return Ok(Found::Empty);
        }
        return Err(StoreError::NotOurs {
            path: shown.to_string(),
            detail: format!(" (schema {schema} holds other tables: {}; give an empty database or schema)", tables.join(", ")),
        });
    }
    for needed in ["version", "application"] {
        if !columns.iter().any(|c| c == needed) {
            return Err(StoreError::NotOurs {
                path: shown.to_string(),
                detail: format!(" (its table {schema}.qm_schema has no column {needed})"),
            });
        }
    }
    let row = tx
        .query_one("SELECT max(version)::bigint, count(*) FILTER (WHERE application <> $1) FROM qm_schema", &[&APPLICATION])
        .map_err(|e| StoreError::NotOurs { path: shown.to_string(), detail: format!(": {}", describe(&e)) })?;
    let version: Option<i64> = row.get(0);
    let foreign: i64 = row.get(1);
    if foreign > 0 {
        return Err(StoreError::NotOurs {
            path: shown.to_string(),
            detail: format!(" ({schema}.qm_schema belongs to another application)"),
        });
    }
    Ok(Found::Ours(version.unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_numbered_in_order() {
        for (i, (name, sql)) in MIGRATIONS.iter().enumerate() {
            assert!(name.starts_with(&format!("{:04}_", i + 1)), "{name} is out of order");
            assert!(sql.starts_with(&format!("-- {:04}:", i + 1)), "{name} does not say what it is for");
        }
    }
}
