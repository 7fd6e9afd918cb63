//! The in-process carrier: the log read from each consumer's checkpoint.
use std::{sync::Arc, time::Duration};

use bus::{Bus, Delivery, InProcessBus, InProcessConfig, IntegrationEvent, Subscription};
use domain::order::OrderStatus;
use eventstore::StreamId;

use crate::support::{Db, moved, order_id, placed, scripted_history};

crate::backend_tests!(
    a_consumer_gets_every_event_in_order_and_resumes_after_a_restart,
    unacked_deliveries_come_again_also_after_a_restart,
    new_events_reach_a_waiting_subscriber,
);

fn config() -> InProcessConfig {
    InProcessConfig {
        ack_wait: Duration::from_secs(2),
        batch_size: 7,
        idle_poll: Duration::from_millis(50),
        ..InProcessConfig::default()
    }
}

fn bus_of(db: &Db) -> InProcessBus {
    InProcessBus::new(db.store.clone(), db.pool.clone(), config())
}

async fn receive(subscription: &mut Subscription) -> Delivery {
    tokio::time::timeout(Duration::from_secs(30), subscription.next())
        .await
        .expect("a delivery within 30 s")
        .expect("a delivery")
}

async fn checkpoint(db: &Db, consumer: &str) -> i64 {
    sqlx::query_scalar("SELECT position FROM projection_checkpoints WHERE name = $1")
        .bind(bus::in_process::checkpoint_name(consumer))
        .fetch_one(&db.pool)
        .await
        .expect("checkpoint row")
}

async fn a_consumer_gets_every_event_in_order_and_resumes_after_a_restart(db: Db) {
    scripted_history(&db, 6).await;
    let expected: Vec<IntegrationEvent> = db
        .expected()
        .await
        .into_iter()
        .filter(|e| e.subject.starts_with("emporium.order."))
        .collect();
    // 6 placed, 6 paid, 2 cancelled, 4 packed, shipped and delivered.
    assert_eq!(expected.len(), 6 + 6 + 2 + 4 * 3);

    let first_bus = bus_of(&db);
    let mut first = first_bus
        .subscribe("mailer", &["emporium.order.>"])
        .await
        .expect("subscribe");
    let split = 10;
    for want in &expected[..split] {
        let delivery = receive(&mut first).await;
        assert_eq!(delivery.event(), want);
        assert_eq!(delivery.attempt(), 1);
        delivery.ack().await.expect("ack");
    }
    assert_eq!(
        checkpoint(&db, "mailer").await,
        i64::try_from(expected[split].position - 1).unwrap()
    );
    drop(first);
    drop(first_bus);

    // A new process: a new bus over the same database resumes after the last ack.
    let second_bus = bus_of(&db);
    let mut second = second_bus
        .subscribe("mailer", &["emporium.order.>"])
        .await
        .expect("subscribe");
    for want in &expected[split..] {
        let delivery = receive(&mut second).await;
        assert_eq!(delivery.event(), want);
        assert_eq!(delivery.attempt(), 1);
        delivery.ack().await.expect("ack");
    }
    // Caught up: the checkpoint is past the last order event, whatever follows it.
    let head = db.store.head_position().await.expect("head");
    assert_eq!(
        checkpoint(&db, "mailer").await,
        i64::try_from(head).unwrap()
    );

    // Another consumer is independent and starts from the beginning.
    let mut other = second_bus
        .subscribe("analytics", &["emporium.product.*"])
        .await
        .expect("subscribe");
    let delivery = receive(&mut other).await;
    assert_eq!(delivery.event().subject, "emporium.product.created");
}

async fn unacked_deliveries_come_again_also_after_a_restart(db: Db) {
    scripted_history(&db, 2).await;
    let expected: Vec<IntegrationEvent> = db
        .expected()
        .await
        .into_iter()
        .filter(|e| e.subject == "emporium.order.placed")
        .collect();
    assert_eq!(expected.len(), 2);

    let bus = bus_of(&db);
    let mut subscription = bus
        .subscribe("flaky", &["emporium.order.placed"])
        .await
        .expect("subscribe");
    let first = receive(&mut subscription).await;
    assert_eq!(first.event(), &expected[0]);
    first.nak().await.expect("nak");
    let again = receive(&mut subscription).await;
    assert_eq!(again.event(), &expected[0], "a nak'ed delivery comes first");
    assert_eq!(again.attempt(), 2);
    drop(again);
    // The second event is delivered while the first waits for its ack wait to pass.
    let second = receive(&mut subscription).await;
    assert_eq!(second.event(), &expected[1]);
    second.ack().await.expect("ack");
    let third = receive(&mut subscription).await;
    assert_eq!(
        third.event(),
        &expected[0],
        "redelivered after the ack wait"
    );
    assert_eq!(third.attempt(), 3);
    drop(third);
    // The second was acked, the first was not: the checkpoint stays before the first.
    assert_eq!(
        checkpoint(&db, "flaky").await,
        i64::try_from(expected[0].position - 1).unwrap()
    );
    drop(subscription);
    drop(bus);

    let restarted = bus_of(&db);
    let mut subscription = restarted
        .subscribe("flaky", &["emporium.order.placed"])
        .await
        .expect("subscribe");
    let delivery = receive(&mut subscription).await;
    assert_eq!(delivery.event(), &expected[0], "unacked before the restart");
    delivery.ack().await.expect("ack");
    // Acked before the restart, but above the lowest unacked one: at-least-once.
    let delivery = receive(&mut subscription).await;
    assert_eq!(delivery.event(), &expected[1]);
    delivery.ack().await.expect("ack");
}

async fn new_events_reach_a_waiting_subscriber(db: Db) {
    let bus = Arc::new(bus_of(&db));
    let mut subscription = bus
        .subscribe("live", &["emporium.order.>"])
        .await
        .expect("subscribe");
    let waiting = tokio::spawn(async move { receive(&mut subscription).await.event().clone() });
    let stream = StreamId::of("order", order_id(1));
    db.append(&stream, &[placed(1, 1)]).await;
    bus.publish(&[]).await.expect("wake");
    let event = waiting.await.expect("subscriber");
    assert_eq!(event.subject, "emporium.order.placed");
    db.append(&stream, &[moved(OrderStatus::Placed, OrderStatus::Paid)])
        .await;
    let mut subscription = bus
        .subscribe("live", &["emporium.order.>"])
        .await
        .expect("subscribe again");
    // Same consumer, same process: the unacked `placed` comes again after its ack wait,
    // and the newer `paid` comes too.
    let mut got = Vec::new();
    for _ in 0..2 {
        let delivery = receive(&mut subscription).await;
        got.push((
            delivery.event().subject.clone(),
            delivery.attempt(),
            delivery.event().data["customerId"].to_string(),
        ));
        delivery.ack().await.expect("ack");
    }
    got.sort();
    let customer = serde_json::json!(crate::support::customer(1)).to_string();
    assert_eq!(
        got,
        [
            ("emporium.order.paid".to_owned(), 1, customer.clone()),
            ("emporium.order.placed".to_owned(), 2, customer),
        ]
    );
}
