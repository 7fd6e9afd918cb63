//! `spawn_app`: the real query router on a random port, the projector on the same
//! database, a known catalogue seeded through the event store, and test tokens.
#![allow(dead_code)]

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, TimeZone, Utc};
use domain::{
    account::Role,
    aggregate::{DomainEvent, encode},
    catalog::{ProductEvent, VariantSpec},
    ids::{AccountId, OrderId, ProductId, Sku},
    inventory::StockEvent,
    money::{Currency, Money},
};
use ed25519_dalek::{
    SigningKey,
    pkcs8::{EncodePrivateKey, EncodePublicKey, spki::der::pem::LineEnding},
};
use eventstore::{
    EventStore, ExpectedVersion, NewEvent, Position, StreamId, testsupport::TestBackend,
};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use projector::{Projector, RunnerConfig};
use query_api::{QueryConfig, QueryState};
use reqwest::{Response, StatusCode};
use serde_json::{Map, Value, json};
use sqlx::AnyPool;
use tokio::sync::oneshot;
use uuid::Uuid;
use web::AccessClaims;

pub use eventstore::testsupport::Backend;

/// How the app learns where the projections stand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Positions {
    /// The in-process projector's watch.
    Watch,
    /// Polling `projection_checkpoints`.
    Poll,
}

/// A running query API with its projector and database.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub backend: Backend,
    pub store: Arc<dyn EventStore>,
    pub pool: AnyPool,
    /// Verifies this app's tokens (for more query nodes on the same database).
    pub verifier: Arc<web::JwtVerifier>,
    /// The projector's positions (it runs once started).
    pub positions: projector::Positions,
    encoding: EncodingKey,
    projector: Option<Projector>,
    stops: Vec<oneshot::Sender<()>>,
    _db: TestBackend,
}

/// Expands each listed async test `fn name(app: TestApp)` into one test per backend.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        eventstore::backend_tests!($crate::helpers::spawn_app; $($name),+);
    };
}

pub fn query_config() -> QueryConfig {
    QueryConfig {
        min_position_wait: Duration::from_secs(10),
        ..QueryConfig::default()
    }
}

pub fn runner_config() -> RunnerConfig {
    RunnerConfig {
        idle_poll: Duration::from_millis(50),
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(200),
        ownership_poll: Duration::from_millis(50),
        ..RunnerConfig::default()
    }
}

/// The app with a running projector, following positions through its watch.
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    let mut app = spawn_app_with(backend, Positions::Watch, query_config()).await?;
    app.start_projector();
    Some(app)
}

/// The app with its projector not yet started.
pub async fn spawn_app_with(
    backend: Backend,
    positions: Positions,
    config: QueryConfig,
) -> Option<TestApp> {
    let db = TestBackend::open(backend).await?;
    let (store, pool) = (db.store.clone(), db.pool(8).await);
    let projector = Projector::new(
        store.clone(),
        pool.clone(),
        &runner_config(),
        projector::default_projections(),
    );
    let watch = (positions == Positions::Watch).then(|| projector.positions());

    let signing = SigningKey::generate(&mut rand::rngs::OsRng);
    let private = signing.to_pkcs8_pem(LineEnding::LF).expect("private pem");
    let encoding = EncodingKey::from_ed_pem(private.as_bytes()).expect("encoding key");
    let public = signing
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("public pem");
    let verifier = web::JwtVerifier::from_public_pem(public.as_bytes()).expect("verifier");

    let verifier = Arc::new(verifier);
    let state = QueryState::new(pool.clone(), verifier.clone(), watch, &config)
        .with_event_store(store.clone());
    let app = web::server::Application::bind("127.0.0.1:0", query_api::router(state))
        .await
        .expect("bind");
    let address = format!("http://{}", app.local_addr().expect("address"));
    let (stop, stopped) = oneshot::channel();
    tokio::spawn(app.run_until_stopped(async {
        let _ = stopped.await;
    }));
    Some(TestApp {
        address,
        client: reqwest::Client::new(),
        backend,
        store,
        pool,
        verifier,
        positions: projector.positions(),
        encoding,
        projector: Some(projector),
        stops: vec![stop],
        _db: db,
    })
}

impl TestApp {
    /// Starts the projector (once).
    pub fn start_projector(&mut self) {
        let projector = self.projector.take().expect("projector not started yet");
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(projector.run_until_stopped(async {
            let _ = stopped.await;
        }));
        self.stops.push(stop);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn get_as(&self, path: &str, token: &str) -> Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request")
    }

