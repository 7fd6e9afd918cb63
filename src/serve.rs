//! `emporium serve`: the command API, the projector and the query API in one process, on
//! one port, sharing one event store and one database.
use std::time::Duration;

use axum::routing::get;
use command_api::{BootstrapAdmin, CommandApiConfig, auth::AuthConfig};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use web::{health, metrics, openapi::ApiDoc};

use crate::{backends::Backends, settings::Settings};

/// The command API's settings.
pub fn command_config(settings: &Settings) -> CommandApiConfig {
    CommandApiConfig {
        auth: AuthConfig {
            access_token_ttl: Duration::from_secs(settings.access_token_ttl_seconds),
            refresh_token_ttl: Duration::from_secs(settings.refresh_token_ttl_seconds),
            signup_per_minute: settings.rate_limit_signup_per_minute,
            login_failures_per_minute: settings.rate_limit_login_failures_per_minute,
            signing_key_pem: settings.jwt_private_key.clone(),
            signing_key_file: Some(settings.signing_key_file()),
        },
        aggregate_cache_capacity: settings.aggregate_cache_capacity,
        bootstrap_admin: settings
            .bootstrap_admin_password
            .clone()
            .map(|password| BootstrapAdmin {
                username: settings.bootstrap_admin_username.clone(),
                password,
            }),
    }
}

fn readiness(backends: &Backends) -> Vec<health::Check> {
    let (store, sql) = (backends.store.clone(), backends.sql.clone());
    vec![
        health::Check::critical("eventStore", move || {
            let store = store.clone();
            async move { store.ping().await.map_err(|e| e.to_string()) }
        }),
        health::Check::critical("database", move || {
            let sql = sql.clone();
            async move {
                sqlx::query("SELECT 1")
                    .execute(&sql)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            }
        }),
    ]
}

/// Opens the backends, starts the projector, serves until Ctrl-C or SIGTERM, then lets the
/// projector finish its batch.
pub async fn run(settings: &Settings) -> anyhow::Result<()> {
    let backends = Backends::open(settings).await?;
    let commands = command_api::build_state(
        backends.store.clone(),
        backends.sql.clone(),
        &command_config(settings),
    )
    .await?;
    let projector = projector::Projector::new(
        backends.store.clone(),
        backends.sql.clone(),
        &projector::RunnerConfig::default(),
        projector::default_projections(),
    );
    let query_config = query_api::QueryConfig {
        min_position_wait: Duration::from_millis(settings.min_position_wait_ms),
        ..query_api::QueryConfig::default()
    };
    let queries = query_api::QueryState::new(
        backends.sql.clone(),
        commands.verifier.clone(),
        Some(projector.positions()),
        &query_config,
    );
    let (api, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(command_api::routes(commands))
        .merge(query_api::routes(queries))
        .split_for_parts();
    let router = web::layers::apply(
        api.merge(web::openapi::docs(doc))
            .merge(health::router(readiness(&backends)))
            .route("/metrics", get(metrics::render)),
    );

    let (stop_projector, projector_stopped) = tokio::sync::oneshot::channel::<()>();
    let projector_task = tokio::spawn(projector.run_until_stopped(async move {
        let _ = projector_stopped.await;
    }));
    let app = web::server::Application::bind(&settings.addr, router).await?;
    let addr = app.local_addr()?;
    tracing::info!(%addr, backends = %backends.description, "Emporium is listening");
    println!(
        "Emporium is listening on http://{addr} ({})",
        backends.description
    );
    println!("  Swagger UI:   http://{addr}/docs");
    println!("  OpenAPI:      http://{addr}/api-docs/openapi.json");
    if settings.bootstrap_admin_password.is_none() {
        println!(
            "  First admin:  set EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD before starting, or run `emporium admin create`"
        );
    }
    app.run_until_stopped(web::shutdown::signal()).await?;
    let _ = stop_projector.send(());
    let _ = projector_task.await;
    Ok(())
}
