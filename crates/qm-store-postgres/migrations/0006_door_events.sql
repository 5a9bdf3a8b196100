-- 0006: door events (PostgreSQL; docs/access.md). High volume, so kept outside the ledger; each batch
-- is covered by a `door_events` ledger entry (digest_seq) whose SHA-256 makes them tamper-evident.
-- A source's event ids are unique. `id` keeps the order the events were written in.
CREATE TABLE door_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    source     text COLLATE "C" NOT NULL,
    event_id   text COLLATE "C" NOT NULL,
    at_ms      bigint NOT NULL,
    door       text NOT NULL,
    card       text,
    kind       text NOT NULL,
    location   text COLLATE "C",
    badge      text,
    proof      text,
    digest_seq bigint NOT NULL,
    UNIQUE (source, event_id)
);
CREATE INDEX door_events_location_at ON door_events (location, at_ms);
CREATE INDEX door_events_digest ON door_events (digest_seq);
CREATE TRIGGER door_events_no_update BEFORE UPDATE ON door_events
    FOR EACH ROW EXECUTE FUNCTION qm_refuse_change('door events are never updated');
CREATE TRIGGER door_events_no_delete BEFORE DELETE ON door_events
    FOR EACH ROW EXECUTE FUNCTION qm_refuse_change('door events are never deleted');
CREATE TRIGGER door_events_no_truncate BEFORE TRUNCATE ON door_events
    FOR EACH STATEMENT EXECUTE FUNCTION qm_refuse_change('door events are never deleted');
