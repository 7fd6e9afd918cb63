//! Databases per test, admin tokens, an API server, and polling with a deadline.
#![allow(dead_code)]

use std::{future::Future, sync::Arc, time::Duration};

use command_api::auth::{Auth, AuthConfig};
use domain::{account::Role, ids::AccountId};
use eventstore::{EventStore, testsupport::TestBackend};
use sqlx::AnyPool;
use tokio::sync::oneshot;
use web::AccessClaims;

pub use eventstore::testsupport::Backend;

/// A migrated event store and SQL database of the test's own.
pub struct TestDb {
    pub store: Arc<dyn EventStore>,
    pub sql: AnyPool,
    pub backend: Backend,
    _db: TestBackend,
}

impl TestDb {
    /// A fresh database, or `None` when PostgreSQL is absent and not required.
    pub async fn new(backend: Backend) -> Option<Self> {
        let db = TestBackend::open(backend).await?;
        Some(Self {
            store: db.store.clone(),
            sql: db.pool(8).await,
            backend,
            _db: db,
        })
    }
}

/// Expands each listed async test `fn name(db: TestDb)` into `sqlite::name` and
/// `postgres::name` (skipped when PostgreSQL is absent).
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        eventstore::backend_tests!($crate::support::TestDb::new; $($name),+);
    };
}

/// Signs tokens for any account and role.
pub struct Tokens {
    pub auth: Auth,
}

impl Tokens {
    pub fn new(sql: AnyPool) -> Self {
        let config = AuthConfig {
            signing_key_pem: Some(command_api::auth::keys::generate_pem().unwrap()),
            ..AuthConfig::default()
        };
        Self {
            auth: Auth::new(&config, sql).unwrap(),
        }
    }

    pub fn token(&self, role: Role) -> String {
        let now = chrono::Utc::now().timestamp();
        self.auth
            .sign(&AccessClaims {
                sub: AccountId::new(uuid::Uuid::now_v7()),
                role,
                iss: web::jwt::ISSUER.into(),
                aud: web::jwt::ISSUER.into(),
                iat: now,
                exp: now + 600,
                jti: uuid::Uuid::now_v7().to_string(),
            })
            .unwrap()
    }
}

/// Serves `router` on a free loopback port until the returned guard is dropped.
pub async fn serve(router: axum::Router) -> (String, oneshot::Sender<()>) {
    let app = web::server::Application::bind("127.0.0.1:0", router)
        .await
        .expect("bind");
    let address = format!("http://{}", app.local_addr().expect("address"));
    let (stop, stopped) = oneshot::channel();
    tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    (address, stop)
}

/// Polls `check` until it returns `Some`, or panics after `deadline` saying `what`.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Appends `events` to `stream`; returns the last position.
pub async fn append<E: domain::aggregate::DomainEvent>(
    store: &Arc<dyn EventStore>,
    stream: &eventstore::StreamId,
    events: &[E],
) -> u64 {
    let events = events
        .iter()
        .map(|e| {
            let (event_type, data) = domain::aggregate::encode(e);
            eventstore::NewEvent::new(event_type, E::schema_version(e.event_type()), data)
        })
        .collect();
    store
        .append(stream, eventstore::ExpectedVersion::Any, events)
        .await
        .expect("append")
        .position
}

/// A restock of `sku`, now.
pub async fn restock(store: &Arc<dyn EventStore>, sku: &str, delta: i64) -> u64 {
    append(
        store,
        &eventstore::StreamId::of("stock", sku),
        &[domain::inventory::StockEvent::StockAdjusted {
            sku: domain::ids::Sku::parse(sku).expect("sku"),
            delta,
            reason: "restock".into(),
            at: chrono::Utc::now(),
            adjustment_id: None,
        }],
    )
    .await
}

/// The command API over a test database, driven as a shop's users would.
pub struct Shop {
    pub address: String,
    pub client: reqwest::Client,
    admin: String,
    _stop: oneshot::Sender<()>,
}

pub const CUSTOMER_PASSWORD: &str = "correct horse battery";

impl Shop {
    /// Starts the command API with a bootstrap admin, and signs the admin in.
    pub async fn open(db: &TestDb) -> Self {
        let config = command_api::CommandApiConfig {
            auth: AuthConfig::default(),
            aggregate_cache_capacity: 1_000,
            bootstrap_admin: Some(command_api::BootstrapAdmin {
                username: "admin".into(),
                password: "bootstrap-admin-password".into(),
            }),
        };
        let state = command_api::build_state(db.store.clone(), db.sql.clone(), &config)
            .await
            .expect("command state");
        let (address, stop) = serve(command_api::router(state)).await;
        let mut shop = Self {
            address,
            client: reqwest::Client::new(),
            admin: String::new(),
            _stop: stop,
        };
        shop.admin = shop.login("admin", "bootstrap-admin-password").await;
        shop
    }

    /// POSTs `body` to `path` as `token`; the status and the JSON answer (`Null` if none).
    pub async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &serde_json::Value,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let mut request = self
            .client
            .post(format!("{}{path}", self.address))
            .json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        let body = response.json().await.unwrap_or(serde_json::Value::Null);
        (status, body)
    }

    /// POSTs as the admin and expects a 2xx answer.
    pub async fn admin(&self, path: &str, body: &serde_json::Value) -> serde_json::Value {
        let (status, answer) = self.post(path, Some(&self.admin.clone()), body).await;
        assert!(status.is_success(), "{path}: {status} {answer}");
        answer
    }

    /// An access token for `username`.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let (status, body) = self
            .post(
                "/api/v1/auth/login",
                None,
                &serde_json::json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::OK, "login: {body}");
        body["accessToken"].as_str().expect("token").to_owned()
    }

    /// Registers `name` <`email`> and signs them in.
    pub async fn customer(&self, name: &str, email: &str) -> String {
        let n = uuid::Uuid::now_v7().as_u128() % 10_000_000_000;
        let (status, body) = self
            .post(
                "/api/v1/auth/register",
                None,
                &serde_json::json!({"name": name, "email": email, "mobileNumber": format!("+49{n:010}"), "password": CUSTOMER_PASSWORD}),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "register: {body}");
        self.login(email, CUSTOMER_PASSWORD).await
    }

    /// A product with one variant `sku` at `cents` EUR, with `units` in stock.
    pub async fn product(&self, name: &str, sku: &str, cents: i64, units: i64) {
        self.admin(
            "/api/v1/products",
            &serde_json::json!({"name": name, "categories": ["test"],
                "variants": [{"sku": sku, "price": {"amount": cents, "currency": "EUR"}}]}),
        )
        .await;
        self.admin(
            &format!("/api/v1/inventory/{sku}/adjustments"),
            &serde_json::json!({"delta": units, "reason": "restock"}),
        )
        .await;
    }

    /// Places an order of `quantity` × `sku` as `customer`; returns its id.
    pub async fn order(&self, customer: &str, sku: &str, quantity: u32) -> String {
        let (status, body) = self
            .post(
                "/api/v1/orders",
                Some(customer),
                &serde_json::json!({"lines": [{"sku": sku, "quantity": quantity}],
                    "shippingAddress": {"name": "Ada Lovelace", "line1": "1 Analytical Way", "city": "London", "postalCode": "N1 9GU", "country": "GB"}}),
            )
            .await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "order: {body}");
        body["id"].as_str().expect("order id").to_owned()
    }
}
