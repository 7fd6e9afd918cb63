//! Wiring: the routes with their OpenAPI paths, and the standalone router with docs,
//! probes and metrics.
use axum::{Router, middleware, routing::get};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use web::{health, metrics, openapi::ApiDoc};

use crate::{routes as resources, state::QueryState};

/// The API routes with their OpenAPI paths, state applied: for composing with other
/// services' routes in one process.
pub fn routes(state: QueryState) -> OpenApiRouter {
    OpenApiRouter::new()
        .merge(resources::products::router())
        .merge(resources::inventory::router())
        .merge(resources::orders::router())
        .merge(resources::customers::router())
        .merge(resources::accounts::router())
        .merge(resources::analytics::router())
        .merge(resources::search::router())
        .merge(resources::recommendations::router())
        .route_layer(middleware::from_fn(metrics::track))
        .with_state(state)
}

/// The query API as a standalone service: routes, `/docs`, `/api-docs/openapi.json`,
/// probes and `/metrics`, in the shared middleware.
pub fn router(state: QueryState) -> Router {
    // Install the recorder now, so requests before the first scrape are counted too.
    metrics::handle();
    let pool = state.pool.clone();
    let shared_cache = state.shared_cache.clone();
    let search = state
        .search
        .as_ref()
        .map(crate::search::SearchIndex::readiness_check);
    let (api, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes(state))
        .split_for_parts();
    let ready = health::Check::critical("readModels", move || {
        let pool = pool.clone();
        async move {
            sqlx::query("SELECT 1")
                .execute(&pool)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        }
    });
    let mut checks = vec![ready];
    checks.extend(shared_cache.map(crate::cache_writer::readiness));
    checks.extend(search);
    web::layers::apply(
        api.merge(web::openapi::docs(doc))
            .merge(health::router(checks))
            .route("/metrics", get(metrics::render)),
    )
}
