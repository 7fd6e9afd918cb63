//! Authentication: passwords (Argon2id), access tokens (EdDSA JWTs, verified elsewhere
//! with the public key alone), rotating refresh tokens with reuse detection, and the
//! rate limits on sign-up and failed logins.
//!
//! [`Auth`] holds the machinery; [`flows`] are the operations the routes call (sign-up,
//! login, refresh, logout, lock and unlock), each taking the [`AppState`].
//!
//! [`AppState`]: crate::state::AppState
use std::{net::IpAddr, path::PathBuf, sync::Arc, time::Duration};

use domain::{account::Role, ids::AccountId};
use sqlx::AnyPool;
use web::{AccessClaims, ApiError, JwtVerifier};

pub mod flows;
pub mod keys;
pub mod password;
pub mod password_reset;
pub mod ratelimit;
pub mod refresh;
mod store;
pub mod tokens;

use self::{
    keys::SigningKeys,
    password::Passwords,
    password_reset::PasswordResets,
    ratelimit::{RateLimiter, ip_key},
    refresh::RefreshTokens,
    tokens::AccessTokens,
};

/// Settings for tokens and rate limits.
#[derive(Clone)]
pub struct AuthConfig {
    /// How long an access token is valid (15 minutes by default).
    pub access_token_ttl: Duration,
    /// How long a refresh token is valid after it is issued (30 days by default).
    pub refresh_token_ttl: Duration,
    /// Sign-ups per minute per client IP (20 by default; 0 disables the limit).
    pub signup_per_minute: u32,
    /// Failed logins per minute per username (10 by default; 0 disables the limit). Each
    /// client IP may fail five times as often, over all usernames.
    pub login_failures_per_minute: u32,
    /// The Ed25519 private key signing access tokens, as PKCS#8 PEM. Wins over the file.
    pub signing_key_pem: Option<String>,
    /// A file holding the signing key as PKCS#8 PEM: read if it exists, else created
    /// (mode 0600) with a new key.
    pub signing_key_file: Option<PathBuf>,
    /// How long a password-reset token is valid (1 hour by default).
    pub password_reset_ttl: Duration,
    /// The shop's reset page with `{token}` where the token goes; without it the reset
    /// e-mail shows the token itself.
    pub password_reset_link: Option<String>,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 60 * 60),
            signup_per_minute: 20,
            login_failures_per_minute: 10,
            signing_key_pem: None,
            signing_key_file: None,
            password_reset_ttl: Duration::from_secs(60 * 60),
            password_reset_link: None,
        }
    }
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("access_token_ttl", &self.access_token_ttl)
            .field("refresh_token_ttl", &self.refresh_token_ttl)
            .field("signup_per_minute", &self.signup_per_minute)
            .field("login_failures_per_minute", &self.login_failures_per_minute)
            .field(
                "signing_key_pem",
                &self.signing_key_pem.as_ref().map(|_| "<redacted>"),
            )
            .field("signing_key_file", &self.signing_key_file)
            .field("password_reset_ttl", &self.password_reset_ttl)
            .field("password_reset_link", &self.password_reset_link)
            .finish()
    }
}

/// A pair of tokens for a signed-in account.
#[derive(Clone)]
pub struct IssuedTokens {
    /// The JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// The refresh token: single use, rotated on every refresh.
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
}

impl std::fmt::Debug for IssuedTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedTokens")
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

/// Passwords, tokens and rate limits.
#[derive(Debug)]
pub struct Auth {
    access: AccessTokens,
    verifier: Arc<JwtVerifier>,
    refresh: RefreshTokens,
    passwords: Passwords,
    resets: PasswordResets,
    signups_per_ip: RateLimiter,
    resets_per_ip: RateLimiter,
    resets_per_account: RateLimiter,
    login_failures_per_username: RateLimiter,
    login_failures_per_ip: RateLimiter,
    /// Where access-token revocations are recorded for every node.
    sql: AnyPool,
}

const MINUTE: Duration = Duration::from_secs(60);
/// Reset e-mails one account receives per [`RESET_WINDOW`] at most, so nobody can flood
/// an inbox by asking again and again.
const RESETS_PER_ACCOUNT: u32 = 3;
const RESET_WINDOW: Duration = Duration::from_secs(15 * 60);

impl Auth {
    /// Loads or creates the signing key and keeps refresh tokens in `sql` (already
    /// migrated).
    pub fn new(config: &AuthConfig, sql: AnyPool) -> anyhow::Result<Auth> {
        let keys = SigningKeys::load(
            config.signing_key_pem.as_deref(),
            config.signing_key_file.as_deref(),
        )?;
        let verifier = Arc::new(keys.verifier()?);
        Ok(Self {
            access: AccessTokens::new(keys, config.access_token_ttl),
            verifier,
            refresh: RefreshTokens::new(sql.clone(), config.refresh_token_ttl),
            passwords: Passwords::new(),
            resets: PasswordResets::new(
                sql.clone(),
                config.password_reset_ttl,
                config.password_reset_link.clone(),
            ),
            signups_per_ip: RateLimiter::new(
                sql.clone(),
                "signups_per_ip",
                config.signup_per_minute,
                MINUTE,
            ),
            resets_per_ip: RateLimiter::new(
                sql.clone(),
                "resets_per_ip",
                config.signup_per_minute,
                MINUTE,
            ),
            resets_per_account: RateLimiter::new(
                sql.clone(),
                "resets_per_account",
                RESETS_PER_ACCOUNT,
                RESET_WINDOW,
            ),
            login_failures_per_username: RateLimiter::new(
                sql.clone(),
                "login_failures_per_username",
                config.login_failures_per_minute,
                MINUTE,
            ),
            login_failures_per_ip: RateLimiter::new(
                sql.clone(),
                "login_failures_per_ip",
                config.login_failures_per_minute.saturating_mul(5),
                MINUTE,
            ),
            sql,
        })
    }

