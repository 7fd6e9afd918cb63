//! Settings of the two layers.
use std::time::Duration;

/// The in-process L1 of one kind of view.
#[derive(Clone, Debug)]
pub struct LocalConfig {
    /// Most entries held.
    pub capacity: u64,
    /// Longest an entry is kept (memory hygiene only: entries are validated on every hit).
    pub ttl: Duration,
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            capacity: 10_000,
            ttl: Duration::from_secs(10),
        }
    }
}

/// The shared Redis L2.
#[derive(Clone, Debug)]
pub struct RedisConfig {
    /// `redis://host:port/db`.
    pub url: String,
    /// Prefix of every key and of the invalidation channel (`emporium`: keys
    /// `emporium:view:product:{id}`). Deployments (or tests) sharing one Redis use their own.
    pub namespace: String,
    /// Expiry of every entry: a backstop, so entries nobody reads or rewrites go away.
    pub ttl: Duration,
    /// Longest wait for one command (and for a connection) on a request's path; past it the
    /// request is answered from the read model.
    pub command_timeout: Duration,
    /// After a failure, how long requests skip Redis before trying it again, so an outage
    /// does not cost every request the timeout.
    pub retry_after: Duration,
}

impl RedisConfig {
    /// The defaults for the server at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            namespace: "emporium".into(),
            ttl: Duration::from_secs(3600),
            command_timeout: Duration::from_millis(100),
            retry_after: Duration::from_secs(1),
        }
    }
}
