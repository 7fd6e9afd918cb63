//! The KurrentDB / EventStoreDB backend, over the official gRPC client (`kurrentdb` crate).
//!
//! **Status.** This backend compiles in CI and runs the same contract suite as the other
//! backends when `EMPORIUM_TEST_EVENTSTORE_URL` is set (for example
//! `esdb://localhost:2113?tls=false`), but it has NOT been run against a server on the
//! development machine: no KurrentDB server could be started there. Everything below was
//! written against the client's source (`kurrentdb` 1.2.0) and the server's source
//! (`kurrent-io/KurrentDB`), not observed.
//!
//! # Mapping
//!
//! - **Versions.** Ours count events from 1 (a missing stream is at 0); KurrentDB revisions
//!   count from 0. `Exact(0)` and `NoStream` become `StreamState::NoStream`, `Exact(n)`
//!   becomes `StreamRevision(n - 1)`; a `WrongExpectedVersion` answer becomes
//!   [`StoreError::Conflict`] with the current revision + 1 (0 for no stream).
//! - **Positions.** A [`Position`] is the event's position in the transaction log (a byte
//!   offset). The server writes every event of an append as its own *implicitly committed*
//!   prepare record (`PrepareFlags.IsCommitted` on each, in `StorageWriterService`), and
//!   `$all` reports such an event at `TFPos(LogPosition, LogPosition)` (`AllReader`): commit
//!   and prepare position are equal and unique per event, also within a multi-event append,
//!   and increase in `$all` order. So one `u64` (the prepare position, which the server also
//!   fills in on stream reads) encodes the `$all` position exactly. Events written by legacy
//!   TCP explicit transactions (commit position differing from prepare position) cannot be
//!   encoded this way and make [`EventStore::read_all`] fail as corrupt.
//! - **Append positions.** The server answers a successful append with the log position of
//!   the batch's last event (`RequestManager/WriteEvents`: commit position of the
//!   `TransactionEnd` prepare; for an idempotent retry, the position of the original last
//!   event). When it answers "no position" (older servers, on some idempotent retries), the
//!   last event is read back to find it.
//! - **Idempotency.** Events keep their client-chosen ids, so a retried append is recognised
//!   by KurrentDB itself: exactly for `NoStream` / `Exact` (ids compared at the expected
//!   place), best-effort for `Any` / `StreamExists` (a bounded in-memory cache of recent ids
//!   on the server).
//! - **Metadata.** The payload is the event's JSON data; [`EventMetadata`] and the schema
//!   version travel as the JSON custom metadata (`{"actor": …, "correlationId": …,
//!   "causationId": …, "schemaVersion": 3}`); `recorded_at` is the server's `created` time.
//! - **Reading the log.** [`EventStore::read_all`] reads `$all` forwards from the event at
//!   `after` (the server's start position is inclusive) and drops that event. Only events
//!   already indexed are served, in log order, so a position once returned is never preceded
//!   later. System streams (`$…`) are excluded by a server-side filter, and events with a
//!   system type (`$>` links, `$streamDeleted` tombstones) are skipped.
//! - **Change notifications.** A background `$all` subscription from the end (same filter),
//!   started on the first [`EventStore::wait_for_change`], bumps the change marker; when it
//!   is down, waiters simply time out and poll.
//! - **Connection.** [`KurrentEventStore::connect`] parses the connection string and does no
//!   network I/O. The client gives up for good once a connection attempt fails (its
//!   connection task ends); the store then builds a fresh client on the next call, so the
//!   backend recovers after an outage. Reads go to the node the connection string prefers
//!   (the leader by default, which gives read-your-writes).
//!
//! # Differences from the SQL backends
//!
//! - **No atomic multi-stream append.** KurrentDB has no transaction across streams:
//!   [`StoreCapabilities::atomic_multi_stream`] is `false` and
//!   [`EventStore::append_multi`] appends the parts in order; a failure leaves the earlier
//!   parts written.
//! - **Sparse positions.** Positions are byte offsets in the log: strictly increasing, never
//!   reused, with large gaps (other streams, system records). The contract allows this.
//! - **Event ids are unique per stream, not per store.** KurrentDB does not index event
//!   ids globally, so an append whose events reuse ids already stored in *another* stream is
//!   written rather than refused (duplicates within one batch are refused here). The first
//!   half of the contract case `batch_append_is_atomic` expects a refusal and is therefore
//!   expected to fail against a real server.
//! - **Append size.** The server refuses appends larger than its `MaxAppendSize` (1 MiB by
//!   default) with [`StoreError::Invalid`]; the contract case `large_payload_round_trips`
//!   needs a server started with a larger limit (e.g. `KURRENTDB_MAX_APPEND_SIZE=4194304`).
//! - **Permissions.** Reading `$all` (read_all, head_position, ping, notifications) needs a
//!   user allowed to read it (by default `$admins` / `$ops`), or an insecure server.
use std::{
    collections::HashSet,
    fmt,
    future::Future,
    sync::{Arc, Mutex, OnceLock, Weak},
    time::Duration,
};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kurrentdb::{
    AppendToStreamOptions, Client, ClientSettings, CurrentRevision, EventData, ReadAllOptions,
    ReadStream, ReadStreamOptions, ResolvedEvent, StreamPosition, StreamState,
    SubscribeToAllOptions, SubscriptionEvent, SubscriptionFilter,
};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use uuid::Uuid;

