//! The split deployment with the shared view cache: `emporium serve --role …` processes on
//! one PostgreSQL database and one Redis (`EMPORIUM_REDIS_URL`, a namespace of this test's
//! own). The projector node writes product views through to Redis, both query nodes serve
//! the current view, and every node that uses Redis reports it in `/health/ready`.
mod support;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use cache::{RedisConfig, SharedViews, testsupport::test_redis};
use eventstore::testsupport::TestPostgres;
use reqwest::StatusCode;
use serde_json::{Value, json};

use support::{Process, emporium, eventually, get, spawn_ready};

const ADMIN_PASSWORD: &str = "cache-bootstrap-password";

async fn start(role: &str, database_url: &str, redis: &RedisConfig, data: &Path) -> Process {
    let mut command = emporium(data);
    command
        .args(["serve", "--role", role])
        .env("EMPORIUM_DATABASE_URL", database_url)
        .env("EMPORIUM_REDIS_URL", &redis.url)
        .env("EMPORIUM_CACHE_NAMESPACE", &redis.namespace)
        .env("EMPORIUM_CACHE_REDIS_TTL_SECONDS", "60")
        // Every query node keeps its own search index.
        .env(
            "EMPORIUM_SEARCH_DIR",
            data.join(format!("search-{}", uuid::Uuid::now_v7())),
        )
        .env("EMPORIUM_JWT_PRIVATE_KEY_FILE", data.join("shared-jwt.pem"))
        .env("EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD);
    let node = spawn_ready(command).await;
    // Ready, not merely degraded: Redis answers this node.
    let client = reqwest::Client::new();
    eventually(
        &format!("{role} to use Redis"),
        Duration::from_secs(60),
        || async {
            let (_, report) = get(&client, format!("{}/health/ready", node.base), None).await;
            (report["status"] == "ready").then_some(())
        },
    )
    .await;
    node
}

/// Polls until Redis holds `version` of product `id`; returns its view.
async fn in_redis(shared: &SharedViews, id: &str, version: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(Some(stored)) = shared.get("product", id).await
            && stored.version == version
        {
            return serde_json::from_str(&stored.view).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "version {version} of {id} did not reach Redis"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projector_nodes_write_views_through_and_query_nodes_serve_them() {
    let Some(redis) = test_redis().await else {
        return;
    };
    let Some(db) = TestPostgres::new().await else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let command = start("command", &db.url, &redis, data.path()).await;
    let projector = start("projector", &db.url, &redis, data.path()).await;
    let query_a = start("query", &db.url, &redis, data.path()).await;
    let query_b = start("query", &db.url, &redis, data.path()).await;
    let client = reqwest::Client::new();
    let shared = SharedViews::connect(redis.clone()).unwrap();

    let login: Value = client
        .post(format!("{}/api/v1/auth/login", command.base))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let admin = login["accessToken"].as_str().unwrap().to_owned();
    let created: Value = client
        .post(format!("{}/api/v1/products", command.base))
        .bearer_auth(&admin)
        .json(&json!({"name": "Cached Lamp", "variants": [{"sku": "LAMP-1", "price": {"amount": 3000, "currency": "EUR"}}]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(in_redis(&shared, &id, 1).await["name"], "Cached Lamp");

    let response = client
        .patch(format!("{}/api/v1/products/{id}", command.base))
        .bearer_auth(&admin)
        .header("if-match", "\"1\"")
        .json(&json!({"name": "Brighter Lamp"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let position = response.json::<Value>().await.unwrap()["position"]
        .as_u64()
        .unwrap();
    assert_eq!(in_redis(&shared, &id, 2).await["name"], "Brighter Lamp");
    for query in [&query_a, &query_b] {
        let response = client
            .get(format!("{}/api/v1/products/{id}", query.base))
            .header("x-emporium-min-position", position)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let tag = response.headers()["etag"].to_str().unwrap().to_owned();
        assert!(
            tag.starts_with("\"2."),
            "the version, then the stock digest: {tag}"
        );
        assert_eq!(
            response.json::<Value>().await.unwrap()["name"],
            "Brighter Lamp"
        );
    }
    for node in [&projector, &query_a, &query_b] {
        let ready: Value = client
            .get(format!("{}/health/ready", node.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(ready["checks"]["cache"], "ok", "{ready}");
    }
    let ready: Value = client
        .get(format!("{}/health/ready", command.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(ready["checks"].get("cache").is_none(), "{ready}");
}
