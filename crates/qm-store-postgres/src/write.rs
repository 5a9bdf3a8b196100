//! Writing: one transaction per commit — entries into the open tile and sealed tiles, projection
//! rows collapsed to their last change, credentials, readings.

use crate::*;

impl PostgresStore {
    /// `commit`'s transaction; `cached` is the open tile as this store left it, and `open_after`
    /// receives it as this commit leaves it, when known.
    pub(crate) fn commit_with(&self, commit: &Commit, cached: Option<OpenTile>, open_after: &mut Option<OpenTile>) -> Result<()> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(be)?;
        // Each table is written with one statement over arrays (one round trip however large the batch).
        if !commit.entries.is_empty() {
            let seqs = commit.entries.iter().map(|e| seq_param(e.seq)).collect::<Result<Vec<i64>>>()?;
            let idems: Vec<&str> = commit.entries.iter().map(|e| e.idempotency_key.as_str()).collect();
            // Claiming the seqs first: ON CONFLICT DO NOTHING + RETURNING tells exactly which seq was
            // already taken (by another writer, or twice in this batch) without parsing an error; the
            // transaction is then dropped. Once claimed, only this transaction writes them to tiles.
            let inserted: HashSet<i64> = tx
                .query(
                    "INSERT INTO entry_keys (seq, idem) SELECT * FROM unnest($1::bigint[], $2::text[])
                     ON CONFLICT (seq) DO NOTHING RETURNING seq",
                    &[&seqs, &idems],
                )
                .map_err(be)?
                .iter()
                .map(|r| r.get(0))
                .collect();
            if inserted.len() != seqs.len() {
                let mut seen = HashSet::new();
                let seq = seqs.iter().find(|s| !inserted.contains(s) || !seen.insert(**s)).copied().unwrap_or_default();
                return Err(StoreError::Conflict { seq: seq as u64 });
            }
            *open_after = write_tiles(&mut tx, &commit.entries, cached)?;
        }
        if !commit.readings.is_empty() {
            let r = &commit.readings;
            let locations: Vec<&str> = r.iter().map(|x| x.location.as_str()).collect();
            let at: Vec<i64> = r.iter().map(|x| x.at_ms).collect();
            let t: Vec<Option<f64>> = r.iter().map(|x| x.temperature_c).collect();
            let h: Vec<Option<f64>> = r.iter().map(|x| x.humidity_pct).collect();
            let d = r.iter().map(|x| seq_param(x.digest_seq)).collect::<Result<Vec<i64>>>()?;
            // WITH ORDINALITY + ORDER BY keeps the identity column in the order the readings came.
            tx.execute(
                "INSERT INTO readings (location, at_ms, temperature_c, humidity_pct, digest_seq)
                 SELECT l, a, t, h, d FROM unnest($1::text[], $2::bigint[], $3::float8[], $4::float8[], $5::bigint[])
                      WITH ORDINALITY AS u(l, a, t, h, d, n) ORDER BY n",
                &[&locations, &at, &t, &h, &d],
            )
            .map_err(be)?;
        }
        write_door_events(&mut tx, &commit.door_events)?;
        if !commit.rows.is_empty() {
            // Every writer of rows locks `meta/next_seq` first (see `catch_up_rows`), so that two
            // of them never wait for each other's rows in opposite orders.
            tx.execute("SELECT 1 FROM projection WHERE kind = 'meta' AND key = 'next_seq' FOR UPDATE", &[]).map_err(be)?;
        }
        write_rows(&mut tx, &commit.rows)?;
        write_credentials(&mut tx, &commit.credentials)?;
        // Returns once the WAL is flushed (synchronous_commit = on, see the module comment).
        tx.commit().map_err(be)
    }
}

pub(crate) fn seq_param(seq: u64) -> Result<i64> {
    i64::try_from(seq).map_err(|_| StoreError::Backend(format!("sequence number {seq} does not fit a bigint")))
}

/// The row changes of a commit as one set of upserts and one of deletes, with the last change of each
/// (kind, key) winning: the same end state as applying them one by one, in two statements.
pub(crate) fn collapse_rows(rows: &[qm_store::RowChange]) -> (Vec<&qm_store::RowChange>, Vec<&qm_store::RowChange>) {
    let mut last: HashMap<(&str, &str), usize> = HashMap::with_capacity(rows.len());
    for (i, r) in rows.iter().enumerate() {
        last.insert((r.kind.as_str(), r.key.as_str()), i);
    }
    let mut upserts = vec![];
    let mut deletes = vec![];
    for (i, r) in rows.iter().enumerate() {
        if last.get(&(r.kind.as_str(), r.key.as_str())) != Some(&i) {
            continue;
        }
        if r.value.is_some() {
            upserts.push(r);
        } else {
            deletes.push(r);
        }
    }
    (upserts, deletes)
}

