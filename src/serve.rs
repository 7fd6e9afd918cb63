//! `emporium serve`: the command API, the projector and the query API in one process, on
//! one port, sharing one event store and one database.
use std::{sync::Arc, time::Duration};

use axum::{Router, routing::get};
use bus::{Bus, BusKind};
use command_api::{AppState, BootstrapAdmin, CommandApiConfig, auth::AuthConfig};
use eventstore::{EventStore, shared_tail::SharedTail};
use query_api::{QueryState, search::SearchIndex};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use web::{health, metrics, openapi::ApiDoc};

use crate::{backends::Backends, cli::Role, settings::Settings};

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
            password_reset_ttl: Duration::from_secs(settings.password_reset_ttl_seconds),
            password_reset_link: settings.password_reset_url.clone(),
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

/// Where carts and wishlists are kept: Redis when `EMPORIUM_REDIS_URL` is set, else the
/// SQL database.
pub fn cart_store(
    settings: &Settings,
    backends: &Backends,
) -> anyhow::Result<Arc<dyn command_api::carts::CartStore>> {
    command_api::carts::open_store(
        settings.redis_url.as_deref(),
        backends.sql.clone(),
        command_api::carts::CartStoreConfig {
            ttl: Duration::from_secs(settings.cart_ttl_seconds),
            ..command_api::carts::CartStoreConfig::default()
        },
    )
}

fn readiness(backends: &Backends, bus: Option<&Arc<dyn Bus>>) -> Vec<health::Check> {
    let (store, sql) = (backends.store.clone(), backends.sql.clone());
    let mut checks = vec![
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
    ];
    // Without NATS, events wait in the log: the node still works, degraded.
    if let Some(bus) = bus.filter(|b| b.kind() == BusKind::Nats).cloned() {
        checks.push(health::Check::degrading("nats", move || {
            let bus = bus.clone();
            async move { bus.ping().await.map_err(|e| e.to_string()) }
        }));
    }
    checks
}

/// Degrades (never fails) a node with a stalled projection: it still serves, but a read
/// model (or the integration events) stopped at an event it cannot apply.
fn projections_check(stalls: projector::Stalls) -> health::Check {
    health::Check::degrading("projections", move || {
        let stalls = stalls.clone();
        async move { stalls.check() }
    })
}

/// The notifier's webhook settings.
pub fn webhook_config(settings: &Settings) -> notifier::WebhookConfig {
    notifier::WebhookConfig {
        allow_private: settings.webhook_allow_private,
        max_attempts: settings.webhook_max_attempts.max(1),
        base_delay: Duration::from_millis(settings.webhook_retry_base_ms),
        timeout: Duration::from_millis(settings.webhook_timeout_ms),
        ..notifier::WebhookConfig::default()
    }
}

/// The HTTP routes of `role` (none for the projector and the notifier, which serve only
/// probes). Command nodes also serve the webhook admin API.
fn routes(
    role: Role,
    commands: Option<AppState>,
    queries: Option<QueryState>,
    sql: &sqlx::AnyPool,
    settings: &Settings,
) -> Router {
    let mut api = OpenApiRouter::with_openapi(ApiDoc::openapi());
    if let Some(commands) = commands {
        api = api.merge(notifier::webhooks::api::routes(
            notifier::webhooks::api::WebhookApi {
                sql: sql.clone(),
                verifier: commands.verifier.clone(),
                allow_private: settings.webhook_allow_private,
            },
        ));
        api = api.merge(command_api::routes(commands));
    }
    if let Some(queries) = queries {
        api = api.merge(query_api::routes(queries));
    }
    let (router, doc) = api.split_for_parts();
    if matches!(role, Role::Projector | Role::Notifier) {
        router
    } else {
        router.merge(web::openapi::docs(doc))
    }
}

