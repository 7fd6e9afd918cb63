//! Carts, wishlists and checkout over HTTP, with carts in SQL (SQLite, PostgreSQL) and in
//! Redis: current prices and availability on every read, validation, isolation between
//! customers, and checkout through the order path (prices, reservations, idempotency).
use domain::{aggregate::decode, order::OrderEvent};
use eventstore::StreamId;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, address, assert_problem};

/// Each test on SQLite and PostgreSQL (carts in SQL), and on SQLite with carts in Redis.
macro_rules! cart_tests {
    ($($name:ident),+ $(,)?) => {
        crate::backend_tests!($($name),+);
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(app) = crate::helpers::spawn_app_with_redis_carts().await else { return };
                    super::$name(app).await;
                }
            )+
        }
    };
}

cart_tests!(
    the_cart_shows_current_names_prices_and_availability,
    bad_cart_input_is_refused_and_changes_nothing,
    a_cart_holds_at_most_fifty_lines,
    only_customers_have_carts_and_wishlists,
    customers_never_see_each_others_carts,
    concurrent_adds_to_one_cart_lose_nothing,
    checkout_places_the_order_at_catalogue_prices_and_empties_the_cart,
    checkout_shortage_names_the_short_skus_and_leaves_the_cart,
    checkout_with_an_idempotency_key_places_one_order,
    double_submitted_checkout_places_one_order,
    checkout_refuses_a_line_no_longer_sold,
    the_wishlist_adds_removes_and_shows_current_prices,
);

async fn cart(app: &TestApp, token: &str) -> Value {
    let response = app.get_as("/api/v1/cart", Some(token)).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn add(app: &TestApp, token: &str, sku: &str, quantity: i64) -> reqwest::Response {
    app.post(
        "/api/v1/cart/items",
        Some(token),
        &json!({"sku": sku, "quantity": quantity}),
    )
    .await
}

async fn add_ok(app: &TestApp, token: &str, sku: &str, quantity: i64) -> Value {
    let response = add(app, token, sku, quantity).await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

async fn checkout(app: &TestApp, token: &str, key: Option<&str>) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url("/api/v1/cart/checkout"))
        .bearer_auth(token)
        .json(&json!({"shippingAddress": address()}));
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    request.send().await.unwrap()
}

fn line<'a>(cart: &'a Value, sku: &str) -> &'a Value {
    cart["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["sku"] == sku)
        .unwrap_or_else(|| panic!("no line {sku} in {cart}"))
}

