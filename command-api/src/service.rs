//! [`CommandService`]: load an aggregate, decide, append with the expected version, and
//! retry on a conflict. The one path every write takes.
//!
//! Hot streams stay fast: each aggregate's state is cached with its version, so a load
//! reads only events newer than the cache; and appends to one stream are serialised
//! within the process (striped locks), so concurrent requests for a hot SKU queue briefly
//! instead of failing on version conflicts. Conflicts from other processes are retried.
use std::{
    any::Any,
    hash::{Hash, Hasher},
    sync::Arc,
};

use domain::aggregate::{Aggregate, DomainEvent, decode, encode};
use eventstore::{
    AppendResult, EventMetadata, EventStore, ExpectedVersion, NewEvent, Position, StoreError,
    StreamAppend, StreamId,
};
use tokio::sync::{Mutex, MutexGuard};
use uuid::Uuid;
use web::ApiError;

use crate::{idempotency::KeyedRequest, tails::TailReader};

/// Attempts before a command that keeps losing version races gives up with 409.
const MAX_ATTEMPTS: usize = 10;
const LOCK_STRIPES: usize = 1024;
/// Most events read from a stream's tail in one round trip.
const TAIL_PAGE: usize = 1000;

/// Who issued a command and which request it belongs to; stored with every event.
#[derive(Clone, Debug, Default)]
pub struct CommandMeta {
    /// The acting account (`account-{id}`), or a system component name.
    pub actor: Option<String>,
    /// Correlates every event of one request.
    pub correlation_id: Uuid,
    /// The request is a keyed one run again after its earlier run died before its answer
    /// was stored: [`CommandService::execute_request`] looks for what that run appended.
    pub retaken: bool,
}

impl CommandMeta {
    /// Metadata for `actor` with a fresh correlation id.
    pub fn by(actor: impl Into<String>) -> Self {
        Self {
            actor: Some(actor.into()),
            correlation_id: Uuid::now_v7(),
            retaken: false,
        }
    }

    /// Metadata for `actor`'s request: correlated by the request's id when it came with an
    /// `Idempotency-Key`, so every run of it is one correlation and a run after a crash
    /// can find what an earlier one appended ([`CommandService::execute_request`]).
    pub fn for_request(actor: impl Into<String>, keyed: Option<KeyedRequest>) -> Self {
        Self {
            actor: Some(actor.into()),
            correlation_id: KeyedRequest::id_or_new(keyed),
            retaken: keyed.is_some_and(|keyed| keyed.retaken),
        }
    }

    fn metadata(&self) -> EventMetadata {
        EventMetadata {
            actor: self.actor.clone(),
            correlation_id: Some(self.correlation_id),
            causation_id: None,
        }
    }
}

/// An aggregate's state as of a version.
#[derive(Clone, Debug)]
pub struct Loaded<S> {
    /// The folded state.
    pub state: S,
    /// The stream's version it reflects (0: no stream).
    pub version: u64,
    /// Global position of the stream's last event (0: none).
    pub position: Position,
}

/// What a command did.
#[derive(Clone, Debug)]
pub struct Executed<A: Aggregate> {
    /// The events appended (empty when the command changed nothing).
    pub events: Vec<A::Event>,
    /// The state after them.
    pub state: A::State,
    /// The stream's version after the command.
    pub version: u64,
    /// Global position of the stream's last event after the command.
    pub position: Position,
}

impl<A: Aggregate> Executed<A> {
    /// The stream's version and position after the command, as an append reports them.
    pub fn appended(&self) -> AppendResult {
        AppendResult {
            version: self.version,
            position: self.position,
        }
    }
}

/// Runs commands against the event store.
#[derive(Clone)]
pub struct CommandService {
    store: Arc<dyn EventStore>,
    tails: TailReader,
    cache: moka::sync::Cache<StreamId, Arc<dyn Any + Send + Sync>>,
    locks: Arc<Vec<Mutex<()>>>,
}

impl CommandService {
    /// A service over `store`, caching up to `cache_capacity` aggregates.
    pub fn new(store: Arc<dyn EventStore>, cache_capacity: u64) -> Self {
        Self {
            tails: TailReader::new(store.clone(), TAIL_PAGE),
            store,
            cache: moka::sync::Cache::new(cache_capacity),
            locks: Arc::new((0..LOCK_STRIPES).map(|_| Mutex::new(())).collect()),
        }
    }

    /// The underlying store.
    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    fn stripe(stream: &StreamId) -> usize {
        let mut hasher = std::hash::DefaultHasher::new();
        stream.hash(&mut hasher);
        usize::try_from(hasher.finish() % LOCK_STRIPES as u64).unwrap_or(0)
    }

