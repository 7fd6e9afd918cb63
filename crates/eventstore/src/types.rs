//! The envelope types that cross the [`EventStore`](crate::EventStore) boundary.
use std::{fmt, sync::Arc};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::StoreError;

/// A global position in the log: strictly increasing in delivery order, starting after 0.
/// Positions may have holes (a rolled-back append); they are never reused.
pub type Position = u64;

/// The name of a stream, e.g. `order-0190…`. Any non-empty Unicode text of at most 256
/// characters without control characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StreamId(String);

impl StreamId {
    /// Validates a stream name.
    pub fn new(name: impl Into<String>) -> Result<Self, StoreError> {
        let name = name.into();
        if name.is_empty() || name.chars().count() > 256 || name.chars().any(char::is_control) {
            return Err(StoreError::Invalid(format!("bad stream name {name:?}")));
        }
        Ok(Self(name))
    }

    /// `{category}-{id}`, the naming scheme every Emporium stream uses.
    pub fn of(category: &str, id: impl fmt::Display) -> Self {
        Self(format!("{category}-{id}"))
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the first `-`: the aggregate kind.
    pub fn category(&self) -> &str {
        self.0.split_once('-').map_or(&self.0, |(c, _)| c)
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The version a stream must be at for an append to go through (KurrentDB's semantics).
/// Versions count events: a stream's first event has version 1, a missing stream is at 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExpectedVersion {
    /// No check.
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must have at least one event.
    StreamExists,
    /// The stream's last event must have exactly this version (0 = no stream).
    Exact(u64),
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Any => f.write_str("any"),
            Self::NoStream => f.write_str("no stream"),
            Self::StreamExists => f.write_str("an existing stream"),
            Self::Exact(v) => write!(f, "{v}"),
        }
    }
}

impl ExpectedVersion {
    /// Whether a stream currently at `actual` satisfies this expectation.
    pub fn accepts(self, actual: u64) -> bool {
        match self {
            Self::Any => true,
            Self::NoStream => actual == 0,
            Self::StreamExists => actual > 0,
            Self::Exact(v) => v == actual,
        }
    }
}

/// Who caused an event and why: carried with every event, never part of its payload.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventMetadata {
    /// The account (or system component) that issued the command.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// Shared by every event one request caused, across streams.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<Uuid>,
    /// The event or command that directly caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub causation_id: Option<Uuid>,
}

/// An event to append. Its id is chosen by the client (UUID v7) so that a retried append
/// is recognised and not written twice.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// Unique id of the event.
    pub event_id: Uuid,
    /// Stable stored type name, e.g. `StockReserved`.
    pub event_type: String,
    /// Schema version of the payload, for upcasting on read.
    pub schema_version: u32,
    /// The event's data.
    pub payload: serde_json::Value,
    /// Who and why.
    pub metadata: EventMetadata,
}

impl NewEvent {
    /// A new event with a fresh UUID v7 id.
    pub fn new(
        event_type: impl Into<String>,
        schema_version: u32,
        payload: serde_json::Value,
    ) -> Self {
        Self {
            event_id: Uuid::now_v7(),
            event_type: event_type.into(),
            schema_version,
            payload,
            metadata: EventMetadata::default(),
        }
    }

    /// Sets the metadata.
    #[must_use]
    pub fn with_metadata(mut self, metadata: EventMetadata) -> Self {
        self.metadata = metadata;
        self
    }
}

/// An event as stored, with everything the log knows about it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedEvent {
    /// Unique id of the event.
    pub event_id: Uuid,
    /// The stream it belongs to.
    pub stream: StreamId,
    /// Its version within the stream (1-based, contiguous).
    pub version: u64,
    /// Its global position.
    pub position: Position,
    /// Stable stored type name.
    pub event_type: String,
    /// Schema version the payload was written with.
    pub schema_version: u32,
    /// The event's data, shared: a process hands each event to a dozen followers of the
    /// log ([`crate::shared_tail`]), and a deep copy of the JSON for each was a fifth of
    /// the projector's CPU under the order load.
    pub payload: Arc<serde_json::Value>,
    /// Who and why.
    pub metadata: EventMetadata,
    /// When the store recorded it.
    pub recorded_at: DateTime<Utc>,
}

/// The outcome of a successful append.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppendResult {
    /// The stream's version after the append (the version of its last event).
    pub version: u64,
    /// The global position of the last event appended.
    pub position: Position,
}

/// One stream's part of a multi-stream append.
#[derive(Clone, Debug)]
pub struct StreamAppend {
    /// Target stream.
    pub stream: StreamId,
    /// Expected version of that stream.
    pub expected: ExpectedVersion,
    /// Events to append, in order.
    pub events: Vec<NewEvent>,
}