/// Writes a commit's entries, whose seqs the transaction has just claimed. Those that complete a
/// tile go into it, compressed, with the tile's earlier entries (from `cached` when it holds them,
/// else read from `open_entries`; removed there once the tile exists); the others become rows of
/// `open_entries` until their tile is complete. A tile is written once and never again. Returns
/// the open tile as this commit leaves it, when known.
pub(crate) fn write_tiles(tx: &mut postgres::Transaction, entries: &[StoredEntry], cached: Option<OpenTile>) -> Result<Option<OpenTile>> {
    // Only the hashes above each entry's tile are stored; the rest are derived when read.
    let hashes: Vec<Vec<u8>> =
        entries.iter().map(|e| qm_store::hashes_to_blob(e.hashes.get(tiles::DERIVED_LEVELS..).unwrap_or_default())).collect();
    let mut by_tile: BTreeMap<u64, Vec<tiles::Record>> = BTreeMap::new();
    for (e, hashes) in entries.iter().zip(&hashes) {
        let rec = tiles::Record { seq: e.seq, idem: &e.idempotency_key, bytes: &e.bytes, hashes };
        by_tile.entry(tiles::tile_of(e.seq)).or_default().push(rec);
    }
    let mut open: Vec<tiles::Record> = vec![];
    let (mut sealed, mut sealed_data): (Vec<i64>, Vec<Vec<u8>>) = (vec![], vec![]);
    // Sealed tiles some of whose entries came from earlier commits: those rows leave `open_entries`.
    let mut emptied: Vec<i64> = vec![];
    let mut open_after = None;
    let mut cached = cached;
    for (tile, mut recs) in by_tile {
        recs.sort_by_key(|r| r.seq);
        let (start, end) = (tile * tiles::TILE, (tile + 1) * tiles::TILE);
        let (first_new, last_new) = (recs.first().map_or(start, |r| r.seq), recs.last().map_or(start, |r| r.seq));
        // The tile's entries before this commit's (their records and how many), when known without asking.
        let known: Option<(Vec<u8>, u64)> = match cached.take() {
            Some(c) if c.tile == tile && c.next == first_new => Some((c.records, c.next - start)),
            _ if first_new == start => Some((vec![], 0)),
            _ => None,
        };
        let completes = last_new + 1 == end;
        let earlier = match known {
            Some(records) => Some(records),
            None if completes => {
                let rows = tx
                    .query(
                        "SELECT seq, idem, bytes, hashes FROM open_entries WHERE seq >= $1 AND seq < $2 ORDER BY seq",
                        &[&seq_param(start)?, &seq_param(end)?],
                    )
                    .map_err(be)?;
                let mut records = vec![];
                let n = rows.len() as u64;
                for r in &rows {
                    let rec = tiles::Record {
                        seq: seq_of(r.try_get(0).map_err(be)?)?,
                        idem: r.try_get(1).map_err(be)?,
                        bytes: r.try_get(2).map_err(be)?,
                        hashes: r.try_get(3).map_err(be)?,
                    };
                    rec.put(&mut records);
                }
                Some((records, n))
            }
            None => None,
        };
        // How many entries the tile holds with this commit's, when its earlier ones are known.
        let count = earlier.as_ref().map(|(_, n)| n + recs.len() as u64);
        let merged = earlier.map(|(e, _)| tiles::merge(tile, &e, &recs)).transpose()?;
        match merged {
            Some(records) if completes && count == Some(tiles::TILE) => {
                if records.len() > tiles::MAX_RECORDS_BYTES {
                    return Err(StoreError::Backend(format!(
                        "ledger tile {tile} would hold {} bytes of entries, more than the {} a tile may: these entries are too large",
                        records.len(),
                        tiles::MAX_RECORDS_BYTES
                    )));
                }
                sealed.push(seq_param(tile)?);
                sealed_data.push(tiles::seal(&records));
                if first_new > start {
                    emptied.push(seq_param(tile)?);
                }
                open_after = Some(OpenTile { tile: tile + 1, next: end, records: vec![] });
            }
            merged => {
                open.extend(&recs);
                // Known only when the tile holds every entry from its first on.
                open_after =
                    merged.filter(|_| count == Some(last_new + 1 - start)).map(|records| OpenTile { tile, next: last_new + 1, records });
            }
        }
    }
    if !open.is_empty() {
        let seqs = open.iter().map(|r| seq_param(r.seq)).collect::<Result<Vec<i64>>>()?;
        let idems: Vec<&str> = open.iter().map(|r| r.idem).collect();
        let bytes: Vec<&[u8]> = open.iter().map(|r| r.bytes).collect();
        let hashes: Vec<&[u8]> = open.iter().map(|r| r.hashes).collect();
        tx.execute(
            "INSERT INTO open_entries (seq, idem, bytes, hashes) SELECT * FROM unnest($1::bigint[], $2::text[], $3::bytea[], $4::bytea[])",
            &[&seqs, &idems, &bytes, &hashes],
        )
        .map_err(be)?;
    }
    if !sealed.is_empty() {
        // Every seq of these tiles was claimed (by this transaction or earlier ones): a tile that
        // exists already holds entries the key table never gave out.
        let created: HashSet<i64> = tx
            .query(
                "INSERT INTO tiles (tile, data) SELECT * FROM unnest($1::bigint[], $2::bytea[]) ON CONFLICT (tile) DO NOTHING RETURNING tile",
                &[&sealed, &sealed_data],
            )
            .map_err(be)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if let Some(t) = sealed.iter().find(|t| !created.contains(t)) {
            return Err(StoreError::Damaged(format!("ledger tile {t} exists though the key table had not given out all its entries")));
        }
    }
    if !emptied.is_empty() {
        tx.execute(
            "DELETE FROM open_entries o USING unnest($1::bigint[]) AS s(tile) WHERE o.seq >= s.tile * 256 AND o.seq < (s.tile + 1) * 256",
            &[&emptied],
        )
        .map_err(be)?;
    }
    Ok(open_after)
}

