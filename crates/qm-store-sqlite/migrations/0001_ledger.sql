-- 0001: the ledger, its checkpoints and the stored projections. Released: never edit; add a new file.
CREATE TABLE entries (
    seq     INTEGER PRIMARY KEY,
    idem    TEXT NOT NULL,
    bytes   BLOB NOT NULL,
    hashes  BLOB NOT NULL
);
CREATE INDEX entries_idem ON entries(idem);
-- History is never edited: the database itself refuses to update or delete an entry.
CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries BEGIN SELECT RAISE(ABORT, 'ledger entries are never updated'); END;
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries BEGIN SELECT RAISE(ABORT, 'ledger entries are never deleted'); END;
CREATE TABLE checkpoints (
    size    INTEGER PRIMARY KEY,
    note    TEXT NOT NULL
);
CREATE TABLE projection (
    kind    TEXT NOT NULL,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
