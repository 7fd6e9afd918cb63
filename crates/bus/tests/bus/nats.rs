//! The JetStream carrier: dedupe by id, durable consumers that resume after their last
//! ack, redelivery of what was not acked, filters, and an outage.
use std::time::Duration;

use bus::{
    Bus, Subject,
    testsupport::{NatsServer, TestNats, eventually, isolated_config},
};

use crate::support::synthetic;

fn batch(positions: std::ops::RangeInclusive<u64>) -> Vec<bus::IntegrationEvent> {
    positions
        .map(|p| {
            let subject = if p % 2 == 0 {
                Subject::OrderPlaced
            } else {
                Subject::ProductCreated
            };
            synthetic(p, subject)
        })
        .collect()
}

async fn receive(subscription: &mut bus::Subscription) -> bus::Delivery {
    tokio::time::timeout(Duration::from_secs(30), subscription.next())
        .await
        .expect("a delivery within 30 s")
        .expect("a delivery")
}

#[tokio::test]
async fn republished_events_are_stored_once() {
    let Some(nats) = TestNats::connect().await else {
        return;
    };
    let events = batch(1..=6);
    nats.bus.publish(&events).await.expect("publish");
    nats.bus.publish(&events[2..]).await.expect("republish");
    nats.bus.publish(&events).await.expect("republish all");
    assert_eq!(nats.stored().await, 6);

    let mut subscription = nats
        .bus
        .subscribe("all", &["emporium.>"])
        .await
        .expect("subscribe");
    for expected in &events {
        let delivery = receive(&mut subscription).await;
        assert_eq!(delivery.event(), expected);
        assert_eq!(delivery.attempt(), 1);
        delivery.ack().await.expect("ack");
    }
}

#[tokio::test]
async fn a_durable_consumer_resumes_after_its_last_ack() {
    let Some(nats) = TestNats::connect().await else {
        return;
    };
    let events = batch(1..=5);
    nats.bus.publish(&events).await.expect("publish");
    let mut first = nats
        .bus
        .subscribe("mailer", &["emporium.>"])
        .await
        .expect("subscribe");
    for expected in &events[..3] {
        let delivery = receive(&mut first).await;
        assert_eq!(delivery.event(), expected);
        delivery.ack().await.expect("ack");
    }
    drop(first);

    // A restarted consumer (a new connection, even) sees only what it had not acked.
    let again = bus::NatsBus::connect_now(nats.bus.config().clone())
        .await
        .expect("reconnect");
    let mut second = again
        .subscribe("mailer", &["emporium.>"])
        .await
        .expect("subscribe");
    for expected in &events[3..] {
        let delivery = receive(&mut second).await;
        assert_eq!(delivery.event(), expected);
        delivery.ack().await.expect("ack");
    }
    let more = batch(6..=6);
    nats.bus.publish(&more).await.expect("publish more");
    assert_eq!(receive(&mut second).await.event(), &more[0]);
}

#[tokio::test]
async fn unacked_and_nakked_deliveries_come_again() {
    let Some(nats) = TestNats::connect().await else {
        return;
    };
    let events = batch(1..=2);
    nats.bus.publish(&events).await.expect("publish");
    let mut subscription = nats
        .bus
        .subscribe("flaky", &["emporium.>"])
        .await
        .expect("subscribe");

    let first = receive(&mut subscription).await;
    assert_eq!(first.event(), &events[0]);
    assert_eq!(first.attempt(), 1);
    first.nak().await.expect("nak");
    // The nak'ed event comes again (the other one may come in between: ack it).
    let again = next_of(&mut subscription, &events[0]).await;
    assert_eq!(again.attempt(), 2);
    // Not acked at all: after the ack wait (2 s in tests) it comes a third time.
    drop(again);
    let third = next_of(&mut subscription, &events[0]).await;
    assert_eq!(third.attempt(), 3);
    third.ack().await.expect("ack");
}

/// The next delivery of `wanted`, acking every other delivery on the way.
async fn next_of(
    subscription: &mut bus::Subscription,
    wanted: &bus::IntegrationEvent,
) -> bus::Delivery {
    loop {
        let delivery = receive(subscription).await;
        if delivery.event() == wanted {
            return delivery;
        }
        delivery.ack().await.expect("ack");
    }
}

#[tokio::test]
async fn filters_select_subjects() {
    let Some(nats) = TestNats::connect().await else {
        return;
    };
    let events = vec![
        synthetic(1, Subject::OrderPlaced),
        synthetic(2, Subject::ProductCreated),
        synthetic(3, Subject::OrderShipped),
        synthetic(4, Subject::StockAdjusted),
        synthetic(5, Subject::CustomerRegistered),
    ];
    nats.bus.publish(&events).await.expect("publish");

    let mut orders = nats
        .bus
        .subscribe("orders", &["emporium.order.>"])
        .await
        .expect("subscribe");
    for expected in [&events[0], &events[2]] {
        let delivery = receive(&mut orders).await;
        assert_eq!(delivery.event(), expected);
        delivery.ack().await.expect("ack");
    }
    // Several filters (applied by the consumer over the whole stream).
    let mut mixed = nats
        .bus
        .subscribe("mixed", &["emporium.stock.adjusted", "emporium.customer.*"])
        .await
        .expect("subscribe");
    for expected in [&events[3], &events[4]] {
        let delivery = receive(&mut mixed).await;
        assert_eq!(delivery.event(), expected);
        delivery.ack().await.expect("ack");
    }
    assert!(matches!(
        nats.bus.subscribe("bad name", &["emporium.>"]).await,
        Err(bus::BusError::Invalid(_))
    ));
    assert!(matches!(
        nats.bus.subscribe("ok", &["orders.>"]).await,
        Err(bus::BusError::Invalid(_))
    ));
}

#[tokio::test]
async fn an_outage_fails_publishing_until_the_server_is_back() {
    let Some(mut server) = NatsServer::start().await else {
        return;
    };
    let bus = bus::NatsBus::connect(isolated_config(&server.url()))
        .await
        .expect("connect");
    bus.publish(&batch(1..=2)).await.expect("publish");
    bus.ping().await.expect("ping");

    server.kill();
    assert!(
        bus.publish(&batch(3..=3)).await.is_err(),
        "no server, no ack"
    );
    assert!(bus.ping().await.is_err());

    server.restart().await;
    let events = batch(3..=4);
    eventually("publishing after the restart", || {
        let (bus, events) = (&bus, events.clone());
        async move { bus.publish(&events).await.is_ok() }
    })
    .await;
    let mut subscription = bus
        .subscribe("after", &["emporium.>"])
        .await
        .expect("subscribe");
    let mut positions = Vec::new();
    for _ in 0..4 {
        let delivery = receive(&mut subscription).await;
        positions.push(delivery.event().position);
        delivery.ack().await.expect("ack");
    }
    assert_eq!(
        positions,
        [1, 2, 3, 4],
        "nothing lost across the restart, nothing twice"
    );
    bus.ping().await.expect("ping after the restart");
}
