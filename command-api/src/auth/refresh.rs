//! Refresh tokens: 32 random bytes (base64url), stored only as their SHA-256, in
//! families that start at a login. Every use rotates: the presented token is marked used
//! — atomically, so two concurrent uses of one token cannot both win — and a new token of
//! the same family is issued. Presenting a token that was already used, or revoked,
//! means it leaked: the whole family is revoked. A family with any revoked token is
//! dead, which also catches a rotation racing with that revocation.
//!
//! One SQL text serves SQLite and PostgreSQL (through `sqlx::Any`); times are
//! milliseconds since the epoch.
use std::{
    sync::atomic::{AtomicI64, Ordering},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use domain::ids::AccountId;
use sha2::{Digest, Sha256};
use sqlx::{AnyPool, Row};
use web::ApiError;

use super::store::{now_ms, unavailable};

/// How often expired tokens are deleted (at most), per process.
const PRUNE_EVERY_MS: i64 = 60 * 60 * 1000;
/// Expired tokens are kept this long, so their reuse is still recognised for a while.
const KEEP_EXPIRED_MS: i64 = 24 * 60 * 60 * 1000;

/// The answer to every refresh token that cannot be used: the same whatever the reason.
fn invalid() -> ApiError {
    ApiError::Unauthorized("the refresh token is invalid, expired or revoked".into())
}

/// The stored form of a token.
pub(crate) fn digest(token: &str) -> String {
    format!("{:x}", Sha256::digest(token.as_bytes()))
}

/// A token that was just rotated: its account, and its successor.
#[derive(Debug)]
pub struct Rotated {
    /// The account the family belongs to.
    pub account: AccountId,
    /// The new token (give it to the client; it is not stored in clear).
    pub token: String,
}

/// What a presented token turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented {
    /// Live: may be rotated.
    Live {
        /// Its account.
        account: AccountId,
        /// Its family.
        family: String,
    },
    /// Unknown, expired or dead: 401.
    Invalid,
}

/// The refresh-token table.
#[derive(Debug)]
pub struct RefreshTokens {
    sql: AnyPool,
    ttl: Duration,
    last_prune: AtomicI64,
}