/// Applies row changes inside a transaction (the caller commits): one statement for the upserts,
/// one for the deletes, the last change of a row winning.
pub(crate) fn write_rows(tx: &mut postgres::Transaction, rows: &[qm_store::RowChange]) -> Result<()> {
    let (upserts, deletes) = collapse_rows(rows);
    if !upserts.is_empty() {
        let kinds: Vec<&str> = upserts.iter().map(|r| r.kind.as_str()).collect();
        let keys: Vec<&str> = upserts.iter().map(|r| r.key.as_str()).collect();
        let values: Vec<&str> = upserts.iter().map(|r| r.value.as_deref().unwrap_or_default()).collect();
        tx.execute(
            "INSERT INTO projection (kind, key, value) SELECT * FROM unnest($1::text[], $2::text[], $3::text[])
             ON CONFLICT (kind, key) DO UPDATE SET value = excluded.value",
            &[&kinds, &keys, &values],
        )
        .map_err(be)?;
    }
    if !deletes.is_empty() {
        let kinds: Vec<&str> = deletes.iter().map(|r| r.kind.as_str()).collect();
        let keys: Vec<&str> = deletes.iter().map(|r| r.key.as_str()).collect();
        tx.execute(
            "DELETE FROM projection p USING unnest($1::text[], $2::text[]) AS d(kind, key)
             WHERE p.kind = d.kind AND p.key = d.key",
            &[&kinds, &keys],
        )
        .map_err(be)?;
    }
    Ok(())
}

/// Sets or removes credentials inside the caller's transaction.
pub(crate) fn write_credentials(tx: &mut postgres::Transaction, changes: &[CredentialChange]) -> Result<()> {
    for c in changes {
        match &c.hash {
            Some(h) => tx.execute(
                "INSERT INTO credentials (subject, kind, hash, seq) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (subject, kind) DO UPDATE SET hash = excluded.hash, seq = excluded.seq",
                &[&c.subject, &c.kind, h, &seq_param(c.seq)?],
            ),
            None => tx.execute("DELETE FROM credentials WHERE subject = $1 AND kind = $2", &[&c.subject, &c.kind]),
        }
        .map_err(be)?;
    }
    Ok(())
}

/// Door events kept outside the ledger, in the order they came (docs/access.md).
fn write_door_events(tx: &mut postgres::Transaction<'_>, d: &[StoredDoorEvent]) -> Result<()> {
    if d.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&StoredDoorEvent) -> &str| d.iter().map(f).collect::<Vec<&str>>();
    let opt = |f: fn(&StoredDoorEvent) -> Option<&str>| d.iter().map(f).collect::<Vec<Option<&str>>>();
    let at: Vec<i64> = d.iter().map(|x| x.at_ms).collect();
    let seq = d.iter().map(|x| seq_param(x.digest_seq)).collect::<Result<Vec<i64>>>()?;
    tx.execute(
        "INSERT INTO door_events (source, event_id, at_ms, door, card, kind, location, badge, proof, digest_seq)
             SELECT s, i, a, d, c, k, l, b, p, q FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[],
                    $6::text[], $7::text[], $8::text[], $9::text[], $10::bigint[])
                  WITH ORDINALITY AS u(s, i, a, d, c, k, l, b, p, q, n) ORDER BY n",
        &[
            &col(|x| &x.source),
            &col(|x| &x.event_id),
            &at,
            &col(|x| &x.door),
            &opt(|x| x.card.as_deref()),
            &col(|x| &x.kind),
            &opt(|x| x.location.as_deref()),
            &opt(|x| x.badge.as_deref()),
            &opt(|x| x.proof.as_deref()),
            &seq,
        ],
    )
    .map_err(be)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use qm_store::RowChange;

    #[test]
    fn row_changes_collapse_to_the_last_change_of_each_key() {
        let c = |k: &str, v: Option<&str>| RowChange { kind: "serial".into(), key: k.into(), value: v.map(String::from) };
        let rows = vec![c("a", Some("1")), c("b", Some("1")), c("a", None), c("b", Some("2")), c("c", None), c("c", Some("3"))];
        let (up, del) = collapse_rows(&rows);
        let up: Vec<(&str, Option<&str>)> = up.iter().map(|r| (r.key.as_str(), r.value.as_deref())).collect();
        let del: Vec<&str> = del.iter().map(|r| r.key.as_str()).collect();
        assert_eq!(up, vec![("b", Some("2")), ("c", Some("3"))]);
        assert_eq!(del, vec!["a"]);
    }
}
