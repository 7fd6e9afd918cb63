//! The integration publisher against real NATS JetStream (each test on a stream and
//! subject namespace of its own, or a server of its own that it stops and starts) and real
//! event stores: every integration event reaches a durable subscriber exactly once and in
//! order, also when the publisher crashes between publishing and its checkpoint, when an
//! ack is lost, and across a NATS restart.
use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use bus::{
    Bus, BusError, BusKind, IntegrationEvent, NatsBus, Subject, Subscription,
    testsupport::{NatsServer, TestNats, isolated_config, stored_messages},
};
use eventstore::RecordedEvent;
use projector::{BatchOutcome, Sink, publisher};

use crate::support::{Db, config, eventually, random_history, spawn};

crate::backend_tests!(
    every_integration_event_reaches_a_subscriber_once_in_order,
    a_crash_between_publish_and_checkpoint_republishes_without_duplicates,
    a_lost_ack_is_retried_without_duplicates,
    a_nats_restart_delays_publishing_and_loses_nothing,
);

/// Every integration event of the log, in order, as the mapping makes them.
async fn expected(db: &Db) -> Vec<IntegrationEvent> {
    let events = db.store.read_all(0, 100_000).await.expect("read");
    bus::Mapper::new(db.store.clone())
        .map_batch(&events)
        .await
        .expect("map")
}

/// Receives `count` deliveries, acking each, and checks that nothing else is pending.
async fn receive_all(subscription: &mut Subscription, count: usize) -> Vec<IntegrationEvent> {
    let mut received = Vec::with_capacity(count);
    while received.len() < count {
        let delivery = tokio::time::timeout(Duration::from_secs(30), subscription.next())
            .await
            .unwrap_or_else(|_| panic!("only {} of {count} events arrived", received.len()))
            .expect("delivery");
        received.push(delivery.event().clone());
        delivery.ack().await.expect("ack");
    }
    received
}

/// The subscriber saw exactly `expected`, and the stream holds each event once.
async fn assert_delivered_once(bus: &NatsBus, expected: &[IntegrationEvent]) {
    let mut subscription = bus
        .subscribe("checker", &["emporium.>"])
        .await
        .expect("subscribe");
    let received = receive_all(&mut subscription, expected.len()).await;
    assert_eq!(received, expected, "every event once, in log order");
    assert_eq!(
        stored_messages(bus).await,
        expected.len() as u64,
        "JetStream stored each event exactly once"
    );
}

fn assert_covers_the_subjects(expected: &[IntegrationEvent]) {
    for subject in [
        Subject::OrderPlaced,
        Subject::OrderPaid,
        Subject::OrderPacked,
        Subject::OrderShipped,
        Subject::OrderCancelled,
        Subject::ShipmentCreated,
        Subject::ProductCreated,
        Subject::ProductUpdated,
        Subject::StockAdjusted,
        Subject::CustomerRegistered,
    ] {
        assert!(
            expected.iter().any(|e| e.kind() == Some(subject)),
            "the history has no {subject}"
        );
    }
}

