//! Password reset: the same answer for known and unknown addresses, one queued e-mail per
//! known account, a token that works once and ends every session, and bad input refused.
//! (The e-mail itself is sent by the notifier; its tests cover the SMTP side.)
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{CUSTOMER_PASSWORD, TestApp, assert_problem, eventually};

crate::backend_tests!(
    the_answer_is_the_same_whether_or_not_the_account_exists,
    a_reset_token_sets_the_password_once_and_ends_every_session,
    a_new_request_voids_the_older_token,
    bad_reset_input_is_refused_and_changes_nothing,
);

const RESET: &str = "/api/v1/auth/password-reset";
const CONFIRM: &str = "/api/v1/auth/password-reset/confirm";
const NEW_PASSWORD: &str = "a brand new password";

/// The reset e-mails queued for `email`: (id, data).
async fn queued(app: &TestApp, email: &str) -> Vec<(String, Value)> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT id, data FROM email_outbox WHERE template = 'password_reset' AND recipient = $1 ORDER BY id",
    )
    .bind(email)
    .fetch_all(&app.sql)
    .await
    .unwrap();
    rows.into_iter()
        .map(|(id, data)| (id, serde_json::from_str(&data).unwrap()))
        .collect()
}

/// Asks for a reset of `email` and waits for its `n`th e-mail; returns its token.
async fn request_token(app: &TestApp, email: &str, n: usize) -> String {
    let response = app.post(RESET, None, &json!({"email": email})).await;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    eventually("the reset e-mail", || async {
        let mails = queued(app, email).await;
        (mails.len() >= n).then(|| mails[n - 1].1["token"].as_str().unwrap().to_owned())
    })
    .await
}

async fn confirm(app: &TestApp, token: &str, new_password: &str) -> reqwest::Response {
    app.post(
        CONFIRM,
        None,
        &json!({"token": token, "newPassword": new_password}),
    )
    .await
}

async fn the_answer_is_the_same_whether_or_not_the_account_exists(app: TestApp) {
    let (_, email, _) = app.register_customer().await;
    let known = app.post(RESET, None, &json!({"email": email})).await;
    let unknown = app
        .post(RESET, None, &json!({"email": "nobody-here@example.com"}))
        .await;
    assert_eq!(known.status(), StatusCode::ACCEPTED);
    assert_eq!(unknown.status(), StatusCode::ACCEPTED);
    assert_eq!(known.text().await.unwrap(), unknown.text().await.unwrap());

    let mails = eventually("the reset e-mail", || async {
        let mails = queued(&app, &email).await;
        (!mails.is_empty()).then_some(mails)
    })
    .await;
    assert_eq!(mails.len(), 1);
    let data = &mails[0].1;
    assert_eq!(data["customer_name"], "Test Customer");
    assert_eq!(data["expires_in_minutes"], 60);
    assert!(data["token"].as_str().unwrap().len() >= 40);
    // The unknown address got nothing, and nothing else was queued.
    let all: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM email_outbox")
        .fetch_one(&app.sql)
        .await
        .unwrap();
    assert_eq!(all, 1);
}

async fn a_reset_token_sets_the_password_once_and_ends_every_session(app: TestApp) {
    let (id, email, _) = app.register_customer().await;
    let session = app.login(&email, CUSTOMER_PASSWORD).await;
    let old_access = session["accessToken"].as_str().unwrap().to_owned();
    let token = request_token(&app, &email, 1).await;

    let confirmed = confirm(&app, &token, NEW_PASSWORD).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    let answer: Value = confirmed.json().await.unwrap();
    assert_eq!(answer["id"], id);
    assert!(answer["position"].as_u64().unwrap() > 0);

    // The new password works, the old one does not.
    assert_eq!(app.login_status(&email, NEW_PASSWORD).await, StatusCode::OK);
    assert_eq!(
        app.login_status(&email, CUSTOMER_PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
    // The session from before the reset is over.
    let refreshed = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refreshToken": session["refreshToken"]}),
        )
        .await;
    assert_eq!(refreshed.status(), StatusCode::UNAUTHORIZED);
    // So is its access token, though it has not expired; a new sign-in's works.
    let cart = |token: String| {
        let app = &app;
        async move {
            app.client
                .get(app.url("/api/v1/cart"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(cart(old_access).await, StatusCode::UNAUTHORIZED);
    let new_access = app.login(&email, NEW_PASSWORD).await["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(cart(new_access).await, StatusCode::OK);
    // The token is used up.
    let again = confirm(&app, &token, "yet another password").await;
    assert_problem(again, StatusCode::BAD_REQUEST, "invalid_reset_token").await;
    assert_eq!(app.login_status(&email, NEW_PASSWORD).await, StatusCode::OK);
    // The change is in the account's history.
    let events = app
        .store
        .read_stream(
            &eventstore::StreamId::new(format!("account-{id}")).unwrap(),
            1,
            100,
        )
        .await
        .unwrap();
    assert_eq!(events.last().unwrap().event_type, "PasswordChanged");
}

async fn a_new_request_voids_the_older_token(app: TestApp) {
    let (_, email, _) = app.register_customer().await;
    let first = request_token(&app, &email, 1).await;
    let second = request_token(&app, &email, 2).await;
    assert_ne!(first, second);
    let old = confirm(&app, &first, NEW_PASSWORD).await;
    assert_problem(old, StatusCode::BAD_REQUEST, "invalid_reset_token").await;
    let new = confirm(&app, &second, NEW_PASSWORD).await;
    assert_eq!(new.status(), StatusCode::OK);
}

async fn bad_reset_input_is_refused_and_changes_nothing(app: TestApp) {
    let (_, email, _) = app.register_customer().await;
    let not_an_address = app.post(RESET, None, &json!({"email": "nope"})).await;
    assert_problem(
        not_an_address,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    let extra_field = app
        .post(RESET, None, &json!({"email": email, "role": "ADMIN"}))
        .await;
    assert!(extra_field.status().is_client_error());

    let token = request_token(&app, &email, 1).await;
    let short = confirm(&app, &token, "short").await;
    let body = assert_problem(short, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "newPassword", "{body}");
    for made_up in [String::new(), "x".repeat(5000), "not-a-token".into()] {
        let response = confirm(&app, &made_up, NEW_PASSWORD).await;
        assert_problem(response, StatusCode::BAD_REQUEST, "invalid_reset_token").await;
    }
    // None of that used the real token up, nor changed the password.
    assert_eq!(
        app.login_status(&email, CUSTOMER_PASSWORD).await,
        StatusCode::OK
    );
    let confirmed = confirm(&app, &token, NEW_PASSWORD).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
}
