-- 0008: the request ledger names the metered credential each request
-- counted against (reconcile.Account: "3rpms:1a2b3c4d", say), so each
-- 3RPMS token, Guestway partner key, OpenApp API key and key-box account
-- has its own daily budget. Rows written before this migration have
-- account '': which credential sent them is not known, so each counts
-- against every account of its system (Spent reports them under
-- reconcile.AnyAccount): conservative, it can defer work early but never
-- overrun a credential's cap, and they age out of the rolling 24 hours.
ALTER TABLE requests ADD COLUMN account TEXT NOT NULL DEFAULT '';
