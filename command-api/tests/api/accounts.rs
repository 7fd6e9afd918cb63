//! Back-office accounts: admins create staff and admins, lock and unlock accounts; the
//! bootstrap admin is created exactly once.
use std::sync::Arc;

use command_api::{AppState, CommandApiConfig, bootstrap::bootstrap_admin};
use eventstore::{
    EventStore, StreamId,
    postgres::PostgresConfig,
    testsupport::{TestPostgres, TestSqlite},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_PASSWORD, ADMIN_USERNAME, Backend, CUSTOMER_PASSWORD, TestApp, assert_problem, config,
};

crate::backend_tests!(
    admins_create_staff_who_can_log_in,
    admins_create_admins_and_the_index_records_them,
    only_admins_manage_accounts,
    back_office_accounts_are_validated,
    locked_accounts_cannot_log_in_and_lose_their_refresh_tokens,
    lock_rules,
);

const ACCOUNTS: &str = "/api/v1/admin/accounts";

fn unique_username(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        uuid::Uuid::now_v7().as_u128() % 10_000_000_000
    )
}

async fn create(app: &TestApp, token: &str, role: &str, username: &str) -> reqwest::Response {
    app.post(ACCOUNTS, Some(token), &json!({"role": role, "username": username, "name": "Grace Hopper", "password": "staff password"}))
        .await
}

async fn admins_create_staff_who_can_log_in(app: TestApp) {
    let admin = app.admin_token().await;
    let username = unique_username("Ops.");
    let response = create(&app, &admin, "STAFF", &username).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["version"], 1);
    let id = body["id"].as_str().unwrap().to_owned();

    // Usernames are case-insensitive.
    let tokens = app.login(&username.to_uppercase(), "staff password").await;
    let staff = tokens["accessToken"].as_str().unwrap();
    // Staff are not admins.
    assert_problem(
        create(&app, staff, "STAFF", &unique_username("x")).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    let lock = app
        .post(
            &format!("{ACCOUNTS}/{id}/lock"),
            Some(staff),
            &json!({"reason": "r"}),
        )
        .await;
    assert_problem(lock, StatusCode::FORBIDDEN, "forbidden").await;
}

async fn admins_create_admins_and_the_index_records_them(app: TestApp) {
    let admin = app.admin_token().await;
    let index = StreamId::of("index", "admins");
    assert_eq!(
        app.store.stream_version(&index).await.unwrap(),
        1,
        "the bootstrap admin"
    );
    let username = unique_username("root");
    let body: Value = create(&app, &admin, "ADMIN", &username)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(app.store.stream_version(&index).await.unwrap(), 2);
    let events = app.store.read_stream(&index, 1, 10).await.unwrap();
    assert_eq!(events[1].event_type, "AdminAccountRegistered");
    assert_eq!(events[1].payload["accountId"], body["id"]);
    // The index entry comes first, the account after it: the answer's position covers both.
    assert!(body["position"].as_u64().unwrap() > events[1].position);

    let new_admin = app.login(&username, "staff password").await["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        create(&app, &new_admin, "STAFF", &unique_username("s"))
            .await
            .status(),
        StatusCode::CREATED
    );
    // Staff do not enter the admin index.
    assert_eq!(app.store.stream_version(&index).await.unwrap(), 2);
}

