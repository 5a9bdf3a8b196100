-- 0007: this site as the witness of its children's ledgers, and its parent's cosignatures of its
-- own checkpoints (docs/sites.md). Released: never edit; add a new file.
CREATE TABLE witnessed (
    origin      TEXT PRIMARY KEY,
    size        BIGINT NOT NULL,
    root        BYTEA NOT NULL,
    note        TEXT NOT NULL,
    cosignature TEXT NOT NULL,
    at_ms       BIGINT NOT NULL
);
CREATE TABLE fork_evidence (
    id           BIGSERIAL PRIMARY KEY,
    origin       TEXT NOT NULL,
    held_note    TEXT NOT NULL,
    offered_note TEXT NOT NULL,
    reason       TEXT NOT NULL,
    at_ms        BIGINT NOT NULL
);
CREATE TRIGGER fork_evidence_no_update BEFORE UPDATE ON fork_evidence
    FOR EACH ROW EXECUTE FUNCTION qm_refuse_change('evidence is never updated');
CREATE TRIGGER fork_evidence_no_delete BEFORE DELETE ON fork_evidence
    FOR EACH ROW EXECUTE FUNCTION qm_refuse_change('evidence is never deleted');
CREATE TRIGGER fork_evidence_no_truncate BEFORE TRUNCATE ON fork_evidence
    FOR EACH STATEMENT EXECUTE FUNCTION qm_refuse_change('evidence is never deleted');
CREATE TABLE cosignatures (
    size    BIGINT NOT NULL,
    witness TEXT NOT NULL,
    line    TEXT NOT NULL,
    at_ms   BIGINT NOT NULL,
    PRIMARY KEY (size, witness)
);
