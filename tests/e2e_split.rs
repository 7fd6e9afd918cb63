//! The split deployment without Docker: two command APIs, two projectors, two query APIs
//! and a notifier, each a real `emporium serve --role …` process on its own loopback port,
//! sharing one PostgreSQL database, one Redis (view cache, carts) and one NATS (integration
//! events), each under a namespace of this test's own. Orders are spread across the
//! command nodes; every one must be visible through both query nodes, stock and sales must
//! be exact, NATS must hold each integration event once, and the notifier must mail each
//! order once.
mod support;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use bus::testsupport::TestNats;
use cache::{RedisConfig, testsupport::test_redis};
use eventstore::testsupport::TestPostgres;
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Process, emporium, eventually, get, login, post, spawn_ready};

const ADMIN_PASSWORD: &str = "split-bootstrap-password";

/// What every node shares.
struct Shared<'a> {
    database_url: &'a str,
    redis: &'a RedisConfig,
    nats: &'a TestNats,
    data: &'a Path,
}

async fn start(role: &str, shared: &Shared<'_>) -> Process {
    let (data, nats) = (shared.data, shared.nats.bus.config());
    let mut command = emporium(data);
    command
        .args(["serve", "--role", role])
        .env("EMPORIUM_DATABASE_URL", shared.database_url)
        .env("EMPORIUM_REDIS_URL", &shared.redis.url)
        .env("EMPORIUM_CACHE_NAMESPACE", &shared.redis.namespace)
        .env("EMPORIUM_NATS_URL", &nats.url)
        .env("EMPORIUM_NATS_STREAM", &nats.stream)
        .env(
            "EMPORIUM_NATS_NAMESPACE",
            nats.namespace.as_deref().unwrap_or_default(),
        )
        // The nodes share a data folder here; each query node keeps its own search index.
        .env(
            "EMPORIUM_SEARCH_DIR",
            data.join(format!("search-{}", uuid::Uuid::now_v7())),
        )
        .env("EMPORIUM_JWT_PRIVATE_KEY_FILE", data.join("shared-jwt.pem"))
        .env("EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD)
        // Seven processes share one PostgreSQL (100 connections here): small pools.
        .env("EMPORIUM_DATABASE_MAX_CONNECTIONS", "4");
    spawn_ready(command).await
}

async fn get_at(
    client: &reqwest::Client,
    url: String,
    token: Option<&str>,
    min_position: u64,
) -> Value {
    let mut request = client
        .get(&url)
        .header("x-emporium-min-position", min_position.to_string());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::OK, "GET {url}: {body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn split_roles_share_one_store_and_agree() {
    let Some(db) = TestPostgres::new().await else {
        return;
    };
    let Some(redis) = test_redis().await else {
        return;
    };
    let Some(nats) = TestNats::connect().await else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let shared = Shared {
        database_url: &db.url,
        redis: &redis,
        nats: &nats,
        data: data.path(),
    };
    // The first command node creates the shared signing key and the admin; the rest reuse them.
    let command_a = start("command", &shared).await;
    let command_b = start("command", &shared).await;
    let _projector_a = start("projector", &shared).await;
    let _projector_b = start("projector", &shared).await;
    let query_a = start("query", &shared).await;
    let query_b = start("query", &shared).await;
    let _notifier = start("notifier", &shared).await;
    let client = reqwest::Client::new();
    let commands = [&command_a.base, &command_b.base];
    let queries = [query_a.base.clone(), query_b.base.clone()];

    let admin = login(&client, &command_a.base, "admin", ADMIN_PASSWORD).await;
    let (status, _) = post(&client, format!("{}/api/v1/products", command_b.base), Some(&admin),
        json!({"name": "Split test", "variants": [{"sku": "SPLIT-1", "price": {"amount": 1000, "currency": "EUR"}},
                                                 {"sku": "SPLIT-2", "price": {"amount": 2500, "currency": "EUR"}}]})).await;
    assert_eq!(status, StatusCode::CREATED);
    for sku in ["SPLIT-1", "SPLIT-2"] {
        let (status, _) = post(
            &client,
            format!("{}/api/v1/inventory/{sku}/adjustments", command_a.base),
            Some(&admin),
            json!({"delta": 30, "reason": "stock"}),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _) = post(&client, format!("{}/api/v1/auth/register", command_a.base), None,
        json!({"name": "Split Buyer", "email": "split@example.com", "mobileNumber": "+4915112345678", "password": "split-buyer-pass"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let buyer = login(
        &client,
        &command_b.base,
        "split@example.com",
        "split-buyer-pass",
    )
    .await;

    // 40 concurrent orders of 1 x SPLIT-1 and 1 x SPLIT-2, alternating command nodes:
    // 30 units of each exist, so exactly 30 orders succeed. Each buyer reads their order
    // back at once from a query node, with the command's position: read-your-writes under
    // load, across processes.
    let address = json!({"name": "B", "line1": "1 Main St", "city": "Berlin", "postalCode": "10115", "country": "DE"});
    let tasks: Vec<_> = (0..40)
        .map(|i| {
            let (client, url, token, address) =
                (client.clone(), format!("{}/api/v1/orders", commands[i % 2]), buyer.clone(), address.clone());
            let query = queries[(i / 2) % 2].clone();
            tokio::spawn(async move {
                let body = json!({"lines": [{"sku": "SPLIT-2", "quantity": 1}, {"sku": "SPLIT-1", "quantity": 1}], "shippingAddress": address});
                let response = client.post(url).bearer_auth(&token).json(&body).send().await.unwrap();
                let status = response.status();
                let body = response.json::<Value>().await.unwrap_or(Value::Null);
                if status == StatusCode::CREATED {
                    let id = body["id"].as_str().unwrap();
                    let position = body["position"].as_u64().unwrap();
                    let mine = get_at(&client, format!("{query}/api/v1/orders/{id}"), Some(&token), position).await;
                    assert_eq!(mine["id"], id, "read-your-writes: {mine}");
                    assert_eq!(mine["status"], "PLACED", "{mine}");
                }
                (status, body)
            })
        })
        .collect();
    let mut placed = Vec::new();
    let mut last_position = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            StatusCode::CREATED => {
                placed.push(body["id"].as_str().unwrap().to_owned());
                last_position = last_position.max(body["position"].as_u64().unwrap());
            }
            StatusCode::CONFLICT => assert_eq!(body["code"], "insufficient_stock", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(placed.len(), 30);

    // Both query nodes agree, once they have caught up with the last order.
    for query in [&query_a.base, &query_b.base] {
        for sku in ["SPLIT-1", "SPLIT-2"] {
            let inventory = get_at(
                &client,
                format!("{query}/api/v1/inventory/{sku}"),
                Some(&admin),
                last_position,
            )
            .await;
            assert_eq!(
                inventory,
                json!({"sku": sku, "onHand": 30, "reserved": 30, "committed": 0, "available": 0})
            );
        }
        let products = get_at(
            &client,
            format!("{query}/api/v1/products"),
            None,
            last_position,
        )
        .await;
        assert_eq!(products["total"], 1);
        // Each query node answers search from its own index.
        let found = get_at(
            &client,
            format!("{query}/api/v1/search?q=split"),
            None,
            last_position,
        )
        .await;
        assert_eq!(found["total"], 1, "{found}");
        // Every order, through either node (the admin's view and the buyer's own list).
        for id in &placed {
            let order = get_at(
                &client,
                format!("{query}/api/v1/orders/{id}"),
                Some(&admin),
                last_position,
            )
            .await;
            assert_eq!(order["status"], "PLACED", "{order}");
            assert_eq!(order["total"], json!({"amount": 3500, "currency": "EUR"}));
        }
        let mine = get_at(
            &client,
            format!("{query}/api/v1/orders?pageSize=100"),
            Some(&buyer),
            last_position,
        )
        .await;
        assert_eq!(mine["total"], 30, "{mine}");
        let sales = get_at(
            &client,
            format!("{query}/api/v1/analytics/sales"),
            Some(&admin),
            last_position,
        )
        .await;
        assert_eq!(sales["totals"]["orders"], 30, "{sales}");
        assert_eq!(sales["totals"]["units"], 60, "{sales}");
        assert_eq!(
            sales["totals"]["revenue"],
            json!([{"amount": 105_000, "currency": "EUR"}])
        );
    }

    // NATS holds each integration event once, though two projectors ran: the product, two
    // restocks, the customer, and the 30 orders (reservations are not integration events).
    let deadline = Instant::now() + Duration::from_secs(60);
    while nats.stored().await < 34 {
        assert!(
            Instant::now() < deadline,
            "{} events on NATS",
            nats.stored().await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The notifier, fed by NATS, mails each order's confirmation once (no SMTP: .eml files).
    let outbox = data.path().join("outbox");
    let count = || {
        std::fs::read_dir(&outbox).map_or(0, |entries| {
            entries
                .filter_map(Result::ok)
                .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
                .count()
        })
    };
    while count() < 30 {
        assert!(Instant::now() < deadline, "{} e-mails written", count());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(nats.stored().await, 34);
    assert_eq!(count(), 30);

    // Locking the buyer through one command node revokes their access token on every
    // node: the other command node and both query nodes refuse it within a second or so.
    let buyer_id = get(
        &client,
        format!("{}/api/v1/customers/me", query_a.base),
        Some(&buyer),
    )
    .await
    .1["id"]
        .as_str()
        .expect("the buyer's id")
        .to_owned();
    // (The command node serves the cart, the query nodes the orders.)
    let own_reads = [
        format!("{}/api/v1/cart", command_b.base),
        format!("{}/api/v1/orders", query_a.base),
        format!("{}/api/v1/orders", query_b.base),
    ];
    for url in &own_reads {
        let (status, _) = get(&client, url.clone(), Some(&buyer)).await;
        assert_eq!(status, StatusCode::OK, "{url} before the lock");
    }
    let (status, _) = post(
        &client,
        format!("{}/api/v1/admin/accounts/{buyer_id}/lock", command_a.base),
        Some(&admin),
        json!({"reason": "card reported stolen"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for url in own_reads {
        eventually(
            &format!("the revocation to reach {url}"),
            Duration::from_secs(10),
            || {
                let (client, url, buyer) = (client.clone(), url.clone(), buyer.clone());
                async move {
                    let (status, _) = get(&client, url, Some(&buyer)).await;
                    (status == StatusCode::UNAUTHORIZED).then_some(())
                }
            },
        )
        .await;
    }
    // The admin's token is not touched.
    let (status, _) = get(
        &client,
        format!("{}/api/v1/orders", query_b.base),
        Some(&admin),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}
