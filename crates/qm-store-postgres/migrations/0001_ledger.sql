-- 0001: the ledger, its checkpoints and the stored projections (PostgreSQL). Released: never edit; add a new file.
-- Text columns use the "C" collation: byte order and byte equality, as in SQLite, whatever the database's locale.
CREATE TABLE entries (
    seq     bigint PRIMARY KEY CHECK (seq >= 0),
    idem    text COLLATE "C" NOT NULL,
    bytes   bytea NOT NULL,
    hashes  bytea NOT NULL
);
CREATE INDEX entries_idem ON entries (idem);
-- History is never edited: the database itself refuses to update, delete or truncate an entry.
CREATE FUNCTION qm_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '%', TG_ARGV[0] USING ERRCODE = 'restrict_violation';
END;
$$;
CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
    FOR EACH ROW EXECUTE FUNCTION qm_refuse_change('ledger entries are never updated');
CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION qm_refuse_change('ledger entries are never deleted');
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION qm_refuse_change('ledger entries are never deleted');
CREATE TABLE checkpoints (
    size    bigint PRIMARY KEY,
    note    text NOT NULL
);
CREATE TABLE projection (
    kind    text COLLATE "C" NOT NULL,
    key     text COLLATE "C" NOT NULL,
    value   text NOT NULL,
    PRIMARY KEY (kind, key)
);
