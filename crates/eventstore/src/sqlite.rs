//! The embedded backend: one SQLite file in WAL mode.
//!
//! SQLite allows one writer at a time, so appends go through a single-connection write
//! pool and `BEGIN IMMEDIATE`; positions therefore become visible in order and
//! [`EventStore::read_all`] needs no gap handling. Reads use their own pool and never wait
//! for the writer (WAL). `synchronous = NORMAL`: a commit survives a process crash; only a
//! power loss can drop the last commits, which is the usual embedded trade-off.
use std::{path::Path, str::FromStr, time::Duration};

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
    StoreCapabilities, StoreError, StreamAppend, StreamId, signal::ChangeSignal,
};

/// The SQLite migrations (event log and, in embedded mode, every read model).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations/sqlite");

/// An event store in one SQLite file.
#[derive(Debug)]
pub struct SqliteEventStore {
    writer: SqlitePool,
    reader: SqlitePool,
    signal: ChangeSignal,
}

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
            .busy_timeout(Duration::from_secs(10))
            .pragma("cache_size", "-16000");
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await?;
        Ok(Self {
            writer,
            reader,
            signal: ChangeSignal::new(),
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
        let first = events
            .first()
            .ok_or_else(|| StoreError::Invalid("empty append".into()))?;
        let actual = current_version(&mut *conn, stream).await?;
        if !expected.accepts(actual) {
            if let Some(done) = already_appended(&mut *conn, stream, events).await? {
                return Ok(done);
            }
            return Err(StoreError::Conflict {
                stream: stream.clone(),
                expected,
                actual,
            });
        }
        if event_exists(&mut *conn, first).await? {
            if let Some(done) = already_appended(&mut *conn, stream, events).await? {
                return Ok(done);
            }
            return Err(StoreError::Invalid(format!(
                "event id {} is already stored",
                first.event_id
            )));
        }
        let now = Utc::now();
        let mut result = AppendResult {
            version: actual,
            position: 0,
        };
        for event in events {
            result.version += 1;
            let inserted = sqlx::query(
                "INSERT INTO events (stream_id, version, event_id, event_type, schema_version, payload, metadata, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING position",
            )
            .bind(stream.as_str())
            .bind(to_i64(result.version)?)
            .bind(event.event_id.to_string())
            .bind(&event.event_type)
            .bind(i64::from(event.schema_version))
            .bind(event.payload.to_string())
            .bind(serde_json::to_string(&event.metadata).map_err(|e| StoreError::Corrupt(e.to_string()))?)
            .bind(now)
            .fetch_one(&mut *conn)
            .await;
            let row = match inserted {
                Ok(row) => row,
                Err(err) => return Err(map_insert_error(conn, err, stream, expected, events).await),
            };
            result.position = from_i64(row.try_get::<i64, _>(0)?)?;
        }
        Ok(result)
    }

    async fn append_parts(&self, parts: &[StreamAppend]) -> Result<Vec<AppendResult>, StoreError> {
        let mut conn = self.writer.acquire().await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        let mut results = Vec::with_capacity(parts.len());
        for part in parts {
            results
                .push(Self::append_in(&mut tx, &part.stream, part.expected, &part.events).await?);
        }
        tx.commit().await?;
        self.signal.bump();
        Ok(results)
    }
}

#[async_trait]
impl EventStore for SqliteEventStore {
    fn capabilities(&self) -> StoreCapabilities {
        StoreCapabilities {
            atomic_multi_stream: true,
            unique_event_ids: true,
        }
    }

    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        let parts = [StreamAppend {
            stream: stream.clone(),
            expected,
            events,
        }];
        let mut results = self.append_parts(&parts).await?;
        results
            .pop()
            .ok_or_else(|| StoreError::Corrupt("append returned nothing".into()))
    }

    async fn append_multi(
        &self,
        parts: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        self.append_parts(&parts).await
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

/// A unique violation is a lost race for a version (a conflict) unless an event id of
/// the batch is already stored, which the caller must not reuse. Decided by looking, not
/// by parsing the error text.
async fn map_insert_error(
    conn: &mut SqliteConnection,
    err: sqlx::Error,
    stream: &StreamId,
    expected: ExpectedVersion,
    events: &[NewEvent],
) -> StoreError {
    let sqlx::Error::Database(db) = &err else {
        return err.into();
    };
    if !db.is_unique_violation() {
        return err.into();
    }
    for event in events {
        match event_exists(&mut *conn, event).await {
            Ok(true) => {
                return StoreError::Invalid(format!(
                    "event id {} is already stored",
                    event.event_id
                ));
            }
            Ok(false) => {}
            Err(err) => return err,
        }
    }
    let actual = current_version(conn, stream).await.unwrap_or_default();
    StoreError::Conflict {
        stream: stream.clone(),
        expected,
        actual,
    }
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