use crate::{
    AppendResult, EventMetadata, EventStore, ExpectedVersion, NewEvent, Position, RecordedEvent,
    StoreCapabilities, StoreError, StreamAppend, StreamId, signal::ChangeSignal,
};

/// Server-side deadline of an append.
const APPEND_DEADLINE: Duration = Duration::from_secs(10);
/// Server-side deadline of a read (a page of events can be large).
const READ_DEADLINE: Duration = Duration::from_secs(30);
/// Deadline of a readiness probe.
const PING_DEADLINE: Duration = Duration::from_secs(5);
/// Added to the deadline for the client's connection attempt, which the server-side
/// deadline does not cover.
const CONNECT_MARGIN: Duration = Duration::from_secs(5);
/// Most events requested from `$all` in one call.
const MAX_PAGE: usize = 4096;
/// Events read backwards when looking for the head of the log.
const HEAD_SCAN: usize = 32;
/// Pause before the notification subscription is re-established after a failure.
const RESUBSCRIBE_PAUSE: Duration = Duration::from_secs(1);

/// gRPC status codes (fixed by the gRPC specification) of errors the client passes through
/// unmapped that are worth retrying.
const GRPC_CANCELLED: i32 = 1;
const GRPC_RESOURCE_EXHAUSTED: i32 = 8;
const GRPC_ABORTED: i32 = 10;

/// An event store in KurrentDB (or EventStoreDB 20.6+), optionally confined to the streams
/// whose names start with a prefix (see [`KurrentEventStore::scoped`]).
pub struct KurrentEventStore {
    conn: Arc<Connection>,
    prefix: String,
    watch: Arc<Watch>,
}

