//! Test support for every backend's tests: a fresh database per test, the rule for
//! missing services, and a TCP proxy that simulates the database going away.
use std::{
    net::SocketAddr,
    path::PathBuf,
    str::FromStr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use sqlx::{
    AnyPool, ConnectOptions, Connection, Executor, PgConnection, any::AnyPoolOptions,
    postgres::PgConnectOptions,
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
    task::AbortHandle,
};

use crate::{
    EventStore,
    postgres::{PostgresConfig, PostgresEventStore},
    sqlite::SqliteEventStore,
};

/// The PostgreSQL server tests use: `EMPORIUM_TEST_DATABASE_URL`, or the local default.
pub fn postgres_admin_url() -> String {
    std::env::var("EMPORIUM_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Whether a missing service must fail the run (CI) instead of skipping the test.
pub fn services_required() -> bool {
    std::env::var("EMPORIUM_REQUIRE_SERVICES")
        .is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// Reports a missing service: a panic when services are required, else a clear skip line.
pub fn skip_or_fail(service: &str, address: &str, err: &dyn std::fmt::Display) {
    assert!(
        !services_required(),
        "EMPORIUM_REQUIRE_SERVICES is set but there is no {service} at {address}: {err}"
    );
    eprintln!("skipped: no {service} at {address} ({err})");
}

/// A SQLite store in a temporary folder that lives as long as the value.
pub struct TestSqlite {
    /// The migrated store.
    pub store: SqliteEventStore,
    /// The database file.
    pub path: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestSqlite {
    /// A new, migrated store in a new temporary folder.
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        let path = dir.path().join("emporium.db");
        let store = SqliteEventStore::open(&path).await.expect("open sqlite");
        store.migrate().await.expect("migrate sqlite");
        Self {
            store,
            path,
            _dir: dir,
        }
    }
}

/// A PostgreSQL database created for one test and dropped when the value is dropped.
pub struct TestPostgres {
    /// URL of the new database.
    pub url: String,
    name: String,
    admin_url: String,
}

impl TestPostgres {
    /// Creates and migrates a fresh database, or returns `None` (after printing why) when
    /// no server is reachable and services are not required.
    pub async fn new() -> Option<Self> {
        let admin_url = postgres_admin_url();
        let mut admin =
            match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&admin_url))
                .await
            {
                Ok(Ok(conn)) => conn,
                Ok(Err(err)) => {
                    skip_or_fail("PostgreSQL", &admin_url, &err);
                    return None;
                }
                Err(err) => {
                    skip_or_fail("PostgreSQL", &admin_url, &err);
                    return None;
                }
            };
        let name = format!("emporium_test_{}", uuid::Uuid::now_v7().simple());
        admin
            .execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .await
            .expect("create test database");
        let options = PgConnectOptions::from_str(&admin_url)
            .expect("test database url")
            .database(&name);
        let url = options.to_url_lossy().to_string();
        let db = Self {
            url,
            name,
            admin_url,
        };
        db.store(&PostgresConfig::default())
            .migrate()
            .await
            .expect("migrate test database");
        Some(db)
    }

    /// A store on this database.
    pub fn store(&self, config: &PostgresConfig) -> PostgresEventStore {
        PostgresEventStore::connect(&self.url, config).expect("postgres store")
    }

    /// This database's URL with host and port replaced (to go through a [`TcpProxy`]).
    pub fn url_via(&self, addr: SocketAddr) -> String {
        let options = PgConnectOptions::from_str(&self.url)
            .expect("url")
            .host(&addr.ip().to_string())
            .port(addr.port());
        options.to_url_lossy().to_string()
    }

    /// Where the server listens.
    pub fn server_addr(&self) -> SocketAddr {
        let options = PgConnectOptions::from_str(&self.url).expect("url");
        let host = options.get_host();
        let host = if host.starts_with('/') || host == "localhost" {
            "127.0.0.1"
        } else {
            host
        };
        format!("{host}:{}", options.get_port())
            .parse()
            .expect("server address")
    }
}

impl Drop for TestPostgres {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime, which cannot be blocked on: use a thread.
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            runtime.block_on(async {
                if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                    let _ = admin
                        .execute(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .await;
                }
            });
        })
        .join();
    }
}

/// Which backend a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in a temporary folder.
    Sqlite,
    /// A database of its own on the test PostgreSQL server.
    Postgres,
}

/// Held for its `Drop`, which removes the database.
#[allow(dead_code)]
enum Held {
    Sqlite(TestSqlite),
    Postgres(TestPostgres),
}

