//! Password-reset tokens: 32 random bytes (base64url), stored only as their SHA-256, valid
//! for a configurable time and usable once.
//!
//! A request stores the token and queues its e-mail in one transaction: a row of
//! `email_outbox` (template `password_reset`), which the notifier sends and then wipes. The
//! token thus never enters the event log or the bus, and an e-mail is never queued for a
//! token that was not stored. A new request for an account voids its older tokens.
//!
//! Redeeming marks the token used with one conditional `UPDATE`, so two concurrent uses
//! cannot both win.
use std::time::Duration;

use domain::ids::AccountId;
use serde_json::json;
use sqlx::{AnyPool, Row};
use web::ApiError;

use super::{
    refresh::{digest, new_token},
    store::{now_ms, unavailable},
};

/// The answer to every token that cannot be used: the same whatever the reason.
pub fn invalid_token() -> ApiError {
    ApiError::BadRequest {
        code: "invalid_reset_token",
        detail: "the reset token is invalid, expired or already used".into(),
    }
}

/// Who a reset e-mail goes to.
#[derive(Clone, Debug)]
pub struct ResetRecipient {
    /// The account.
    pub account: AccountId,
    /// Its display name.
    pub name: String,
    /// Its e-mail address.
    pub email: String,
}

/// The `password_reset_tokens` table and the e-mails that carry the tokens.
#[derive(Debug)]
pub struct PasswordResets {
    sql: AnyPool,
    ttl: Duration,
    link: Option<String>,
}

impl PasswordResets {
    /// Tokens in `sql`, valid for `ttl`. `link`, if given, is the shop's reset page with
    /// `{token}` where the token goes (e.g. `https://shop.example/reset?token={token}`);
    /// without it the e-mail shows the token itself.
    pub fn new(sql: AnyPool, ttl: Duration, link: Option<String>) -> Self {
        Self { sql, ttl, link }
    }

    /// How long a token is valid.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Stores a new token for `to` (voiding older ones) and queues the e-mail with it.
    ///
    /// # Errors
    /// The database failed; nothing was stored then.
    pub async fn issue(&self, to: &ResetRecipient) -> Result<(), ApiError> {
        let token = new_token();
        let now = now_ms();
        let ttl_ms = i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX);
        let mut data = json!({
            "customer_name": to.name,
            "token": token,
            "expires_in_minutes": self.ttl.as_secs().div_ceil(60),
        });
        if let Some(link) = &self.link {
            data["reset_url"] = json!(link.replace("{token}", &token));
        }
        let account = to.account.to_string();
        let write = async {
            let mut tx = self.sql.begin().await?;
            sqlx::query(
                "UPDATE password_reset_tokens SET used_at = $2 WHERE account_id = $1 AND used_at IS NULL",
            )
            .bind(&account)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO password_reset_tokens (token_hash, account_id, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(digest(&token))
            .bind(&account)
            .bind(now)
            .bind(now.saturating_add(ttl_ms))
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO email_outbox (id, template, recipient, data, status, attempts, \
                 next_attempt_at, created_at) VALUES ($1, 'password_reset', $2, $3, 'pending', 0, $4, $4)",
            )
            .bind(uuid::Uuid::now_v7().to_string())
            .bind(&to.email)
            .bind(data.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await
        };
        write.await.map_err(|err| unavailable("token store", &err))
    }

    /// Uses `token` up: its account, or `None` when it is unknown, expired or used.
    ///
    /// # Errors
    /// The database failed.
    pub async fn redeem(&self, token: &str) -> Result<Option<AccountId>, ApiError> {
        let row = sqlx::query(
            "UPDATE password_reset_tokens SET used_at = $2 \
             WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2 RETURNING account_id",
        )
        .bind(digest(token))
        .bind(now_ms())
        .fetch_optional(&self.sql)
        .await
        .map_err(|err| unavailable("token store", &err))?;
        let Some(row) = row else { return Ok(None) };
        let account: String = row.get(0);
        Ok(account.parse().ok().map(AccountId::new))
    }

    /// Makes a redeemed `token` usable again: the password change it was for failed.
    ///
    /// # Errors
    /// The database failed.
    pub async fn restore(&self, token: &str) -> Result<(), ApiError> {
        sqlx::query("UPDATE password_reset_tokens SET used_at = NULL WHERE token_hash = $1")
            .bind(digest(token))
            .execute(&self.sql)
            .await
            .map_err(|err| unavailable("token store", &err))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn resets(ttl: Duration) -> (PasswordResets, AnyPool, tempfile::TempDir) {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await
            .unwrap();
        sqlx::raw_sql(include_str!(
            "../../../migrations/sqlite/0007_notifications.sql"
        ))
        .execute(&pool)
        .await
        .unwrap();
        let resets = PasswordResets::new(
            pool.clone(),
            ttl,
            Some("https://shop.example/reset?token={token}".into()),
        );
        (resets, pool, dir)
    }

    fn ada() -> ResetRecipient {
        ResetRecipient {
            account: AccountId::new(uuid::Uuid::now_v7()),
            name: "Ada".into(),
            email: "ada@example.com".into(),
        }
    }

    async fn queued_token(pool: &AnyPool) -> Vec<String> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT data FROM email_outbox WHERE template = 'password_reset' ORDER BY id",
        )
        .fetch_all(pool)
        .await
        .unwrap();
        rows.iter()
            .map(|data| {
                let data: serde_json::Value = serde_json::from_str(data).unwrap();
                assert_eq!(
                    data["reset_url"],
                    format!(
                        "https://shop.example/reset?token={}",
                        data["token"].as_str().unwrap()
                    )
                );
                data["token"].as_str().unwrap().to_owned()
            })
            .collect()
    }

    #[tokio::test]
    async fn a_token_works_once() {
        let (resets, pool, _dir) = resets(Duration::from_secs(600)).await;
        let to = ada();
        resets.issue(&to).await.unwrap();
        let token = queued_token(&pool).await.pop().unwrap();
        assert_eq!(resets.redeem(&token).await.unwrap(), Some(to.account));
        assert_eq!(resets.redeem(&token).await.unwrap(), None);
        resets.restore(&token).await.unwrap();
        assert_eq!(resets.redeem(&token).await.unwrap(), Some(to.account));
        assert_eq!(resets.redeem("made-up").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_new_request_voids_the_older_tokens() {
        let (resets, pool, _dir) = resets(Duration::from_secs(600)).await;
        let to = ada();
        resets.issue(&to).await.unwrap();
        resets.issue(&to).await.unwrap();
        let tokens = queued_token(&pool).await;
        assert_eq!(tokens.len(), 2);
        assert_eq!(resets.redeem(&tokens[0]).await.unwrap(), None);
        assert_eq!(resets.redeem(&tokens[1]).await.unwrap(), Some(to.account));
    }

    #[tokio::test]
    async fn an_expired_token_is_refused() {
        let (resets, pool, _dir) = resets(Duration::ZERO).await;
        resets.issue(&ada()).await.unwrap();
        let token = queued_token(&pool).await.pop().unwrap();
        assert_eq!(resets.redeem(&token).await.unwrap(), None);
    }

    #[tokio::test]
    async fn only_the_hash_is_stored() {
        let (resets, pool, _dir) = resets(Duration::from_secs(600)).await;
        resets.issue(&ada()).await.unwrap();
        let token = queued_token(&pool).await.pop().unwrap();
        let stored: String = sqlx::query_scalar("SELECT token_hash FROM password_reset_tokens")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_ne!(stored, token);
        assert_eq!(stored, digest(&token));
    }
}