impl fmt::Debug for KurrentEventStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The settings hold credentials: only the scope is shown.
        f.debug_struct("KurrentEventStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// The client, rebuilt when it has given up on its connection.
struct Connection {
    settings: ClientSettings,
    /// The current client and its generation, so that concurrent failures discard it once.
    client: Mutex<Option<(u64, Client)>>,
    generations: Mutex<u64>,
}

impl Connection {
    fn new(settings: ClientSettings) -> Self {
        Self {
            settings,
            client: Mutex::new(None),
            generations: Mutex::new(0),
        }
    }

    /// The current client, created if there is none. Needs a Tokio runtime: the client
    /// runs its connection task on it.
    fn client(&self) -> Result<(u64, Client), StoreError> {
        let mut current = self
            .client
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((generation, client)) = current.as_ref() {
            return Ok((*generation, client.clone()));
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| StoreError::unavailable("the KurrentDB client needs a Tokio runtime"))?;
        let client =
            Client::with_runtime_handle(runtime, self.settings.clone()).map_err(|err| {
                StoreError::unavailable(format!("cannot create the KurrentDB client: {err}"))
            })?;
        let mut generations = self
            .generations
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *generations += 1;
        *current = Some((*generations, client.clone()));
        Ok((*generations, client))
    }

    /// Maps a failed call's error; when the client has given up on its connection (its
    /// connection task ended after a failed attempt), drops it so that the next call
    /// builds a new one. A client that still works is never dropped: its connection task
    /// would live on.
    fn failed(&self, generation: u64, err: kurrentdb::Error) -> StoreError {
        if matches!(
            err,
            kurrentdb::Error::ConnectionClosed | kurrentdb::Error::GrpcConnectionError(_)
        ) {
            let mut current = self
                .client
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if current.as_ref().is_some_and(|(g, _)| *g == generation) {
                *current = None;
            }
        }
        map_error(err)
    }
}

/// The change marker of one store value and the task that feeds it.
struct Watch {
    signal: ChangeSignal,
    /// Dropped with the store, which ends the notification task.
    stop: watch::Sender<()>,
    started: OnceLock<()>,
}

impl Watch {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            signal: ChangeSignal::new(),
            stop: watch::Sender::new(()),
            started: OnceLock::new(),
        })
    }
}

