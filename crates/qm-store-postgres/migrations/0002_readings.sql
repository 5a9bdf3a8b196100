-- 0002: storage-condition readings (PostgreSQL). High volume, so kept outside the ledger; each batch is covered
-- by a `readings_recorded` ledger entry (digest_seq) whose SHA-256 makes the series tamper-evident.
-- `id` keeps the order the readings were written in (SQLite's rowid).
CREATE TABLE readings (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    location      text COLLATE "C" NOT NULL,
    at_ms         bigint NOT NULL,
    temperature_c double precision,
    humidity_pct  double precision,
    digest_seq    bigint NOT NULL
);
CREATE INDEX readings_location_at ON readings (location, at_ms);
CREATE INDEX readings_digest ON readings (digest_seq);
CREATE TRIGGER readings_no_update BEFORE UPDATE ON readings
    FOR EACH ROW EXECUTE FUNCTION qm_refuse_change('readings are never updated');
CREATE TRIGGER readings_no_delete BEFORE DELETE ON readings
    FOR EACH ROW EXECUTE FUNCTION qm_refuse_change('readings are never deleted');
CREATE TRIGGER readings_no_truncate BEFORE TRUNCATE ON readings
    FOR EACH STATEMENT EXECUTE FUNCTION qm_refuse_change('readings are never deleted');
