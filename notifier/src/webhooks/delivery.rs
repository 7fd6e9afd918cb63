//! From the bus to the endpoints, at least once.
//!
//! [`record`] (the bus consumer `notifier-webhooks`) turns each integration event into one
//! `webhook_deliveries` row per matching endpoint registered before the event happened,
//! then acks: the rows are the durable work queue, so a crash or an endpoint outage delays
//! deliveries and loses none, and a redelivered event inserts nothing (unique on endpoint
//! and event id).
//!
//! [`Worker`] sends due rows. A row is claimed with a conditional `UPDATE` that sets a
//! lease (only one process can win it, on SQLite and PostgreSQL alike, and no transaction
//! stays open during the HTTP call); a process that dies mid-attempt leaves a lease that
//! expires, and the row is tried again. The body is fixed when the row is written and
//! `webhook-id` is the event id, so every attempt is the same message to the receiver.
use std::{sync::Arc, time::Instant};

use bus::{Bus, IntegrationEvent};
use futures::StreamExt;
use serde_json::json;
use sqlx::{AnyPool, Row};
use tokio::sync::Notify;

use super::{WebhookConfig, duration_ms, now_ms, signing};
use crate::ssrf::{self, GuardedResolver};

/// The durable consumer name of the webhook recorder.
pub const CONSUMER: &str = "notifier-webhooks";

