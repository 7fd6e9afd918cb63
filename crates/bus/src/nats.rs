//! The NATS JetStream carrier.
//!
//! - One stream, `EMPORIUM` by default, on subjects `emporium.>`, file storage, a duplicate
//!   window of two minutes. It is created at start when missing; an existing stream keeps
//!   every setting an operator gave it (replicas, limits…) except its subjects and
//!   duplicate window, which are brought to ours. When the server lost it (or was not
//!   there at start), the next publish or subscribe creates it.
//! - Publishing pipelines every event of a batch with `Nats-Msg-Id` = the domain event's
//!   id, then awaits each `PublishAck`: a batch is accepted only when every ack has come.
//!   JetStream drops an id it has stored within the duplicate window, so a republished
//!   batch (after a crash between publish and checkpoint, or a lost ack) is stored once.
//! - Subscribers are durable pull consumers with explicit acks and an ack wait: an unacked
//!   message is delivered again, and a consumer resumes after its last ack.
//! - The client reconnects forever; publishing during an outage fails after the request
//!   timeout (the caller retries), and subscriptions wait for the server to return.
//!
//! A `namespace` puts every subject under `{namespace}.` on the wire (tests use it, with
//! their own stream name, to share one server without seeing each other's events); the
//! events themselves always say `emporium.…`.
use std::time::Duration;

use async_nats::jetstream::{
    self, AckKind, ErrorCode,
    consumer::{AckPolicy, DeliverPolicy, PullConsumer, pull},
    context::GetStreamErrorKind,
    message::PublishMessage,
    stream::{self, StorageType},
};
use async_trait::async_trait;
use futures::StreamExt;
use tokio::sync::Mutex;

use crate::{
    Acker, Bus, BusError, BusKind, Delivery, DeliverySource, IntegrationEvent, Subscription,
    event::{SUBJECT_ROOT, subject_matches},
    validate_consumer, validate_filters,
};

/// How to reach NATS and shape the stream and consumers.
#[derive(Clone, Debug)]
pub struct NatsConfig {
    /// Server URL(s), e.g. `nats://127.0.0.1:4222` (comma-separated for a cluster).
    pub url: String,
    /// The JetStream stream's name.
    pub stream: String,
    /// Wire subjects are `{namespace}.emporium.…` when set (isolation on a shared server).
    pub namespace: Option<String>,
    /// How long JetStream remembers message ids to drop duplicates. It must cover the
    /// longest time between publishing an event and publishing it again (a publisher that
    /// crashed before its checkpoint and restarted).
    pub duplicate_window: Duration,
    /// How long a consumer has to ack a delivery before it is delivered again.
    pub ack_wait: Duration,
    /// Most deliveries a consumer may hold unacked.
    pub max_ack_pending: i64,
    /// Timeout of JetStream API requests and of each publish's ack.
    pub request_timeout: Duration,
}

impl NatsConfig {
    /// The defaults: stream `EMPORIUM`, no namespace, a 2-minute duplicate window, a
    /// 30-second ack wait, 1,000 unacked deliveries per consumer, 5-second requests.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            stream: "EMPORIUM".into(),
            namespace: None,
            duplicate_window: Duration::from_secs(120),
            ack_wait: Duration::from_secs(30),
            max_ack_pending: 1_000,
            request_timeout: Duration::from_secs(5),
        }
    }
}

/// Integration events on NATS JetStream.
pub struct NatsBus {
    client: async_nats::Client,
    js: jetstream::Context,
    config: NatsConfig,
    /// Whether the stream is known to exist with our settings.
    stream_ready: Mutex<bool>,
}

impl NatsBus {
    /// Connects to NATS and makes sure the stream exists. A server that is down is waited
    /// for in the background (the client reconnects forever): this returns at once, and
    /// the stream is created by the first publish or subscribe that reaches the server.
    ///
    /// # Errors
    /// When the URL is unusable.
    pub async fn connect(config: NatsConfig) -> Result<Self, BusError> {
        let options = async_nats::ConnectOptions::new()
            .name("emporium")
            .retry_on_initial_connect();
        Self::with_options(config, options).await
    }

    /// Like [`NatsBus::connect`], but fails when the server does not answer now.
    ///
    /// # Errors
    /// When the server cannot be reached or the stream cannot be created.
    pub async fn connect_now(config: NatsConfig) -> Result<Self, BusError> {
        let options = async_nats::ConnectOptions::new()
            .name("emporium")
            .connection_timeout(config.request_timeout);
        let bus = Self::with_options(config, options).await?;
        bus.ensure_stream().await?;
        Ok(bus)
    }

