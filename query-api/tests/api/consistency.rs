//! Read-your-writes: `X-Emporium-Min-Position` / `?minPosition` wait for the projections
//! (through the projector's watch, or by polling the checkpoints), and time out with 504.
use std::time::Duration;

use domain::{account::Role, catalog::ProductEvent, inventory::StockEvent};
use eventstore::StreamId;
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{
    Backend, Positions, assert_problem, at, object, product_stream, query_config, sku,
    spawn_app_with, variant,
};

/// With a short wait, a position in the log that the projections have not reached is a
/// 504 `timeout` problem; one past the log's end is refused, as no write answered with it.
async fn unreached_positions_time_out_and_positions_past_the_log_are_refused(
    backend: Backend,
    positions: Positions,
) {
    // The projector is not started: nothing in the log is projected yet.
    let Some(mut app) = spawn_app_with(backend, positions, short_wait()).await else {
        return;
    };
    let id = domain::ids::ProductId::new(uuid::Uuid::now_v7());
    let head = app
        .append(
            &product_stream(id),
            &[ProductEvent::ProductCreated {
                id,
                name: "Slow Bread".into(),
                description: String::new(),
                categories: vec!["bakery".into()],
                attributes: object(serde_json::json!({})),
                variants: vec![variant("SLOW", 350, "one")],
                created_at: at(0),
            }],
        )
        .await;
    assert_eq!(head, app.store.head_position().await.unwrap());
    let body = assert_problem(
        app.get(&format!("/api/v1/products?minPosition={head}"))
            .await,
        StatusCode::GATEWAY_TIMEOUT,
        "timeout",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains(&head.to_string()));
    let response = app
        .client
        .get(app.url(&format!("/api/v1/products/{id}")))
        .header("x-emporium-min-position", head)
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::GATEWAY_TIMEOUT, "timeout").await;
    let response = app
        .client
        .get(app.url("/api/v1/inventory/SLOW"))
        .bearer_auth(app.token(Role::Admin))
        .header("x-emporium-min-position", head)
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::GATEWAY_TIMEOUT, "timeout").await;

    // Past the log's end: refused on every read side, not timed out (the wait is 300 ms,
    // the log is asked after 250).
    let past = head + 1;
    for path in [
        format!("/api/v1/products?minPosition={past}"),
        format!("/api/v1/products/{id}?minPosition={past}"),
        format!("/api/v1/products/{id}/recommendations?minPosition={past}"),
        format!("/api/v1/inventory/SLOW?minPosition={past}"),
        "/api/v1/products?minPosition=9223372036854775807".to_owned(),
    ] {
        let body = assert_problem(
            app.get_as(&path, &app.token(Role::Admin)).await,
            StatusCode::BAD_REQUEST,
            "invalid_min_position",
        )
        .await;
        assert!(
            body["detail"]
                .as_str()
                .unwrap()
                .contains(&format!("past the end of the event log ({head})")),
            "{path}: {body}"
        );
    }
    // Bad input is refused as such, not after waiting for the position.
    for path in [
        format!("/api/v1/products?minPosition={head}&pageSize=1000"),
        format!("/api/v1/products/{id}/recommendations?minPosition={head}&limit=0"),
    ] {
        let response = app.get(&path).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{path}");
    }
    // A position past the largest there can be is no position at all.
    assert_problem(
        app.get("/api/v1/products?minPosition=9223372036854775808")
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_min_position",
    )
    .await;
    // Once projected, the same position answers at once.
    app.start_projector();
    let response = app
        .client
        .get(app.url(&format!("/api/v1/products/{id}?minPosition={head}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

fn short_wait() -> query_api::QueryConfig {
    query_api::QueryConfig {
        min_position_wait: Duration::from_millis(300),
        ..query_config()
    }
}

/// Requests sent before the projector has even started are answered with the new data
/// once it has caught up.
async fn reads_wait_for_the_writes(backend: Backend, positions: Positions) {
    let Some(mut app) = spawn_app_with(backend, positions, query_config()).await else {
        return;
    };
    let id = domain::ids::ProductId::new(uuid::Uuid::now_v7());
    let created = app
        .append(
            &product_stream(id),
            &[ProductEvent::ProductCreated {
                id,
                name: "Fresh Bread".into(),
                description: String::new(),
                categories: vec!["bakery".into()],
                attributes: object(serde_json::json!({})),
                variants: vec![variant("BREAD", 350, "one")],
                created_at: at(0),
            }],
        )
        .await;
    let stocked = app
        .append(
            &StreamId::of("stock", "BREAD"),
            &[StockEvent::StockAdjusted {
                sku: sku("BREAD"),
                delta: 12,
                reason: "baked".into(),
                at: at(1),
                adjustment_id: None,
            }],
        )
        .await;
    let product = tokio::spawn({
        let (client, url) = (
            app.client.clone(),
            app.url(&format!("/api/v1/products/{id}?minPosition={created}")),
        );
        async move { client.get(url).send().await.unwrap() }
    });
    let list = tokio::spawn({
        let (client, url) = (
            app.client.clone(),
            app.url("/api/v1/products?category=bakery"),
        );
        async move {
            client
                .get(url)
                .header("x-emporium-min-position", stocked)
                .send()
                .await
                .unwrap()
        }
    });
    let stock = tokio::spawn({
        let (client, url, token) = (
            app.client.clone(),
            app.url("/api/v1/inventory/BREAD"),
            app.token(Role::Staff),
        );
        async move {
            client
                .get(url)
                .bearer_auth(token)
                .header("x-emporium-min-position", stocked)
                .send()
                .await
                .unwrap()
        }
    });
    app.start_projector();

    let response = product.await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap()["name"],
        "Fresh Bread"
    );
    let response = list.await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let list: Value = response.json().await.unwrap();
    assert_eq!(list["total"], 1);
    assert_eq!(list["items"][0]["variants"][0]["available"], 12);
    let response = stock.await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["onHand"], 12);

    // Once running: a write, then a read of exactly its position.
    let renamed = app
        .append(
            &product_stream(id),
            &[ProductEvent::ProductUpdated {
                name: Some("Sourdough".into()),
                description: None,
                categories: None,
                attributes: None,
                updated_at: at(2),
            }],
        )
        .await;
    let view = app
        .get_json(&format!("/api/v1/products/{id}?minPosition={renamed}"))
        .await;
    assert_eq!(view["name"], "Sourdough");
    assert_eq!(view["version"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_unreached_positions_time_out_and_positions_past_the_log_are_refused() {
    unreached_positions_time_out_and_positions_past_the_log_are_refused(
        Backend::Sqlite,
        Positions::Watch,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_unreached_positions_time_out_and_positions_past_the_log_are_refused_by_polling() {
    unreached_positions_time_out_and_positions_past_the_log_are_refused(
        Backend::Postgres,
        Positions::Poll,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_reads_wait_for_writes_through_the_watch() {
    reads_wait_for_the_writes(Backend::Sqlite, Positions::Watch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_reads_wait_for_writes_by_polling() {
    reads_wait_for_the_writes(Backend::Sqlite, Positions::Poll).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_reads_wait_for_writes_through_the_watch() {
    reads_wait_for_the_writes(Backend::Postgres, Positions::Watch).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_reads_wait_for_writes_by_polling() {
    reads_wait_for_the_writes(Backend::Postgres, Positions::Poll).await;
}
