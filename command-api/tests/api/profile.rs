//! A signed-in account's own settings: a customer's profile (`PATCH /api/v1/customers/me`)
//! and any account's password (`POST /api/v1/auth/password`), which ends its other sessions.
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_PASSWORD, ADMIN_USERNAME, CUSTOMER_PASSWORD, TestApp, assert_problem};

crate::backend_tests!(
    a_customer_updates_their_own_profile,
    bad_profile_changes_are_refused_and_change_nothing,
    a_password_change_ends_every_other_session,
    a_wrong_current_password_changes_nothing_and_counts_as_a_failed_login,
    racing_changes_proven_by_one_password_have_one_winner,
);

const ME: &str = "/api/v1/customers/me";
const PASSWORD: &str = "/api/v1/auth/password";
const NEW_PASSWORD: &str = "a brand new password";

/// The event types of account `id`'s stream, in order.
async fn history(app: &TestApp, id: &str) -> Vec<String> {
    let stream = eventstore::StreamId::new(format!("account-{id}")).unwrap();
    let events = app.store.read_stream(&stream, 1, 100).await.unwrap();
    events.into_iter().map(|e| e.event_type).collect()
}

async fn patch_if_match(
    app: &TestApp,
    token: &str,
    if_match: &str,
    body: &Value,
) -> reqwest::Response {
    app.client
        .patch(app.url(ME))
        .bearer_auth(token)
        .header("if-match", if_match)
        .json(body)
        .send()
        .await
        .unwrap()
}

async fn change_password(
    app: &TestApp,
    token: &str,
    current: &str,
    new: &str,
) -> reqwest::Response {
    app.post(
        PASSWORD,
        Some(token),
        &json!({"currentPassword": current, "newPassword": new}),
    )
    .await
}

async fn cart_status(app: &TestApp, token: &str) -> StatusCode {
    app.get_as("/api/v1/cart", Some(token)).await.status()
}