    async fn with_options(
        config: NatsConfig,
        options: async_nats::ConnectOptions,
    ) -> Result<Self, BusError> {
        let client = options
            .connect(config.url.as_str())
            .await
            .map_err(BusError::unavailable)?;
        let js = jetstream::ContextBuilder::new()
            .timeout(config.request_timeout)
            .build(client.clone());
        let bus = Self {
            client,
            js,
            config,
            stream_ready: Mutex::new(false),
        };
        if let Err(err) = bus.ensure_stream().await {
            tracing::warn!(error = %err, stream = %bus.config.stream, "JetStream stream not ready yet; publishing will create it");
        }
        Ok(bus)
    }

    /// The settings in use.
    pub fn config(&self) -> &NatsConfig {
        &self.config
    }

    /// The JetStream context (tests inspect the stream with it).
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    fn wire(&self, subject: &str) -> String {
        match &self.config.namespace {
            Some(namespace) => format!("{namespace}.{subject}"),
            None => subject.to_owned(),
        }
    }

    /// Creates the stream, or brings an existing one's subjects and duplicate window to
    /// ours, keeping every other setting.
    async fn ensure_stream(&self) -> Result<(), BusError> {
        let mut ready = self.stream_ready.lock().await;
        if *ready {
            return Ok(());
        }
        let subjects = vec![self.wire(&format!("{SUBJECT_ROOT}.>"))];
        match self.js.get_stream(&self.config.stream).await {
            Ok(mut existing) => {
                let info = existing.info().await.map_err(BusError::unavailable)?;
                let mut config = info.config.clone();
                if config.subjects != subjects
                    || config.duplicate_window != self.config.duplicate_window
                {
                    config.subjects = subjects;
                    config.duplicate_window = self.config.duplicate_window;
                    self.js
                        .update_stream(config)
                        .await
                        .map_err(BusError::unavailable)?;
                    tracing::info!(stream = %self.config.stream, "JetStream stream updated");
                }
            }
            Err(err) if is_stream_not_found(err.kind()) => {
                self.js
                    .create_stream(stream::Config {
                        name: self.config.stream.clone(),
                        description: Some("Emporium integration events".into()),
                        subjects,
                        storage: StorageType::File,
                        duplicate_window: self.config.duplicate_window,
                        ..stream::Config::default()
                    })
                    .await
                    .map_err(BusError::unavailable)?;
                tracing::info!(stream = %self.config.stream, "JetStream stream created");
            }
            Err(err) => return Err(BusError::unavailable(err)),
        }
        *ready = true;
        Ok(())
    }

    /// After a failure, check the stream again before the next use (the server may have
    /// lost it).
    async fn recheck_stream(&self) {
        *self.stream_ready.lock().await = false;
    }

    async fn publish_all(&self, events: &[IntegrationEvent]) -> Result<(), BusError> {
        let mut acks = Vec::with_capacity(events.len());
        for event in events {
            let payload = serde_json::to_vec(event)
                .map_err(|err| BusError::Invalid(format!("unserialisable event: {err}")))?;
            let message = PublishMessage::build()
                .payload(payload.into())
                .message_id(event.id.to_string());
            let ack = self
                .js
                .send_publish(self.wire(&event.subject), message)
                .await
                .map_err(|err| BusError::Unavailable(format!("publishing {}: {err}", event.id)))?;
            acks.push((event.id, ack));
        }
        for (id, ack) in acks {
            let ack = ack
                .await
                .map_err(|err| BusError::Unavailable(format!("no ack for {id}: {err}")))?;
            if ack.duplicate {
                tracing::debug!(%id, "JetStream dropped a duplicate");
            }
        }
        Ok(())
    }

    fn consumer_config(&self, name: &str, filters: &[&str]) -> pull::Config {
        // One filter is applied by the server; several are applied here over the whole
        // stream (servers before 2.10 take only one filter per consumer).
        let filter_subject = match filters {
            [one] => self.wire(one),
            _ => self.wire(&format!("{SUBJECT_ROOT}.>")),
        };
        pull::Config {
            durable_name: Some(name.to_owned()),
            description: Some(format!("Emporium consumer {name}")),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            ack_wait: self.config.ack_wait,
            max_deliver: -1,
            max_ack_pending: self.config.max_ack_pending,
            filter_subject,
            ..pull::Config::default()
        }
    }
}

/// Creates the durable consumer, or updates it to `config` (create-or-update: the same
/// call finds it again after a server restart).
async fn create_consumer(
    js: &jetstream::Context,
    stream: &str,
    config: pull::Config,
) -> Result<PullConsumer, BusError> {
    let name = config.durable_name.clone().unwrap_or_default();
    let stream = js.get_stream(stream).await.map_err(BusError::unavailable)?;
    stream
        .create_consumer(config)
        .await
        .map_err(|err| BusError::Unavailable(format!("consumer {name}: {err}")))
}

fn is_stream_not_found(kind: GetStreamErrorKind) -> bool {
    matches!(kind, GetStreamErrorKind::JetStream(err) if err.error_code() == ErrorCode::STREAM_NOT_FOUND)
}

