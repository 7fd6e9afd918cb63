//! The mapper's look-ups in the log: the customer of an order, and the parcel of a shipped
//! order, whether the facts are in the batch at hand or only in the log.
use bus::{Mapper, Subject};
use domain::order::OrderStatus;
use eventstore::StreamId;
use serde_json::json;

use crate::support::{Db, customer, moved, order_id, placed, shipment};

crate::backend_tests!(facts_come_from_the_batch_or_the_log);

async fn facts_come_from_the_batch_or_the_log(db: Db) {
    use OrderStatus::{Packed, Paid, Placed, Shipped};
    let stream = StreamId::of("order", order_id(1));
    db.append(&stream, &[placed(1, 7)]).await;
    db.append(&stream, &[moved(Placed, Paid)]).await;
    db.append(&stream, &[moved(Paid, Packed)]).await;
    db.append(&stream, &[shipment(42), moved(Packed, Shipped)])
        .await;
    let events = db.store.read_all(0, 100).await.expect("read");
    assert_eq!(events.len(), 5);

    let whole = Mapper::new(db.store.clone())
        .map_batch(&events)
        .await
        .expect("map");
    // One event at a time, each by a fresh mapper: every fact comes from the log.
    let mut alone = Vec::new();
    for event in &events {
        alone.extend(
            Mapper::new(db.store.clone())
                .map_batch(std::slice::from_ref(event))
                .await
                .expect("map"),
        );
    }
    assert_eq!(whole, alone);
    let kinds: Vec<_> = whole.iter().map(|e| e.kind().expect("known")).collect();
    assert_eq!(
        kinds,
        [
            Subject::OrderPlaced,
            Subject::OrderPaid,
            Subject::OrderPacked,
            Subject::ShipmentCreated,
            Subject::OrderShipped,
        ]
    );
    for event in &whole {
        assert_eq!(
            event.data["customerId"],
            json!(customer(7)),
            "{}",
            event.subject
        );
    }
    assert_eq!(
        whole[4].data["shipment"],
        json!({"shipmentId": uuid::Uuid::from_u128(42), "carrier": "DHL", "trackingNumber": "JJD42"})
    );
}
