//! The ledger's entries on PostgreSQL, stored in tiles: one row holds the entries `256·t ..
//! 256·t + 255` of tile `t` (as the tiles of C2SP's tlog-tiles, which serve a log in fixed runs of
//! 256 leaves), LZ4-compressed together. Why: a row per entry made the server fetch, copy and send
//! every entry as a row of its own, which bounded `verify` at a fifth of raw SHA-256 on two cores;
//! a tile is one row, and the canonical JSON of 256 neighbouring entries compresses tenfold.
//!
//! A tile's data is one format byte and then the records of its entries in `seq` order:
//!
//! ```text
//! data    = 0x00 records                       (written in SQL: migration 0003, the open tile)
//!         | 0x01 u32be(len(records)) lz4_block(records)
//! record  = u64be(seq) u32be(len) idem u32be(len) bytes u32be(len) hashes
//! ```
//!
//! `hashes` are the entry's tree hashes above level 8 (see [`DERIVED_LEVELS`]); the ones below are
//! re-derived from the tile's entries when read ([`with_hashes`]).
//!
//! A tile is written once, by the commit that completes it; until then its entries are rows of
//! `open_entries` (one each, never updated), which readers turn into a tile of format `0x00` in the
//! same statement that reads the full ones (SQL function `qm_record`, migration 0003).
use qm_store::{Result, StoreError};

/// Entries per tile.
pub const TILE: u64 = 256;

/// Tree hashes per entry that a tile derives from its own entries instead of storing: levels 0
/// (the leaf) to 8 (the tile's root), every node whose subtree lies inside the tile. A record
/// keeps only its hashes above the tile (the last entry of a tile completes parents that join it
/// to the tiles before). Stored hashes that cannot disagree with the entries are not stored.
pub const DERIVED_LEVELS: usize = 9;

/// Data as the migration writes it: records, uncompressed.
const RAW: u8 = 0;
/// Data as `commit` writes it: the records' length and their LZ4 block.
const LZ4: u8 = 1;

/// The most a tile's records may take once decompressed: a commit that would make a bigger tile is
/// refused, and a damaged length must not make the reader allocate more.
pub const MAX_RECORDS_BYTES: usize = 256 << 20;

/// LZ4 never expands by more than this factor (its longest match from one token), so a block
/// claiming more than that many bytes per compressed byte is damaged.
const LZ4_MAX_RATIO: usize = 255;

/// The tile that holds entry `seq`.
pub fn tile_of(seq: u64) -> u64 {
    seq / TILE
}

/// One entry as a tile holds it, borrowed from the tile's records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub seq: u64,
    pub idem: &'a str,
    pub bytes: &'a [u8],
    pub hashes: &'a [u8],
}

impl Record<'_> {
    /// Appends this record's encoding to `out`.
    pub fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.seq.to_be_bytes());
        for field in [self.idem.as_bytes(), self.bytes, self.hashes] {
            // Entries are far below 4 GiB (the server refuses bodies above a few MiB).
            out.extend_from_slice(&(field.len() as u32).to_be_bytes());
            out.extend_from_slice(field);
        }
    }
}

/// Compresses a tile's records into its stored data.
pub fn seal(records: &[u8]) -> Vec<u8> {
    let mut data = Vec::with_capacity(5 + lz4_flex::block::get_maximum_output_size(records.len()));
    data.push(LZ4);
    data.extend_from_slice(&(records.len() as u32).to_be_bytes());
    data.extend_from_slice(&lz4_flex::block::compress(records));
    data
}

/// A tile's records from its stored data, decompressed into `buf` (reused from tile to tile: fresh
/// buffers cost more in page faults than the decompression itself); `Damaged` naming the tile when
/// they cannot be read.
pub fn unseal<'a>(tile: u64, data: &'a [u8], buf: &'a mut Vec<u8>) -> Result<&'a [u8]> {
    let damaged =
        |why: String| StoreError::Damaged(format!("ledger tile {tile} (entries {}–{}): {why}", tile * TILE, tile * TILE + TILE - 1));
    match data.split_first() {
        Some((&RAW, records)) => Ok(records),
        Some((&LZ4, rest)) if rest.len() >= 4 => {
            let (len, block) = rest.split_at(4);
            let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            if len > MAX_RECORDS_BYTES || len > block.len().saturating_mul(LZ4_MAX_RATIO) {
                return Err(damaged(format!("claims {len} bytes of records from {} compressed", block.len())));
            }
            // Safe decoding writes into initialised bytes: zeroed once, then reused as they are
            // (decompression reads back only what it has written).
            if buf.len() < len {
                buf.resize(len, 0);
            }
            match lz4_flex::block::decompress_into(block, &mut buf[..len]) {
                Ok(n) if n == len => Ok(&buf[..len]),
                Ok(n) => Err(damaged(format!("holds {n} bytes of records, not the {len} it claims"))),
                Err(e) => Err(damaged(format!("cannot be decompressed: {e}"))),
            }
        }
        Some((format, _)) => Err(damaged(format!("unknown format {format} or truncated data"))),
        None => Err(damaged("no data".into())),
    }
}

