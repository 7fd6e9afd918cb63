//! The projection runtime: a [`Projection`] folds events into SQL rows; a
//! [`ProjectionRunner`] feeds it from the log, one transaction per batch.
//!
//! Guarantees:
//! - **Rows and checkpoint commit together** (invariant 4). Each batch runs in one
//!   transaction that first locks the projection's checkpoint row, applies the events
//!   after it and writes the new checkpoint; a kill at any moment rolls the batch back
//!   whole, and a restart resumes from the committed checkpoint.
//! - **No event is applied twice**, even by two runners of one projection at once: the
//!   checkpoint row is locked by `UPDATE … SET position = position … RETURNING position`
//!   (portable: a row lock on PostgreSQL, the write lock on SQLite), and only events above
//!   the position read under that lock are applied.
//! - **One owner per projection on PostgreSQL**: a runner holds
//!   `pg_try_advisory_lock(key(name))` on a dedicated connection while it runs the
//!   projection; the others poll every [`RunnerConfig::ownership_poll`] and take over when
//!   the owner's connection closes. On SQLite (one process) there is no lock.
//! - **Explicit retry policy**: a failed batch is rolled back, logged, and retried after a
//!   back-off (100 ms doubling to 5 s by default) until it succeeds: a projection never
//!   skips an event. Anything that invalidates the runner's view (lost ownership, a
//!   checkpoint moved back by a replay) restarts its loop from the stored checkpoint.
use std::{
    collections::BTreeMap,
    future::Future,
    panic::AssertUnwindSafe,
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use anyhow::{Context, anyhow};
use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use eventstore::{EventStore, Position, RecordedEvent, StreamId, Subscription};
use futures::FutureExt;
use sqlx::{Any, AnyConnection, AnyPool, ConnectOptions, Connection, Transaction};
use tokio::sync::watch;

use crate::{
    batch::placeholder_list,
    committer::Committer,
    stalls::{Stall, StallReporter, Stalls},
};

/// A read model built from the log.
///
/// `apply_many` receives the batch's transaction: every row it writes commits together
/// with the checkpoint, or not at all. The runner (and a replay) hands it each batch's
/// handled events, in log order.
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// Stable name: the key of its checkpoint and of its advisory lock.
    fn name(&self) -> &'static str;

    /// Whether `event` concerns this projection (by stream category or event type). Events
    /// it does not handle still move its checkpoint.
    fn handles(&self, event: &RecordedEvent) -> bool;

    /// Applies consecutive events, all handled by this projection, in log order, inside
    /// one transaction. The rows must be the same however the log is cut into batches
    /// (one event at a time included): a projection folds the batch in memory and writes
    /// each changed row once, which is what keeps the live runner and a replay fast.
    ///
    /// # Errors
    /// Anything that prevents the events from being applied, naming the event at fault;
    /// the batch is then rolled back and retried after a back-off.
    async fn apply_many(
        &self,
        tx: &mut Transaction<'_, Any>,
        events: &[&RecordedEvent],
    ) -> anyhow::Result<()>;

    /// The tables this projection owns. It writes no other table and reads no other table
    /// in `apply_many`, so a replay can rebuild exactly these in a shadow copy and swap them in.
    /// Empty (the default): the projection cannot be replayed.
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    /// The secondary indexes of its tables that `apply_many` looks rows up by. A replay builds
    /// its shadow tables with their primary keys, unique constraints and these indexes
    /// only: the other indexes serve readers, who read the live tables.
    fn lookup_indexes(&self) -> &'static [&'static str] {
        &[]
    }
}

/// Anything that follows the log from its row in `projection_checkpoints`, one batch at a
/// time: an SQL [`Projection`] (rows and checkpoint in one transaction, [`apply_batch`]),
/// or a side-effect sink such as the integration publisher (effects first, then the
/// checkpoint: at-least-once). A [`ProjectionRunner`] gives every sink the same single
/// owner, retries and back-off.
#[async_trait]
pub trait Sink: Send + Sync + 'static {
    /// Stable name: the key of its checkpoint and of its advisory lock.
    fn name(&self) -> &'static str;

    /// Handles `events` (consecutive events of the log, in order) and commits the new
    /// checkpoint; events at or below the stored checkpoint are not handled again.
    /// `committed` is the checkpoint the caller believes is stored.
    ///
    /// # Errors
    /// Anything that prevents the batch; the checkpoint is then unchanged and the runner
    /// retries the batch after a back-off.
    async fn apply_batch(
        &self,
        pool: &AnyPool,
        committed: Position,
        events: &Arc<[RecordedEvent]>,
    ) -> anyhow::Result<BatchOutcome>;
}

