//! The sales projection's figures after a known history: orders on two days and in two
//! currencies, status changes that change nothing, and cancellations that subtract.
use std::sync::Arc;

use domain::{
    money::{Currency, Money},
    order::{OrderEvent, OrderStatus},
};
use projector::SalesProjection;

use crate::support::{
    Db, account, admin_actor, at, order_line, order_placed, order_stream, placed_order, product,
    run_to_head,
};

crate::backend_tests!(sales_figures_after_a_known_history);

const DAY: i64 = 86_400;

fn cancelled() -> OrderEvent {
    OrderEvent::OrderCancelled {
        from: OrderStatus::Placed,
        by: admin_actor(),
        reason: None,
        at: at(3 * DAY),
    }
}

async fn sales_figures_after_a_known_history(db: Db) {
    let ann = account(1);
    let (p1, p2) = (product(1), product(2));
    let (a, b, c, d) = (
        placed_order(1),
        placed_order(2),
        placed_order(3),
        placed_order(4),
    );
    // Day 1 (2025-06-15): A holds two SKUs of p1 and one of p2; B one SKU of p1.
    db.append(
        &order_stream(a),
        &[
            order_placed(
                a,
                ann,
                vec![
                    order_line(p1, "SHIRT-M", 2, 1000),
                    order_line(p1, "SHIRT-L", 1, 500),
                    order_line(p2, "MUG", 1, 2000),
                ],
                at(0),
            ),
            OrderEvent::OrderStatusChanged {
                from: OrderStatus::Placed,
                to: OrderStatus::Paid,
                by: admin_actor(),
                at: at(DAY),
            },
        ],
    )
    .await;
    db.append(
        &order_stream(b),
        &[order_placed(
            b,
            ann,
            vec![order_line(p1, "SHIRT-M", 1, 1000)],
            at(60),
        )],
    )
    .await;
    // Day 2 (2025-06-16): C in euros, D in dollars.
    db.append(
        &order_stream(c),
        &[order_placed(
            c,
            ann,
            vec![order_line(p2, "MUG", 2, 2000)],
            at(DAY),
        )],
    )
    .await;
    let mut dollars = order_line(p2, "MUG", 1, 2500);
    dollars.unit_price = Money::new(2500, Currency::USD);
    dollars.line_total = Money::new(2500, Currency::USD);
    let mut placed_d = order_placed(d, ann, vec![dollars], at(DAY + 1));
    if let OrderEvent::OrderPlaced { total, .. } = &mut placed_d {
        *total = Money::new(2500, Currency::USD);
    }
    db.append(&order_stream(d), &[placed_d]).await;

    run_to_head(&db, Arc::new(SalesProjection), 2).await;
    let row = |cells: &[&str]| cells.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>();
    let (p1s, p2s) = (p1.to_string(), p2.to_string());
    let dump = db.dump("sales").await;
    let mut daily = vec![
        row(&["2025-06-15", &p1s, "EUR", "2", "4", "3500"]),
        row(&["2025-06-15", &p2s, "EUR", "1", "1", "2000"]),
        row(&["2025-06-16", &p2s, "EUR", "1", "2", "4000"]),
        row(&["2025-06-16", &p2s, "USD", "1", "1", "2500"]),
    ];
    daily.sort();
    assert_eq!(dump["rm_sales_daily"], daily);
    assert_eq!(
        dump["rm_sales_days"],
        vec![
            row(&["2025-06-15", "EUR", "2", "5", "5500"]),
            row(&["2025-06-16", "EUR", "1", "2", "4000"]),
            row(&["2025-06-16", "USD", "1", "1", "2500"]),
        ]
    );
    assert_eq!(dump["rm_sales_orders"].len(), 4);

    // Cancelling B takes exactly its figures out; cancelling C empties its rows.
    db.append(&order_stream(b), &[cancelled()]).await;
    db.append(&order_stream(c), &[cancelled()]).await;
    run_to_head(&db, Arc::new(SalesProjection), 500).await;
    let dump = db.dump("sales").await;
    let mut daily = vec![
        row(&["2025-06-15", &p1s, "EUR", "1", "3", "2500"]),
        row(&["2025-06-15", &p2s, "EUR", "1", "1", "2000"]),
        row(&["2025-06-16", &p2s, "USD", "1", "1", "2500"]),
    ];
    daily.sort();
    assert_eq!(dump["rm_sales_daily"], daily);
    assert_eq!(
        dump["rm_sales_days"],
        vec![
            row(&["2025-06-15", "EUR", "1", "4", "4500"]),
            row(&["2025-06-16", "USD", "1", "1", "2500"]),
        ]
    );
    let counted: Vec<&str> = dump["rm_sales_orders"]
        .iter()
        .map(|r| r[0].as_str())
        .collect();
    let mut expected = vec![a.to_string(), d.to_string()];
    expected.sort();
    assert_eq!(counted, expected);
}
