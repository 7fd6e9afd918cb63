//! The NUL character (U+0000) anywhere a client writes is refused at the edge, with the
//! field at fault, and changes nothing: PostgreSQL stores it in no text or JSONB value, so
//! it used to pass validation and fail in the append (503) on PostgreSQL, or be stored on
//! SQLite.
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, address, assert_problem};

crate::backend_tests!(
    a_nul_in_a_body_is_a_field_error_and_writes_nothing,
    a_nul_in_the_path_or_query_is_refused,
);

async fn refused_at(response: reqwest::Response, field: &str) {
    let body = assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], field, "{body}");
}

async fn a_nul_in_a_body_is_a_field_error_and_writes_nothing(app: TestApp) {
    let head = || async { app.store.head_position().await.unwrap() };
    let before = head().await;
    let sign_up = json!({"name": "Ada\u{0}", "email": "nul@example.com",
        "mobileNumber": "+4915112345678", "password": "correct horse battery"});
    refused_at(
        app.post("/api/v1/auth/register", None, &sign_up).await,
        "name",
    )
    .await;
    let login = json!({"username": "nul\u{0}@example.com", "password": "x"});
    refused_at(
        app.post("/api/v1/auth/login", None, &login).await,
        "username",
    )
    .await;
    assert_eq!(head().await, before, "nothing was appended");

    let admin = app.admin_token().await;
    app.create_product(&admin, "Mug", &[("MUG-NUL", 900)]).await;
    app.restock(&admin, "MUG-NUL", 5).await;
    let before = head().await;
    let product = json!({"name": "Cup", "attributes": {"glaze\u{0}": "blue"},
        "variants": [{"sku": "CUP-1", "price": {"amount": 100, "currency": "EUR"}}]});
    refused_at(
        app.post("/api/v1/products", Some(&admin), &product).await,
        "attributes",
    )
    .await;
    assert_eq!(head().await, before, "no product, and no SKU claim");
    let (customer, _) = app.customer().await;
    let before_order = head().await;
    let mut shipping: Value = address();
    shipping["city"] = json!("Lon\u{0}don");
    let order = json!({"lines": [{"sku": "MUG-NUL", "quantity": 1}], "shippingAddress": shipping});
    refused_at(
        app.post("/api/v1/orders", Some(&customer), &order).await,
        "shippingAddress.city",
    )
    .await;
    let profile = json!({"name": "A\u{0}"});
    refused_at(
        app.patch("/api/v1/customers/me", Some(&customer), &profile)
            .await,
        "name",
    )
    .await;
    assert_eq!(head().await, before_order, "nothing was appended");
    assert_eq!(app.stock("MUG-NUL").await, (5, 0, 0));
    // The same bodies without it go through.
    shipping["city"] = json!("London");
    let order = json!({"lines": [{"sku": "MUG-NUL", "quantity": 1}], "shippingAddress": shipping});
    let placed = app.post("/api/v1/orders", Some(&customer), &order).await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let id = placed.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    // Also where the body is optional.
    let cancel = format!("/api/v1/orders/{id}/cancel");
    let reason = json!({"reason": "changed my mind\u{0}"});
    refused_at(app.post(&cancel, Some(&customer), &reason).await, "reason").await;
    assert_eq!(app.stock("MUG-NUL").await, (5, 1, 0));
}

async fn a_nul_in_the_path_or_query_is_refused(app: TestApp) {
    let admin = app.admin_token().await;
    let adjust = app
        .post(
            "/api/v1/inventory/MUG%00/adjustments",
            Some(&admin),
            &json!({"delta": 1, "reason": "x"}),
        )
        .await;
    assert_problem(adjust, StatusCode::BAD_REQUEST, "invalid_uri").await;
    let (customer, _) = app.customer().await;
    let put = app.put("/api/v1/wishlist/A%00B", Some(&customer)).await;
    assert_problem(put, StatusCode::BAD_REQUEST, "invalid_uri").await;
}
