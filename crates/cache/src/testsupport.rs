//! Test support: a namespace of its own per test on the shared Redis, and a private
//! `redis-server` a test may stop and start again.
//!
//! The shared server is `EMPORIUM_TEST_REDIS_URL` (default `redis://127.0.0.1:6379`). When
//! it is not reachable the test is skipped with a `skipped:` line, or fails when
//! `EMPORIUM_REQUIRE_SERVICES=1` (as `eventstore::testsupport::skip_or_fail` says).
use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use eventstore::testsupport::skip_or_fail;

use crate::RedisConfig;

/// The Redis server tests use.
pub fn redis_url() -> String {
    std::env::var("EMPORIUM_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A configuration for `url` with a namespace no other test uses, entries expiring after a
/// minute (tests leave nothing behind for long) and a generous command timeout (a loaded
/// test machine must not turn into a Redis outage).
pub fn config_for(url: &str) -> RedisConfig {
    RedisConfig {
        namespace: format!("emporium-test-{}", uuid::Uuid::now_v7()),
        ttl: Duration::from_secs(60),
        command_timeout: Duration::from_millis(500),
        retry_after: Duration::from_millis(200),
        ..RedisConfig::new(url)
    }
}

/// Whether Redis answers at `url` within a second.
pub async fn answers(url: &str) -> Result<(), String> {
    let client = redis::Client::open(url).map_err(|e| e.to_string())?;
    let ping = async {
        let mut conn = client.get_multiplexed_async_connection().await?;
        redis::cmd("PING").query_async::<String>(&mut conn).await
    };
    match tokio::time::timeout(Duration::from_secs(1), ping).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err("no answer within 1 s".into()),
    }
}

/// A fresh namespace on the shared test server, or `None` (after `skipped: …`) when there
/// is none and services are not required.
pub async fn test_redis() -> Option<RedisConfig> {
    let url = redis_url();
    match answers(&url).await {
        Ok(()) => Some(config_for(&url)),
        Err(err) => {
            skip_or_fail("Redis", &url, &err);
            None
        }
    }
}

/// A raw connection for planting and inspecting entries.
///
/// # Panics
/// When Redis cannot be reached.
pub async fn raw_connection(url: &str) -> redis::aio::MultiplexedConnection {
    redis::Client::open(url)
        .expect("redis url")
        .get_multiplexed_async_connection()
        .await
        .expect("redis connection")
}

/// A `redis-server` of this test's own, on a free port, without persistence: stopping it
/// loses every key, as an outage may. Killed on drop.
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Starts one and waits until it answers, or `None` (after `skipped: …`) when
    /// `redis-server` cannot be run and services are not required.
    pub async fn start() -> Option<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = Self { port, child: None };
        match server.spawn().await {
            Ok(()) => Some(server),
            Err(err) => {
                skip_or_fail("redis-server", "PATH", &err);
                None
            }
        }
    }

    async fn spawn(&mut self) -> Result<(), String> {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot run redis-server: {e}"))?;
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match answers(&self.url()).await {
                Ok(()) => return Ok(()),
                Err(err) if tokio::time::Instant::now() >= deadline => {
                    return Err(format!("redis-server did not start: {err}"));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills it and waits until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port (empty) and waits until it answers.
    ///
    /// # Panics
    /// When it does not start.
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn().await.expect("redis-server restarts");
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
