//! Access tokens refused before they expire: when an account is locked or its password
//! is reset, every access token it was issued before that moment is refused by every
//! node, not only its refresh tokens.
//!
//! A token's issue time is read to the millisecond from its id (`jti`, a UUID v7), so a
//! sign-in right after a reset is not caught by it, whatever the second.
//!
//! The command node that locks the account records the moment in the SQL database
//! (`access_revocations`) and in its own verifier at once; every process that verifies
//! tokens reads the table again each second ([`follow`]), so the other nodes refuse
//! within about a second. Rows older than the longest access-token lifetime are deleted
//! at the next revocation: a token issued before them has expired anyway.
use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
    time::Duration,
};

use domain::ids::AccountId;
use sqlx::{AnyPool, Row};

use crate::jwt::AccessClaims;

/// How often a process reads the revocations again.
pub const FOLLOW_INTERVAL: Duration = Duration::from_secs(1);

/// Per account, the first millisecond whose tokens are still accepted.
#[derive(Debug, Default)]
pub struct Revocations {
    not_before: RwLock<HashMap<AccountId, i64>>,
}

impl Revocations {
    /// Refuses `account`'s tokens issued before `not_before` (ms since the epoch).
    pub fn revoke(&self, account: AccountId, not_before: i64) {
        let mut map = self
            .not_before
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let entry = map.entry(account).or_insert(not_before);
        *entry = (*entry).max(not_before);
    }

    /// Whether the token with `claims` was issued before its account's revocation.
    pub fn refuses(&self, claims: &AccessClaims) -> bool {
        self.not_before
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&claims.sub)
            .is_some_and(|not_before| issued_ms(claims) < *not_before)
    }

    /// Forgets revocations before `oldest` (ms): tokens older than that have expired.
    pub fn forget_before(&self, oldest: i64) {
        self.not_before
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|_, not_before| *not_before >= oldest);
    }
}

/// Records that `account`'s access tokens issued before now are refused: in `sql`, for
/// every node, and in `local` at once. Rows older than `token_lifetime` are deleted.
pub async fn revoke(
    sql: &AnyPool,
    local: &Revocations,
    account: AccountId,
    token_lifetime: Duration,
) -> Result<(), sqlx::Error> {
    let now = chrono::Utc::now().timestamp_millis();
    sqlx::query(
        "INSERT INTO access_revocations (account_id, not_before) VALUES ($1, $2) \
         ON CONFLICT (account_id) DO UPDATE SET not_before = excluded.not_before",
    )
    .bind(account.to_string())
    .bind(now)
    .execute(sql)
    .await?;
    local.revoke(account, now);
    sqlx::query("DELETE FROM access_revocations WHERE not_before < $1")
        .bind(oldest_in_force(now, token_lifetime))
        .execute(sql)
        .await?;
    Ok(())
}

/// Reads the revocations in force from `sql` into `local` once.
pub async fn load(
    sql: &AnyPool,
    local: &Revocations,
    token_lifetime: Duration,
) -> Result<(), sqlx::Error> {
    let oldest = oldest_in_force(chrono::Utc::now().timestamp_millis(), token_lifetime);
    let rows =
        sqlx::query("SELECT account_id, not_before FROM access_revocations WHERE not_before >= $1")
            .bind(oldest)
            .fetch_all(sql)
            .await?;
    for row in rows {
        let account: String = row.try_get(0)?;
        let not_before: i64 = row.try_get(1)?;
        match account.parse() {
            Ok(account) => local.revoke(account, not_before),
            Err(_) => tracing::warn!(%account, "access revocation of an unreadable account id"),
        }
    }
    local.forget_before(oldest);
    Ok(())
}

