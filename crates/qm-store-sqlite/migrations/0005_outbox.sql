-- 0005: the outbox of notifications (e-mail, webhooks, the web list), outside the ledger: each row is
-- derived from a ledger entry (seq) by the site's notification rules, and keeps its delivery state
-- (attempts, the next one due, the last error, when delivered) across restarts. The cursor says how
-- many ledger entries have been looked at. Released: never edit; add a new file.
CREATE TABLE outbox (
    id           TEXT PRIMARY KEY,
    seq          INTEGER NOT NULL,
    channel      TEXT NOT NULL,   -- "email", "webhook" or "web"
    target       TEXT NOT NULL,   -- address, webhook name or badge
    subject      TEXT NOT NULL,
    body         TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_ms      INTEGER NOT NULL,
    last_error   TEXT,
    delivered_ms INTEGER
);
CREATE INDEX outbox_due ON outbox (next_ms) WHERE delivered_ms IS NULL;
CREATE INDEX outbox_target ON outbox (channel, target, seq);
CREATE TABLE outbox_cursor (
    one      INTEGER PRIMARY KEY CHECK (one = 1),
    next_seq INTEGER NOT NULL
);
