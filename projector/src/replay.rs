//! Replays: rebuild projections from position 0 into fresh tables and swap them in when
//! they have caught up, while the old tables keep serving (`emporium replay`).
//!
//! Guarantees:
//! - **No downtime, no half-built reads.** The live tables are not touched until the swap,
//!   which replaces their rows and moves the checkpoint in one transaction: a reader sees
//!   the old complete read model before the commit and the new complete one after it.
//! - **The live runner keeps running, with no gap and no double apply.** The swap first
//!   locks the live checkpoint row exactly as [`apply_batch`](crate::apply_batch) does,
//!   so the runner's batch in flight commits before it and its next one waits for it. The
//!   swap then applies every event up to the head (at least up to the live checkpoint) to
//!   the shadow and stores the shadow's checkpoint, which is never below the runner's
//!   committed one: the runner resumes after it, skipping what the replay applied
//!   ([`BatchOutcome::CheckpointMovedBack`](crate::BatchOutcome) cannot happen).
//! - **A crash changes nothing live.** Until the swap commits, everything happens in
//!   shadow tables; the next replay drops the shadows a crashed one left behind. One
//!   replay runs at a time per database (a PostgreSQL advisory lock, or a lock file next
//!   to the SQLite file).
//!
//! How:
//! 1. **Shadows.** Each projection gets empty copies of its [tables](Projection::tables)
//!    and of `projection_checkpoints`. PostgreSQL: `UNLOGGED` tables `LIKE` the live ones
//!    (`INCLUDING ALL`) in a schema `emporium_replay_<projection>`, written on a connection
//!    whose `search_path` is that schema alone. SQLite: a file next to the database
//!    (`<file>.replay-<projection>`, no journal on disk, no `fsync`) holding the live
//!    tables' own DDL, written on a connection whose main database is that file. Either
//!    way the projection's unqualified SQL writes the shadow, unchanged.
//! 2. **Catch-up.** One reader reads the log from 0 in large batches and hands each batch
//!    to every projection, which folds it into its shadow in one transaction with
//!    [`Projection::apply_many`] and the shadow checkpoint, until the reader is within
//!    [`ReplayConfig::swap_lag`] of the head.
//! 3. **Swap**, one transaction per projection, on the shadow's connection: lock the live
//!    checkpoint row; apply the rest of the log to the shadow; `DELETE` the live rows and
//!    `INSERT … SELECT` the shadow's; set the live checkpoint; commit; drop the shadow.
//!    Copying rows rather than renaming tables keeps the live tables themselves (their
//!    indexes, names, grants and the statements prepared on them) and never takes a lock
//!    that blocks readers; the cost is a copy proportional to the read model's size, during
//!    which the live runner of that projection waits (on SQLite, every writer waits).
use std::{
    panic::AssertUnwindSafe,
    path::{Path, PathBuf},
    str::FromStr,
    sync::Arc,
    time::{Duration, Instant},
};

use anyhow::{Context, anyhow, bail, ensure};
use chrono::Utc;
use eventstore::{EventStore, Position, RecordedEvent};
use futures::FutureExt;
use sqlx::{
    Any, AnyConnection, AnyPool, AssertSqlSafe, ConnectOptions, Connection, Transaction,
    any::AnyConnectOptions, sqlite::SqliteConnectOptions,
};
use tokio::{sync::mpsc, task::JoinSet};

use crate::runtime::{BEGIN_WITHOUT_WAL_FLUSH, Projection, timestamp};

/// The row of `projection_checkpoints` that counts swaps (its `position` is the count).
///
/// A swap replaces a read model's rows under the checkpoint it already had, so caches that
/// validate entries against checkpoints cannot see it; query nodes watch this counter and
/// drop their cached views when it moves.
pub const REPLAYS: &str = "replays";

/// How a replay reads and writes.
#[derive(Clone, Debug)]
pub struct ReplayConfig {
    /// Most events read from the log at once, and folded into each shadow in one
    /// transaction.
    pub batch_size: usize,
    /// The replay swaps once it is at most this many positions behind the head; the rest
    /// is applied inside the swap transaction, while the projection's live runner waits.
    pub swap_lag: u64,
    /// How long to wait for another replay of the same database to end (one that has just
    /// died may still hold the lock for a moment) before giving up.
    pub lock_wait: Duration,
}

