-- The headers of a stored first answer that its replays repeat (ETag, Location,
-- Emporium-Position), as a JSON object of names to values; NULL for answers without them
-- and for answers stored before this column.
ALTER TABLE idempotency_keys ADD COLUMN headers TEXT;