/// An SQL projection run as a [`Sink`].
struct ProjectionSink(Arc<dyn Projection>);

#[async_trait]
impl Sink for ProjectionSink {
    fn name(&self) -> &'static str {
        self.0.name()
    }

    async fn apply_batch(
        &self,
        pool: &AnyPool,
        committed: Position,
        events: &Arc<[RecordedEvent]>,
    ) -> anyhow::Result<BatchOutcome> {
        apply_batch(pool, &*self.0, committed, events).await
    }
}

/// How a runner reads, retries and polls.
#[derive(Clone, Debug)]
pub struct RunnerConfig {
    /// Most events applied in one transaction.
    pub batch_size: usize,
    /// How often to look for new events when no wake-up arrives.
    pub idle_poll: Duration,
    /// While the runner keeps up (a batch short of `batch_size`), it reads the log again
    /// only at the next multiple of this interval on a clock shared by every runner of
    /// the process. New events gather meanwhile, so under load a batch carries more of
    /// them and its fixed cost (checkpoint lock and move, one statement per table, the
    /// commit, a notification and each query node's checkpoint read) is paid less often;
    /// and the runners read together, so their batches commit together
    /// ([`crate::committer`]). It adds at most this much to the projection lag.
    pub linger: Duration,
    /// First back-off after a failure; doubles on each further failure.
    pub backoff_initial: Duration,
    /// Longest back-off.
    pub backoff_max: Duration,
    /// How often a runner without ownership tries to take it over, and how often an owner
    /// checks that its lock connection is alive (PostgreSQL only).
    pub ownership_poll: Duration,
}

impl Default for RunnerConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            idle_poll: Duration::from_millis(250),
            linger: LINGER,
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
            ownership_poll: Duration::from_secs(1),
        }
    }
}

/// The default [`RunnerConfig::linger`].
pub const LINGER: Duration = Duration::from_millis(20);

/// The first multiple of `interval` after `now`, counted from a start shared by every
/// caller in the process (`now` itself when `interval` is zero).
fn next_tick(now: Instant, interval: Duration) -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = *START.get_or_init(Instant::now);
    if interval.is_zero() {
        return now;
    }
    let step = interval.as_nanos();
    let next = (now.saturating_duration_since(start).as_nanos() / step + 1) * step;
    start + Duration::from_nanos(u64::try_from(next).unwrap_or(u64::MAX))
}

/// The timestamp format of every read model: RFC 3339 in UTC with microseconds, which
/// sorts correctly as text.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The inverse of [`timestamp`], for times read back from a read model.
///
/// # Errors
/// When the stored text is not RFC 3339.
pub fn parse_timestamp(text: &str) -> anyhow::Result<DateTime<Utc>> {
    Ok(DateTime::parse_from_rfc3339(text)
        .with_context(|| format!("bad stored time {text:?}"))?
        .with_timezone(&Utc))
}

/// The key of a `{category}-{key}` stream (`stock-ABC-1` → `ABC-1`).
///
/// # Errors
/// When the stream is not of `category` or has an empty key.
pub fn stream_key<'a>(stream: &'a StreamId, category: &str) -> anyhow::Result<&'a str> {
    stream
        .as_str()
        .strip_prefix(category)
        .and_then(|rest| rest.strip_prefix('-'))
        .filter(|key| !key.is_empty())
        .with_context(|| format!("{stream} is not a {category} stream"))
}

/// The id a `{category}-{id}` stream names, parsed.
///
/// # Errors
/// When the stream is not of `category` or its key is not such an id.
pub fn stream_id<T: std::str::FromStr>(stream: &StreamId, category: &str) -> anyhow::Result<T> {
    stream_key(stream, category)?
        .parse()
        .ok()
        .with_context(|| format!("{stream} does not name a {category} id"))
}

fn to_i64(position: Position) -> anyhow::Result<i64> {
    i64::try_from(position).map_err(|_| anyhow!("position {position} does not fit a BIGINT"))
}