/// A fresh, migrated database of either backend for one test: its event store, and the
/// URL the test's SQL pools connect to. The database goes when the value is dropped.
pub struct TestBackend {
    /// Which backend.
    pub backend: Backend,
    /// The event store on it.
    pub store: Arc<dyn EventStore>,
    /// Its URL (`sqlite://…` or `postgres://…`).
    pub url: String,
    _held: Held,
}

impl TestBackend {
    /// Creates it, or returns `None` (after printing why) when PostgreSQL is absent and
    /// services are not required.
    pub async fn open(backend: Backend) -> Option<Self> {
        sqlx::any::install_default_drivers();
        let (store, url, held): (Arc<dyn EventStore>, String, Held) = match backend {
            Backend::Sqlite => {
                let db = TestSqlite::new().await;
                let store = SqliteEventStore::open(&db.path)
                    .await
                    .expect("sqlite store");
                let url = format!("sqlite://{}", db.path.display());
                (Arc::new(store), url, Held::Sqlite(db))
            }
            Backend::Postgres => {
                let db = TestPostgres::new().await?;
                let store = db.store(&PostgresConfig::default());
                let url = db.url.clone();
                (Arc::new(store), url, Held::Postgres(db))
            }
        };
        Some(Self {
            backend,
            store,
            url,
            _held: held,
        })
    }

    /// A pool of at most `max_connections` on this database (read models, tokens, outboxes).
    pub async fn pool(&self, max_connections: u32) -> AnyPool {
        AnyPoolOptions::new()
            .max_connections(max_connections)
            .connect(&self.url)
            .await
            .expect("sql pool")
    }
}

/// Expands each listed async test `fn name(fixture)` into `sqlite::name` and
/// `postgres::name`, the fixture made by the async fn `$open` from a
/// [`Backend`](crate::testsupport::Backend); when it gives `None` (PostgreSQL absent and not
/// required) the test returns at once.
#[macro_export]
macro_rules! backend_tests {
    ($open:path; $($name:ident),+ $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(fixture) = $open($crate::testsupport::Backend::Sqlite).await else { return };
                    super::$name(fixture).await;
                }
            )+
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some(fixture) = $open($crate::testsupport::Backend::Postgres).await else { return };
                    super::$name(fixture).await;
                }
            )+
        }
    };
}

/// A TCP proxy whose link can be cut and restored, to simulate a server outage without
/// touching the shared server, and whose server replies can be held back, to catch a
/// request in flight.
pub struct TcpProxy {
    addr: SocketAddr,
    up: Arc<AtomicBool>,
    replies_held: watch::Sender<bool>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
    accept_task: AbortHandle,
}

/// Copies what `server` sends to `client`, waiting while `held` is true.
async fn forward_replies(
    mut server: tokio::net::tcp::OwnedReadHalf,
    mut client: tokio::net::tcp::OwnedWriteHalf,
    mut held: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut buffer = vec![0; 16 * 1024];
    loop {
        let read = server.read(&mut buffer).await?;
        if read == 0 {
            return client.shutdown().await;
        }
        if held.wait_for(|held| !*held).await.is_err() {
            return Ok(());
        }
        client.write_all(&buffer[..read]).await?;
    }
}

impl TcpProxy {
    /// Starts a proxy on a free loopback port forwarding to `target`.
    pub async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address");
        let up = Arc::new(AtomicBool::new(true));
        let (replies_held, held) = watch::channel(false);
        let connections: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let (up2, connections2) = (up.clone(), connections.clone());
        let accept_task = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let held = held.clone();
                let task = tokio::spawn(async move {
                    if let Ok(outbound) = TcpStream::connect(target).await {
                        let (mut client_reads, client_writes) = inbound.into_split();
                        let (server_reads, mut server_writes) = outbound.into_split();
                        let requests = async {
                            tokio::io::copy(&mut client_reads, &mut server_writes).await?;
                            server_writes.shutdown().await
                        };
                        let replies = forward_replies(server_reads, client_writes, held);
                        let _ = tokio::try_join!(requests, replies);
                    }
                });
                connections2
                    .lock()
                    .expect("proxy lock")
                    .push(task.abort_handle());
            }
        })
        .abort_handle();
        Self {
            addr,
            up,
            replies_held,
            connections,
            accept_task,
        }
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts every open connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for task in self.connections.lock().expect("proxy lock").drain(..) {
            task.abort();
        }
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }

    /// Holds back what the server sends on every connection (requests still reach it)
    /// until [`TcpProxy::release_replies`].
    pub fn hold_replies(&self) {
        self.replies_held.send_replace(true);
    }

    /// Delivers the held replies and lets the next ones through.
    pub fn release_replies(&self) {
        self.replies_held.send_replace(false);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.cut();
        self.accept_task.abort();
    }
}
