-- 0003: the ledger in tiles of 256 entries (see src/tiles.rs for the format). `entry_keys` keeps one row per
-- entry: its seq (claimed by the commit that appends it, so two writers cannot both take one) and its
-- idempotency key (looked up by retries). `tiles` holds full tiles, 256 entries per row, written once by the
-- commit that completes them; until then a tile's entries are rows of `open_entries`. Neither keeps the tree
-- hashes inside a tile (levels 0 to 8, derived from its entries when read), only those above it (bytes 289 on
-- of the old column). Existing full tiles move here uncompressed (format 0x00); the old table is dropped.
-- A tile's records as `tiles.data` holds them (format 0x00, uncompressed): for the migration, and for reading the
-- open tile from `open_entries`.
CREATE FUNCTION qm_record(seq bigint, idem text, bytes bytea, hashes bytea) RETURNS bytea LANGUAGE sql IMMUTABLE
    AS $$ SELECT int8send(seq) || int4send(octet_length(convert_to(idem, 'UTF8'))) || convert_to(idem, 'UTF8')
                 || int4send(length(bytes)) || bytes || int4send(length(hashes)) || hashes $$;
CREATE TABLE entry_keys (
    seq     bigint PRIMARY KEY CHECK (seq >= 0),
    idem    text COLLATE "C" NOT NULL
);
INSERT INTO entry_keys (seq, idem) SELECT seq, idem FROM entries;
CREATE INDEX entry_keys_idem ON entry_keys (idem);
CREATE TABLE tiles (
    tile    bigint PRIMARY KEY CHECK (tile >= 0),
    data    bytea NOT NULL
);
-- The data is compressed already: PostgreSQL keeps it as it is, out of line when large.
ALTER TABLE tiles ALTER COLUMN data SET STORAGE EXTERNAL;
INSERT INTO tiles (tile, data)
SELECT seq / 256,
       decode('00', 'hex') || string_agg(qm_record(seq, idem, bytes, substring(hashes from 289)), ''::bytea ORDER BY seq)
FROM entries GROUP BY seq / 256 HAVING count(*) = 256;
CREATE TABLE open_entries (
    seq     bigint PRIMARY KEY CHECK (seq >= 0),
    idem    text COLLATE "C" NOT NULL,
    bytes   bytea NOT NULL,
    hashes  bytea NOT NULL
);
INSERT INTO open_entries (seq, idem, bytes, hashes)
SELECT seq, idem, bytes, substring(hashes from 289) FROM entries WHERE seq / 256 NOT IN (SELECT tile FROM tiles);
DROP TABLE entries;
-- History is never edited: keys and tiles are never changed or removed; an open entry is removed only by
-- the commit that seals its tile (the tile exists by then).
CREATE TRIGGER entry_keys_no_update BEFORE UPDATE ON entry_keys
    FOR EACH ROW EXECUTE FUNCTION qm_refuse_change('ledger entries are never updated');
CREATE TRIGGER entry_keys_no_delete BEFORE DELETE ON entry_keys
    FOR EACH ROW EXECUTE FUNCTION qm_refuse_change('ledger entries are never deleted');
CREATE TRIGGER entry_keys_no_truncate BEFORE TRUNCATE ON entry_keys
    FOR EACH STATEMENT EXECUTE FUNCTION qm_refuse_change('ledger entries are never deleted');
CREATE TRIGGER tiles_no_update BEFORE UPDATE ON tiles
    FOR EACH ROW EXECUTE FUNCTION qm_refuse_change('ledger entries are never updated');
CREATE TRIGGER tiles_no_delete BEFORE DELETE ON tiles
    FOR EACH ROW EXECUTE FUNCTION qm_refuse_change('ledger entries are never deleted');
CREATE TRIGGER tiles_no_truncate BEFORE TRUNCATE ON tiles
    FOR EACH STATEMENT EXECUTE FUNCTION qm_refuse_change('ledger entries are never deleted');
CREATE TRIGGER open_entries_no_update BEFORE UPDATE ON open_entries
    FOR EACH ROW EXECUTE FUNCTION qm_refuse_change('ledger entries are never updated');
CREATE FUNCTION qm_only_sealed_leave() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM tiles WHERE tile = OLD.seq / 256) THEN
        RAISE EXCEPTION 'ledger entries are never deleted: entry % is in no sealed tile', OLD.seq
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN OLD;
END;
$$;
CREATE TRIGGER open_entries_only_sealed_leave BEFORE DELETE ON open_entries
    FOR EACH ROW EXECUTE FUNCTION qm_only_sealed_leave();
CREATE TRIGGER open_entries_no_truncate BEFORE TRUNCATE ON open_entries
    FOR EACH STATEMENT EXECUTE FUNCTION qm_refuse_change('ledger entries are never deleted');
-- Every batch looks its idempotency keys up. A table filled faster than autovacuum analyses it has no
-- statistics yet, and the planner then reads all of it (20 ms a batch at 360,000 entries, measured): these two
-- lookups always take the index, whatever the statistics say.
CREATE FUNCTION qm_used_keys(keys text[]) RETURNS SETOF text LANGUAGE sql STABLE SET enable_seqscan = off
    AS $$ SELECT DISTINCT idem FROM entry_keys WHERE idem = ANY (keys) $$;
CREATE FUNCTION qm_key_range(key text, OUT first bigint, OUT last bigint) LANGUAGE sql STABLE SET enable_seqscan = off
    AS $$ SELECT min(seq), max(seq) FROM entry_keys WHERE idem = key $$;
