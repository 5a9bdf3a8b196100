-- 0005: the outbox of notifications, outside the ledger; see the SQLite migration 0005_outbox.sql.
CREATE TABLE outbox (
    id           TEXT PRIMARY KEY,
    seq          BIGINT NOT NULL,
    channel      TEXT NOT NULL,
    target       TEXT NOT NULL,
    subject      TEXT NOT NULL,
    body         TEXT NOT NULL,
    created_ms   BIGINT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_ms      BIGINT NOT NULL,
    last_error   TEXT,
    delivered_ms BIGINT
);
CREATE INDEX outbox_due ON outbox (next_ms) WHERE delivered_ms IS NULL;
CREATE INDEX outbox_target ON outbox (channel, target, seq);
CREATE TABLE outbox_cursor (
    one      INTEGER PRIMARY KEY CHECK (one = 1),
    next_seq BIGINT NOT NULL
);