impl Default for ReplayConfig {
    fn default() -> Self {
        Self {
            batch_size: 25_000,
            swap_lag: 2_000,
            lock_wait: Duration::from_secs(5),
        }
    }
}

/// What a replay reports as it goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReplayProgress {
    /// The shadows are ready; the log is read from 0 to about `head`.
    Started {
        /// The projections replayed.
        projections: Vec<&'static str>,
        /// The head when the replay started.
        head: Position,
    },
    /// The log has been read and handed to the projections up to `position`.
    Read {
        /// The last position read.
        position: Position,
        /// The head when the replay started.
        head: Position,
        /// Log events read so far.
        events: u64,
        /// Time since the replay started.
        elapsed: Duration,
    },
    /// A projection's rebuilt rows replaced the live ones.
    Swapped {
        /// The projection.
        projection: &'static str,
        /// Its live checkpoint now.
        checkpoint: Position,
        /// Log events applied inside the swap transaction.
        tail: u64,
        /// Rows copied into its live tables.
        rows: u64,
        /// How long the swap transaction took.
        took: Duration,
    },
}

/// What a replay did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayReport {
    /// Each projection replayed, with its live checkpoint after the swap.
    pub checkpoints: Vec<(&'static str, Position)>,
    /// Log events read and applied (each counted once, however many projections).
    pub events: u64,
    /// Wall time from start to the last swap.
    pub elapsed: Duration,
}

impl ReplayReport {
    /// Log events per second over the whole replay.
    pub fn events_per_second(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let events = self.events as f64;
        events / self.elapsed.as_secs_f64().max(1e-6)
    }
}

/// Replays projections of one log into one read-model database.
pub struct Replayer {
    store: Arc<dyn EventStore>,
    pool: AnyPool,
    config: ReplayConfig,
}

type Progress = Arc<dyn Fn(&ReplayProgress) + Send + Sync>;

impl Replayer {
    /// A replayer of `store` into the (migrated) read-model database of `pool`.
    pub fn new(store: Arc<dyn EventStore>, pool: AnyPool, config: ReplayConfig) -> Self {
        Self {
            store,
            pool,
            config,
        }
    }

    /// Rebuilds `projections` from position 0 and swaps each in (see the module doc),
    /// calling `progress` as it goes. Safe to run while their runners are running, in this
    /// process or another.
    ///
    /// # Errors
    /// When a projection declares no tables or refuses an event, the databases fail, or
    /// another replay is running on this database. The live tables are then as they were
    /// (or, when a swap failed, as the swaps reported before it left them).
    pub async fn run(
        &self,
        projections: &[Arc<dyn Projection>],
        progress: impl Fn(&ReplayProgress) + Send + Sync + 'static,
    ) -> anyhow::Result<ReplayReport> {
        let started = Instant::now();
        let progress: Progress = Arc::new(progress);
        check_projections(projections)?;
        let live = Live::of(&self.pool).await?;
        let _lock = live.lock(&self.pool, self.config.lock_wait).await?;
        live.drop_shadows(&self.pool).await?;
        let outcome = self.replay(&live, projections, &progress, started).await;
        if outcome.is_err() {
            // Best effort: the next replay drops them anyway.
            if let Err(err) = live.drop_shadows(&self.pool).await {
                tracing::warn!(error = %err, "could not drop the shadows of a failed replay");
            }
        }
        outcome
    }

