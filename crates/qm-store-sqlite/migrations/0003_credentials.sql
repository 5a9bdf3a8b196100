-- 0003: credentials (PIN, password and API-token hashes) outside the ledger. The ledger records that
-- a credential was set or revoked, by whom and when; the Argon2id hash itself lives only here, so a
-- ledger can be handed to an auditor or mirrored to a parent site. Never exported; copied by a
-- backup only when asked (`qm backup --with-credentials`).
CREATE TABLE credentials (
    subject TEXT NOT NULL,   -- "badge:0417" or "token:tok-1"
    kind    TEXT NOT NULL,   -- "pin", "password" or "token"
    hash    TEXT NOT NULL,   -- Argon2id PHC string
    seq     INTEGER NOT NULL, -- the ledger entry that recorded it being set
    PRIMARY KEY (subject, kind)
);
