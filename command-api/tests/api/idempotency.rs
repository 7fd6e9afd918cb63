//! `Idempotency-Key`: a retried command takes effect once and answers the same, also when
//! the retries race.
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{CUSTOMER_PASSWORD, TestApp, address, assert_problem};

crate::backend_tests!(
    a_retry_replays_the_first_answer,
    racing_retries_take_effect_once,
    a_key_reused_for_another_request_is_refused,
    a_malformed_key_is_judged_after_the_caller,
    keys_are_scoped_by_the_caller_whatever_the_scheme_case,
    strangers_sharing_a_key_do_not_collide,
    a_rate_limited_request_runs_again_once_the_window_has_passed,
    a_locked_account_s_refused_sign_in_runs_again_once_unlocked,
    a_request_refused_for_its_form_runs_again_when_sent_right,
    every_write_method_replays_its_first_answer,
    an_order_whose_answer_a_crash_lost_is_found_not_placed_again,
    every_command_whose_answer_a_crash_lost_answers_as_its_first_run,
    a_key_on_a_method_or_path_no_route_takes_is_not_kept,
);

async fn order_with_key(app: &TestApp, token: &str, key: &str, quantity: i64) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/orders"))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&json!({"lines": [{"sku": "IDEM", "quantity": quantity}], "shippingAddress": address()}))
        .send()
        .await
        .unwrap()
}

async fn setup(app: &TestApp) -> String {
    let admin = app.admin_token().await;
    app.create_product(&admin, "Idempotent", &[("IDEM", 100)])
        .await;
    app.restock(&admin, "IDEM", 100).await;
    app.customer().await.0
}

async fn a_retry_replays_the_first_answer(app: TestApp) {
    let customer = setup(&app).await;
    let first = order_with_key(&app, &customer, "order-1", 2).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    let again = order_with_key(&app, &customer, "order-1", 2).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(app.stock("IDEM").await, (100, 2, 0));
    // Keys belong to their caller: another customer's same key is a new request.
    let (other, _) = app.customer().await;
    let theirs: Value = order_with_key(&app, &other, "order-1", 2)
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(theirs["id"], first["id"]);
    assert_eq!(app.stock("IDEM").await, (100, 4, 0));
}

async fn racing_retries_take_effect_once(app: TestApp) {
    let customer = setup(&app).await;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (client, url, token) = (app.client.clone(), app.url("/api/v1/orders"), customer.clone());
            tokio::spawn(async move {
                let response = client
                    .post(url)
                    .bearer_auth(token)
                    .header("idempotency-key", "race-key")
                    .json(&json!({"lines": [{"sku": "IDEM", "quantity": 3}], "shippingAddress": address()}))
                    .send()
                    .await
                    .unwrap();
                (response.status(), response.json::<Value>().await.unwrap())
            })
        })
        .collect();
    let mut ids = std::collections::HashSet::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, StatusCode::CREATED, "{body}");
        ids.insert(body["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "every retry answered with the one order");
    assert_eq!(
        app.stock("IDEM").await,
        (100, 3, 0),
        "the order took effect once"
    );
}

async fn a_key_reused_for_another_request_is_refused(app: TestApp) {
    let customer = setup(&app).await;
    assert_eq!(
        order_with_key(&app, &customer, "k", 1).await.status(),
        StatusCode::CREATED
    );
    assert_problem(
        order_with_key(&app, &customer, "k", 5).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency_key_reused",
    )
    .await;
    let bad_key = app
        .client
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&customer)
        .header("idempotency-key", "x".repeat(300))
        .json(&json!({"lines": [{"sku": "IDEM", "quantity": 1}], "shippingAddress": address()}))
        .send()
        .await
        .unwrap();
    assert_problem(bad_key, StatusCode::BAD_REQUEST, "invalid_idempotency_key").await;
    assert_eq!(app.stock("IDEM").await, (100, 1, 0));
}

