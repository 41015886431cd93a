-- 0005: the durable queue of webhook events. serve writes each event here
-- before it answers 2xx, so a crash loses no event it acknowledged; a
-- targeted run marks the events it covered as done in the same state file.
CREATE TABLE events (
	id          INTEGER PRIMARY KEY,
	property    TEXT NOT NULL,
	event       TEXT NOT NULL,
	object_id   TEXT NOT NULL,
	received_at TEXT NOT NULL,
	done_at     TEXT
);
CREATE INDEX events_pending ON events (property, done_at);
