//! The real `emporium` binary's carts: kept in the embedded database (they survive a
//! restart), or in Redis when `EMPORIUM_REDIS_URL` says so; checkout places the order.
use std::{
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::{Value, json};

const ADMIN_PASSWORD: &str = "e2e-carts-bootstrap-password";

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start(data: &Path, redis_url: Option<&str>) -> Server {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_emporium"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("EMPORIUM_DATA_DIR", data)
        .env("EMPORIUM_LOG", "warn")
        .env("EMPORIUM_ADDR", format!("127.0.0.1:{port}"))
        .env("EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD)
        // Test carts left in a shared Redis go away soon.
        .env("EMPORIUM_CART_TTL_SECONDS", "600")
        .stdout(Stdio::null());
    if let Some(url) = redis_url {
        command.env("EMPORIUM_REDIS_URL", url);
    }
    let server = Server {
        child: command.spawn().expect("start emporium"),
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ready = client
            .get(format!("{}/health/ready", server.base))
            .send()
            .await;
        if let Ok(response) = ready
            && response.status() == StatusCode::OK
        {
            let report: Value = response.json().await.unwrap();
            assert_eq!(report["checks"]["carts"], "ok", "{report}");
            return server;
        }
        assert!(Instant::now() < deadline, "emporium did not become ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn login(client: &reqwest::Client, base: &str, username: &str, password: &str) -> String {
    let (status, body) = send(
        client
            .post(format!("{base}/api/v1/auth/login"))
            .json(&json!({"username": username, "password": password})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "login {username}: {body}");
    body["accessToken"].as_str().unwrap().to_owned()
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
