//! The routes compose with another service's routes on the same paths (the all-in-one
//! binary merges the command API's `PATCH /api/v1/products/{id}` with this `GET`), and
//! the standalone router serves its OpenAPI document and probes.
use reqwest::StatusCode;
use serde_json::Value;
use utoipa_axum::router::OpenApiRouter;

use crate::helpers::{Backend, Positions, query_config, spawn_app, spawn_app_with};

/// A stand-in for another service's write on a path this API reads.
#[utoipa::path(patch, path = "/api/v1/products/{id}", params(("id" = String, Path)), responses((status = 202)))]
async fn patch_product() -> StatusCode {
    StatusCode::ACCEPTED
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_merge_with_other_services_on_shared_paths() {
    let Some(app) = spawn_app_with(Backend::Sqlite, Positions::Watch, query_config()).await else {
        return;
    };
    let sql = app.pool.clone();
    let verifier = {
        let signing = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        use ed25519_dalek::pkcs8::{EncodePublicKey, spki::der::pem::LineEnding};
        let pem = signing
            .verifying_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap();
        std::sync::Arc::new(web::JwtVerifier::from_public_pem(pem.as_bytes()).unwrap())
    };
    let state = query_api::QueryState::new(sql, verifier, None, &query_config());
    let other = OpenApiRouter::new().routes(utoipa_axum::routes!(patch_product));
    let (router, doc) = query_api::routes(state).merge(other).split_for_parts();
    let paths = serde_json::to_value(&doc).unwrap()["paths"]["/api/v1/products/{id}"].clone();
    assert!(
        paths.get("get").is_some() && paths.get("patch").is_some(),
        "{paths}"
    );
    let server = web::server::Application::bind("127.0.0.1:0", router)
        .await
        .unwrap();
    let base = format!("http://{}", server.local_addr().unwrap());
    tokio::spawn(server.run_until_stopped(std::future::pending()));
    let client = reqwest::Client::new();
    let id = uuid::Uuid::now_v7();
    let patched = client
        .patch(format!("{base}/api/v1/products/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::ACCEPTED);
    let got = client
        .get(format!("{base}/api/v1/products/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(got.status(), StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standalone_router_serves_docs_probes_and_metrics() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    let doc: Value = app.get_json("/api-docs/openapi.json").await;
    for path in [
        "/api/v1/products",
        "/api/v1/products/{id}",
        "/api/v1/inventory/{sku}",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
    let params: Vec<&str> = doc["paths"]["/api/v1/products"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        params.contains(&"pageSize") && params.contains(&"minPrice"),
        "{params:?}"
    );
    // The documented bounds of the page parameters are those the lists enforce.
    let schema_of = |path: &str, name: &str| {
        doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap_or_else(|| panic!("{path} documents {name}"))["schema"]
            .clone()
    };
    let bounds = |path: &str, name: &str| {
        let schema = schema_of(path, name);
        (schema["minimum"].as_f64(), schema["maximum"].as_f64())
    };
    for path in ["/api/v1/products", "/api/v1/orders", "/api/v1/inventory"] {
        assert_eq!(bounds(path, "pageSize"), (Some(1.0), Some(100.0)), "{path}");
        assert_eq!(bounds(path, "page"), (Some(1.0), Some(1e6)), "{path}");
        assert_eq!(bounds(path, "minPosition").0, Some(0.0), "{path}");
    }
    assert_eq!(bounds("/api/v1/search", "page"), (Some(1.0), Some(1e4)));
    let lengths = |path: &str, name: &str| {
        let schema = schema_of(path, name);
        (schema["minLength"].as_u64(), schema["maxLength"].as_u64())
    };
    for (path, name) in [
        ("/api/v1/products", "q"),
        ("/api/v1/products", "category"),
        ("/api/v1/search", "q"),
        ("/api/v1/search", "category"),
    ] {
        assert_eq!(lengths(path, name), (Some(1), Some(200)), "{path} {name}");
    }
    assert_eq!(lengths("/api/v1/admin/accounts", "q"), (Some(1), Some(100)));
    assert_eq!(
        bounds("/api/v1/products/{id}/recommendations", "limit"),
        (Some(1.0), Some(50.0))
    );
    let answers = &doc["paths"]["/api/v1/products"]["get"]["responses"];
    for status in ["400", "504"] {
        assert!(
            answers[status]["content"]["application/problem+json"].is_object(),
            "{status}: {answers}"
        );
    }
    assert_eq!(app.get_json("/health/ready").await["status"], "ready");
    assert_eq!(app.get("/health/live").await.status(), StatusCode::OK);
    app.get_json("/api/v1/products").await;
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("http_requests_total"), "{metrics}");
}
