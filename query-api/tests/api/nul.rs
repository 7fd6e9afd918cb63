//! `%00` (the NUL character) in a path or query string is a 400 before any read: on
//! PostgreSQL, binding it failed the query (500).
use domain::account::Role;
use reqwest::StatusCode;

use crate::helpers::{TestApp, assert_problem};

crate::backend_tests!(a_nul_in_the_path_or_query_is_a_bad_request);

async fn a_nul_in_the_path_or_query_is_a_bad_request(app: TestApp) {
    app.seed().await;
    let admin = app.token(Role::Admin);
    for path in [
        "/api/v1/products?q=%00",
        "/api/v1/products?category=shirts%00",
        "/api/v1/products?attr.colour=%00",
        "/api/v1/products?attr.%00=red",
        "/api/v1/search?q=linen%00",
        "/api/v1/inventory/SHIRT-M%00",
        "/api/v1/admin/accounts?q=%00",
    ] {
        let response = app.get_as(path, &admin).await;
        assert_problem(response, StatusCode::BAD_REQUEST, "invalid_uri").await;
    }
    // Without it, the same reads answer.
    for path in ["/api/v1/products?q=linen", "/api/v1/inventory/SHIRT-M"] {
        assert_eq!(
            app.get_as(path, &admin).await.status(),
            StatusCode::OK,
            "{path}"
        );
    }
}