impl KurrentEventStore {
    /// A store for the server(s) of a connection string such as
    /// `esdb://admin:changeit@localhost:2113?tls=false` or `kurrentdb://…` (every scheme and
    /// setting the client accepts). Does no network I/O: the client connects on first use.
    /// Inside a Tokio runtime the client is created at once (so a bad TLS setting fails
    /// here); otherwise on first use.
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let settings: ClientSettings = url.parse().map_err(|err| {
            StoreError::Invalid(format!("bad KurrentDB connection string: {err}"))
        })?;
        let conn = Arc::new(Connection::new(settings));
        if tokio::runtime::Handle::try_current().is_ok() {
            conn.client()?;
        }
        Ok(Self {
            conn,
            prefix: String::new(),
            watch: Watch::new(),
        })
    }

    /// The same store confined to streams named `{prefix}{name}`, for test isolation on a
    /// shared server: every stream name is prefixed on the way in and stripped on the way
    /// out, and [`EventStore::read_all`], [`EventStore::head_position`] and change
    /// notifications only see streams with the prefix (a server-side filter on `$all`).
    /// The prefix must not start with `$` (system streams); an empty prefix means no scope.
    #[must_use]
    pub fn scoped(self, prefix: &str) -> Self {
        // A new change marker: a notification task started for the old scope ends with it.
        Self {
            conn: self.conn,
            prefix: prefix.to_owned(),
            watch: Watch::new(),
        }
    }

    /// The stream's name on the server.
    fn full_name(&self, stream: &StreamId) -> String {
        format!("{}{}", self.prefix, stream.as_str())
    }

    /// The server-side `$all` filter for this scope; both exclude system streams (`$…`).
    fn filter(&self) -> SubscriptionFilter {
        if self.prefix.is_empty() {
            SubscriptionFilter::on_stream_name().exclude_system_events()
        } else {
            SubscriptionFilter::on_stream_name().add_prefix(&self.prefix)
        }
    }

    /// Our name of a server stream, or `None` when it is outside this scope or a system stream.
    fn local_name<'a>(&self, server_name: &'a str) -> Option<&'a str> {
        let name = server_name.strip_prefix(self.prefix.as_str())?;
        (!server_name.starts_with('$')).then_some(name)
    }

    /// Runs one client operation with an overall deadline, mapping its errors.
    async fn call<T, Fut>(
        &self,
        deadline: Duration,
        op: impl FnOnce(Client) -> Fut,
    ) -> Result<T, StoreError>
    where
        Fut: Future<Output = Result<T, kurrentdb::Error>>,
    {
        let (generation, client) = self.conn.client()?;
        match tokio::time::timeout(deadline + CONNECT_MARGIN, op(client)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(self.conn.failed(generation, err)),
            Err(_) => Err(StoreError::unavailable(format!(
                "KurrentDB did not answer within {:?}",
                deadline + CONNECT_MARGIN
            ))),
        }
    }

    async fn append_one(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[NewEvent],
    ) -> Result<AppendResult, StoreError> {
        let last_id = events
            .last()
            .ok_or_else(|| StoreError::Invalid("empty append".into()))?
            .event_id;
        let mut ids = HashSet::with_capacity(events.len());
        if let Some(twice) = events.iter().find(|e| !ids.insert(e.event_id)) {
            return Err(StoreError::Invalid(format!(
                "event id {} appears twice in the batch",
                twice.event_id
            )));
        }
        let data = events
            .iter()
            .map(encode_event)
            .collect::<Result<Vec<_>, _>>()?;
        let name = self.full_name(stream);
        let options = AppendToStreamOptions::default()
            .stream_state(stream_state(expected))
            .deadline(APPEND_DEADLINE);
        let target = name.clone();
        let outcome = self
            .call(APPEND_DEADLINE, move |client| async move {
                match client.append_to_stream(target, &options, data).await {
                    Ok(written) => Ok(Ok(written)),
                    Err(kurrentdb::Error::WrongExpectedVersion { current, .. }) => Ok(Err(current)),
                    Err(err) => Err(err),
                }
            })
            .await?;
        let written = match outcome {
            Ok(written) => written,
            Err(current) => {
                let actual = match current {
                    CurrentRevision::Current(revision) => revision + 1,
                    CurrentRevision::NoStream => 0,
                };
                return Err(StoreError::Conflict {
                    stream: stream.clone(),
                    expected,
                    actual,
                });
            }
        };
        let last_revision = written.next_expected_version;
        // Commit and prepare position are both the last event's log position; "no position"
        // arrives as 0.
        let position = match written.position.commit {
            0 | u64::MAX => self.position_of(&name, last_revision, last_id).await?,
            commit => commit,
        };
        self.watch.signal.bump();
        Ok(AppendResult {
            version: last_revision + 1,
            position,
        })
    }

    /// The position of the event at `revision` of a server stream, which must be `event_id`.
    async fn position_of(
        &self,
        name: &str,
        revision: u64,
        event_id: Uuid,
    ) -> Result<Position, StoreError> {
        let options = ReadStreamOptions::default()
            .forwards()
            .position(StreamPosition::Position(revision))
            .max_count(1)
            .deadline(READ_DEADLINE);
        let target = name.to_owned();
        let page = self
            .call(READ_DEADLINE, move |client| async move {
                collect(client.read_stream(target, &options).await?, 1).await
            })
            .await?;
        match page.first().and_then(original) {
            Some(event) if event.id == event_id => Ok(event.position.prepare),
            _ => Err(StoreError::Corrupt(format!(
                "the append to {name} succeeded but its last event {event_id} is not at revision {revision}"
            ))),
        }
    }

    /// Converts a server event; `None` for events [`EventStore::read_all`] does not deliver
    /// (outside the scope, system streams, system event types).
    fn decode_foreign(
        &self,
        event: &kurrentdb::RecordedEvent,
    ) -> Result<Option<RecordedEvent>, StoreError> {
        let Some(name) = self.local_name(event.stream_id()) else {
            return Ok(None);
        };
        if event.event_type.starts_with('$') {
            return Ok(None);
        }
        decode(name, event).map(Some)
    }

    /// Reads a server stream forwards from `revision`, at most `limit` events; a missing
    /// stream reads as empty.
    async fn read_revisions(
        &self,
        name: String,
        revision: u64,
        limit: usize,
    ) -> Result<Vec<ResolvedEvent>, StoreError> {
        let options = ReadStreamOptions::default()
            .forwards()
            .position(StreamPosition::Position(revision))
            .max_count(limit)
            .deadline(READ_DEADLINE);
        self.call(READ_DEADLINE, move |client| async move {
            let read = async { collect(client.read_stream(name, &options).await?, limit).await };
            match read.await {
                Err(kurrentdb::Error::ResourceNotFound) => Ok(Vec::new()),
                other => other,
            }
        })
        .await
    }

    /// Starts, once, the `$all` subscription that bumps the change marker when anyone
    /// appends to this scope. Needs a Tokio runtime, hence lazily.
    fn ensure_notifications(&self) {
        if self.watch.started.get().is_some() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.watch.started.get_or_init(|| {
            let watch = Arc::downgrade(&self.watch);
            let stop = self.watch.stop.subscribe();
            let options = SubscribeToAllOptions::default()
                .position(StreamPosition::End)
                .filter(self.filter());
            runtime.spawn(notify_changes(self.conn.clone(), watch, stop, options));
        });
    }
}

