-- 0003: the ledger in tiles of 256 entries (see src/tiles.rs for the format). `entry_keys` keeps one row per
-- entry: its seq (claimed by the commit that appends it, so two writers cannot both take one) and its
-- idempotency key (looked up by retries). `tiles` holds the entries themselves, 256 per row; the commit that
-- adds to the last tile rewrites it. A tile keeps only the tree hashes above it (from level 9 up, bytes 289 on of
-- the old column): the ones inside it are derived from its entries when read. Existing entries move here
-- uncompressed (format 0x00); the space of the old table is freed with it.
CREATE TABLE entry_keys (
    seq     bigint PRIMARY KEY CHECK (seq >= 0),
    idem    text COLLATE "C" NOT NULL
);
INSERT INTO entry_keys (seq, idem) SELECT seq, idem FROM entries;
CREATE INDEX entry_keys_idem ON entry_keys (idem);
CREATE TABLE tiles (
    tile    bigint PRIMARY KEY CHECK (tile >= 0),
    n       integer NOT NULL CHECK (n BETWEEN 1 AND 256),
    data    bytea NOT NULL
);
-- The data is compressed already: PostgreSQL keeps it as it is, out of line when large.
ALTER TABLE tiles ALTER COLUMN data SET STORAGE EXTERNAL;
INSERT INTO tiles (tile, n, data)
SELECT seq / 256, count(*)::integer,
       decode('00', 'hex') || string_agg(int8send(seq) || int4send(octet_length(convert_to(idem, 'UTF8'))) || convert_to(idem, 'UTF8')
                                   || int4send(length(bytes)) || bytes || int4send(greatest(length(hashes) - 288, 0)) || substring(hashes from 289), ''::bytea ORDER BY seq)
FROM entries GROUP BY seq / 256;
DROP TABLE entries;
-- History is never edited: keys are never changed or removed; a tile only grows (its commit rewrites it with
-- more entries) until it holds 256, and is never removed.
CREATE TRIGGER entry_keys_no_update BEFORE UPDATE ON entry_keys
    FOR EACH ROW EXECUTE FUNCTION qm_refuse_change('ledger entries are never updated');
CREATE TRIGGER entry_keys_no_delete BEFORE DELETE ON entry_keys
    FOR EACH ROW EXECUTE FUNCTION qm_refuse_change('ledger entries are never deleted');
CREATE TRIGGER entry_keys_no_truncate BEFORE TRUNCATE ON entry_keys
    FOR EACH STATEMENT EXECUTE FUNCTION qm_refuse_change('ledger entries are never deleted');
CREATE FUNCTION qm_tile_only_grows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.tile <> OLD.tile OR NEW.n <= OLD.n THEN
        RAISE EXCEPTION 'ledger entries are never updated: tile % may only take more entries (it holds %)', OLD.tile, OLD.n
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER tiles_only_grow BEFORE UPDATE ON tiles
    FOR EACH ROW EXECUTE FUNCTION qm_tile_only_grows();
CREATE TRIGGER tiles_no_delete BEFORE DELETE ON tiles
    FOR EACH ROW EXECUTE FUNCTION qm_refuse_change('ledger entries are never deleted');
CREATE TRIGGER tiles_no_truncate BEFORE TRUNCATE ON tiles
    FOR EACH STATEMENT EXECUTE FUNCTION qm_refuse_change('ledger entries are never deleted');
-- Every batch looks its idempotency keys up. A table filled faster than autovacuum analyses it has no
-- statistics yet, and the planner then reads all of it (20 ms a batch at 360,000 entries, measured): these two
-- lookups always take the index, whatever the statistics say.
CREATE FUNCTION qm_used_keys(keys text[]) RETURNS SETOF text LANGUAGE sql STABLE SET enable_seqscan = off
    AS $$ SELECT DISTINCT idem FROM entry_keys WHERE idem = ANY (keys) $$;
CREATE FUNCTION qm_key_range(key text, OUT first bigint, OUT last bigint) LANGUAGE sql STABLE SET enable_seqscan = off
    AS $$ SELECT min(seq), max(seq) FROM entry_keys WHERE idem = key $$;