/// Opens the backends and runs `role` until Ctrl-C or SIGTERM; a projector in this process
/// finishes its batch before the process exits.
pub async fn run(settings: &Settings, role: Role) -> anyhow::Result<()> {
    // The recorder first: what the workers record before the first request or scrape
    // (a projector node serves no other) would otherwise be lost.
    metrics::handle();
    let backends = Backends::open(settings).await?;
    let config = command_config(settings);
    let serves_commands = matches!(role, Role::All | Role::Command);
    let runs_projector = matches!(role, Role::All | Role::Projector);
    let serves_queries = matches!(role, Role::All | Role::Query);
    let runs_notifier = matches!(role, Role::All | Role::Notifier);

    if runs_notifier {
        // A wrong SMTP URL is a configuration error: say so now, not at the first e-mail.
        notifier::email::sender::Transport::open(&settings.email())?;
    }
    let commands = if serves_commands {
        let state =
            command_api::build_state(backends.store.clone(), backends.sql.clone(), &config).await?;
        Some(state.with_cart_store(cart_store(settings, &backends)?))
    } else {
        None
    };
    // Nodes that read or write views share them through Redis when it is configured;
    // otherwise each caches in process only.
    let shared_cache = match settings.redis_cache() {
        Some(config) if serves_queries || runs_projector => {
            Some(cache::SharedViews::connect(config)?)
        }
        _ => None,
    };
    // Every follower of the whole log in this process (projections, publisher, view cache
    // writer, search index, notifier) reads it through one shared tail: each new batch
    // of events is read from the store once, not once per follower.
    let followed: Arc<dyn EventStore> = Arc::new(SharedTail::new(backends.store.clone()));
    let projector = runs_projector.then(|| {
        projector::Projector::new(
            followed.clone(),
            backends.sql.clone(),
            &projector::RunnerConfig::default(),
            projector::default_projections(),
        )
    });
    // The integration bus, where the projector's nodes publish and a notifier subscribes.
    let bus = if runs_projector || runs_notifier {
        Some(backends.bus(settings).await?)
    } else {
        None
    };
    // With NATS, the projector's nodes also publish the log's integration events to it; the
    // in-process bus needs no publisher (its subscribers read the log).
    let publisher = bus
        .clone()
        .filter(|b| runs_projector && b.kind() == BusKind::Nats)
        .map(|bus| {
            projector::publisher::runner(
                followed.clone(),
                backends.sql.clone(),
                bus,
                projector::RunnerConfig::default(),
            )
        });
    // Each query node keeps its own search index, a projection it runs itself.
    let (search, search_projection) = if serves_queries {
        Some(SearchIndex::open(&settings.search_dir())?)
    } else {
        None
    }
    .unzip();
    let queries = if serves_queries {
        // Query nodes verify tokens; they derive the public key from the shared key and
        // never sign anything.
        let verifier = match &commands {
            Some(state) => state.verifier.clone(),
            None => {
                let auth = command_api::auth::Auth::new(&config.auth, backends.sql.clone())?;
                // The command nodes record locks and resets; this node refuses the
                // revoked tokens within a second.
                tokio::spawn(auth.follow_revocations());
                auth.verifier()
            }
        };
        let local_ttl = Duration::from_secs(settings.cache_local_ttl_seconds);
        let query_config = query_api::QueryConfig {
            min_position_wait: Duration::from_millis(settings.min_position_wait_ms),
            product_cache_ttl: local_ttl,
            product_cache_capacity: settings.cache_local_capacity,
            order_cache_ttl: local_ttl,
            order_cache_capacity: settings.cache_local_capacity,
        };
        let positions = projector.as_ref().map(projector::Projector::positions);
        let state = QueryState::new(backends.sql.clone(), verifier, positions, &query_config)
            .with_event_store(backends.store.clone());
        let state = match &shared_cache {
            Some(shared) => state.with_shared_cache(shared.clone()),
            None => state,
        };
        Some(match search.clone() {
            Some(index) => state.with_search(index),
            None => state,
        })
    } else {
        None
    };
    // Command nodes release reservations whose order never appeared (or was cancelled).
    let (stop_sweeper, sweeper_stopped) = tokio::sync::oneshot::channel::<()>();
    let sweeper_task = commands.clone().map(|state| {
        tokio::spawn(command_api::sweeper::run(
            state,
            backends.sql.clone(),
            Duration::from_secs(60),
            Duration::from_secs(settings.reservation_timeout_seconds),
            async move {
                let _ = sweeper_stopped.await;
            },
        ))
    });
    // A replay's swap leaves checkpoints where they were: query nodes watch for it.
    let (stop_replay_watch, replay_watch_stopped) = tokio::sync::oneshot::channel::<()>();
    let replay_watch_task = match queries.clone() {
        Some(state) => {
            let watch = query_api::replays::ReplayWatch::new(state).await;
            Some(tokio::spawn(watch.run(
                query_api::replays::POLL_EVERY,
                async move {
                    let _ = replay_watch_stopped.await;
                },
            )))
        }
        None => None,
    };
    let mut checks = readiness(&backends, bus.as_ref());
    let stalls = projector.as_ref().map(|projector| {
        let stalls = projector.stalls();
        match &publisher {
            Some(runner) => stalls.with(runner),
            None => stalls,
        }
    });
    checks.extend(stalls.map(projections_check));
    checks.extend(shared_cache.clone().map(query_api::cache_writer::readiness));
    checks.extend(commands.as_ref().map(command_api::carts_check));
    checks.extend(search.as_ref().map(SearchIndex::readiness_check));
    let router = web::layers::apply(
        routes(role, commands, queries, &backends.sql, settings)
            .merge(health::router(checks))
            .route("/metrics", get(metrics::render)),
    );
    let router = match settings.trusted_proxies()? {
        Some(trusted) => router.layer(axum::Extension(std::sync::Arc::new(trusted))),
        None => router,
    };
    // Outermost, so a preflight is answered before anything else looks at it.
    let router = match settings.cors()? {
        Some(origins) => router.layer(origins.layer()),
        None => router,
    };

    // Projector nodes write the views the projections touch through to Redis.
    let (stop_writer, writer_stopped) = tokio::sync::oneshot::channel::<()>();
    let writer_task = shared_cache.filter(|_| runs_projector).map(|shared| {
        let writer = query_api::ViewCacheWriter::new(
            followed.clone(),
            backends.sql.clone(),
            shared,
            projector.as_ref().map(projector::Projector::positions),
            projector::RunnerConfig::default(),
        );
        tokio::spawn(async move {
            writer
                .run_until_stopped(async move {
                    let _ = writer_stopped.await;
                })
                .await;
        })
    });
    let (stop_projector, projector_stopped) = tokio::sync::oneshot::channel::<()>();
    let projector_task = projector.map(|projector| {
        tokio::spawn(projector.run_until_stopped(async move {
            let _ = projector_stopped.await;
        }))
    });
    let (stop_publisher, publisher_stopped) = tokio::sync::oneshot::channel::<()>();
    let publisher_task = publisher.map(|runner| {
        tokio::spawn(async move {
            runner
                .run_until_stopped(async move {
                    let _ = publisher_stopped.await;
                })
                .await;
        })
    });
    let (stop_notifier, notifier_stopped) = tokio::sync::oneshot::channel::<()>();
    let notifier_task = match (&bus, runs_notifier) {
        (Some(bus), true) => Some(tokio::spawn(notifier::run(
            bus.clone(),
            followed.clone(),
            backends.sql.clone(),
            webhook_config(settings),
            settings.email(),
            async move {
                let _ = notifier_stopped.await;
            },
        ))),
        _ => None,
    };
    let (stop_search, search_stopped) = tokio::sync::oneshot::channel::<()>();
    let search_task = search_projection.map(|projection| {
        tokio::spawn(projection.run_until_stopped(
            followed.clone(),
            query_api::search::SearchConfig::default(),
            async move {
                let _ = search_stopped.await;
            },
        ))
    });
    let app = web::server::Application::bind(&settings.addr, router).await?;
    let addr = app.local_addr()?;
    tracing::info!(%addr, ?role, backends = %backends.description, "Emporium is listening");
    println!(
        "Emporium ({role:?}) is listening on http://{addr} ({})",
        backends.description
    );
    if !matches!(role, Role::Projector | Role::Notifier) {
        println!("  Swagger UI:   http://{addr}/docs");
        println!("  OpenAPI:      http://{addr}/api-docs/openapi.json");
    }
    let empty_store = backends.store.head_position().await.unwrap_or(0) == 0;
    if serves_commands && empty_store && settings.bootstrap_admin_password.is_none() {
        println!(
            "  First admin:  set EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD before starting, or run `emporium admin create`"
        );
    }
    app.run_until_stopped(web::shutdown::signal()).await?;
    let _ = stop_projector.send(());
    let _ = stop_publisher.send(());
    let _ = stop_sweeper.send(());
    let _ = stop_notifier.send(());
    if let Some(task) = notifier_task
        && let Ok(Err(err)) = task.await
    {
        tracing::error!(%err, "the notifier failed");
    }
    let _ = stop_writer.send(());
    let _ = stop_search.send(());
    let _ = stop_replay_watch.send(());
    if let Some(task) = replay_watch_task {
        let _ = task.await;
    }
    if let Some(task) = writer_task {
        let _ = task.await;
    }
    if let Some(task) = search_task {
        let _ = task.await;
    }
    if let Some(task) = sweeper_task {
        let _ = task.await;
    }
    if let Some(task) = projector_task {
        let _ = task.await;
    }
    if let Some(task) = publisher_task {
        let _ = task.await;
    }
    Ok(())
}
