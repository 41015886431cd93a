-- 0009: credentials the system refused to change in place (an OpenApp
-- invite whose update was refused): the planner replaces them instead of
-- updating them. 0 for every credential recorded before.
ALTER TABLE credentials ADD COLUMN replace_only INTEGER NOT NULL DEFAULT 0;