    /// Serialises work on one stream within this process.
    pub async fn lock(&self, stream: &StreamId) -> MutexGuard<'_, ()> {
        self.locks[Self::stripe(stream)].lock().await
    }

    /// Whether the store appends to several streams in one transaction.
    pub fn atomic_multi_stream(&self) -> bool {
        self.store.capabilities().atomic_multi_stream
    }

    /// The cached state of the aggregate, without asking the store whether it is still
    /// current: for deciding optimistically and appending at its version, which the store
    /// refuses (a conflict) if the stream has moved on.
    pub fn cached<A>(&self, stream: &StreamId) -> Option<Loaded<A::State>>
    where
        A: Aggregate,
        A::State: Send + Sync + 'static,
    {
        self.cache
            .get(stream)
            .and_then(|entry| entry.downcast::<Loaded<A::State>>().ok())
            .map(|entry| (*entry).clone())
    }

    /// Remembers the state of a stream after a successful append.
    pub fn remember<A>(&self, stream: &StreamId, loaded: Loaded<A::State>)
    where
        A: Aggregate,
        A::State: Send + Sync + 'static,
    {
        self.cache.insert(stream.clone(), Arc::new(loaded));
    }

    /// `events` of aggregate `A` as one part of a multi-stream append.
    pub fn part<A: Aggregate>(
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[A::Event],
        meta: &CommandMeta,
    ) -> StreamAppend {
        let metadata = meta.metadata();
        StreamAppend {
            stream: stream.clone(),
            expected,
            events: events
                .iter()
                .map(|event| {
                    let (event_type, payload) = encode(event);
                    let schema_version = A::Event::schema_version(&event_type);
                    NewEvent::new(event_type, schema_version, payload)
                        .with_metadata(metadata.clone())
                })
                .collect(),
        }
    }

    /// Appends every part in one transaction: all or nothing.
    ///
    /// # Errors
    /// `Conflict` (naming the stream) when a part's expectation fails; nothing is written.
    pub async fn append_all(
        &self,
        parts: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        let events: usize = parts.iter().map(|p| p.events.len()).sum();
        let started = std::time::Instant::now();
        let result = self.store.append_multi(parts).await;
        metrics::histogram!("emporium_append_duration_seconds", "aggregate" => "multi")
            .record(started.elapsed().as_secs_f64());
        match &result {
            Ok(_) => metrics::counter!("emporium_appended_events_total", "aggregate" => "multi")
                .increment(events as u64),
            Err(StoreError::Conflict { .. }) => {
                metrics::counter!("emporium_append_conflicts_total", "aggregate" => "multi")
                    .increment(1);
            }
            Err(_) => {}
        }
        result
    }

    /// The aggregate's current state: the cached one, brought up to date with newer events.
    pub async fn load<A>(&self, stream: &StreamId) -> Result<Loaded<A::State>, ApiError>
    where
        A: Aggregate,
        A::State: Send + Sync + 'static,
    {
        let mut loaded = self.cached::<A>(stream).unwrap_or(Loaded {
            state: A::State::default(),
            version: 0,
            position: 0,
        });
        let before = loaded.version;
        loop {
            let batch = self.tails.read(stream, loaded.version + 1).await?;
            let done = batch.len() < TAIL_PAGE;
            for recorded in batch {
                let event = decode_recorded::<A>(
                    stream,
                    &recorded.event_type,
                    recorded.schema_version,
                    recorded.payload,
                )?;
                loaded.state = A::evolve(loaded.state, &event);
                loaded.version = recorded.version;
                loaded.position = recorded.position;
            }
            if done {
                break;
            }
        }
        if loaded.version != before {
            self.cache.insert(stream.clone(), Arc::new(loaded.clone()));
        }
        Ok(loaded)
    }

    /// What the request of `meta` appended to `stream` on an earlier run that died before
    /// its answer was stored: the events correlated with the request, the stream's current
    /// state, and the version and position of the last of those events; the answer that
    /// run would have given. `None` unless `meta` is such a retake and `stream` holds such
    /// events. Only a retake reads the stream for them, all of it: retakes follow crashes.
    pub async fn appended_before<A>(
        &self,
        stream: &StreamId,
        meta: &CommandMeta,
    ) -> Result<Option<Executed<A>>, ApiError>
    where
        A: Aggregate,
        A::State: Send + Sync + 'static,
    {
        if !meta.retaken {
            return Ok(None);
        }
        let (mut events, mut last) = (Vec::new(), None);
        let mut from = 1;
        loop {
            let batch = self.store.read_stream(stream, from, TAIL_PAGE).await?;
            let done = batch.len() < TAIL_PAGE;
            for recorded in batch {
                from = recorded.version + 1;
                if recorded.metadata.correlation_id != Some(meta.correlation_id) {
                    continue;
                }
                last = Some((recorded.version, recorded.position));
                events.push(decode_recorded::<A>(
                    stream,
                    &recorded.event_type,
                    recorded.schema_version,
                    recorded.payload,
                )?);
            }
            if done {
                break;
            }
        }
        let Some((version, position)) = last else {
            return Ok(None);
        };
        let state = self.load::<A>(stream).await?.state;
        Ok(Some(Executed {
            events,
            state,
            version,
            position,
        }))
    }

    /// [`CommandService::execute_if_version`] for a request's command on the stream that
    /// names its answer: a keyed request run again after a crash gets what its earlier run
    /// appended there ([`CommandService::appended_before`]) instead of deciding again, so
    /// it answers as that run would have, and `if_version` (the version that run changed)
    /// is not held against it.
    pub async fn execute_request<A, F>(
        &self,
        stream: &StreamId,
        if_version: Option<u64>,
        meta: &CommandMeta,
        decide: F,
    ) -> Result<Executed<A>, ApiError>
    where
        A: Aggregate,
        A::State: Send + Sync + 'static,
        F: Fn(&A::State) -> Result<Vec<A::Event>, ApiError>,
    {
        if let Some(done) = self.appended_before::<A>(stream, meta).await? {
            return Ok(done);
        }
        self.execute_if_version::<A, F>(stream, if_version, meta, decide)
            .await
    }

    /// Loads the aggregate, lets `decide` produce events from its state, and appends them
    /// at the loaded version; on a conflict, reloads and decides again.
    pub async fn execute<A, F>(
        &self,
        stream: &StreamId,
        meta: &CommandMeta,
        decide: F,
    ) -> Result<Executed<A>, ApiError>
    where
        A: Aggregate,
        A::State: Send + Sync + 'static,
        F: Fn(&A::State) -> Result<Vec<A::Event>, ApiError>,
    {
        self.execute_if_version::<A, F>(stream, None, meta, decide)
            .await
    }

    /// Like [`CommandService::execute`], but only while the stream is at `if_version`
    /// (the client's `If-Match`): a client that decided on an older version gets 412
    /// instead of having its change applied on top of one it never saw.
    pub async fn execute_if_version<A, F>(
        &self,
        stream: &StreamId,
        if_version: Option<u64>,
        meta: &CommandMeta,
        decide: F,
    ) -> Result<Executed<A>, ApiError>
    where
        A: Aggregate,
        A::State: Send + Sync + 'static,
        F: Fn(&A::State) -> Result<Vec<A::Event>, ApiError>,
    {
        let _guard = self.lock(stream).await;
        for _ in 0..MAX_ATTEMPTS {
            let loaded = self.load::<A>(stream).await?;
            if let Some(expected) = if_version.filter(|v| *v != loaded.version) {
                return Err(ApiError::PreconditionFailed(format!(
                    "{stream} is at version {}, not {expected}",
                    loaded.version
                )));
            }
            let events = decide(&loaded.state)?;
            if events.is_empty() {
                return Ok(Executed {
                    events,
                    state: loaded.state,
                    version: loaded.version,
                    position: loaded.position,
                });
            }
            match self
                .append::<A>(
                    stream,
                    ExpectedVersion::Exact(loaded.version),
                    &events,
                    meta,
                )
                .await
            {
                Ok(appended) => {
                    let state = events.iter().fold(loaded.state, A::evolve);
                    self.cache.insert(
                        stream.clone(),
                        Arc::new(Loaded {
                            state: state.clone(),
                            version: appended.version,
                            position: appended.position,
                        }),
                    );
                    return Ok(Executed {
                        events,
                        state,
                        version: appended.version,
                        position: appended.position,
                    });
                }
                Err(StoreError::Conflict { .. }) => {
                    metrics::counter!("emporium_append_conflicts_total", "aggregate" => A::NAME)
                        .increment(1);
                    self.cache.invalidate(stream);
                }
                Err(err) => return Err(err.into()),
            }
        }
        Err(ApiError::conflict(
            "concurrency_conflict",
            format!("{stream} kept changing; retry the request"),
        ))
    }

    /// Appends already-decided events with an explicit expectation (used where the
    /// expectation is part of the rule, e.g. creating a stream that must not exist).
    pub async fn append<A: Aggregate>(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: &[A::Event],
        meta: &CommandMeta,
    ) -> Result<AppendResult, StoreError> {
        let new_events = Self::part::<A>(stream, expected, events, meta).events;
        let started = std::time::Instant::now();
        let result = self.store.append(stream, expected, new_events).await;
        metrics::histogram!("emporium_append_duration_seconds", "aggregate" => A::NAME)
            .record(started.elapsed().as_secs_f64());
        if result.is_ok() {
            metrics::counter!("emporium_appended_events_total", "aggregate" => A::NAME)
                .increment(events.len() as u64);
        }
        result
    }
}

/// A stored event of `stream` as aggregate `A`'s event (upcast to its current schema).
fn decode_recorded<A: Aggregate>(
    stream: &StreamId,
    event_type: &str,
    schema_version: u32,
    payload: Arc<serde_json::Value>,
) -> Result<A::Event, ApiError> {
    decode(event_type, schema_version, Arc::unwrap_or_clone(payload))
        .map_err(|err| ApiError::Internal(anyhow::anyhow!("undecodable event in {stream}: {err}")))
}