    async fn replay(
        &self,
        live: &Live,
        projections: &[Arc<dyn Projection>],
        progress: &Progress,
        started: Instant,
    ) -> anyhow::Result<ReplayReport> {
        let mut shadows = Vec::with_capacity(projections.len());
        for projection in projections {
            shadows.push(Shadow::create(live, &self.pool, projection.clone()).await?);
        }
        let head = self.store.head_position().await?;
        progress(&ReplayProgress::Started {
            projections: projections.iter().map(|p| p.name()).collect(),
            head,
        });

        // Catch-up: one reader, one task per shadow.
        let mut workers = JoinSet::new();
        let mut senders = Vec::with_capacity(shadows.len());
        for mut shadow in shadows {
            let (sender, mut batches) = mpsc::channel::<Arc<Vec<RecordedEvent>>>(1);
            senders.push(sender);
            workers.spawn(async move {
                while let Some(batch) = batches.recv().await {
                    shadow.apply(&batch).await?;
                }
                anyhow::Ok(shadow)
            });
        }
        let reader = read_log(&*self.store, senders, &self.config, head, progress, started);
        let (read, caught_up) = tokio::join!(reader, join_all(&mut workers));
        let mut shadows = caught_up?;
        let (_, mut events) = read?;

        // Swap: each projection in its own transaction; SQLite has one writer, so one at a
        // time there.
        let mut checkpoints = Vec::with_capacity(shadows.len());
        let mut tails = 0;
        let mut swaps = JoinSet::new();
        let concurrent = matches!(live, Live::Postgres { .. });
        while !shadows.is_empty() {
            let take = if concurrent { shadows.len() } else { 1 };
            for shadow in shadows.drain(..take) {
                let (store, live, batch_size) =
                    (self.store.clone(), live.clone(), self.config.batch_size);
                swaps.spawn(async move { shadow.swap(&*store, &live, batch_size).await });
            }
            for swapped in join_all(&mut swaps).await? {
                progress(&ReplayProgress::Swapped {
                    projection: swapped.projection,
                    checkpoint: swapped.checkpoint,
                    tail: swapped.tail,
                    rows: swapped.rows,
                    took: swapped.took,
                });
                tails = tails.max(swapped.tail);
                checkpoints.push((swapped.projection, swapped.checkpoint));
            }
        }
        for (projection, _) in &checkpoints {
            live.drop_shadow(&self.pool, projection).await?;
            if let Live::Postgres { schema } = live {
                let projection = projections
                    .iter()
                    .find(|p| p.name() == *projection)
                    .context("swapped an unknown projection")?;
                for table in projection.tables() {
                    // The live table was rewritten: refresh the planner's statistics.
                    sqlx::raw_sql(AssertSqlSafe(format!(
                        "ANALYZE {}",
                        qualified(schema, table)
                    )))
                    .execute(&self.pool)
                    .await?;
                }
            }
        }
        events += tails;
        checkpoints.sort_by_key(|(name, _)| projections.iter().position(|p| p.name() == *name));
        Ok(ReplayReport {
            checkpoints,
            events,
            elapsed: started.elapsed(),
        })
    }
}

/// Waits for every task of `set`; on the first failure aborts the others, waits for them to
/// end (so their connections are closed) and returns it.
async fn join_all<T: 'static>(set: &mut JoinSet<anyhow::Result<T>>) -> anyhow::Result<Vec<T>> {
    let mut done = Vec::with_capacity(set.len());
    while let Some(joined) = set.join_next().await {
        let failure = match joined {
            Ok(Ok(value)) => {
                done.push(value);
                continue;
            }
            Ok(Err(err)) => err,
            Err(err) => anyhow!("a replay task died: {err}"),
        };
        set.abort_all();
        while set.join_next().await.is_some() {}
        return Err(failure);
    }
    Ok(done)
}

/// Reads the log from 0 and hands every batch to every shadow, until within the swap lag
/// of the head (or the log has nothing more). Returns the last position read and how many
/// events were read.
async fn read_log(
    store: &dyn EventStore,
    senders: Vec<mpsc::Sender<Arc<Vec<RecordedEvent>>>>,
    config: &ReplayConfig,
    start_head: Position,
    progress: &Progress,
    started: Instant,
) -> anyhow::Result<(Position, u64)> {
    let (mut after, mut events) = (0, 0);
    let mut head = start_head;
    loop {
        if head.saturating_sub(after) <= config.swap_lag {
            head = store.head_position().await?;
            if head.saturating_sub(after) <= config.swap_lag {
                break;
            }
        }
        let batch = store.read_all(after, config.batch_size.max(1)).await?;
        let Some(last) = batch.last() else { break };
        after = last.position;
        events += batch.len() as u64;
        let batch = Arc::new(batch);
        for sender in &senders {
            // A closed channel: that projection failed; its error is what the caller reports.
            sender
                .send(batch.clone())
                .await
                .map_err(|_| anyhow!("a projection stopped"))?;
        }
        progress(&ReplayProgress::Read {
            position: after,
            head: start_head,
            events,
            elapsed: started.elapsed(),
        });
    }
    Ok((after, events))
}