    /// Refuses every access token `account` was issued before now: at once on this node,
    /// within [`web::revocations::FOLLOW_INTERVAL`] on the others.
    pub async fn revoke_access(&self, account: AccountId) -> Result<(), ApiError> {
        web::revocations::revoke(
            &self.sql,
            &self.verifier.revocations(),
            account,
            self.access.ttl(),
        )
        .await
        .map_err(|err| store::unavailable("revocation store", &err))
    }

    /// Keeps this node's verifier up to date with the revocations other nodes record in
    /// `sql`; runs for good.
    pub fn follow_revocations(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        web::revocations::follow(
            self.sql.clone(),
            self.verifier.revocations(),
            self.access.ttl(),
        )
    }

    /// Verifies access tokens this service issues.
    pub fn verifier(&self) -> Arc<JwtVerifier> {
        self.verifier.clone()
    }

    /// The public key as SPKI PEM: what query-api nodes verify tokens with.
    pub fn public_key_pem(&self) -> String {
        self.access.keys().public_pem().to_owned()
    }

    /// Argon2id hashing and verification.
    pub fn passwords(&self) -> &Passwords {
        &self.passwords
    }

    /// The password-reset tokens.
    pub fn password_resets(&self) -> &PasswordResets {
        &self.resets
    }

    /// The refresh-token store.
    pub fn refresh_tokens(&self) -> &RefreshTokens {
        &self.refresh
    }

    /// Access-token issuing (and, for tests, signing arbitrary claims).
    pub fn access_tokens(&self) -> &AccessTokens {
        &self.access
    }

    /// Signs arbitrary access-token claims with this service's key.
    pub fn sign(&self, claims: &AccessClaims) -> Result<String, ApiError> {
        self.access.sign(claims)
    }

    /// An access token and a refresh token in a new family, for a login.
    pub async fn issue_tokens(
        &self,
        account: AccountId,
        role: Role,
    ) -> Result<IssuedTokens, ApiError> {
        let refresh_token = self.refresh.issue(account).await?;
        self.with_access_token(account, role, refresh_token)
    }

    /// Pairs `refresh_token` with a new access token.
    pub(crate) fn with_access_token(
        &self,
        account: AccountId,
        role: Role,
        refresh_token: String,
    ) -> Result<IssuedTokens, ApiError> {
        Ok(IssuedTokens {
            access_token: self.access.issue(account, role)?,
            refresh_token,
            expires_in: self.access.ttl().as_secs(),
        })
    }

    /// Counts a sign-up from `ip`; 429 past the limit. Requests with no known address
    /// (in-process tests) are not limited.
    pub async fn limit_signup(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        match ip {
            Some(ip) => self.signups_per_ip.hit(&ip_key(ip)).await,
            None => Ok(()),
        }
    }

    /// Counts a password-reset request from `ip`; 429 past the limit (the sign-up limit).
    pub async fn limit_password_reset(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        match ip {
            Some(ip) => self.resets_per_ip.hit(&ip_key(ip)).await,
            None => Ok(()),
        }
    }

    /// Whether `account` may get another reset e-mail now (counted when it may). Fails
    /// only when the database does.
    pub async fn may_send_reset(&self, account: AccountId) -> Result<bool, ApiError> {
        match self.resets_per_account.hit(&account.to_string()).await {
            Ok(()) => Ok(true),
            Err(ApiError::TooManyRequests { .. }) => Ok(false),
            Err(err) => Err(err),
        }
    }

    /// 429 if `username` or `ip` has failed to log in too often lately.
    pub async fn check_login(&self, ip: Option<IpAddr>, username: &str) -> Result<(), ApiError> {
        self.login_failures_per_username
            .check(&username_key(username))
            .await?;
        if let Some(ip) = ip {
            self.login_failures_per_ip.check(&ip_key(ip)).await?;
        }
        Ok(())
    }

    /// Counts a failed login for `username` and `ip`.
    pub async fn record_login_failure(&self, ip: Option<IpAddr>, username: &str) {
        // Past the limit the counters stay where they are, and the next check refuses;
        // a database error was logged where it happened, and the login is refused anyway.
        let _ = self
            .login_failures_per_username
            .hit(&username_key(username))
            .await;
        if let Some(ip) = ip {
            let _ = self.login_failures_per_ip.hit(&ip_key(ip)).await;
        }
    }
}

/// Rate-limit key of a login name: trimmed, lower-cased, at most 254 characters (so a
/// flood of huge names cannot grow the limits table).
fn username_key(username: &str) -> String {
    username
        .trim()
        .chars()
        .take(254)
        .flat_map(char::to_lowercase)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_key() {
        let config = AuthConfig {
            signing_key_pem: Some(keys::generate_pem().unwrap()),
            ..AuthConfig::default()
        };
        let shown = format!("{config:?}");
        assert!(shown.contains("<redacted>"));
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    }

    #[test]
    fn defaults() {
        let config = AuthConfig::default();
        assert_eq!(config.access_token_ttl, Duration::from_secs(900));
        assert_eq!(config.refresh_token_ttl, Duration::from_secs(2_592_000));
        assert_eq!(
            (config.signup_per_minute, config.login_failures_per_minute),
            (20, 10)
        );
    }

    #[test]
    fn usernames_are_limited_case_insensitively() {
        assert_eq!(username_key("  Ann@Example.com "), "ann@example.com");
        assert_eq!(username_key(&"x".repeat(1000)).len(), 254);
    }
}
