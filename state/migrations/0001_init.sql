-- 0001: keysync's first schema. Dates are YYYY-MM-DD text; instants are
-- RFC 3339 UTC text with nine fractional digits, so text order is time order.
-- No table holds a PIN: credentials keep only a keyed hash of it.

-- meta holds per-file settings, such as the random pin_key that keys the PIN
-- hashes.
CREATE TABLE meta (
	key   TEXT PRIMARY KEY,
	value TEXT NOT NULL
);

-- runs records every run that wrote anything, and its report.
CREATE TABLE runs (
	id          INTEGER PRIMARY KEY,
	mode        TEXT    NOT NULL,
	started_at  TEXT    NOT NULL,
	status      TEXT    NOT NULL DEFAULT 'running',
	partial     INTEGER NOT NULL DEFAULT 0,
	report_json TEXT
);

-- stays is the snapshot of each property's stays as last read.
CREATE TABLE stays (
	property  TEXT NOT NULL,
	source    TEXT NOT NULL,
	stay_id   TEXT NOT NULL,
	room_id   TEXT NOT NULL DEFAULT '',
	room_name TEXT NOT NULL DEFAULT '',
	arrival   TEXT,
	departure TEXT,
	key_id    TEXT,
	key_type  TEXT,
	PRIMARY KEY (property, source, stay_id)
);

-- credentials is every credential keysync issued or adopted, live or final.
CREATE TABLE credentials (
	id         INTEGER PRIMARY KEY,
	property   TEXT    NOT NULL,
	source     TEXT    NOT NULL,
	stay_id    TEXT    NOT NULL,
	system     TEXT    NOT NULL,
	kind       TEXT    NOT NULL DEFAULT '',
	room_id    TEXT    NOT NULL DEFAULT '',
	remote_id  TEXT    NOT NULL DEFAULT '',
	status     TEXT    NOT NULL,
	assigned   INTEGER NOT NULL DEFAULT 0,
	adopted    INTEGER NOT NULL DEFAULT 0,
	pin_hash   TEXT    NOT NULL DEFAULT '',
	arrival    TEXT,
	departure  TEXT,
	updated_at TEXT
);
CREATE INDEX credentials_property_status ON credentials (property, status);
CREATE INDEX credentials_remote_id ON credentials (remote_id);

-- audit is the trail of intents and outcomes. Pruning a credential keeps
-- any newer audit lines about it, unlinked.
CREATE TABLE audit (
	id            INTEGER PRIMARY KEY,
	run_id        INTEGER NOT NULL DEFAULT 0,
	at            TEXT,
	system        TEXT    NOT NULL DEFAULT '',
	op            TEXT    NOT NULL DEFAULT '',
	property      TEXT    NOT NULL DEFAULT '',
	source        TEXT    NOT NULL DEFAULT '',
	stay_id       TEXT    NOT NULL DEFAULT '',
	credential_id INTEGER REFERENCES credentials (id) ON DELETE SET NULL,
	remote_id     TEXT    NOT NULL DEFAULT '',
	phase         TEXT    NOT NULL DEFAULT '',
	detail        TEXT    NOT NULL DEFAULT ''
);
CREATE INDEX audit_run_id ON audit (run_id);
CREATE INDEX audit_at ON audit (at);
CREATE INDEX audit_credential_id ON audit (credential_id);
