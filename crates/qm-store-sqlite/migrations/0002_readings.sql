-- 0002: storage-condition readings. High volume, so kept outside the ledger; each batch is covered
-- by a `readings_recorded` ledger entry (digest_seq) whose SHA-256 makes the series tamper-evident.
CREATE TABLE readings (
    location      TEXT NOT NULL,
    at_ms         INTEGER NOT NULL,
    temperature_c REAL,
    humidity_pct  REAL,
    digest_seq    INTEGER NOT NULL
);
CREATE INDEX readings_location_at ON readings(location, at_ms);
CREATE INDEX readings_digest ON readings(digest_seq);
CREATE TRIGGER readings_no_update BEFORE UPDATE ON readings BEGIN SELECT RAISE(ABORT, 'readings are never updated'); END;
CREATE TRIGGER readings_no_delete BEFORE DELETE ON readings BEGIN SELECT RAISE(ABORT, 'readings are never deleted'); END;
