//! This site as the witness of its children's ledgers and its parent's cosignatures of its own
//! checkpoints (migration 0007); see the SQLite store's `witness`.

use crate::connect::be;
use crate::PostgresStore;
use qm_store::{Cosignature, ForkEvidence, Result, Witnessed};

const WITNESSED: &str = "origin, size, root, note, cosignature, at_ms";

fn witnessed(r: &postgres::Row) -> Result<Witnessed> {
    let root: Vec<u8> = r.try_get(2).map_err(be)?;
    Ok(Witnessed {
        origin: r.try_get(0).map_err(be)?,
        size: r.try_get::<_, i64>(1).map_err(be)? as u64,
        root: root.try_into().unwrap_or([0; 32]),
        note: r.try_get(3).map_err(be)?,
        cosignature: r.try_get(4).map_err(be)?,
        at_ms: r.try_get(5).map_err(be)?,
    })
}

impl PostgresStore {
    pub(crate) fn witnessed_one(&self, origin: &str) -> Result<Option<Witnessed>> {
        let rows = self.client()?.query(&format!("SELECT {WITNESSED} FROM witnessed WHERE origin = $1"), &[&origin]).map_err(be)?;
        rows.first().map(witnessed).transpose()
    }

    pub(crate) fn witnessed_every(&self) -> Result<Vec<Witnessed>> {
        let rows = self.client()?.query(&format!("SELECT {WITNESSED} FROM witnessed ORDER BY origin"), &[]).map_err(be)?;
        rows.iter().map(witnessed).collect()
    }

    pub(crate) fn witness_advance_to(&mut self, old: u64, new: &Witnessed) -> Result<bool> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(be)?;
        // The row is locked while it is compared and replaced: two requests cannot both advance from `old`.
        let held = tx.query("SELECT size FROM witnessed WHERE origin = $1 FOR UPDATE", &[&new.origin]).map_err(be)?;
        let size = held.first().map(|r| r.try_get::<_, i64>(0)).transpose().map_err(be)?.unwrap_or(0);
        if size as u64 != old {
            return Ok(false);
        }
        tx.execute(
            &format!(
                "INSERT INTO witnessed ({WITNESSED}) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (origin) DO UPDATE SET
                 size = excluded.size, root = excluded.root, note = excluded.note, cosignature = excluded.cosignature, at_ms = excluded.at_ms"
            ),
            &[&new.origin, &(new.size as i64), &new.root.as_slice(), &new.note, &new.cosignature, &new.at_ms],
        )
        .map_err(be)?;
        tx.commit().map_err(be)?;
        Ok(true)
    }

    pub(crate) fn add_fork_evidence_one(&mut self, e: &ForkEvidence) -> Result<()> {
        self.client()?
            .execute(
                "INSERT INTO fork_evidence (origin, held_note, offered_note, reason, at_ms) VALUES ($1, $2, $3, $4, $5)",
                &[&e.origin, &e.held_note, &e.offered_note, &e.reason, &e.at_ms],
            )
            .map(|_| ())
            .map_err(be)
    }

    pub(crate) fn fork_evidence_all(&self) -> Result<Vec<ForkEvidence>> {
        let rows = self
            .client()?
            .query("SELECT origin, held_note, offered_note, reason, at_ms FROM fork_evidence ORDER BY id", &[])
            .map_err(be)?;
        rows.iter()
            .map(|r| {
                Ok(ForkEvidence {
                    origin: r.try_get(0).map_err(be)?,
                    held_note: r.try_get(1).map_err(be)?,
                    offered_note: r.try_get(2).map_err(be)?,
                    reason: r.try_get(3).map_err(be)?,
                    at_ms: r.try_get(4).map_err(be)?,
                })
            })
            .collect()
    }

    pub(crate) fn add_cosignature_one(&mut self, c: &Cosignature) -> Result<()> {
        self.client()?
            .execute(
                "INSERT INTO cosignatures (size, witness, line, at_ms) VALUES ($1, $2, $3, $4) ON CONFLICT (size, witness) DO NOTHING",
                &[&(c.size as i64), &c.witness, &c.line, &c.at_ms],
            )
            .map(|_| ())
            .map_err(be)
    }

    pub(crate) fn cosignatures_all(&self) -> Result<Vec<Cosignature>> {
        let rows = self.client()?.query("SELECT size, witness, line, at_ms FROM cosignatures ORDER BY size, witness", &[]).map_err(be)?;
        rows.iter()
            .map(|r| {
                Ok(Cosignature {
                    size: r.try_get::<_, i64>(0).map_err(be)? as u64,
                    witness: r.try_get(1).map_err(be)?,
                    line: r.try_get(2).map_err(be)?,
                    at_ms: r.try_get(3).map_err(be)?,
                })
            })
            .collect()
    }
}
