-- 0008: this site as the mirror of its children's ledgers (C2SP tlog-mirror, docs/sites.md): their
-- entries as they sent them, held from 0 without gaps, and the latest checkpoint mirrored whole.
-- Released: never edit; add a new file.
CREATE TABLE mirror_entries (
    origin TEXT NOT NULL,
    seq    INTEGER NOT NULL,
    bytes  BLOB NOT NULL,
    leaf   BLOB NOT NULL,     -- RFC 9162 leaf hash of bytes
    PRIMARY KEY (origin, seq)
) WITHOUT ROWID;
CREATE TRIGGER mirror_entries_no_update BEFORE UPDATE ON mirror_entries BEGIN SELECT RAISE(ABORT, 'mirrored entries are never updated'); END;
CREATE TRIGGER mirror_entries_no_delete BEFORE DELETE ON mirror_entries BEGIN SELECT RAISE(ABORT, 'mirrored entries are never deleted'); END;
CREATE TABLE mirrored (
    origin      TEXT PRIMARY KEY,
    size        INTEGER NOT NULL,
    note        TEXT NOT NULL,   -- the child's signed checkpoint of that size
    cosignature TEXT NOT NULL,   -- the line this site gave it as its mirror
    at_ms       INTEGER NOT NULL
);
