//! Stock adjustments: restock, write-off bounded by what is reserved, unknown SKUs.
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{TestApp, assert_problem};

crate::backend_tests!(
    restock_and_write_off,
    write_off_never_touches_reserved_units,
    adjustments_need_a_known_sku_and_an_admin
);

async fn restock_and_write_off(app: TestApp) {
    let admin = app.admin_token().await;
    app.create_product(&admin, "Tea", &[("TEA-1", 450)]).await;
    app.restock(&admin, "TEA-1", 10).await;
    let response = app
        .post(
            "/api/v1/inventory/TEA-1/adjustments",
            Some(&admin),
            &json!({"delta": -3, "reason": "damaged"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["id"], "TEA-1");
    assert_eq!(body["version"], 2);
    assert_eq!(app.stock("TEA-1").await, (7, 0, 0));
    let response = app
        .post(
            "/api/v1/inventory/TEA-1/adjustments",
            Some(&admin),
            &json!({"delta": 0, "reason": "nothing"}),
        )
        .await;
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
}

async fn write_off_never_touches_reserved_units(app: TestApp) {
    let admin = app.admin_token().await;
    app.create_product(&admin, "Jam", &[("JAM-1", 300)]).await;
    app.restock(&admin, "JAM-1", 5).await;
    let (customer, _) = app.customer().await;
    assert_eq!(
        app.place_order(&customer, &[("JAM-1", 3)]).await.status(),
        StatusCode::CREATED
    );
    let response = app
        .post(
            "/api/v1/inventory/JAM-1/adjustments",
            Some(&admin),
            &json!({"delta": -3, "reason": "lost"}),
        )
        .await;
    assert_problem(
        response,
        StatusCode::CONFLICT,
        "write_off_exceeds_available",
    )
    .await;
    assert_eq!(app.stock("JAM-1").await, (5, 3, 0));
    let response = app
        .post(
            "/api/v1/inventory/JAM-1/adjustments",
            Some(&admin),
            &json!({"delta": -2, "reason": "lost"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(app.stock("JAM-1").await, (3, 3, 0));
}

async fn adjustments_need_a_known_sku_and_an_admin(app: TestApp) {
    let admin = app.admin_token().await;
    let body = json!({"delta": 5, "reason": "restock"});
    assert_problem(
        app.post("/api/v1/inventory/NOPE-1/adjustments", Some(&admin), &body)
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    app.create_product(&admin, "Soap", &[("SOAP-1", 300)]).await;
    let (customer, _) = app.customer().await;
    assert_problem(
        app.post(
            "/api/v1/inventory/SOAP-1/adjustments",
            Some(&customer),
            &body,
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_problem(
        app.post("/api/v1/inventory/SOAP-1/adjustments", None, &body)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let bad = json!({"delta": 5, "reason": "x", "onHand": 1000});
    assert_problem(
        app.post("/api/v1/inventory/SOAP-1/adjustments", Some(&admin), &bad)
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_body",
    )
    .await;
}