/// Whether `name` can be spliced into SQL as an identifier: lower-case ASCII letters,
/// digits and `_`, not starting with a digit. Projection and table names are constants in
/// the code; this guards against a mistake, not an attacker.
fn is_identifier(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

fn check_projections(projections: &[Arc<dyn Projection>]) -> anyhow::Result<()> {
    ensure!(!projections.is_empty(), "nothing to replay");
    for (i, projection) in projections.iter().enumerate() {
        let name = projection.name();
        ensure!(
            is_identifier(name),
            "cannot replay {name:?}: not a plain name"
        );
        ensure!(
            !projection.tables().is_empty(),
            "cannot replay {name}: it declares no tables"
        );
        for table in projection.tables() {
            ensure!(
                is_identifier(table) && *table != "projection_checkpoints",
                "cannot replay {name}: bad table name {table:?}"
            );
        }
        ensure!(
            projections[..i].iter().all(|p| p.name() != name),
            "{name} named twice"
        );
    }
    Ok(())
}

/// `"schema"."table"` (both are checked identifiers).
fn qualified(schema: &str, table: &str) -> String {
    format!("\"{schema}\".\"{table}\"")
}

/// The attached live database, on SQLite, as the swap names it.
const SQLITE_LIVE: &str = "emporium_live";

/// Where the live read models are.
#[derive(Clone, Debug)]
enum Live {
    /// A PostgreSQL database; the read models in `schema`.
    Postgres { schema: String },
    /// A SQLite file.
    Sqlite { path: PathBuf },
}

/// The exclusive right to replay in a database, held until dropped.
enum ReplayLock {
    /// The connection holding the advisory lock (closing it releases the lock).
    Postgres(#[allow(dead_code)] AnyConnection),
    /// The locked lock file (closing it releases the lock).
    Sqlite(#[allow(dead_code)] std::fs::File),
}

impl Live {
    async fn of(pool: &AnyPool) -> anyhow::Result<Self> {
        let url = pool.connect_options().database_url.clone();
        if crate::runtime::is_postgres(pool) {
            let schema: Option<String> = sqlx::query_scalar(
                "SELECT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.oid = to_regclass('projection_checkpoints')",
            )
            .fetch_optional(pool)
            .await?;
            let schema =
                schema.context("the database has no projection_checkpoints: migrate it first")?;
            ensure!(is_identifier(&schema), "unexpected schema name {schema:?}");
            Ok(Self::Postgres { schema })
        } else if url.scheme() == "sqlite" {
            let options = SqliteConnectOptions::from_url(&url)?;
            let path = std::path::absolute(options.get_filename())?;
            ensure!(
                path.is_file(),
                "replay needs a SQLite database file, not {}",
                path.display()
            );
            Ok(Self::Sqlite { path })
        } else {
            bail!(
                "replay supports PostgreSQL and SQLite, not {}",
                url.scheme()
            )
        }
    }

    /// The qualifier of the live tables in the swap transaction.
    fn qualifier(&self) -> String {
        match self {
            Self::Postgres { schema } => format!("\"{schema}\""),
            Self::Sqlite { .. } => SQLITE_LIVE.to_owned(),
        }
    }

    fn shadow_schema(projection: &str) -> String {
        format!("emporium_replay_{projection}")
    }

    fn shadow_prefix(path: &Path) -> String {
        format!("{}.replay-", path.display())
    }

    fn shadow_file(path: &Path, projection: &str) -> PathBuf {
        PathBuf::from(format!("{}{projection}", Self::shadow_prefix(path)))
    }

    /// Takes the replay lock, waiting up to `wait` for another replay to release it.
    async fn lock(&self, pool: &AnyPool, wait: Duration) -> anyhow::Result<ReplayLock> {
        let deadline = Instant::now() + wait;
        loop {
            if let Some(lock) = self.try_lock(pool).await? {
                return Ok(lock);
            }
            if Instant::now() >= deadline {
                bail!("another replay is running on this database");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn try_lock(&self, pool: &AnyPool) -> anyhow::Result<Option<ReplayLock>> {
        match self {
            Self::Postgres { .. } => {
                let mut conn = pool.connect_options().connect().await?;
                let locked: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
                    .bind(REPLAY_LOCK_KEY)
                    .fetch_one(&mut conn)
                    .await?;
                Ok(locked.then_some(ReplayLock::Postgres(conn)))
            }
            Self::Sqlite { path } => {
                let lock_path = format!("{}.replay.lock", path.display());
                let file = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&lock_path)
                    .with_context(|| format!("opening {lock_path}"))?;
                match file.try_lock() {
                    Ok(()) => Ok(Some(ReplayLock::Sqlite(file))),
                    Err(std::fs::TryLockError::WouldBlock) => Ok(None),
                    Err(std::fs::TryLockError::Error(err)) => {
                        Err(err).with_context(|| format!("locking {lock_path}"))
                    }
                }
            }
        }
    }

    /// Drops every shadow (only while holding the replay lock: none is in use then).
    async fn drop_shadows(&self, pool: &AnyPool) -> anyhow::Result<()> {
        match self {
            Self::Postgres { .. } => {
                let schemas: Vec<String> = sqlx::query_scalar(
                    "SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'emporium\\_replay\\_%'",
                )
                .fetch_all(pool)
                .await?;
                for schema in schemas {
                    ensure!(is_identifier(&schema), "unexpected schema {schema:?}");
                    sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA \"{schema}\" CASCADE")))
                        .execute(pool)
                        .await?;
                }
            }
            Self::Sqlite { path } => {
                let prefix = Self::shadow_prefix(path);
                let folder = path.parent().context("database file without a folder")?;
                for entry in std::fs::read_dir(folder)? {
                    let entry = entry?.path();
                    if entry.display().to_string().starts_with(&prefix) {
                        std::fs::remove_file(&entry)
                            .with_context(|| format!("removing {}", entry.display()))?;
                    }
                }
            }
        }
        Ok(())
    }

    async fn drop_shadow(&self, pool: &AnyPool, projection: &str) -> anyhow::Result<()> {
        match self {
            Self::Postgres { .. } => {
                sqlx::raw_sql(AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS \"{}\" CASCADE",
                    Self::shadow_schema(projection)
                )))
                .execute(pool)
                .await?;
            }
            Self::Sqlite { path } => {
                let file = Self::shadow_file(path, projection);
                for suffix in ["", "-journal", "-wal", "-shm"] {
                    let file = PathBuf::from(format!("{}{suffix}", file.display()));
                    if file.exists() {
                        std::fs::remove_file(&file)
                            .with_context(|| format!("removing {}", file.display()))?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// The advisory-lock key that makes replays exclusive: "emporepl" in ASCII (the
/// projections' own keys are hashes of their names).
const REPLAY_LOCK_KEY: i64 = 0x656d_706f_7265_706c;

/// A projection's shadow tables and the connection that writes them.
struct Shadow {
    projection: Arc<dyn Projection>,
    conn: AnyConnection,
    postgres: bool,
    /// The shadow's checkpoint: every event up to it is applied.
    position: Position,
}

/// What a swap did.
struct Swapped {
    projection: &'static str,
    checkpoint: Position,
    tail: u64,
    rows: u64,
    took: Duration,
}

impl Shadow {
    async fn create(
        live: &Live,
        pool: &AnyPool,
        projection: Arc<dyn Projection>,
    ) -> anyhow::Result<Self> {
        let name = projection.name();
        let tables: Vec<&str> = projection
            .tables()
            .iter()
            .copied()
            .chain(["projection_checkpoints"])
            .collect();
        let mut conn = match live {
            Live::Postgres { schema } => {
                let shadow = Live::shadow_schema(name);
                sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA \"{shadow}\"")))
                    .execute(pool)
                    .await?;
                for table in &tables {
                    let (shadow_table, live_table) =
                        (qualified(&shadow, table), qualified(schema, table));
                    // No WAL for a table that is thrown away after the swap, and only the
                    // indexes that writing it needs.
                    sqlx::raw_sql(AssertSqlSafe(format!(
                        "CREATE UNLOGGED TABLE {shadow_table} \
                         (LIKE {live_table} INCLUDING ALL EXCLUDING INDEXES)"
                    )))
                    .execute(pool)
                    .await?;
                    let constraints: Vec<(String, String)> = sqlx::query_as(
                        "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint \
                         WHERE conrelid = to_regclass($1) AND contype IN ('p', 'u') ORDER BY conname",
                    )
                    .bind(&live_table)
                    .fetch_all(pool)
                    .await?;
                    for (name, definition) in constraints {
                        sqlx::raw_sql(AssertSqlSafe(format!(
                            "ALTER TABLE {shadow_table} ADD CONSTRAINT \"{name}\" {definition}"
                        )))
                        .execute(pool)
                        .await?;
                    }
                    // Indexes that back no constraint: the unique ones (an upsert may rely on
                    // them) and the ones `apply_many` looks rows up by.
                    let indexes: Vec<(String, String, bool)> = sqlx::query_as(
                        "SELECT c.relname::text, pg_get_indexdef(i.indexrelid), i.indisunique \
                         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
                         WHERE i.indrelid = to_regclass($1) AND NOT EXISTS \
                             (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) \
                         ORDER BY c.relname",
                    )
                    .bind(&live_table)
                    .fetch_all(pool)
                    .await?;
                    for (name, definition, unique) in indexes {
                        if !unique && !projection.lookup_indexes().contains(&name.as_str()) {
                            continue;
                        }
                        // `CREATE INDEX name ON schema.table USING …`: the same, on the shadow.
                        let method = definition
                            .split_once(" USING ")
                            .map(|(_, rest)| rest)
                            .with_context(|| {
                                format!("unexpected index definition {definition:?}")
                            })?;
                        ensure!(is_identifier(&name), "unexpected index name {name:?}");
                        let unique = if unique { "UNIQUE " } else { "" };
                        sqlx::raw_sql(AssertSqlSafe(format!(
                            "CREATE {unique}INDEX \"{name}\" ON {shadow_table} USING {method}"
                        )))
                        .execute(pool)
                        .await?;
                    }
                }
                let mut conn = pool.connect_options().connect().await?;
                // The shadow schema alone: the projection's unqualified SQL can reach
                // nothing live.
                sqlx::raw_sql(AssertSqlSafe(format!("SET search_path TO \"{shadow}\"")))
                    .execute(&mut conn)
                    .await?;
                conn
            }
            Live::Sqlite { path } => {
                let file = Live::shadow_file(path, name);
                let url = SqliteConnectOptions::new()
                    .filename(&file)
                    .create_if_missing(true)
                    .to_url_lossy();
                let mut conn = AnyConnectOptions::from_str(url.as_str())?.connect().await?;
                for pragma in [
                    // Thrown away after the swap: no journal file, no fsync.
                    "PRAGMA journal_mode = MEMORY",
                    "PRAGMA synchronous = OFF",
                    // The swap waits for the live database's writers.
                    "PRAGMA busy_timeout = 60000",
                ] {
                    sqlx::raw_sql(pragma).execute(&mut conn).await?;
                }
                for table in &tables {
                    // The table (with its primary key and unique constraints) and the indexes
                    // that writing it needs.
                    let ddl: Vec<String> = sqlx::query_scalar(
                        "SELECT sql FROM sqlite_master WHERE tbl_name = $1 AND sql IS NOT NULL \
                         AND (type = 'table' OR sql LIKE 'CREATE UNIQUE INDEX%' \
                              OR name IN (SELECT value FROM json_each($2))) \
                         ORDER BY CASE type WHEN 'table' THEN 0 ELSE 1 END, name",
                    )
                    .bind(*table)
                    .bind(serde_json::to_string(projection.lookup_indexes())?)
                    .fetch_all(pool)
                    .await?;
                    ensure!(
                        !ddl.is_empty(),
                        "the database has no table {table}: migrate it first"
                    );
                    for statement in ddl {
                        sqlx::raw_sql(AssertSqlSafe(statement))
                            .execute(&mut conn)
                            .await?;
                    }
                }
                conn
            }
        };
        sqlx::query(
            "INSERT INTO projection_checkpoints (name, position, updated_at) VALUES ($1, 0, $2)",
        )
        .bind(name)
        .bind(timestamp(Utc::now()))
        .execute(&mut conn)
        .await?;
        Ok(Self {
            projection,
            conn,
            postgres: matches!(live, Live::Postgres { .. }),
            position: 0,
        })
    }

    /// Folds a batch of the log into the shadow, with its checkpoint, in one transaction.
    async fn apply(&mut self, events: &[RecordedEvent]) -> anyhow::Result<()> {
        let Some(last) = events.last().map(|e| e.position) else {
            return Ok(());
        };
        if last <= self.position {
            return Ok(());
        }
        // Nothing here needs to survive a crash: do not wait for the WAL flush.
        let mut tx = if self.postgres {
            self.conn.begin_with(BEGIN_WITHOUT_WAL_FLUSH).await?
        } else {
            self.conn.begin().await?
        };
        apply_events(&*self.projection, &mut tx, self.position, events).await?;
        set_checkpoint(
            &mut tx,
            "projection_checkpoints",
            self.projection.name(),
            last,
        )
        .await?;
        tx.commit().await?;
        self.position = last;
        Ok(())
    }

    /// Swaps the shadow's rows in for the live ones (see the module doc).
    async fn swap(
        mut self,
        store: &dyn EventStore,
        live: &Live,
        batch_size: usize,
    ) -> anyhow::Result<Swapped> {
        let name = self.projection.name();
        let live_tables = live.qualifier();
        if let Live::Sqlite { path } = live {
            sqlx::query(AssertSqlSafe(format!(
                "ATTACH DATABASE $1 AS {SQLITE_LIVE}"
            )))
            .bind(path.display().to_string())
            .execute(&mut self.conn)
            .await?;
        }
        let checkpoints = format!("{live_tables}.projection_checkpoints");
        sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO {checkpoints} (name, position, updated_at) VALUES ($1, 0, $2) \
             ON CONFLICT (name) DO NOTHING"
        )))
        .bind(name)
        .bind(timestamp(Utc::now()))
        .execute(&mut self.conn)
        .await?;
        let started = Instant::now();
        let mut tx = self.conn.begin().await?;
        // The runner's batch in flight commits first; its next one waits for this commit.
        let live_position: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "UPDATE {checkpoints} SET position = position WHERE name = $1 RETURNING position"
        )))
        .bind(name)
        .fetch_one(&mut *tx)
        .await?;
        let live_position = u64::try_from(live_position)
            .map_err(|_| anyhow!("negative checkpoint {live_position}"))?;
        let target = store.head_position().await?.max(live_position);
        let mut tail = 0;
        while self.position < target {
            let events = store.read_all(self.position, batch_size.max(1)).await?;
            let Some(last) = events.last().map(|e| e.position) else {
                break;
            };
            apply_events(&*self.projection, &mut tx, self.position, &events).await?;
            self.position = last;
            tail += events.len() as u64;
        }
        ensure!(
            self.position >= live_position,
            "{name}: the log ends at {} but the live checkpoint is at {live_position}",
            self.position
        );
        set_checkpoint(&mut tx, "projection_checkpoints", name, self.position).await?;
        let mut rows = 0;
        for table in self.projection.tables() {
            let target = format!("{live_tables}.\"{table}\"");
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {target}")))
                .execute(&mut *tx)
                .await?;
            rows += sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO {target} SELECT * FROM \"{table}\""
            )))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        set_checkpoint(&mut tx, &checkpoints, name, self.position).await?;
        // The rows changed under an unchanged checkpoint: tell the caches (see REPLAYS).
        for bump in [
            "INSERT INTO {checkpoints} (name, position, updated_at) VALUES ($1, 0, $2) \
             ON CONFLICT (name) DO NOTHING",
            "UPDATE {checkpoints} SET position = position + 1, updated_at = $2 WHERE name = $1",
        ] {
            sqlx::query(AssertSqlSafe(bump.replace("{checkpoints}", &checkpoints)))
                .bind(REPLAYS)
                .bind(timestamp(Utc::now()))
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        let took = started.elapsed();
        if matches!(live, Live::Sqlite { .. }) {
            sqlx::raw_sql(AssertSqlSafe(format!("DETACH DATABASE {SQLITE_LIVE}")))
                .execute(&mut self.conn)
                .await?;
        }
        self.conn.close().await?;
        Ok(Swapped {
            projection: name,
            checkpoint: self.position,
            tail,
            rows,
            took,
        })
    }
}

