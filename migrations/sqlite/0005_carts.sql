-- Carts and wishlists when they are kept in SQL (embedded, or distributed without Redis).
-- They are not event-sourced: customers' working state, not business facts. One header
-- row per customer and list carries the expiry (milliseconds since the epoch, pushed on
-- every write) and is the row a write locks first, so concurrent writes to one cart queue
-- there and its limits hold. Lines of an expired cart read as absent and are purged.
-- One SQL text serves both backends.
CREATE TABLE carts (
    customer_id  TEXT   PRIMARY KEY,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX carts_expiry ON carts (expires_at);

CREATE TABLE cart_lines (
    customer_id  TEXT   NOT NULL,
    sku          TEXT   NOT NULL,
    quantity     BIGINT NOT NULL,
    PRIMARY KEY (customer_id, sku)
);

CREATE TABLE wishlists (
    customer_id  TEXT   PRIMARY KEY,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX wishlists_expiry ON wishlists (expires_at);

CREATE TABLE wishlist_items (
    customer_id  TEXT   NOT NULL,
    sku          TEXT   NOT NULL,
    PRIMARY KEY (customer_id, sku)
);
