//! Sign-up, login, refresh-token rotation with reuse detection, logout, forged tokens and
//! rate limits.
use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use command_api::auth::{keys::SigningKeys, tokens::AccessTokens};
use domain::{account::Role, ids::AccountId};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{Backend, CUSTOMER_PASSWORD, TestApp, assert_problem, config, spawn_app_with};

crate::backend_tests!(
    customers_sign_up_and_log_in_by_email_or_mobile,
    emails_and_mobile_numbers_are_unique,
    concurrent_sign_ups_with_one_email_have_one_winner,
    invalid_sign_ups_list_every_bad_field,
    wrong_credentials_get_one_answer,
    refresh_rotates_and_reuse_revokes_the_family,
    concurrent_refreshes_with_one_token_have_at_most_one_winner,
    logout_revokes_the_session_only,
    forged_access_tokens_are_refused,
    a_wrong_role_is_refused_before_the_body_is_read,
    the_auth_routes_are_documented,
    old_password_hashes_are_upgraded_at_the_next_login,
);

const REGISTER: &str = "/api/v1/auth/register";
const LOGIN: &str = "/api/v1/auth/login";
const REFRESH: &str = "/api/v1/auth/refresh";
const LOGOUT: &str = "/api/v1/auth/logout";
/// An admin-only route: a customer's valid token gets 403 there, a bad token 401.
const ADMIN_ROUTE: &str = "/api/v1/admin/accounts";

fn sign_up(email: &str, mobile: &str) -> Value {
    json!({"name": "Ada Lovelace", "email": email, "mobileNumber": mobile, "gender": "FEMALE", "password": CUSTOMER_PASSWORD})
}

fn unique() -> u128 {
    uuid::Uuid::now_v7().as_u128() % 10_000_000_000
}

/// Status of an admin-only call with `token`: 403 proves the token was accepted.
async fn admin_route_status(app: &TestApp, token: &str) -> StatusCode {
    let body = json!({"role": "STAFF", "username": "someone", "name": "Someone", "password": "long enough"});
    app.post(ADMIN_ROUTE, Some(token), &body).await.status()
}

async fn customers_sign_up_and_log_in_by_email_or_mobile(app: TestApp) {
    let n = unique();
    let (email, mobile) = (format!("Ada{n}@Example.com"), format!("+44 {n:010}"));
    let response = app.post(REGISTER, None, &sign_up(&email, &mobile)).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.unwrap();
    assert!(body["id"].as_str().unwrap().parse::<uuid::Uuid>().is_ok());
    assert_eq!(body["version"], 1);
    assert!(body["position"].as_u64().unwrap() > 0);

    // By e-mail, in any case; by mobile number, however it is spaced.
    for username in [
        email.to_lowercase(),
        email.to_uppercase(),
        format!("+44{n:010}"),
        format!("+44-{n:010}"),
    ] {
        let response = app
            .post(
                LOGIN,
                None,
                &json!({"username": username, "password": CUSTOMER_PASSWORD}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK, "login as {username}");
        assert_eq!(response.headers()["cache-control"], "no-store");
        let tokens: Value = response.json().await.unwrap();
        assert_eq!(tokens["tokenType"], "Bearer");
        assert_eq!(tokens["expiresIn"], 900);
        assert_eq!(tokens["refreshToken"].as_str().unwrap().len(), 43);
        let access = tokens["accessToken"].as_str().unwrap();
        assert_eq!(
            admin_route_status(&app, access).await,
            StatusCode::FORBIDDEN,
            "a customer token is accepted"
        );
        let claims = claims_of(access);
        assert_eq!(claims["sub"], body["id"]);
        assert_eq!(claims["role"], "CUSTOMER");
    }
}

async fn emails_and_mobile_numbers_are_unique(app: TestApp) {
    let n = unique();
    let (email, mobile) = (format!("ann{n}@example.com"), format!("+49{n:010}"));
    assert_eq!(
        app.post(REGISTER, None, &sign_up(&email, &mobile))
            .await
            .status(),
        StatusCode::CREATED
    );

    let other_mobile = format!("+48{n:010}");
    let body = assert_problem(
        app.post(
            REGISTER,
            None,
            &sign_up(&email.to_uppercase(), &other_mobile),
        )
        .await,
        StatusCode::CONFLICT,
        "email_taken",
    )
    .await;
    assert_eq!(body["field"], "email");

    let other_email = format!("bob{n}@example.com");
    let spaced = format!("+49 {n:010}");
    let body = assert_problem(
        app.post(REGISTER, None, &sign_up(&other_email, &spaced))
            .await,
        StatusCode::CONFLICT,
        "mobile_taken",
    )
    .await;
    assert_eq!(body["field"], "mobileNumber");

    // The refused sign-up released the e-mail address it had claimed.
    assert_eq!(
        app.post(REGISTER, None, &sign_up(&other_email, &other_mobile))
            .await
            .status(),
        StatusCode::CREATED
    );
}

async fn concurrent_sign_ups_with_one_email_have_one_winner(app: TestApp) {
    let n = unique();
    let email = format!("race{n}@example.com");
    let attempts = (0..8u128).map(|i| {
        let body = sign_up(&email, &format!("+3{}", n * 10 + i));
        let app = &app;
        async move { app.post(REGISTER, None, &body).await }
    });
    let responses = futures::future::join_all(attempts).await;
    let statuses: Vec<StatusCode> = responses.iter().map(reqwest::Response::status).collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses
            .iter()
            .filter(|s| **s == StatusCode::CONFLICT)
            .count(),
        7,
        "{statuses:?}"
    );
    app.login(&email, CUSTOMER_PASSWORD).await;
}

