-- Notifications: webhook endpoints and their deliveries (one row per endpoint and event,
-- each attempt logged), the e-mail outbox (order e-mails keyed by their event id, so a
-- redelivered event sends nothing twice; password-reset e-mails written by the command
-- side, so a reset token never enters the event log or the bus) and password-reset tokens
-- (stored hashed, single use). Times are milliseconds since the epoch; one SQL text serves
-- both backends.
CREATE TABLE webhook_endpoints (
    id          TEXT    PRIMARY KEY,
    url         TEXT    NOT NULL,
    event_types TEXT    NOT NULL,
    secret      TEXT    NOT NULL,
    created_by  TEXT    NOT NULL,
    created_at  BIGINT  NOT NULL,
    deleted_at  BIGINT
);

CREATE TABLE webhook_deliveries (
    id              TEXT    PRIMARY KEY,
    endpoint_id     TEXT    NOT NULL,
    event_id        TEXT    NOT NULL,
    event_type      TEXT    NOT NULL,
    body            TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at BIGINT,
    lease_until     BIGINT,
    created_at      BIGINT  NOT NULL,
    updated_at      BIGINT  NOT NULL,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);

CREATE TABLE webhook_attempts (
    delivery_id TEXT    NOT NULL,
    attempt     INTEGER NOT NULL,
    at          BIGINT  NOT NULL,
    status_code INTEGER,
    error       TEXT,
    duration_ms BIGINT  NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);

CREATE TABLE email_outbox (
    id              TEXT    PRIMARY KEY,
    template        TEXT    NOT NULL,
    recipient       TEXT    NOT NULL,
    data            TEXT    NOT NULL,
    status          TEXT    NOT NULL,
    attempts        INTEGER NOT NULL,
    next_attempt_at BIGINT  NOT NULL,
    lease_until     BIGINT,
    last_error      TEXT,
    created_at      BIGINT  NOT NULL,
    sent_at         BIGINT
);
CREATE INDEX email_outbox_due ON email_outbox (status, next_attempt_at);

CREATE TABLE password_reset_tokens (
    token_hash  TEXT   PRIMARY KEY,
    account_id  TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT
);
CREATE INDEX password_reset_tokens_account ON password_reset_tokens (account_id);
