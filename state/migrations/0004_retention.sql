-- 0004: indexes for pruning. Every run deletes what retention no longer
-- needs (settled credentials, old audit entries, ledger rows and run
-- reports); these let each delete find its rows by an index range instead
-- of reading the whole table. audit (at), requests (at) and
-- audit (credential_id), which the foreign key's ON DELETE SET NULL
-- looks up, are indexed already.
CREATE INDEX credentials_status_updated ON credentials (status, updated_at);
CREATE INDEX runs_started_at ON runs (started_at);
CREATE INDEX runs_mode ON runs (mode);
