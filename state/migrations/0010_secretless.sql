-- 0010: credentials whose create answer carried no secret (a key box that
-- answers without the access code): keysync keeps them rather than
-- replacing them for a secret a new one would not carry either. 0 for
-- every credential recorded before.
ALTER TABLE credentials ADD COLUMN secretless INTEGER NOT NULL DEFAULT 0;
