//! Fixed-window rate limits keyed by a string (a client IP, a username), counted in the
//! SQL database (`rate_limits`), so that every command node on one database shares them:
//! behind a load balancer a client gets the limit once, not once per node. One SQL text
//! serves SQLite and PostgreSQL; a count is one upsert, a check one primary-key read.
//!
//! Rows of windows that have ended are deleted by the node that finds them due, at most
//! once per window and limiter, so the table holds about one window's keys.
use std::{net::IpAddr, sync::Mutex, time::Duration};

use sqlx::{AnyPool, Row};
use web::ApiError;

use super::store::{now_ms, unavailable};

/// Counts events per key in fixed windows and refuses once a key reaches its limit.
#[derive(Debug)]
pub struct RateLimiter {
    sql: AnyPool,
    /// Which limit this is: keys of different limiters never meet.
    name: &'static str,
    limit: u32,
    window: Duration,
    /// When this node last deleted ended windows (ms since the epoch).
    last_prune_ms: Mutex<i64>,
}

/// A key's window: when it began and what it has counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    started_ms: i64,
    count: i64,
}

impl RateLimiter {
    /// At most `limit` events per key in each `window`, counted in `sql` under `name`.
    /// A limit of 0 disables the limiter.
    pub fn new(sql: AnyPool, name: &'static str, limit: u32, window: Duration) -> Self {
        Self {
            sql,
            name,
            limit,
            window,
            last_prune_ms: Mutex::new(0),
        }
    }

    /// Fails with 429 if `key` has used up its window, without counting anything.
    pub async fn check(&self, key: &str) -> Result<(), ApiError> {
        self.check_at(key, now_ms()).await
    }

    /// Counts one event for `key`, failing with 429 (and not counting) when the key has
    /// already used up its window.
    pub async fn hit(&self, key: &str) -> Result<(), ApiError> {
        self.hit_at(key, now_ms()).await
    }

    /// [`RateLimiter::check`] at `now_ms` (milliseconds since the epoch).
    pub async fn check_at(&self, key: &str, now_ms: i64) -> Result<(), ApiError> {
        if self.limit == 0 {
            return Ok(());
        }
        let row = sqlx::query(
            "SELECT window_start, count FROM rate_limits WHERE limiter = $1 AND key = $2",
        )
        .bind(self.name)
        .bind(key)
        .fetch_optional(&self.sql)
        .await
        .map_err(|err| unavailable("rate-limit store", &err))?;
        let Some(row) = row else {
            return Ok(());
        };
        verdict(
            window_of(&row)?,
            i64::from(self.limit),
            self.window_ms(),
            now_ms,
        )
    }

    /// [`RateLimiter::hit`] at `now_ms` (milliseconds since the epoch).
    pub async fn hit_at(&self, key: &str, now_ms: i64) -> Result<(), ApiError> {
        if self.limit == 0 {
            return Ok(());
        }
        self.prune_if_due(now_ms).await;
        // A window that has ended starts again at 1; one that is used up stays at
        // limit + 1 (the refused event is not counted twice, and the answer can tell).
        let row = sqlx::query(
            "INSERT INTO rate_limits (limiter, key, window_start, count) VALUES ($1, $2, $3, 1) \
             ON CONFLICT (limiter, key) DO UPDATE SET \
               window_start = CASE WHEN rate_limits.window_start <= $4 THEN $3 ELSE rate_limits.window_start END, \
               count = CASE WHEN rate_limits.window_start <= $4 THEN 1 \
                            WHEN rate_limits.count > $5 THEN rate_limits.count \
                            ELSE rate_limits.count + 1 END \
             RETURNING window_start, count",
        )
        .bind(self.name)
        .bind(key)
        .bind(now_ms)
        .bind(now_ms - self.window_ms())
        .bind(i64::from(self.limit))
        .fetch_one(&self.sql)
        .await
        .map_err(|err| unavailable("rate-limit store", &err))?;
        verdict(
            window_of(&row)?,
            i64::from(self.limit) + 1,
            self.window_ms(),
            now_ms,
        )
    }

    /// Deletes this limiter's ended windows, once per window at most (from this node).
    async fn prune_if_due(&self, now_ms: i64) {
        {
            let mut last = self
                .last_prune_ms
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if now_ms - *last < self.window_ms() {
                return;
            }
            *last = now_ms;
        }
        let pruned =
            sqlx::query("DELETE FROM rate_limits WHERE limiter = $1 AND window_start <= $2")
                .bind(self.name)
                .bind(now_ms - self.window_ms())
                .execute(&self.sql)
                .await;
        if let Err(err) = pruned {
            // The rows stay until the next prune; the counts stay right meanwhile.
            tracing::warn!(%err, limiter = self.name, "could not delete ended rate-limit windows");
        }
    }

    fn window_ms(&self) -> i64 {
        i64::try_from(self.window.as_millis()).unwrap_or(i64::MAX)
    }
}

/// 429 (with the seconds until `window` ends) if it has counted `refused_from` events
/// or more and has not ended at `now_ms`.
fn verdict(window: Window, refused_from: i64, window_ms: i64, now_ms: i64) -> Result<(), ApiError> {
    let ends_ms = window.started_ms.saturating_add(window_ms);
    if window.count < refused_from || ends_ms <= now_ms {
        return Ok(());
    }
    let left_ms = u64::try_from(ends_ms - now_ms).unwrap_or(0);
    Err(ApiError::TooManyRequests {
        retry_after_secs: left_ms.div_ceil(1000).max(1),
    })
}

fn window_of(row: &sqlx::any::AnyRow) -> Result<Window, ApiError> {
    let read = |err: sqlx::Error| unavailable("rate-limit store", &err);
    Ok(Window {
        started_ms: row.try_get::<i64, _>(0).map_err(read)?,
        count: row.try_get::<i64, _>(1).map_err(read)?,
    })
}

/// The rate-limit key of a client address: IPv4 as is, IPv6 by its /64 prefix (one
/// customer network typically owns a whole /64).
pub fn ip_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE_MS: i64 = 60_000;

    fn retry_after(verdict: Result<(), ApiError>) -> u64 {
        match verdict {
            Err(ApiError::TooManyRequests { retry_after_secs }) => retry_after_secs,
            other => panic!("expected 429, got {other:?}"),
        }
    }

    #[test]
    fn a_used_up_window_refuses_until_it_ends() {
        let window = Window {
            started_ms: 1_000_000,
            count: 3,
        };
        assert!(
            verdict(window, 4, MINUTE_MS, 1_000_000).is_ok(),
            "below the mark"
        );
        assert_eq!(retry_after(verdict(window, 3, MINUTE_MS, 1_010_000)), 50);
        assert_eq!(retry_after(verdict(window, 3, MINUTE_MS, 1_059_001)), 1);
        assert!(verdict(window, 3, MINUTE_MS, 1_060_000).is_ok(), "ended");
    }

    #[test]
    fn retry_after_rounds_up_and_is_at_least_one_second() {
        let window = Window {
            started_ms: 0,
            count: 1,
        };
        assert_eq!(retry_after(verdict(window, 1, 100, 99)), 1);
        assert_eq!(retry_after(verdict(window, 1, MINUTE_MS, 1)), 60);
    }

    #[test]
    fn ipv6_clients_are_keyed_by_prefix() {
        let a: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert_eq!(ip_key(a), ip_key(b));
        assert_eq!(ip_key("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1");
        assert_eq!(ip_key("10.0.0.1".parse().unwrap()), "10.0.0.1");
    }
}