/// The records of tile `tile`, in order, each checked to lie in the tile and to follow the one
/// before; the first that does not read is `Damaged`.
pub fn records(tile: u64, records: &[u8]) -> impl Iterator<Item = Result<Record<'_>>> {
    let mut rest = records;
    let mut last: Option<u64> = None;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let r = next_record(tile, &mut rest, last);
        match &r {
            Ok(rec) => last = Some(rec.seq),
            Err(_) => rest = &[],
        }
        Some(r)
    })
}

fn next_record<'a>(tile: u64, rest: &mut &'a [u8], last: Option<u64>) -> Result<Record<'a>> {
    let at = last.map_or(tile.saturating_mul(TILE), |s| s.saturating_add(1));
    let damaged = |why: &str| StoreError::Damaged(format!("ledger tile {tile}: the record expected for entry {at} {why}"));
    let seq = u64::from_be_bytes(take(rest, 8).ok_or_else(|| damaged("is cut short"))?.try_into().unwrap_or_default());
    if tile_of(seq) != tile || last.is_some_and(|l| seq <= l) {
        return Err(StoreError::Damaged(format!("ledger tile {tile}: holds entry {seq} out of place (after {last:?})")));
    }
    let mut field = || -> Result<&'a [u8]> {
        let len = take(rest, 4).ok_or_else(|| damaged("is cut short"))?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        take(rest, len).ok_or_else(|| StoreError::Damaged(format!("ledger tile {tile}: entry {seq} is cut short")))
    };
    let idem = std::str::from_utf8(field()?).map_err(|_| StoreError::Damaged(format!("entry {seq}: idempotency key is not UTF-8")))?;
    let bytes = field()?;
    let hashes = field()?;
    Ok(Record { seq, idem, bytes, hashes })
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if rest.len() < n {
        return None;
    }
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    Some(head)
}

/// Every record of tile `tile` with all its tree hashes, from the leaf up: those inside the tile
/// re-derived from the tile's entries, then the stored ones above it. A tile holds its entries
/// from its first on without a gap (a ledger has none); after a gap they cannot be derived, and
/// that is `Damaged`.
pub fn with_hashes(tile: u64, records_: &[u8]) -> Result<Vec<(Record<'_>, Vec<qm_store::Hash>)>> {
    let mut tree = qm_ledger::Frontier::new();
    let mut out = Vec::with_capacity(TILE as usize);
    for rec in records(tile, records_) {
        let rec = rec?;
        let expected = tile * TILE + tree.size();
        if rec.seq != expected {
            return Err(StoreError::Damaged(format!(
                "entry {expected} is missing (ledger tile {tile} goes on at {}): the tree hashes after it cannot be derived",
                rec.seq
            )));
        }
        let mut hashes = Vec::with_capacity(2);
        tree.push_visit(qm_ledger::leaf_hash(rec.bytes), |h| hashes.push(*h));
        hashes.extend(qm_store::blob_to_hashes(rec.seq, rec.hashes)?);
        out.push((rec, hashes));
    }
    Ok(out)
}

