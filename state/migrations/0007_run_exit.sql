-- 0007: how each run ended, for `keysync status`: the exit status the
-- command returned and how long the run took (wall clock). Both stay NULL
-- for a run that was killed or is still running, and for runs recorded
-- before this migration.
ALTER TABLE runs ADD COLUMN exit_code INTEGER;
ALTER TABLE runs ADD COLUMN duration_ms INTEGER;
