//! The embedded backend: one SQLite file in WAL mode.
//!
//! SQLite allows one writer at a time, so appends go through a single-connection write
//! pool and `BEGIN IMMEDIATE`; positions therefore become visible in order and
//! [`EventStore::read_all`] needs no gap handling. Reads use their own pool and never wait
//! for the writer (WAL). `synchronous = NORMAL`: a commit survives a process crash; only a
//! power loss can drop the last commits, which is the usual embedded trade-off.
use std::{path::Path, str::FromStr, sync::Arc, time::Duration};

use tokio::sync::{mpsc, oneshot};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{
    Connection, Row, SqliteConnection,
    sqlite::{
        SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
        SqliteSynchronous,
    },
};

use crate::{
    AppendResult, EventMetadata, EventStore, ExpectedVersion, NewEvent, Position, RecordedEvent,
    StoreCapabilities, StoreError, StreamAppend, StreamId, signal::ChangeSignal, write_gate,
};

/// The SQLite migrations (event log and, in embedded mode, every read model).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// An event store in one SQLite file.
#[derive(Debug)]
pub struct SqliteEventStore {
    writer: SqlitePool,
    reader: SqlitePool,
    signal: Arc<ChangeSignal>,
    appends: mpsc::Sender<AppendRequest>,
}

/// One caller's append, queued for the writer task.
#[derive(Debug)]
struct AppendRequest {
    parts: Vec<StreamAppend>,
    reply: oneshot::Sender<Result<Vec<AppendResult>, StoreError>>,
}

/// Most appends committed together in one transaction.
const GROUP_COMMIT_MAX: usize = 64;

impl SqliteEventStore {
    /// Opens (creating if missing) the database at `path`. Does not migrate.
    pub async fn open(path: &Path) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::new().filename(path);
        Self::with_options(options).await
    }

    /// Opens from a `sqlite:` URL.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url).map_err(StoreError::unavailable)?;
        Self::with_options(options).await
    }

    async fn with_options(options: SqliteConnectOptions) -> Result<Self, StoreError> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        // Page caches are per connection and fill up as the log grows: 16 MiB for the one
        // writer (index pages of every stream it appends to), the SQLite default of 2 MiB
        // for each reader, which mostly reads the log's tail and finds the rest in the
        // operating system's cache (at 16 MiB each, four readers could hold 64 MiB).
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone().pragma("cache_size", "-16000"))
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone().pragma("cache_size", "-2000"))
            .await?;
        let signal = Arc::new(ChangeSignal::new());
        let (appends, queue) = mpsc::channel(1024);
        let gate = write_gate::for_file(options.get_filename());
        tokio::spawn(write_loop(writer.clone(), gate, signal.clone(), queue));
        Ok(Self {
            writer,
            reader,
            signal,
            appends,
        })
    }

    /// Applies the SQLite migrations.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR
            .run(&self.writer)
            .await
            .map_err(StoreError::unavailable)
    }

    /// The pool that serialises writes to this file; read models in embedded mode share it
    /// so that their transactions never meet `SQLITE_BUSY`.
    pub fn write_pool(&self) -> &SqlitePool {
        &self.writer
    }

    /// A pool for concurrent reads of this file.
    pub fn read_pool(&self) -> &SqlitePool {
        &self.reader
    }

    async fn append_in(
        conn: &mut SqliteConnection,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendResult, StoreError> {
        if events.is_empty() {
            return Err(StoreError::Invalid("empty append".into()));
        }
        let (kind, exact) = match expected {
            ExpectedVersion::Any => (0, 0),
            ExpectedVersion::NoStream => (1, 0),
            ExpectedVersion::StreamExists => (2, 0),
            ExpectedVersion::Exact(v) => (3, to_i64(v)?),
        };
        let now = Utc::now();
        let mut result = AppendResult {
            version: 0,
            position: 0,
        };
        for (i, event) in events.iter().enumerate() {
            // The first insert checks the expectation in the same statement (the writer
            // holds the database, so nothing can slip in between); the rest follow it.
            let sql = if i == 0 {
                "INSERT INTO events (stream_id, version, event_id, event_type, schema_version, payload, metadata, recorded_at) \
                 SELECT $1, coalesce(max(version), 0) + 1, $3, $4, $5, $6, $7, $8 FROM events WHERE stream_id = $1 \
                 HAVING CASE $9 WHEN 0 THEN 1 WHEN 1 THEN coalesce(max(version), 0) = 0 \
                   WHEN 2 THEN coalesce(max(version), 0) > 0 ELSE coalesce(max(version), 0) = $10 END \
                 RETURNING position, version"
            } else {
                "INSERT INTO events (stream_id, version, event_id, event_type, schema_version, payload, metadata, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING position, version"
            };
            let inserted = sqlx::query(sql)
                .bind(stream.as_str())
                .bind(to_i64(result.version + 1)?)
                .bind(event.event_id.to_string())
                .bind(&event.event_type)
                .bind(i64::from(event.schema_version))
                .bind(event.payload.to_string())
                .bind(
                    serde_json::to_string(&event.metadata)
                        .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                )
                .bind(now)
                .bind(kind)
                .bind(exact)
                .fetch_optional(&mut *conn)
                .await;
            let row = match inserted {
                Ok(Some(row)) => row,
                Ok(None) => {
                    if let Some(done) = already_appended(&mut *conn, stream, events).await? {
                        return Ok(done);
                    }
                    let actual = current_version(&mut *conn, stream).await?;
                    return Err(StoreError::Conflict {
                        stream: stream.clone(),
                        expected,
                        actual,
                    });
                }
                Err(err) => return map_insert_error(conn, err, stream, expected, events).await,
            };
            result.position = from_i64(row.try_get::<i64, _>(0)?)?;
            result.version = from_i64(row.try_get::<i64, _>(1)?)?;
        }
        Ok(result)
    }

    async fn append_parts(
        &self,
        parts: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let request = AppendRequest { parts, reply };
        let closed = || StoreError::Unavailable("the SQLite writer has stopped".into());
        self.appends.send(request).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }
}

