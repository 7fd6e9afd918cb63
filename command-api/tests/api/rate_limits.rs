//! Rate limits counted in the database: windows, independence of limiters and keys,
//! pruning, races, and two command nodes sharing one limit.
use std::time::Duration;

use command_api::auth::ratelimit::RateLimiter;
use reqwest::StatusCode;
use serde_json::json;
use web::ApiError;

use crate::helpers::{Backend, CUSTOMER_PASSWORD, TestApp, assert_problem, config, spawn_app_with};

crate::backend_tests!(
    a_window_refuses_past_its_limit_until_it_ends,
    limiters_and_keys_count_apart,
    ended_windows_are_deleted,
    a_zero_limit_counts_nothing,
    racing_hits_are_counted_exactly,
);

const MINUTE: Duration = Duration::from_secs(60);
const T0: i64 = 1_800_000_000_000;

fn retry_after(result: Result<(), ApiError>) -> u64 {
    match result {
        Err(ApiError::TooManyRequests { retry_after_secs }) => retry_after_secs,
        other => panic!("expected 429, got {other:?}"),
    }
}

async fn rows(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM rate_limits")
        .fetch_one(&app.sql)
        .await
        .unwrap()
}

async fn a_window_refuses_past_its_limit_until_it_ends(app: TestApp) {
    let limiter = RateLimiter::new(app.sql.clone(), "test", 3, MINUTE);
    limiter
        .check_at("a", T0)
        .await
        .expect("nothing counted yet");
    for i in 0..3 {
        limiter.hit_at("a", T0 + i).await.expect("within the limit");
    }
    assert_eq!(retry_after(limiter.check_at("a", T0 + 10_000).await), 50);
    assert_eq!(retry_after(limiter.hit_at("a", T0 + 10_000).await), 50);
    // Refused hits are not counted on: the window still ends when it began to.
    assert_eq!(retry_after(limiter.hit_at("a", T0 + 59_999).await), 1);
    limiter
        .hit_at("a", T0 + 60_000)
        .await
        .expect("a new window");
    limiter.hit_at("a", T0 + 60_001).await.unwrap();
    limiter.hit_at("a", T0 + 60_002).await.unwrap();
    assert_eq!(retry_after(limiter.hit_at("a", T0 + 61_000).await), 59);
}

async fn limiters_and_keys_count_apart(app: TestApp) {
    let logins = RateLimiter::new(app.sql.clone(), "logins", 1, MINUTE);
    let signups = RateLimiter::new(app.sql.clone(), "signups", 1, MINUTE);
    logins.hit_at("10.0.0.1", T0).await.unwrap();
    assert!(logins.hit_at("10.0.0.1", T0).await.is_err());
    logins.hit_at("10.0.0.2", T0).await.expect("another key");
    signups
        .hit_at("10.0.0.1", T0)
        .await
        .expect("another limiter");
}

async fn ended_windows_are_deleted(app: TestApp) {
    let limiter = RateLimiter::new(app.sql.clone(), "test", 5, MINUTE);
    for key in ["a", "b", "c"] {
        limiter.hit_at(key, T0).await.unwrap();
    }
    assert_eq!(rows(&app).await, 3);
    // The first hit a window after the last prune deletes every ended window but its own.
    limiter.hit_at("d", T0 + 120_000).await.unwrap();
    assert_eq!(rows(&app).await, 1);
    limiter.check_at("a", T0 + 120_000).await.unwrap();
}

async fn a_zero_limit_counts_nothing(app: TestApp) {
    let limiter = RateLimiter::new(app.sql.clone(), "off", 0, MINUTE);
    for _ in 0..20 {
        limiter.hit_at("a", T0).await.unwrap();
    }
    limiter.check_at("a", T0).await.unwrap();
    assert_eq!(rows(&app).await, 0);
}

async fn racing_hits_are_counted_exactly(app: TestApp) {
    let limiter = std::sync::Arc::new(RateLimiter::new(app.sql.clone(), "race", 5, MINUTE));
    let tasks: Vec<_> = (0..24)
        .map(|_| {
            let limiter = limiter.clone();
            tokio::spawn(async move { limiter.hit_at("hot", T0).await })
        })
        .collect();
    let mut allowed = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(()) => allowed += 1,
            Err(ApiError::TooManyRequests { .. }) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(allowed, 5);
}

/// Two command nodes on one database: failures on either count against one limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_nodes_share_the_failed_login_limit() {
    let mut config = config();
    config.auth.login_failures_per_minute = 2;
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(mut app) = spawn_app_with(backend, config.clone()).await else {
            continue;
        };
        let second = app.second_node_with(config.clone()).await;
        let (_, email, _) = app.register_customer().await;
        let guess = json!({"username": email, "password": "wrong guess"});
        let first_try = app.post("/api/v1/auth/login", None, &guess).await;
        assert_eq!(first_try.status(), StatusCode::UNAUTHORIZED);
        let second_try = app
            .client
            .post(format!("{second}/api/v1/auth/login"))
            .json(&guess)
            .send()
            .await
            .unwrap();
        assert_eq!(second_try.status(), StatusCode::UNAUTHORIZED);
        // Two failures in all, one on each node: the limit is reached on both.
        for node in [app.address.clone(), second] {
            let response = app
                .client
                .post(format!("{node}/api/v1/auth/login"))
                .json(&json!({"username": email, "password": CUSTOMER_PASSWORD}))
                .send()
                .await
                .unwrap();
            assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
        }
    }
}
