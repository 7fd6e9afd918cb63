//! Emporium's notifier: a downstream subscriber of the integration events that sends
//! e-mails and signed webhooks, at least once, checkpointed like any projection.
//!
//! - [`webhooks`]: endpoints (admin API), deliveries, signing, the delivery worker.
//! - [`ssrf`]: the guard that keeps webhooks off internal addresses.
#![deny(missing_docs)]

pub mod ssrf;
pub mod webhooks;

use std::{future::Future, sync::Arc};

use bus::Bus;
use futures::FutureExt;
use sqlx::AnyPool;
use tokio::sync::Notify;

pub use webhooks::WebhookConfig;

/// Runs the notifier's webhook side until `stop`: the bus consumer `notifier-webhooks`
/// that records deliveries, and the worker that sends them. Both resume where they were
/// after a restart (the consumer's checkpoint, the delivery rows).
///
/// # Errors
/// The HTTP client cannot be built.
pub async fn run_webhooks(
    bus: Arc<dyn Bus>,
    sql: AnyPool,
    config: WebhookConfig,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let worker = webhooks::delivery::Worker::new(sql.clone(), config)?;
    let wake = Arc::new(Notify::new());
    let stop = stop.shared();
    let recorder = tokio::spawn(webhooks::delivery::run_recorder(
        bus,
        sql,
        wake.clone(),
        stop.clone(),
    ));
    let sender = tokio::spawn(worker.run(wake, stop));
    let _ = recorder.await;
    let _ = sender.await;
    Ok(())
}