/// The single writer: takes every queued append (up to [`GROUP_COMMIT_MAX`]) into one
/// transaction, each inside its own savepoint so that one append's conflict does not undo
/// the others, and commits once. Concurrent appenders thereby share a commit, which is
/// what lets SQLite's one writer keep up with many callers.
async fn write_loop(
    pool: SqlitePool,
    gate: write_gate::WriteGate,
    signal: Arc<ChangeSignal>,
    mut queue: mpsc::Receiver<AppendRequest>,
) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < GROUP_COMMIT_MAX {
            match queue.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        let committed = {
            // Other writers of this file in this process (read models) queue here too.
            let _turn = gate.lock().await;
            commit_batch(&pool, &batch).await
        };
        match committed {
            Ok(results) => {
                signal.bump();
                for (request, result) in batch.into_iter().zip(results) {
                    let _ = request.reply.send(result);
                }
            }
            Err(err) => {
                let message = err.to_string();
                for request in batch {
                    let _ = request
                        .reply
                        .send(Err(StoreError::Unavailable(message.clone().into())));
                }
            }
        }
    }
}

async fn commit_batch(
    pool: &SqlitePool,
    batch: &[AppendRequest],
) -> Result<Vec<Result<Vec<AppendResult>, StoreError>>, StoreError> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
    // A lone append needs no savepoint: if it fails, the whole transaction is dropped.
    let isolate = batch.len() > 1;
    let mut results = Vec::with_capacity(batch.len());
    for request in batch {
        if isolate {
            sqlx::query("SAVEPOINT append").execute(&mut *tx).await?;
        }
        let mut done = Vec::with_capacity(request.parts.len());
        let mut failure = None;
        for part in &request.parts {
            match SqliteEventStore::append_in(&mut tx, &part.stream, part.expected, &part.events)
                .await
            {
                Ok(result) => done.push(result),
                Err(err) => {
                    failure = Some(err);
                    break;
                }
            }
        }
        if let Some(err) = failure {
            if !isolate {
                tx.rollback().await?;
                return Ok(vec![Err(err)]);
            }
            sqlx::query("ROLLBACK TO append").execute(&mut *tx).await?;
            results.push(Err(err));
        } else {
            results.push(Ok(done));
        }
        if isolate {
            sqlx::query("RELEASE append").execute(&mut *tx).await?;
        }
    }
    tx.commit().await?;
    Ok(results)
}

#[async_trait]
impl EventStore for SqliteEventStore {
    fn capabilities(&self) -> StoreCapabilities {
        StoreCapabilities {
            atomic_multi_stream: true,
            unique_event_ids: true,
            batched_tail_reads: false,
        }
    }

    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        let parts = vec![StreamAppend {
            stream: stream.clone(),
            expected,
            events,
        }];
        let mut results = self.append_parts(parts).await?;
        results
            .pop()
            .ok_or_else(|| StoreError::Corrupt("append returned nothing".into()))
    }

    async fn append_multi(
        &self,
        parts: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        self.append_parts(parts).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT position, stream_id, version, event_id, event_type, schema_version, payload, metadata, recorded_at \
             FROM events WHERE stream_id = $1 AND version >= $2 ORDER BY version LIMIT $3",
        )
        .bind(stream.as_str())
        .bind(to_i64(from_version)?)
        .bind(to_i64(limit as u64)?)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(decode_row).collect()
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError> {
        let mut conn = self.reader.acquire().await?;
        current_version(&mut conn, stream).await
    }

    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT position, stream_id, version, event_id, event_type, schema_version, payload, metadata, recorded_at \
             FROM events WHERE position > $1 ORDER BY position LIMIT $2",
        )
        .bind(to_i64(after)?)
        .bind(to_i64(limit as u64)?)
        .fetch_all(&self.reader)
        .await?;
        rows.iter().map(decode_row).collect()
    }

    async fn head_position(&self) -> Result<Position, StoreError> {
        let head: Option<i64> = sqlx::query_scalar("SELECT max(position) FROM events")
            .fetch_one(&self.reader)
            .await?;
        from_i64(head.unwrap_or(0))
    }

    fn change_marker(&self) -> u64 {
        self.signal.marker()
    }

    async fn wait_for_change(&self, seen: u64, timeout: Duration) {
        self.signal.wait(seen, timeout).await;
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        Ok(())
    }
}

