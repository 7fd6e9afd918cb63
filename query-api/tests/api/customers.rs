//! `GET /api/v1/customers/me`: the caller's own profile, customers only; read-your-writes
//! right after signing up.
use domain::{account::Role, ids::AccountId};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    helpers::{Backend, Positions, TestApp, assert_problem, query_config, spawn_app_with},
    shop::{account_stream, append_by, registered, seed_orders},
};

crate::backend_tests!(a_customer_sees_their_own_profile);

async fn a_customer_sees_their_own_profile(app: TestApp) {
    let shop = seed_orders(&app).await;
    let response = app
        .get_as(
            "/api/v1/customers/me",
            &app.token_for(shop.ann, Role::Customer),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let profile: Value = response.json().await.unwrap();
    assert_eq!(
        profile,
        json!({
            "id": shop.ann.to_string(),
            "name": "Shopper 1",
            "email": "shopper1@example.com",
            "mobileNumber": "+491700000001",
            "gender": "FEMALE",
            "registeredAt": "2025-06-15T15:06:40.000000Z"
        })
    );
    let bob: Value = app
        .get_as(
            "/api/v1/customers/me",
            &app.token_for(shop.bob, Role::Customer),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bob["id"], shop.bob.to_string());
    // Unknown to the read model: 404. Not a customer: 403. No token: 401.
    assert_problem(
        app.get_as("/api/v1/customers/me", &app.token(Role::Customer))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    for role in [Role::Admin, Role::Staff] {
        assert_problem(
            app.get_as("/api/v1/customers/me", &app.token(role)).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
    }
    assert_problem(
        app.get("/api/v1/customers/me").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
}

/// A profile asked for with the sign-up's position is answered once the projector has it.
async fn the_profile_waits_for_the_sign_up(backend: Backend, positions: Positions) {
    let Some(mut app) = spawn_app_with(backend, positions, query_config()).await else {
        return;
    };
    let id = AccountId::new(Uuid::now_v7());
    let token = app.token_for(id, Role::Customer);
    let position = append_by(&app, &account_stream(id), id, &[registered(id, 9, 0)]).await;
    assert_problem(
        app.get_as("/api/v1/customers/me", &token).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let profile = tokio::spawn({
        let (client, url) = (
            app.client.clone(),
            app.url(&format!("/api/v1/customers/me?minPosition={position}")),
        );
        async move { client.get(url).bearer_auth(token).send().await.unwrap() }
    });
    app.start_projector();
    let response = profile.await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let profile: Value = response.json().await.unwrap();
    assert_eq!(profile["email"], "shopper9@example.com");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_the_profile_waits_for_the_sign_up_by_polling() {
    the_profile_waits_for_the_sign_up(Backend::Sqlite, Positions::Poll).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_the_profile_waits_for_the_sign_up_through_the_watch() {
    the_profile_waits_for_the_sign_up(Backend::Postgres, Positions::Watch).await;
}