    /// A GET whose JSON body must come with 200.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.expect("json body")
    }

    /// A valid access token of a new account with `role`.
    pub fn token(&self, role: Role) -> String {
        self.token_for(AccountId::new(Uuid::now_v7()), role)
    }

    /// A valid access token of account `id` with `role`.
    pub fn token_for(&self, id: AccountId, role: Role) -> String {
        let now = Utc::now().timestamp();
        let claims = AccessClaims {
            sub: id,
            role,
            iss: "emporium".into(),
            aud: "emporium".into(),
            iat: now,
            exp: now + 600,
            jti: Uuid::now_v7().to_string(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), &claims, &self.encoding)
            .expect("token")
    }

    /// Appends `events` to `stream` and returns the position of the last one.
    pub async fn append<E: DomainEvent>(&self, stream: &StreamId, events: &[E]) -> Position {
        let events = events
            .iter()
            .map(|e| {
                let (event_type, data) = encode(e);
                NewEvent::new(event_type, E::schema_version(e.event_type()), data)
            })
            .collect();
        self.store
            .append(stream, ExpectedVersion::Any, events)
            .await
            .expect("append")
            .position
    }

    /// Waits (polling) until every projection has reached the head of the log.
    pub async fn caught_up(&self) {
        let head = self.store.head_position().await.expect("head");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        for projection in projector::default_projections() {
            let name = projection.name();
            while projector::checkpoint(&self.pool, name)
                .await
                .expect("checkpoint")
                < head
            {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{name} did not catch up"
                );
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    /// Seeds the known catalogue and waits for the projections.
    pub async fn seed(&self) -> Catalogue {
        let catalogue = Catalogue::default();
        let products = [
            (
                catalogue.shirt,
                "Linen Shirt",
                vec!["shirts", "summer"],
                json!({"material": "linen", "colour": "white"}),
                vec![("SHIRT-M", 4900, "M"), ("SHIRT-L", 5200, "L")],
            ),
            (
                catalogue.jumper,
                "Wool Jumper",
                vec!["knitwear"],
                json!({"material": "wool", "colour": "red", "size": {"chest": 100}}),
                vec![("JUMPER-S", 8900, "S")],
            ),
            (
                catalogue.tee,
                "Cotton Tee",
                vec!["shirts"],
                json!({"material": "cotton", "colour": "red", "organic": true}),
                vec![("TEE-M", 1500, "M"), ("TEE-L", 1700, "L")],
            ),
            (
                catalogue.mug,
                "Old Mug",
                vec!["kitchen"],
                json!({"material": "ceramic"}),
                vec![("MUG", 900, "one")],
            ),
            (
                catalogue.scarf,
                "Silk Scarf 100%",
                vec!["accessories"],
                json!({"material": "silk", "colour": "white"}),
                vec![("SCARF", 12000, "one")],
            ),
        ];
        for (i, (id, name, categories, attributes, variants)) in products.into_iter().enumerate() {
            self.append(
                &product_stream(id),
                &[ProductEvent::ProductCreated {
                    id,
                    name: name.into(),
                    description: format!("About {name}"),
                    categories: categories.into_iter().map(String::from).collect(),
                    attributes: object(attributes),
                    variants: variants
                        .into_iter()
                        .map(|(sku, amount, size)| variant(sku, amount, size))
                        .collect(),
                    created_at: at(i as i64),
                }],
            )
            .await;
        }
        self.append(
            &product_stream(catalogue.mug),
            &[ProductEvent::ProductArchived { at: at(10) }],
        )
        .await;
        self.append(
            &StreamId::of("stock", "SHIRT-M"),
            &[
                StockEvent::StockAdjusted {
                    sku: sku("SHIRT-M"),
                    delta: 10,
                    reason: "restock".into(),
                    at: at(11),
                    adjustment_id: None,
                },
                StockEvent::StockReserved {
                    order_id: OrderId::new(Uuid::now_v7()),
                    qty: 3,
                    at: at(12),
                },
            ],
        )
        .await;
        self.append(
            &StreamId::of("stock", "TEE-M"),
            &[StockEvent::StockAdjusted {
                sku: sku("TEE-M"),
                delta: 5,
                reason: "restock".into(),
                at: at(13),
                adjustment_id: None,
            }],
        )
        .await;
        self.caught_up().await;
        catalogue
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        for stop in self.stops.drain(..) {
            let _ = stop.send(());
        }
    }
}

/// The ids of the seeded catalogue.
pub struct Catalogue {
    pub shirt: ProductId,
    pub jumper: ProductId,
    pub tee: ProductId,
    pub mug: ProductId,
    pub scarf: ProductId,
}

impl Default for Catalogue {
    fn default() -> Self {
        let id = || ProductId::new(Uuid::now_v7());
        Self {
            shirt: id(),
            jumper: id(),
            tee: id(),
            mug: id(),
            scarf: id(),
        }
    }
}

pub fn product_stream(id: ProductId) -> StreamId {
    StreamId::of("product", id)
}

pub fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + seconds, 0)
        .single()
        .expect("time")
}

pub fn sku(text: &str) -> Sku {
    Sku::parse(text).expect("sku")
}

pub fn eur(amount: i64) -> Money {
    Money::new(amount, Currency::EUR)
}

pub fn variant(code: &str, amount: i64, size: &str) -> VariantSpec {
    VariantSpec {
        sku: sku(code),
        price: eur(amount),
        options: [("size".to_owned(), size.to_owned())].into(),
    }
}

pub fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// A response's `ETag`.
pub fn etag(response: &Response) -> String {
    response.headers()["etag"]
        .to_str()
        .expect("a textual ETag")
        .to_owned()
}

/// The version a product's `ETag` names, as the command side reads it from `If-Match`.
pub fn tag_version(tag: &str) -> Option<u64> {
    web::etag::parse_if_match(tag).and_then(web::etag::IfMatch::expected_version)
}

/// The names of a list answer's items, in order.
pub fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_owned())
        .collect()
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