fn from_i64(value: i64) -> anyhow::Result<Position> {
    u64::try_from(value).map_err(|_| anyhow!("negative checkpoint {value}"))
}

/// The committed checkpoint of projection `name`: the position of the last event it has
/// applied or passed over (0 when it has never run).
///
/// # Errors
/// When the database cannot be read.
pub async fn checkpoint(pool: &AnyPool, name: &str) -> anyhow::Result<Position> {
    let position: Option<i64> =
        sqlx::query_scalar("SELECT position FROM projection_checkpoints WHERE name = $1")
            .bind(name)
            .fetch_optional(pool)
            .await?;
    from_i64(position.unwrap_or(0))
}

/// Creates the checkpoint row at 0 if it is missing; returns the committed checkpoint.
async fn ensure_checkpoint(pool: &AnyPool, name: &str) -> anyhow::Result<Position> {
    sqlx::query(
        "INSERT INTO projection_checkpoints (name, position, updated_at) VALUES ($1, 0, $2) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(timestamp(Utc::now()))
    .execute(pool)
    .await?;
    checkpoint(pool, name).await
}

/// What [`apply_batch`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchOutcome {
    /// The batch committed; the checkpoint is now `checkpoint`.
    Committed {
        /// The new committed checkpoint.
        checkpoint: Position,
        /// How many events were applied (events at or below the stored checkpoint, and
        /// events the projection does not handle, are not counted).
        applied: usize,
    },
    /// The stored checkpoint is below what the caller had committed (a replay reset it):
    /// nothing was written, and the caller must resume from `stored`.
    CheckpointMovedBack {
        /// The checkpoint found.
        stored: Position,
    },
}

/// Whether `pool` is a PostgreSQL pool (else SQLite).
pub fn is_postgres(pool: &AnyPool) -> bool {
    pool.connect_options()
        .database_url
        .scheme()
        .starts_with("postgres")
}

/// Applies `events` (consecutive events of the log, in order) to `projection` in one
/// transaction, together with its checkpoint.
///
/// Locks the checkpoint row first and applies only the events above it, so a batch that
/// another runner has already applied, wholly or partly, is not applied again.
/// `committed` is the checkpoint the caller believes is stored.
///
/// # Errors
/// When the database fails, the checkpoint row is missing, or the projection refuses (or
/// panics on) an event; nothing is then written.
pub async fn apply_batch(
    pool: &AnyPool,
    projection: &dyn Projection,
    committed: Position,
    events: &[RecordedEvent],
) -> anyhow::Result<BatchOutcome> {
    let _turn = write_turn(pool).await;
    let mut tx = begin_batch(pool).await?;
    let batch = Batch {
        projection,
        committed,
        events,
    };
    let outcome = apply_in(&mut tx, &[batch], &timestamp(Utc::now()))
        .await?
        .remove(0);
    match outcome {
        BatchOutcome::Committed { .. } => tx.commit().await?,
        BatchOutcome::CheckpointMovedBack { .. } => tx.rollback().await?,
    }
    Ok(outcome)
}

/// On SQLite, this process's turn at the file's one write lock (see `write_gate`); held
/// until dropped. `None` elsewhere.
pub(crate) async fn write_turn(pool: &AnyPool) -> Option<tokio::sync::OwnedMutexGuard<()>> {
    let gate = eventstore::write_gate::for_url(pool.connect_options().database_url.as_str())?;
    Some(gate.lock_owned().await)
}

/// How a PostgreSQL transaction of read-model rows begins. A read model is derived from
/// the log: a crash may lose the last batches' commits, rows and checkpoint together (so
/// invariant 4 holds), and they are projected again after the restart. Not waiting for
/// the WAL flush takes a disk sync off every batch. The setting is sent with the `BEGIN`,
/// in one round trip: a batch's fixed statements were a quarter of PostgreSQL's under
/// load.
pub(crate) const BEGIN_WITHOUT_WAL_FLUSH: &str = "BEGIN; SET LOCAL synchronous_commit = off";

/// A transaction for projection batches.
pub(crate) async fn begin_batch(pool: &AnyPool) -> anyhow::Result<Transaction<'static, Any>> {
    if is_postgres(pool) {
        return Ok(pool.begin_with(BEGIN_WITHOUT_WAL_FLUSH).await?);
    }
    Ok(pool.begin().await?)
}

