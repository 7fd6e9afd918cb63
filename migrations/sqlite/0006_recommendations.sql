-- Read models of the bought_together projection (recommendations). One SQL text for SQLite
-- and PostgreSQL: TEXT / BIGINT only, times as RFC 3339 TEXT in UTC with microseconds.

-- The distinct products of every counted order (placed, not cancelled): what a
-- cancellation subtracts from the pair counts, and each customer's purchase history.
CREATE TABLE rm_bought_together_orders (
    order_id     TEXT NOT NULL,
    product_id   TEXT NOT NULL,
    customer_id  TEXT NOT NULL,
    placed_at    TEXT NOT NULL,
    PRIMARY KEY (order_id, product_id)
);
CREATE INDEX rm_bought_together_orders_customer
    ON rm_bought_together_orders (customer_id, product_id);

-- How many counted orders hold both products; stored in both directions, so the pairs of
-- one product are one index range. A pair that falls to zero orders is removed.
CREATE TABLE rm_bought_together (
    product_id        TEXT   NOT NULL,
    other_product_id  TEXT   NOT NULL,
    orders            BIGINT NOT NULL,
    PRIMARY KEY (product_id, other_product_id)
);