/// Applies the events after `after` that `projection` handles, in one call, turning a
/// panic (a bug) into an error.
async fn apply_events(
    projection: &dyn Projection,
    tx: &mut Transaction<'_, Any>,
    after: Position,
    events: &[RecordedEvent],
) -> anyhow::Result<()> {
    let handled: Vec<&RecordedEvent> = events
        .iter()
        .filter(|e| e.position > after && projection.handles(e))
        .collect();
    if handled.is_empty() {
        return Ok(());
    }
    let name = projection.name();
    AssertUnwindSafe(projection.apply_many(tx, &handled))
        .catch_unwind()
        .await
        .map_err(|_| anyhow!("{name}: the projection panicked"))?
        .with_context(|| format!("{name}: replaying"))
}

async fn set_checkpoint(
    tx: &mut Transaction<'_, Any>,
    table: &str,
    name: &str,
    position: Position,
) -> anyhow::Result<()> {
    let position = i64::try_from(position).context("position does not fit a BIGINT")?;
    let updated = sqlx::query(AssertSqlSafe(format!(
        "UPDATE {table} SET position = $2, updated_at = $3 WHERE name = $1"
    )))
    .bind(name)
    .bind(position)
    .bind(timestamp(Utc::now()))
    .execute(&mut **tx)
    .await?
    .rows_affected();
    ensure!(updated == 1, "no checkpoint row for {name} in {table}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_are_spliced_into_sql() {
        assert!(is_identifier("rm_products"));
        assert!(is_identifier("emporium_replay_catalog"));
        assert!(!is_identifier(""));
        assert!(!is_identifier("1table"));
        assert!(!is_identifier("rm\"products"));
        assert!(!is_identifier("Products"));
        assert!(!is_identifier("a b"));
    }

    #[test]
    fn shadow_files_sit_next_to_the_database() {
        let path = Path::new("/data/emporium.db");
        assert_eq!(
            Live::shadow_file(path, "catalog"),
            PathBuf::from("/data/emporium.db.replay-catalog")
        );
        assert!(
            Live::shadow_file(path, "orders")
                .display()
                .to_string()
                .starts_with(&Live::shadow_prefix(path))
        );
    }

    /// A projection of nothing, named `name`, owning `tables`.
    struct Bare {
        name: &'static str,
        tables: &'static [&'static str],
    }

    #[async_trait::async_trait]
    impl Projection for Bare {
        fn name(&self) -> &'static str {
            self.name
        }

        fn handles(&self, _: &RecordedEvent) -> bool {
            false
        }

        fn tables(&self) -> &'static [&'static str] {
            self.tables
        }

        async fn apply_many(
            &self,
            _: &mut Transaction<'_, Any>,
            _: &[&RecordedEvent],
        ) -> anyhow::Result<()> {
            Ok(())
        }
    }

    fn bare(name: &'static str, tables: &'static [&'static str]) -> Arc<dyn Projection> {
        Arc::new(Bare { name, tables })
    }

    #[test]
    fn only_projections_that_own_tables_can_be_replayed() {
        assert!(check_projections(&crate::default_projections()).is_ok());
        let refused = |projections: &[Arc<dyn Projection>]| {
            check_projections(projections).unwrap_err().to_string()
        };
        assert!(refused(&[]).contains("nothing to replay"));
        assert!(refused(&[bare("search", &[])]).contains("declares no tables"));
        assert!(refused(&[bare("x", &["rm_x; DROP TABLE events"])]).contains("bad table name"));
        assert!(refused(&[bare("x", &["projection_checkpoints"])]).contains("bad table name"));
        assert!(refused(&[bare("x", &["rm_x"]), bare("x", &["rm_y"])]).contains("named twice"));
    }

    #[test]
    fn rates_count_log_events_per_second() {
        let report = ReplayReport {
            checkpoints: vec![],
            events: 100_000,
            elapsed: Duration::from_secs(2),
        };
        assert!((report.events_per_second() - 50_000.0).abs() < 1e-6);
    }
}
