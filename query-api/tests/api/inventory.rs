//! `GET /api/v1/inventory/{sku}`: roles, shape, unknown SKUs.
use domain::account::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem};

crate::backend_tests!(inventory_is_for_admins_and_staff);

async fn inventory_is_for_admins_and_staff(app: TestApp) {
    app.seed().await;
    let path = "/api/v1/inventory/SHIRT-M";
    assert_problem(
        app.get(path).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    assert_problem(
        app.get_as(path, &app.token(Role::Customer)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    for role in [Role::Admin, Role::Staff] {
        let response = app.get_as(path, &app.token(role)).await;
        assert_eq!(response.status(), StatusCode::OK, "{role:?}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(
            body,
            json!({"sku": "SHIRT-M", "onHand": 10, "reserved": 3, "committed": 0, "available": 7})
        );
    }
    let admin = app.token(Role::Admin);
    // A SKU that a product has but that was never stocked.
    let body: Value = app
        .get_as("/api/v1/inventory/SHIRT-L", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        body,
        json!({"sku": "SHIRT-L", "onHand": 0, "reserved": 0, "committed": 0, "available": 0})
    );
    assert_problem(
        app.get_as("/api/v1/inventory/NOPE-1", &admin).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}