/// Records the deliveries `event` calls for. Returns how many rows were new.
///
/// # Errors
/// The database failed; nothing is acked then and the event comes again.
pub async fn record(sql: &AnyPool, event: &IntegrationEvent) -> Result<u64, sqlx::Error> {
    let occurred = event.occurred_at.timestamp_millis();
    let endpoints = sqlx::query(
        "SELECT id, event_types FROM webhook_endpoints WHERE deleted_at IS NULL AND created_at <= $1",
    )
    .bind(occurred.max(0))
    .fetch_all(sql)
    .await?;
    let body = json!({
        "type": event.event_type,
        "timestamp": event.occurred_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        "data": event.data,
    })
    .to_string();
    let now = now_ms();
    let mut created = 0;
    for endpoint in endpoints {
        let (id, types): (String, String) = (endpoint.get(0), endpoint.get(1));
        let types: Vec<String> = serde_json::from_str(&types).unwrap_or_default();
        if !types.is_empty() && !types.contains(&event.event_type) {
            continue;
        }
        created += sqlx::query(
            "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, body, status, \
             attempts, next_attempt_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $6, $6) \
             ON CONFLICT (endpoint_id, event_id) DO NOTHING",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(&id)
        .bind(event.id.to_string())
        .bind(&event.event_type)
        .bind(&body)
        .bind(now)
        .execute(sql)
        .await?
        .rows_affected();
    }
    Ok(created)
}

/// Consumes every integration event into delivery rows until `stop`, waking `wake` when
/// rows were added. Database outages are retried with a back-off.
pub async fn run_recorder(
    bus: Arc<dyn Bus>,
    sql: AnyPool,
    wake: Arc<Notify>,
    stop: impl std::future::Future<Output = ()> + Send,
) {
    tokio::select! {
        () = stop => {}
        () = crate::consume(bus, CONSUMER, &["emporium.>"], |event| {
            let (sql, wake) = (sql.clone(), wake.clone());
            async move {
                if record(&sql, &event).await? > 0 {
                    wake.notify_one();
                }
                Ok(())
            }
        }) => {}
    }
}

/// A claimed delivery with what is needed to send it.
struct Due {
    id: String,
    event_id: String,
    body: String,
    attempts: i64,
    url: String,
    secret: String,
}

/// What one attempt came to.
struct Outcome {
    status_code: Option<i64>,
    error: Option<String>,
    duration_ms: i64,
}

impl Outcome {
    fn delivered(&self) -> bool {
        self.status_code.is_some_and(|s| (200..300).contains(&s))
    }
}

/// Sends due deliveries.
#[derive(Clone)]
pub struct Worker {
    sql: AnyPool,
    config: WebhookConfig,
    client: reqwest::Client,
}

impl Worker {
    /// A worker over `sql` with `config`; its HTTP client resolves through the SSRF guard,
    /// follows no redirects and uses no proxy.
    ///
    /// # Errors
    /// The HTTP client cannot be built (TLS set-up).
    pub fn new(sql: AnyPool, config: WebhookConfig) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .dns_resolver(GuardedResolver::new(config.allow_private))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(config.timeout)
            .user_agent("Emporium-Webhooks/1")
            .build()?;
        Ok(Self {
            sql,
            config,
            client,
        })
    }

    fn lease_ms(&self) -> i64 {
        duration_ms(self.config.timeout).saturating_mul(2) + 5_000
    }

    /// Claims and sends every delivery due now; returns how many were attempted.
    ///
    /// # Errors
    /// The database failed.
    pub async fn run_once(&self) -> Result<usize, sqlx::Error> {
        let now = now_ms();
        let candidates: Vec<String> = sqlx::query_scalar(
            "SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
             WHERE d.status = 'pending' AND d.next_attempt_at <= $1 \
             AND (d.lease_until IS NULL OR d.lease_until < $1) AND e.deleted_at IS NULL \
             ORDER BY d.next_attempt_at LIMIT $2",
        )
        .bind(now)
        .bind(i64::try_from(self.config.concurrency * 4).unwrap_or(64))
        .fetch_all(&self.sql)
        .await?;
        let mut claimed = Vec::new();
        for id in candidates {
            let won = sqlx::query(
                "UPDATE webhook_deliveries SET lease_until = $1 WHERE id = $2 AND status = 'pending' \
                 AND (lease_until IS NULL OR lease_until < $3)",
            )
            .bind(now + self.lease_ms())
            .bind(&id)
            .bind(now)
            .execute(&self.sql)
            .await?
            .rows_affected()
                == 1;
            if won {
                let row = sqlx::query(
                    "SELECT d.id, d.event_id, d.body, d.attempts, e.url, e.secret \
                     FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
                     WHERE d.id = $1",
                )
                .bind(&id)
                .fetch_one(&self.sql)
                .await?;
                claimed.push(Due {
                    id: row.get(0),
                    event_id: row.get(1),
                    body: row.get(2),
                    attempts: row.get(3),
                    url: row.get(4),
                    secret: row.get(5),
                });
            }
        }
        let count = claimed.len();
        let results: Vec<Result<(), sqlx::Error>> = futures::stream::iter(claimed)
            .map(|due| self.attempt(due))
            .buffer_unordered(self.config.concurrency.max(1))
            .collect()
            .await;
        results.into_iter().collect::<Result<(), _>>()?;
        Ok(count)
    }

    async fn attempt(&self, due: Due) -> Result<(), sqlx::Error> {
        let outcome = self.send(&due).await;
        let attempt = due.attempts + 1;
        let now = now_ms();
        let (status, next) = if outcome.delivered() {
            ("delivered", None)
        } else if attempt >= i64::from(self.config.max_attempts) {
            ("dead", None)
        } else {
            let delay = self
                .config
                .retry_delay(u32::try_from(attempt).unwrap_or(u32::MAX));
            ("pending", Some(now + duration_ms(delay)))
        };
        let mut tx = self.sql.begin().await?;
        sqlx::query(
            "INSERT INTO webhook_attempts (delivery_id, attempt, at, status_code, error, duration_ms) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&due.id)
        .bind(attempt)
        .bind(now - outcome.duration_ms)
        .bind(outcome.status_code)
        .bind(outcome.error.clone())
        .bind(outcome.duration_ms)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE webhook_deliveries SET status = $1, attempts = $2, next_attempt_at = $3, \
             lease_until = NULL, updated_at = $4 WHERE id = $5",
        )
        .bind(status)
        .bind(attempt)
        .bind(next)
        .bind(now)
        .bind(&due.id)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        match status {
            "dead" => tracing::warn!(delivery = %due.id, event = %due.event_id, attempts = attempt,
                error = ?outcome.error, status_code = ?outcome.status_code, "webhook delivery dead-lettered"),
            "pending" => tracing::info!(delivery = %due.id, event = %due.event_id, attempt,
                error = ?outcome.error, status_code = ?outcome.status_code, "webhook attempt failed; will retry"),
            _ => {
                tracing::debug!(delivery = %due.id, event = %due.event_id, attempt, "webhook delivered")
            }
        }
        Ok(())
    }

    async fn send(&self, due: &Due) -> Outcome {
        let started = Instant::now();
        let finish = |status_code: Option<i64>, error: Option<String>| Outcome {
            status_code,
            error,
            duration_ms: duration_ms(started.elapsed()),
        };
        // IP literals never reach the resolver: judge them (and the URL) again here.
        let url = match ssrf::parse_url(&due.url) {
            Ok(url) => url,
            Err(err) => return finish(None, Some(err.to_string())),
        };
        if !self.config.allow_private {
            let literal = match url.host() {
                Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::V4(ip)),
                Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::V6(ip)),
                _ => None,
            };
            if let Some(ip) = literal.filter(|ip| ssrf::is_internal(*ip)) {
                return finish(
                    None,
                    Some(format!("{ip} is an internal address, not a public address")),
                );
            }
        }
        let Some(key) = signing::secret_key(&due.secret) else {
            return finish(None, Some("the endpoint's secret is unreadable".into()));
        };
        let timestamp = chrono::Utc::now().timestamp();
        let signature = signing::sign(&key, &due.event_id, timestamp, &due.body);
        let sent = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &due.event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(due.body.clone())
            .send()
            .await;
        match sent {
            Ok(response) => finish(Some(i64::from(response.status().as_u16())), None),
            Err(err) => {
                // The full error chain says why (refused address, timeout, connection).
                let mut reason = err.to_string();
                let mut source = std::error::Error::source(&err);
                while let Some(cause) = source {
                    reason = format!("{reason}: {cause}");
                    source = cause.source();
                }
                finish(None, Some(reason))
            }
        }
    }

    /// Sends due deliveries until `stop`: whenever `wake` is notified, and at least every
    /// poll interval (retries come due by time alone).
    pub async fn run(self, wake: Arc<Notify>, stop: impl std::future::Future<Output = ()> + Send) {
        let poll = self.config.poll_interval;
        crate::drain_until_stopped("webhook worker", || self.run_once(), wake, poll, stop).await;
    }
}
