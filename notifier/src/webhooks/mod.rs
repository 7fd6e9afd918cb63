//! Webhooks: endpoints registered by admins, one delivery row per endpoint and event, sent
//! signed (Standard Webhooks), retried with exponential backoff and jitter, dead-lettered
//! after the last attempt, every attempt logged.
//!
//! - [`api`]: `POST/GET/DELETE /api/v1/admin/webhooks`, `GET …/{id}/deliveries`.
//! - [`signing`]: secrets and signatures.
//! - [`delivery`]: the bus consumer that records deliveries and the worker that sends them.
//!
//! Tables (see `migrations/*/0007_notifications.sql`): `webhook_endpoints`,
//! `webhook_deliveries` (unique per endpoint and event id: a redelivered event adds
//! nothing), `webhook_attempts`.
use std::time::Duration;

pub mod api;
pub mod delivery;

pub mod signing;

/// Webhook settings.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// Let endpoints reach private, loopback and link-local addresses
    /// (`EMPORIUM_WEBHOOK_ALLOW_PRIVATE`; tests and closed networks only).
    pub allow_private: bool,
    /// Attempts before a delivery is dead (`EMPORIUM_WEBHOOK_MAX_ATTEMPTS`, default 8).
    pub max_attempts: u32,
    /// The delay before the second attempt; it doubles with each further attempt
    /// (`EMPORIUM_WEBHOOK_RETRY_BASE_MS`, default 5 s), up to `max_delay`.
    pub base_delay: Duration,
    /// The longest delay between two attempts (1 hour).
    pub max_delay: Duration,
    /// How long an endpoint may take to answer (`EMPORIUM_WEBHOOK_TIMEOUT_MS`, default 10 s).
    pub timeout: Duration,
    /// How often the worker looks for due deliveries when nothing wakes it (1 s).
    pub poll_interval: Duration,
    /// Deliveries sent at the same time by one worker (16).
    pub concurrency: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            allow_private: false,
            max_attempts: 8,
            base_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(3600),
            timeout: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
            concurrency: 16,
        }
    }
}

impl WebhookConfig {
    /// The delay after failed attempt number `attempt` (1-based): `base * 2^(attempt-1)`,
    /// capped at `max_delay`, then a random point in its upper half ("equal jitter"), so
    /// retries of many deliveries to one recovering endpoint spread out.
    #[must_use]
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(30);
        let full = self
            .base_delay
            .saturating_mul(1u32 << exponent)
            .min(self.max_delay);
        let half = full / 2;
        let jitter = rand::Rng::gen_range(&mut rand::thread_rng(), 0..=half.as_millis() as u64);
        half + Duration::from_millis(jitter)
    }
}

/// Milliseconds since the epoch (how times are stored).
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub(crate) fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delays_grow_exponentially_with_jitter_and_a_cap() {
        let config = WebhookConfig {
            base_delay: Duration::from_secs(4),
            max_delay: Duration::from_secs(60),
            ..WebhookConfig::default()
        };
        for _ in 0..50 {
            let first = config.retry_delay(1);
            assert!((Duration::from_secs(2)..=Duration::from_secs(4)).contains(&first));
            let third = config.retry_delay(3);
            assert!((Duration::from_secs(8)..=Duration::from_secs(16)).contains(&third));
            let late = config.retry_delay(40);
            assert!((Duration::from_secs(30)..=Duration::from_secs(60)).contains(&late));
        }
        let distinct: std::collections::HashSet<Duration> =
            (0..20).map(|_| config.retry_delay(5)).collect();
        assert!(distinct.len() > 1, "jitter varies the delay");
    }
}
