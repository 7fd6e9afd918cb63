-- The write roof: one one-row insert, committed on its own (autocommit), the smallest
-- durable write PostgreSQL can make. bench/write-roof.sh creates the table in a scratch
-- database and runs this with `pgbench -n -M prepared`. The payload is about the size
-- of an order event's JSON.
INSERT INTO write_roof (stream, payload) VALUES ('order-' || :client_id, repeat('x', 400));