impl RefreshTokens {
    /// Tokens in `sql` (table `refresh_tokens`), each valid for `ttl` after it is issued.
    pub fn new(sql: AnyPool, ttl: Duration) -> Self {
        Self {
            sql,
            ttl,
            last_prune: AtomicI64::new(0),
        }
    }

    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX)
    }

    /// A new token for `account` in a new family (a login).
    pub async fn issue(&self, account: AccountId) -> Result<String, ApiError> {
        self.prune_now_and_then().await;
        let family = uuid::Uuid::now_v7().to_string();
        let token = new_token();
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, family_id, account_id, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(digest(&token))
        .bind(&family)
        .bind(account.to_string())
        .bind(now_ms())
        .bind(now_ms().saturating_add(self.ttl_ms()))
        .execute(&self.sql)
        .await
        .map_err(|err| unavailable("token store", &err))?;
        Ok(token)
    }

    /// Looks `token` up. A used or revoked token revokes its family (reuse detection).
    pub async fn inspect(&self, token: &str) -> Result<Presented, ApiError> {
        let row = sqlx::query(
            "SELECT t.family_id, t.account_id, t.expires_at, t.used_at, t.revoked_at, \
             (SELECT COUNT(*) FROM refresh_tokens r WHERE r.family_id = t.family_id AND r.revoked_at IS NOT NULL) \
             FROM refresh_tokens t WHERE t.token_hash = $1",
        )
        .bind(digest(token))
        .fetch_optional(&self.sql)
        .await
        .map_err(|err| unavailable("token store", &err))?;
        let Some(row) = row else {
            return Ok(Presented::Invalid);
        };
        let read = |err: sqlx::Error| {
            ApiError::Internal(anyhow::anyhow!("unreadable refresh token row: {err}"))
        };
        let family: String = row.try_get(0).map_err(read)?;
        let account: String = row.try_get(1).map_err(read)?;
        let expires_at: i64 = row.try_get(2).map_err(read)?;
        let used_at: Option<i64> = row.try_get(3).map_err(read)?;
        let revoked_at: Option<i64> = row.try_get(4).map_err(read)?;
        let revoked_in_family: i64 = row.try_get(5).map_err(read)?;
        if used_at.is_some() || revoked_at.is_some() {
            if revoked_in_family == 0 {
                tracing::warn!(%account, %family, "a used refresh token was presented again; revoking its family");
            }
            self.revoke_family(&family).await?;
            return Ok(Presented::Invalid);
        }
        if revoked_in_family > 0 || expires_at <= now_ms() {
            return Ok(Presented::Invalid);
        }
        let account = account
            .parse()
            .map_err(|err| ApiError::Internal(anyhow::anyhow!("bad account id: {err}")))?;
        Ok(Presented::Live { account, family })
    }

    /// Marks `token` used and issues its successor in `family`, in one transaction. Loses
    /// (401, family revoked) if the token was used or revoked meanwhile.
    pub async fn rotate(
        &self,
        token: &str,
        account: AccountId,
        family: &str,
    ) -> Result<Rotated, ApiError> {
        let now = now_ms();
        let next = new_token();
        let mut tx = self
            .sql
            .begin()
            .await
            .map_err(|err| unavailable("token store", &err))?;
        let marked = sqlx::query(
            "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL AND revoked_at IS NULL \
             AND expires_at > $2",
        )
        .bind(digest(token))
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(|err| unavailable("token store", &err))?;
        if marked.rows_affected() != 1 {
            drop(tx);
            tracing::warn!(%account, %family, "a refresh token was used twice at once; revoking its family");
            self.revoke_family(family).await?;
            return Err(invalid());
        }
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, family_id, account_id, issued_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(digest(&next))
        .bind(family)
        .bind(account.to_string())
        .bind(now)
        .bind(now.saturating_add(self.ttl_ms()))
        .execute(&mut *tx)
        .await
        .map_err(|err| unavailable("token store", &err))?;
        tx.commit()
            .await
            .map_err(|err| unavailable("token store", &err))?;
        Ok(Rotated {
            account,
            token: next,
        })
    }

    /// Revokes the family of `token` (logout). Unknown tokens are ignored.
    pub async fn revoke_family_of(&self, token: &str) -> Result<(), ApiError> {
        let family: Option<String> =
            sqlx::query("SELECT family_id FROM refresh_tokens WHERE token_hash = $1")
                .bind(digest(token))
                .fetch_optional(&self.sql)
                .await
                .map_err(|err| unavailable("token store", &err))?
                .map(|row| row.try_get(0))
                .transpose()
                .map_err(|err| {
                    ApiError::Internal(anyhow::anyhow!("unreadable refresh token row: {err}"))
                })?;
        match family {
            Some(family) => self.revoke_family(&family).await,
            None => Ok(()),
        }
    }

    /// Revokes every token of `family`.
    pub async fn revoke_family(&self, family: &str) -> Result<(), ApiError> {
        sqlx::query(
            "UPDATE refresh_tokens SET revoked_at = $2 WHERE family_id = $1 AND revoked_at IS NULL",
        )
        .bind(family)
        .bind(now_ms())
        .execute(&self.sql)
        .await
        .map_err(|err| unavailable("token store", &err))?;
        Ok(())
    }

    /// Revokes every token of `account` (the account was locked, or its password reset).
    /// Returns how many tokens (used or not) were newly marked revoked.
    pub async fn revoke_account(&self, account: AccountId) -> Result<u64, ApiError> {
        let done = sqlx::query("UPDATE refresh_tokens SET revoked_at = $2 WHERE account_id = $1 AND revoked_at IS NULL")
            .bind(account.to_string())
            .bind(now_ms())
            .execute(&self.sql)
            .await
            .map_err(|err| unavailable("token store", &err))?;
        Ok(done.rows_affected())
    }

    /// Deletes tokens that expired more than a day ago, at most once an hour per process.
    async fn prune_now_and_then(&self) {
        let now = now_ms();
        let last = self.last_prune.load(Ordering::Relaxed);
        if now - last < PRUNE_EVERY_MS
            || self
                .last_prune
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return;
        }
        let pruned = sqlx::query("DELETE FROM refresh_tokens WHERE expires_at < $1")
            .bind(now - KEEP_EXPIRED_MS)
            .execute(&self.sql)
            .await;
        match pruned {
            Ok(done) if done.rows_affected() > 0 => tracing::debug!(
                deleted = done.rows_affected(),
                "pruned expired refresh tokens"
            ),
            Ok(_) => {}
            Err(err) => tracing::warn!(%err, "could not prune expired refresh tokens"),
        }
    }
}

