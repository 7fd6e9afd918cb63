//! Chooses the backends from the settings' URLs (none: embedded), opens and migrates them.
use std::sync::Arc;

use anyhow::{Context, bail};
use bus::{Bus, InProcessBus, InProcessConfig, NatsBus, NatsConfig};
use eventstore::{
    EventStore,
    postgres::{PostgresConfig, PostgresEventStore},
    sqlite::SqliteEventStore,
};
use sqlx::{AnyPool, any::AnyPoolOptions};

use crate::settings::Settings;

/// The opened backends.
pub struct Backends {
    /// The event log.
    pub store: Arc<dyn EventStore>,
    /// Tokens, idempotency keys, read models.
    pub sql: AnyPool,
    /// For the start-up log line.
    pub description: String,
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

impl Backends {
    /// Opens and migrates the backends the settings name.
    pub async fn open(settings: &Settings) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new().max_connections(settings.database_pool_size());
        match settings.database_url.as_deref() {
            None => {
                std::fs::create_dir_all(&settings.data_dir)
                    .with_context(|| format!("creating {}", settings.data_dir.display()))?;
                let path = settings.data_dir.join("emporium.db");
                if let Some(url) = settings
                    .eventstore_url
                    .as_deref()
                    .filter(|u| !u.starts_with("sqlite:"))
                {
                    bail!(
                        "EMPORIUM_EVENTSTORE_URL={url} needs EMPORIUM_DATABASE_URL (PostgreSQL) for everything else"
                    );
                }
                let store = SqliteEventStore::open(&path)
                    .await
                    .context("opening the embedded database")?;
                store
                    .migrate()
                    .await
                    .context("migrating the embedded database")?;
                // As the event store's writer: a commit survives a process crash, and the
                // WAL is not flushed to disk on every projection batch.
                let sql = pool
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            sqlx::query("PRAGMA synchronous = NORMAL")
                                .execute(conn)
                                .await?;
                            Ok(())
                        })
                    })
                    .connect(&format!("sqlite://{}", path.display()))
                    .await?;
                Ok(Self {
                    store: Arc::new(store),
                    sql,
                    description: format!("embedded SQLite at {}", path.display()),
                })
            }
            Some(db) if is_postgres(db) => {
                let config = PostgresConfig {
                    max_connections: settings.database_pool_size(),
                    ..PostgresConfig::default()
                };
                let database = PostgresEventStore::connect(db, &config)?;
                database.migrate().await.context("migrating PostgreSQL")?;
                // No JIT compilation: it pays off for long analytical queries, but a product
                // list over 100,000 products is estimated costly enough to trigger it, and
                // compiling took 10-50 ms of a statement that runs in 3-30.
                let sql = pool
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            sqlx::query("SET jit = off").execute(conn).await?;
                            Ok(())
                        })
                    })
                    .connect(db)
                    .await
                    .context("connecting to PostgreSQL")?;
                let (store, log): (Arc<dyn EventStore>, String) =
                    match settings.eventstore_url.as_deref() {
                        None => (Arc::new(database), "PostgreSQL".into()),
                        Some(url) if is_postgres(url) => {
                            let store = PostgresEventStore::connect(url, &config)?;
                            store
                                .migrate()
                                .await
                                .context("migrating the PostgreSQL event store")?;
                            (Arc::new(store), "PostgreSQL (separate event store)".into())
                        }
                        Some(url) => (kurrent(url)?, "KurrentDB".into()),
                    };
                Ok(Self {
                    store,
                    sql,
                    description: format!("{log} event store, PostgreSQL read side"),
                })
            }
            Some(other) => bail!("EMPORIUM_DATABASE_URL must be a postgres:// URL, got {other:?}"),
        }
    }
}

impl Backends {
    /// The integration bus: NATS JetStream when `EMPORIUM_NATS_URL` is set (a server that
    /// is down is waited for in the background), else the in-process bus over this node's
    /// log. Subscribers (a notifier) use either the same way.
    pub async fn bus(&self, settings: &Settings) -> anyhow::Result<Arc<dyn Bus>> {
        Ok(match settings.nats_url.as_deref() {
            Some(url) => Arc::new(
                NatsBus::connect(NatsConfig {
                    stream: settings.nats_stream.clone(),
                    namespace: settings.nats_namespace.clone(),
                    ..NatsConfig::new(url)
                })
                .await
                .context("connecting to NATS")?,
            ),
            None => Arc::new(InProcessBus::new(
                self.store.clone(),
                self.sql.clone(),
                InProcessConfig::default(),
            )),
        })
    }
}

#[cfg(feature = "kurrentdb")]
fn kurrent(url: &str) -> anyhow::Result<Arc<dyn EventStore>> {
    Ok(Arc::new(eventstore::kurrent::KurrentEventStore::connect(
        url,
    )?))
}

#[cfg(not(feature = "kurrentdb"))]
fn kurrent(url: &str) -> anyhow::Result<Arc<dyn EventStore>> {
    bail!(
        "EMPORIUM_EVENTSTORE_URL={url}: this build has no KurrentDB support (build with --features kurrentdb)"
    )
}

#[cfg(test)]
mod tests {
    use eventstore::testsupport::TestPostgres;

    use super::*;

    #[tokio::test]
    async fn read_models_on_postgres_run_without_jit() {
        let Some(db) = TestPostgres::new().await else {
            return;
        };
        let settings = Settings {
            database_url: Some(db.url.clone()),
            ..Settings::default()
        };
        let backends = Backends::open(&settings).await.unwrap();
        for _ in 0..3 {
            let jit: String = sqlx::query_scalar("SELECT current_setting('jit')")
                .fetch_one(&backends.sql)
                .await
                .unwrap();
            assert_eq!(jit, "off");
        }
    }
}
