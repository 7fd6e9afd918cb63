//! Wiring: state from configuration, and the router with docs, probes and metrics.
use std::sync::Arc;

use axum::{Router, middleware, routing::get};
use eventstore::EventStore;
use sqlx::AnyPool;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use web::{health, metrics, openapi::ApiDoc};

use crate::{
    auth::{Auth, AuthConfig},
    carts::{CartStoreConfig, Carts, SqlCartStore},
    claims::Claims,
    idempotency::{self, IdempotencyKeys},
    placements::Placements,
    routes as resources,
    service::CommandService,
    state::{AppParts, AppState},
};

/// The first admin, created at start-up on a store that has none.
#[derive(Clone)]
pub struct BootstrapAdmin {
    /// Username (`admin` by default).
    pub username: String,
    /// Password (from `EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD`; never logged).
    pub password: String,
}

impl std::fmt::Debug for BootstrapAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapAdmin")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// Settings of the command API.
#[derive(Clone, Debug)]
pub struct CommandApiConfig {
    /// Tokens and rate limits.
    pub auth: AuthConfig,
    /// How many aggregates stay cached in memory.
    pub aggregate_cache_capacity: u64,
    /// The first admin, if configured.
    pub bootstrap_admin: Option<BootstrapAdmin>,
}

/// Builds the state over an event store and the SQL database that keeps tokens,
/// idempotency keys and (unless [`AppState::with_cart_store`] says otherwise) carts, already
/// migrated; and creates the bootstrap admin if due.
pub async fn build_state(
    store: Arc<dyn EventStore>,
    sql: AnyPool,
    config: &CommandApiConfig,
) -> anyhow::Result<AppState> {
    let commands = CommandService::new(store, config.aggregate_cache_capacity);
    let auth = Arc::new(Auth::new(&config.auth, sql.clone())?);
    // Locks and resets recorded by other command nodes reach this one's verifier.
    tokio::spawn(auth.follow_revocations());
    let placements = commands
        .atomic_multi_stream()
        .then(|| Placements::start(commands.clone()));
    let state = AppState::new(AppParts {
        claims: Claims::new(commands.clone()),
        commands,
        verifier: auth.verifier(),
        auth,
        idempotency: IdempotencyKeys::new(sql.clone()),
        carts: Carts::new(Arc::new(SqlCartStore::new(sql, CartStoreConfig::default()))),
        placements,
    });
    if let Some(admin) = &config.bootstrap_admin {
        crate::bootstrap::bootstrap_admin(&state, &admin.username, &admin.password).await?;
    }
    Ok(state)
}

/// The API routes with their OpenAPI paths, state applied: for composing with other
/// services' routes in one process.
pub fn routes(state: AppState) -> OpenApiRouter {
    let mut routes = OpenApiRouter::new()
        .merge(resources::auth::router())
        .merge(resources::accounts::router())
        .merge(resources::products::router())
        .merge(resources::inventory::router())
        .merge(resources::orders::router())
        .merge(resources::cart::router())
        .merge(resources::customers::router())
        .merge(resources::wishlist::router());
    let writes = idempotency::WriteRoutes::documented(routes.get_openapi_mut());
    routes
        .route_layer(middleware::from_fn(metrics::track))
        // Only requests a route takes: a method the path does not take is a 405, and an
        // unknown path a 404, whatever key they carry, and neither is stored.
        .route_layer(middleware::from_fn_with_state(
            (state.clone(), writes),
            idempotency::middleware,
        ))
        .with_state(state)
}

/// The readiness check of the cart store. Orders do not need carts, so a cart store
/// outage degrades the service, no more.
pub fn carts_check(state: &AppState) -> health::Check {
    let carts = state.carts.store().clone();
    health::Check::degrading("carts", move || {
        let carts = carts.clone();
        async move { carts.ping().await.map_err(|e| e.to_string()) }
    })
}

/// The command API as a standalone service: routes, `/docs`, `/api-docs/openapi.json`,
/// probes and `/metrics`, in the shared middleware.
pub fn router(state: AppState) -> Router {
    let store = state.commands.store().clone();
    let carts = carts_check(&state);
    let (api, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes(state))
        .split_for_parts();
    let ready = health::Check::critical("eventStore", move || {
        let store = store.clone();
        async move { store.ping().await.map_err(|e| e.to_string()) }
    });
    web::layers::apply(
        api.merge(web::openapi::docs(doc))
            .merge(health::router(vec![ready, carts]))
            .route("/metrics", get(metrics::render)),
    )
}
