-- Read models of the orders, customers and sales projections. One SQL text for SQLite and
-- PostgreSQL: TEXT / BIGINT only, JSON as TEXT, times as RFC 3339 TEXT in UTC with
-- microseconds (so they sort as text), days as YYYY-MM-DD TEXT.

-- orders: one row per order (stream `order-{id}`); `view` is the order view JSON the API
-- serves, and holds everything the projection needs to fold the next event.
CREATE TABLE rm_orders (
    id            TEXT   PRIMARY KEY,
    customer_id   TEXT   NOT NULL,
    status        TEXT   NOT NULL
        CHECK (status IN ('PLACED', 'PAID', 'PACKED', 'SHIPPED', 'DELIVERED', 'CANCELLED')),
    total_amount  BIGINT NOT NULL,
    currency      TEXT   NOT NULL,
    created_at    TEXT   NOT NULL,
    updated_at    TEXT   NOT NULL,
    -- the order stream's version
    version       BIGINT NOT NULL,
    view          TEXT   NOT NULL
);
CREATE INDEX rm_orders_customer_created ON rm_orders (customer_id, created_at, id);
CREATE INDEX rm_orders_status_created ON rm_orders (status, created_at, id);
CREATE INDEX rm_orders_created ON rm_orders (created_at, id);

-- customers: one row per account (stream `account-{id}`), every role. Never a password
-- hash.
CREATE TABLE rm_customers (
    id             TEXT   PRIMARY KEY,
    role           TEXT   NOT NULL CHECK (role IN ('ADMIN', 'STAFF', 'CUSTOMER')),
    username       TEXT   NOT NULL,
    name           TEXT   NOT NULL,
    email          TEXT,
    mobile_number  TEXT,
    gender         TEXT,
    -- 1 when sign-in is refused, else 0
    locked         BIGINT NOT NULL,
    registered_at  TEXT   NOT NULL,
    updated_at     TEXT   NOT NULL
);
CREATE INDEX rm_customers_role_registered ON rm_customers (role, registered_at, id);

-- sales: revenue, orders and units of placed orders by UTC day of placement and by
-- product; a cancellation subtracts what its order added.
CREATE TABLE rm_sales_daily (
    day         TEXT   NOT NULL,
    product_id  TEXT   NOT NULL,
    currency    TEXT   NOT NULL,
    -- orders with at least one line of the product
    orders      BIGINT NOT NULL,
    units       BIGINT NOT NULL,
    revenue     BIGINT NOT NULL,
    PRIMARY KEY (day, product_id, currency)
);
CREATE INDEX rm_sales_daily_product ON rm_sales_daily (product_id, day);

-- Per day (every product): orders are counted once however many products they hold.
CREATE TABLE rm_sales_days (
    day       TEXT   NOT NULL,
    currency  TEXT   NOT NULL,
    orders    BIGINT NOT NULL,
    units     BIGINT NOT NULL,
    revenue   BIGINT NOT NULL,
    PRIMARY KEY (day, currency)
);

-- What each counted order added, so that its cancellation subtracts exactly that.
CREATE TABLE rm_sales_orders (
    order_id  TEXT PRIMARY KEY,
    day       TEXT NOT NULL,
    currency  TEXT NOT NULL,
    -- [{"productId", "units", "revenue"}], one entry per product
    lines     TEXT NOT NULL
);
