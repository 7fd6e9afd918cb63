-- Read models of the catalogue and inventory projections, and every projection's
-- checkpoint. One SQL text for SQLite and PostgreSQL: TEXT / BIGINT only, JSON as TEXT,
-- times as RFC 3339 TEXT in UTC with microseconds (so they sort as text).
--
-- A projection's rows and its checkpoint are written in one transaction (invariant 4);
-- a replay empties the projection's tables, sets its checkpoint to 0 and runs again.
CREATE TABLE projection_checkpoints (
    name        TEXT   PRIMARY KEY,
    position    BIGINT NOT NULL DEFAULT 0,
    updated_at  TEXT   NOT NULL
);

-- catalog: one row per product (stream `product-{id}`).
CREATE TABLE rm_products (
    id           TEXT   PRIMARY KEY,
    name         TEXT   NOT NULL,
    -- lower-cased name: case-insensitive sorting and substring search
    name_key     TEXT   NOT NULL,
    description  TEXT   NOT NULL,
    status       TEXT   NOT NULL CHECK (status IN ('ACTIVE', 'ARCHIVED')),
    categories   TEXT   NOT NULL,
    attributes   TEXT   NOT NULL,
    currency     TEXT   NOT NULL,
    min_price    BIGINT NOT NULL,
    max_price    BIGINT NOT NULL,
    -- the product stream's version: the ETag of the product view
    version      BIGINT NOT NULL,
    created_at   TEXT   NOT NULL,
    updated_at   TEXT   NOT NULL
);
CREATE INDEX rm_products_status_name ON rm_products (status, name_key, id);
CREATE INDEX rm_products_status_price ON rm_products (status, min_price, id);
CREATE INDEX rm_products_status_created ON rm_products (status, created_at, id);

CREATE TABLE rm_product_categories (
    product_id  TEXT NOT NULL,
    category    TEXT NOT NULL,
    PRIMARY KEY (product_id, category)
);
CREATE INDEX rm_product_categories_category ON rm_product_categories (category, product_id);

-- Top-level scalar attributes only (strings as they are, numbers and booleans as JSON text).
CREATE TABLE rm_product_attributes (
    product_id  TEXT NOT NULL,
    key         TEXT NOT NULL,
    value       TEXT NOT NULL,
    PRIMARY KEY (product_id, key)
);
CREATE INDEX rm_product_attributes_key_value ON rm_product_attributes (key, value, product_id);

CREATE TABLE rm_variants (
    sku           TEXT   PRIMARY KEY,
    product_id    TEXT   NOT NULL,
    price_amount  BIGINT NOT NULL,
    currency      TEXT   NOT NULL,
    options       TEXT   NOT NULL,
    -- the variant's place in its product (0-based, in the order variants were added)
    ordinal       BIGINT NOT NULL
);
CREATE INDEX rm_variants_product ON rm_variants (product_id, ordinal);
CREATE INDEX rm_variants_price ON rm_variants (price_amount, product_id);

-- inventory: one row per SKU (stream `stock-{sku}`); available = on_hand - reserved.
CREATE TABLE rm_inventory (
    sku         TEXT   PRIMARY KEY,
    on_hand     BIGINT NOT NULL,
    reserved    BIGINT NOT NULL,
    committed   BIGINT NOT NULL,
    updated_at  TEXT   NOT NULL
);

-- Open reservations, one per (SKU, order): what the reservation sweeper reads.
CREATE TABLE rm_reservations (
    sku          TEXT   NOT NULL,
    order_id     TEXT   NOT NULL,
    qty          BIGINT NOT NULL,
    reserved_at  TEXT   NOT NULL,
    PRIMARY KEY (sku, order_id)
);
CREATE INDEX rm_reservations_reserved_at ON rm_reservations (reserved_at);
CREATE INDEX rm_reservations_order ON rm_reservations (order_id);
