//! Access tokens of a locked account are refused before they expire: at once on the node
//! that locked it, and on every other node once it has read the revocations.
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::{CUSTOMER_PASSWORD, TestApp, assert_problem, config};

crate::backend_tests!(
    a_locked_account_s_access_tokens_are_refused_at_once,
    other_nodes_refuse_them_once_they_have_read_the_revocations,
);

/// A new customer: id, e-mail and access token.
async fn customer(app: &TestApp) -> (String, String, String) {
    let (id, email, _) = app.register_customer().await;
    let token = access_token(app, &email).await;
    (id, email, token)
}

async fn access_token(app: &TestApp, email: &str) -> String {
    app.login(email, CUSTOMER_PASSWORD).await["accessToken"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn cart_status(app: &TestApp, base: &str, token: &str) -> StatusCode {
    app.client
        .get(format!("{base}/api/v1/cart"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

async fn lock(app: &TestApp, admin: &str, id: &str) {
    let locked = app
        .post(
            &format!("/api/v1/admin/accounts/{id}/lock"),
            Some(admin),
            &json!({"reason": "stolen card"}),
        )
        .await;
    assert_eq!(locked.status(), StatusCode::OK);
}

async fn a_locked_account_s_access_tokens_are_refused_at_once(app: TestApp) {
    let (id, _, token) = customer(&app).await;
    let (_, _, bystander) = customer(&app).await;
    let admin = app.admin_token().await;
    assert_eq!(
        cart_status(&app, &app.address, &token).await,
        StatusCode::OK
    );
    lock(&app, &admin, &id).await;
    let refused = app
        .client
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&token)
        .json(&json!({"lines": [{"sku": "ANY", "quantity": 1}]}))
        .send()
        .await
        .unwrap();
    assert_problem(refused, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_eq!(
        cart_status(&app, &app.address, &token).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        cart_status(&app, &app.address, &bystander).await,
        StatusCode::OK,
        "other accounts keep theirs"
    );
}

async fn other_nodes_refuse_them_once_they_have_read_the_revocations(mut app: TestApp) {
    let (id, email, token) = customer(&app).await;
    let admin = app.admin_token().await;
    let (second, state) = app.second_node_and_state(config()).await;
    // The second node has verified the token already (and keeps its claims).
    assert_eq!(cart_status(&app, &second, &token).await, StatusCode::OK);
    lock(&app, &admin, &id).await;
    // What its follower does each second, done now.
    web::revocations::load(
        &app.sql,
        &state.verifier.revocations(),
        std::time::Duration::from_secs(900),
    )
    .await
    .unwrap();
    assert_eq!(
        cart_status(&app, &second, &token).await,
        StatusCode::UNAUTHORIZED
    );
    // After an unlock a new sign-in works on both nodes; the old token stays refused.
    let unlocked = app
        .post(
            &format!("/api/v1/admin/accounts/{id}/unlock"),
            Some(&admin),
            &json!({}),
        )
        .await;
    assert_eq!(unlocked.status(), StatusCode::OK);
    let fresh = access_token(&app, &email).await;
    for node in [app.address.clone(), second] {
        assert_eq!(cart_status(&app, &node, &fresh).await, StatusCode::OK);
        assert_eq!(
            cart_status(&app, &node, &token).await,
            StatusCode::UNAUTHORIZED
        );
    }
}
