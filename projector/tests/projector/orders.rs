//! The orders projection's rows after a known history: placed, paid, packed, shipped (two
//! parcels), delivered; and one cancelled. With the orders per day and status.
use std::sync::Arc;

use domain::{
    account::Role,
    ids::ShipmentId,
    order::{Actor, OrderEvent, OrderStatus},
};
use projector::OrdersProjection;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::support::{
    Db, account, admin_actor, at, order_line, order_placed, order_stream, placed_order, product,
    run_to_head,
};

crate::backend_tests!(order_rows_after_a_known_history);

async fn order_rows_after_a_known_history(db: Db) {
    let (ann, bob) = (account(1), account(2));
    let (first, second) = (placed_order(1), placed_order(2));
    let admin = admin_actor();
    let moved = |from, to, seconds| OrderEvent::OrderStatusChanged {
        from,
        to,
        by: admin,
        at: at(seconds),
    };
    let parcel = |n: u128, seconds| OrderEvent::ShipmentCreated {
        shipment_id: ShipmentId::new(Uuid::from_u128(n)),
        carrier: "DHL".into(),
        tracking_number: format!("JJD{n}"),
        by: admin,
        at: at(seconds),
    };
    db.append(
        &order_stream(first),
        &[
            order_placed(
                first,
                ann,
                vec![
                    order_line(product(1), "SHIRT-M", 2, 4900),
                    order_line(product(2), "MUG", 1, 900),
                ],
                at(0),
            ),
            moved(OrderStatus::Placed, OrderStatus::Paid, 10),
        ],
    )
    .await;
    db.append(
        &order_stream(second),
        &[order_placed(
            second,
            bob,
            vec![order_line(product(2), "MUG", 3, 900)],
            at(5),
        )],
    )
    .await;
    db.append(
        &order_stream(first),
        &[
            moved(OrderStatus::Paid, OrderStatus::Packed, 20),
            parcel(1, 30),
            moved(OrderStatus::Packed, OrderStatus::Shipped, 30),
            parcel(2, 35),
            moved(OrderStatus::Shipped, OrderStatus::Delivered, 40),
        ],
    )
    .await;
    db.append(
        &order_stream(second),
        &[OrderEvent::OrderCancelled {
            from: OrderStatus::Placed,
            by: Actor {
                id: bob,
                role: Role::Customer,
            },
            reason: Some("changed my mind".into()),
            at: at(15),
        }],
    )
    .await;

    run_to_head(&db, Arc::new(OrdersProjection), 2).await;
    let dump = db.dump("orders").await;
    let rows = &dump["rm_orders"];
    assert_eq!(rows.len(), 2);
    let row = |id: &str| {
        rows.iter()
            .find(|r| r[0] == id)
            .unwrap_or_else(|| panic!("row of {id}"))
            .clone()
    };
    let (f, s) = (first.to_string(), second.to_string());
    let first_row = row(&f);
    assert_eq!(
        first_row[..8],
        [
            f.as_str(),
            &ann.to_string(),
            "DELIVERED",
            "10700",
            "EUR",
            "2025-06-15T15:06:40.123456Z",
            "2025-06-15T15:07:20.123456Z",
            "7"
        ]
    );
    let view: Value = serde_json::from_str(&first_row[8]).unwrap();
    assert_eq!(
        view,
        json!({
            "id": f,
            "customerId": ann.to_string(),
            "status": "DELIVERED",
            "lines": [
                {"sku": "SHIRT-M", "productId": product(1).to_string(), "name": "Product SHIRT-M",
                 "quantity": 2, "unitPrice": {"amount": 4900, "currency": "EUR"},
                 "lineTotal": {"amount": 9800, "currency": "EUR"}},
                {"sku": "MUG", "productId": product(2).to_string(), "name": "Product MUG",
                 "quantity": 1, "unitPrice": {"amount": 900, "currency": "EUR"},
                 "lineTotal": {"amount": 900, "currency": "EUR"}}
            ],
            "total": {"amount": 10700, "currency": "EUR"},
            "shippingAddress": {"name": "Ada Lovelace", "line1": "1 Analytical Way",
                "city": "London", "postalCode": "N1 9GU", "country": "GB"},
            "shipments": [
                {"id": Uuid::from_u128(1).to_string(), "carrier": "DHL", "trackingNumber": "JJD1",
                 "createdAt": "2025-06-15T15:07:10.123456Z"},
                {"id": Uuid::from_u128(2).to_string(), "carrier": "DHL", "trackingNumber": "JJD2",
                 "createdAt": "2025-06-15T15:07:15.123456Z"}
            ],
            "createdAt": "2025-06-15T15:06:40.123456Z",
            "updatedAt": "2025-06-15T15:07:20.123456Z"
        })
    );
    let second_row = row(&s);
    assert_eq!(
        second_row[..8],
        [
            s.as_str(),
            &bob.to_string(),
            "CANCELLED",
            "2700",
            "EUR",
            "2025-06-15T15:06:45.123456Z",
            "2025-06-15T15:06:55.123456Z",
            "2"
        ]
    );
    let view: Value = serde_json::from_str(&second_row[8]).unwrap();
    assert_eq!(view["status"], "CANCELLED");
    assert_eq!(view["shipments"], json!([]));
    // Each order counted once, under its day and final status; the rows its earlier
    // statuses passed through (PLACED, PAID, PACKED, SHIPPED) fell to zero and are gone.
    assert_eq!(
        dump["rm_order_counts"],
        [
            ["2025-06-15", "CANCELLED", "1"],
            ["2025-06-15", "DELIVERED", "1"]
        ]
    );
    assert_eq!(
        projector::checkpoint(&db.pool, "orders").await.unwrap(),
        db.head().await
    );
}