/// The records of `old` (a tile's records) and `new` (records of the same tile, none of them in
/// `old`), merged in `seq` order. A `seq` in both is `Damaged`: the caller has already claimed
/// every new `seq` in the key table, so a tile holding one is out of step with it.
pub fn merge(tile: u64, old: &[u8], new: &[Record<'_>]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(old.len() + new.iter().map(|r| 20 + r.idem.len() + r.bytes.len() + r.hashes.len()).sum::<usize>());
    let mut new = new.iter().peekable();
    for rec in records(tile, old) {
        let rec = rec?;
        while let Some(n) = new.next_if(|n| n.seq < rec.seq) {
            n.put(&mut out);
        }
        if new.peek().is_some_and(|n| n.seq == rec.seq) {
            return Err(StoreError::Damaged(format!("ledger tile {tile} already holds entry {}, which the key table does not", rec.seq)));
        }
        rec.put(&mut out);
    }
    for n in new {
        n.put(&mut out);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: u64) -> (u64, String, Vec<u8>, Vec<u8>) {
        (seq, format!("k{seq}"), format!("{{\"seq\":{seq}}}").into_bytes(), vec![seq as u8; 32 * (1 + seq as usize % 3)])
    }

    fn encode(seqs: &[u64]) -> Vec<u8> {
        let mut out = vec![];
        for s in seqs {
            let (seq, idem, bytes, hashes) = rec(*s);
            Record { seq, idem: &idem, bytes: &bytes, hashes: &hashes }.put(&mut out);
        }
        out
    }

    fn seqs(tile: u64, records_: &[u8]) -> Vec<u64> {
        records(tile, records_).map(|r| r.unwrap().seq).collect()
    }

    #[test]
    fn records_round_trip_through_both_formats() {
        let raw = encode(&[256, 257, 300]);
        for data in [seal(&raw), [vec![RAW], raw.clone()].concat()] {
            let mut buf = vec![];
            let back = unseal(1, &data, &mut buf).unwrap();
            assert_eq!(back, raw.as_slice());
            let r: Vec<Record> = records(1, back).collect::<Result<_>>().unwrap();
            let (seq, idem, bytes, hashes) = rec(300);
            assert_eq!(r[2], Record { seq, idem: &idem, bytes: &bytes, hashes: &hashes });
        }
        assert!(seal(&encode(&(0..256).collect::<Vec<_>>())).len() < raw.len() * 256 / 3, "neighbouring entries compress");
    }

    #[test]
    fn new_records_merge_in_seq_order() {
        let old = encode(&[0, 1, 6, 7]);
        let new_data: Vec<_> = [2u64, 3, 8].iter().map(|s| rec(*s)).collect();
        let new: Vec<Record> = new_data.iter().map(|(seq, i, b, h)| Record { seq: *seq, idem: i, bytes: b, hashes: h }).collect();
        let merged = merge(0, &old, &new).unwrap();
        assert_eq!(seqs(0, &merged), vec![0, 1, 2, 3, 6, 7, 8]);
        assert_eq!(merged, encode(&[0, 1, 2, 3, 6, 7, 8]));
        let again = merge(0, &merged, &new[..1]);
        assert!(matches!(again, Err(StoreError::Damaged(m)) if m.contains("already holds entry 2")));
    }

    #[test]
    fn hashes_inside_a_tile_are_derived_and_those_above_it_kept() {
        // The tree hashes of entries 0..600, as the ledger makes them.
        let mut tree = qm_ledger::Frontier::new();
        let entries: Vec<(Vec<u8>, Vec<qm_store::Hash>)> = (0..600u64)
            .map(|seq| {
                let bytes = format!("{{\"seq\":{seq}}}").into_bytes();
                let hashes = tree.push(qm_ledger::leaf_hash(&bytes));
                (bytes, hashes)
            })
            .collect();
        for tile in 0..3u64 {
            let mut raw = vec![];
            let range = (tile * TILE) as usize..((tile + 1) * TILE).min(600) as usize;
            for seq in range.clone() {
                let (bytes, hashes) = &entries[seq];
                let stored: Vec<u8> = hashes.iter().skip(DERIVED_LEVELS).flatten().copied().collect();
                assert_eq!(stored.is_empty(), seq != 511, "only entry 511 completes a node above its tile (of 512)");
                Record { seq: seq as u64, idem: "k", bytes, hashes: &stored }.put(&mut raw);
            }
            let got = with_hashes(tile, &raw).unwrap();
            assert_eq!(got.len(), range.len());
            for (rec, hashes) in got {
                assert_eq!(hashes, entries[rec.seq as usize].1, "entry {}", rec.seq);
            }
        }
        let gap = encode(&[0, 2]);
        assert!(matches!(with_hashes(0, &gap), Err(StoreError::Damaged(m)) if m.contains("entry 1 is missing")));
    }

    #[test]
    fn damaged_tiles_are_named_and_never_panic() {
        let raw = encode(&[512, 513]);
        let sealed = seal(&raw);
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (vec![], "no data"),
            (vec![7, 1, 2], "unknown format 7"),
            ([&[LZ4], &u32::MAX.to_be_bytes()[..], &sealed[5..]].concat(), "claims"),
            // 1 MiB claimed from 9 compressed bytes: more than LZ4 can expand to, refused before allocating.
            ([&[LZ4], &(1u32 << 20).to_be_bytes()[..], &[0u8; 9][..]].concat(), "claims 1048576 bytes of records from 9"),
            ([&sealed[..5], &[0xff; 9][..]].concat(), "cannot be decompressed"),
            ([&[LZ4], &(raw.len() as u32 + 1).to_be_bytes()[..], &sealed[5..]].concat(), "not the"),
        ];
        for (data, why) in cases {
            let e = unseal(2, &data, &mut vec![]).unwrap_err();
            assert!(matches!(&e, StoreError::Damaged(m) if m.contains(why) && m.contains("tile 2")), "{why}: {e}");
        }
        // Records cut anywhere, or out of place, stop with `Damaged` (every prefix is tried).
        let first = encode(&[512]).len();
        for cut in 1..raw.len() {
            let r: Result<Vec<Record>> = records(2, &raw[..cut]).collect();
            if cut != first {
                assert!(matches!(r, Err(StoreError::Damaged(_))), "cut at {cut}");
            }
        }
        assert!(records(3, &raw).next().unwrap().is_err(), "entry 512 is not in tile 3");
        let backwards = encode(&[513, 512]);
        assert!(records(2, &backwards).nth(1).unwrap().is_err());
    }
}
