//! Webhook deliveries against a receiver started by the test: signatures verified with the
//! secret, retries after 500s with the same `webhook-id`, the dead letter after the limit,
//! and the SSRF guard at delivery time.
use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::post,
};
use bus::{Bus, InProcessBus, InProcessConfig};
use domain::account::Role;
use notifier::webhooks::{
    WebhookConfig,
    api::{WebhookApi, routes},
    delivery::{self, Worker},
    signing,
};
use serde_json::{Value, json};
use tokio::sync::Notify;

use crate::support::{TestDb, Tokens, eventually, restock, serve};

/// What the receiver saw: headers and body of each request.
#[derive(Default)]
struct Seen {
    requests: Mutex<Vec<(HeaderMap, String)>>,
    failures_left: AtomicUsize,
}

async fn receive(State(seen): State<Arc<Seen>>, headers: HeaderMap, body: String) -> StatusCode {
    seen.requests.lock().unwrap().push((headers, body));
    let failing = seen
        .failures_left
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if failing {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    }
}

struct Rig {
    seen: Arc<Seen>,
    receiver: String,
    api: String,
    admin: String,
    client: reqwest::Client,
    _stops: Vec<tokio::sync::oneshot::Sender<()>>,
}

impl Rig {
    async fn start(db: &TestDb, failures: usize) -> Self {
        let seen = Arc::new(Seen {
            failures_left: AtomicUsize::new(failures),
            ..Seen::default()
        });
        let (receiver, stop_receiver) = serve(
            Router::new()
                .route("/hook", post(receive))
                .with_state(seen.clone()),
        )
        .await;
        let tokens = Tokens::new(db.sql.clone());
        let (router, _) = routes(WebhookApi {
            sql: db.sql.clone(),
            verifier: tokens.auth.verifier(),
            allow_private: true,
        })
        .split_for_parts();
        let (api, stop_api) = serve(router).await;
        Self {
            seen,
            receiver,
            api,
            admin: tokens.token(Role::Admin),
            client: reqwest::Client::new(),
            _stops: vec![stop_receiver, stop_api],
        }
    }

