//! The outbox of notifications (migration 0005): rows derived from ledger entries, with their
//! delivery state, written beside the ledger but never part of it.

use crate::{be, SqliteStore};
use qm_store::{OutboxMessage, OutboxQuery, Result};
use rusqlite::{params, OptionalExtension};

const COLUMNS: &str = "id, seq, channel, target, subject, body, created_ms, attempts, next_ms, last_error, delivered_ms";

fn row(r: &rusqlite::Row) -> rusqlite::Result<OutboxMessage> {
    Ok(OutboxMessage {
        id: r.get(0)?,
        seq: r.get::<_, i64>(1)? as u64,
        channel: r.get(2)?,
        target: r.get(3)?,
        subject: r.get(4)?,
        body: r.get(5)?,
        created_ms: r.get(6)?,
        attempts: r.get::<_, i64>(7)? as u32,
        next_ms: r.get(8)?,
        last_error: r.get(9)?,
        delivered_ms: r.get(10)?,
    })
}

impl SqliteStore {
    pub(crate) fn outbox_cursor_of(&self) -> Result<Option<u64>> {
        let v: Option<i64> =
            self.conn.query_row("SELECT next_seq FROM outbox_cursor WHERE one = 1", [], |r| r.get(0)).optional().map_err(be)?;
        Ok(v.map(|v| v as u64))
    }

    pub(crate) fn outbox_put_all(&mut self, messages: &[OutboxMessage], cursor: u64) -> Result<()> {
        let tx = self.conn.transaction().map_err(be)?;
        {
            let mut put = tx
                .prepare_cached(&format!(
                    "INSERT INTO outbox ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (id) DO NOTHING"
                ))
                .map_err(be)?;
            for m in messages {
                put.execute(params![
                    m.id,
                    m.seq as i64,
                    m.channel,
                    m.target,
                    m.subject,
                    m.body,
                    m.created_ms,
                    m.attempts as i64,
                    m.next_ms,
                    m.last_error,
                    m.delivered_ms
                ])
                .map_err(be)?;
            }
            tx.execute(
                "INSERT INTO outbox_cursor (one, next_seq) VALUES (1, ?1) ON CONFLICT (one) DO UPDATE SET next_seq = excluded.next_seq",
                params![cursor as i64],
            )
            .map_err(be)?;
        }
        tx.commit().map_err(be)
    }

    pub(crate) fn outbox_update_one(&mut self, m: &OutboxMessage) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE outbox SET attempts = ?2, next_ms = ?3, last_error = ?4, delivered_ms = ?5 WHERE id = ?1")
            .map_err(be)?
            .execute(params![m.id, m.attempts as i64, m.next_ms, m.last_error, m.delivered_ms])
            .map_err(be)?;
        Ok(())
    }

    pub(crate) fn outbox_query(&self, q: &OutboxQuery) -> Result<Vec<OutboxMessage>> {
        let mut st = self
            .conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM outbox
                 WHERE (?1 IS NULL OR channel = ?1) AND (?2 IS NULL OR target = ?2)
                   AND (?3 = 0 OR delivered_ms IS NULL)
                   AND (?4 IS NULL OR (delivered_ms IS NULL AND next_ms <= ?4))
                 ORDER BY CASE WHEN ?4 IS NULL THEN -seq ELSE next_ms END, id LIMIT ?5"
            ))
            .map_err(be)?;
        let rows = st.query_map(params![q.channel, q.target, i64::from(q.pending_only), q.due_by_ms, q.limit as i64], row).map_err(be)?;
        rows.collect::<std::result::Result<Vec<_>, _>>().map_err(be)
    }
}