#[async_trait]
impl Bus for NatsBus {
    fn kind(&self) -> BusKind {
        BusKind::Nats
    }

    async fn publish(&self, events: &[IntegrationEvent]) -> Result<(), BusError> {
        if events.is_empty() {
            return Ok(());
        }
        self.ensure_stream().await?;
        let outcome = self.publish_all(events).await;
        if outcome.is_err() {
            self.recheck_stream().await;
        }
        outcome
    }

    async fn subscribe(&self, consumer: &str, filters: &[&str]) -> Result<Subscription, BusError> {
        validate_consumer(consumer)?;
        validate_filters(filters)?;
        self.ensure_stream().await?;
        let config = self.consumer_config(consumer, filters);
        let pull = create_consumer(&self.js, &self.config.stream, config.clone()).await?;
        Ok(Subscription::new(Box::new(NatsSource {
            bus: NatsHandle {
                js: self.js.clone(),
                stream: self.config.stream.clone(),
            },
            name: consumer.to_owned(),
            config,
            consumer: pull,
            filters: filters.iter().map(|f| (*f).to_owned()).collect(),
            messages: None,
            backoff: crate::Backoff::default(),
        })))
    }

    async fn ping(&self) -> Result<(), BusError> {
        match self.client.connection_state() {
            async_nats::connection::State::Connected => {}
            state => return Err(BusError::Unavailable(format!("NATS is {state}"))),
        }
        // The account info request proves JetStream answers (read as plain JSON: its
        // shape differs between server versions).
        let info: serde_json::Value = self
            .js
            .request("INFO", &serde_json::json!({}))
            .await
            .map_err(|err| BusError::Unavailable(format!("JetStream: {err}")))?;
        match info.get("error") {
            Some(error) => Err(BusError::Unavailable(format!("JetStream: {error}"))),
            None => Ok(()),
        }
    }
}

/// What a subscription needs to find its consumer again.
struct NatsHandle {
    js: jetstream::Context,
    stream: String,
}

struct NatsSource {
    bus: NatsHandle,
    name: String,
    config: pull::Config,
    consumer: PullConsumer,
    filters: Vec<String>,
    messages: Option<pull::Stream>,
    backoff: crate::Backoff,
}

impl NatsSource {
    /// Finds the durable consumer again (it survives server restarts with its stream's
    /// storage; the server may also have been replaced).
    async fn refresh_consumer(&mut self) -> Result<(), BusError> {
        self.consumer =
            create_consumer(&self.bus.js, &self.bus.stream, self.config.clone()).await?;
        Ok(())
    }
}

#[async_trait]
impl DeliverySource for NatsSource {
    async fn next(&mut self) -> Result<Delivery, BusError> {
        loop {
            let messages = match &mut self.messages {
                Some(messages) => messages,
                None => match self.consumer.messages().await {
                    Ok(messages) => self.messages.insert(messages),
                    Err(err) => {
                        tracing::warn!(consumer = %self.name, error = %err, "cannot pull from JetStream; retrying");
                        self.backoff.wait().await;
                        if let Err(err) = self.refresh_consumer().await {
                            tracing::debug!(consumer = %self.name, error = %err, "consumer not found again yet");
                        }
                        continue;
                    }
                },
            };
            match messages.next().await {
                Some(Ok(message)) => {
                    self.backoff.reset();
                    let attempt = message
                        .info()
                        .map_or(1, |info| u64::try_from(info.delivered).unwrap_or(1));
                    match serde_json::from_slice::<IntegrationEvent>(&message.payload) {
                        Ok(event)
                            if self
                                .filters
                                .iter()
                                .any(|f| subject_matches(f, &event.subject)) =>
                        {
                            return Ok(Delivery::new(
                                event,
                                attempt,
                                Acker::Nats(Box::new(message)),
                            ));
                        }
                        Ok(_) => {
                            // Not for this consumer (several filters are applied here).
                            if let Err(err) = message.ack().await {
                                tracing::debug!(error = %err, "ack of a filtered message failed; it comes again");
                            }
                        }
                        Err(err) => {
                            tracing::error!(consumer = %self.name, subject = %message.subject, error = %err, "not an integration event; terminated");
                            if let Err(err) = message.ack_with(AckKind::Term).await {
                                tracing::debug!(error = %err, "term failed; it comes again");
                            }
                        }
                    }
                }
                Some(Err(err)) => {
                    tracing::warn!(consumer = %self.name, error = %err, "JetStream consumer interrupted; resuming");
                    self.messages = None;
                    self.backoff.wait().await;
                    if let Err(err) = self.refresh_consumer().await {
                        tracing::debug!(consumer = %self.name, error = %err, "consumer not found again yet");
                    }
                }
                None => {
                    self.messages = None;
                    self.backoff.wait().await;
                }
            }
        }
    }
}
