-- 0003: the daily request budget. requests is the ledger: one
-- row per request sent, written in the same transaction as the audit rows
-- of the actions it carried, so runs and processes share one count over a
-- rolling 24 hours. deferred remembers the stays whose work the last run
-- of each property left for lack of budget, so the next run does them
-- first.
CREATE TABLE requests (
	id     INTEGER PRIMARY KEY,
	system TEXT    NOT NULL,
	at     TEXT    NOT NULL,
	write  INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX requests_at ON requests (at);

CREATE TABLE deferred (
	property TEXT NOT NULL,
	source   TEXT NOT NULL,
	stay_id  TEXT NOT NULL,
	PRIMARY KEY (property, source, stay_id)
);
