//! `spawn_app` and typed request helpers shared by every test module.
#![allow(dead_code)]

use std::sync::Arc;

use command_api::{
    AppState, BootstrapAdmin, CommandApiConfig, auth::AuthConfig, carts::contract::TestRedis,
};
use eventstore::{EventStore, testsupport::TestBackend};
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub const ADMIN_USERNAME: &str = "admin";
pub const ADMIN_PASSWORD: &str = "bootstrap-admin-password";
pub const CUSTOMER_PASSWORD: &str = "correct horse battery";

pub use eventstore::testsupport::Backend;

/// A running command API.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub backend: Backend,
    pub store: Arc<dyn EventStore>,
    /// The SQL database (tokens, outbox, carts).
    pub sql: sqlx::AnyPool,
    /// The Redis keeping carts, when it is not the SQL database.
    pub redis: Option<TestRedis>,
    _db: TestBackend,
    _shutdown: oneshot::Sender<()>,
    /// More command nodes on the same store ([`TestApp::second_node`]).
    nodes: Vec<oneshot::Sender<()>>,
}

/// Expands each listed async test `fn name(app: TestApp)` into one test per backend:
/// `sqlite::name` and `postgres::name` (skipped when PostgreSQL is absent).
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        eventstore::backend_tests!($crate::helpers::spawn_app; $($name),+);
    };
}

/// Every test node signs with this key, so a second node accepts the first's tokens, as
/// nodes sharing `EMPORIUM_JWT_PRIVATE_KEY` do. (Generated for the tests; signs nothing else.)
const TEST_SIGNING_KEY: &str = "-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEICS0ajZk3gM4WfbduWk2CDe2zPvJrcCfdcJ3XOyj1yxT
-----END PRIVATE KEY-----
";

pub fn config() -> CommandApiConfig {
    CommandApiConfig {
        auth: AuthConfig {
            signing_key_pem: Some(TEST_SIGNING_KEY.into()),
            ..AuthConfig::default()
        },
        aggregate_cache_capacity: 10_000,
        bootstrap_admin: Some(BootstrapAdmin {
            username: ADMIN_USERNAME.into(),
            password: ADMIN_PASSWORD.into(),
        }),
    }
}

/// Starts the command API on a fresh database of `backend`, on a random port.
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, config()).await
}

pub async fn spawn_app_with(backend: Backend, config: CommandApiConfig) -> Option<TestApp> {
    spawn_app_customised(backend, config, None).await
}

/// Starts the command API on SQLite with carts and wishlists in Redis (under a key prefix
/// of its own), or `None` when there is no Redis.
pub async fn spawn_app_with_redis_carts() -> Option<TestApp> {
    let redis = TestRedis::new().await?;
    spawn_app_customised(Backend::Sqlite, config(), Some(redis)).await
}

async fn spawn_app_customised(
    backend: Backend,
    config: CommandApiConfig,
    redis: Option<TestRedis>,
) -> Option<TestApp> {
    let db = TestBackend::open(backend).await?;
    let (store, sql) = (db.store.clone(), db.pool(8).await);
    let mut state: AppState = command_api::build_state(store.clone(), sql.clone(), &config)
        .await
        .expect("state");
    if let Some(redis) = &redis {
        let carts = redis.store(command_api::carts::CartStoreConfig {
            ttl: std::time::Duration::from_secs(3600),
            ..Default::default()
        });
        state = state.with_cart_store(Arc::new(carts));
    }
    let (address, shutdown) = serve(state).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .expect("client");
    Some(TestApp {
        address,
        client,
        backend,
        store,
        sql,
        redis,
        _db: db,
        _shutdown: shutdown,
        nodes: Vec::new(),
    })
}

/// Serves the command API over `state` on a random port until the sender is dropped.
async fn serve(state: AppState) -> (String, oneshot::Sender<()>) {
    let app = web::server::Application::bind("127.0.0.1:0", command_api::router(state))
        .await
        .expect("bind");
    let address = format!("http://{}", app.local_addr().expect("address"));
    let (shutdown, stopped) = oneshot::channel();
    tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    (address, shutdown)
}

impl TestApp {
    /// Another command node on the same store and database, with caches and an order
    /// committer of its own, as a second process has; its base URL. It stops with the app.
    pub async fn second_node(&mut self) -> String {
        self.second_node_with(config()).await
    }

    /// Another command node on the same store and database, with `config` (its bootstrap
    /// admin left out: the first node made it).
    pub async fn second_node_with(&mut self, config: CommandApiConfig) -> String {
        self.second_node_and_state(config).await.0
    }

