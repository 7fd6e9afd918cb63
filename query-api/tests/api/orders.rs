//! `GET /api/v1/orders`, `/orders/{id}` and `/orders/{id}/history`: who sees what
//! (invariant 9), filters and pagination, the audit trail, read-your-writes.
use domain::{account::Role, ids::OrderId};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    helpers::{Backend, Positions, TestApp, assert_problem, query_config, spawn_app_with},
    shop::{DAY, append_by, ids, line, order_stream, placed, seed_orders},
};

crate::backend_tests!(
    who_sees_which_order,
    filters_and_pages,
    history_is_the_audit_trail,
);

async fn who_sees_which_order(app: TestApp) {
    let shop = seed_orders(&app).await;
    let ann = app.token_for(shop.ann, Role::Customer);
    let bob = app.token_for(shop.bob, Role::Customer);
    let staff = app.token(Role::Staff);
    let admin = app.token(Role::Admin);
    let (a1, a2, a3, b1) = (
        shop.a1.to_string(),
        shop.a2.to_string(),
        shop.a3.to_string(),
        shop.b1.to_string(),
    );

    // No token: 401 everywhere.
    for path in [
        "/api/v1/orders".to_owned(),
        format!("/api/v1/orders/{a1}"),
        format!("/api/v1/orders/{a1}/history"),
    ] {
        assert_problem(
            app.get(&path).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        )
        .await;
    }

    // A customer lists their own orders only, newest first.
    let list: Value = json_of(app.get_as("/api/v1/orders", &ann).await).await;
    assert_eq!(ids(&list), [a3.as_str(), a2.as_str(), a1.as_str()]);
    assert_eq!(
        (
            list["total"].clone(),
            list["page"].clone(),
            list["pageSize"].clone()
        ),
        (json!(3), json!(1), json!(20))
    );
    let list: Value = json_of(app.get_as("/api/v1/orders", &bob).await).await;
    assert_eq!(ids(&list), [b1.as_str()]);
    // Asking for someone else's orders gives nothing.
    let list: Value = json_of(
        app.get_as(&format!("/api/v1/orders?customerId={}", shop.bob), &ann)
            .await,
    )
    .await;
    assert_eq!(list["total"], 0);
    assert_eq!(ids(&list), Vec::<String>::new());

    // Own order: the view; someone else's, unknown or malformed: 404, order and history.
    let view: Value = json_of(app.get_as(&format!("/api/v1/orders/{a1}"), &ann).await).await;
    assert_eq!(view["customerId"], shop.ann.to_string());
    for (path, token) in [
        (format!("/api/v1/orders/{b1}"), &ann),
        (format!("/api/v1/orders/{b1}/history"), &ann),
        (format!("/api/v1/orders/{a1}"), &bob),
        (format!("/api/v1/orders/{a1}/history"), &bob),
        (format!("/api/v1/orders/{}", Uuid::now_v7()), &ann),
        (format!("/api/v1/orders/{}/history", Uuid::now_v7()), &admin),
        ("/api/v1/orders/not-an-id".to_owned(), &staff),
        ("/api/v1/orders/not-an-id/history".to_owned(), &staff),
    ] {
        let body = assert_problem(
            app.get_as(&path, token).await,
            StatusCode::NOT_FOUND,
            "not_found",
        )
        .await;
        assert_eq!(body["detail"], "no such order", "{path}");
    }

    // Staff and admins see every order and every history.
    for token in [&staff, &admin] {
        let list: Value = json_of(app.get_as("/api/v1/orders", token).await).await;
        assert_eq!(
            ids(&list),
            [a3.as_str(), b1.as_str(), a2.as_str(), a1.as_str()]
        );
        let view: Value = json_of(app.get_as(&format!("/api/v1/orders/{b1}"), token).await).await;
        assert_eq!(view["customerId"], shop.bob.to_string());
        let history: Value = json_of(
            app.get_as(&format!("/api/v1/orders/{a2}/history"), token)
                .await,
        )
        .await;
        assert_eq!(history.as_array().unwrap().len(), 5);
    }

    // The order view, as DESIGN.md shapes it.
    let view: Value = json_of(app.get_as(&format!("/api/v1/orders/{a2}"), &ann).await).await;
    assert_eq!(
        view,
        json!({
            "id": a2,
            "customerId": shop.ann.to_string(),
            "status": "SHIPPED",
            "lines": [{"sku": "MUG", "productId": shop.mug.to_string(), "name": "Product MUG",
                "quantity": 3, "unitPrice": {"amount": 900, "currency": "EUR"},
                "lineTotal": {"amount": 2700, "currency": "EUR"}}],
            "total": {"amount": 2700, "currency": "EUR"},
            "shippingAddress": {"name": "Ada Lovelace", "line1": "1 Analytical Way",
                "city": "London", "postalCode": "N1 9GU", "country": "GB"},
            "shipments": [{"id": Uuid::from_u128(7).to_string(), "carrier": "DHL",
                "trackingNumber": "JJD0007", "createdAt": "2025-06-16T15:07:10.000000Z"}],
            "createdAt": "2025-06-16T15:06:40.000000Z",
            "updatedAt": "2025-06-16T15:07:10.000000Z"
        })
    );
}

