-- 0007: this site as the witness of its children's ledgers, and its parent's cosignatures of its
-- own checkpoints (docs/sites.md). Released: never edit; add a new file.
CREATE TABLE witnessed (
    origin      TEXT PRIMARY KEY,
    size        INTEGER NOT NULL,
    root        BLOB NOT NULL,
    note        TEXT NOT NULL,   -- the child's signed checkpoint, as it sent it
    cosignature TEXT NOT NULL,   -- the line this site gave it
    at_ms       INTEGER NOT NULL
);
CREATE TABLE fork_evidence (
    id           INTEGER PRIMARY KEY,
    origin       TEXT NOT NULL,
    held_note    TEXT NOT NULL,  -- cosigned before
    offered_note TEXT NOT NULL,  -- signed by the same key, contradicting it
    reason       TEXT NOT NULL,
    at_ms        INTEGER NOT NULL
);
CREATE TRIGGER fork_evidence_no_update BEFORE UPDATE ON fork_evidence BEGIN SELECT RAISE(ABORT, 'evidence is never updated'); END;
CREATE TRIGGER fork_evidence_no_delete BEFORE DELETE ON fork_evidence BEGIN SELECT RAISE(ABORT, 'evidence is never deleted'); END;
CREATE TABLE cosignatures (
    size    INTEGER NOT NULL,
    witness TEXT NOT NULL,
    line    TEXT NOT NULL,
    at_ms   INTEGER NOT NULL,
    PRIMARY KEY (size, witness)
);
