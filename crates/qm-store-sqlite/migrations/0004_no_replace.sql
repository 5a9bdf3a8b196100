-- 0004: INSERT OR REPLACE deletes the entry it collides with without running the no-delete trigger
-- (SQLite runs delete triggers for REPLACE only with recursive_triggers on), so a tool could swap an
-- entry's bytes in one statement. The insert itself is refused when the sequence number is taken.
-- Released: never edit; add a new file.
CREATE TRIGGER entries_no_replace BEFORE INSERT ON entries
WHEN EXISTS (SELECT 1 FROM entries WHERE seq = NEW.seq)
BEGIN SELECT RAISE(ABORT, 'ledger entries are never replaced'); END;
