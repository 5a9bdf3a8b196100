//! The baseline `qm bench` prints beside the ledger's figures: raw inserts of the same rows into a
//! scratch table of the same database.

use crate::*;

/// The baseline for `qm bench`: inserts `rows` rows of `row_bytes` bytes into a scratch table of the
/// same database (a text key with an index, as the ledger has), `batch` rows per transaction with one
/// array insert each — the way `commit` writes; returns rows per second. Round 0 starts the table
/// afresh, later rounds append to it (as the ledger grows), and the last (`last`) drops it.
pub fn raw_insert_rate(url: &str, rows: usize, row_bytes: usize, batch: usize, round: usize, last: bool) -> Result<f64> {
    let store = PostgresStore::connect(url)?;
    let mut client = store.client.into_inner();
    if round == 0 {
        client.batch_execute("DROP TABLE IF EXISTS qm_bench_raw").map_err(be)?;
    }
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS qm_bench_raw (seq BIGINT PRIMARY KEY, idem TEXT NOT NULL, bytes BYTEA NOT NULL);
             CREATE INDEX IF NOT EXISTS qm_bench_raw_idem ON qm_bench_raw (idem);",
        )
        .map_err(be)?;
    let mut seq: i64 = client.query_one("SELECT coalesce(max(seq) + 1, 0) FROM qm_bench_raw", &[]).map_err(be)?.get(0);
    let end = seq + rows as i64;
    let payload = vec![b'x'; row_bytes];
    let start = std::time::Instant::now();
    while seq < end {
        let n = batch.max(1);
        let seqs: Vec<i64> = (seq..seq + n as i64).collect();
        let idems: Vec<String> = seqs.iter().map(|s| format!("k-{s}")).collect();
        let bytes: Vec<&[u8]> = seqs.iter().map(|_| payload.as_slice()).collect();
        let mut tx = client.transaction().map_err(be)?;
        tx.execute(
            "INSERT INTO qm_bench_raw (seq, idem, bytes) SELECT * FROM UNNEST($1::bigint[], $2::text[], $3::bytea[])",
            &[&seqs, &idems, &bytes],
        )
        .map_err(be)?;
        tx.commit().map_err(be)?;
        seq += n as i64;
    }
    let rate = rows as f64 / start.elapsed().as_secs_f64().max(1e-9);
    if last {
        client.batch_execute("DROP TABLE qm_bench_raw").map_err(be)?;
    }
    Ok(rate)
}
