//! The embedded carrier: the log is the bus.
//!
//! Without NATS there is nothing to publish to, and nothing needs to be: every integration
//! event is already in the event log, in order, durably. A subscriber reads the log from
//! its own checkpoint (row `bus:<consumer>` of `projection_checkpoints`), maps each event
//! with the same pure function the NATS publisher uses, and its acks advance the
//! checkpoint. [`Bus::publish`] only wakes subscribers early.
//!
//! Why this and not an in-memory broadcast channel: a channel loses whatever was sent while
//! a subscriber was down or lagging, and everything on a crash; reading the log gives the
//! same guarantees as JetStream (durable per consumer, at-least-once, redelivery) with no
//! second copy of the events and no publisher to run. It works over any event store, so a
//! distributed deployment without NATS can use it too.
//!
//! The checkpoint is the position below which every matching event has been acked:
//! deliveries may be acked in any order, and after a restart the consumer resumes after
//! the lowest unacked one (events acked above it come again: at-least-once). A delivery not
//! acked within the ack wait, or nak'ed, is delivered again before newer events.
use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use async_trait::async_trait;
use chrono::{SecondsFormat, Utc};
use eventstore::{EventStore, Position};
use sqlx::AnyPool;
use tokio::{
    sync::{Notify, watch},
    time::Instant,
};

use crate::{
    Acker, Backoff, Bus, BusError, BusKind, Delivery, DeliverySource, IntegrationEvent, Mapper,
    MappingError, Subscription, subject_matches, validate_consumer, validate_filters,
};

/// How in-process subscriptions read and redeliver.
#[derive(Clone, Debug)]
pub struct InProcessConfig {
    /// How long a consumer has to ack a delivery before it is delivered again.
    pub ack_wait: Duration,
    /// Most log events read at once.
    pub batch_size: usize,
    /// How often to look for other processes' appends when no wake-up arrives.
    pub idle_poll: Duration,
    /// Most deliveries a consumer may hold unacked.
    pub max_ack_pending: usize,
}

impl Default for InProcessConfig {
    fn default() -> Self {
        Self {
            ack_wait: Duration::from_secs(30),
            batch_size: 200,
            idle_poll: Duration::from_millis(250),
            max_ack_pending: 1_000,
        }
    }
}

/// The checkpoint row of in-process consumer `consumer`.
pub fn checkpoint_name(consumer: &str) -> String {
    format!("bus:{consumer}")
}

/// Integration events read straight from the log by each subscriber.
pub struct InProcessBus {
    store: Arc<dyn EventStore>,
    pool: AnyPool,
    config: InProcessConfig,
    mapper: Arc<Mapper>,
    wake: Arc<watch::Sender<u64>>,
    consumers: Mutex<HashMap<String, Arc<Consumer>>>,
}

impl InProcessBus {
    /// A bus over `store`, keeping consumer checkpoints in `pool` (migrated: it holds
    /// `projection_checkpoints`).
    pub fn new(store: Arc<dyn EventStore>, pool: AnyPool, config: InProcessConfig) -> Self {
        Self {
            mapper: Arc::new(Mapper::new(store.clone())),
            store,
            pool,
            config,
            wake: Arc::new(watch::Sender::new(0)),
            consumers: Mutex::new(HashMap::new()),
        }
    }

    async fn open_consumer(&self, name: &str, filters: &[&str]) -> Result<Arc<Consumer>, BusError> {
        let filters: Vec<String> = filters.iter().map(|f| (*f).to_owned()).collect();
        if let Some(existing) = self.consumers_lock().get(name) {
            if existing.filters != filters {
                return Err(BusError::Invalid(format!(
                    "consumer {name} is subscribed here with other filters"
                )));
            }
            return Ok(existing.clone());
        }
        let checkpoint = checkpoint_name(name);
        let stored = load_checkpoint(&self.pool, &checkpoint).await?;
        let mut consumers = self.consumers_lock();
        // Another subscribe may have opened it meanwhile: share that one.
        let consumer = consumers
            .entry(name.to_owned())
            .or_insert_with(|| {
                Arc::new(Consumer {
                    name: name.to_owned(),
                    checkpoint,
                    filters,
                    pool: self.pool.clone(),
                    reader: tokio::sync::Mutex::new(()),
                    state: Mutex::new(State {
                        entries: BTreeMap::new(),
                        read_up_to: stored,
                        committed: stored,
                    }),
                    settled: Notify::new(),
                    commit: tokio::sync::Mutex::new(()),
                })
            })
            .clone();
        Ok(consumer)
    }