/// Follows `$all` from its end and bumps the change marker on every event, re-subscribing
/// after failures, until the store is dropped.
async fn notify_changes(
    conn: Arc<Connection>,
    watch: Weak<Watch>,
    mut stop: watch::Receiver<()>,
    options: SubscribeToAllOptions,
) {
    loop {
        if let Ok((generation, client)) = conn.client() {
            let mut subscription = client.subscribe_to_all(&options).await;
            loop {
                let next = tokio::select! {
                    _ = stop.changed() => return,
                    next = subscription.next_subscription_event() => next,
                };
                let Some(watch) = watch.upgrade() else { return };
                match next {
                    Ok(SubscriptionEvent::EventAppeared(_)) => watch.signal.bump(),
                    Ok(_) => {}
                    Err(err) => {
                        tracing::debug!(%err, "KurrentDB change notifications interrupted; polling meanwhile");
                        // Appends may have been missed: let waiters look.
                        watch.signal.bump();
                        drop(conn.failed(generation, err));
                        break;
                    }
                }
            }
        }
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(RESUBSCRIBE_PAUSE) => {}
        }
    }
}

/// Reads up to `limit` events from a read response.
async fn collect(
    mut stream: ReadStream,
    limit: usize,
) -> Result<Vec<ResolvedEvent>, kurrentdb::Error> {
    let mut events = Vec::new();
    while events.len() < limit {
        match stream.next().await? {
            Some(event) => events.push(event),
            None => break,
        }
    }
    Ok(events)
}

/// The record that was read: the event itself (links are not resolved).
fn original(resolved: &ResolvedEvent) -> Option<&kurrentdb::RecordedEvent> {
    resolved.event.as_ref().or(resolved.link.as_ref())
}

fn stream_state(expected: ExpectedVersion) -> StreamState {
    match expected {
        ExpectedVersion::Any => StreamState::Any,
        ExpectedVersion::NoStream | ExpectedVersion::Exact(0) => StreamState::NoStream,
        ExpectedVersion::StreamExists => StreamState::StreamExists,
        ExpectedVersion::Exact(version) => StreamState::StreamRevision(version - 1),
    }
}

/// What travels as an event's custom metadata.
#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredMetadata {
    #[serde(flatten)]
    metadata: EventMetadata,
    #[serde(default = "first_schema_version")]
    schema_version: u32,
}

/// Schema version assumed for events written without one (by other tools).
fn first_schema_version() -> u32 {
    1
}

fn encode_event(event: &NewEvent) -> Result<EventData, StoreError> {
    let invalid = |err: serde_json::Error| {
        StoreError::Invalid(format!("event {} cannot be encoded: {err}", event.event_id))
    };
    let metadata = StoredMetadata {
        metadata: event.metadata.clone(),
        schema_version: event.schema_version,
    };
    EventData::json(&event.event_type, &event.payload)
        .map_err(invalid)?
        .id(event.event_id)
        .metadata_as_json(&metadata)
        .map_err(invalid)
}

fn decode_metadata(raw: &[u8]) -> Result<StoredMetadata, serde_json::Error> {
    if raw.is_empty() {
        return Ok(StoredMetadata {
            metadata: EventMetadata::default(),
            schema_version: first_schema_version(),
        });
    }
    serde_json::from_slice(raw)
}