async fn a_customer_updates_their_own_profile(app: TestApp) {
    let (token, id) = app.customer().await;
    let changed = app
        .patch(
            ME,
            Some(&token),
            &json!({"name": "  Ada King ", "gender": "FEMALE"}),
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    assert_eq!(changed.headers()["etag"], "\"2\"");
    let answer: Value = changed.json().await.unwrap();
    assert_eq!(answer["id"], id);
    assert_eq!(answer["version"], 2);
    let stream = eventstore::StreamId::new(format!("account-{id}")).unwrap();
    let events = app.store.read_stream(&stream, 1, 100).await.unwrap();
    let updated = events.last().unwrap();
    assert_eq!(updated.event_type, "CustomerProfileUpdated");
    assert_eq!(updated.payload["name"], "Ada King");
    assert_eq!(updated.payload["gender"], "FEMALE");

    // What the profile already says appends nothing.
    let same = app
        .patch(ME, Some(&token), &json!({"name": "Ada King"}))
        .await;
    assert_eq!(same.status(), StatusCode::OK);
    assert_eq!(same.json::<Value>().await.unwrap()["version"], 2);
    // A change based on the version read applies; one based on an older version is 412.
    let based = patch_if_match(&app, &token, "\"2\"", &json!({"gender": "OTHER"})).await;
    assert_eq!(based.status(), StatusCode::OK);
    let stale = patch_if_match(&app, &token, "\"2\"", &json!({"name": "Someone else"})).await;
    assert_problem(stale, StatusCode::PRECONDITION_FAILED, "version_mismatch").await;
    assert_eq!(
        history(&app, &id).await,
        [
            "AccountRegistered",
            "CustomerProfileUpdated",
            "CustomerProfileUpdated"
        ]
    );
}

async fn bad_profile_changes_are_refused_and_change_nothing(app: TestApp) {
    let (token, id) = app.customer().await;
    let empty_name = app.patch(ME, Some(&token), &json!({"name": " "})).await;
    let body = assert_problem(
        empty_name,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    assert_eq!(body["errors"][0]["field"], "name", "{body}");
    let long_name = app
        .patch(ME, Some(&token), &json!({"name": "n".repeat(101)}))
        .await;
    assert_problem(
        long_name,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation_failed",
    )
    .await;
    // The login names are claimed at sign-up and not changed here; nor is the role.
    for field in [
        json!({"email": "new@example.com"}),
        json!({"mobileNumber": "+4915112345678"}),
        json!({"role": "ADMIN"}),
        json!({"gender": "NONSENSE"}),
    ] {
        let refused = app.patch(ME, Some(&token), &field).await;
        assert_problem(refused, StatusCode::BAD_REQUEST, "invalid_body").await;
    }
    let several = patch_if_match(&app, &token, "\"1\", \"2\"", &json!({"name": "X"})).await;
    assert_problem(several, StatusCode::BAD_REQUEST, "invalid_if_match").await;
    // Customers only: the back office has no profile here, strangers no token.
    let admin = app.admin_token().await;
    let by_admin = app.patch(ME, Some(&admin), &json!({"name": "X"})).await;
    assert_problem(by_admin, StatusCode::FORBIDDEN, "forbidden").await;
    let anonymous = app.patch(ME, None, &json!({"name": "X"})).await;
    assert_problem(anonymous, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_eq!(history(&app, &id).await, ["AccountRegistered"]);
}

async fn a_password_change_ends_every_other_session(app: TestApp) {
    let (id, email, _) = app.register_customer().await;
    let here = app.login(&email, CUSTOMER_PASSWORD).await;
    let elsewhere = app.login(&email, CUSTOMER_PASSWORD).await;
    let access = here["accessToken"].as_str().unwrap();

    let changed = change_password(&app, access, CUSTOMER_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(changed.status(), StatusCode::OK);
    assert_eq!(changed.headers()["cache-control"], "no-store");
    let session: Value = changed.json().await.unwrap();
    let new_access = session["accessToken"].as_str().unwrap();

    assert_eq!(app.login_status(&email, NEW_PASSWORD).await, StatusCode::OK);
    assert_eq!(
        app.login_status(&email, CUSTOMER_PASSWORD).await,
        StatusCode::UNAUTHORIZED
    );
    // Both earlier sessions are over, the caller's own included; the new pair works.
    assert_eq!(cart_status(&app, access).await, StatusCode::UNAUTHORIZED);
    for old in [&here, &elsewhere] {
        let refreshed = app
            .post(
                "/api/v1/auth/refresh",
                None,
                &json!({"refreshToken": old["refreshToken"]}),
            )
            .await;
        assert_eq!(refreshed.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(cart_status(&app, new_access).await, StatusCode::OK);
    let refreshed = app
        .post(
            "/api/v1/auth/refresh",
            None,
            &json!({"refreshToken": session["refreshToken"]}),
        )
        .await;
    assert_eq!(refreshed.status(), StatusCode::OK);
    assert_eq!(
        history(&app, &id).await,
        ["AccountRegistered", "PasswordChanged"]
    );

    // Any role may change its own password.
    let admin = app.admin_token().await;
    let by_admin = change_password(&app, &admin, ADMIN_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(by_admin.status(), StatusCode::OK);
    assert_eq!(
        app.login_status(ADMIN_USERNAME, NEW_PASSWORD).await,
        StatusCode::OK
    );
}

async fn a_wrong_current_password_changes_nothing_and_counts_as_a_failed_login(app: TestApp) {
    let (id, email, _) = app.register_customer().await;
    let session = app.login(&email, CUSTOMER_PASSWORD).await;
    let access = session["accessToken"].as_str().unwrap();

    let short = change_password(&app, access, CUSTOMER_PASSWORD, "short").await;
    let body = assert_problem(short, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "newPassword", "{body}");
    let wrong = change_password(&app, access, "not the password", NEW_PASSWORD).await;
    let body = assert_problem(wrong, StatusCode::UNPROCESSABLE_ENTITY, "validation_failed").await;
    assert_eq!(body["errors"][0]["field"], "currentPassword", "{body}");
    let anonymous = app
        .post(
            PASSWORD,
            None,
            &json!({"currentPassword": CUSTOMER_PASSWORD, "newPassword": NEW_PASSWORD}),
        )
        .await;
    assert_problem(anonymous, StatusCode::UNAUTHORIZED, "unauthorized").await;
    // Nothing changed, and the session goes on.
    assert_eq!(history(&app, &id).await, ["AccountRegistered"]);
    assert_eq!(cart_status(&app, access).await, StatusCode::OK);

    // Guesses share the account's failed-login limit (10 a minute): a stolen access token
    // guesses no faster than a login form, and the limit then holds for logins too.
    for _ in 1..10 {
        let guess = change_password(&app, access, "another guess", NEW_PASSWORD).await;
        assert_eq!(guess.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let limited = change_password(&app, access, CUSTOMER_PASSWORD, NEW_PASSWORD).await;
    assert_problem(limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    assert_eq!(
        app.login_status(&email, CUSTOMER_PASSWORD).await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(history(&app, &id).await, ["AccountRegistered"]);
}

/// Changes proven by the same current password, at once: the first is made, and the
/// others never undo it (409 `password_changed` when they were proven before it, 422 for
/// the then wrong password, or 401 for the session it ended). Only its password signs in.
async fn racing_changes_proven_by_one_password_have_one_winner(app: TestApp) {
    let (id, email, _) = app.register_customer().await;
    let session = app.login(&email, CUSTOMER_PASSWORD).await;
    let access = session["accessToken"].as_str().unwrap();
    let passwords: Vec<String> = (0..5)
        .map(|n| format!("racing password number {n}"))
        .collect();
    let changes = passwords
        .iter()
        .map(|new| change_password(&app, access, CUSTOMER_PASSWORD, new));
    let statuses: Vec<StatusCode> = futures::future::join_all(changes)
        .await
        .iter()
        .map(reqwest::Response::status)
        .collect();
    let winners: Vec<&String> = passwords
        .iter()
        .zip(&statuses)
        .filter_map(|(password, status)| (*status == StatusCode::OK).then_some(password))
        .collect();
    assert_eq!(winners.len(), 1, "{statuses:?}");
    for status in &statuses {
        assert!(
            [
                StatusCode::OK,
                StatusCode::CONFLICT,
                StatusCode::UNPROCESSABLE_ENTITY,
                StatusCode::UNAUTHORIZED
            ]
            .contains(status),
            "{statuses:?}"
        );
    }
    for password in &passwords {
        let expected = if password == winners[0] {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        assert_eq!(
            app.login_status(&email, password).await,
            expected,
            "{password}"
        );
    }
    assert_eq!(
        history(&app, &id).await,
        ["AccountRegistered", "PasswordChanged"]
    );
}
