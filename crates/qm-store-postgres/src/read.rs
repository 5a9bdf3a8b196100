//! Reading: what an auditor reads (`EntrySource`): entries streamed tile by tile, their tree
//! hashes (derived inside a tile), checkpoints, the readings behind a digest, projection rows.

use crate::*;

/// Rows fetched per round trip when streaming projection rows.
pub(crate) const FETCH_ROWS: i32 = 2048;

/// Ledger tiles fetched per round trip when streaming entries: 4,096 entries, the verifier's chunk.
pub(crate) const FETCH_TILES: i32 = 16;

/// The open tile's entries, in a query grouped by tile, as one tile's data of format `0x00`.
macro_rules! open_tile {
    () => {
        "decode('00', 'hex') || string_agg(qm_record(seq, idem, bytes, hashes), ''::bytea ORDER BY seq)"
    };
}

impl PostgresStore {
    /// Calls `f(tile, records)` for tiles `first..=last` in order, each decompressed in place (one
    /// buffer for all), `FETCH_TILES` per round trip; `f` returns false to stop.
    pub(crate) fn for_each_tile(&self, first: u64, last: u64, f: &mut dyn FnMut(u64, &[u8]) -> Result<bool>) -> Result<()> {
        // Full tiles, and the open tile's entries as one tile of the same format: one statement, so
        // one snapshot (a commit sealing a tile meanwhile is seen entirely or not at all).
        const SQL: &str = concat!(
            "SELECT tile, data FROM tiles WHERE tile >= $1 AND tile <= $2 UNION ALL SELECT seq / 256, ",
            open_tile!(),
            " FROM open_entries WHERE seq >= $3 AND seq < $4 GROUP BY seq / 256 ORDER BY 1"
        );
        let last = last.min(i64::MAX as u64 / tiles::TILE - 1);
        let (first_seq, end_seq) = (seq_param(first * tiles::TILE)?, seq_param((last + 1) * tiles::TILE)?);
        let (first, last) = (seq_param(first)?, seq_param(last)?);
        let mut buf = vec![];
        let mut one = |r: &Row| -> Result<bool> {
            let (tile, records) = tile_row(r, &mut buf)?;
            f(tile, records)
        };
        if last.saturating_sub(first) < FETCH_TILES as i64 {
            // A few tiles (the verifier's chunk is 16): one prepared statement in one round trip,
            // without the portal and transaction a long scan needs (four round trips).
            let rows = {
                let mut client = self.client()?;
                let cached = self.tiles_statement.borrow().clone();
                let statement = match cached {
                    Some(s) => s,
                    None => {
                        let s = client.prepare_typed(SQL, &[Type::INT8; 4]).map_err(be)?;
                        self.tiles_statement.replace(Some(s.clone()));
                        s
                    }
                };
                client.query(&statement, &[&first, &last, &first_seq, &end_seq]).map_err(be)?
            };
            for r in &rows {
                if !one(r)? {
                    break;
                }
            }
            return Ok(());
        }
        self.stream(SQL, &[&first, &last, &first_seq, &end_seq], FETCH_TILES, &mut one)
    }
}

pub(crate) fn seq_of(v: i64) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Damaged(format!("negative sequence number {v}")))
}

pub(crate) fn reading_row(r: &Row) -> Result<StoredReading> {
    Ok(StoredReading {
        location: r.try_get(0).map_err(be)?,
        at_ms: r.try_get(1).map_err(be)?,
        temperature_c: r.try_get(2).map_err(be)?,
        humidity_pct: r.try_get(3).map_err(be)?,
        digest_seq: seq_of(r.try_get(4).map_err(be)?)?,
    })
}

pub(crate) const DOOR_COLUMNS: &str = "source, event_id, at_ms, door, card, kind, location, badge, proof, digest_seq";

pub(crate) fn door_row(r: &Row) -> Result<StoredDoorEvent> {
    Ok(StoredDoorEvent {
        source: r.try_get(0).map_err(be)?,
        event_id: r.try_get(1).map_err(be)?,
        at_ms: r.try_get(2).map_err(be)?,
        door: r.try_get(3).map_err(be)?,
        card: r.try_get(4).map_err(be)?,
        kind: r.try_get(5).map_err(be)?,
        location: r.try_get(6).map_err(be)?,
        badge: r.try_get(7).map_err(be)?,
        proof: r.try_get(8).map_err(be)?,
        digest_seq: seq_of(r.try_get(9).map_err(be)?)?,
    })
}

/// A row of (tile, data) as its records, decompressed into `buf` when needed.
pub(crate) fn tile_row<'a>(r: &'a Row, buf: &'a mut Vec<u8>) -> Result<(u64, &'a [u8])> {
    let tile = seq_of(r.try_get(0).map_err(be)?)?;
    let data: &[u8] = r.try_get(1).map_err(|e| StoreError::Damaged(format!("ledger tile {tile}: {e}")))?;
    Ok((tile, tiles::unseal(tile, data, buf)?))
}