/// A malformed key changes nothing, and a route that takes a token judges the caller
/// first, as it does without a key: 401, not 400, for a caller without a valid token,
/// and 403 for one whose role the route does not admit.
async fn a_malformed_key_is_judged_after_the_caller(app: TestApp) {
    let customer = setup(&app).await;
    let malformed = "é";
    let order = json!({"lines": [{"sku": "IDEM", "quantity": 1}], "shippingAddress": address()});
    let post = |path: &str, token: Option<&str>, body: &Value| {
        let mut request = app
            .client
            .post(app.url(path))
            .header("idempotency-key", malformed)
            .json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    for token in [None, Some("not-a-token")] {
        let response = post("/api/v1/orders", token, &order).await.unwrap();
        assert_problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
        let change =
            json!({"currentPassword": CUSTOMER_PASSWORD, "newPassword": "another-password-1"});
        let response = post("/api/v1/auth/password", token, &change).await.unwrap();
        assert_problem(response, StatusCode::UNAUTHORIZED, "unauthorized").await;
    }
    // A role the route does not admit is told so, as the handler would tell it.
    let admin = app.admin_token().await;
    let response = post("/api/v1/orders", Some(&admin), &order).await.unwrap();
    assert_problem(response, StatusCode::FORBIDDEN, "forbidden").await;
    let archive = app
        .client
        .delete(app.url(&format!("/api/v1/products/{}", uuid::Uuid::now_v7())))
        .bearer_auth(&customer)
        .header("idempotency-key", malformed)
        .send()
        .await
        .unwrap();
    assert_problem(archive, StatusCode::FORBIDDEN, "forbidden").await;
    let restock = json!({"delta": 5, "reason": "found"});
    let response = post(
        "/api/v1/inventory/IDEM/adjustments",
        Some(&customer),
        &restock,
    )
    .await
    .unwrap();
    assert_problem(response, StatusCode::FORBIDDEN, "forbidden").await;
    let response = post("/api/v1/orders", Some(&customer), &order)
        .await
        .unwrap();
    assert_problem(response, StatusCode::BAD_REQUEST, "invalid_idempotency_key").await;
    // Routes without a token (sign-up) refuse the key at once.
    let sign_up = json!({"name": "Key", "email": "key@example.com", "mobileNumber": "+4917012345678", "password": CUSTOMER_PASSWORD});
    let response = post("/api/v1/auth/register", None, &sign_up).await.unwrap();
    assert_problem(response, StatusCode::BAD_REQUEST, "invalid_idempotency_key").await;
    assert_eq!(app.stock("IDEM").await, (100, 0, 0), "no order placed");
    assert_eq!(
        app.login_status("key@example.com", CUSTOMER_PASSWORD).await,
        StatusCode::UNAUTHORIZED,
        "no account made"
    );
}

/// The handler accepts `bearer` in any case; the key's scope must follow the same caller,
/// or two customers would be answered with each other's orders.
async fn keys_are_scoped_by_the_caller_whatever_the_scheme_case(app: TestApp) {
    let alice = setup(&app).await;
    let (bob, _) = app.customer().await;
    let mut ids = Vec::new();
    for token in [&alice, &bob] {
        let response = app
            .client
            .post(app.url("/api/v1/orders"))
            .header("authorization", format!("bearer {token}"))
            .header("idempotency-key", "shared-key")
            .json(&json!({"lines": [{"sku": "IDEM", "quantity": 1}], "shippingAddress": address()}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        assert!(
            response.headers().get("idempotent-replayed").is_none(),
            "another caller's answer was replayed"
        );
        ids.push(response.json::<Value>().await.unwrap()["id"].clone());
    }
    assert_ne!(ids[0], ids[1]);
    assert_eq!(app.stock("IDEM").await, (100, 2, 0));
}

async fn register_with_key(
    app: &TestApp,
    key: &str,
    email: &str,
    mobile: &str,
) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/auth/register"))
        .header("idempotency-key", key)
        .json(&json!({
            "name": "Stranger",
            "email": email,
            "mobileNumber": mobile,
            "password": "a-long-enough-password",
        }))
        .send()
        .await
        .unwrap()
}

/// Anonymous callers cannot be told apart: two strangers who send the same key with
/// different sign-ups must each get their own account, and a retry must still replay.
async fn strangers_sharing_a_key_do_not_collide(app: TestApp) {
    let first = register_with_key(&app, "signup-1", "first@example.com", "+4915100000001").await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();

    let second = register_with_key(&app, "signup-1", "second@example.com", "+4915100000002").await;
    assert_eq!(second.status(), StatusCode::CREATED);
    assert!(second.headers().get("idempotent-replayed").is_none());
    let second: Value = second.json().await.unwrap();
    assert_ne!(first["id"], second["id"]);

    let retry = register_with_key(&app, "signup-1", "first@example.com", "+4915100000001").await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert_eq!(
        retry
            .headers()
            .get("idempotent-replayed")
            .map(|v| v.as_bytes()),
        Some(&b"true"[..])
    );
    assert_eq!(retry.json::<Value>().await.unwrap()["id"], first["id"]);
}

/// A 429 is not the command's answer: kept under its key, it would be replayed to the
/// retry that the `Retry-After` invited, for as long as the key lives.
async fn a_rate_limited_request_runs_again_once_the_window_has_passed(app: TestApp) {
    app.register_customer().await;
    // The sign-up window of this caller is full...
    sqlx::query("UPDATE rate_limits SET count = 1000000")
        .execute(&app.sql)
        .await
        .unwrap();
    let refused = register_with_key(&app, "signup-7", "late@example.com", "+4915100000007").await;
    assert_problem(refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited").await;
    // ...and then it ends (an hour ago, as far as the limiter can tell).
    sqlx::query("UPDATE rate_limits SET window_start = window_start - 3600000")
        .execute(&app.sql)
        .await
        .unwrap();
    let retry = register_with_key(&app, "signup-7", "late@example.com", "+4915100000007").await;
    assert_eq!(retry.status(), StatusCode::CREATED);
    assert!(retry.headers().get("idempotent-replayed").is_none());
    // What ran is kept as usual.
    let again = register_with_key(&app, "signup-7", "late@example.com", "+4915100000007").await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
}

/// Nor is a 403: the locked account's owner, once unlocked, retries the same sign-in.
async fn a_locked_account_s_refused_sign_in_runs_again_once_unlocked(app: TestApp) {
    let (id, email, _) = app.register_customer().await;
    let admin = app.admin_token().await;
    let accounts = format!("/api/v1/admin/accounts/{id}");
    let locked = app
        .post(
            &format!("{accounts}/lock"),
            Some(&admin),
            &json!({"reason": "chargeback"}),
        )
        .await;
    assert_eq!(locked.status(), StatusCode::OK);
    let sign_in = || {
        app.client
            .post(app.url("/api/v1/auth/login"))
            .header("idempotency-key", "login-1")
            .json(&json!({"username": email, "password": CUSTOMER_PASSWORD}))
            .send()
    };
    assert_problem(
        sign_in().await.unwrap(),
        StatusCode::FORBIDDEN,
        "account_locked",
    )
    .await;
    let unlocked = app
        .post(&format!("{accounts}/unlock"), Some(&admin), &json!({}))
        .await;
    assert_eq!(unlocked.status(), StatusCode::OK);
    let retry = sign_in().await.unwrap();
    assert_eq!(retry.status(), StatusCode::OK);
    let tokens: Value = retry.json().await.unwrap();
    assert!(tokens["accessToken"].is_string(), "{tokens}");
}

/// Nor is a refusal of the request's form: the `Content-Type` is not part of what the key
/// is checked against, so a kept 415 would answer the corrected request too.
async fn a_request_refused_for_its_form_runs_again_when_sent_right(app: TestApp) {
    let customer = setup(&app).await;
    let body = json!({"lines": [{"sku": "IDEM", "quantity": 1}], "shippingAddress": address()});
    let as_text = app
        .client
        .post(app.url("/api/v1/orders"))
        .bearer_auth(&customer)
        .header("idempotency-key", "order-9")
        .header("content-type", "text/plain")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(as_text.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let as_json = order_with_key(&app, &customer, "order-9", 1).await;
    assert_eq!(as_json.status(), StatusCode::CREATED);
    assert!(as_json.headers().get("idempotent-replayed").is_none());
    assert_eq!(app.stock("IDEM").await, (100, 1, 0));
}

/// PATCH, PUT and DELETE are writes too: a retry with the key replays the first answer,
/// with the headers a client reads off it (`ETag`, `Emporium-Position`), and appends
/// nothing; without a key the same request runs again.
async fn every_write_method_replays_its_first_answer(app: TestApp) {
    let doc = app.openapi().await;
    for (path, method) in [
        ("/api/v1/orders", "post"),
        ("/api/v1/cart/checkout", "post"),
        ("/api/v1/products/{id}", "patch"),
        ("/api/v1/products/{id}", "delete"),
        ("/api/v1/wishlist/{sku}", "put"),
    ] {
        let keys = doc["paths"][path][method]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["name"] == "Idempotency-Key" && p["in"] == "header")
            .count();
        assert_eq!(keys, 1, "{method} {path} documents the key once");
    }
    let admin = app.admin_token().await;
    let id = app
        .create_product(&admin, "Keyed", &[("KEYED-1", 100)])
        .await;
    let path = format!("/api/v1/products/{id}");
    let with_key = |method: reqwest::Method, key: &str, body: Option<Value>| {
        let mut request = app
            .client
            .request(method, app.url(&path))
            .bearer_auth(&admin)
            .header("idempotency-key", key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };
    let headers_of = |response: &reqwest::Response| {
        ["etag", "emporium-position", "content-type"]
            .map(|name| response.headers().get(name).cloned())
    };

    let rename = json!({"name": "Keyed, renamed"});
    let first = with_key(reqwest::Method::PATCH, "rename-1", Some(rename.clone()))
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    let first_headers = headers_of(&first);
    assert!(
        first_headers.iter().all(Option::is_some),
        "{first_headers:?}"
    );
    let first: Value = first.json().await.unwrap();
    let again = with_key(reqwest::Method::PATCH, "rename-1", Some(rename.clone()))
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::OK);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(headers_of(&again), first_headers);
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    // The retry appended nothing: the next change is the very next version.
    let renamed_again: Value = app
        .patch(
            &path,
            Some(&admin),
            &json!({"name": "Keyed, renamed twice"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        renamed_again["version"],
        first["version"].as_u64().unwrap() + 1
    );

    // A body-less answer is replayed body-less.
    let (customer, _) = app.customer().await;
    let wish = |key: &'static str| {
        app.client
            .put(app.url("/api/v1/wishlist/KEYED-1"))
            .bearer_auth(&customer)
            .header("idempotency-key", key)
            .send()
    };
    let first = wish("wish-1").await.unwrap();
    let (status, headers) = (first.status(), headers_of(&first));
    assert_eq!(status, StatusCode::NO_CONTENT);
    let body = first.bytes().await.unwrap();
    let again = wish("wish-1").await.unwrap();
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!((again.status(), headers_of(&again)), (status, headers));
    assert_eq!(again.bytes().await.unwrap(), body);

    let archived = with_key(reqwest::Method::DELETE, "archive-1", None)
        .await
        .unwrap();
    assert_eq!(archived.status(), StatusCode::OK);
    let archived: Value = archived.json().await.unwrap();
    let again = with_key(reqwest::Method::DELETE, "archive-1", None)
        .await
        .unwrap();
    assert_eq!(
        again.status(),
        StatusCode::OK,
        "the archive's answer, not a 409"
    );
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap(), archived);
    let unkeyed = app.delete(&path, Some(&admin)).await;
    assert_eq!(
        unkeyed.status(),
        StatusCode::CONFLICT,
        "without a key it runs again"
    );
}

/// Leaves key `key` as a crash between a command's append and the storing of its answer
/// leaves it: pending, with no answer, and old enough (60 s) to count as abandoned, so the
/// next request with it runs again as a retake.
async fn lose_answer(app: &TestApp, key: &str) {
    let long_ago = chrono::Utc::now().timestamp_millis() - 120_000;
    let lost = sqlx::query(
        "UPDATE idempotency_keys SET status = NULL, content_type = NULL, body = NULL, \
         headers = NULL, completed_at = NULL, created_at = $1 WHERE key = $2",
    )
    .bind(long_ago)
    .bind(key)
    .execute(&app.sql)
    .await
    .unwrap();
    assert_eq!(lost.rows_affected(), 1, "{key}");
}

/// Sends `request` (built anew for each run) with key `key`, loses its answer as a crash
/// would, sends it again, and checks that the run after the crash answered as the first
/// did (status, body, `ETag`, `Emporium-Position`) and appended nothing to the stream
/// `{category}-{id}` the answer names. Returns the answer's body.
async fn answered_alike_across_a_crash(
    app: &TestApp,
    key: &str,
    category: &str,
    request: impl Fn() -> reqwest::RequestBuilder,
) -> Value {
    let answer_headers = |response: &reqwest::Response| {
        ["etag", "emporium-position"].map(|name| response.headers().get(name).cloned())
    };
    let first = request()
        .header("idempotency-key", key)
        .send()
        .await
        .unwrap();
    assert!(first.status().is_success(), "{key}: {}", first.status());
    let (status, headers) = (first.status(), answer_headers(&first));
    let body: Value = first.json().await.unwrap();
    lose_answer(app, key).await;
    let again = request()
        .header("idempotency-key", key)
        .send()
        .await
        .unwrap();
    assert!(
        again.headers().get("idempotent-replayed").is_none(),
        "{key}: run again"
    );
    assert_eq!(
        (again.status(), answer_headers(&again)),
        (status, headers),
        "{key}"
    );
    assert_eq!(again.json::<Value>().await.unwrap(), body, "{key}");
    let stream = eventstore::StreamId::of(category, body["id"].as_str().unwrap());
    assert_eq!(
        app.store.stream_version(&stream).await.unwrap(),
        body["version"].as_u64().unwrap(),
        "{key}: nothing appended to {stream} after the first run"
    );
    body
}

/// Every command that answers `{id, version, position}`, run again after a crash lost its
/// answer, answers as its first run did instead of acting again: without this, a second
/// product creation or sign-up is a 409 (the first one's SKU or e-mail), an update or
/// archive with `If-Match` a 412, a status change or a cancellation a 409, a lock a 409,
/// and a restock counts twice.
async fn every_command_whose_answer_a_crash_lost_answers_as_its_first_run(app: TestApp) {
    let admin = app.admin_token().await;
    let as_admin = |method: reqwest::Method, path: &str| {
        app.client
            .request(method, app.url(path))
            .bearer_auth(&admin)
    };
    let created = answered_alike_across_a_crash(&app, "create-1", "product", || {
        as_admin(reqwest::Method::POST, "/api/v1/products").json(&json!({
            "name": "Crash", "categories": ["test"],
            "variants": [{"sku": "CRASH-1", "price": {"amount": 500, "currency": "EUR"}}]
        }))
    })
    .await;
    let product = format!("/api/v1/products/{}", created["id"].as_str().unwrap());
    let renamed = answered_alike_across_a_crash(&app, "rename-2", "product", || {
        as_admin(reqwest::Method::PATCH, &product)
            .header("if-match", format!("\"{}\"", created["version"]))
            .json(&json!({"name": "Crash, renamed"}))
    })
    .await;
    assert_eq!(renamed["version"], created["version"].as_u64().unwrap() + 1);

    answered_alike_across_a_crash(&app, "restock-2", "stock", || {
        as_admin(
            reqwest::Method::POST,
            "/api/v1/inventory/CRASH-1/adjustments",
        )
        .json(&json!({"delta": 10, "reason": "delivery"}))
    })
    .await;
    assert_eq!(app.stock("CRASH-1").await, (10, 0, 0));

    let (customer, _) = app.customer().await;
    let placed: Value = app
        .place_order(&customer, &[("CRASH-1", 2)])
        .await
        .json()
        .await
        .unwrap();
    let order = format!("/api/v1/orders/{}", placed["id"].as_str().unwrap());
    let paid = answered_alike_across_a_crash(&app, "pay-1", "order", || {
        as_admin(reqwest::Method::POST, &format!("{order}/status")).json(&json!({"status": "PAID"}))
    })
    .await;
    assert_eq!(paid["version"], 2);
    answered_alike_across_a_crash(&app, "cancel-1", "order", || {
        app.client
            .post(app.url(&format!("{order}/cancel")))
            .bearer_auth(&customer)
    })
    .await;
    assert_eq!(app.stock("CRASH-1").await, (10, 0, 0), "released once");
    answered_alike_across_a_crash(&app, "archive-2", "product", || {
        as_admin(reqwest::Method::DELETE, &product)
            .header("if-match", format!("\"{}\"", renamed["version"]))
    })
    .await;

    let staff = answered_alike_across_a_crash(&app, "staff-1", "account", || {
        as_admin(reqwest::Method::POST, "/api/v1/admin/accounts").json(&json!({
            "role": "STAFF", "username": "crash.staff", "name": "Grace Hopper",
            "password": "staff password"
        }))
    })
    .await;
    let staff = format!("/api/v1/admin/accounts/{}", staff["id"].as_str().unwrap());
    answered_alike_across_a_crash(&app, "lock-1", "account", || {
        as_admin(reqwest::Method::POST, &format!("{staff}/lock"))
            .json(&json!({"reason": "left the company"}))
    })
    .await;
    answered_alike_across_a_crash(&app, "unlock-1", "account", || {
        as_admin(reqwest::Method::POST, &format!("{staff}/unlock"))
    })
    .await;
    assert_eq!(
        app.login_status("crash.staff", "staff password").await,
        StatusCode::OK
    );

    let signed_up = answered_alike_across_a_crash(&app, "sign-up-1", "account", || {
        app.client
            .post(app.url("/api/v1/auth/register"))
            .json(&json!({
                "name": "Ada Lovelace", "email": "crash@example.com",
                "mobileNumber": "+491510000001", "password": CUSTOMER_PASSWORD
            }))
    })
    .await;
    let token = app.login("crash@example.com", CUSTOMER_PASSWORD).await["accessToken"]
        .as_str()
        .unwrap()
        .to_owned();
    answered_alike_across_a_crash(&app, "profile-1", "account", || {
        app.client
            .patch(app.url("/api/v1/customers/me"))
            .bearer_auth(&token)
            .header("if-match", format!("\"{}\"", signed_up["version"]))
            .json(&json!({"name": "Ada King"}))
    })
    .await;
}

/// What a crash between an order's append and the storing of its answer leaves: the key
/// pending, with no answer. Once it counts as abandoned (60 s), a retry runs the request
/// again; that run must find the order the first one placed (named by the request's id)
/// and answer with it, not place a second one, for `POST /orders` and for checkout alike;
/// and a parcel or a restock, run again, must not be recorded twice.
async fn an_order_whose_answer_a_crash_lost_is_found_not_placed_again(app: TestApp) {
    let customer = setup(&app).await;
    let crash = |key: &'static str| lose_answer(&app, key);

    let first = order_with_key(&app, &customer, "crash-1", 2).await;
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    crash("crash-1").await;
    let again = order_with_key(&app, &customer, "crash-1", 2).await;
    assert_eq!(again.status(), StatusCode::CREATED);
    assert!(
        again.headers().get("idempotent-replayed").is_none(),
        "run again"
    );
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"], "{again}");
    assert_eq!(
        app.stock("IDEM").await,
        (100, 2, 0),
        "one order's reservation"
    );
    let replayed = order_with_key(&app, &customer, "crash-1", 2).await;
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");

    // A parcel is named by its request too: the run after a crash records none more.
    let admin = app.admin_token().await;
    let order = first["id"].as_str().unwrap().to_owned();
    for status in ["PAID", "PACKED"] {
        let moved = app
            .post(
                &format!("/api/v1/orders/{order}/status"),
                Some(&admin),
                &json!({"status": status}),
            )
            .await;
        assert_eq!(moved.status(), StatusCode::OK);
    }
    let ship = || {
        app.client
            .post(app.url(&format!("/api/v1/orders/{order}/shipments")))
            .bearer_auth(&admin)
            .header("idempotency-key", "ship-1")
            .json(&json!({"carrier": "DHL", "trackingNumber": "JJD0001"}))
            .send()
    };
    assert_eq!(ship().await.unwrap().status(), StatusCode::CREATED);
    crash("ship-1").await;
    assert_eq!(ship().await.unwrap().status(), StatusCode::CREATED);
    let stream = eventstore::StreamId::new(format!("order-{order}")).unwrap();
    let parcels = app
        .store
        .read_stream(&stream, 1, 100)
        .await
        .unwrap()
        .iter()
        .filter(|event| event.event_type == "ShipmentCreated")
        .count();
    assert_eq!(parcels, 1);

    // Checkout: the first run emptied the cart, so the run after the crash finds the
    // order before it looks at the cart.
    let added = app
        .post(
            "/api/v1/cart/items",
            Some(&customer),
            &json!({"sku": "IDEM", "quantity": 3}),
        )
        .await;
    assert!(added.status().is_success(), "{}", added.status());
    let checkout = || {
        app.client
            .post(app.url("/api/v1/cart/checkout"))
            .bearer_auth(&customer)
            .header("idempotency-key", "crash-2")
            .json(&json!({"shippingAddress": address()}))
            .send()
    };
    let first = checkout().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    crash("crash-2").await;
    let again = checkout().await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED, "not cart_empty");
    assert_eq!(again.json::<Value>().await.unwrap()["id"], first["id"]);
    // The shipped order's 2 units are committed; the checkout's 3 stay reserved.
    assert_eq!(app.stock("IDEM").await, (98, 3, 2));

    // A restock is named by its request: run again after a crash, it counts once.
    let restock = || {
        app.client
            .post(app.url("/api/v1/inventory/IDEM/adjustments"))
            .bearer_auth(&admin)
            .header("idempotency-key", "restock-1")
            .json(&json!({"delta": 10, "reason": "delivery"}))
            .send()
    };
    assert_eq!(restock().await.unwrap().status(), StatusCode::OK);
    crash("restock-1").await;
    assert_eq!(restock().await.unwrap().status(), StatusCode::OK);
    assert_eq!(app.stock("IDEM").await, (108, 3, 2));
}

/// The key belongs to requests a route takes: a method the path does not take stays a
/// 405, and an unknown path a 404, and neither uses the key up.
async fn a_key_on_a_method_or_path_no_route_takes_is_not_kept(app: TestApp) {
    let customer = setup(&app).await;
    let send = |method: reqwest::Method, path: &str| {
        app.client
            .request(method, app.url(path))
            .bearer_auth(&customer)
            .header("idempotency-key", "stray-key")
            .json(&json!({}))
            .send()
    };
    for _ in 0..2 {
        let wrong_method = send(reqwest::Method::PATCH, "/api/v1/auth/login")
            .await
            .unwrap();
        assert_eq!(wrong_method.status(), StatusCode::METHOD_NOT_ALLOWED);
        let unknown = send(reqwest::Method::POST, "/api/v1/no-such-thing")
            .await
            .unwrap();
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    }
    // The key is still free for a real request.
    let placed = order_with_key(&app, &customer, "stray-key", 1).await;
    assert_eq!(
        placed.status(),
        StatusCode::CREATED,
        "{:?}",
        placed.text().await
    );
}
