//! The outbox of notifications (migration 0005); see the SQLite store's `outbox`.

use crate::*;
use qm_store::{OutboxMessage, OutboxQuery};

const COLUMNS: &str = "id, seq, channel, target, subject, body, created_ms, attempts, next_ms, last_error, delivered_ms";

fn message(r: &Row) -> Result<OutboxMessage> {
    Ok(OutboxMessage {
        id: r.try_get(0).map_err(be)?,
        seq: r.try_get::<_, i64>(1).map_err(be)? as u64,
        channel: r.try_get(2).map_err(be)?,
        target: r.try_get(3).map_err(be)?,
        subject: r.try_get(4).map_err(be)?,
        body: r.try_get(5).map_err(be)?,
        created_ms: r.try_get(6).map_err(be)?,
        attempts: r.try_get::<_, i32>(7).map_err(be)? as u32,
        next_ms: r.try_get(8).map_err(be)?,
        last_error: r.try_get(9).map_err(be)?,
        delivered_ms: r.try_get(10).map_err(be)?,
    })
}

impl PostgresStore {
    pub(crate) fn outbox_cursor_of(&self) -> Result<Option<u64>> {
        let rows = self.client()?.query("SELECT next_seq FROM outbox_cursor WHERE one = 1", &[]).map_err(be)?;
        rows.first().map(|r| r.try_get::<_, i64>(0).map(|v| v as u64).map_err(be)).transpose()
    }

    pub(crate) fn outbox_put_all(&mut self, messages: &[OutboxMessage], cursor: u64) -> Result<()> {
        let mut client = self.client()?;
        let mut tx = client.transaction().map_err(be)?;
        let put = tx
            .prepare(&format!(
                "INSERT INTO outbox ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT (id) DO NOTHING"
            ))
            .map_err(be)?;
        for m in messages {
            tx.execute(
                &put,
                &[
                    &m.id,
                    &(m.seq as i64),
                    &m.channel,
                    &m.target,
                    &m.subject,
                    &m.body,
                    &m.created_ms,
                    &(m.attempts as i32),
                    &m.next_ms,
                    &m.last_error,
                    &m.delivered_ms,
                ],
            )
            .map_err(be)?;
        }
        tx.execute(
            "INSERT INTO outbox_cursor (one, next_seq) VALUES (1, $1) ON CONFLICT (one) DO UPDATE SET next_seq = excluded.next_seq",
            &[&(cursor as i64)],
        )
        .map_err(be)?;
        tx.commit().map_err(be)
    }

    pub(crate) fn outbox_update_one(&mut self, m: &OutboxMessage) -> Result<()> {
        self.client()?
            .execute(
                "UPDATE outbox SET attempts = $2, next_ms = $3, last_error = $4, delivered_ms = $5 WHERE id = $1",
                &[&m.id, &(m.attempts as i32), &m.next_ms, &m.last_error, &m.delivered_ms],
            )
            .map_err(be)?;
        Ok(())
    }

    pub(crate) fn outbox_query(&self, q: &OutboxQuery) -> Result<Vec<OutboxMessage>> {
        let rows = self
            .client()?
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM outbox
                     WHERE ($1::text IS NULL OR channel = $1) AND ($2::text IS NULL OR target = $2)
                       AND (NOT $3 OR delivered_ms IS NULL)
                       AND ($4::bigint IS NULL OR (delivered_ms IS NULL AND next_ms <= $4))
                     ORDER BY CASE WHEN $4::bigint IS NULL THEN -seq ELSE next_ms END, id LIMIT $5"
                ),
                &[&q.channel, &q.target, &q.pending_only, &q.due_by_ms, &(q.limit as i64)],
            )
            .map_err(be)?;
        rows.iter().map(message).collect()
    }
}