async fn only_admins_manage_accounts(app: TestApp) {
    let (customer, customer_id) = app.customer().await;
    let admin_id = sub_of(&app.admin_token().await);
    let reason = json!({"reason": "because"});
    for (path, body) in [
        (
            ACCOUNTS.to_owned(),
            json!({"role": "ADMIN", "username": "mallory", "name": "M", "password": "long enough"}),
        ),
        (format!("{ACCOUNTS}/{admin_id}/lock"), reason.clone()),
        (format!("{ACCOUNTS}/{customer_id}/unlock"), json!({})),
    ] {
        assert_problem(
            app.post(&path, Some(&customer), &body).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
        assert_problem(
            app.post(&path, None, &body).await,
            StatusCode::UNAUTHORIZED,
            "unauthorized",
        )
        .await;
    }
    // Nothing happened: the admin can still log in, and no "mallory" exists.
    app.admin_token().await;
    let response = app
        .post(
            "/api/v1/auth/login",
            None,
            &json!({"username": "mallory", "password": "long enough"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

async fn back_office_accounts_are_validated(app: TestApp) {
    let admin = app.admin_token().await;
    // Customers sign up themselves.
    let problem = assert_problem(
        create(&app, &admin, "CUSTOMER", &unique_username("c")).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "role");

    let body =
        json!({"role": "STAFF", "username": "ann@example.com", "name": "", "password": "short"});
    let problem = assert_problem(
        app.post(ACCOUNTS, Some(&admin), &body).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let fields: Vec<&str> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["username", "name", "password"]);

    let unknown_role =
        json!({"role": "ROOT", "username": "someone", "name": "S", "password": "long enough"});
    assert_problem(
        app.post(ACCOUNTS, Some(&admin), &unknown_role).await,
        StatusCode::BAD_REQUEST,
        "invalid_body",
    )
    .await;

    // Usernames are unique, whatever their case; the bootstrap admin's too.
    let username = unique_username("dup");
    assert_eq!(
        create(&app, &admin, "STAFF", &username).await.status(),
        StatusCode::CREATED
    );
    assert_problem(
        create(&app, &admin, "ADMIN", &username.to_uppercase()).await,
        StatusCode::CONFLICT,
        "username_taken",
    )
    .await;
    assert_problem(
        create(&app, &admin, "STAFF", ADMIN_USERNAME).await,
        StatusCode::CONFLICT,
        "username_taken",
    )
    .await;
}

async fn locked_accounts_cannot_log_in_and_lose_their_refresh_tokens(app: TestApp) {
    let admin = app.admin_token().await;
    let (id, email, _) = app.register_customer().await;
    let refresh = app.login(&email, CUSTOMER_PASSWORD).await["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();

    let response = app
        .post(
            &format!("{ACCOUNTS}/{id}/lock"),
            Some(&admin),
            &json!({"reason": "chargeback fraud"}),
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        (
            body["id"].as_str().unwrap(),
            body["version"].as_u64().unwrap()
        ),
        (id.as_str(), 2)
    );

    let login = json!({"username": email, "password": CUSTOMER_PASSWORD});
    assert_problem(
        app.post("/api/v1/auth/login", None, &login).await,
        StatusCode::FORBIDDEN,
        "account_locked",
    )
    .await;
    // Only someone with the password learns that the account is locked.
    let wrong = json!({"username": email, "password": "wrong password"});
    assert_problem(
        app.post("/api/v1/auth/login", None, &wrong).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let refreshed = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refreshToken": refresh}),
        )
        .await;
    assert_problem(refreshed, StatusCode::UNAUTHORIZED, "unauthorized").await;

    let response = app
        .post(&format!("{ACCOUNTS}/{id}/unlock"), Some(&admin), &json!({}))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap()["version"], 3);
    app.login(&email, CUSTOMER_PASSWORD).await;
    // Revoked tokens stay revoked after an unlock.
    let refreshed = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refreshToken": refresh}),
        )
        .await;
    assert_eq!(refreshed.status(), StatusCode::UNAUTHORIZED);
}

async fn lock_rules(app: TestApp) {
    let admin = app.admin_token().await;
    let (id, _, _) = app.register_customer().await;
    let lock = |id: &str| format!("{ACCOUNTS}/{id}/lock");
    let unlock = |id: &str| format!("{ACCOUNTS}/{id}/unlock");
    let reason = json!({"reason": "r"});
    assert_problem(
        app.post(&unlock(&id), Some(&admin), &json!({})).await,
        StatusCode::CONFLICT,
        "lock_state",
    )
    .await;
    let blank = assert_problem(
        app.post(&lock(&id), Some(&admin), &json!({"reason": " "}))
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(blank["errors"][0]["field"], "reason");
    assert_eq!(
        app.post(&lock(&id), Some(&admin), &reason).await.status(),
        StatusCode::OK
    );
    assert_problem(
        app.post(&lock(&id), Some(&admin), &reason).await,
        StatusCode::CONFLICT,
        "lock_state",
    )
    .await;
    assert_eq!(
        app.post(&unlock(&id), Some(&admin), &json!({}))
            .await
            .status(),
        StatusCode::OK
    );

    let nobody = uuid::Uuid::now_v7().to_string();
    assert_problem(
        app.post(&lock(&nobody), Some(&admin), &reason).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        app.post(&lock("not-an-id"), Some(&admin), &reason).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    // An admin cannot lock themselves out.
    let me = sub_of(&admin);
    assert_problem(
        app.post(&lock(&me), Some(&admin), &reason).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "cannot_lock_self",
    )
    .await;
}

/// The account id in an access token (unverified).
fn sub_of(token: &str) -> String {
    use base64::Engine;
    let payload = token.split('.').nth(1).expect("a JWT");
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("claims");
    claims["sub"].as_str().expect("sub").to_owned()
}

/// Several "processes" (each its own state, caches and locks) over one store.
async fn states(
    backend: Backend,
    n: usize,
) -> Option<(Vec<AppState>, Arc<dyn EventStore>, Box<dyn std::any::Any>)> {
    sqlx::any::install_default_drivers();
    let config = CommandApiConfig {
        bootstrap_admin: None,
        ..config()
    };
    let (url, guard, stores): (String, Box<dyn std::any::Any>, Vec<Arc<dyn EventStore>>) =
        match backend {
            Backend::Sqlite => {
                let db = TestSqlite::new().await;
                let mut stores: Vec<Arc<dyn EventStore>> = Vec::new();
                for _ in 0..n {
                    stores.push(Arc::new(
                        eventstore::sqlite::SqliteEventStore::open(&db.path)
                            .await
                            .expect("sqlite"),
                    ));
                }
                (
                    format!("sqlite://{}", db.path.display()),
                    Box::new(db),
                    stores,
                )
            }
            Backend::Postgres => {
                let db = TestPostgres::new().await?;
                let stores = (0..n)
                    .map(|_| Arc::new(db.store(&PostgresConfig::default())) as Arc<dyn EventStore>)
                    .collect();
                (db.url.clone(), Box::new(db), stores)
            }
        };
    let mut states = Vec::new();
    for store in &stores {
        let sql = sqlx::any::AnyPoolOptions::new()
            .max_connections(4)
            .connect(&url)
            .await
            .expect("sql pool");
        states.push(
            command_api::build_state(store.clone(), sql, &config)
                .await
                .expect("state"),
        );
    }
    Some((states, stores[0].clone(), guard))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bootstrap_creates_exactly_one_admin_even_when_run_concurrently() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some((states, store, _guard)) = states(backend, 4).await else {
            continue;
        };
        // Different usernames, so only the admin index can keep them apart.
        let runs = states.iter().enumerate().map(|(i, state)| async move {
            bootstrap_admin(state, &format!("admin{i}"), ADMIN_PASSWORD).await
        });
        for result in futures::future::join_all(runs).await {
            result.expect("bootstrap");
        }
        let index = StreamId::of("index", "admins");
        assert_eq!(
            store.stream_version(&index).await.unwrap(),
            1,
            "{backend:?}"
        );
        let mut claimed = 0;
        for i in 0..states.len() {
            if states[0]
                .claims
                .owner(command_api::claims::KeyKind::Username, &format!("admin{i}"))
                .await
                .unwrap()
                .is_some()
            {
                claimed += 1;
            }
        }
        assert_eq!(claimed, 1, "{backend:?}: exactly one admin account");
        // Later runs (a restart) change nothing.
        bootstrap_admin(&states[1], "another", ADMIN_PASSWORD)
            .await
            .unwrap();
        assert_eq!(store.stream_version(&index).await.unwrap(), 1);
        assert!(
            states[0]
                .claims
                .owner(command_api::claims::KeyKind::Username, "another")
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_bootstrap_admin_is_refused_before_anything_is_written() {
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some((states, store, _guard)) = states(backend, 1).await else {
            continue;
        };
        let err = bootstrap_admin(&states[0], "admin", "short")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("password"), "{err}");
        assert!(
            !err.to_string().contains("short"),
            "the password is never echoed: {err}"
        );
        assert_eq!(
            store
                .stream_version(&StreamId::of("index", "admins"))
                .await
                .unwrap(),
            0
        );
        bootstrap_admin(&states[0], "admin", ADMIN_PASSWORD)
            .await
            .unwrap();
        assert_eq!(
            store
                .stream_version(&StreamId::of("index", "admins"))
                .await
                .unwrap(),
            1
        );
    }
}
