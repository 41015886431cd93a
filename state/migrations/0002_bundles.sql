-- 0002: credentials of several systems per stay. Time-bound
-- credentials (OpenApp invites, key-box accesses) record the window they
-- were set to; a 3RPMS key that carries another credential's secret (a
-- key-box code, an invite link) records which one. Status may now also be
-- 'disabled' (an invite switched off for a cancelled stay).
ALTER TABLE credentials ADD COLUMN valid_from TEXT;
ALTER TABLE credentials ADD COLUMN valid_to TEXT;
ALTER TABLE credentials ADD COLUMN derived_from INTEGER;
