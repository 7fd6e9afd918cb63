//! `GET /api/v1/inventory/{sku}` and the stock list `GET /api/v1/inventory`: roles, shape,
//! unknown SKUs, filters and order.
use domain::account::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, assert_problem};

crate::backend_tests!(
    inventory_is_for_admins_and_staff,
    the_stock_list_puts_the_least_available_first,
);

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

fn skus(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["sku"].as_str().unwrap())
        .collect()
}

async fn the_stock_list_puts_the_least_available_first(app: TestApp) {
    let catalogue = app.seed().await;
    let staff = app.token(Role::Staff);
    let list = |query: String| {
        let (app, staff) = (&app, &staff);
        async move {
            let response = app
                .get_as(&format!("/api/v1/inventory?{query}"), staff)
                .await;
            assert_eq!(response.status(), StatusCode::OK, "{query}");
            response.json::<Value>().await.unwrap()
        }
    };
    // Every SKU the catalogue has (the archived mug's too), never-stocked ones at zero.
    let all = list(String::new()).await;
    assert_eq!(
        skus(&all),
        [
            "JUMPER-S", "MUG", "SCARF", "SHIRT-L", "TEE-L", "TEE-M", "SHIRT-M"
        ]
    );
    assert_eq!(
        (all["total"].as_u64(), all["pageSize"].as_u64()),
        (Some(7), Some(20))
    );
    assert_eq!(
        all["items"][6],
        json!({"sku": "SHIRT-M", "productId": catalogue.shirt.to_string(), "onHand": 10,
            "reserved": 3, "committed": 0, "available": 7})
    );
    let low = list("availableBelow=6".into()).await;
    assert_eq!(skus(&low).last(), Some(&"TEE-M"));
    assert_eq!(low["total"], 6);
    assert_eq!(list("availableBelow=0".into()).await["total"], 0);
    let shirts = list(format!("productId={}", catalogue.shirt)).await;
    assert_eq!(skus(&shirts), ["SHIRT-L", "SHIRT-M"]);
    let last = list("pageSize=2&page=4".into()).await;
    assert_eq!(
        (skus(&last), last["total"].as_u64()),
        (vec!["SHIRT-M"], Some(7))
    );

    assert_problem(
        app.get_as("/api/v1/inventory", &app.token(Role::Customer))
            .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_problem(
        app.get("/api/v1/inventory").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    for bad in ["availableBelow=few", "productId=1", "pageSize=0", "sku=MUG"] {
        let response = app
            .get_as(&format!("/api/v1/inventory?{bad}"), &staff)
            .await;
        assert_problem(response, StatusCode::BAD_REQUEST, "invalid_query").await;
    }
}