/// Converts a server event of the stream we call `name`.
fn decode(name: &str, event: &kurrentdb::RecordedEvent) -> Result<RecordedEvent, StoreError> {
    let corrupt = |what: &str, err: &dyn fmt::Display| {
        StoreError::Corrupt(format!(
            "event {} in {}: {what}: {err}",
            event.id,
            event.stream_id()
        ))
    };
    let stored =
        decode_metadata(&event.custom_metadata).map_err(|e| corrupt("bad metadata", &e))?;
    Ok(RecordedEvent {
        event_id: event.id,
        stream: StreamId::new(name).map_err(|e| corrupt("bad stream name", &e))?,
        version: event.revision + 1,
        position: event.position.prepare,
        event_type: event.event_type.clone(),
        schema_version: stored.schema_version,
        payload: serde_json::from_slice(&event.data)
            .map_err(|e| corrupt("payload is not JSON", &e))?,
        metadata: stored.metadata,
        recorded_at: recorded_at(event),
    })
}

/// The server's `created` time: .NET ticks (100 ns) since the Unix epoch in the `created`
/// metadata entry, which keeps the sub-second part the client's `created` field drops.
fn recorded_at(event: &kurrentdb::RecordedEvent) -> DateTime<Utc> {
    event
        .metadata
        .get("created")
        .and_then(|ticks| ticks_to_time(ticks))
        .unwrap_or(event.created)
}

fn ticks_to_time(ticks: &str) -> Option<DateTime<Utc>> {
    let ticks: i64 = ticks.parse().ok()?;
    let nanos = u32::try_from(ticks.rem_euclid(10_000_000) * 100).ok()?;
    DateTime::from_timestamp(ticks.div_euclid(10_000_000), nanos)
}

fn map_error(err: kurrentdb::Error) -> StoreError {
    use kurrentdb::Error as E;
    match err {
        E::ServerError(_)
        | E::NotLeaderException(_)
        | E::ConnectionClosed
        | E::GrpcConnectionError(_)
        | E::DeadlineExceeded
        | E::InitializationError(_)
        | E::AccessDenied => StoreError::unavailable(err),
        E::Grpc { code, .. }
            if matches!(
                i32::from(code),
                GRPC_CANCELLED | GRPC_RESOURCE_EXHAUSTED | GRPC_ABORTED
            ) =>
        {
            StoreError::unavailable(err)
        }
        E::InternalParsingError(_) | E::InternalClientError | E::IllegalStateError(_) => {
            StoreError::Corrupt(err.to_string())
        }
        E::Grpc { .. }
        | E::ResourceAlreadyExists
        | E::ResourceNotFound
        | E::ResourceDeleted
        | E::UnsupportedFeature
        | E::WrongExpectedVersion { .. } => StoreError::Invalid(err.to_string()),
    }
}

