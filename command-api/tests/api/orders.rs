//! Orders: catalogue prices, reservations, shortages, the state machine, cancellation,
//! shipments, ownership, and the oversell test.
use command_api::claims::{ClaimEvent, KeyKind};
use eventstore::{ExpectedVersion, NewEvent};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, address, assert_problem};

crate::backend_tests!(
    an_order_reserves_stock_at_catalogue_prices,
    a_shortage_names_every_short_sku_and_reserves_nothing,
    bad_lines_are_field_errors,
    fulfilment_follows_the_state_machine,
    customers_cancel_only_their_own_orders_before_packing,
    only_customers_place_orders_and_only_back_office_moves_them,
    never_oversold_under_concurrent_orders,
    two_command_nodes_sell_exactly_the_stock,
    a_sku_claimed_anew_on_another_node_is_priced_from_its_new_product,
);

async fn status(app: &TestApp, token: &str, order: &str, to: &str) -> reqwest::Response {
    app.post(
        &format!("/api/v1/orders/{order}/status"),
        Some(token),
        &json!({"status": to}),
    )
    .await
}

async fn an_order_reserves_stock_at_catalogue_prices(app: TestApp) {
    let admin = app.admin_token().await;
    app.create_product(&admin, "Pen", &[("PEN-1", 199), ("PEN-2", 250)])
        .await;
    app.restock(&admin, "PEN-1", 10).await;
    app.restock(&admin, "PEN-2", 10).await;
    let (customer, _) = app.customer().await;
    // A client-sent price is not even accepted.
    let sneaky = json!({"lines": [{"sku": "PEN-1", "quantity": 1, "unitPrice": {"amount": 1, "currency": "EUR"}}], "shippingAddress": address()});
    assert_problem(
        app.post("/api/v1/orders", Some(&customer), &sneaky).await,
        StatusCode::BAD_REQUEST,
        "invalid_body",
    )
    .await;
    let with_total = json!({"lines": [{"sku": "PEN-1", "quantity": 1}], "shippingAddress": address(), "total": {"amount": 1, "currency": "EUR"}});
    assert_problem(
        app.post("/api/v1/orders", Some(&customer), &with_total)
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_body",
    )
    .await;

    let response = app
        .place_order(&customer, &[("PEN-2", 3), ("PEN-1", 2)])
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["version"], 1);
    assert_eq!(app.stock("PEN-1").await, (10, 2, 0));
    assert_eq!(app.stock("PEN-2").await, (10, 3, 0));
    let order = eventstore::StreamId::of("order", body["id"].as_str().unwrap());
    let placed = app
        .store
        .read_stream(&order, 1, 10)
        .await
        .unwrap()
        .remove(0);
    assert_eq!(placed.event_type, "OrderPlaced");
    assert_eq!(
        placed.payload["total"],
        json!({"amount": 2 * 199 + 3 * 250, "currency": "EUR"})
    );
    assert_eq!(placed.position, body["position"].as_u64().unwrap());
}

