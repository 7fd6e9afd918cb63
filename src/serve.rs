//! `emporium serve`: the APIs in one process, on one port.
use command_api::{BootstrapAdmin, CommandApiConfig, auth::AuthConfig};

use crate::{backends::Backends, settings::Settings};

/// The command API's settings.
pub fn command_config(settings: &Settings) -> CommandApiConfig {
    CommandApiConfig {
        auth: AuthConfig {
            access_token_ttl: std::time::Duration::from_secs(settings.access_token_ttl_seconds),
            refresh_token_ttl: std::time::Duration::from_secs(settings.refresh_token_ttl_seconds),
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

/// Opens the backends, builds the router and serves until Ctrl-C or SIGTERM.
pub async fn run(settings: &Settings) -> anyhow::Result<()> {
    let backends = Backends::open(settings).await?;
    let state = command_api::build_state(
        backends.store.clone(),
        backends.sql.clone(),
        &command_config(settings),
    )
    .await?;
    let app = web::server::Application::bind(&settings.addr, command_api::router(state)).await?;
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
    Ok(())
}
