//! The shared L2 in Redis: compare-and-set entries, invalidation over pub/sub, and the
//! health of the connection.
//!
//! Every command has a short timeout ([`RedisConfig::command_timeout`]); after a failure,
//! calls are refused at once for [`RedisConfig::retry_after`] (a breaker), so a Redis
//! outage never stalls a request: it costs at most one timeout per retry window, and the
//! caller falls back to the read model. The readiness probe ([`SharedViews::check`]) always
//! tries, so it notices the recovery.
use std::{
    future::Future,
    sync::{
        Arc, Mutex, PoisonError, RwLock,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use futures::{StreamExt, future::join_all};
use redis::{
    Client, RedisError, Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use tokio::{sync::watch, task::AbortHandle};

use crate::config::RedisConfig;

/// Why a call to Redis gave nothing.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The URL does not parse.
    #[error("bad Redis URL: {0}")]
    Config(String),
    /// Redis did not answer in time.
    #[error("Redis did not answer within {0:?}")]
    Timeout(Duration),
    /// Redis answered with an error, or the connection failed.
    #[error("Redis: {0}")]
    Redis(#[from] RedisError),
    /// Not tried: Redis failed a moment ago and is being skipped for a while.
    #[error("Redis is skipped after a recent failure")]
    Skipped,
}

/// An entry as Redis holds it: the view's JSON with its version and `as_of`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// The view's stream version.
    pub version: u64,
    /// The projection checkpoint read before the view was rendered.
    pub as_of: u64,
    /// The view, as JSON.
    pub view: String,
}

/// Replaces the entry only with a greater (version, asOf), so a slow writer can never put
/// an older view over a newer one. Numbers are compared as decimal strings (length, then
/// text) so they stay exact beyond Lua's 2^53; an entry that is not well formed is replaced.
const COMPARE_AND_SET: &str = r"
local function greater(a, b)
  if #a ~= #b then return #a > #b end
  return a > b
end
local function number(text)
  return text and string.match(text, '^%d+$')
end
local current = redis.call('HMGET', KEYS[1], 'version', 'asOf')
if number(current[1]) and number(current[2]) then
  if greater(current[1], ARGV[1]) then return 0 end
  if current[1] == ARGV[1] and not greater(ARGV[2], current[2]) then return 0 end
end
redis.call('HSET', KEYS[1], 'version', ARGV[1], 'asOf', ARGV[2], 'view', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
";

/// An L1 that invalidation messages evict from.
pub(crate) trait Local: Send + Sync {
    /// Drops the entry `id`.
    fn evict(&self, id: &str);
    /// Drops every entry.
    fn clear(&self);
}

/// The L1s of this process, by kind of view.
#[derive(Default)]
struct Locals {
    by_kind: RwLock<Vec<(&'static str, Arc<dyn Local>)>>,
}

impl Locals {
    fn each(&self, mut f: impl FnMut(&'static str, &dyn Local)) {
        let locals = self.by_kind.read().unwrap_or_else(PoisonError::into_inner);
        for (kind, local) in locals.iter() {
            f(kind, local.as_ref());
        }
    }

    /// Applies an invalidation message: one `kind:id` per line.
    fn apply(&self, message: &str) {
        for line in message.lines() {
            if let Some((kind, id)) = line.split_once(':') {
                self.each(|k, local| {
                    if k == kind {
                        local.evict(id);
                    }
                });
            }
        }
    }
}

/// Whether Redis is answering; a failure opens the breaker for a while.
struct Health {
    degraded: AtomicBool,
    state: Mutex<HealthState>,
    retry_after: Duration,
}

#[derive(Default)]
struct HealthState {
    error: Option<String>,
    retry_at: Option<Instant>,
}

impl Health {
    fn new(retry_after: Duration) -> Self {
        Self {
            degraded: AtomicBool::new(false),
            state: Mutex::new(HealthState::default()),
            retry_after,
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, HealthState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether a call may be tried now.
    fn allows(&self) -> bool {
        !self.degraded.load(Ordering::Acquire)
            || self.state().retry_at.is_none_or(|at| Instant::now() >= at)
    }

    fn succeeded(&self) {
        if !self.degraded.load(Ordering::Acquire) {
            return;
        }
        let mut state = self.state();
        if let Some(error) = state.error.take() {
            tracing::info!(previous = %error, "Redis answers again; the shared cache is back");
        }
        state.retry_at = None;
        self.degraded.store(false, Ordering::Release);
    }

    fn failed(&self, error: &CacheError) {
        let mut state = self.state();
        if state.error.is_none() {
            tracing::warn!(%error, "Redis failed; serving from the read models meanwhile");
        }
        state.error = Some(error.to_string());
        state.retry_at = Some(Instant::now() + self.retry_after);
        self.degraded.store(true, Ordering::Release);
    }

    fn error(&self) -> Option<String> {
        self.state().error.clone()
    }
}

struct Inner {
    client: Client,
    conn: ConnectionManager,
    config: RedisConfig,
    compare_and_set: Script,
    health: Health,
    locals: Arc<Locals>,
    listening: Arc<watch::Sender<bool>>,
    listener: Mutex<Option<AbortHandle>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let listener = self
            .listener
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = listener.take() {
            task.abort();
        }
    }
}

/// The Redis L2, shared by every node: cheap to clone, one multiplexed connection that
/// reconnects by itself, and (once an L1 is [registered](crate::ViewCache::with_shared))
/// one pub/sub connection that evicts this process's L1 entries.
#[derive(Clone)]
pub struct SharedViews {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SharedViews {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedViews")
            .field("namespace", &self.inner.config.namespace)
            .field("degraded", &self.inner.health.error())
            .finish_non_exhaustive()
    }
}

impl SharedViews {
    /// The L2 on the server `config.url` names. Connects lazily: a node starts (degraded)
    /// while Redis is down. Call it inside a tokio runtime.
    ///
    /// # Errors
    /// When the URL does not parse.
    pub fn connect(config: RedisConfig) -> Result<Self, CacheError> {
        let client =
            Client::open(config.url.as_str()).map_err(|e| CacheError::Config(e.to_string()))?;
        let manager = ConnectionManagerConfig::new()
            .set_response_timeout(Some(config.command_timeout))
            .set_connection_timeout(Some(config.command_timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(config.command_timeout);
        let conn = ConnectionManager::new_lazy_with_config(client.clone(), manager)?;
        let (listening, _) = watch::channel(false);
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                conn,
                compare_and_set: Script::new(COMPARE_AND_SET),
                health: Health::new(config.retry_after),
                locals: Arc::default(),
                listening: Arc::new(listening),
                listener: Mutex::new(None),
                config,
            }),
        })
    }

    /// The key namespace.
    pub fn namespace(&self) -> &str {
        &self.inner.config.namespace
    }

    /// The key of view `id` of `kind`: `{namespace}:view:{kind}:{id}`.
    pub fn key(&self, kind: &str, id: &str) -> String {
        format!("{}:view:{kind}:{id}", self.namespace())
    }

    /// The pub/sub channel of invalidations: `{namespace}:invalidate`. A message is one
    /// `kind:id` per line.
    pub fn channel(&self) -> String {
        format!("{}:invalidate", self.namespace())
    }

    /// Runs one Redis call under the breaker and the timeout, recording the outcome.
    async fn call<T>(
        &self,
        op: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, CacheError> {
        let health = &self.inner.health;
        if !health.allows() {
            return Err(CacheError::Skipped);
        }
        let timeout = self.inner.config.command_timeout;
        let outcome = match tokio::time::timeout(timeout, op).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(CacheError::Redis(err)),
            Err(_) => Err(CacheError::Timeout(timeout)),
        };
        match &outcome {
            Ok(_) => health.succeeded(),
            Err(err) => health.failed(err),
        }
        outcome
    }

    /// The entry of view `id` of `kind` (`None`: absent, or not well formed).
    ///
    /// # Errors
    /// When Redis fails, times out, or is being skipped after a failure.
    pub async fn get(&self, kind: &str, id: &str) -> Result<Option<Stored>, CacheError> {
        let mut conn = self.inner.conn.clone();
        let key = self.key(kind, id);
        let (version, as_of, view): (Option<String>, Option<String>, Option<String>) = self
            .call(
                redis::cmd("HMGET")
                    .arg(&key)
                    .arg("version")
                    .arg("asOf")
                    .arg("view")
                    .query_async(&mut conn),
            )
            .await?;
        Ok(match (version, as_of, view) {
            (Some(version), Some(as_of), Some(view)) => match (version.parse(), as_of.parse()) {
                (Ok(version), Ok(as_of)) => Some(Stored {
                    version,
                    as_of,
                    view,
                }),
                _ => None,
            },
            _ => None,
        })
    }

    /// Writes each entry unless Redis holds the same view with a greater or equal
    /// (version, asOf) (compare-and-set), with the TTL backstop. Returns how many were
    /// written.
    ///
    /// # Errors
    /// When Redis fails, times out, or is being skipped after a failure; some entries may
    /// have been written.
    pub async fn put_all(
        &self,
        kind: &str,
        entries: &[(String, Stored)],
    ) -> Result<usize, CacheError> {
        if entries.is_empty() {
            return Ok(0);
        }
        let ttl = u64::try_from(self.inner.config.ttl.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let script = &self.inner.compare_and_set;
        // Sent concurrently, so the multiplexed connection pipelines them.
        let writes = entries.iter().map(|(id, entry)| {
            let mut conn = self.inner.conn.clone();
            let mut invocation = script.key(self.key(kind, id));
            invocation
                .arg(entry.version)
                .arg(entry.as_of)
                .arg(&entry.view)
                .arg(ttl);
            async move { invocation.invoke_async::<i64>(&mut conn).await }
        });
        let written = self
            .call(async {
                join_all(writes)
                    .await
                    .into_iter()
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        Ok(written.into_iter().filter(|w| *w == 1).count())
    }

    /// [`SharedViews::put_all`] for one entry; `true` when it was written.
    ///
    /// # Errors
    /// As [`SharedViews::put_all`].
    pub async fn put(&self, kind: &str, id: &str, entry: Stored) -> Result<bool, CacheError> {
        Ok(self.put_all(kind, &[(id.to_owned(), entry)]).await? == 1)
    }

    /// Tells every node to evict `keys` (`kind:id`) from its L1.
    ///
    /// # Errors
    /// When Redis fails, times out, or is being skipped after a failure.
    pub async fn publish(&self, keys: &[String]) -> Result<(), CacheError> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut conn = self.inner.conn.clone();
        let message = keys.join("\n");
        let channel = self.channel();
        self.call(
            redis::cmd("PUBLISH")
                .arg(&channel)
                .arg(&message)
                .query_async::<i64>(&mut conn),
        )
        .await
        .map(|_| ())
    }

    /// Removes every view of this namespace (SCAN and UNLINK, never a blocking KEYS).
    /// Returns how many keys went.
    ///
    /// # Errors
    /// When Redis fails, times out, or is being skipped after a failure.
    pub async fn purge(&self) -> Result<u64, CacheError> {
        let pattern = format!("{}:view:*", glob_escape(self.namespace()));
        let mut cursor: u64 = 0;
        let mut removed = 0;
        loop {
            let mut conn = self.inner.conn.clone();
            let (next, keys): (u64, Vec<String>) = self
                .call(
                    redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(&pattern)
                        .arg("COUNT")
                        .arg(1000)
                        .query_async(&mut conn),
                )
                .await?;
            if !keys.is_empty() {
                removed += self
                    .call(
                        redis::cmd("UNLINK")
                            .arg(&keys)
                            .query_async::<u64>(&mut conn),
                    )
                    .await?;
            }
            if next == 0 {
                return Ok(removed);
            }
            cursor = next;
        }
    }

    /// The readiness probe: pings Redis (always, whatever the breaker says) and, where an
    /// L1 listens for invalidations, that it is subscribed. `Err` says why the cache is
    /// degraded.
    ///
    /// # Errors
    /// The reason, for the readiness report.
    pub async fn check(&self) -> Result<(), String> {
        let mut conn = self.inner.conn.clone();
        let timeout = self.inner.config.command_timeout;
        let outcome = match tokio::time::timeout(
            timeout,
            redis::cmd("PING").query_async::<String>(&mut conn),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => Err(CacheError::Redis(err)),
            Err(_) => Err(CacheError::Timeout(timeout)),
        };
        match outcome {
            Ok(()) => self.inner.health.succeeded(),
            Err(err) => {
                self.inner.health.failed(&err);
                return Err(format!("degraded: {err}; serving from the read models"));
            }
        }
        let listens = self
            .inner
            .listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some();
        if listens && !self.listening() {
            return Err("degraded: not subscribed to invalidations yet".into());
        }
        Ok(())
    }

    /// Why Redis is being skipped (`None`: it answered last time).
    pub fn degraded(&self) -> Option<String> {
        self.inner.health.error()
    }

    /// Whether this process is subscribed to invalidations now.
    pub fn listening(&self) -> bool {
        *self.inner.listening.borrow()
    }

    /// Waits until this process is subscribed to invalidations, or `within` has passed;
    /// returns whether it is.
    pub async fn wait_listening(&self, within: Duration) -> bool {
        let mut rx = self.inner.listening.subscribe();
        tokio::time::timeout(within, rx.wait_for(|l| *l))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// Lets invalidation messages for `kind` evict from `local`; starts the listener.
    pub(crate) fn register(&self, kind: &'static str, local: Arc<dyn Local>) {
        self.inner
            .locals
            .by_kind
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push((kind, local));
        let mut listener = self
            .inner
            .listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if listener.is_none() {
            let task = tokio::spawn(listen(
                self.inner.client.clone(),
                self.channel(),
                self.inner.locals.clone(),
                self.inner.listening.clone(),
                self.inner.config.command_timeout,
            ));
            *listener = Some(task.abort_handle());
        }
    }
}

/// Escapes the glob characters of a SCAN MATCH pattern.
fn glob_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// Follows the invalidation channel for as long as the [`SharedViews`] lives (it aborts the
/// task on drop), reconnecting with a back-off. On every (re)subscription the L1s are
/// cleared: messages sent while this process was not subscribed are lost.
async fn listen(
    client: Client,
    channel: String,
    locals: Arc<Locals>,
    listening: Arc<watch::Sender<bool>>,
    timeout: Duration,
) {
    const FIRST_PAUSE: Duration = Duration::from_millis(50);
    const KEEPALIVE: Duration = Duration::from_secs(5);
    let connect_timeout = timeout.max(Duration::from_millis(500));
    let mut pause = FIRST_PAUSE;
    loop {
        let subscribed = tokio::time::timeout(connect_timeout, async {
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(&channel).await?;
            Ok::<_, RedisError>(pubsub)
        })
        .await;
        if let Ok(Ok(pubsub)) = subscribed {
            locals.each(|_, local| local.clear());
            listening.send_replace(true);
            pause = FIRST_PAUSE;
            let (mut sink, mut messages) = pubsub.split();
            let mut keepalive = tokio::time::interval(KEEPALIVE);
            keepalive.reset();
            loop {
                tokio::select! {
                    message = messages.next() => match message {
                        Some(message) => {
                            if let Ok(text) = message.get_payload::<String>() {
                                locals.apply(&text);
                            }
                        }
                        None => break,
                    },
                    _ = keepalive.tick() => {
                        // A half-open connection never ends the stream: ping it.
                        let alive = tokio::time::timeout(connect_timeout, sink.ping::<redis::Value>()).await;
                        if !matches!(alive, Ok(Ok(_))) {
                            break;
                        }
                    }
                }
            }
            listening.send_replace(false);
            tracing::warn!("lost the cache invalidation channel; resubscribing");
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use super::glob_escape;

    #[test]
    fn glob_characters_are_escaped() {
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
        assert_eq!(glob_escape("emporium"), "emporium");
    }
}