async fn a_shortage_names_every_short_sku_and_reserves_nothing(app: TestApp) {
    let admin = app.admin_token().await;
    app.create_product(
        &admin,
        "Bowl",
        &[("BOWL-A", 100), ("BOWL-B", 100), ("BOWL-C", 100)],
    )
    .await;
    app.restock(&admin, "BOWL-A", 5).await;
    app.restock(&admin, "BOWL-B", 1).await;
    let (customer, _) = app.customer().await;
    let response = app
        .place_order(&customer, &[("BOWL-C", 1), ("BOWL-A", 2), ("BOWL-B", 2)])
        .await;
    let problem = assert_problem(response, StatusCode::CONFLICT, "insufficient_stock").await;
    let short: Vec<&str> = problem["shortSkus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["sku"].as_str().unwrap())
        .collect();
    assert_eq!(short, vec!["BOWL-B", "BOWL-C"]);
    assert_eq!(problem["shortSkus"][0]["available"], 1);
    assert_eq!(
        app.stock("BOWL-A").await,
        (5, 0, 0),
        "the reservation made before the shortage was released"
    );
    assert_eq!(
        app.place_order(&customer, &[("BOWL-A", 5)]).await.status(),
        StatusCode::CREATED
    );
}

async fn bad_lines_are_field_errors(app: TestApp) {
    let admin = app.admin_token().await;
    app.create_product(&admin, "Cup", &[("CUP-1", 100)]).await;
    let (customer, _) = app.customer().await;
    let response = app
        .place_order(&customer, &[("CUP-1", 0), ("NO-SUCH", 1), ("bad sku", 1)])
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
    assert_eq!(fields, vec!["lines[0].quantity", "lines[2].sku"]);
    let response = app.place_order(&customer, &[("NO-SUCH", 1)]).await;
    let problem = assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "lines[0].sku");
    let response = app.post("/api/v1/orders", Some(&customer), &json!({"lines": [{"sku": "CUP-1", "quantity": 1}],
        "shippingAddress": {"name": "", "line1": "x", "city": "y", "postalCode": "1", "country": "germany"}})).await;
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
    assert!(
        fields.contains(&"shippingAddress.name") && fields.contains(&"shippingAddress.country"),
        "{fields:?}"
    );
    let response = app
        .post(
            "/api/v1/orders",
            Some(&customer),
            &json!({"lines": [], "shippingAddress": address()}),
        )
        .await;
    assert_problem(
        response,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(app.stock("CUP-1").await, (0, 0, 0));
}

async fn fulfilment_follows_the_state_machine(app: TestApp) {
    let admin = app.admin_token().await;
    app.create_product(&admin, "Kettle", &[("KETTLE", 3900)])
        .await;
    app.restock(&admin, "KETTLE", 3).await;
    let (customer, _) = app.customer().await;
    let order: Value = app
        .place_order(&customer, &[("KETTLE", 2)])
        .await
        .json()
        .await
        .unwrap();
    let id = order["id"].as_str().unwrap();
    assert_problem(
        status(&app, &admin, id, "SHIPPED").await,
        StatusCode::CONFLICT,
        "illegal_transition",
    )
    .await;
    assert_problem(
        status(&app, &admin, id, "BOGUS").await,
        StatusCode::BAD_REQUEST,
        "invalid_body",
    )
    .await;
    assert_eq!(
        status(&app, &admin, id, "PAID").await.status(),
        StatusCode::OK
    );
    let shipment = json!({"carrier": "DHL", "trackingNumber": "JD0001"});
    let early = app
        .post(
            &format!("/api/v1/orders/{id}/shipments"),
            Some(&admin),
            &shipment,
        )
        .await;
    assert_problem(early, StatusCode::CONFLICT, "illegal_transition").await;
    assert_eq!(
        status(&app, &admin, id, "PACKED").await.status(),
        StatusCode::OK
    );
    let shipped = app
        .post(
            &format!("/api/v1/orders/{id}/shipments"),
            Some(&admin),
            &shipment,
        )
        .await;
    assert_eq!(shipped.status(), StatusCode::CREATED);
    let shipped: Value = shipped.json().await.unwrap();
    assert_eq!(
        shipped["version"], 5,
        "placed, paid, packed, shipment, shipped"
    );
    assert_eq!(
        app.stock("KETTLE").await,
        (1, 0, 2),
        "shipping commits the reserved units"
    );
    assert!(shipped["position"].as_u64().unwrap() > order["position"].as_u64().unwrap());
    assert_problem(
        app.post(
            &format!("/api/v1/orders/{id}/cancel"),
            Some(&admin),
            &json!({}),
        )
        .await,
        StatusCode::CONFLICT,
        "illegal_transition",
    )
    .await;
    assert_eq!(
        status(&app, &admin, id, "DELIVERED").await.status(),
        StatusCode::OK
    );
    assert_problem(
        status(&app, &admin, id, "PAID").await,
        StatusCode::CONFLICT,
        "illegal_transition",
    )
    .await;
    assert_problem(
        status(&app, &admin, &uuid::Uuid::now_v7().to_string(), "PAID").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

async fn customers_cancel_only_their_own_orders_before_packing(app: TestApp) {
    let admin = app.admin_token().await;
    app.create_product(&admin, "Vase", &[("VASE", 5000)]).await;
    app.restock(&admin, "VASE", 10).await;
    let (alice, _) = app.customer().await;
    let (bob, _) = app.customer().await;
    let order: Value = app
        .place_order(&alice, &[("VASE", 4)])
        .await
        .json()
        .await
        .unwrap();
    let id = order["id"].as_str().unwrap();
    let cancel = format!("/api/v1/orders/{id}/cancel");
    assert_problem(
        app.post(&cancel, Some(&bob), &json!({})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_eq!(app.stock("VASE").await, (10, 4, 0));
    let response = app
        .client
        .post(app.url(&cancel))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK, "cancel without a body");
    assert_eq!(
        app.stock("VASE").await,
        (10, 0, 0),
        "cancelling released the stock"
    );
    // `null` is no body as well.
    let nulled: Value = app
        .place_order(&alice, &[("VASE", 2)])
        .await
        .json()
        .await
        .unwrap();
    let nulled = format!("/api/v1/orders/{}/cancel", nulled["id"].as_str().unwrap());
    let response = app.post(&nulled, Some(&alice), &Value::Null).await;
    assert_eq!(response.status(), StatusCode::OK, "cancel with a null body");
    assert_eq!(app.stock("VASE").await, (10, 0, 0));

    let order: Value = app
        .place_order(&alice, &[("VASE", 1)])
        .await
        .json()
        .await
        .unwrap();
    let id = order["id"].as_str().unwrap();
    status(&app, &admin, id, "PAID").await;
    status(&app, &admin, id, "PACKED").await;
    let late = app
        .post(
            &format!("/api/v1/orders/{id}/cancel"),
            Some(&alice),
            &json!({"reason": "changed my mind"}),
        )
        .await;
    assert_problem(late, StatusCode::CONFLICT, "illegal_transition").await;
    let by_admin = app
        .post(
            &format!("/api/v1/orders/{id}/cancel"),
            Some(&admin),
            &json!({"reason": "customer called"}),
        )
        .await;
    assert_eq!(by_admin.status(), StatusCode::OK);
    assert_eq!(app.stock("VASE").await, (10, 0, 0));
}

async fn only_customers_place_orders_and_only_back_office_moves_them(app: TestApp) {
    let admin = app.admin_token().await;
    app.create_product(&admin, "Plate", &[("PLATE", 1200)])
        .await;
    app.restock(&admin, "PLATE", 5).await;
    assert_problem(
        app.place_order(&admin, &[("PLATE", 1)]).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let response = app
        .post(
            "/api/v1/orders",
            None,
            &json!({"lines": [{"sku": "PLATE", "quantity": 1}], "shippingAddress": address()}),
        )
        .await;
    assert_problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    let (customer, _) = app.customer().await;
    let order: Value = app
        .place_order(&customer, &[("PLATE", 1)])
        .await
        .json()
        .await
        .unwrap();
    let id = order["id"].as_str().unwrap();
    assert_problem(
        status(&app, &customer, id, "PAID").await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let shipment = json!({"carrier": "UPS", "trackingNumber": "1Z"});
    assert_problem(
        app.post(
            &format!("/api/v1/orders/{id}/shipments"),
            Some(&customer),
            &shipment,
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let staff_created = app
        .post("/api/v1/admin/accounts", Some(&admin), &json!({"role": "STAFF", "username": "packer", "name": "Pat Packer", "password": "staff-password-1"}))
        .await;
    assert_eq!(staff_created.status(), StatusCode::CREATED);
    let staff = app.login("packer", "staff-password-1").await["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        status(&app, &staff, id, "PAID").await.status(),
        StatusCode::OK
    );
    assert_problem(
        app.post(
            "/api/v1/products",
            Some(&staff),
            &json!({"name": "x", "variants": []}),
        )
        .await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
}

/// 200 concurrent orders from 20 customers for a SKU with 50 units: exactly 50 units are
/// sold, every other order is refused, and available stock never goes negative.
async fn never_oversold_under_concurrent_orders(app: TestApp) {
    let admin = app.admin_token().await;
    app.create_product(&admin, "Limited edition", &[("LIMITED", 9900)])
        .await;
    app.restock(&admin, "LIMITED", 50).await;
    let mut customers = Vec::new();
    for _ in 0..20 {
        customers.push(app.customer().await.0);
    }
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let (client, url, token) = (app.client.clone(), app.url("/api/v1/orders"), customers[i % 20].clone());
            tokio::spawn(async move {
                let body = json!({"lines": [{"sku": "LIMITED", "quantity": 1}], "shippingAddress": address()});
                client.post(url).bearer_auth(token).json(&body).send().await.unwrap().status()
            })
        })
        .collect();
    let (mut sold, mut refused) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            StatusCode::CREATED => sold += 1,
            StatusCode::CONFLICT => refused += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((sold, refused), (50, 150));
    assert_eq!(app.stock("LIMITED").await, (50, 50, 0));
    // Every reservation in the log belongs to a placed order, and the running available
    // count never went below zero at any version.
    let stream = eventstore::StreamId::of("stock", "LIMITED");
    let mut available = 0_i64;
    for event in app.store.read_stream(&stream, 1, 10_000).await.unwrap() {
        match event.event_type.as_str() {
            "StockAdjusted" => available += event.payload["delta"].as_i64().unwrap(),
            "StockReserved" => available -= event.payload["qty"].as_i64().unwrap(),
            "StockReleased" => available += event.payload["qty"].as_i64().unwrap(),
            _ => {}
        }
        assert!(
            available >= 0,
            "available went negative at version {}",
            event.version
        );
    }
    assert_eq!(available, 0);
}

/// Two command nodes on one store (each with its own caches and order committer, as two
/// processes): 120 concurrent 2-line orders spread over both, for two SKUs with 40 units
/// each. Exactly 40 orders are placed, every other one is refused for stock (none for
/// contention), and the stock is exact.
async fn two_command_nodes_sell_exactly_the_stock(mut app: TestApp) {
    let admin = app.admin_token().await;
    app.create_product(&admin, "Pair A", &[("PAIR-A", 1000)])
        .await;
    app.create_product(&admin, "Pair B", &[("PAIR-B", 1000)])
        .await;
    app.restock(&admin, "PAIR-A", 40).await;
    app.restock(&admin, "PAIR-B", 40).await;
    let second = app.second_node().await;
    let mut customers = Vec::new();
    for _ in 0..20 {
        customers.push(app.customer().await.0);
    }
    let tasks: Vec<_> = (0..120)
        .map(|i| {
            let url = if i % 2 == 0 {
                app.url("/api/v1/orders")
            } else {
                format!("{second}/api/v1/orders")
            };
            let (client, token) = (app.client.clone(), customers[i % 20].clone());
            tokio::spawn(async move {
                let body = json!({"lines": [{"sku": "PAIR-B", "quantity": 1}, {"sku": "PAIR-A", "quantity": 1}], "shippingAddress": address()});
                let response = client.post(url).bearer_auth(token).json(&body).send().await.unwrap();
                let status = response.status();
                (status, response.json::<Value>().await.unwrap_or(Value::Null))
            })
        })
        .collect();
    let mut sold = 0;
    for task in tasks {
        match task.await.unwrap() {
            (StatusCode::CREATED, _) => sold += 1,
            (StatusCode::CONFLICT, body) => {
                assert_eq!(body["code"], "insufficient_stock", "{body}")
            }
            (other, body) => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(sold, 40);
    assert_eq!(app.stock("PAIR-A").await, (40, 40, 0));
    assert_eq!(app.stock("PAIR-B").await, (40, 40, 0));
}

/// Appends `event` to the claim stream of `sku` directly, as a command node that is not
/// under test would.
async fn write_claim(app: &TestApp, sku: &str, expected: u64, event: &ClaimEvent) {
    let (event_type, payload) = domain::aggregate::encode(event);
    app.store
        .append(
            &KeyKind::Sku.stream(sku),
            ExpectedVersion::Exact(expected),
            vec![NewEvent::new(event_type, 1, payload)],
        )
        .await
        .expect("claim event");
}

/// Pricing takes a SKU's claim from the node's cache; when the SKU's owner changed on
/// another node since, the product the cache names lacks the variant and the claim is read
/// anew, so the order is priced from the product that owns the SKU now.
async fn a_sku_claimed_anew_on_another_node_is_priced_from_its_new_product(mut app: TestApp) {
    let abandoned = format!("product-{}", uuid::Uuid::now_v7());
    // A creation that failed after claiming: the claim was taken, then released.
    write_claim(
        &app,
        "MOVED-1",
        0,
        &ClaimEvent::Claimed {
            owner: abandoned.clone(),
        },
    )
    .await;
    let (customer, _) = app.customer().await;
    let early = app.place_order(&customer, &[("MOVED-1", 1)]).await;
    assert_problem(early, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;

    write_claim(
        &app,
        "MOVED-1",
        1,
        &ClaimEvent::Released { owner: abandoned },
    )
    .await;
    let second = app.second_node().await;
    let admin = app.admin_token().await;
    let created = app
        .client
        .post(format!("{second}/api/v1/products"))
        .bearer_auth(&admin)
        .json(
            &json!({"name": "Moved", "categories": ["test"], "variants": [
            {"sku": "MOVED-1", "price": {"amount": 725, "currency": "EUR"}}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let restocked = app
        .client
        .post(format!("{second}/api/v1/inventory/MOVED-1/adjustments"))
        .bearer_auth(&admin)
        .json(&json!({"delta": 5, "reason": "restock"}))
        .send()
        .await
        .unwrap();
    assert_eq!(restocked.status(), StatusCode::OK);

    let placed = app.place_order(&customer, &[("MOVED-1", 2)]).await;
    assert_eq!(placed.status(), StatusCode::CREATED);
    let answer: Value = placed.json().await.unwrap();
    let stream =
        eventstore::StreamId::new(format!("order-{}", answer["id"].as_str().unwrap())).unwrap();
    let events = app.store.read_stream(&stream, 1, 10).await.unwrap();
    assert_eq!(events[0].event_type, "OrderPlaced");
    assert_eq!(
        events[0].payload["lines"][0]["unitPrice"]["amount"], 725,
        "{}",
        events[0].payload
    );
}
