//! Integration events and the bus that carries them to subscribers outside the write path
//! (notifications, webhooks, other systems).
//!
//! - [`event`]: the pure mapping from a recorded domain event to an [`IntegrationEvent`]
//!   (subject such as `emporium.order.placed`, self-contained camelCase payload).
//! - [`Bus`]: one subscriber API over two carriers. [`NatsBus`] publishes to the JetStream
//!   stream `EMPORIUM` with the event id as `Nats-Msg-Id` and serves durable pull consumers;
//!   [`InProcessBus`] (embedded mode, no NATS) lets subscribers read the log itself from
//!   their own checkpoint, mapping it with the same function.
//!
//! Guarantees of both carriers: at-least-once delivery in log order per consumer; a
//! delivery counts as handled only when the consumer acks it; a consumer that restarts
//! resumes after its last ack (the durable state is the JetStream consumer, or a row of
//! `projection_checkpoints`); a delivery not acked within the ack wait, or nak'ed, is
//! delivered again. Consumers must therefore be idempotent by [`IntegrationEvent::id`].
#![deny(missing_docs)]

pub mod event;
pub mod in_process;
pub mod nats;
#[cfg(feature = "testsupport")]
pub mod testsupport;

use async_trait::async_trait;

pub use event::{
    IntegrationEvent, Mapper, MappingError, OrderContext, ShipmentFacts, Subject, map_event,
    subject_matches,
};
pub use in_process::{InProcessBus, InProcessConfig};
pub use nats::{NatsBus, NatsConfig};

/// Why a bus operation failed.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// A consumer name or subject filter the bus cannot use.
    #[error("invalid: {0}")]
    Invalid(String),
    /// The carrier (NATS, or the database holding in-process checkpoints) did not answer
    /// or refused; retrying later is safe.
    #[error("bus unavailable: {0}")]
    Unavailable(String),
    /// The log holds an event that cannot be mapped.
    #[error(transparent)]
    Mapping(#[from] MappingError),
}

impl BusError {
    pub(crate) fn unavailable(err: impl std::fmt::Display) -> Self {
        Self::Unavailable(err.to_string())
    }
}

/// Which carrier a [`Bus`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BusKind {
    /// NATS JetStream: events must be published to it.
    Nats,
    /// The log itself, read in this process: publishing only wakes subscribers.
    InProcess,
}

/// Carries integration events from the log to durable consumers.
#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Which carrier this is.
    fn kind(&self) -> BusKind;

    /// Publishes `events` in order and returns only when every one is durably accepted
    /// (with NATS: each `PublishAck` received). Republishing an event is harmless: its id
    /// is the dedupe key.
    ///
    /// # Errors
    /// [`BusError::Unavailable`] when not every event was accepted; publish them all again.
    async fn publish(&self, events: &[IntegrationEvent]) -> Result<(), BusError>;

    /// Subscribes durable consumer `consumer` (1..=64 characters of `A-Za-z0-9_-`) to the
    /// subjects matching any of `filters` (NATS wildcards, e.g. `emporium.order.>`). A new
    /// consumer starts at the beginning of the stream; an existing one resumes after its
    /// last ack.
    ///
    /// # Errors
    /// [`BusError::Invalid`] for a bad name or filter, [`BusError::Unavailable`] when the
    /// carrier does not answer.
    async fn subscribe(&self, consumer: &str, filters: &[&str]) -> Result<Subscription, BusError>;

    /// Checks that the carrier answers (for readiness probes).
    ///
    /// # Errors
    /// [`BusError::Unavailable`] with the reason.
    async fn ping(&self) -> Result<(), BusError>;
}

/// Where a [`Subscription`] gets its deliveries from.
#[async_trait]
pub(crate) trait DeliverySource: Send {
    async fn next(&mut self) -> Result<Delivery, BusError>;
}

/// A durable consumer's stream of deliveries.
pub struct Subscription {
    source: Box<dyn DeliverySource>,
}

impl Subscription {
    pub(crate) fn new(source: Box<dyn DeliverySource>) -> Self {
        Self { source }
    }

    /// The next delivery, waiting until there is one. Carrier outages are waited out
    /// (logged, retried with a back-off), so this returns an error only for an event that
    /// cannot be mapped.
    ///
    /// # Errors
    /// [`BusError::Mapping`] on a corrupt log (in-process carrier).
    pub async fn next(&mut self) -> Result<Delivery, BusError> {
        self.source.next().await
    }
}