/// One projection's batch: consecutive events of the log, in order.
#[derive(Clone, Copy)]
pub struct Batch<'a> {
    /// The projection.
    pub projection: &'a dyn Projection,
    /// The checkpoint its runner believes is stored.
    pub committed: Position,
    /// The events.
    pub events: &'a [RecordedEvent],
}

/// [`apply_batch`]'s work for `batches` (of distinct projections) inside `tx`: locks their
/// checkpoint rows in one statement, applies each batch's events above its row, and moves
/// the rows that advanced in one statement, stamped `now`. A batch whose checkpoint moved
/// back writes nothing. The caller commits or rolls back.
pub(crate) async fn apply_in(
    tx: &mut Transaction<'_, Any>,
    batches: &[Batch<'_>],
    now: &str,
) -> anyhow::Result<Vec<BatchOutcome>> {
    let stored = lock_checkpoints(tx, batches).await?;
    let mut outcomes = Vec::with_capacity(batches.len());
    let mut moved = Vec::with_capacity(batches.len());
    for (batch, stored) in batches.iter().zip(stored) {
        if stored < batch.committed {
            outcomes.push(BatchOutcome::CheckpointMovedBack { stored });
            continue;
        }
        let applied = apply_above(tx, batch.projection, stored, batch.events).await?;
        let last = batch
            .events
            .last()
            .map_or(stored, |e| e.position)
            .max(stored);
        if last > stored {
            moved.push((batch.projection.name(), last));
        }
        outcomes.push(BatchOutcome::Committed {
            checkpoint: last,
            applied,
        });
    }
    move_checkpoints(tx, &moved, now).await?;
    Ok(outcomes)
}

/// Locks the checkpoint rows of `batches` (a no-op update: a row lock on PostgreSQL, the
/// write lock on SQLite) and returns each one's position, in the order of `batches`.
async fn lock_checkpoints(
    tx: &mut Transaction<'_, Any>,
    batches: &[Batch<'_>],
) -> anyhow::Result<Vec<Position>> {
    let sql = format!(
        "UPDATE projection_checkpoints SET position = position WHERE name IN ({}) \
         RETURNING name, position",
        placeholder_list(1, batches.len())
    );
    let mut query = sqlx::query_as::<_, (String, i64)>(sqlx::AssertSqlSafe(sql));
    for batch in batches {
        query = query.bind(batch.projection.name());
    }
    let rows: BTreeMap<String, i64> = query.fetch_all(&mut **tx).await?.into_iter().collect();
    batches
        .iter()
        .map(|batch| {
            let name = batch.projection.name();
            from_i64(
                *rows
                    .get(name)
                    .with_context(|| format!("no checkpoint row for {name}"))?,
            )
        })
        .collect()
}

/// Applies the events of `events` above `stored` that `projection` handles; returns how many.
async fn apply_above(
    tx: &mut Transaction<'_, Any>,
    projection: &dyn Projection,
    stored: Position,
    events: &[RecordedEvent],
) -> anyhow::Result<usize> {
    // The batch's events for this projection in one call: a projection that folds a batch
    // in memory writes each changed row once (one statement for many events), instead of a
    // round trip per event.
    let handled: Vec<&RecordedEvent> = events
        .iter()
        .filter(|e| e.position > stored && projection.handles(e))
        .collect();
    if let (Some(first), Some(last)) = (handled.first(), handled.last()) {
        // A panic in a projection is a bug; treat it as an error so the retry policy (and
        // not a dead task) handles it.
        AssertUnwindSafe(projection.apply_many(tx, &handled))
            .catch_unwind()
            .await
            .map_err(|_| anyhow!("projection panicked"))
            .and_then(|r| r)
            .with_context(|| {
                format!(
                    "{}: applying {} events at positions {} to {}",
                    projection.name(),
                    handled.len(),
                    first.position,
                    last.position
                )
            })?;
    }
    Ok(handled.len())
}

/// Moves each named checkpoint row to its position, in one statement.
async fn move_checkpoints(
    tx: &mut Transaction<'_, Any>,
    moved: &[(&str, Position)],
    now: &str,
) -> anyhow::Result<()> {
    if moved.is_empty() {
        return Ok(());
    }
    let cases: String = (0..moved.len())
        .map(|i| format!(" WHEN ${} THEN ${}", 2 * i + 1, 2 * i + 2))
        .collect();
    let sql = format!(
        "UPDATE projection_checkpoints SET position = CASE name{cases} END, updated_at = ${} \
         WHERE name IN ({})",
        2 * moved.len() + 1,
        placeholder_list(2 * moved.len() + 2, moved.len())
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (name, position) in moved {
        query = query.bind(*name).bind(to_i64(*position)?);
    }
    query = query.bind(now);
    for (name, _) in moved {
        query = query.bind(*name);
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

/// Back-off between retries: `initial`, doubling up to `max`; reset after a success.
struct Backoff {
    initial: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(config: &RunnerConfig) -> Self {
        Self {
            initial: config.backoff_initial,
            max: config.backoff_max,
            next: config.backoff_initial,
        }
    }

    async fn wait(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(self.max);
    }

    fn reset(&mut self) {
        self.next = self.initial;
    }
}

/// The advisory-lock key of a projection: FNV-1a of its name (stable across builds and
/// processes, unlike `std`'s hasher).
fn lock_key(name: &str) -> i64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in "emporium.projection.".bytes().chain(name.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    i64::from_le_bytes(hash.to_le_bytes())
}

/// Ownership of a projection on PostgreSQL: the connection that holds its advisory lock.
/// Dropping it closes the connection, which releases the lock.
struct Ownership {
    conn: AnyConnection,
    checked: Instant,
}

/// Runs one projection (or any [`Sink`]): follows the log from its checkpoint and applies
/// batches.
pub struct ProjectionRunner {
    sink: Arc<dyn Sink>,
    store: Arc<dyn EventStore>,
    pool: AnyPool,
    config: RunnerConfig,
    position: watch::Sender<Position>,
    stall: StallReporter,
}

impl ProjectionRunner {
    /// A runner of `projection` over the log `store`, writing to `pool`.
    pub fn new(
        projection: Arc<dyn Projection>,
        store: Arc<dyn EventStore>,
        pool: AnyPool,
        config: RunnerConfig,
    ) -> Self {
        Self::for_sink(Arc::new(ProjectionSink(projection)), store, pool, config)
    }

    /// A runner of `sink` over the log `store`, keeping its checkpoint in `pool`.
    pub fn for_sink(
        sink: Arc<dyn Sink>,
        store: Arc<dyn EventStore>,
        pool: AnyPool,
        config: RunnerConfig,
    ) -> Self {
        let (position, _) = watch::channel(0);
        let stall = StallReporter::new(sink.name());
        Self {
            sink,
            store,
            pool,
            config,
            position,
            stall,
        }
    }

    /// The projection's name.
    pub fn name(&self) -> &'static str {
        self.sink.name()
    }

    /// The committed checkpoint as this runner last saw it, updated after every commit (and,
    /// while another process owns the projection, every [`RunnerConfig::ownership_poll`]).
    pub fn subscribe(&self) -> watch::Receiver<Position> {
        self.position.subscribe()
    }

    /// Whether the projection is stalled: from its first failure until it next makes
    /// progress (see [`crate::stalls`]).
    pub fn watch_stall(&self) -> watch::Receiver<Option<Stall>> {
        self.stall.subscribe()
    }

    /// Records progress: the committed checkpoint is `position`.
    fn publish(&self, position: Position) {
        self.position.send_if_modified(|current| {
            let changed = *current != position;
            *current = position;
            changed
        });
        self.stall.progressed();
        #[allow(clippy::cast_precision_loss)] // a gauge; exact below 2^53 events
        metrics::gauge!("emporium_projection_checkpoint", "projection" => self.name())
            .set(position as f64);
    }

    /// Runs the projection until `shutdown` resolves. Stopping at any point is safe: an
    /// unfinished batch is rolled back and the next run resumes from the checkpoint.
    pub async fn run_until_stopped(&self, shutdown: impl Future<Output = ()>) {
        tokio::select! {
            biased;
            () = shutdown => tracing::info!(projection = self.name(), "projection stopped"),
            () = self.run_forever() => {}
        }
    }

    async fn run_forever(&self) {
        let mut backoff = Backoff::new(&self.config);
        loop {
            match self.run_owned(&mut backoff).await {
                // The checkpoint moved back: resume from it at once.
                Ok(()) => {}
                Err(err) => {
                    tracing::error!(projection = self.name(), error = ?err, "projection loop failed; restarting after a back-off");
                    self.stall.failed(*self.position.borrow(), &err);
                    backoff.wait().await;
                }
            }
        }
    }

    /// Takes ownership (PostgreSQL), then applies batches from the stored checkpoint on.
    /// Returns `Ok` when it must start over from the stored checkpoint.
    async fn run_owned(&self, backoff: &mut Backoff) -> anyhow::Result<()> {
        let mut ownership = self.acquire_ownership().await?;
        let mut committed = ensure_checkpoint(&self.pool, self.name()).await?;
        self.publish(committed);
        tracing::info!(
            projection = self.name(),
            checkpoint = committed,
            "projection running"
        );
        let mut subscription = Subscription::new(self.store.clone(), committed)
            .batch_size(self.config.batch_size)
            .idle_poll(self.config.idle_poll);
        loop {
            let batch: Arc<[RecordedEvent]> = match subscription.next_batch().await {
                Ok(batch) => batch.into(),
                Err(err) => {
                    tracing::warn!(projection = self.name(), error = %err, "cannot read the log; retrying");
                    backoff.wait().await;
                    continue;
                }
            };
            loop {
                self.check_ownership(&mut ownership).await?;
                match self.sink.apply_batch(&self.pool, committed, &batch).await {
                    Ok(BatchOutcome::Committed {
                        checkpoint,
                        applied,
                    }) => {
                        committed = checkpoint;
                        self.publish(committed);
                        metrics::counter!("emporium_projection_events_applied_total", "projection" => self.name())
                            .increment(applied as u64);
                        backoff.reset();
                        if batch.len() < self.config.batch_size {
                            let tick = next_tick(Instant::now(), self.config.linger);
                            tokio::time::sleep_until(tick.into()).await;
                        }
                        break;
                    }
                    Ok(BatchOutcome::CheckpointMovedBack { stored }) => {
                        tracing::info!(
                            projection = self.name(),
                            stored,
                            "checkpoint moved back (replay); resuming from it"
                        );
                        return Ok(());
                    }
                    Err(err) => {
                        tracing::error!(projection = self.name(), error = ?err, "batch failed and was rolled back; retrying it after a back-off");
                        self.stall.failed(committed, &err);
                        backoff.wait().await;
                    }
                }
            }
        }
    }

    /// On PostgreSQL, waits until this runner holds the projection's advisory lock,
    /// publishing the owner's progress meanwhile. Elsewhere, ownership is implicit.
    async fn acquire_ownership(&self) -> anyhow::Result<Option<Ownership>> {
        if !is_postgres(&self.pool) {
            return Ok(None);
        }
        let mut conn = self.pool.connect_options().connect().await?;
        let mut waiting = false;
        loop {
            let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                .bind(lock_key(self.name()))
                .fetch_one(&mut conn)
                .await?;
            if locked {
                return Ok(Some(Ownership {
                    conn,
                    checked: Instant::now(),
                }));
            }
            if !waiting {
                tracing::info!(
                    projection = self.name(),
                    "another process owns the projection; standing by"
                );
                waiting = true;
            }
            if let Ok(position) = checkpoint(&self.pool, self.name()).await {
                self.publish(position);
            }
            tokio::time::sleep(self.config.ownership_poll).await;
        }
    }

    /// Fails (restarting the loop) when the lock connection has died: the lock is gone and
    /// another runner may own the projection now.
    async fn check_ownership(&self, ownership: &mut Option<Ownership>) -> anyhow::Result<()> {
        let Some(owned) = ownership else {
            return Ok(());
        };
        if owned.checked.elapsed() < self.config.ownership_poll {
            return Ok(());
        }
        owned
            .conn
            .ping()
            .await
            .context("the connection holding the projection's lock was lost")?;
        owned.checked = Instant::now();
        Ok(())
    }
}

/// Where every projection of a [`Projector`] stands, as `tokio::sync::watch` channels: an
/// in-process query API waits on them for read-your-writes instead of polling.
#[derive(Clone, Debug, Default)]
pub struct Positions {
    receivers: Arc<BTreeMap<&'static str, watch::Receiver<Position>>>,
}

impl Positions {
    /// Positions of the given runners.
    pub fn of(runners: &[ProjectionRunner]) -> Self {
        Self {
            receivers: Arc::new(runners.iter().map(|r| (r.name(), r.subscribe())).collect()),
        }
    }

    /// The checkpoint projection `name` last reported (`None`: not run here).
    pub fn current(&self, name: &str) -> Option<Position> {
        self.receivers.get(name).map(|rx| *rx.borrow())
    }

    /// Waits until projection `name` has reached `min`. Returns `false` at once when the
    /// projection is not run here or its runner has gone (the caller then reads the
    /// checkpoint table instead). Add a timeout around it.
    pub async fn wait_for(&self, name: &str, min: Position) -> bool {
        let Some(rx) = self.receivers.get(name) else {
            return false;
        };
        let mut rx = rx.clone();
        rx.wait_for(|position| *position >= min).await.is_ok()
    }
}

/// Every projection of the service, each run as its own task; their batches commit
/// together through one committer (see [`crate::committer`]).
pub struct Projector {
    runners: Vec<Arc<ProjectionRunner>>,
    committer: Committer,
    positions: Positions,
}

impl Projector {
    /// A projector running `projections` over `store`, writing to `pool` (migrated).
    pub fn new(
        store: Arc<dyn EventStore>,
        pool: AnyPool,
        config: &RunnerConfig,
        projections: Vec<Arc<dyn Projection>>,
    ) -> Self {
        let committer = Committer::new(pool.clone());
        let runners: Vec<ProjectionRunner> = projections
            .into_iter()
            .map(|p| {
                let sink = Arc::new(committer.sink(p));
                ProjectionRunner::for_sink(sink, store.clone(), pool.clone(), config.clone())
            })
            .collect();
        let positions = Positions::of(&runners);
        Self {
            runners: runners.into_iter().map(Arc::new).collect(),
            committer,
            positions,
        }
    }

    /// A handle on every projection's position (cheap to clone; keep it after `run`).
    pub fn positions(&self) -> Positions {
        self.positions.clone()
    }

    /// A handle on every projection's stall, for the readiness probe (keep it after `run`).
    pub fn stalls(&self) -> Stalls {
        Stalls::of(self.runners.iter().map(|runner| &**runner))
    }

    /// Starts every projection as a tokio task and runs them until `shutdown` resolves,
    /// then stops them and waits for them. A batch already handed to the committer is
    /// still committed (or rolled back whole); the next run resumes from the checkpoint.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) {
        let (stop, stopped) = watch::channel(false);
        let committer = tokio::spawn(self.committer.run());
        let tasks: Vec<_> = self
            .runners
            .into_iter()
            .map(|runner| {
                let mut stopped = stopped.clone();
                tokio::spawn(async move {
                    runner
                        .run_until_stopped(async move {
                            let _ = stopped.wait_for(|s| *s).await;
                        })
                        .await;
                })
            })
            .collect();
        shutdown.await;
        let _ = stop.send(true);
        for task in tasks.into_iter().chain([committer]) {
            if let Err(err) = task.await {
                tracing::error!(error = %err, "a projection task failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runners_read_on_shared_ticks() {
        let interval = Duration::from_millis(5);
        // The shared start is fixed by the first call; `now` must not precede it.
        next_tick(Instant::now(), interval);
        let now = Instant::now();
        let first = next_tick(now, interval);
        assert!(first > now && first <= now + interval);
        // Any moment before a tick leads to that tick, so runners meet there.
        assert_eq!(next_tick(first - Duration::from_micros(1), interval), first);
        let previous = first - interval;
        assert_eq!(
            next_tick(previous + Duration::from_micros(1), interval),
            first
        );
        assert_eq!(next_tick(previous, interval), first);
        assert_eq!(next_tick(first, interval), first + interval);
        assert_eq!(next_tick(now, Duration::ZERO), now);
    }

    #[test]
    fn lock_keys_are_stable_and_distinct() {
        assert_eq!(lock_key("catalog"), lock_key("catalog"));
        assert_ne!(lock_key("catalog"), lock_key("inventory"));
    }

    #[test]
    fn timestamps_sort_as_text() {
        let early = DateTime::parse_from_rfc3339("2025-01-02T03:04:05Z")
            .unwrap()
            .with_timezone(&Utc);
        let late = early + chrono::Duration::microseconds(1);
        assert_eq!(timestamp(early), "2025-01-02T03:04:05.000000Z");
        assert!(timestamp(early) < timestamp(late));
    }
}
