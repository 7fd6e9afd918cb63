//! Emporium's notifier: a downstream subscriber of the integration events that sends
//! e-mails and signed webhooks, at least once, checkpointed like any projection.
//!
//! - [`email`]: order e-mails and password-reset e-mails through an outbox table, over
//!   SMTP or into `.eml` files.
//! - [`webhooks`]: endpoints (admin API), deliveries, signing, the delivery worker.
//! - [`ssrf`]: the guard that keeps webhooks off internal addresses.
//! - [`retry`]: the backoff both share.
//!
//! Each side is a bus consumer that writes durable rows (the work queue) and acks, plus a
//! worker that sends due rows with leases, so any number of notifier processes may run.
#![deny(missing_docs)]

pub mod email;
pub mod retry;
pub mod ssrf;
pub mod webhooks;

use std::{future::Future, sync::Arc, time::Duration};

use bus::{Bus, IntegrationEvent};
use eventstore::EventStore;
use futures::FutureExt;
use sqlx::AnyPool;
use tokio::sync::Notify;

pub use email::EmailConfig;
pub use webhooks::WebhookConfig;

/// Runs the whole notifier until `stop`: webhooks and e-mail.
///
/// # Errors
/// The HTTP client cannot be built, or the SMTP URL is not usable.
pub async fn run(
    bus: Arc<dyn Bus>,
    store: Arc<dyn EventStore>,
    sql: AnyPool,
    webhooks: WebhookConfig,
    email: EmailConfig,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let stop = stop.shared();
    let (webhooks, email) = tokio::join!(
        run_webhooks(bus.clone(), sql.clone(), webhooks, stop.clone()),
        run_email(bus, store, sql, email, stop),
    );
    webhooks.and(email)
}

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

/// Runs the notifier's e-mail side until `stop`: the bus consumer `notifier-email` that
/// queues order e-mails (recipients read from `store`), and the sender that delivers the
/// outbox, password resets included.
///
/// # Errors
/// The SMTP URL is not usable.
pub async fn run_email(
    bus: Arc<dyn Bus>,
    store: Arc<dyn EventStore>,
    sql: AnyPool,
    config: EmailConfig,
    stop: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let sender = email::sender::Sender::new(sql.clone(), config)?;
    let wake = Arc::new(Notify::new());
    let stop = stop.shared();
    let recorder = tokio::spawn(email::recorder::run(
        bus,
        store,
        sql,
        wake.clone(),
        stop.clone(),
    ));
    let sending = tokio::spawn(sender.run(wake, stop));
    let _ = recorder.await;
    let _ = sending.await;
    Ok(())
}

/// Feeds every event matching `filters` to `handle` as durable consumer `consumer`, forever:
/// acked when `handle` succeeds, nak'ed (and retried after a pause) when it fails. An
/// unreadable bus is resubscribed after a pause.
pub(crate) async fn consume<F, Fut>(
    bus: Arc<dyn Bus>,
    consumer: &'static str,
    filters: &[&str],
    mut handle: F,
) where
    F: FnMut(IntegrationEvent) -> Fut,
    Fut: Future<Output = anyhow::Result<()>>,
{
    const PAUSE: Duration = Duration::from_millis(500);
    loop {
        let mut subscription = match bus.subscribe(consumer, filters).await {
            Ok(subscription) => subscription,
            Err(err) => {
                tracing::warn!(%err, consumer, "cannot subscribe yet; retrying");
                tokio::time::sleep(PAUSE * 2).await;
                continue;
            }
        };
        loop {
            let delivery = match subscription.next().await {
                Ok(delivery) => delivery,
                Err(err) => {
                    tracing::error!(%err, consumer, "cannot read the bus; resubscribing");
                    tokio::time::sleep(PAUSE * 2).await;
                    break;
                }
            };
            match handle(delivery.event().clone()).await {
                Ok(()) => {
                    if let Err(err) = delivery.ack().await {
                        tracing::warn!(%err, consumer, "could not ack; the event comes again");
                    }
                }
                Err(err) => {
                    tracing::warn!(err = %format!("{err:#}"), consumer, "handling an event failed; retrying");
                    let _ = delivery.nak().await;
                    tokio::time::sleep(PAUSE).await;
                }
            }
        }
    }
}

/// Runs `run_once` (which works off what is due and says how much) until `stop`: again at
/// once while it finds work, else when `wake` is notified or `poll` has passed (retries
/// come due by time alone). Database errors are logged and retried at the next turn.
pub(crate) async fn drain_until_stopped<F, Fut>(
    what: &str,
    mut run_once: F,
    wake: Arc<Notify>,
    poll: Duration,
    stop: impl Future<Output = ()>,
) where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<usize, sqlx::Error>>,
{
    tokio::pin!(stop);
    loop {
        let worked = match run_once().await {
            Ok(count) => count,
            Err(err) => {
                tracing::warn!(%err, "{what} cannot read its queue; retrying");
                0
            }
        };
        if worked > 0 {
            continue;
        }
        tokio::select! {
            () = &mut stop => return,
            () = wake.notified() => {}
            () = tokio::time::sleep(poll) => {}
        }
    }
}

/// Milliseconds since the epoch (how times are stored).
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

pub(crate) fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
