//! The bought-together projection after a known history: pair counts per order (each
//! product once however many lines it has), cancellations that subtract exactly what
//! their order added, status changes that change nothing, and a replay from position 0
//! that gives the same rows.
use std::sync::Arc;

use domain::{
    ids::{OrderId, ProductId},
    order::{OrderEvent, OrderStatus},
};
use projector::BoughtTogetherProjection;

use crate::support::{
    Db, account, admin_actor, at, order_line, order_placed, order_stream, placed_order, product,
    run_to_head,
};

crate::backend_tests!(pair_counts_of_a_known_history);

fn cancelled(from: OrderStatus) -> OrderEvent {
    OrderEvent::OrderCancelled {
        from,
        by: admin_actor(),
        reason: None,
        at: at(1_000),
    }
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|c| (*c).to_owned()).collect()
}

/// Both directions of each `(a, b, orders)` pair, sorted as the dump sorts.
fn pairs(expected: &[(ProductId, ProductId, u32)]) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = expected
        .iter()
        .flat_map(|(a, b, n)| {
            let (a, b, n) = (a.to_string(), b.to_string(), n.to_string());
            [row(&[&a, &b, &n]), row(&[&b, &a, &n])]
        })
        .collect();
    rows.sort();
    rows
}

/// The counted orders' `(order, product)` pairs, sorted.
fn counted(dump_rows: &[Vec<String>]) -> Vec<(String, String)> {
    let mut rows: Vec<_> = dump_rows
        .iter()
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect();
    rows.sort();
    rows
}

fn holding(orders: &[(OrderId, &[ProductId])]) -> Vec<(String, String)> {
    let mut rows: Vec<_> = orders
        .iter()
        .flat_map(|(o, products)| products.iter().map(|p| (o.to_string(), p.to_string())))
        .collect();
    rows.sort();
    rows
}

async fn pair_counts_of_a_known_history(db: Db) {
    let (ann, bob) = (account(1), account(2));
    let (p1, p2, p3, p4) = (product(1), product(2), product(3), product(4));
    let o: Vec<OrderId> = (1..=6).map(placed_order).collect();
    let script: [(OrderId, _, Vec<_>); 6] = [
        // Two SKUs of p1 and one of p2: the pair counts once.
        (
            o[0],
            ann,
            vec![
                order_line(p1, "P1-M", 2, 1000),
                order_line(p2, "P2", 1, 500),
                order_line(p1, "P1-L", 1, 1000),
            ],
        ),
        (
            o[1],
            bob,
            vec![
                order_line(p1, "P1-M", 1, 1000),
                order_line(p2, "P2", 1, 500),
                order_line(p3, "P3", 1, 700),
            ],
        ),
        (
            o[2],
            ann,
            vec![
                order_line(p3, "P3", 1, 700),
                order_line(p1, "P1-M", 1, 1000),
            ],
        ),
        // A single product: no pair.
        (o[3], bob, vec![order_line(p2, "P2", 4, 500)]),
        (
            o[4],
            ann,
            vec![order_line(p3, "P3", 1, 700), order_line(p4, "P4", 1, 300)],
        ),
        (
            o[5],
            bob,
            vec![
                order_line(p2, "P2", 1, 500),
                order_line(p1, "P1-L", 1, 1000),
            ],
        ),
    ];
    for (i, (id, customer, lines)) in script.into_iter().enumerate() {
        db.append(
            &order_stream(id),
            &[order_placed(id, customer, lines, at(i as i64))],
        )
        .await;
    }
    // Status changes and shipments change nothing.
    db.append(
        &order_stream(o[5]),
        &[OrderEvent::OrderStatusChanged {
            from: OrderStatus::Placed,
            to: OrderStatus::Paid,
            by: admin_actor(),
            at: at(100),
        }],
    )
    .await;

    run_to_head(&db, Arc::new(BoughtTogetherProjection), 2).await;
    let dump = db.dump(BoughtTogetherProjection::NAME).await;
    assert_eq!(
        dump["rm_bought_together"],
        pairs(&[(p1, p2, 3), (p1, p3, 2), (p2, p3, 1), (p3, p4, 1)])
    );
    assert_eq!(
        counted(&dump["rm_bought_together_orders"]),
        holding(&[
            (o[0], &[p1, p2]),
            (o[1], &[p1, p2, p3]),
            (o[2], &[p1, p3]),
            (o[3], &[p2]),
            (o[4], &[p3, p4]),
            (o[5], &[p1, p2]),
        ])
    );
    let customers: Vec<&str> = dump["rm_bought_together_orders"]
        .iter()
        .filter(|r| r[0] == o[3].to_string())
        .map(|r| r[2].as_str())
        .collect();
    assert_eq!(customers, [bob.to_string()]);

    // Cancelling o5 removes the p3-p4 pair; cancelling o2 takes one from each of its pairs
    // (p2-p3 falls to zero and goes); a second cancellation of o5 subtracts nothing.
    db.append(&order_stream(o[4]), &[cancelled(OrderStatus::Placed)])
        .await;
    db.append(&order_stream(o[1]), &[cancelled(OrderStatus::Placed)])
        .await;
    db.append(&order_stream(o[4]), &[cancelled(OrderStatus::Placed)])
        .await;
    run_to_head(&db, Arc::new(BoughtTogetherProjection), 500).await;
    let live = db.dump(BoughtTogetherProjection::NAME).await;
    assert_eq!(
        live["rm_bought_together"],
        pairs(&[(p1, p2, 2), (p1, p3, 1)])
    );
    assert_eq!(
        counted(&live["rm_bought_together_orders"]),
        holding(&[
            (o[0], &[p1, p2]),
            (o[2], &[p1, p3]),
            (o[3], &[p2]),
            (o[5], &[p1, p2]),
        ])
    );

    // Replaying the whole log into empty tables gives the same rows, in any batch size.
    for batch in [1, 3, 500] {
        db.reset(BoughtTogetherProjection::NAME).await;
        run_to_head(&db, Arc::new(BoughtTogetherProjection), batch).await;
        assert_eq!(
            db.dump(BoughtTogetherProjection::NAME).await,
            live,
            "replay in batches of {batch}"
        );
    }
}