async fn invalid_sign_ups_list_every_bad_field(app: TestApp) {
    let body =
        json!({"name": " ", "email": "not-an-email", "mobileNumber": "12", "password": "short"});
    let problem = assert_problem(
        app.post(REGISTER, None, &body).await,
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
    assert_eq!(fields, ["name", "email", "mobileNumber", "password"]);

    let n = unique();
    let too_long = json!({"name": "Ann", "email": format!("a{n}@example.com"), "mobileNumber": format!("+1{n:010}"),
                          "password": "x".repeat(129)});
    let problem = assert_problem(
        app.post(REGISTER, None, &too_long).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(problem["errors"][0]["field"], "password");

    // Customers cannot choose their role, or anything else the API does not take.
    let mut with_role = sign_up(&format!("b{n}@example.com"), &format!("+2{n:010}"));
    with_role["role"] = json!("ADMIN");
    assert_problem(
        app.post(REGISTER, None, &with_role).await,
        StatusCode::BAD_REQUEST,
        "invalid_body",
    )
    .await;
    let mut bad_gender = sign_up(&format!("b{n}@example.com"), &format!("+2{n:010}"));
    bad_gender["gender"] = json!("ROBOT");
    assert_problem(
        app.post(REGISTER, None, &bad_gender).await,
        StatusCode::BAD_REQUEST,
        "invalid_body",
    )
    .await;
}

async fn wrong_credentials_get_one_answer(app: TestApp) {
    let (_, email, mobile) = app.register_customer().await;
    let mut details = Vec::new();
    for (username, password) in [
        (email.as_str(), "wrong password"),
        (mobile.as_str(), "wrong password"),
        ("nobody@example.com", CUSTOMER_PASSWORD),
        ("nobody", CUSTOMER_PASSWORD),
        ("+10000000000", CUSTOMER_PASSWORD),
        ("@", CUSTOMER_PASSWORD),
    ] {
        let response = app
            .post(
                LOGIN,
                None,
                &json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
        let body = assert_problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
        details.push(body["detail"].as_str().unwrap().to_owned());
    }
    details.dedup();
    assert_eq!(details, ["invalid username or password"]);
}

async fn login_pair(app: &TestApp) -> (String, String) {
    let (_, email, _) = app.register_customer().await;
    let tokens = app.login(&email, CUSTOMER_PASSWORD).await;
    (
        tokens["accessToken"].as_str().unwrap().to_owned(),
        tokens["refreshToken"].as_str().unwrap().to_owned(),
    )
}

async fn refresh(app: &TestApp, token: &str) -> reqwest::Response {
    app.post(REFRESH, None, &json!({"refreshToken": token}))
        .await
}

async fn refresh_rotates_and_reuse_revokes_the_family(app: TestApp) {
    let (access, first) = login_pair(&app).await;
    let response = refresh(&app, &first).await;
    assert_eq!(response.status(), StatusCode::OK);
    let rotated: Value = response.json().await.unwrap();
    let second = rotated["refreshToken"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    let new_access = rotated["accessToken"].as_str().unwrap();
    assert_eq!(claims_of(new_access)["sub"], claims_of(&access)["sub"]);
    assert_eq!(
        admin_route_status(&app, new_access).await,
        StatusCode::FORBIDDEN
    );

    // The newest token works once more, then the old one is presented again: reuse.
    let third: Value = refresh(&app, &second).await.json().await.unwrap();
    let third = third["refreshToken"].as_str().unwrap().to_owned();
    assert_problem(
        refresh(&app, &first).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    // The whole family is revoked: the newest token fails too.
    assert_problem(
        refresh(&app, &third).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    assert_problem(
        refresh(&app, "not-a-token").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
}

async fn concurrent_refreshes_with_one_token_have_at_most_one_winner(app: TestApp) {
    let (_, token) = login_pair(&app).await;
    let responses = futures::future::join_all((0..6).map(|_| refresh(&app, &token))).await;
    let winners = responses
        .iter()
        .filter(|r| r.status() == StatusCode::OK)
        .count();
    assert!(
        winners <= 1,
        "{winners} concurrent refreshes with one token succeeded"
    );
    assert!(
        responses
            .iter()
            .all(|r| matches!(r.status(), StatusCode::OK | StatusCode::UNAUTHORIZED))
    );
}

async fn logout_revokes_the_session_only(app: TestApp) {
    let (_, email, _) = app.register_customer().await;
    let session = app.login(&email, CUSTOMER_PASSWORD).await["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = app.login(&email, CUSTOMER_PASSWORD).await["refreshToken"]
        .as_str()
        .unwrap()
        .to_owned();
    let rotated: Value = refresh(&app, &session).await.json().await.unwrap();
    let rotated = rotated["refreshToken"].as_str().unwrap().to_owned();

    let response = app
        .post(LOGOUT, None, &json!({"refreshToken": rotated}))
        .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_problem(
        refresh(&app, &rotated).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    // Logging out twice, or with a made-up token, is fine.
    assert_eq!(
        app.post(LOGOUT, None, &json!({"refreshToken": rotated}))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        app.post(LOGOUT, None, &json!({"refreshToken": "made-up"}))
            .await
            .status(),
        StatusCode::NO_CONTENT
    );
    // The other session (another login) is untouched.
    assert_eq!(refresh(&app, &other).await.status(), StatusCode::OK);
}

/// The payload of a JWT, unverified.
fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url"))
        .expect("JSON claims")
}

async fn forged_access_tokens_are_refused(app: TestApp) {
    let (genuine, _) = login_pair(&app).await;
    assert_eq!(
        admin_route_status(&app, &genuine).await,
        StatusCode::FORBIDDEN
    );
    let mut admin_claims = claims_of(&genuine);
    admin_claims["role"] = json!("ADMIN");
    let header = |json: &str| URL_SAFE_NO_PAD.encode(json);
    let payload = URL_SAFE_NO_PAD.encode(admin_claims.to_string());
    let signature = genuine.rsplit('.').next().unwrap();
    let original_header = genuine.split('.').next().unwrap();

    let other_key = AccessTokens::new(
        SigningKeys::load(None, None).unwrap(),
        Duration::from_secs(900),
    );
    let forged_claims: web::AccessClaims = serde_json::from_value(admin_claims.clone()).unwrap();
    let forgeries = [
        (
            "alg none",
            format!("{}.{payload}.", header(r#"{"alg":"none","typ":"JWT"}"#)),
        ),
        (
            "alg none, original signature",
            format!(
                "{}.{payload}.{signature}",
                header(r#"{"alg":"none","typ":"JWT"}"#)
            ),
        ),
        (
            "HS256 with a guessed secret",
            jsonwebtoken::encode(
                &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
                &admin_claims,
                &jsonwebtoken::EncodingKey::from_secret(b"secret"),
            )
            .unwrap(),
        ),
        (
            "another Ed25519 key",
            other_key.sign(&forged_claims).unwrap(),
        ),
        (
            "tampered payload",
            format!("{original_header}.{payload}.{signature}"),
        ),
        ("garbage", "not.a.jwt".to_owned()),
    ];
    for (what, token) in forgeries {
        let status = admin_route_status(&app, &token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
    }
    // No token, or not a bearer token.
    let body =
        json!({"role": "STAFF", "username": "someone", "name": "S", "password": "long enough"});
    assert_problem(
        app.post(ADMIN_ROUTE, None, &body).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    let basic = app
        .client
        .post(app.url(ADMIN_ROUTE))
        .header("authorization", "Basic YWRtaW46YWRtaW4=")
        .json(&body);
    assert_eq!(
        basic.send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_access_tokens_are_refused() {
    let pem = command_api::auth::keys::generate_pem().unwrap();
    let mut config = config();
    config.auth.signing_key_pem = Some(pem.clone());
    let server_key = AccessTokens::new(
        SigningKeys::load(Some(&pem), None).unwrap(),
        Duration::from_secs(900),
    );
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = spawn_app_with(backend, config.clone()).await else {
            continue;
        };
        let (id, _, _) = app.register_customer().await;
        let mut claims = server_key.claims(AccountId::new(id.parse().unwrap()), Role::Customer);
        // Signed with the server's own key, so only the expiry is wrong.
        assert_eq!(
            admin_route_status(&app, &server_key.sign(&claims).unwrap()).await,
            StatusCode::FORBIDDEN
        );
        claims.iat -= 3600;
        claims.exp = claims.iat + 900;
        let response = app
            .post(
                ADMIN_ROUTE,
                Some(&server_key.sign(&claims).unwrap()),
                &json!({}),
            )
            .await;
        let body = assert_problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
        assert_eq!(
            body["detail"], "the access token has expired",
            "{backend:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ups_are_rate_limited_per_ip() {
    let mut config = config();
    config.auth.signup_per_minute = 2;
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = spawn_app_with(backend, config.clone()).await else {
            continue;
        };
        app.register_customer().await;
        app.register_customer().await;
        let n = unique();
        let response = app
            .post(
                REGISTER,
                None,
                &sign_up(&format!("c{n}@example.com"), &format!("+5{n:010}")),
            )
            .await;
        let retry_after: u64 = response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry_after), "{retry_after}");
        assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_are_rate_limited_per_account_and_ip() {
    let mut config = config();
    config.auth.login_failures_per_minute = 2;
    for backend in [Backend::Sqlite, Backend::Postgres] {
        let Some(app) = spawn_app_with(backend, config.clone()).await else {
            continue;
        };
        let (_, victim, victim_mobile) = app.register_customer().await;
        let (_, bystander, _) = app.register_customer().await;
        // Failures count per account, whichever of its names was used.
        for username in [&victim, &victim_mobile] {
            let response = app
                .post(
                    LOGIN,
                    None,
                    &json!({"username": username, "password": "guess"}),
                )
                .await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        }
        let spaced = format!("{} {}", &victim_mobile[..3], &victim_mobile[3..]);
        let response = app
            .post(
                LOGIN,
                None,
                &json!({"username": spaced, "password": CUSTOMER_PASSWORD}),
            )
            .await;
        assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
        // Locked out for the window, even with the right password.
        let response = app
            .post(
                LOGIN,
                None,
                &json!({"username": victim.to_uppercase(), "password": CUSTOMER_PASSWORD}),
            )
            .await;
        assert!(
            response.headers()["retry-after"]
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
                >= 1
        );
        assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
        // Other usernames are not locked out: the per-IP limit is five times higher.
        app.login(&bystander, CUSTOMER_PASSWORD).await;
        // ... until this address has failed too often over all usernames.
        for i in 0..8 {
            let response = app
                .post(
                    LOGIN,
                    None,
                    &json!({"username": format!("nobody{i}@example.com"), "password": "x"}),
                )
                .await;
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "attempt {i}");
        }
        let response = app
            .post(
                LOGIN,
                None,
                &json!({"username": bystander, "password": CUSTOMER_PASSWORD}),
            )
            .await;
        assert_problem(response, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    }
}

async fn the_auth_routes_are_documented(app: TestApp) {
    let doc = app.openapi().await;
    for path in [
        REGISTER,
        LOGIN,
        REFRESH,
        LOGOUT,
        ADMIN_ROUTE,
        "/api/v1/admin/accounts/{id}/lock",
        "/api/v1/admin/accounts/{id}/unlock",
    ] {
        assert!(
            doc["paths"][path]["post"].is_object(),
            "{path} is documented"
        );
    }
    let schemas = &doc["components"]["schemas"];
    for schema in [
        "RegisterRequest",
        "LoginRequest",
        "RefreshRequest",
        "TokenResponse",
        "CreateAccountRequest",
        "LockRequest",
    ] {
        assert!(schemas[schema].is_object(), "{schema} is documented");
    }
    assert!(doc["paths"][LOGIN]["post"]["responses"]["429"].is_object());
    assert!(doc["paths"][ADMIN_ROUTE]["post"]["security"].is_array());
    // Enumerated fields offer exactly the values the routes take.
    let values = |schema: &str| -> Vec<String> {
        serde_json::from_value(schemas[schema]["enum"].clone()).unwrap_or_default()
    };
    assert_eq!(values("BackOfficeRole"), ["ADMIN", "STAFF"]);
    assert_eq!(
        values("NextStatus"),
        ["PAID", "PACKED", "SHIPPED", "DELIVERED", "CANCELLED"]
    );
    assert_eq!(
        values("GenderName"),
        ["FEMALE", "MALE", "OTHER", "UNSPECIFIED"]
    );
    assert_eq!(
        schemas["CreateAccountRequest"]["properties"]["role"]["$ref"],
        "#/components/schemas/BackOfficeRole"
    );
    // Errors are documented as served: problem documents, including those of the body.
    let register = &doc["paths"][REGISTER]["post"]["responses"];
    for status in ["400", "409", "413", "415", "422", "429"] {
        assert!(
            register[status]["content"]["application/problem+json"].is_object(),
            "{status}: {register}"
        );
    }
}

async fn old_password_hashes_are_upgraded_at_the_next_login(app: TestApp) {
    use argon2::PasswordHasher;
    use domain::{
        account::AccountEvent,
        aggregate::{DomainEvent, encode},
    };
    use eventstore::{ExpectedVersion, NewEvent, StreamId};

    let (id, email, _) = app.register_customer().await;
    let stream = StreamId::new(format!("account-{id}")).unwrap();
    // An account whose hash was made with Argon2's defaults (19 MiB, 2 passes), as every
    // hash was before the current parameters.
    let old = argon2::Argon2::default()
        .hash_password(CUSTOMER_PASSWORD.as_bytes())
        .unwrap()
        .to_string();
    let (event_type, payload) = encode(&AccountEvent::PasswordChanged {
        password_hash: old,
        at: chrono::Utc::now(),
    });
    app.store
        .append(
            &stream,
            ExpectedVersion::Any,
            vec![NewEvent::new(
                event_type.clone(),
                AccountEvent::schema_version(&event_type),
                payload,
            )],
        )
        .await
        .unwrap();
    let hash_now = || async {
        let events = app.store.read_stream(&stream, 1, 100).await.unwrap();
        let last = events.last().unwrap();
        (
            last.version,
            last.payload["passwordHash"].as_str().unwrap().to_owned(),
        )
    };
    let (before, _) = hash_now().await;

    app.login(&email, CUSTOMER_PASSWORD).await;
    let (upgraded_at, hash) = hash_now().await;
    assert_eq!(upgraded_at, before + 1, "one PasswordChanged");
    assert!(hash.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{hash}");
    // The new hash works, and is not replaced again.
    app.login(&email, CUSTOMER_PASSWORD).await;
    assert_eq!(hash_now().await.0, upgraded_at);
}

/// A caller whose role may not use an endpoint gets 403 whatever the body: never the
/// body's validation errors, which would tell them what a valid one looks like.
async fn a_wrong_role_is_refused_before_the_body_is_read(app: TestApp) {
    let (customer, _) = app.customer().await;
    let admin = app.admin_token().await;
    let order = uuid::Uuid::now_v7();
    let admin_only = [
        "/api/v1/products".to_owned(),
        "/api/v1/inventory/ANY-SKU/adjustments".to_owned(),
        ADMIN_ROUTE.to_owned(),
        format!("/api/v1/orders/{order}/status"),
        format!("/api/v1/orders/{order}/shipments"),
    ];
    let customer_only = [
        "/api/v1/orders",
        "/api/v1/cart/items",
        "/api/v1/cart/checkout",
    ];
    let calls = admin_only
        .iter()
        .map(|path| (path.as_str(), &customer))
        .chain(customer_only.iter().map(|path| (*path, &admin)));
    for (path, token) in calls {
        for body in ["{}", "not json", r#"{"unknownField": 1}"#] {
            let response = app
                .client
                .post(app.url(path))
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .expect("request");
            assert_eq!(
                response.status(),
                StatusCode::FORBIDDEN,
                "POST {path} with {body}"
            );
            assert_problem(response, StatusCode::FORBIDDEN, "forbidden").await;
        }
    }
    let patch = app
        .client
        .patch(app.url(&format!("/api/v1/products/{order}")))
        .bearer_auth(&customer)
        .header("content-type", "application/json")
        .body("not json")
        .send()
        .await
        .expect("request");
    assert_problem(patch, StatusCode::FORBIDDEN, "forbidden").await;
}