impl qm_store::EntrySource for PostgresStore {
    fn entry_count(&self) -> Result<u64> {
        let n: Option<i64> = self.client()?.query_one("SELECT max(seq) FROM entry_keys", &[]).map_err(be)?.get(0);
        match n {
            Some(n) => Ok(seq_of(n)? + 1),
            None => Ok(0),
        }
    }
    fn read_entries(&self, from: u64, limit: usize) -> Result<Vec<StoredEntry>> {
        let to = from.saturating_add(limit as u64);
        let mut read = vec![];
        if from < to {
            self.for_each_tile(tiles::tile_of(from), tiles::tile_of(to - 1), &mut |tile, records| {
                for (rec, hashes) in tiles::with_hashes(tile, records)? {
                    if rec.seq >= from && rec.seq < to {
                        read.push(StoredEntry { seq: rec.seq, idempotency_key: rec.idem.to_string(), bytes: rec.bytes.to_vec(), hashes });
                    }
                }
                Ok(true)
            })?;
        }
        Ok(read)
    }
    fn open_reader(&self) -> Result<Option<Box<dyn qm_store::EntrySource>>> {
        // A session on the schema this store has already checked and migrated: no second look at
        // it (that took 10 ms of the verifier's 150 at 360,000 entries, measured, per reader).
        Ok(Some(Box::new(PostgresStore::connect(&self.url)?)))
    }
    fn scan_range(&self, from: u64, to: u64, f: &mut dyn FnMut(u64, &str, &[u8], &[u8]) -> bool) -> Result<()> {
        if from >= to {
            return Ok(());
        }
        self.for_each_tile(tiles::tile_of(from), tiles::tile_of(to - 1), &mut |tile, records| {
            for rec in tiles::records(tile, records) {
                let rec = rec?;
                if rec.seq < from {
                    continue;
                }
                if rec.seq >= to || !f(rec.seq, rec.idem, rec.bytes, rec.hashes) {
                    return Ok(false);
                }
            }
            Ok(true)
        })
    }
    fn derived_hash_levels(&self) -> usize {
        tiles::DERIVED_LEVELS
    }
    fn read_entry_hashes(&self, seqs: &[u64]) -> Result<Vec<Vec<Hash>>> {
        let wanted: HashSet<u64> = seqs.iter().copied().collect();
        let tile_ids = wanted.iter().map(|s| seq_param(tiles::tile_of(*s))).collect::<Result<HashSet<i64>>>()?;
        let tile_ids: Vec<i64> = tile_ids.into_iter().collect();
        let rows = self
            .client()?
            .query(
                concat!(
                    "SELECT tile, data FROM tiles WHERE tile = ANY($1) UNION ALL SELECT seq / 256, ",
                    open_tile!(),
                    " FROM open_entries WHERE seq / 256 = ANY($1) GROUP BY seq / 256"
                ),
                &[&tile_ids],
            )
            .map_err(be)?;
        let mut found: HashMap<u64, Vec<Hash>> = HashMap::with_capacity(wanted.len());
        let mut buf = vec![];
        for r in &rows {
            let (tile, records) = tile_row(r, &mut buf)?;
            for (rec, hashes) in tiles::with_hashes(tile, records)? {
                if wanted.contains(&rec.seq) {
                    found.insert(rec.seq, hashes);
                }
            }
        }
        seqs.iter().map(|s| found.get(s).cloned().ok_or_else(|| StoreError::Damaged(format!("entry {s} is missing")))).collect()
    }
    fn checkpoints(&self) -> Result<Vec<StoredCheckpoint>> {
        let rows = self.client()?.query("SELECT size, note FROM checkpoints ORDER BY size", &[]).map_err(be)?;
        rows.iter().map(|r| Ok(StoredCheckpoint { size: seq_of(r.try_get(0).map_err(be)?)?, note: r.try_get(1).map_err(be)? })).collect()
    }
    fn readings_of_digest(&self, digest_seq: u64) -> Result<Vec<StoredReading>> {
        let rows = self
            .client()?
            .query(
                "SELECT location, at_ms, temperature_c, humidity_pct, digest_seq FROM readings WHERE digest_seq = $1 ORDER BY id",
                &[&seq_param(digest_seq)?],
            )
            .map_err(be)?;
        rows.iter().map(reading_row).collect()
    }
    fn door_events_of_digest(&self, digest_seq: u64) -> Result<Vec<StoredDoorEvent>> {
        let sql = format!("SELECT {DOOR_COLUMNS} FROM door_events WHERE digest_seq = $1 ORDER BY id");
        let rows = self.client()?.query(&sql, &[&seq_param(digest_seq)?]).map_err(be)?;
        rows.iter().map(door_row).collect()
    }
    fn for_each_row(&self, f: &mut dyn FnMut(&str, &str, &str) -> std::result::Result<(), String>) -> Result<()> {
        self.stream("SELECT kind, key, value FROM projection ORDER BY kind, key", &[], FETCH_ROWS, &mut |r| {
            let kind: &str = r.try_get(0).map_err(be)?;
            let key: &str = r.try_get(1).map_err(be)?;
            let value: &str = r.try_get(2).map_err(be)?;
            f(kind, key, value).map_err(StoreError::Damaged)?;
            Ok(true)
        })
    }
}
