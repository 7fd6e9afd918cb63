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
    /// The delay after failed attempt number `attempt` (1-based); see [`crate::retry`].
    #[must_use]
    pub fn retry_delay(&self, attempt: u32) -> Duration {
        crate::retry::delay(self.base_delay, self.max_delay, attempt)
    }
}

pub(crate) use crate::{duration_ms, now_ms};
