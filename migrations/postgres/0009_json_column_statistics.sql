-- No planner statistics for the JSON documents: no query filters, joins or sorts on
-- them, and ANALYZE (autovacuum's, once a minute while orders flow) spent much of its
-- time sampling and comparing them. On a copy of a 175,000-event log, idle: ANALYZE of
-- `events` 254 -> 143 ms, of `rm_orders` 188 -> 158 ms.
ALTER TABLE events
    ALTER COLUMN payload SET STATISTICS 0,
    ALTER COLUMN metadata SET STATISTICS 0;
ALTER TABLE rm_orders ALTER COLUMN view SET STATISTICS 0;
ALTER TABLE rm_sales_orders ALTER COLUMN lines SET STATISTICS 0;
