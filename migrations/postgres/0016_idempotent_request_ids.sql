-- The id a keyed request was given when its key was first seen (a UUID v7), the same on
-- every run of it: an order placed with a key is named by it, so a run after a crash
-- finds the order the first run placed instead of placing another.
ALTER TABLE idempotency_keys ADD COLUMN request_id TEXT;