    /// [`TestApp::second_node_with`], and the node's state (its verifier, its caches).
    pub async fn second_node_and_state(&mut self, config: CommandApiConfig) -> (String, AppState) {
        let config = CommandApiConfig {
            bootstrap_admin: None,
            ..config
        };
        let state = command_api::build_state(self.store.clone(), self.sql.clone(), &config)
            .await
            .expect("state");
        let (address, shutdown) = serve(state.clone()).await;
        self.nodes.push(shutdown);
        (address, state)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// The service's OpenAPI document.
    pub async fn openapi(&self) -> Value {
        self.get("/api-docs/openapi.json")
            .await
            .json()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        let mut request = self.client.patch(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.delete(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }

    pub async fn put(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.put(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }

    /// A GET with a bearer token when one is given.
    pub async fn get_as(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    /// Logs in and returns the token pair as JSON.
    pub async fn login(&self, username: &str, password: &str) -> Value {
        let response = self
            .post(
                "/api/v1/auth/login",
                None,
                &json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "login of {username} failed"
        );
        response.json().await.expect("login body")
    }

    /// The status of a login with these credentials.
    pub async fn login_status(&self, username: &str, password: &str) -> StatusCode {
        self.post(
            "/api/v1/auth/login",
            None,
            &json!({"username": username, "password": password}),
        )
        .await
        .status()
    }

    /// An access token of the bootstrap admin.
    pub async fn admin_token(&self) -> String {
        self.login(ADMIN_USERNAME, ADMIN_PASSWORD).await["accessToken"]
            .as_str()
            .expect("token")
            .to_owned()
    }

    /// Registers a customer with a unique e-mail and mobile number; returns (id, email, mobile).
    pub async fn register_customer(&self) -> (String, String, String) {
        let n = uuid::Uuid::now_v7().as_u128() % 10_000_000_000;
        let email = format!("customer{n}@example.com");
        let mobile = format!("+49{n:010}");
        let response = self
            .post(
                "/api/v1/auth/register",
                None,
                &json!({"name": "Test Customer", "email": email, "mobileNumber": mobile, "password": CUSTOMER_PASSWORD}),
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "registration failed: {}",
            response.text().await.unwrap_or_default()
        );
        let body: Value = response.json().await.expect("body");
        (body["id"].as_str().expect("id").to_owned(), email, mobile)
    }

    /// A new customer's access token and id.
    pub async fn customer(&self) -> (String, String) {
        let (id, email, _) = self.register_customer().await;
        let token = self.login(&email, CUSTOMER_PASSWORD).await["accessToken"]
            .as_str()
            .expect("token")
            .to_owned();
        (token, id)
    }

    /// Creates a product with one variant per (sku, price in cents); returns its id.
    pub async fn create_product(
        &self,
        admin: &str,
        name: &str,
        variants: &[(&str, i64)],
    ) -> String {
        let variants: Vec<Value> = variants
            .iter()
            .map(
                |(sku, amount)| json!({"sku": sku, "price": {"amount": amount, "currency": "EUR"}}),
            )
            .collect();
        let response = self
            .post(
                "/api/v1/products",
                Some(admin),
                &json!({"name": name, "categories": ["test"], "variants": variants}),
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "product: {}",
            response.text().await.unwrap_or_default()
        );
        response.json::<Value>().await.expect("body")["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    /// Adds `units` of stock to `sku`.
    pub async fn restock(&self, admin: &str, sku: &str, units: i64) {
        let response = self
            .post(
                &format!("/api/v1/inventory/{sku}/adjustments"),
                Some(admin),
                &json!({"delta": units, "reason": "restock"}),
            )
            .await;
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "restock: {}",
            response.text().await.unwrap_or_default()
        );
    }

    /// Places an order of `lines` as `customer`.
    pub async fn place_order(&self, customer: &str, lines: &[(&str, i64)]) -> Response {
        let lines: Vec<Value> = lines
            .iter()
            .map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity}))
            .collect();
        self.post(
            "/api/v1/orders",
            Some(customer),
            &json!({"lines": lines, "shippingAddress": address()}),
        )
        .await
    }

    /// The folded stock of `sku`, straight from the log: (on hand, reserved, committed).
    pub async fn stock(&self, sku: &str) -> (i64, i64, i64) {
        use domain::aggregate::Aggregate;
        let stream = eventstore::StreamId::of("stock", sku);
        let events = self
            .store
            .read_stream(&stream, 1, 1_000_000)
            .await
            .expect("read");
        let events: Vec<domain::inventory::StockEvent> = events
            .into_iter()
            .map(|e| {
                domain::aggregate::decode(
                    &e.event_type,
                    e.schema_version,
                    std::sync::Arc::unwrap_or_clone(e.payload),
                )
                .expect("decode")
            })
            .collect();
        let state = domain::inventory::Stock::fold(&events);
        (state.on_hand, state.reserved_total(), state.committed)
    }
}

pub fn address() -> Value {
    json!({"name": "Ada Lovelace", "line1": "1 Analytical Way", "city": "London", "postalCode": "N1 9GU", "country": "GB"})
}

/// Polls `check` every 20 ms until it gives `Some`; panics naming `what` after 10 s.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Asserts a problem+json answer with `status` and `code`; returns the body.
pub async fn assert_problem(response: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status, "unexpected status");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.expect("problem body");
    assert_eq!(body["code"], code, "problem: {body}");
    assert_eq!(body["status"], status.as_u16());
    body
}
