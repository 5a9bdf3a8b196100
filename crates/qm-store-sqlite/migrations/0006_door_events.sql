-- 0006: door events (docs/access.md). High volume, so kept outside the ledger; each batch is covered
-- by a `door_events` ledger entry (digest_seq) whose SHA-256 makes them tamper-evident. A source's
-- event ids are unique: the same event posted twice is stored once.
CREATE TABLE door_events (
    source     TEXT NOT NULL,
    event_id   TEXT NOT NULL,
    at_ms      INTEGER NOT NULL,
    door       TEXT NOT NULL,
    card       TEXT,
    kind       TEXT NOT NULL,
    location   TEXT,
    badge      TEXT,
    proof      TEXT,
    digest_seq INTEGER NOT NULL,
    UNIQUE (source, event_id)
);
CREATE INDEX door_events_location_at ON door_events(location, at_ms);
CREATE INDEX door_events_digest ON door_events(digest_seq);
CREATE TRIGGER door_events_no_update BEFORE UPDATE ON door_events BEGIN SELECT RAISE(ABORT, 'door events are never updated'); END;
CREATE TRIGGER door_events_no_delete BEFORE DELETE ON door_events BEGIN SELECT RAISE(ABORT, 'door events are never deleted'); END;
