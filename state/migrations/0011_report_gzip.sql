-- 0011: a run's report is kept gzip-compressed in report_gzip. A
-- portfolio's backfill reports thousands of actions (megabytes of JSON),
-- which the run wrote at its end, its exit status wrote again with the
-- row, and secure_delete zeroed once more; compressed, they take a
-- tenth of that. report_json keeps the reports of runs recorded before,
-- as they were written; a report is in one column or the other.
ALTER TABLE runs ADD COLUMN report_gzip BLOB;
