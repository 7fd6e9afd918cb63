//! Invariant 3 on PostgreSQL, made deterministic: a transaction holds a lower position
//! open while a later append commits. A naive `position > last` reader would deliver the
//! later event and skip the earlier one for ever; the store must hold the later one back
//! until the earlier transaction has ended, then deliver both in order.
use std::{sync::Arc, time::Duration};

use eventstore::{
    EventStore, ExpectedVersion, NewEvent, StreamId, Subscription, postgres::PostgresConfig,
    testsupport::TestPostgres,
};
use serde_json::json;
use sqlx::{Connection, PgConnection};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_commit_is_not_delivered_before_an_earlier_open_position() {
    let Some(db) = TestPostgres::new().await else {
        return;
    };
    let store: Arc<dyn EventStore> = Arc::new(db.store(&PostgresConfig::default()));

    // A slow appender takes a position and keeps its transaction open.
    let mut slow = PgConnection::connect(&db.url).await.unwrap();
    let mut slow_tx = slow.begin().await.unwrap();
    let slow_position: i64 = sqlx::query_scalar(
        "INSERT INTO events (stream_id, version, event_id, event_type, schema_version, payload, metadata) \
         VALUES ('order-slow', 1, $1, 'Tested', 1, '{}', '{}') RETURNING position",
    )
    .bind(uuid::Uuid::now_v7())
    .fetch_one(&mut *slow_tx)
    .await
    .unwrap();

    // A fast appender takes the next position and commits first.
    let fast = store
        .append(
            &StreamId::new("order-fast").unwrap(),
            ExpectedVersion::NoStream,
            vec![NewEvent::new("Tested", 1, json!({}))],
        )
        .await
        .unwrap();
    assert!(fast.position > u64::try_from(slow_position).unwrap());

    // While the lower position is in flight, readers get nothing past it.
    let mut subscription = Subscription::new(store.clone(), 0);
    let early = tokio::time::timeout(Duration::from_millis(300), subscription.next_batch()).await;
    assert!(
        early.is_err(),
        "delivered {early:?} while a lower position was still in flight"
    );

    slow_tx.commit().await.unwrap();
    let delivered = tokio::time::timeout(Duration::from_secs(10), async {
        let mut seen = Vec::new();
        while seen.len() < 2 {
            seen.extend(subscription.next_batch().await.unwrap());
        }
        seen
    })
    .await
    .expect("both events are delivered once the slow transaction commits");
    let positions: Vec<u64> = delivered.iter().map(|e| e.position).collect();
    assert_eq!(
        positions,
        vec![u64::try_from(slow_position).unwrap(), fast.position]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_position_is_a_hole_not_a_stall() {
    let Some(db) = TestPostgres::new().await else {
        return;
    };
    let store: Arc<dyn EventStore> = Arc::new(db.store(&PostgresConfig::default()));
    let mut conn = PgConnection::connect(&db.url).await.unwrap();
    let mut tx = conn.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO events (stream_id, version, event_id, event_type, schema_version, payload, metadata) \
         VALUES ('order-doomed', 1, $1, 'Tested', 1, '{}', '{}')",
    )
    .bind(uuid::Uuid::now_v7())
    .execute(&mut *tx)
    .await
    .unwrap();
    let kept = store
        .append(
            &StreamId::new("order-kept").unwrap(),
            ExpectedVersion::NoStream,
            vec![NewEvent::new("Tested", 1, json!({}))],
        )
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    let mut subscription = Subscription::new(store, 0);
    let batch = tokio::time::timeout(Duration::from_secs(10), subscription.next_batch())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        batch.iter().map(|e| e.position).collect::<Vec<_>>(),
        vec![kept.position]
    );
}