/// How a delivery is settled.
pub(crate) enum Acker {
    Nats(Box<async_nats::jetstream::Message>),
    InProcess(in_process::Ack),
}

/// One integration event handed to a consumer, to be acked once handled.
pub struct Delivery {
    event: IntegrationEvent,
    attempt: u64,
    acker: Acker,
}

impl Delivery {
    pub(crate) fn new(event: IntegrationEvent, attempt: u64, acker: Acker) -> Self {
        Self {
            event,
            attempt,
            acker,
        }
    }

    /// The event.
    pub fn event(&self) -> &IntegrationEvent {
        &self.event
    }

    /// 1 for the first delivery of this event to this consumer, then 2, 3…
    pub fn attempt(&self) -> u64 {
        self.attempt
    }

    /// Marks the event handled: the consumer will not see it again, also after a restart.
    /// Returns once the carrier has recorded the ack.
    ///
    /// # Errors
    /// [`BusError::Unavailable`] when the ack was not recorded; the event may then be
    /// delivered again.
    pub async fn ack(self) -> Result<(), BusError> {
        match self.acker {
            Acker::Nats(message) => message.double_ack().await.map_err(BusError::unavailable),
            Acker::InProcess(ack) => ack.ack().await,
        }
    }

    /// Asks for the event to be delivered again at once (a failed attempt).
    ///
    /// # Errors
    /// [`BusError::Unavailable`] when the carrier did not take it; the event is then
    /// delivered again after the ack wait.
    pub async fn nak(self) -> Result<(), BusError> {
        match self.acker {
            Acker::Nats(message) => message
                .ack_with(async_nats::jetstream::AckKind::Nak(None))
                .await
                .map_err(BusError::unavailable),
            Acker::InProcess(ack) => {
                ack.nak();
                Ok(())
            }
        }
    }
}

/// Waits between retries: 50 ms doubling to 5 s; reset after a success.
pub(crate) struct Backoff {
    next: std::time::Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            next: Self::INITIAL,
        }
    }
}

impl Backoff {
    const INITIAL: std::time::Duration = std::time::Duration::from_millis(50);
    const MAX: std::time::Duration = std::time::Duration::from_secs(5);

    pub(crate) async fn wait(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(Self::MAX);
    }

    pub(crate) fn reset(&mut self) {
        self.next = Self::INITIAL;
    }
}

/// Checks a durable consumer's name: it becomes a JetStream consumer name or a checkpoint
/// key, so it is kept to `A-Za-z0-9_-`.
pub(crate) fn validate_consumer(name: &str) -> Result<(), BusError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(BusError::Invalid(format!(
            "consumer name {name:?} must be 1..=64 characters of A-Za-z0-9_-"
        )))
    }
}

/// Checks subject filters: at least one, each under `emporium.` and well formed.
pub(crate) fn validate_filters(filters: &[&str]) -> Result<(), BusError> {
    if filters.is_empty() {
        return Err(BusError::Invalid("at least one subject filter".into()));
    }
    for filter in filters {
        let tokens: Vec<&str> = filter.split('.').collect();
        let well_formed = tokens.first() == Some(&event::SUBJECT_ROOT)
            && tokens.len() > 1
            && tokens.iter().enumerate().all(|(i, t)| {
                !t.is_empty()
                    && (*t == "*"
                        || (*t == ">" && i == tokens.len() - 1)
                        || t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
            });
        if !well_formed {
            return Err(BusError::Invalid(format!(
                "subject filter {filter:?} must look like emporium.order.> or emporium.*.created"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_names_are_checked() {
        assert!(validate_consumer("notifier-email_1").is_ok());
        for bad in ["", "a.b", "a b", "a*", ">", &"x".repeat(65)] {
            assert!(validate_consumer(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn filters_are_checked() {
        assert!(
            validate_filters(&["emporium.>", "emporium.order.*", "emporium.*.created"]).is_ok()
        );
        for bad in [
            "",
            "order.placed",
            "emporium",
            "emporium.>.x",
            "emporium..x",
            "emporium.order placed",
        ] {
            assert!(validate_filters(&[bad]).is_err(), "{bad:?}");
        }
        assert!(validate_filters(&[]).is_err());
    }
}