async fn ensure_checkpoint_row(db: &Db) {
    sqlx::query(
        "INSERT INTO projection_checkpoints (name, position, updated_at) VALUES ($1, 0, 'x') \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(publisher::NAME)
    .execute(&db.pool)
    .await
    .expect("checkpoint row");
}

async fn set_checkpoint(db: &Db, position: u64) {
    sqlx::query("UPDATE projection_checkpoints SET position = $2 WHERE name = $1")
        .bind(publisher::NAME)
        .bind(i64::try_from(position).expect("position"))
        .execute(&db.pool)
        .await
        .expect("set checkpoint");
}

/// Runs the publisher over `bus` until its checkpoint reaches the head, then stops it.
async fn publish_to_head(db: &Db, bus: Arc<dyn Bus>, batch_size: usize) {
    let head = db.head().await;
    let runner = publisher::runner(db.store.clone(), db.pool.clone(), bus, config(batch_size));
    let (task, stop) = spawn(runner);
    db.wait_for_checkpoint(publisher::NAME, head).await;
    let _ = stop.send(());
    task.await.expect("publisher task");
}

async fn every_integration_event_reaches_a_subscriber_once_in_order(db: Db) {
    let Some(nats) = TestNats::connect().await else {
        return;
    };
    let bus = Arc::new(
        NatsBus::connect_now(nats.bus.config().clone())
            .await
            .expect("bus"),
    );
    let history = random_history(4, 160);
    let (first, second) = history.split_at(70);
    db.append_history(first).await;
    // Runs while the rest is appended, in small batches.
    let runner = publisher::runner(db.store.clone(), db.pool.clone(), bus, config(7));
    let (task, stop) = spawn(runner);
    for steps in second.chunks(9) {
        db.append_history(steps).await;
    }
    let head = db.head().await;
    db.wait_for_checkpoint(publisher::NAME, head).await;
    let _ = stop.send(());
    task.await.expect("publisher task");

    let expected = expected(&db).await;
    assert_covers_the_subjects(&expected);
    assert_delivered_once(&nats.bus, &expected).await;
}

async fn a_crash_between_publish_and_checkpoint_republishes_without_duplicates(db: Db) {
    let Some(nats) = TestNats::connect().await else {
        return;
    };
    let bus: Arc<dyn Bus> = Arc::new(
        NatsBus::connect_now(nats.bus.config().clone())
            .await
            .expect("bus"),
    );
    db.append_history(&random_history(8, 120)).await;
    let events = db.store.read_all(0, 100_000).await.expect("read");
    let (first, second) = events.split_at(50);
    let (first, second): (Arc<[RecordedEvent]>, Arc<[RecordedEvent]>) =
        (first.into(), second.into());
    ensure_checkpoint_row(&db).await;
    let sink = publisher::IntegrationPublisher::new(db.store.clone(), bus.clone());

    let outcome = sink.apply_batch(&db.pool, 0, &first).await.expect("batch");
    let committed = first.last().expect("events").position;
    assert!(
        matches!(outcome, BatchOutcome::Committed { checkpoint, .. } if checkpoint == committed)
    );
    let outcome = sink
        .apply_batch(&db.pool, committed, &second)
        .await
        .expect("batch");
    assert!(matches!(outcome, BatchOutcome::Committed { .. }));
    // The process died after publishing the second batch and before its checkpoint
    // committed: the stored checkpoint is still the first batch's.
    set_checkpoint(&db, committed).await;
    assert_eq!(
        projector::checkpoint(&db.pool, publisher::NAME)
            .await
            .expect("checkpoint"),
        committed
    );

    // A restarted publisher republishes the second batch; JetStream drops the duplicates.
    publish_to_head(&db, bus, 13).await;
    assert_delivered_once(&nats.bus, &expected(&db).await).await;
}

/// A real bus whose first `failures` publishes are accepted by NATS but reported as
/// failed, as when the acks are lost on the way back.
struct LostAcks {
    inner: Arc<dyn Bus>,
    failures: AtomicUsize,
}

#[async_trait]
impl Bus for LostAcks {
    fn kind(&self) -> BusKind {
        self.inner.kind()
    }

    async fn publish(&self, events: &[IntegrationEvent]) -> Result<(), BusError> {
        self.inner.publish(events).await?;
        if self
            .failures
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(BusError::Unavailable("ack lost".into()));
        }
        Ok(())
    }

    async fn subscribe(&self, consumer: &str, filters: &[&str]) -> Result<Subscription, BusError> {
        self.inner.subscribe(consumer, filters).await
    }

    async fn ping(&self) -> Result<(), BusError> {
        self.inner.ping().await
    }
}

async fn a_lost_ack_is_retried_without_duplicates(db: Db) {
    let Some(nats) = TestNats::connect().await else {
        return;
    };
    let inner = Arc::new(
        NatsBus::connect_now(nats.bus.config().clone())
            .await
            .expect("bus"),
    );
    let bus = Arc::new(LostAcks {
        inner,
        failures: AtomicUsize::new(3),
    });
    db.append_history(&random_history(21, 90)).await;
    publish_to_head(&db, bus.clone(), 11).await;
    assert_eq!(
        bus.failures.load(Ordering::SeqCst),
        0,
        "every failure was retried"
    );
    assert_delivered_once(&nats.bus, &expected(&db).await).await;
}

