-- 0008: this site as the mirror of its children's ledgers (C2SP tlog-mirror, docs/sites.md): their
-- entries as they sent them, held from 0 without gaps, and the latest checkpoint mirrored whole.
-- Released: never edit; add a new file.
CREATE TABLE mirror_entries (
    origin TEXT NOT NULL,
    seq    BIGINT NOT NULL,
    bytes  BYTEA NOT NULL,
    leaf   BYTEA NOT NULL,
    PRIMARY KEY (origin, seq)
);
CREATE TRIGGER mirror_entries_no_update BEFORE UPDATE ON mirror_entries
    FOR EACH ROW EXECUTE FUNCTION qm_refuse_change('mirrored entries are never updated');
CREATE TRIGGER mirror_entries_no_delete BEFORE DELETE ON mirror_entries
    FOR EACH ROW EXECUTE FUNCTION qm_refuse_change('mirrored entries are never deleted');
CREATE TRIGGER mirror_entries_no_truncate BEFORE TRUNCATE ON mirror_entries
    FOR EACH STATEMENT EXECUTE FUNCTION qm_refuse_change('mirrored entries are never deleted');
CREATE TABLE mirrored (
    origin      TEXT PRIMARY KEY,
    size        BIGINT NOT NULL,
    note        TEXT NOT NULL,
    cosignature TEXT NOT NULL,
    at_ms       BIGINT NOT NULL
);
