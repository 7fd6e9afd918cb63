//! The webhook admin API: registration with the SSRF guard, listing without secrets,
//! deletion, the delivery log's paging, and admins only.
use domain::account::Role;
use notifier::webhooks::api::{WebhookApi, routes};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::support::{TestDb, Tokens, serve};

struct Api {
    address: String,
    client: reqwest::Client,
    admin: String,
    tokens: Tokens,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Api {
    async fn start(db: &TestDb, allow_private: bool) -> Self {
        let tokens = Tokens::new(db.sql.clone());
        let state = WebhookApi {
            sql: db.sql.clone(),
            verifier: tokens.auth.verifier(),
            allow_private,
        };
        let (router, _) = routes(state).split_for_parts();
        let (address, stop) = serve(web::layers::apply(router)).await;
        Self {
            address,
            client: reqwest::Client::new(),
            admin: tokens.token(Role::Admin),
            tokens,
            _stop: stop,
        }
    }

    async fn register(&self, token: &str, body: Value) -> (StatusCode, Value) {
        let response = self
            .client
            .post(format!("{}/api/v1/admin/webhooks", self.address))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }
}

async fn internal_addresses_are_refused_without_the_allow_flag(db: TestDb) {
    let api = Api::start(&db, false).await;
    for url in [
        "http://127.0.0.1:9000/hook",
        "http://10.0.0.8/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]:9000/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://localhost:9000/hook",
        "http://0.0.0.0/hook",
    ] {
        let (status, body) = api.register(&api.admin, json!({ "url": url })).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {body}");
        assert_eq!(body["code"], "webhook_url_refused", "{url}: {body}");
    }
    let (_, list) = api.get(&api.admin, "/api/v1/admin/webhooks").await;
    assert_eq!(list["total"], 0, "nothing was stored: {list}");

    let allowed = Api::start(&db, true).await;
    let (status, body) = allowed
        .register(
            &allowed.admin,
            json!({ "url": "http://localhost:9000/hook" }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

async fn bad_input_is_refused(db: TestDb) {
    let api = Api::start(&db, true).await;
    for (body, field) in [
        (json!({ "url": "ftp://example.com/x" }), "url"),
        (json!({ "url": "not a url" }), "url"),
        (json!({ "url": "https://u:p@example.com/" }), "url"),
        (
            json!({ "url": format!("https://example.com/{}", "a".repeat(2048)) }),
            "url",
        ),
        (
            json!({ "url": "http://localhost/x", "eventTypes": ["order.placed", "order.exploded"] }),
            "eventTypes[1]",
        ),
        (
            json!({ "url": "http://localhost/x", "eventTypes": ["emporium.order.placed"] }),
            "eventTypes[0]",
        ),
    ] {
        let (status, problem) = api.register(&api.admin, body.clone()).await;
        assert_eq!(
            status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {problem}"
        );
        assert_eq!(problem["errors"][0]["field"], field, "{problem}");
    }
    let (status, problem) = api
        .register(
            &api.admin,
            json!({ "url": "http://localhost/x", "secret": "mine" }),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    for query in ["pageSize=101", "page=0", "page=1000001"] {
        let (status, problem) = api
            .get(&api.admin, &format!("/api/v1/admin/webhooks?{query}"))
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}: {problem}");
        assert_eq!(problem["code"], "invalid_query", "as on every list");
    }
    let (_, list) = api.get(&api.admin, "/api/v1/admin/webhooks").await;
    assert_eq!(list["total"], 0);
}

async fn only_admins_manage_webhooks(db: TestDb) {
    let api = Api::start(&db, true).await;
    let body = json!({ "url": "http://localhost:9000/hook" });
    let no_token = api
        .client
        .post(format!("{}/api/v1/admin/webhooks", api.address))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        no_token.headers()["content-type"],
        "application/problem+json"
    );
    let (status, _) = api.register("not-a-jwt", body.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    for role in [Role::Customer, Role::Staff] {
        let token = api.tokens.token(role);
        let (status, _) = api.register(&token, body.clone()).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role:?}");
        // Before the body is read: an invalid one gets the same answer.
        let (status, _) = api.register(&token, json!({"unknown": true})).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role:?}");
        let (status, _) = api.get(&token, "/api/v1/admin/webhooks").await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role:?}");
    }
    let (_, list) = api.get(&api.admin, "/api/v1/admin/webhooks").await;
    assert_eq!(list["total"], 0);
}

async fn endpoints_are_registered_listed_and_deleted(db: TestDb) {
    let api = Api::start(&db, true).await;
    let (status, created) = api
        .register(
            &api.admin,
            json!({ "url": "http://localhost:9000/hook", "eventTypes": ["order.shipped", "order.placed", "order.placed"] }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(
        notifier::webhooks::signing::secret_key(secret)
            .unwrap()
            .len(),
        32
    );
    assert_eq!(
        created["eventTypes"],
        json!(["order.placed", "order.shipped"])
    );
    let id = created["id"].as_str().unwrap().to_owned();
    let (_, all_types) = api
        .register(&api.admin, json!({ "url": "https://localhost/other" }))
        .await;
    assert_eq!(all_types["eventTypes"], json!([]));
    assert_ne!(all_types["secret"], created["secret"]);

    let (status, list) = api.get(&api.admin, "/api/v1/admin/webhooks").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["total"], 2);
    assert_eq!(list["items"][0]["id"], id.as_str());
    assert_eq!(list["items"][0]["url"], "http://localhost:9000/hook");
    assert!(
        !list.to_string().contains("whsec_"),
        "secrets are shown only once: {list}"
    );
    let (_, page2) = api
        .get(&api.admin, "/api/v1/admin/webhooks?page=2&pageSize=1")
        .await;
    assert_eq!(page2["items"].as_array().unwrap().len(), 1);
    assert_eq!(page2["items"][0]["id"], all_types["id"]);

    let (status, deliveries) = api
        .get(
            &api.admin,
            &format!("/api/v1/admin/webhooks/{id}/deliveries"),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{deliveries}");
    assert_eq!(deliveries["total"], 0);
    let (status, problem) = api
        .get(
            &api.admin,
            &format!("/api/v1/admin/webhooks/{id}/deliveries?status=lost"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|detail| detail.contains("`pending`, `delivered`, `dead`")),
        "the problem names the states a delivery can be in: {problem}"
    );

    let delete = |id: String| {
        let request = api
            .client
            .delete(format!("{}/api/v1/admin/webhooks/{id}", api.address))
            .bearer_auth(&api.admin);
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(delete(id.clone()).await, StatusCode::NO_CONTENT);
    assert_eq!(delete(id.clone()).await, StatusCode::NOT_FOUND);
    assert_eq!(delete("nonsense".into()).await, StatusCode::NOT_FOUND);
    let (status, _) = api
        .get(
            &api.admin,
            &format!("/api/v1/admin/webhooks/{id}/deliveries"),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = api.get(&api.admin, "/api/v1/admin/webhooks").await;
    assert_eq!(list["total"], 1);
}

crate::backend_tests!(
    internal_addresses_are_refused_without_the_allow_flag,
    bad_input_is_refused,
    only_admins_manage_webhooks,
    endpoints_are_registered_listed_and_deleted,
);
