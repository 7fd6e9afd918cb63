-- Access tokens refused before they expire: an account locked or its password reset
-- refuses every access token issued before `not_before` (ms since the epoch). Every
-- process that verifies tokens reads this table each second; rows older than the longest
-- token lifetime are deleted at the next revocation.
CREATE TABLE access_revocations (
    account_id  TEXT   PRIMARY KEY,
    not_before  BIGINT NOT NULL
);