fn quantities(cart: &Value) -> Vec<(String, u64)> {
    cart["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["sku"].as_str().unwrap().to_owned(),
                l["quantity"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// The `OrderPlaced` event of order `id`, from the log.
async fn placed(app: &TestApp, id: &str) -> OrderEvent {
    let events = app
        .store
        .read_stream(&StreamId::of("order", id), 1, 10)
        .await
        .unwrap();
    let first = events.into_iter().next().expect("the order exists");
    decode(
        &first.event_type,
        first.schema_version,
        std::sync::Arc::unwrap_or_clone(first.payload),
    )
    .unwrap()
}

async fn the_cart_shows_current_names_prices_and_availability(app: TestApp) {
    let admin = app.admin_token().await;
    let tea = app
        .create_product(&admin, "Tea", &[("TEA-S", 450), ("TEA-L", 800)])
        .await;
    app.restock(&admin, "TEA-S", 10).await;
    let (customer, _) = app.customer().await;

    let empty = cart(&app, &customer).await;
    assert_eq!(
        empty,
        json!({"lines": [], "itemCount": 0, "total": null, "mixedCurrencies": false})
    );

    add_ok(&app, &customer, "TEA-S", 2).await;
    let after = add_ok(&app, &customer, "TEA-S", 1).await;
    assert_eq!(
        line(&after, "TEA-S"),
        &json!({"sku": "TEA-S", "productId": tea, "name": "Tea",
            "unitPrice": {"amount": 450, "currency": "EUR"}, "quantity": 3,
            "lineTotal": {"amount": 1350, "currency": "EUR"}, "available": 10,
            "inStock": true, "purchasable": true})
    );
    let after = add_ok(&app, &customer, "TEA-L", 1).await;
    assert_eq!(line(&after, "TEA-L")["available"], 0);
    assert_eq!(line(&after, "TEA-L")["inStock"], false);
    assert_eq!(after["total"], json!({"amount": 2150, "currency": "EUR"}));
    assert_eq!(after["itemCount"], 4);
    assert_eq!(
        quantities(&after),
        vec![("TEA-L".into(), 1), ("TEA-S".into(), 3)]
    );

    let response = app
        .patch(
            "/api/v1/cart/items/TEA-L",
            Some(&customer),
            &json!({"quantity": 2}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let after: Value = response.json().await.unwrap();
    assert_eq!(line(&after, "TEA-L")["quantity"], 2);

    // Renamed, repriced and restocked: the next read shows it.
    let response = app
        .patch(
            &format!("/api/v1/products/{tea}"),
            Some(&admin),
            &json!({"name": "Green Tea", "variants": [{"sku": "TEA-L", "price": {"amount": 900, "currency": "EUR"}}]}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    app.restock(&admin, "TEA-L", 5).await;
    let now = cart(&app, &customer).await;
    assert_eq!(line(&now, "TEA-L")["name"], "Green Tea");
    assert_eq!(line(&now, "TEA-L")["unitPrice"]["amount"], 900);
    assert_eq!(line(&now, "TEA-L")["lineTotal"]["amount"], 1800);
    assert_eq!(line(&now, "TEA-L")["available"], 5);
    assert_eq!(now["total"]["amount"], 1350 + 1800);

    // Removing is idempotent.
    for _ in 0..2 {
        let response = app
            .delete("/api/v1/cart/items/TEA-L", Some(&customer))
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        let after: Value = response.json().await.unwrap();
        assert_eq!(quantities(&after), vec![("TEA-S".into(), 3)]);
    }

    // An archived product's line stays, flagged, outside the total.
    let response = app
        .delete(&format!("/api/v1/products/{tea}"), Some(&admin))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let now = cart(&app, &customer).await;
    let archived = line(&now, "TEA-S");
    assert_eq!(archived["purchasable"], false);
    assert_eq!(archived["unavailableReason"], "ARCHIVED");
    assert_eq!(archived["name"], "Green Tea");
    assert_eq!(now["total"], Value::Null);
    assert_eq!(now["itemCount"], 3);
}

async fn bad_cart_input_is_refused_and_changes_nothing(app: TestApp) {
    let admin = app.admin_token().await;
    app.create_product(&admin, "Mug", &[("MUG", 1200)]).await;
    let gone = app.create_product(&admin, "Old", &[("OLD", 100)]).await;
    app.delete(&format!("/api/v1/products/{gone}"), Some(&admin))
        .await;
    let (customer, _) = app.customer().await;
    add_ok(&app, &customer, "MUG", 999).await;
    let before = cart(&app, &customer).await;

    assert_problem(
        add(&app, &customer, "NOPE", 1).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_sku",
    )
    .await;
    assert_problem(
        add(&app, &customer, "OLD", 1).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "sku_not_for_sale",
    )
    .await;
    for quantity in [0, -1, 1001, i64::MAX] {
        let problem = assert_problem(
            add(&app, &customer, "MUG", quantity).await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
        assert_eq!(problem["errors"][0]["field"], "quantity", "{quantity}");
    }
    let problem = assert_problem(
        add(&app, &customer, "bad sku!", 0).await,
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
    assert_eq!(fields, ["sku", "quantity"]);
    assert_problem(
        add(&app, &customer, "MUG", 2).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "cart_quantity_limit",
    )
    .await;
    let response = app
        .post(
            "/api/v1/cart/items",
            Some(&customer),
            &json!({"sku": "MUG", "quantity": 1, "price": {"amount": 1, "currency": "EUR"}}),
        )
        .await;
    assert!(response.status().is_client_error());
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );

    for quantity in [0, 1001] {
        assert_problem(
            app.patch(
                "/api/v1/cart/items/MUG",
                Some(&customer),
                &json!({"quantity": quantity}),
            )
            .await,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        )
        .await;
    }
    app.create_product(&admin, "Other", &[("NOT-IN-CART", 5)])
        .await;
    for missing in ["NOT-IN-CART", "bad%20sku"] {
        assert_problem(
            app.patch(
                &format!("/api/v1/cart/items/{missing}"),
                Some(&customer),
                &json!({"quantity": 1}),
            )
            .await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
    }
    assert_eq!(cart(&app, &customer).await, before);
}

async fn a_cart_holds_at_most_fifty_lines(app: TestApp) {
    let admin = app.admin_token().await;
    let skus: Vec<String> = (0..51).map(|i| format!("MANY-{i:02}")).collect();
    let variants: Vec<(&str, i64)> = skus.iter().map(|s| (s.as_str(), 100)).collect();
    app.create_product(&admin, "Many", &variants).await;
    let (customer, _) = app.customer().await;
    for sku in &skus[..50] {
        assert_eq!(add(&app, &customer, sku, 1).await.status(), StatusCode::OK);
    }
    assert_problem(
        add(&app, &customer, &skus[50], 1).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "cart_line_limit",
    )
    .await;
    // More of a line it has still fits.
    add_ok(&app, &customer, &skus[0], 1).await;
    let full = cart(&app, &customer).await;
    assert_eq!(full["lines"].as_array().unwrap().len(), 50);
    assert_eq!(full["itemCount"], 51);
}

async fn only_customers_have_carts_and_wishlists(app: TestApp) {
    let admin = app.admin_token().await;
    app.create_product(&admin, "Pen", &[("PEN", 150)]).await;
    let anonymous = [
        app.get_as("/api/v1/cart", None).await,
        add(&app, "", "PEN", 1).await,
        app.post(
            "/api/v1/cart/items",
            None,
            &json!({"sku": "PEN", "quantity": 1}),
        )
        .await,
        app.patch("/api/v1/cart/items/PEN", None, &json!({"quantity": 1}))
            .await,
        app.delete("/api/v1/cart/items/PEN", None).await,
        app.post(
            "/api/v1/cart/checkout",
            None,
            &json!({"shippingAddress": address()}),
        )
        .await,
        app.get_as("/api/v1/wishlist", None).await,
        app.put("/api/v1/wishlist/PEN", None).await,
        app.delete("/api/v1/wishlist/PEN", None).await,
    ];
    for response in anonymous {
        assert_problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    let back_office = [
        app.get_as("/api/v1/cart", Some(&admin)).await,
        add(&app, &admin, "PEN", 1).await,
        app.patch(
            "/api/v1/cart/items/PEN",
            Some(&admin),
            &json!({"quantity": 1}),
        )
        .await,
        app.delete("/api/v1/cart/items/PEN", Some(&admin)).await,
        checkout(&app, &admin, None).await,
        app.get_as("/api/v1/wishlist", Some(&admin)).await,
        app.put("/api/v1/wishlist/PEN", Some(&admin)).await,
        app.delete("/api/v1/wishlist/PEN", Some(&admin)).await,
    ];
    for response in back_office {
        assert_problem(response, StatusCode::FORBIDDEN, "forbidden").await;
    }
}

async fn customers_never_see_each_others_carts(app: TestApp) {
    let admin = app.admin_token().await;
    app.create_product(&admin, "Lamp", &[("LAMP", 3000)]).await;
    app.restock(&admin, "LAMP", 10).await;
    let (ada, _) = app.customer().await;
    let (bob, _) = app.customer().await;
    add_ok(&app, &ada, "LAMP", 2).await;
    let put = app.put("/api/v1/wishlist/LAMP", Some(&ada)).await;
    assert_eq!(put.status(), StatusCode::NO_CONTENT);

    assert_eq!(cart(&app, &bob).await["lines"], json!([]));
    assert_problem(
        app.patch(
            "/api/v1/cart/items/LAMP",
            Some(&bob),
            &json!({"quantity": 5}),
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let response = app.delete("/api/v1/cart/items/LAMP", Some(&bob)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_problem(
        checkout(&app, &bob, None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "cart_empty",
    )
    .await;
    let wishlist: Value = app
        .get_as("/api/v1/wishlist", Some(&bob))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(wishlist, json!({"items": []}));
    let response = app.delete("/api/v1/wishlist/LAMP", Some(&bob)).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);

    assert_eq!(
        quantities(&cart(&app, &ada).await),
        vec![("LAMP".into(), 2)]
    );
    let wishlist: Value = app
        .get_as("/api/v1/wishlist", Some(&ada))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(wishlist["items"][0]["sku"], "LAMP");
    assert_eq!(app.stock("LAMP").await, (10, 0, 0));
}

async fn concurrent_adds_to_one_cart_lose_nothing(app: TestApp) {
    let admin = app.admin_token().await;
    let skus: Vec<String> = (0..8).map(|i| format!("PAR-{i}")).collect();
    let variants: Vec<(&str, i64)> = skus.iter().map(|s| (s.as_str(), 10)).collect();
    app.create_product(&admin, "Parallel", &variants).await;
    let (customer, _) = app.customer().await;
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let (client, url, token) = (
                app.client.clone(),
                app.url("/api/v1/cart/items"),
                customer.clone(),
            );
            let sku = if i % 2 == 0 {
                "PAR-0".to_owned()
            } else {
                format!("PAR-{}", i % 8)
            };
            tokio::spawn(async move {
                client
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({"sku": sku, "quantity": 1}))
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    // Even i: PAR-0 (16). Odd i: PAR-1, 3, 5, 7, four times each.
    assert_eq!(
        quantities(&cart(&app, &customer).await),
        vec![
            ("PAR-0".into(), 16),
            ("PAR-1".into(), 4),
            ("PAR-3".into(), 4),
            ("PAR-5".into(), 4),
            ("PAR-7".into(), 4),
        ]
    );
}

async fn checkout_places_the_order_at_catalogue_prices_and_empties_the_cart(app: TestApp) {
    let admin = app.admin_token().await;
    let chair = app
        .create_product(&admin, "Chair", &[("CHAIR", 4500), ("CUSHION", 900)])
        .await;
    app.restock(&admin, "CHAIR", 5).await;
    app.restock(&admin, "CUSHION", 5).await;
    let (customer, customer_id) = app.customer().await;
    add_ok(&app, &customer, "CHAIR", 2).await;
    add_ok(&app, &customer, "CUSHION", 3).await;

    let response = checkout(&app, &customer, None).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let answer: Value = response.json().await.unwrap();
    let id = answer["id"].as_str().unwrap();
    assert!(answer["version"].as_u64().unwrap() >= 1);
    assert!(answer["position"].as_u64().unwrap() > 0);

    assert_eq!(cart(&app, &customer).await["lines"], json!([]));
    assert_eq!(app.stock("CHAIR").await, (5, 2, 0));
    assert_eq!(app.stock("CUSHION").await, (5, 3, 0));
    let OrderEvent::OrderPlaced {
        customer_id: placed_for,
        lines,
        total,
        shipping_address,
        ..
    } = placed(&app, id).await
    else {
        panic!("not an OrderPlaced");
    };
    assert_eq!(placed_for.to_string(), customer_id);
    assert_eq!(total.amount, 2 * 4500 + 3 * 900);
    let mut lines: Vec<_> = lines
        .iter()
        .map(|l| {
            (
                l.sku.to_string(),
                l.quantity,
                l.unit_price.amount,
                l.product_id.to_string(),
            )
        })
        .collect();
    lines.sort();
    assert_eq!(
        lines,
        vec![
            ("CHAIR".into(), 2, 4500, chair.clone()),
            ("CUSHION".into(), 3, 900, chair.clone()),
        ]
    );
    assert_eq!(shipping_address.city, "London");
}

async fn checkout_shortage_names_the_short_skus_and_leaves_the_cart(app: TestApp) {
    let admin = app.admin_token().await;
    app.create_product(
        &admin,
        "Desk",
        &[("DESK", 20000), ("DRAWER", 3000), ("LEG", 500)],
    )
    .await;
    app.restock(&admin, "DESK", 1).await;
    app.restock(&admin, "DRAWER", 10).await;
    let (customer, _) = app.customer().await;
    add_ok(&app, &customer, "DESK", 3).await;
    add_ok(&app, &customer, "DRAWER", 2).await;
    add_ok(&app, &customer, "LEG", 4).await;
    let before = cart(&app, &customer).await;

    let problem = assert_problem(
        checkout(&app, &customer, None).await,
        StatusCode::CONFLICT,
        "insufficient_stock",
    )
    .await;
    assert_eq!(
        problem["shortSkus"],
        json!([{"sku": "DESK", "requested": 3, "available": 1},
               {"sku": "LEG", "requested": 4, "available": 0}])
    );
    // Exactly what POST /api/v1/orders answers for the same lines.
    let direct = assert_problem(
        app.place_order(&customer, &[("DESK", 3), ("DRAWER", 2), ("LEG", 4)])
            .await,
        StatusCode::CONFLICT,
        "insufficient_stock",
    )
    .await;
    assert_eq!(direct["shortSkus"], problem["shortSkus"]);
    assert_eq!(cart(&app, &customer).await, before);
    assert_eq!(app.stock("DESK").await, (1, 0, 0));
    assert_eq!(app.stock("DRAWER").await, (10, 0, 0));
}

async fn checkout_with_an_idempotency_key_places_one_order(app: TestApp) {
    let admin = app.admin_token().await;
    app.create_product(&admin, "Kettle", &[("KETTLE", 2500)])
        .await;
    app.restock(&admin, "KETTLE", 10).await;
    let (customer, _) = app.customer().await;
    add_ok(&app, &customer, "KETTLE", 2).await;

    let first = checkout(&app, &customer, Some("checkout-1")).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    // The cart is empty now, yet the retry answers with the same order and places none.
    let again = checkout(&app, &customer, Some("checkout-1")).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(app.stock("KETTLE").await, (10, 2, 0));
    // A new key is a new checkout, of an empty cart.
    assert_problem(
        checkout(&app, &customer, Some("checkout-2")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "cart_empty",
    )
    .await;
    assert_eq!(app.stock("KETTLE").await, (10, 2, 0));
}

async fn double_submitted_checkout_places_one_order(app: TestApp) {
    let admin = app.admin_token().await;
    app.create_product(&admin, "Toaster", &[("TOASTER", 3500)])
        .await;
    app.restock(&admin, "TOASTER", 10).await;
    let (customer, _) = app.customer().await;
    add_ok(&app, &customer, "TOASTER", 1).await;
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let (client, url, token) = (
                app.client.clone(),
                app.url("/api/v1/cart/checkout"),
                customer.clone(),
            );
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .bearer_auth(token)
                    .json(&json!({"shippingAddress": address()}))
                    .send()
                    .await
                    .unwrap();
                (response.status(), response.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut placed = 0;
    for task in tasks {
        match task.await.unwrap() {
            (StatusCode::CREATED, _) => placed += 1,
            (StatusCode::UNPROCESSABLE_ENTITY, body) => assert_eq!(body["code"], "cart_empty"),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(placed, 1);
    assert_eq!(app.stock("TOASTER").await, (10, 1, 0));
}

async fn checkout_refuses_a_line_no_longer_sold(app: TestApp) {
    let admin = app.admin_token().await;
    app.create_product(&admin, "Kept", &[("KEPT", 100)]).await;
    let dropped = app
        .create_product(&admin, "Dropped", &[("DROPPED", 100)])
        .await;
    app.restock(&admin, "KEPT", 5).await;
    app.restock(&admin, "DROPPED", 5).await;
    let (customer, _) = app.customer().await;
    add_ok(&app, &customer, "DROPPED", 1).await;
    add_ok(&app, &customer, "KEPT", 1).await;
    app.delete(&format!("/api/v1/products/{dropped}"), Some(&admin))
        .await;
    let before = cart(&app, &customer).await;
    let problem = assert_problem(
        checkout(&app, &customer, None).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    // Lines are named in the cart's order: DROPPED is lines[0].
    assert_eq!(problem["errors"][0]["field"], "lines[0].sku");
    assert_eq!(cart(&app, &customer).await, before);
    assert_eq!(app.stock("KEPT").await, (5, 0, 0));
    // Without it, checkout goes through.
    app.delete("/api/v1/cart/items/DROPPED", Some(&customer))
        .await;
    assert_eq!(
        checkout(&app, &customer, None).await.status(),
        StatusCode::CREATED
    );
}

async fn the_wishlist_adds_removes_and_shows_current_prices(app: TestApp) {
    let admin = app.admin_token().await;
    let book = app
        .create_product(&admin, "Book", &[("BOOK-HB", 2500), ("BOOK-PB", 1200)])
        .await;
    let gone = app.create_product(&admin, "Gone", &[("GONE", 100)]).await;
    app.delete(&format!("/api/v1/products/{gone}"), Some(&admin))
        .await;
    app.restock(&admin, "BOOK-PB", 7).await;
    let (customer, _) = app.customer().await;
    for sku in ["BOOK-PB", "BOOK-PB", "BOOK-HB"] {
        let response = app
            .put(&format!("/api/v1/wishlist/{sku}"), Some(&customer))
            .await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
    assert_problem(
        app.put("/api/v1/wishlist/NOPE", Some(&customer)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_sku",
    )
    .await;
    assert_problem(
        app.put("/api/v1/wishlist/bad%20sku", Some(&customer)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown_sku",
    )
    .await;
    assert_problem(
        app.put("/api/v1/wishlist/GONE", Some(&customer)).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "sku_not_for_sale",
    )
    .await;
    let wishlist: Value = app
        .get_as("/api/v1/wishlist", Some(&customer))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        wishlist,
        json!({"items": [
            {"sku": "BOOK-HB", "productId": book, "name": "Book",
             "unitPrice": {"amount": 2500, "currency": "EUR"}, "available": 0, "purchasable": true},
            {"sku": "BOOK-PB", "productId": book, "name": "Book",
             "unitPrice": {"amount": 1200, "currency": "EUR"}, "available": 7, "purchasable": true},
        ]})
    );
    for _ in 0..2 {
        let response = app
            .delete("/api/v1/wishlist/BOOK-HB", Some(&customer))
            .await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
    }
    app.delete(&format!("/api/v1/products/{book}"), Some(&admin))
        .await;
    let wishlist: Value = app
        .get_as("/api/v1/wishlist", Some(&customer))
        .await
        .json()
        .await
        .unwrap();
    let items = wishlist["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["sku"], "BOOK-PB");
    assert_eq!(items[0]["purchasable"], false);
    assert_eq!(items[0]["unavailableReason"], "ARCHIVED");
    // Wishlist and cart are separate.
    assert_eq!(cart(&app, &customer).await["lines"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cart_route_is_in_the_openapi_document() {
    let Some(app) = crate::helpers::spawn_app(crate::helpers::Backend::Sqlite).await else {
        return;
    };
    let doc = app.openapi().await;
    for (path, methods) in [
        ("/api/v1/cart", &["get"][..]),
        ("/api/v1/cart/items", &["post"]),
        ("/api/v1/cart/items/{sku}", &["patch", "delete"]),
        ("/api/v1/cart/checkout", &["post"]),
        ("/api/v1/wishlist", &["get"]),
        ("/api/v1/wishlist/{sku}", &["put", "delete"]),
    ] {
        for method in methods {
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} is not documented"
            );
        }
    }
    for schema in [
        "CartView",
        "CartLineView",
        "WishlistView",
        "AddItem",
        "Checkout",
    ] {
        assert!(
            doc["components"]["schemas"][schema].is_object(),
            "{schema} is not documented"
        );
    }
}