    async fn register(&self, types: Value) -> (String, String) {
        let created: Value = self
            .client
            .post(format!("{}/api/v1/admin/webhooks", self.api))
            .bearer_auth(&self.admin)
            .json(&json!({ "url": format!("{}/hook", self.receiver), "eventTypes": types }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            created["id"].as_str().unwrap().to_owned(),
            created["secret"].as_str().unwrap().to_owned(),
        )
    }

    async fn deliveries(&self, endpoint: &str) -> Value {
        self.client
            .get(format!(
                "{}/api/v1/admin/webhooks/{endpoint}/deliveries",
                self.api
            ))
            .bearer_auth(&self.admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

fn fast(max_attempts: u32, allow_private: bool) -> WebhookConfig {
    WebhookConfig {
        allow_private,
        max_attempts,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(200),
        timeout: Duration::from_secs(5),
        poll_interval: Duration::from_millis(20),
        ..WebhookConfig::default()
    }
}

/// Runs the recorder and the worker until the guard is dropped.
fn run_notifier(db: &TestDb, config: WebhookConfig) -> tokio::sync::oneshot::Sender<()> {
    let bus: Arc<dyn Bus> = Arc::new(InProcessBus::new(
        db.store.clone(),
        db.sql.clone(),
        InProcessConfig::default(),
    ));
    let wake = Arc::new(Notify::new());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stopped = futures::future::FutureExt::shared(async move {
        let _ = stopped.await;
    });
    tokio::spawn(delivery::run_recorder(
        bus,
        db.sql.clone(),
        wake.clone(),
        stopped.clone(),
    ));
    let worker = Worker::new(db.sql.clone(), config).unwrap();
    tokio::spawn(worker.run(wake, stopped));
    stop
}

async fn delivery_with_status(rig: &Rig, endpoint: &str, status: &str) -> Value {
    eventually(
        &format!("a {status} delivery"),
        Duration::from_secs(20),
        || async {
            let log = rig.deliveries(endpoint).await;
            let first = log["items"].get(0).cloned()?;
            (first["status"] == status).then_some(first)
        },
    )
    .await
}

async fn retries_after_500s_then_delivers_with_one_webhook_id(db: TestDb) {
    let rig = Rig::start(&db, 2).await;
    let (endpoint, secret) = rig.register(json!(["stock.adjusted"])).await;
    let (other, _) = rig.register(json!(["order.placed"])).await;
    let _notifier = run_notifier(&db, fast(5, true));
    restock(&db.store, "TEE-M", 5).await;

    let delivered = delivery_with_status(&rig, &endpoint, "delivered").await;
    let attempts = delivered["attempts"].as_array().unwrap();
    let codes: Vec<&Value> = attempts.iter().map(|a| &a["statusCode"]).collect();
    assert_eq!(
        codes,
        [&json!(500), &json!(500), &json!(204)],
        "{delivered}"
    );
    assert_eq!(delivered["eventType"], "stock.adjusted");
    assert!(delivered["nextAttemptAt"].is_null());

    let requests = rig.seen.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 3);
    let event_id = delivered["eventId"].as_str().unwrap();
    for (headers, body) in &requests {
        let id = headers["webhook-id"].to_str().unwrap();
        assert_eq!(id, event_id, "the same webhook-id on every attempt");
        let timestamp: i64 = headers["webhook-timestamp"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((chrono::Utc::now().timestamp() - timestamp).abs() < 60);
        let signature = headers["webhook-signature"].to_str().unwrap();
        assert!(
            signing::verify(&secret, id, timestamp, body, signature),
            "signature verifies with the secret"
        );
        assert!(!signing::verify(
            &signing::new_secret(),
            id,
            timestamp,
            body,
            signature
        ));
        let body: Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["type"], "stock.adjusted");
        assert_eq!(body["data"]["sku"], "TEE-M");
        assert_eq!(body["data"]["delta"], 5);
        assert!(body["timestamp"].is_string());
    }
    assert_eq!(requests[0].1, requests[2].1, "the body never changes");
    assert_eq!(rig.deliveries(&other).await["total"], 0, "filtered by type");
}

async fn dead_letters_after_the_attempt_limit(db: TestDb) {
    let rig = Rig::start(&db, usize::MAX).await;
    let (endpoint, _) = rig.register(json!([])).await;
    let _notifier = run_notifier(&db, fast(3, true));
    restock(&db.store, "TEE-L", 1).await;

    let dead = delivery_with_status(&rig, &endpoint, "dead").await;
    let attempts = dead["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3, "{dead}");
    assert!(attempts.iter().all(|a| a["statusCode"] == 500));
    assert!(dead["nextAttemptAt"].is_null());
    let dead_list: Value = rig
        .client
        .get(format!(
            "{}/api/v1/admin/webhooks/{endpoint}/deliveries?status=dead",
            rig.api
        ))
        .bearer_auth(&rig.admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(dead_list["total"], 1);
    // A later event is delivered on its own; the dead one is not retried.
    rig.seen.failures_left.store(0, Ordering::SeqCst);
    restock(&db.store, "TEE-L", 2).await;
    eventually(
        "the next event delivered",
        Duration::from_secs(20),
        || async {
            let log = rig.deliveries(&endpoint).await;
            (log["items"][0]["status"] == "delivered").then_some(())
        },
    )
    .await;
    assert_eq!(rig.seen.requests.lock().unwrap().len(), 4);
}

async fn the_guard_refuses_internal_addresses_at_delivery_time(db: TestDb) {
    // Registered while private addresses were allowed; the notifier does not allow them.
    let rig = Rig::start(&db, 0).await;
    let (endpoint, _) = rig.register(json!([])).await;
    let _notifier = run_notifier(&db, fast(2, false));
    restock(&db.store, "TEE-S", 1).await;
    let dead = delivery_with_status(&rig, &endpoint, "dead").await;
    for attempt in dead["attempts"].as_array().unwrap() {
        assert!(attempt["statusCode"].is_null(), "{dead}");
        assert!(
            attempt["error"]
                .as_str()
                .unwrap()
                .contains("public address"),
            "{dead}"
        );
    }
    assert!(
        rig.seen.requests.lock().unwrap().is_empty(),
        "never connected"
    );
}

async fn events_are_recorded_once_and_only_for_later_endpoints(db: TestDb) {
    let rig = Rig::start(&db, 0).await;
    restock(&db.store, "OLD-1", 1).await;
    let (endpoint, _) = rig.register(json!([])).await;
    restock(&db.store, "NEW-1", 1).await;
    let events = db.store.read_all(0, 100).await.unwrap();
    let mapped = bus::Mapper::new(db.store.clone())
        .map_batch(&events)
        .await
        .unwrap();
    let (old, new) = (&mapped[0], &mapped[1]);
    assert_eq!(delivery::record(&db.sql, old).await.unwrap(), 0);
    assert_eq!(delivery::record(&db.sql, new).await.unwrap(), 1);
    assert_eq!(
        delivery::record(&db.sql, new).await.unwrap(),
        0,
        "a redelivered event adds nothing"
    );
    assert_eq!(rig.deliveries(&endpoint).await["total"], 1);
}

crate::backend_tests!(
    retries_after_500s_then_delivers_with_one_webhook_id,
    dead_letters_after_the_attempt_limit,
    the_guard_refuses_internal_addresses_at_delivery_time,
    events_are_recorded_once_and_only_for_later_endpoints,
);
