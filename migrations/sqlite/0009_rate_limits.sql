-- Fixed-window rate limits (sign-ups, password resets, failed logins), counted here so
-- that every command node on this database shares them. Times are milliseconds since the
-- epoch; ended windows are deleted by the nodes as they pass.
CREATE TABLE rate_limits (
    limiter       TEXT   NOT NULL,
    key           TEXT   NOT NULL,
    window_start  BIGINT NOT NULL,
    count         BIGINT NOT NULL,
    PRIMARY KEY (limiter, key)
);
CREATE INDEX rate_limits_window ON rate_limits (limiter, window_start);