async fn json_of(response: reqwest::Response) -> Value {
    let status = response.status();
    let body: Value = response.json().await.expect("json body");
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn filters_and_pages(app: TestApp) {
    let shop = seed_orders(&app).await;
    let staff = app.token(Role::Staff);
    let ann = app.token_for(shop.ann, Role::Customer);
    let (a1, a2, a3, b1) = (
        shop.a1.to_string(),
        shop.a2.to_string(),
        shop.a3.to_string(),
        shop.b1.to_string(),
    );
    let list = |query: &str, token: &str| {
        let (app, path, token) = (&app, format!("/api/v1/orders?{query}"), token.to_owned());
        async move { json_of(app.get_as(&path, &token).await).await }
    };
    // Every filter's total counts its orders: read from the counts per day and status, or
    // (a customer, a time of day) from the orders.
    let matching = |query: &str, token: &str| {
        let page = list(query, token);
        async move {
            let page = page.await;
            let found = ids(&page);
            assert_eq!(page["total"], json!(found.len()), "{page}");
            found
        }
    };
    assert_eq!(matching("status=CANCELLED", &staff).await, [a3.as_str()]);
    assert_eq!(matching("status=PAID", &staff).await, [b1.as_str()]);
    assert_eq!(matching("status=PAID", &ann).await, Vec::<String>::new());
    assert_eq!(matching("status=PLACED", &ann).await, [a1.as_str()]);
    assert_eq!(
        matching(&format!("customerId={}", shop.bob), &staff).await,
        [b1.as_str()]
    );
    assert_eq!(
        matching(&format!("customerId={}&status=SHIPPED", shop.ann), &staff).await,
        [a2.as_str()]
    );
    // Days are whole UTC days; times are instants, both ends inclusive.
    assert_eq!(
        matching("from=2025-06-16", &staff).await,
        [a3.as_str(), b1.as_str(), a2.as_str()]
    );
    assert_eq!(
        matching("to=2025-06-16", &staff).await,
        [b1.as_str(), a2.as_str(), a1.as_str()]
    );
    assert_eq!(
        matching("from=2025-06-16&to=2025-06-16", &ann).await,
        [a2.as_str()]
    );
    assert_eq!(
        matching("status=SHIPPED&from=2025-06-16&to=2025-06-16", &staff).await,
        [a2.as_str()]
    );
    assert_eq!(
        matching("from=2030-01-01", &staff).await,
        Vec::<String>::new()
    );
    assert_eq!(
        matching(
            "from=2025-06-16T15:06:40Z&to=2025-06-16T17:07:40%2B02:00",
            &staff
        )
        .await,
        [b1.as_str(), a2.as_str()]
    );
    assert_eq!(
        matching("from=2025-06-16T15:06:40.000001Z", &staff).await,
        [a3.as_str(), b1.as_str()]
    );
    // Pages.
    let page = list("pageSize=3", &staff).await;
    assert_eq!(ids(&page), [a3.as_str(), b1.as_str(), a2.as_str()]);
    assert_eq!(
        (page["total"].clone(), page["pageSize"].clone()),
        (json!(4), json!(3))
    );
    let page = list("pageSize=3&page=2", &staff).await;
    assert_eq!(ids(&page), [a1.as_str()]);
    assert_eq!(
        (page["total"].clone(), page["page"].clone()),
        (json!(4), json!(2))
    );
    let page = list("pageSize=3&page=3", &staff).await;
    assert_eq!((ids(&page).len(), page["total"].clone()), (0, json!(4)));
    assert_eq!(ids(&list("pageSize=100", &staff).await).len(), 4);
    assert_eq!(
        list("pageSize=100", &staff).await["nextCursor"],
        Value::Null
    );
    // Cursors: each page says where the next starts, with the filters kept.
    let walk = |query: &'static str, token: String| {
        let list = &list;
        async move {
            let mut seen = Vec::new();
            let mut page = list(query, &token).await;
            let total = page["total"].clone();
            loop {
                seen.extend(ids(&page));
                let Some(cursor) = page["nextCursor"].as_str() else {
                    assert_eq!(json!(seen.len()), total, "the last page ends the list");
                    return seen;
                };
                page = list(&format!("{query}&cursor={cursor}"), &token).await;
                assert_eq!(page["total"], total, "every page counts all pages");
            }
        }
    };
    assert_eq!(
        walk("pageSize=1", staff.clone()).await,
        [a3.as_str(), b1.as_str(), a2.as_str(), a1.as_str()]
    );
    assert_eq!(
        walk("pageSize=2", ann.clone()).await,
        [a3.as_str(), a2.as_str(), a1.as_str()]
    );
    assert_eq!(
        walk("pageSize=1&status=PAID", staff.clone()).await,
        [b1.as_str()]
    );
    // A cursor stays put while newer orders arrive (a page number would shift).
    let first = list("pageSize=2", &staff).await;
    let cursor = first["nextCursor"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let newest = OrderId::new(Uuid::now_v7());
    let position = append_by(
        &app,
        &order_stream(newest),
        shop.bob,
        &[placed(
            newest,
            shop.bob,
            vec![line(shop.mug, "MUG-1", 1, 900)],
            20 * DAY,
        )],
    )
    .await;
    let next = list(
        &format!("pageSize=2&cursor={cursor}&minPosition={position}"),
        &staff,
    )
    .await;
    assert_eq!(ids(&next), [a2.as_str(), a1.as_str()]);
    assert_eq!(
        (next["total"].clone(), next["nextCursor"].clone()),
        (json!(5), Value::Null)
    );
    // Bad parameters.
    for query in [
        "pageSize=101",
        "pageSize=0",
        "page=0",
        "status=LOST",
        "customerId=42",
        "from=yesterday",
        "to=2025-13-01",
        "from=2025-06-17&to=2025-06-16",
        "sort=newest",
        "status=PAID&status=PLACED",
        "minPosition=-1",
        "cursor=",
        "cursor=not-a-cursor",
        // base64url of "yesterday <uuid>" and of a time with no id
        "cursor=eWVzdGVyZGF5IDAxOTNhMGU4LTAwMDAtNzAwMC04MDAwLTAwMDAwMDAwMDAwMA",
        "cursor=MjAyNS0wNi0xNlQxNTowNjo0MC4wMDAwMDBa",
        "page=2&cursor=MjAyNS0wNi0xNlQxNTowNjo0MC4wMDAwMDBaIDAxOTNhMGU4LTAwMDAtNzAwMC04MDAwLTAwMDAwMDAwMDAwMA",
    ] {
        let response = app.get_as(&format!("/api/v1/orders?{query}"), &staff).await;
        let code = if query.starts_with("minPosition") {
            "invalid_min_position"
        } else {
            "invalid_query"
        };
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{query}");
        assert_problem(response, StatusCode::BAD_REQUEST, code).await;
    }
}

async fn history_is_the_audit_trail(app: TestApp) {
    let shop = seed_orders(&app).await;
    let ann = app.token_for(shop.ann, Role::Customer);
    let a2 = shop.a2.to_string();
    let history: Value = json_of(
        app.get_as(&format!("/api/v1/orders/{a2}/history"), &ann)
            .await,
    )
    .await;
    let stored = app
        .store
        .read_stream(&order_stream(shop.a2), 1, 100)
        .await
        .unwrap();
    let events = history.as_array().unwrap();
    assert_eq!(events.len(), stored.len());
    let types: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(
        types,
        [
            "OrderPlaced",
            "OrderStatusChanged",
            "OrderStatusChanged",
            "ShipmentCreated",
            "OrderStatusChanged"
        ]
    );
    for (i, (event, recorded)) in events.iter().zip(&stored).enumerate() {
        assert_eq!(event["version"], i as u64 + 1);
        assert_eq!(event["eventId"], recorded.event_id.to_string());
        assert_eq!(event["position"], recorded.position);
        assert_eq!(event["data"], *recorded.payload);
        let at = event["at"].as_str().unwrap();
        assert!(at.ends_with('Z') && at.len() == 27, "{at}");
    }
    let positions: Vec<u64> = events
        .iter()
        .map(|e| e["position"].as_u64().unwrap())
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{positions:?}");
    assert_eq!(events[0]["actor"], format!("account-{}", shop.ann));
    assert_eq!(events[1]["actor"], format!("account-{}", shop.admin));
    assert_eq!(events[0]["data"]["customerId"], shop.ann.to_string());
    assert_eq!(
        events[0]["data"]["total"],
        json!({"amount": 2700, "currency": "EUR"})
    );
    assert_eq!(events[1]["data"]["from"], "PLACED");
    assert_eq!(events[1]["data"]["to"], "PAID");
    assert_eq!(events[3]["data"]["trackingNumber"], "JJD0007");
    // The cancelled order's trail ends with the cancellation, reason included.
    let history: Value = json_of(
        app.get_as(&format!("/api/v1/orders/{}/history", shop.a3), &ann)
            .await,
    )
    .await;
    assert_eq!(history[1]["type"], "OrderCancelled");
    assert_eq!(history[1]["data"]["reason"], "changed my mind");
    assert_eq!(history[1]["data"]["by"]["role"], "CUSTOMER");
}

/// An order placed while the projector is not running yet is answered, with its position,
/// once the projector has caught up; the history (from the event store) needs no wait.
async fn orders_wait_for_the_writes(backend: Backend, positions: Positions) {
    let Some(mut app) = spawn_app_with(backend, positions, query_config()).await else {
        return;
    };
    let customer = domain::ids::AccountId::new(Uuid::now_v7());
    let token = app.token_for(customer, Role::Customer);
    let id = OrderId::new(Uuid::now_v7());
    let product = domain::ids::ProductId::new(Uuid::now_v7());
    let position = append_by(
        &app,
        &order_stream(id),
        customer,
        &[placed(
            id,
            customer,
            vec![line(product, "TEE-M", 1, 1500)],
            DAY,
        )],
    )
    .await;
    // Without a position: not there yet (the projector is not running).
    assert_problem(
        app.get_as(&format!("/api/v1/orders/{id}"), &token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // The event store is the source of truth: the history is there at once.
    let history = json_of(
        app.get_as(&format!("/api/v1/orders/{id}/history"), &token)
            .await,
    )
    .await;
    assert_eq!(history[0]["type"], "OrderPlaced");
    let view = tokio::spawn({
        let (client, url, token) = (
            app.client.clone(),
            app.url(&format!("/api/v1/orders/{id}?minPosition={position}")),
            token.clone(),
        );
        async move { client.get(url).bearer_auth(token).send().await.unwrap() }
    });
    let list = tokio::spawn({
        let (client, url, token) = (app.client.clone(), app.url("/api/v1/orders"), token.clone());
        async move {
            client
                .get(url)
                .bearer_auth(token)
                .header("x-emporium-min-position", position)
                .send()
                .await
                .unwrap()
        }
    });
    app.start_projector();
    let view = json_of(view.await.unwrap()).await;
    assert_eq!(view["status"], "PLACED");
    assert_eq!(view["total"]["amount"], 1500);
    let list = json_of(list.await.unwrap()).await;
    assert_eq!(ids(&list), [id.to_string()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_orders_wait_for_writes_through_the_watch() {
    orders_wait_for_the_writes(Backend::Sqlite, Positions::Watch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_orders_wait_for_writes_by_polling() {
    orders_wait_for_the_writes(Backend::Postgres, Positions::Poll).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_event_store_the_history_is_unavailable() {
    use ed25519_dalek::pkcs8::{EncodePrivateKey, EncodePublicKey, spki::der::pem::LineEnding};
    let Some(app) = spawn_app_with(Backend::Sqlite, Positions::Watch, query_config()).await else {
        return;
    };
    let signing = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    let public = signing
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .unwrap();
    let verifier =
        std::sync::Arc::new(web::JwtVerifier::from_public_pem(public.as_bytes()).unwrap());
    let private = signing.to_pkcs8_pem(LineEnding::LF).unwrap();
    let encoding = jsonwebtoken::EncodingKey::from_ed_pem(private.as_bytes()).unwrap();
    let now = chrono::Utc::now().timestamp();
    let claims = web::AccessClaims {
        sub: domain::ids::AccountId::new(Uuid::now_v7()),
        role: Role::Admin,
        iss: "emporium".into(),
        aud: "emporium".into(),
        iat: now,
        exp: now + 600,
        jti: Uuid::now_v7().to_string(),
    };
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
        &claims,
        &encoding,
    )
    .unwrap();

    // A state without `with_event_store` still routes and documents the history.
    let state = query_api::QueryState::new(app.pool.clone(), verifier, None, &query_config());
    assert!(state.history.is_none());
    let (router, doc) = query_api::routes(state).split_for_parts();
    let doc = serde_json::to_value(&doc).unwrap();
    for path in [
        "/api/v1/orders",
        "/api/v1/orders/{id}",
        "/api/v1/orders/{id}/history",
        "/api/v1/customers/me",
        "/api/v1/analytics/sales",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
    let params: Vec<&str> = doc["paths"]["/api/v1/orders"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in [
        "status",
        "customerId",
        "from",
        "to",
        "page",
        "pageSize",
        "minPosition",
    ] {
        assert!(params.contains(&name), "{name} in {params:?}");
    }
    let server = web::server::Application::bind("127.0.0.1:0", router)
        .await
        .unwrap();
    let base = format!("http://{}", server.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run_until_stopped(async {
        let _ = stopped.await;
    }));
    let response = app
        .client
        .get(format!("{base}/api/v1/orders/{}/history", Uuid::now_v7()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::SERVICE_UNAVAILABLE, "unavailable").await;
    let _ = stop.send(());
}
