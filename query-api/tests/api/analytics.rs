//! `GET /api/v1/analytics/sales`: the figures of a known history with a cancellation, by
//! day, by product and by both; filters; admins only; read-your-writes.
use domain::{
    account::Role,
    ids::{AccountId, OrderId},
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    helpers::{TestApp, assert_problem},
    shop::{DAY, append_by, line, order_stream, placed, seed_orders},
};

crate::backend_tests!(sales_by_day_and_product, only_admins_see_sales);

fn eur(amount: i64) -> Value {
    json!({"amount": amount, "currency": "EUR"})
}

async fn sales_by_day_and_product(app: TestApp) {
    let shop = seed_orders(&app).await;
    let admin = app.token(Role::Admin);
    let report = |query: &str| {
        let (app, path, token) = (
            &app,
            format!("/api/v1/analytics/sales{query}"),
            admin.clone(),
        );
        async move {
            let response = app.get_as(&path, &token).await;
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            response.json::<Value>().await.unwrap()
        }
    };
    let (shirt, mug) = (shop.shirt.to_string(), shop.mug.to_string());
    // Day 1: A1. Day 2: A2 and B1. Day 3: A3, cancelled, so nothing.
    let totals = json!({"orders": 3, "units": 9, "revenue": [eur(20400)]});
    assert_eq!(
        report("").await,
        json!({
            "items": [
                {"day": "2025-06-15", "orders": 1, "units": 3, "revenue": eur(10700)},
                {"day": "2025-06-16", "orders": 2, "units": 6, "revenue": eur(9700)},
            ],
            "totals": totals,
        })
    );
    assert_eq!(report("?groupBy=day").await, report("").await);
    assert_eq!(
        report("?groupBy=product").await,
        json!({
            "items": [
                {"productId": shirt, "orders": 2, "units": 3, "revenue": eur(15000)},
                {"productId": mug, "orders": 3, "units": 6, "revenue": eur(5400)},
            ],
            "totals": totals,
        })
    );
    assert_eq!(
        report("?groupBy=day,product").await,
        json!({
            "items": [
                {"day": "2025-06-15", "productId": shirt, "orders": 1, "units": 2, "revenue": eur(9800)},
                {"day": "2025-06-15", "productId": mug, "orders": 1, "units": 1, "revenue": eur(900)},
                {"day": "2025-06-16", "productId": shirt, "orders": 1, "units": 1, "revenue": eur(5200)},
                {"day": "2025-06-16", "productId": mug, "orders": 2, "units": 5, "revenue": eur(4500)},
            ],
            "totals": totals,
        })
    );
    assert_eq!(
        report("?groupBy=product&from=2025-06-16&to=2025-06-17").await,
        json!({
            "items": [
                {"productId": shirt, "orders": 1, "units": 1, "revenue": eur(5200)},
                {"productId": mug, "orders": 2, "units": 5, "revenue": eur(4500)},
            ],
            "totals": {"orders": 2, "units": 6, "revenue": [eur(9700)]},
        })
    );
    assert_eq!(
        report("?to=2025-06-15T23:59:59Z").await["items"],
        json!([{"day": "2025-06-15", "orders": 1, "units": 3, "revenue": eur(10700)}])
    );
    assert_eq!(
        report("?from=2025-06-17").await,
        json!({"items": [], "totals": {"orders": 0, "units": 0, "revenue": []}})
    );

    // Cancelling B1, then a new order on day 3 read with its position.
    let cancelled = append_by(
        &app,
        &order_stream(shop.b1),
        shop.admin,
        &[domain::order::OrderEvent::OrderCancelled {
            from: domain::order::OrderStatus::Paid,
            by: domain::order::Actor {
                id: shop.admin,
                role: Role::Admin,
            },
            reason: None,
            at: crate::helpers::at(3 * DAY),
        }],
    )
    .await;
    let carol = AccountId::new(Uuid::now_v7());
    let c1 = OrderId::new(Uuid::now_v7());
    let position = append_by(
        &app,
        &order_stream(c1),
        carol,
        &[placed(
            c1,
            carol,
            vec![line(shop.mug, "MUG", 4, 900)],
            2 * DAY + 100,
        )],
    )
    .await;
    assert!(position > cancelled);
    assert_eq!(
        report(&format!("?minPosition={position}")).await,
        json!({
            "items": [
                {"day": "2025-06-15", "orders": 1, "units": 3, "revenue": eur(10700)},
                {"day": "2025-06-16", "orders": 1, "units": 3, "revenue": eur(2700)},
                {"day": "2025-06-17", "orders": 1, "units": 4, "revenue": eur(3600)},
            ],
            "totals": {"orders": 3, "units": 10, "revenue": [eur(17000)]},
        })
    );
}

async fn only_admins_see_sales(app: TestApp) {
    for role in [Role::Customer, Role::Staff] {
        // The role is checked first: a bad query string does not change the answer.
        for path in [
            "/api/v1/analytics/sales",
            "/api/v1/analytics/sales?from=garbage",
        ] {
            assert_problem(
                app.get_as(path, &app.token(role)).await,
                StatusCode::FORBIDDEN,
                "forbidden",
            )
            .await;
        }
    }
    assert_problem(
        app.get("/api/v1/analytics/sales").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let admin = app.token(Role::Admin);
    for query in [
        "groupBy=week",
        "from=15/06/2025",
        "from=2025-06-17&to=2025-06-16",
        "limit=3",
        "groupBy=day&groupBy=product",
    ] {
        assert_problem(
            app.get_as(&format!("/api/v1/analytics/sales?{query}"), &admin)
                .await,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        )
        .await;
    }
}