#[async_trait]
impl EventStore for KurrentEventStore {
    fn capabilities(&self) -> StoreCapabilities {
        StoreCapabilities {
            atomic_multi_stream: false,
            unique_event_ids: false,
            batched_tail_reads: false,
        }
    }

    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        self.append_one(stream, expected, &events).await
    }

    async fn append_multi(
        &self,
        parts: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        if parts.iter().any(|part| part.events.is_empty()) {
            return Err(StoreError::Invalid("empty append".into()));
        }
        let mut results = Vec::with_capacity(parts.len());
        for part in &parts {
            results.push(
                self.append_one(&part.stream, part.expected, &part.events)
                    .await?,
            );
        }
        Ok(results)
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let page = self
            .read_revisions(
                self.full_name(stream),
                from_version.saturating_sub(1),
                limit,
            )
            .await?;
        page.iter()
            .filter_map(original)
            .map(|event| decode(stream.as_str(), event))
            .collect()
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError> {
        let options = ReadStreamOptions::default()
            .position(StreamPosition::End)
            .max_count(1)
            .deadline(READ_DEADLINE);
        let name = self.full_name(stream);
        let last = self
            .call(READ_DEADLINE, move |client| async move {
                let read = async { collect(client.read_stream(name, &options).await?, 1).await };
                match read.await {
                    Err(kurrentdb::Error::ResourceNotFound) => Ok(None),
                    Ok(page) => Ok(page.first().and_then(original).map(|event| event.revision)),
                    Err(err) => Err(err),
                }
            })
            .await?;
        Ok(last.map_or(0, |revision| revision + 1))
    }

    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let mut events = Vec::new();
        let mut from = after;
        while events.len() < limit {
            // The server starts at the event at `from` (inclusive): ask for one more.
            let page_size = (limit - events.len()).min(MAX_PAGE) + 1;
            let start = if from == 0 {
                StreamPosition::Start
            } else {
                StreamPosition::Position(kurrentdb::Position {
                    commit: from,
                    prepare: from,
                })
            };
            let options = ReadAllOptions::default()
                .forwards()
                .position(start)
                .max_count(page_size)
                .filter(self.filter())
                .deadline(READ_DEADLINE);
            let page = self
                .call(READ_DEADLINE, move |client| async move {
                    collect(client.read_all(&options).await?, page_size).await
                })
                .await?;
            let mut reached = from;
            for event in page.iter().filter_map(original) {
                let position = event.position;
                if position.prepare <= from {
                    continue;
                }
                if position.commit != position.prepare {
                    return Err(StoreError::Corrupt(format!(
                        "event {} in {} was written by an explicit transaction (position {position}); \
                         its position cannot be encoded",
                        event.id,
                        event.stream_id()
                    )));
                }
                reached = position.prepare;
                if let Some(decoded) = self.decode_foreign(event)? {
                    events.push(decoded);
                    if events.len() == limit {
                        break;
                    }
                }
            }
            // A short page is the end of the log (the server fills pages up to the count).
            if page.len() < page_size || reached == from {
                break;
            }
            from = reached;
        }
        Ok(events)
    }

    async fn head_position(&self) -> Result<Position, StoreError> {
        let options = ReadAllOptions::default()
            .position(StreamPosition::End)
            .max_count(HEAD_SCAN)
            .filter(self.filter())
            .deadline(READ_DEADLINE);
        let page = self
            .call(READ_DEADLINE, move |client| async move {
                collect(client.read_all(&options).await?, HEAD_SCAN).await
            })
            .await?;
        let mut latest = None;
        for event in page.iter().filter_map(original) {
            latest.get_or_insert(event.position.prepare);
            if self.local_name(event.stream_id()).is_some() && !event.event_type.starts_with('$') {
                return Ok(event.position.prepare);
            }
        }
        // Only system-typed events near the end: their position still bounds what read_all returns.
        Ok(latest.unwrap_or(0))
    }

    fn change_marker(&self) -> u64 {
        self.watch.signal.marker()
    }

    async fn wait_for_change(&self, seen: u64, timeout: Duration) {
        self.ensure_notifications();
        self.watch.signal.wait(seen, timeout).await;
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let options = ReadAllOptions::default()
            .position(StreamPosition::End)
            .max_count(1)
            .deadline(PING_DEADLINE);
        self.call(PING_DEADLINE, move |client| async move {
            collect(client.read_all(&options).await?, 1).await.map(drop)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn connection_strings_parse_without_a_runtime() {
        for url in [
            "esdb://localhost:2113?tls=false",
            "kurrentdb://admin:changeit@localhost:2113",
            "esdb://a:1,b:2,c:3",
        ] {
            KurrentEventStore::connect(url).unwrap_or_else(|err| panic!("{url}: {err}"));
        }
        for url in ["http://localhost:2113", "not a url", "esdb://"] {
            assert!(
                matches!(KurrentEventStore::connect(url), Err(StoreError::Invalid(_))),
                "{url}"
            );
        }
    }

    #[test]
    fn expected_versions_map_to_zero_based_revisions() {
        assert_eq!(stream_state(ExpectedVersion::Any), StreamState::Any);
        assert_eq!(
            stream_state(ExpectedVersion::NoStream),
            StreamState::NoStream
        );
        assert_eq!(
            stream_state(ExpectedVersion::Exact(0)),
            StreamState::NoStream
        );
        assert_eq!(
            stream_state(ExpectedVersion::Exact(1)),
            StreamState::StreamRevision(0)
        );
        assert_eq!(
            stream_state(ExpectedVersion::Exact(7)),
            StreamState::StreamRevision(6)
        );
        assert_eq!(
            stream_state(ExpectedVersion::StreamExists),
            StreamState::StreamExists
        );
    }

    #[test]
    fn metadata_carries_schema_version() {
        let metadata = EventMetadata {
            actor: Some("account-42".into()),
            correlation_id: Some(Uuid::now_v7()),
            causation_id: None,
        };
        let stored = StoredMetadata {
            metadata: metadata.clone(),
            schema_version: 3,
        };
        let raw = serde_json::to_vec(&stored).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        assert_eq!(value["schemaVersion"], json!(3));
        assert_eq!(value["actor"], json!("account-42"));
        assert!(value.get("causationId").is_none());
        assert_eq!(decode_metadata(&raw).unwrap(), stored);
        let empty = decode_metadata(b"").unwrap();
        assert_eq!(
            (empty.metadata, empty.schema_version),
            (EventMetadata::default(), 1)
        );
        assert!(
            encode_event(&NewEvent::new("Tested", 2, json!({"n": 1})).with_metadata(metadata))
                .is_ok()
        );
    }

    #[test]
    fn created_ticks_keep_sub_second_precision() {
        let at = ticks_to_time("17000000001234567").unwrap();
        assert_eq!(at.timestamp(), 1_700_000_000);
        assert_eq!(at.timestamp_subsec_nanos(), 123_456_700);
        assert!(ticks_to_time("soon").is_none());
    }

    #[test]
    fn scope_prefixes_and_strips_names() {
        let store = KurrentEventStore::connect("esdb://localhost:2113?tls=false")
            .unwrap()
            .scoped("t1-");
        let stream = StreamId::new("order-1").unwrap();
        assert_eq!(store.full_name(&stream), "t1-order-1");
        assert_eq!(store.local_name("t1-order-1"), Some("order-1"));
        assert_eq!(store.local_name("t2-order-1"), None);
        let unscoped = KurrentEventStore::connect("esdb://localhost:2113?tls=false").unwrap();
        assert_eq!(unscoped.local_name("order-1"), Some("order-1"));
        assert_eq!(unscoped.local_name("$ce-order"), None);
    }

    /// Nothing listens on port 1: every operation fails as unavailable, promptly, and
    /// keeps doing so (the client is rebuilt after it gives up) instead of hanging.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unreachable_server_is_unavailable() {
        let store =
            KurrentEventStore::connect("esdb://127.0.0.1:1?tls=false&maxDiscoverAttempts=1")
                .unwrap()
                .scoped("t-");
        let stream = StreamId::new("order-1").unwrap();
        tokio::time::timeout(Duration::from_secs(60), async {
            for _ in 0..3 {
                assert!(matches!(
                    store.ping().await,
                    Err(StoreError::Unavailable(_))
                ));
                // The client gave up on its connection and was dropped: the next call
                // builds a new one instead of meeting `ConnectionClosed` for ever.
                assert!(
                    store.conn.client.lock().unwrap().is_none(),
                    "a dead client was kept"
                );
                let appended = store.append(
                    &stream,
                    ExpectedVersion::Any,
                    vec![NewEvent::new("Tested", 1, json!({}))],
                );
                assert!(matches!(appended.await, Err(StoreError::Unavailable(_))));
                assert!(matches!(
                    store.read_all(0, 10).await,
                    Err(StoreError::Unavailable(_))
                ));
                assert!(matches!(
                    store.stream_version(&stream).await,
                    Err(StoreError::Unavailable(_))
                ));
            }
            let seen = store.change_marker();
            store
                .wait_for_change(seen, Duration::from_millis(200))
                .await;
        })
        .await
        .expect("operations against an unreachable server must fail promptly");
    }
}
