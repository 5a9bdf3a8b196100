//! This site as the witness of its children's ledgers and its parent's cosignatures of its own
//! checkpoints (migration 0007, docs/sites.md): kept beside the ledger, never part of it.

use crate::{be, SqliteStore};
use qm_store::{Cosignature, ForkEvidence, Result, StoreError, Witnessed};
use rusqlite::{params, OptionalExtension};

const WITNESSED: &str = "origin, size, root, note, cosignature, at_ms";

fn witnessed(r: &rusqlite::Row) -> rusqlite::Result<Witnessed> {
    let root: Vec<u8> = r.get(2)?;
    Ok(Witnessed {
        origin: r.get(0)?,
        size: r.get::<_, i64>(1)? as u64,
        root: root.try_into().unwrap_or([0; 32]),
        note: r.get(3)?,
        cosignature: r.get(4)?,
        at_ms: r.get(5)?,
    })
}

impl SqliteStore {
    pub(crate) fn witnessed_one(&self, origin: &str) -> Result<Option<Witnessed>> {
        let sql = format!("SELECT {WITNESSED} FROM witnessed WHERE origin = ?1");
        self.conn.query_row(&sql, params![origin], witnessed).optional().map_err(be)
    }

    pub(crate) fn witnessed_every(&self) -> Result<Vec<Witnessed>> {
        let mut st = self.conn.prepare(&format!("SELECT {WITNESSED} FROM witnessed ORDER BY origin")).map_err(be)?;
        let rows = st.query_map([], witnessed).map_err(be)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(be)
    }

    pub(crate) fn witness_advance_to(&mut self, old: u64, new: &Witnessed) -> Result<bool> {
        let tx = self.conn.transaction().map_err(be)?;
        let held: Option<i64> =
            tx.query_row("SELECT size FROM witnessed WHERE origin = ?1", params![new.origin], |r| r.get(0)).optional().map_err(be)?;
        if held.unwrap_or(0) as u64 != old {
            return Ok(false);
        }
        tx.execute(
            &format!(
                "INSERT INTO witnessed ({WITNESSED}) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (origin) DO UPDATE SET
                 size = excluded.size, root = excluded.root, note = excluded.note, cosignature = excluded.cosignature, at_ms = excluded.at_ms"
            ),
            params![new.origin, new.size as i64, new.root.as_slice(), new.note, new.cosignature, new.at_ms],
        )
        .map_err(be)?;
        tx.commit().map_err(be)?;
        Ok(true)
    }

    pub(crate) fn add_fork_evidence_one(&mut self, e: &ForkEvidence) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO fork_evidence (origin, held_note, offered_note, reason, at_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![e.origin, e.held_note, e.offered_note, e.reason, e.at_ms],
            )
            .map(|_| ())
            .map_err(be)
    }

    pub(crate) fn fork_evidence_all(&self) -> Result<Vec<ForkEvidence>> {
        let mut st =
            self.conn.prepare("SELECT origin, held_note, offered_note, reason, at_ms FROM fork_evidence ORDER BY id").map_err(be)?;
        let rows = st
            .query_map([], |r| {
                Ok(ForkEvidence { origin: r.get(0)?, held_note: r.get(1)?, offered_note: r.get(2)?, reason: r.get(3)?, at_ms: r.get(4)? })
            })
            .map_err(be)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(be)
    }

    pub(crate) fn add_cosignature_one(&mut self, c: &Cosignature) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO cosignatures (size, witness, line, at_ms) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (size, witness) DO NOTHING",
                params![c.size as i64, c.witness, c.line, c.at_ms],
            )
            .map(|_| ())
            .map_err(|e| StoreError::Backend(format!("keeping a cosignature: {e}")))
    }

    pub(crate) fn cosignatures_all(&self) -> Result<Vec<Cosignature>> {
        let mut st = self.conn.prepare("SELECT size, witness, line, at_ms FROM cosignatures ORDER BY size, witness").map_err(be)?;
        let rows = st
            .query_map([], |r| Ok(Cosignature { size: r.get::<_, i64>(0)? as u64, witness: r.get(1)?, line: r.get(2)?, at_ms: r.get(3)? }))
            .map_err(be)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(be)
    }
}
