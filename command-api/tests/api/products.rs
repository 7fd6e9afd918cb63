//! Catalogue commands: create, update with If-Match, archive; roles; unique SKUs.
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem};

crate::backend_tests!(
    admin_creates_a_product,
    only_admins_write_the_catalogue,
    skus_are_unique_across_products,
    invalid_products_list_every_bad_field,
    clients_cannot_set_server_fields,
    update_honours_if_match,
    archived_products_no_longer_change,
);

async fn admin_creates_a_product(app: TestApp) {
    let admin = app.admin_token().await;
    let response = app
        .post(
            "/api/v1/products",
            Some(&admin),
            &json!({"name": "Linen shirt", "description": "Breathes.", "categories": ["shirts"],
                    "attributes": {"material": "linen", "care": {"wash": 30}},
                    "variants": [{"sku": "SHIRT-M", "price": {"amount": 4900, "currency": "EUR"}, "options": {"size": "M"}},
                                 {"sku": "SHIRT-L", "price": {"amount": 4900, "currency": "EUR"}, "options": {"size": "L"}}]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["etag"], "\"1\"");
    let position: u64 = response.headers()["emporium-position"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["version"], 1);
    assert_eq!(body["position"], position);
    assert!(body["id"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());
}

async fn only_admins_write_the_catalogue(app: TestApp) {
    let product = json!({"name": "Mug", "variants": [{"sku": "MUG", "price": {"amount": 900, "currency": "EUR"}}]});
    assert_problem(
        app.post("/api/v1/products", None, &product).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let (customer, _) = app.customer().await;
    assert_problem(
        app.post("/api/v1/products", Some(&customer), &product)
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let admin = app.admin_token().await;
    let id = app.create_product(&admin, "Mug", &[("MUG", 900)]).await;
    let path = format!("/api/v1/products/{id}");
    assert_problem(
        app.patch(&path, Some(&customer), &json!({"name": "Cup"}))
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_problem(
        app.delete(&path, Some(&customer)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_problem(
        app.delete(&path, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
}

async fn skus_are_unique_across_products(app: TestApp) {
    let admin = app.admin_token().await;
    app.create_product(&admin, "First", &[("DUP-1", 100)]).await;
    let response = app
        .post(
            "/api/v1/products",
            Some(&admin),
            &json!({"name": "Second", "variants": [
            {"sku": "FREE-1", "price": {"amount": 100, "currency": "EUR"}},
            {"sku": "DUP-1", "price": {"amount": 100, "currency": "EUR"}}]}),
        )
        .await;
    let problem = assert_problem(response, StatusCode::CONFLICT, "sku_taken").await;
    assert_eq!(problem["sku"], "DUP-1");
    // The refused product's other SKU was released, so it can be used.
    app.create_product(&admin, "Third", &[("FREE-1", 100)])
        .await;

    // Two products racing for one SKU: exactly one wins.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let (client, url, admin) = (app.client.clone(), app.url("/api/v1/products"), admin.clone());
            tokio::spawn(async move {
                let body = json!({"name": format!("Racer {i}"), "variants": [{"sku": "RACE", "price": {"amount": 1, "currency": "EUR"}}]});
                client.post(url).bearer_auth(admin).json(&body).send().await.unwrap().status()
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        let status = task.await.unwrap();
        assert!(
            status == StatusCode::CREATED || status == StatusCode::CONFLICT,
            "{status}"
        );
        created += usize::from(status == StatusCode::CREATED);
    }
    assert_eq!(created, 1);
}

async fn invalid_products_list_every_bad_field(app: TestApp) {
    let admin = app.admin_token().await;
    let response = app
        .post(
            "/api/v1/products",
            Some(&admin),
            &json!({"name": "", "variants": [
            {"sku": "bad sku!", "price": {"amount": 100, "currency": "euro"}},
            {"sku": "OK-1", "price": {"amount": -5, "currency": "EUR"}}]}),
        )
        .await;
    let problem = assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert!(fields.contains(&"variants[0].sku"), "{fields:?}");
    assert!(fields.contains(&"variants[0].price.currency"), "{fields:?}");
    let response = app
        .post(
            "/api/v1/products",
            Some(&admin),
            &json!({"name": "No variants", "variants": []}),
        )
        .await;
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let response = app
        .post(
            "/api/v1/products",
            Some(&admin),
            &json!({"name": "Negative", "variants": [
        {"sku": "NEG-1", "price": {"amount": -5, "currency": "EUR"}}]}),
        )
        .await;
    let problem = assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "variants[0].price.amount");
    // Nothing was claimed by the refused requests.
    app.create_product(&admin, "Fine", &[("OK-1", 100), ("NEG-1", 100)])
        .await;
}

async fn clients_cannot_set_server_fields(app: TestApp) {
    let admin = app.admin_token().await;
    for extra in [
        json!({"status": "ARCHIVED"}),
        json!({"version": 7}),
        json!({"id": "00000000-0000-0000-0000-000000000000"}),
    ] {
        let mut body = json!({"name": "Sneaky", "variants": [{"sku": "SNEAK", "price": {"amount": 1, "currency": "EUR"}}]});
        body.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        let response = app.post("/api/v1/products", Some(&admin), &body).await;
        assert_problem(response, StatusCode::BAD_REQUEST, "invalid_body").await;
    }
    let response = app
        .client
        .post(app.url("/api/v1/products"))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::BAD_REQUEST, "malformed_json").await;
}

async fn update_honours_if_match(app: TestApp) {
    let admin = app.admin_token().await;
    let id = app
        .create_product(&admin, "Lamp", &[("LAMP-1", 2500)])
        .await;
    let path = format!("/api/v1/products/{id}");
    let update = |version: &'static str, body: Value| {
        let request = app
            .client
            .patch(app.url(&path))
            .bearer_auth(&admin)
            .header("if-match", version)
            .json(&body);
        async move { request.send().await.unwrap() }
    };
    let response = update("\"1\"", json!({"name": "Desk lamp", "variants": [{"sku": "LAMP-1", "price": {"amount": 2700, "currency": "EUR"}}, {"sku": "LAMP-2", "price": {"amount": 3000, "currency": "EUR"}}]})).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["version"], 4,
        "update, price change and new variant are three events"
    );
    let stale = update("\"1\"", json!({"name": "Too late"})).await;
    assert_problem(stale, StatusCode::PRECONDITION_FAILED, "version_mismatch").await;
    // The tag a query node sends (version and a stock digest) names its version.
    let stale = update("\"1.00000000deadbeef\"", json!({"name": "Too late"})).await;
    assert_problem(stale, StatusCode::PRECONDITION_FAILED, "version_mismatch").await;
    let response = update("\"4.00000000deadbeef\"", json!({"name": "Reading lamp"})).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["etag"], "\"5\"");
    // `*`: any current version.
    let response = update("*", json!({"name": "Floor lamp"})).await;
    assert_eq!(response.json::<Value>().await.unwrap()["version"], 6);
    for malformed in ["\"1\", \"2\"", "soon", "\"6.xyz\""] {
        let response = update(malformed, json!({"name": "Never"})).await;
        assert_problem(response, StatusCode::BAD_REQUEST, "invalid_if_match").await;
    }
    let response = app
        .patch(
            &format!("/api/v1/products/{}", uuid::Uuid::now_v7()),
            Some(&admin),
            &json!({"name": "x"}),
        )
        .await;
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
    let response = app
        .patch(
            "/api/v1/products/not-a-uuid",
            Some(&admin),
            &json!({"name": "x"}),
        )
        .await;
    assert_problem(response, StatusCode::NOT_FOUND, "not_found").await;
}

async fn archived_products_no_longer_change(app: TestApp) {
    let admin = app.admin_token().await;
    let id = app.create_product(&admin, "Old", &[("OLD-1", 100)]).await;
    let path = format!("/api/v1/products/{id}");
    assert_eq!(
        app.delete(&path, Some(&admin)).await.status(),
        StatusCode::OK
    );
    assert_problem(
        app.delete(&path, Some(&admin)).await,
        StatusCode::CONFLICT,
        "product_archived",
    )
    .await;
    assert_problem(
        app.patch(&path, Some(&admin), &json!({"name": "New"}))
            .await,
        StatusCode::CONFLICT,
        "product_archived",
    )
    .await;
    // An archived product's SKU can no longer be ordered.
    app.restock(&admin, "OLD-1", 5).await;
    let (customer, _) = app.customer().await;
    let response = app.place_order(&customer, &[("OLD-1", 1)]).await;
    let problem = assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "lines[0].sku");
}
