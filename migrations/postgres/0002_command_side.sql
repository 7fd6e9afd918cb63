-- Command-side bookkeeping that is not event-sourced: refresh tokens (stored hashed,
-- rotated, revoked by family) and idempotency keys (first response of a command, replayed
-- on retries). Times are milliseconds since the epoch; one SQL text serves both backends.
CREATE TABLE refresh_tokens (
    token_hash  TEXT   PRIMARY KEY,
    family_id   TEXT   NOT NULL,
    account_id  TEXT   NOT NULL,
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    used_at     BIGINT,
    revoked_at  BIGINT
);
CREATE INDEX refresh_tokens_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_account ON refresh_tokens (account_id);

CREATE TABLE idempotency_keys (
    scope         TEXT   NOT NULL,
    key           TEXT   NOT NULL,
    request_hash  TEXT   NOT NULL,
    status        INTEGER,
    content_type  TEXT,
    body          TEXT,
    created_at    BIGINT NOT NULL,
    completed_at  BIGINT,
    PRIMARY KEY (scope, key)
);
