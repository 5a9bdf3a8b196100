-- 0004: credentials (PIN, password and API-token hashes) outside the ledger; see the SQLite
-- migration 0003_credentials.sql. Never exported; copied by a backup only when asked.
CREATE TABLE credentials (
    subject TEXT NOT NULL,
    kind    TEXT NOT NULL,
    hash    TEXT NOT NULL,
    seq     BIGINT NOT NULL,
    PRIMARY KEY (subject, kind)
);