/// Reads the revocations from `sql` into `local` every [`FOLLOW_INTERVAL`], for good.
/// A failed read is logged and tried again at the next tick.
pub async fn follow(sql: AnyPool, local: Arc<Revocations>, token_lifetime: Duration) {
    let mut ticks = tokio::time::interval(FOLLOW_INTERVAL);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        if let Err(err) = load(&sql, &local, token_lifetime).await {
            tracing::warn!(%err, "could not read the access-token revocations; retrying");
        }
    }
}

/// The oldest revocation (ms) that can still refuse a token at `now` (ms): one older
/// than the tokens' lifetime (and the verifier's leeway) refuses only expired tokens.
fn oldest_in_force(now: i64, token_lifetime: Duration) -> i64 {
    let lifetime = i64::try_from(token_lifetime.as_millis()).unwrap_or(i64::MAX / 2);
    now.saturating_sub(lifetime.saturating_add(60_000))
}

/// When a token was issued, in ms since the epoch: from its id when that is a UUID v7
/// (as every token Emporium issues), else from `iat`.
fn issued_ms(claims: &AccessClaims) -> i64 {
    uuid::Uuid::parse_str(&claims.jti)
        .ok()
        .and_then(|id| id.get_timestamp())
        .and_then(|at| {
            let (secs, nanos) = at.to_unix();
            i64::try_from(secs)
                .ok()
                .map(|secs| secs * 1000 + i64::from(nanos / 1_000_000))
        })
        .unwrap_or(claims.iat.saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    use domain::account::Role;

    use super::*;

    /// Claims of a token issued at `ms`, its id a UUID v7 of that moment.
    fn issued_at(account: AccountId, ms: u64) -> AccessClaims {
        let at =
            uuid::Timestamp::from_unix(uuid::NoContext, ms / 1000, (ms % 1000) as u32 * 1_000_000);
        AccessClaims {
            sub: account,
            role: Role::Customer,
            iss: crate::jwt::ISSUER.into(),
            aud: crate::jwt::ISSUER.into(),
            iat: (ms / 1000) as i64,
            exp: (ms / 1000) as i64 + 900,
            jti: uuid::Uuid::new_v7(at).to_string(),
        }
    }

    #[test]
    fn tokens_issued_before_the_revocation_are_refused_to_the_millisecond() {
        let (ann, bob) = (
            AccountId::new(uuid::Uuid::now_v7()),
            AccountId::new(uuid::Uuid::now_v7()),
        );
        let revocations = Revocations::default();
        revocations.revoke(ann, 1_000_500);
        assert!(revocations.refuses(&issued_at(ann, 1_000_499)));
        assert!(
            !revocations.refuses(&issued_at(ann, 1_000_500)),
            "a sign-in in the same second, after it"
        );
        assert!(
            !revocations.refuses(&issued_at(bob, 999_000)),
            "another account"
        );
        // An older revocation read later does not undo a newer one.
        revocations.revoke(ann, 500_000);
        assert!(revocations.refuses(&issued_at(ann, 1_000_499)));
    }

    #[test]
    fn a_token_without_a_time_ordered_id_is_judged_by_its_issue_second() {
        let ann = AccountId::new(uuid::Uuid::now_v7());
        let revocations = Revocations::default();
        revocations.revoke(ann, 1_000_000);
        let mut claims = issued_at(ann, 0);
        claims.jti = "not-a-uuid".into();
        claims.iat = 999;
        assert!(revocations.refuses(&claims));
        claims.iat = 1_000;
        assert!(!revocations.refuses(&claims));
    }

    #[test]
    fn revocations_older_than_every_token_are_forgotten() {
        let ann = AccountId::new(uuid::Uuid::now_v7());
        let revocations = Revocations::default();
        revocations.revoke(ann, 1_000);
        revocations.forget_before(1_000);
        assert!(revocations.refuses(&issued_at(ann, 999)), "still in force");
        revocations.forget_before(1_001);
        assert!(!revocations.refuses(&issued_at(ann, 999)), "forgotten");
        assert_eq!(
            oldest_in_force(10_000_000, Duration::from_secs(900)),
            9_040_000
        );
    }
}
