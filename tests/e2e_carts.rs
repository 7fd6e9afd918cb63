//! The real `emporium` binary's carts: kept in the embedded database (they survive a
//! restart), or in Redis when `EMPORIUM_REDIS_URL` says so; checkout places the order.
mod support;

use std::path::Path;

use reqwest::StatusCode;
use serde_json::{Value, json};

use support::{Process, emporium, get, login, spawn_ready};

const ADMIN_PASSWORD: &str = "e2e-carts-bootstrap-password";

async fn start(data: &Path, redis_url: Option<&str>) -> Process {
    let mut command = emporium(data);
    command
        .env("EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD)
        // Test carts left in a shared Redis go away soon.
        .env("EMPORIUM_CART_TTL_SECONDS", "600");
    if let Some(url) = redis_url {
        command.env("EMPORIUM_REDIS_URL", url);
    }
    let server = spawn_ready(command).await;
    let (_, report) = get(
        &reqwest::Client::new(),
        format!("{}/health/ready", server.base),
        None,
    )
    .await;
    assert_eq!(report["checks"]["carts"], "ok", "{report}");
    server
}

async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A product with stock and a new customer: (their e-mail, their id).
async fn shop(client: &reqwest::Client, base: &str) -> (String, String) {
    let admin = login(client, base, "admin", ADMIN_PASSWORD).await;
    let (status, _) = send(client.post(format!("{base}/api/v1/products")).bearer_auth(&admin).json(
        &json!({"name": "Oak shelf", "variants": [{"sku": "SHELF", "price": {"amount": 4_900, "currency": "EUR"}}]}),
    ))
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = send(
        client
            .post(format!("{base}/api/v1/inventory/SHELF/adjustments"))
            .bearer_auth(&admin)
            .json(&json!({"delta": 5, "reason": "delivery"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let n = uuid::Uuid::now_v7().as_u128() % 10_000_000_000;
    let email = format!("cart{n}@example.com");
    let (status, body) = send(client.post(format!("{base}/api/v1/auth/register")).json(
        &json!({"name": "Cart Customer", "email": email, "mobileNumber": format!("+49{n:010}"), "password": "a cart of one's own"}),
    ))
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (email, body["id"].as_str().unwrap().to_owned())
}

async fn cart(client: &reqwest::Client, base: &str, token: &str) -> Value {
    let (status, body) = send(client.get(format!("{base}/api/v1/cart")).bearer_auth(token)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

async fn checkout(client: &reqwest::Client, base: &str, token: &str) {
    let address = json!({"name": "Cart Customer", "line1": "1 Main St", "city": "Berlin", "postalCode": "10115", "country": "DE"});
    let (status, order) = send(
        client
            .post(format!("{base}/api/v1/cart/checkout"))
            .bearer_auth(token)
            .json(&json!({"shippingAddress": address})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    assert!(order["id"].is_string());
    assert_eq!(cart(client, base, token).await["lines"], json!([]));
}

async fn add_shelves(client: &reqwest::Client, base: &str, token: &str) {
    let (status, body) = send(
        client
            .post(format!("{base}/api/v1/cart/items"))
            .bearer_auth(token)
            .json(&json!({"sku": "SHELF", "quantity": 2})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["total"], json!({"amount": 9_800, "currency": "EUR"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_carts_survive_a_restart_and_check_out() {
    let data = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let server = start(data.path(), None).await;
    let (email, _) = shop(&client, &server.base).await;
    let customer = login(&client, &server.base, &email, "a cart of one's own").await;
    add_shelves(&client, &server.base, &customer).await;
    drop(server);

    let server = start(data.path(), None).await;
    let customer = login(&client, &server.base, &email, "a cart of one's own").await;
    let kept = cart(&client, &server.base, &customer).await;
    assert_eq!(kept["lines"][0]["sku"], "SHELF", "{kept}");
    assert_eq!(kept["lines"][0]["quantity"], 2, "{kept}");
    checkout(&client, &server.base, &customer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn carts_live_in_redis_when_a_redis_url_is_set() {
    let url = std::env::var("EMPORIUM_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let reachable = async {
        let client = redis::Client::open(url.as_str())?;
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    if let Err(err) = reachable.await {
        eventstore::testsupport::skip_or_fail("Redis", &url, &err);
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let server = start(data.path(), Some(&url)).await;
    let (email, id) = shop(&client, &server.base).await;
    let customer = login(&client, &server.base, &email, "a cart of one's own").await;
    add_shelves(&client, &server.base, &customer).await;

    // The line is in Redis, in the customer's hash, with the configured TTL.
    let key = format!("emporium:cart:{id}");
    let redis = redis::Client::open(url.as_str()).unwrap();
    let mut conn = redis.get_multiplexed_async_connection().await.unwrap();
    let units: Option<String> = redis::cmd("HGET")
        .arg(&key)
        .arg("SHELF")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(units.as_deref(), Some("2"), "{key}");
    let ttl: i64 = redis::cmd("TTL")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((500..=600).contains(&ttl), "TTL {ttl}");

    checkout(&client, &server.base, &customer).await;
    let exists: i64 = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(exists, 0, "an emptied cart leaves no hash behind");
}
