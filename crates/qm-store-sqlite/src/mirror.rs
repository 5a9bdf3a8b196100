//! This site as the mirror of its children's ledgers (migration 0008, docs/sites.md): their
//! entries held from 0 without gaps, and the latest checkpoint mirrored whole. Beside the ledger,
//! never part of it.

use crate::{be, SqliteStore};
use qm_store::{Hash, Mirrored, Result, StoreError};
use rusqlite::{params, OptionalExtension};

const MIRRORED: &str = "origin, size, note, cosignature, at_ms";

fn mirrored(r: &rusqlite::Row) -> rusqlite::Result<Mirrored> {
    Ok(Mirrored { origin: r.get(0)?, size: r.get::<_, i64>(1)? as u64, note: r.get(2)?, cosignature: r.get(3)?, at_ms: r.get(4)? })
}

impl SqliteStore {
    pub(crate) fn mirror_next_of(&self, origin: &str) -> Result<u64> {
        let max: Option<i64> =
            self.conn.query_row("SELECT MAX(seq) FROM mirror_entries WHERE origin = ?1", params![origin], |r| r.get(0)).map_err(be)?;
        Ok(max.map_or(0, |m| m as u64 + 1))
    }

    pub(crate) fn mirror_leaves_of(&self, origin: &str, from: u64, to: u64) -> Result<Vec<Hash>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT seq, leaf FROM mirror_entries WHERE origin = ?1 AND seq >= ?2 AND seq < ?3 ORDER BY seq")
            .map_err(be)?;
        let rows =
            st.query_map(params![origin, from as i64, to as i64], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?))).map_err(be)?;
        let mut out = Vec::with_capacity(to.saturating_sub(from) as usize);
        for (i, row) in rows.enumerate() {
            let (seq, leaf) = row.map_err(be)?;
            let leaf: Hash = leaf
                .try_into()
                .map_err(|_| StoreError::Damaged(format!("mirrored entry {seq} of {origin}: a leaf hash is not 32 bytes")))?;
            if seq as u64 != from + i as u64 {
                return Err(StoreError::Damaged(format!("mirrored entries of {origin}: {} is missing", from + i as u64)));
            }
            out.push(leaf);
        }
        Ok(out)
    }

    pub(crate) fn mirror_add_to(&mut self, origin: &str, start: u64, entries: &[(Vec<u8>, Hash)]) -> Result<()> {
        let next = self.mirror_next_of(origin)?;
        if start > next {
            return Err(StoreError::Backend(format!("mirrored entries of {origin}: {start} would leave a gap after {next}")));
        }
        let tx = self.conn.transaction().map_err(be)?;
        {
            let mut st = tx
                .prepare_cached("INSERT INTO mirror_entries (origin, seq, bytes, leaf) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING")
                .map_err(be)?;
            for (i, (bytes, leaf)) in entries.iter().enumerate() {
                st.execute(params![origin, (start + i as u64) as i64, bytes, leaf.as_slice()]).map_err(be)?;
            }
        }
        tx.commit().map_err(be)
    }

    pub(crate) fn mirror_entries_of(&self, origin: &str, from: u64, n: usize) -> Result<Vec<Vec<u8>>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT bytes FROM mirror_entries WHERE origin = ?1 AND seq >= ?2 ORDER BY seq LIMIT ?3")
            .map_err(be)?;
        let rows = st.query_map(params![origin, from as i64, n as i64], |r| r.get::<_, Vec<u8>>(0)).map_err(be)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(be)
    }

    pub(crate) fn mirrored_one(&self, origin: &str) -> Result<Option<Mirrored>> {
        self.conn.query_row(&format!("SELECT {MIRRORED} FROM mirrored WHERE origin = ?1"), params![origin], mirrored).optional().map_err(be)
    }

    pub(crate) fn mirrored_every(&self) -> Result<Vec<Mirrored>> {
        let mut st = self.conn.prepare(&format!("SELECT {MIRRORED} FROM mirrored ORDER BY origin")).map_err(be)?;
        let rows = st.query_map([], mirrored).map_err(be)?;
        rows.collect::<rusqlite::Result<Vec<_>>>().map_err(be)
    }

    pub(crate) fn mirror_advance_to(&mut self, new: &Mirrored) -> Result<bool> {
        let n = self
            .conn
            .execute(
                &format!(
                    "INSERT INTO mirrored ({MIRRORED}) VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (origin) DO UPDATE SET
                     size = excluded.size, note = excluded.note, cosignature = excluded.cosignature, at_ms = excluded.at_ms
                     WHERE excluded.size > mirrored.size"
                ),
                params![new.origin, new.size as i64, new.note, new.cosignature, new.at_ms],
            )
            .map_err(be)?;
        Ok(n > 0)
    }
}