    fn consumers_lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Consumer>>> {
        self.consumers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Bus for InProcessBus {
    fn kind(&self) -> BusKind {
        BusKind::InProcess
    }

    /// The events are already in the log: only wakes the subscribers.
    async fn publish(&self, _events: &[IntegrationEvent]) -> Result<(), BusError> {
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
        Ok(())
    }

    async fn subscribe(&self, consumer: &str, filters: &[&str]) -> Result<Subscription, BusError> {
        validate_consumer(consumer)?;
        validate_filters(filters)?;
        let consumer = self.open_consumer(consumer, filters).await?;
        Ok(Subscription::new(Box::new(InProcessSource {
            consumer,
            store: self.store.clone(),
            mapper: self.mapper.clone(),
            config: self.config.clone(),
            wake: self.wake.clone(),
            backoff: Backoff::default(),
        })))
    }

    async fn ping(&self) -> Result<(), BusError> {
        self.store.ping().await.map_err(BusError::unavailable)
    }
}

/// Creates the checkpoint row at 0 when missing; returns the stored position.
async fn load_checkpoint(pool: &AnyPool, name: &str) -> Result<Position, BusError> {
    sqlx::query(
        "INSERT INTO projection_checkpoints (name, position, updated_at) VALUES ($1, 0, $2) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(now_text())
    .execute(pool)
    .await
    .map_err(BusError::unavailable)?;
    let position: i64 =
        sqlx::query_scalar("SELECT position FROM projection_checkpoints WHERE name = $1")
            .bind(name)
            .fetch_one(pool)
            .await
            .map_err(BusError::unavailable)?;
    u64::try_from(position)
        .map_err(|_| BusError::Unavailable(format!("negative checkpoint {position} for {name}")))
}

fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// An event read from the log and not yet acked.
struct Entry {
    event: IntegrationEvent,
    attempts: u64,
    /// `None`: not delivered yet. `Some(t)`: delivered, to be delivered again at `t`.
    redeliver_at: Option<Instant>,
}

struct State {
    /// Matching events read and not acked, by position.
    entries: BTreeMap<Position, Entry>,
    /// The position of the last log event read.
    read_up_to: Position,
    /// The stored checkpoint.
    committed: Position,
}

impl State {
    /// The position below which every matching event is acked.
    fn done(&self) -> Position {
        self.entries
            .keys()
            .next()
            .map_or(self.read_up_to, |lowest| lowest - 1)
    }
}

/// One durable consumer in this process; every subscription of it shares its state.
struct Consumer {
    name: String,
    checkpoint: String,
    filters: Vec<String>,
    pool: AnyPool,
    /// One subscription reads at a time.
    reader: tokio::sync::Mutex<()>,
    state: Mutex<State>,
    /// Signalled by acks and naks.
    settled: Notify,
    /// Serialises checkpoint writes.
    commit: tokio::sync::Mutex<()>,
}

impl Consumer {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores the checkpoint up to what is done, if that moved.
    async fn commit(&self) -> Result<(), BusError> {
        let _one_writer = self.commit.lock().await;
        let target = {
            let state = self.state();
            let done = state.done();
            if done <= state.committed {
                return Ok(());
            }
            done
        };
        let position = i64::try_from(target)
            .map_err(|_| BusError::Unavailable(format!("position {target} overflows")))?;
        sqlx::query(
            "UPDATE projection_checkpoints SET position = $2, updated_at = $3 \
             WHERE name = $1 AND position < $2",
        )
        .bind(&self.checkpoint)
        .bind(position)
        .bind(now_text())
        .execute(&self.pool)
        .await
        .map_err(BusError::unavailable)?;
        let mut state = self.state();
        state.committed = state.committed.max(target);
        Ok(())
    }
}

/// Settles one in-process delivery.
pub(crate) struct Ack {
    consumer: Arc<Consumer>,
    position: Position,
}

impl Ack {
    pub(crate) async fn ack(self) -> Result<(), BusError> {
        self.consumer.state().entries.remove(&self.position);
        self.consumer.settled.notify_one();
        self.consumer.commit().await
    }

    pub(crate) fn nak(self) {
        if let Some(entry) = self.consumer.state().entries.get_mut(&self.position) {
            entry.redeliver_at = Some(Instant::now());
        }
        self.consumer.settled.notify_one();
    }
}

struct InProcessSource {
    consumer: Arc<Consumer>,
    store: Arc<dyn EventStore>,
    mapper: Arc<Mapper>,
    config: InProcessConfig,
    wake: Arc<watch::Sender<u64>>,
    backoff: Backoff,
}

/// What the next step of a subscription is.
enum Step {
    Deliver(Delivery),
    /// Nothing is due: read the log (`true`) or just wait, until `until` at the latest.
    Wait {
        read_log: bool,
        until: Option<Instant>,
    },
}

impl InProcessSource {
    /// Hands out the lowest due event: a new one (within the unacked limit) or one whose
    /// ack wait ran out.
    fn step(&self) -> Step {
        let now = Instant::now();
        let mut state = self.consumer.state();
        let unacked = state
            .entries
            .values()
            .filter(|e| e.redeliver_at.is_some())
            .count();
        let may_deliver_new = unacked < self.config.max_ack_pending;
        let due = state
            .entries
            .iter_mut()
            .find(|(_, e)| match e.redeliver_at {
                None => may_deliver_new,
                Some(at) => at <= now,
            });
        if let Some((position, entry)) = due {
            entry.attempts += 1;
            entry.redeliver_at = Some(now + self.config.ack_wait);
            let ack = Ack {
                consumer: self.consumer.clone(),
                position: *position,
            };
            return Step::Deliver(Delivery::new(
                entry.event.clone(),
                entry.attempts,
                Acker::InProcess(ack),
            ));
        }
        Step::Wait {
            read_log: state.entries.values().all(|e| e.redeliver_at.is_some()),
            until: state.entries.values().filter_map(|e| e.redeliver_at).min(),
        }
    }

    /// Reads and maps the next events of the log; `Ok(false)` when there were none.
    async fn read_more(&mut self) -> Result<bool, BusError> {
        let after = self.consumer.state().read_up_to;
        let events = match self.store.read_all(after, self.config.batch_size).await {
            Ok(events) => events,
            Err(err) => {
                tracing::warn!(consumer = %self.consumer.name, error = %err, "cannot read the log; retrying");
                self.backoff.wait().await;
                return Ok(true);
            }
        };
        let Some(last) = events.last().map(|e| e.position) else {
            return Ok(false);
        };
        let mapped = match self.mapper.map_batch(&events).await {
            Ok(mapped) => mapped,
            Err(MappingError::Store(err)) => {
                tracing::warn!(consumer = %self.consumer.name, error = %err, "cannot read the log; retrying");
                self.backoff.wait().await;
                return Ok(true);
            }
            Err(err) => return Err(err.into()),
        };
        self.backoff.reset();
        {
            let mut state = self.consumer.state();
            for event in mapped {
                if self
                    .consumer
                    .filters
                    .iter()
                    .any(|f| subject_matches(f, &event.subject))
                {
                    state.entries.insert(
                        event.position,
                        Entry {
                            event,
                            attempts: 0,
                            redeliver_at: None,
                        },
                    );
                }
            }
            state.read_up_to = state.read_up_to.max(last);
        }
        // Events nobody here wants still move the checkpoint along.
        if let Err(err) = self.consumer.commit().await {
            tracing::warn!(consumer = %self.consumer.name, error = %err, "cannot store the checkpoint; it follows with the next ack");
        }
        Ok(true)
    }
}

#[async_trait]
impl DeliverySource for InProcessSource {
    async fn next(&mut self) -> Result<Delivery, BusError> {
        let consumer = self.consumer.clone();
        let _only_reader = consumer.reader.lock().await;
        loop {
            let (read_log, until) = match self.step() {
                Step::Deliver(delivery) => return Ok(delivery),
                Step::Wait { read_log, until } => (read_log, until),
            };
            let seen = self.store.change_marker();
            let mut woken = self.wake.subscribe();
            if read_log && self.read_more().await? {
                continue;
            }
            let poll = if read_log {
                self.config.idle_poll
            } else {
                self.config.ack_wait
            };
            let deadline = until.map_or(Instant::now() + poll, |u| u.min(Instant::now() + poll));
            tokio::select! {
                () = self.store.wait_for_change(seen, poll), if read_log => {}
                _ = woken.changed() => {}
                () = consumer.settled.notified() => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}
