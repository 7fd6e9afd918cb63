//! The [`EventStore`] trait: what every backend guarantees.
use std::time::Duration;

use async_trait::async_trait;

use crate::{
    AppendResult, ExpectedVersion, NewEvent, Position, RecordedEvent, StoreError, StreamAppend,
    StreamId,
};

/// Differences between backends, stated as capabilities rather than backend names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StoreCapabilities {
    /// [`EventStore::append_multi`] commits all streams in one transaction.
    pub atomic_multi_stream: bool,
    /// An event id can be stored only once in the whole log (not just per stream).
    pub unique_event_ids: bool,
    /// [`EventStore::read_stream_tails`] reads every tail in one round trip.
    pub batched_tail_reads: bool,
}

/// An append-only log of streams with a global order.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// What this backend can do beyond the common contract.
    fn capabilities(&self) -> StoreCapabilities;

    /// Appends `events` to `stream` if it is at `expected`.
    ///
    /// Atomic: either every event is written, with contiguous versions, or none is.
    /// Fails with [`StoreError::Conflict`] when the stream is not at `expected`. When the
    /// first event's id is already stored in this stream, the call is treated as a retry:
    /// nothing is written and the original outcome is returned.
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError>;

    /// Appends to several streams. With [`StoreCapabilities::atomic_multi_stream`] all
    /// parts commit together or none does; otherwise they are appended in order and a
    /// failure leaves the earlier parts written (the caller compensates).
    async fn append_multi(&self, parts: Vec<StreamAppend>)
    -> Result<Vec<AppendResult>, StoreError>;

    /// Up to `limit` events of `stream` with version >= `from_version`, in version order.
    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// For each `(stream, from_version)` of `tails`, what [`EventStore::read_stream`] would
    /// answer (up to `limit` events), in the order of `tails`. Backends that can read them
    /// all in one round trip do (PostgreSQL); the others read them one by one.
    async fn read_stream_tails(
        &self,
        tails: &[(StreamId, u64)],
        limit: usize,
    ) -> Result<Vec<Vec<RecordedEvent>>, StoreError> {
        let mut read = Vec::with_capacity(tails.len());
        for (stream, from_version) in tails {
            read.push(self.read_stream(stream, *from_version, limit).await?);
        }
        Ok(read)
    }

    /// The stream's current version (0 when it does not exist).
    async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError>;

    /// Up to `limit` events with position > `after`, in position order, limited to events
    /// that are safe to deliver: no event at a lower position can become visible later.
    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The highest position that [`EventStore::read_all`] may currently return (0: empty).
    async fn head_position(&self) -> Result<Position, StoreError>;

    /// A counter that changes whenever this process appends or learns of another's append.
    fn change_marker(&self) -> u64;

    /// Waits until [`EventStore::change_marker`] differs from `seen`, or `timeout` passes.
    /// Backends that cannot be told of other processes' appends simply time out (polling).
    async fn wait_for_change(&self, seen: u64, timeout: Duration);

    /// Checks that the backend answers (for readiness probes).
    async fn ping(&self) -> Result<(), StoreError>;
}