/// A real bus that counts failed publishes.
struct Counting {
    inner: Arc<dyn Bus>,
    failed: AtomicUsize,
}

#[async_trait]
impl Bus for Counting {
    fn kind(&self) -> BusKind {
        self.inner.kind()
    }

    async fn publish(&self, events: &[IntegrationEvent]) -> Result<(), BusError> {
        let outcome = self.inner.publish(events).await;
        if outcome.is_err() {
            self.failed.fetch_add(1, Ordering::SeqCst);
        }
        outcome
    }

    async fn subscribe(&self, consumer: &str, filters: &[&str]) -> Result<Subscription, BusError> {
        self.inner.subscribe(consumer, filters).await
    }

    async fn ping(&self) -> Result<(), BusError> {
        self.inner.ping().await
    }
}

async fn a_nats_restart_delays_publishing_and_loses_nothing(db: Db) {
    let Some(mut server) = NatsServer::start().await else {
        return;
    };
    let nats = Arc::new(
        NatsBus::connect_now(isolated_config(&server.url()))
            .await
            .expect("bus"),
    );
    let bus = Arc::new(Counting {
        inner: nats.clone(),
        failed: AtomicUsize::new(0),
    });
    let history = random_history(33, 120);
    let (first, second) = history.split_at(60);
    db.append_history(first).await;
    // A subscriber that is live throughout, the outage included: it keeps what it gets.
    let mut live = nats
        .subscribe("live", &["emporium.>"])
        .await
        .expect("subscribe");
    let seen = Arc::new(std::sync::Mutex::new(Vec::<IntegrationEvent>::new()));
    let listener = tokio::spawn({
        let seen = seen.clone();
        async move {
            while let Ok(delivery) = live.next().await {
                seen.lock().unwrap().push(delivery.event().clone());
                // A lost ack means a redelivery, which the dedupe below absorbs.
                let _ = delivery.ack().await;
            }
        }
    });
    let runner = publisher::runner(db.store.clone(), db.pool.clone(), bus.clone(), config(10));
    let (task, stop) = spawn(runner);
    let published = db.head().await;
    db.wait_for_checkpoint(publisher::NAME, published).await;

    server.kill();
    db.append_history(second).await;
    // The publisher keeps trying and failing; its checkpoint does not pass the first
    // event NATS has not acknowledged (events that publish nothing may pass).
    eventually("publishing to fail twice during the outage", || {
        let bus = bus.clone();
        async move { bus.failed.load(Ordering::SeqCst) >= 2 }
    })
    .await;
    let expected = expected(&db).await;
    let first_unpublished = expected
        .iter()
        .find(|e| e.position > published)
        .expect("integration events after the kill")
        .position;
    let during = projector::checkpoint(&db.pool, publisher::NAME)
        .await
        .expect("checkpoint");
    assert!(
        (published..first_unpublished).contains(&during),
        "checkpoint {during} during the outage"
    );

    server.restart().await;
    let head = db.head().await;
    db.wait_for_checkpoint(publisher::NAME, head).await;
    let _ = stop.send(());
    task.await.expect("publisher task");
    assert_delivered_once(&nats, &expected).await;
    // The live subscriber got every event, after dedupe by id exactly once, in log order.
    let deduped = eventually_value("the live subscriber to see every event", || {
        let mut unique = Vec::new();
        let mut ids = std::collections::HashSet::new();
        for event in seen.lock().unwrap().iter() {
            if ids.insert(event.id) {
                unique.push(event.clone());
            }
        }
        (unique.len() >= expected.len()).then_some(unique)
    })
    .await;
    listener.abort();
    assert_eq!(
        deduped, expected,
        "live through the outage: every event once, in order"
    );
}

/// Polls `check` until it gives `Some`.
async fn eventually_value<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