async fn current_version(
    conn: &mut SqliteConnection,
    stream: &StreamId,
) -> Result<u64, StoreError> {
    let version: Option<i64> =
        sqlx::query_scalar("SELECT max(version) FROM events WHERE stream_id = $1")
            .bind(stream.as_str())
            .fetch_one(conn)
            .await?;
    from_i64(version.unwrap_or(0))
}

async fn event_exists(conn: &mut SqliteConnection, event: &NewEvent) -> Result<bool, StoreError> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM events WHERE event_id = $1")
        .bind(event.event_id.to_string())
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}

/// A retried append: every event id is already stored, in this stream, in this order.
async fn already_appended(
    conn: &mut SqliteConnection,
    stream: &StreamId,
    events: &[NewEvent],
) -> Result<Option<AppendResult>, StoreError> {
    let mut last = None;
    let mut previous_version = None;
    for event in events {
        let row =
            sqlx::query("SELECT stream_id, version, position FROM events WHERE event_id = $1")
                .bind(event.event_id.to_string())
                .fetch_optional(&mut *conn)
                .await?;
        let Some(row) = row else { return Ok(None) };
        let stored_stream: String = row.try_get(0)?;
        let version = from_i64(row.try_get(1)?)?;
        if stored_stream != stream.as_str() || previous_version.is_some_and(|p| p + 1 != version) {
            return Ok(None);
        }
        previous_version = Some(version);
        last = Some(AppendResult {
            version,
            position: from_i64(row.try_get(2)?)?,
        });
    }
    Ok(last)
}

/// A unique violation is either a retry of events already stored (the original outcome is
/// returned), an event id reused from elsewhere (invalid), or a lost race for a version
/// (a conflict). Decided by looking at the log, not by parsing the error text.
async fn map_insert_error(
    conn: &mut SqliteConnection,
    err: sqlx::Error,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: &[NewEvent],
) -> Result<AppendResult, StoreError> {
    let sqlx::Error::Database(db) = &err else {
        return Err(err.into());
    };
    if !db.is_unique_violation() {
        return Err(err.into());
    }
    if let Some(done) = already_appended(&mut *conn, stream, events).await? {
        return Ok(done);
    }
    for event in events {
        if event_exists(&mut *conn, event).await? {
            return Err(StoreError::Invalid(format!(
                "event id {} is already stored",
                event.event_id
            )));
        }
    }
    let actual = current_version(conn, stream).await?;
    Err(StoreError::Conflict {
        stream: stream.clone(),
        expected,
        actual,
    })
}

fn decode_row(row: &SqliteRow) -> Result<RecordedEvent, StoreError> {
    let corrupt = |e: &dyn std::fmt::Display| StoreError::Corrupt(e.to_string());
    let event_id: String = row.try_get("event_id")?;
    let payload: String = row.try_get("payload")?;
    let metadata: String = row.try_get("metadata")?;
    let recorded_at: DateTime<Utc> = row.try_get("recorded_at")?;
    Ok(RecordedEvent {
        event_id: event_id.parse().map_err(|e| corrupt(&e))?,
        stream: StreamId::new(row.try_get::<String, _>("stream_id")?)?,
        version: from_i64(row.try_get("version")?)?,
        position: from_i64(row.try_get("position")?)?,
        event_type: row.try_get("event_type")?,
        schema_version: u32::try_from(row.try_get::<i64, _>("schema_version")?)
            .map_err(|e| corrupt(&e))?,
        payload: serde_json::from_str(&payload).map_err(|e| corrupt(&e))?,
        metadata: serde_json::from_str::<EventMetadata>(&metadata).map_err(|e| corrupt(&e))?,
        recorded_at,
    })
}

pub(crate) fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Invalid(format!("{v} is out of range")))
}

pub(crate) fn from_i64(v: i64) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative number {v} in the log")))
}
