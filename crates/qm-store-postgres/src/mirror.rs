//! This site as the mirror of its children's ledgers (migration 0008); see the SQLite store's `mirror`.

use crate::connect::be;
use crate::PostgresStore;
use qm_store::{Hash, Mirrored, Result, StoreError};

const MIRRORED: &str = "origin, size, note, cosignature, at_ms";

fn mirrored(r: &postgres::Row) -> Result<Mirrored> {
    Ok(Mirrored {
        origin: r.try_get(0).map_err(be)?,
        size: r.try_get::<_, i64>(1).map_err(be)? as u64,
        note: r.try_get(2).map_err(be)?,
        cosignature: r.try_get(3).map_err(be)?,
        at_ms: r.try_get(4).map_err(be)?,
    })
}

impl PostgresStore {
    pub(crate) fn mirror_next_of(&self, origin: &str) -> Result<u64> {
        let row = self.client()?.query_one("SELECT MAX(seq) FROM mirror_entries WHERE origin = $1", &[&origin]).map_err(be)?;
        let max: Option<i64> = row.try_get(0).map_err(be)?;
        Ok(max.map_or(0, |m| m as u64 + 1))
    }

    pub(crate) fn mirror_leaves_of(&self, origin: &str, from: u64, to: u64) -> Result<Vec<Hash>> {
        let rows = self
            .client()?
            .query(
                "SELECT seq, leaf FROM mirror_entries WHERE origin = $1 AND seq >= $2 AND seq < $3 ORDER BY seq",
                &[&origin, &(from as i64), &(to as i64)],
            )
            .map_err(be)?;
        rows.iter()
            .enumerate()
            .map(|(i, r)| {
                let seq: i64 = r.try_get(0).map_err(be)?;
                let leaf: Vec<u8> = r.try_get(1).map_err(be)?;
                if seq as u64 != from + i as u64 {
                    return Err(StoreError::Damaged(format!("mirrored entries of {origin}: {} is missing", from + i as u64)));
                }
                leaf.try_into().map_err(|_| StoreError::Damaged(format!("mirrored entry {seq} of {origin}: a leaf hash is not 32 bytes")))
            })
            .collect()
    }

    pub(crate) fn mirror_add_to(&mut self, origin: &str, start: u64, entries: &[(Vec<u8>, Hash)]) -> Result<()> {
        let next = self.mirror_next_of(origin)?;
        if start > next {
            return Err(StoreError::Backend(format!("mirrored entries of {origin}: {start} would leave a gap after {next}")));
        }
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(be)?;
        let seqs: Vec<i64> = (0..entries.len()).map(|i| (start + i as u64) as i64).collect();
        let bytes: Vec<&[u8]> = entries.iter().map(|(b, _)| b.as_slice()).collect();
        let leaves: Vec<&[u8]> = entries.iter().map(|(_, l)| l.as_slice()).collect();
        tx.execute(
            "INSERT INTO mirror_entries (origin, seq, bytes, leaf)
             SELECT $1, s, b, l FROM UNNEST($2::BIGINT[], $3::BYTEA[], $4::BYTEA[]) AS u(s, b, l)
             ON CONFLICT DO NOTHING",
            &[&origin, &seqs, &bytes, &leaves],
        )
        .map_err(be)?;
        tx.commit().map_err(be)
    }

    pub(crate) fn mirror_entries_of(&self, origin: &str, from: u64, n: usize) -> Result<Vec<Vec<u8>>> {
        let rows = self
            .client()?
            .query(
                "SELECT bytes FROM mirror_entries WHERE origin = $1 AND seq >= $2 ORDER BY seq LIMIT $3",
                &[&origin, &(from as i64), &(n as i64)],
            )
            .map_err(be)?;
        rows.iter().map(|r| r.try_get(0).map_err(be)).collect()
    }

    pub(crate) fn mirrored_one(&self, origin: &str) -> Result<Option<Mirrored>> {
        let rows = self.client()?.query(&format!("SELECT {MIRRORED} FROM mirrored WHERE origin = $1"), &[&origin]).map_err(be)?;
        rows.first().map(mirrored).transpose()
    }

    pub(crate) fn mirrored_every(&self) -> Result<Vec<Mirrored>> {
        let rows = self.client()?.query(&format!("SELECT {MIRRORED} FROM mirrored ORDER BY origin"), &[]).map_err(be)?;
        rows.iter().map(mirrored).collect()
    }

    pub(crate) fn mirror_advance_to(&mut self, new: &Mirrored) -> Result<bool> {
        let n = self
            .client()?
            .execute(
                &format!(
                    "INSERT INTO mirrored ({MIRRORED}) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (origin) DO UPDATE SET
                     size = excluded.size, note = excluded.note, cosignature = excluded.cosignature, at_ms = excluded.at_ms
                     WHERE excluded.size > mirrored.size"
                ),
                &[&new.origin, &(new.size as i64), &new.note, &new.cosignature, &new.at_ms],
            )
            .map_err(be)?;
        Ok(n > 0)
    }
}