/// 32 random bytes, base64url.
pub(crate) fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store(ttl: Duration) -> (RefreshTokens, tempfile::TempDir) {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await
            .unwrap();
        sqlx::raw_sql(include_str!(
            "../../../migrations/sqlite/0002_command_side.sql"
        ))
        .execute(&pool)
        .await
        .unwrap();
        (RefreshTokens::new(pool, ttl), dir)
    }

    fn account() -> AccountId {
        AccountId::new(uuid::Uuid::now_v7())
    }

    async fn refresh(tokens: &RefreshTokens, token: &str) -> Result<Rotated, ApiError> {
        match tokens.inspect(token).await? {
            Presented::Live { account, family } => tokens.rotate(token, account, &family).await,
            Presented::Invalid => Err(invalid()),
        }
    }

    #[tokio::test]
    async fn tokens_are_random_and_stored_hashed() {
        let (tokens, _dir) = store(Duration::from_secs(60)).await;
        let id = account();
        let token = tokens.issue(id).await.unwrap();
        assert_eq!(token.len(), 43);
        assert_ne!(token, tokens.issue(id).await.unwrap());
        let stored: String = sqlx::query("SELECT token_hash FROM refresh_tokens LIMIT 1")
            .fetch_one(&tokens.sql)
            .await
            .unwrap()
            .get(0);
        assert_eq!(stored.len(), 64);
        assert_ne!(stored, token);
    }

    #[tokio::test]
    async fn rotation_and_reuse_detection() {
        let (tokens, _dir) = store(Duration::from_secs(60)).await;
        let id = account();
        let first = tokens.issue(id).await.unwrap();
        let second = refresh(&tokens, &first).await.unwrap();
        assert_eq!(second.account, id);
        let third = refresh(&tokens, &second.token).await.unwrap();
        // The first token again: reuse; the whole family dies.
        assert!(matches!(
            refresh(&tokens, &first).await,
            Err(ApiError::Unauthorized(_))
        ));
        assert!(matches!(
            refresh(&tokens, &third.token).await,
            Err(ApiError::Unauthorized(_))
        ));
        assert!(matches!(
            refresh(&tokens, "made-up").await,
            Err(ApiError::Unauthorized(_))
        ));
    }

    #[tokio::test]
    async fn concurrent_rotations_of_one_token_have_one_winner() {
        let (tokens, _dir) = store(Duration::from_secs(60)).await;
        let token = tokens.issue(account()).await.unwrap();
        let results = futures::future::join_all((0..8).map(|_| refresh(&tokens, &token))).await;
        assert!(
            results.iter().filter(|r| r.is_ok()).count() <= 1,
            "{results:?}"
        );
        // Whoever won, the family is now dead: a reuse was seen.
        for winner in results.into_iter().flatten() {
            assert!(refresh(&tokens, &winner.token).await.is_err());
        }
    }

    #[tokio::test]
    async fn expired_tokens_and_revocations() {
        let (tokens, _dir) = store(Duration::from_millis(1)).await;
        let id = account();
        let expired = tokens.issue(id).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(refresh(&tokens, &expired).await.is_err());

        let (tokens, _dir) = store(Duration::from_secs(60)).await;
        let a = tokens.issue(id).await.unwrap();
        let b = tokens.issue(id).await.unwrap();
        let other = tokens.issue(account()).await.unwrap();
        tokens.revoke_family_of(&a).await.unwrap();
        assert!(refresh(&tokens, &a).await.is_err());
        let b = refresh(&tokens, &b).await.unwrap().token;
        assert_eq!(
            tokens.revoke_account(id).await.unwrap(),
            2,
            "the used token and its successor"
        );
        assert!(refresh(&tokens, &b).await.is_err());
        refresh(&tokens, &other)
            .await
            .expect("other accounts keep their tokens");
        tokens.revoke_family_of("unknown").await.unwrap();
    }
}
