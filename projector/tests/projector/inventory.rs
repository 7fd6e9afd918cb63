//! The inventory projection's rows after a known history, old schemas included.
use std::sync::Arc;

use domain::inventory::StockEvent;
use eventstore::NewEvent;
use projector::InventoryProjection;
use serde_json::json;

use crate::support::{Db, at, order, run_to_head, sku, stock_stream};

crate::backend_tests!(inventory_rows_after_a_known_history);

async fn inventory_rows_after_a_known_history(db: Db) {
    let shirt = stock_stream("SHIRT-M");
    db.append(
        &shirt,
        &[
            StockEvent::StockAdjusted {
                sku: sku("SHIRT-M"),
                delta: 10,
                reason: "restock".into(),
                at: at(0),
                adjustment_id: None,
            },
            StockEvent::StockReserved {
                order_id: order(1),
                qty: 3,
                at: at(1),
            },
            StockEvent::StockReserved {
                order_id: order(2),
                qty: 2,
                at: at(2),
            },
            StockEvent::StockReleased {
                order_id: order(1),
                qty: 3,
                at: at(3),
            },
            StockEvent::StockCommitted {
                order_id: order(2),
                qty: 2,
                at: at(4),
            },
            StockEvent::StockAdjusted {
                sku: sku("SHIRT-M"),
                delta: -1,
                reason: "damaged".into(),
                at: at(5),
                adjustment_id: None,
            },
        ],
    )
    .await;
    // A reservation written with schema 0 (`quantity`), upcast when decoded.
    db.append_raw(
        &shirt,
        NewEvent::new(
            "StockReserved",
            0,
            json!({"orderId": order(3).to_string(), "quantity": 4, "at": "2025-06-15T15:06:46.123456Z"}),
        ),
    )
    .await;
    db.append(
        &stock_stream("MUG"),
        &[
            StockEvent::StockAdjusted {
                sku: sku("MUG"),
                delta: 5,
                reason: "restock".into(),
                at: at(7),
                adjustment_id: None,
            },
            StockEvent::StockReserved {
                order_id: order(4),
                qty: 5,
                at: at(8),
            },
        ],
    )
    .await;

    run_to_head(&db, Arc::new(InventoryProjection), 3).await;
    let dump = db.dump("inventory").await;
    let row = |cells: &[&str]| cells.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        dump["rm_inventory"],
        vec![
            row(&["MUG", "5", "5", "0", "2025-06-15T15:06:48.123456Z"]),
            row(&["SHIRT-M", "7", "4", "2", "2025-06-15T15:06:46.123456Z"]),
        ]
    );
    let mut reservations = vec![
        row(&[
            "SHIRT-M",
            &order(3).to_string(),
            "4",
            "2025-06-15T15:06:46.123456Z",
        ]),
        row(&[
            "MUG",
            &order(4).to_string(),
            "5",
            "2025-06-15T15:06:48.123456Z",
        ]),
    ];
    reservations.sort();
    assert_eq!(dump["rm_reservations"], reservations);
}
