//! One read of the log's tail for every follower in a process.
//!
//! A projector process runs a dozen followers of the whole log (the projections, the view
//! cache writer, the integration publisher, a query node's search index), and at steady
//! state they all sit at the tail, so each new batch of events used to be read from the
//! database once per follower. [`SharedTail`] wraps a store and keeps the most recent
//! events that [`EventStore::read_all`] returned, as one window with no holes: the first
//! follower to ask past the window's end reads the database (the others queue behind it)
//! and extends the window; the rest are served from memory.
//!
//! What it serves is exactly what the wrapped store would return: the window holds the
//! consecutive answers of `read_all` (from the window's start, then from each answer's last
//! position), so it holds every event in its range that is safe to deliver, and nothing
//! else. A follower behind the window, or ahead of it, reads the store directly (ahead:
//! the window restarts there). Everything but `read_all` goes straight to the store.
use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
use tokio::sync::Mutex;

use crate::{
    AppendResult, EventStore, ExpectedVersion, NewEvent, Position, RecordedEvent,
    StoreCapabilities, StoreError, StreamAppend, StreamId,
};

/// The `/metrics` counter of `read_all` calls, labelled by where the answer came from
/// (`source`: `memory` or `store`).
pub const READS_METRIC: &str = "emporium_log_tail_reads_total";

/// Events kept by default: a few batches of the usual 500.
pub const DEFAULT_CAPACITY: usize = 2_048;

/// A store whose `read_all` shares the tail of the log among its callers; see the module doc.
pub struct SharedTail {
    inner: Arc<dyn EventStore>,
    window: Mutex<Window>,
    capacity: usize,
    /// `read_all` calls answered from the window, and those that went to the store.
    served: AtomicU64,
    read: AtomicU64,
}

/// How [`SharedTail`]'s `read_all` calls were answered so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TailStats {
    /// From memory.
    pub served: u64,
    /// By the store.
    pub read: u64,
}

/// The events with positions in `(start, end]` that are safe to deliver, all of them.
#[derive(Debug, Default)]
struct Window {
    /// `None` until the first read; then the position the window starts after.
    start: Option<Position>,
    events: VecDeque<RecordedEvent>,
}

impl Window {
    fn end(&self) -> Option<Position> {
        self.events.back().map(|e| e.position).or(self.start)
    }

    /// Up to `limit` events after `after`, when the window covers `after` and holds
    /// something past it.
    fn serve(&self, after: Position, limit: usize) -> Option<Vec<RecordedEvent>> {
        let start = self.start?;
        if after < start {
            return None;
        }
        let from = self.events.partition_point(|e| e.position <= after);
        (from < self.events.len()).then(|| self.events.range(from..).take(limit).cloned().collect())
    }

    /// Appends what `read_all(end)` returned, dropping the oldest events beyond `capacity`.
    fn extend(&mut self, events: &[RecordedEvent], capacity: usize) {
        self.events.extend(events.iter().cloned());
        while self.events.len() > capacity {
            if let Some(dropped) = self.events.pop_front() {
                self.start = Some(dropped.position);
            }
        }
    }
}

impl SharedTail {
    /// Shares `inner`'s tail, keeping [`DEFAULT_CAPACITY`] events.
    pub fn new(inner: Arc<dyn EventStore>) -> Self {
        Self::with_capacity(inner, DEFAULT_CAPACITY)
    }

    /// Shares `inner`'s tail, keeping at most `capacity` events (at least one).
    pub fn with_capacity(inner: Arc<dyn EventStore>, capacity: usize) -> Self {
        Self {
            inner,
            window: Mutex::default(),
            capacity: capacity.max(1),
            served: AtomicU64::new(0),
            read: AtomicU64::new(0),
        }
    }

    /// How the `read_all` calls were answered so far.
    pub fn stats(&self) -> TailStats {
        TailStats {
            served: self.served.load(Ordering::Relaxed),
            read: self.read.load(Ordering::Relaxed),
        }
    }

    async fn read_store(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.read.fetch_add(1, Ordering::Relaxed);
        metrics::counter!(READS_METRIC, "source" => "store").increment(1);
        self.inner.read_all(after, limit).await
    }
}

#[async_trait]
impl EventStore for SharedTail {
    fn capabilities(&self) -> StoreCapabilities {
        self.inner.capabilities()
    }

    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        self.inner.append(stream, expected, events).await
    }

    async fn append_multi(
        &self,
        parts: Vec<StreamAppend>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        self.inner.append_multi(parts).await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.inner.read_stream(stream, from_version, limit).await
    }

    async fn read_stream_tails(
        &self,
        tails: &[(StreamId, u64)],
        limit: usize,
    ) -> Result<Vec<Vec<RecordedEvent>>, StoreError> {
        self.inner.read_stream_tails(tails, limit).await
    }

    async fn stream_version(&self, stream: &StreamId) -> Result<u64, StoreError> {
        self.inner.stream_version(stream).await
    }

    async fn read_all(
        &self,
        after: Position,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        // Held across the store read: followers arriving meanwhile at the same end wait for
        // it and are then served from the window instead of reading the same events again.
        let mut window = self.window.lock().await;
        if let Some(events) = window.serve(after, limit) {
            self.served.fetch_add(1, Ordering::Relaxed);
            metrics::counter!(READS_METRIC, "source" => "memory").increment(1);
            return Ok(events);
        }
        match window.end() {
            Some(end) if after == end => {}
            // Behind the window: read alone, leaving the window to the followers at the tail.
            Some(_) if window.start.is_some_and(|start| after < start) => {
                drop(window);
                return self.read_store(after, limit).await;
            }
            // First read, or ahead of the window (its followers are gone): start over here.
            _ => {
                *window = Window {
                    start: Some(after),
                    events: VecDeque::new(),
                }
            }
        }
        let events = self.read_store(after, limit).await?;
        window.extend(&events, self.capacity);
        Ok(events)
    }

    async fn head_position(&self) -> Result<Position, StoreError> {
        self.inner.head_position().await
    }

    fn change_marker(&self) -> u64 {
        self.inner.change_marker()
    }

    async fn wait_for_change(&self, seen: u64, timeout: Duration) {
        self.inner.wait_for_change(seen, timeout).await;
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.inner.ping().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{sqlite::SqliteEventStore, testsupport::TestSqlite};

    async fn log_of(events: u64) -> (Arc<dyn EventStore>, TestSqlite) {
        let db = TestSqlite::new().await;
        let store = SqliteEventStore::open(&db.path).await.unwrap();
        for i in 0..events {
            store
                .append(
                    &StreamId::of("order", i.to_string()),
                    ExpectedVersion::NoStream,
                    vec![NewEvent::new(
                        "OrderPlaced",
                        1,
                        serde_json::json!({ "i": i }),
                    )],
                )
                .await
                .unwrap();
        }
        (Arc::new(store), db)
    }

    async fn positions(store: &dyn EventStore, after: Position, limit: usize) -> Vec<Position> {
        store
            .read_all(after, limit)
            .await
            .unwrap()
            .iter()
            .map(|e| e.position)
            .collect()
    }

    #[tokio::test]
    async fn followers_at_the_tail_share_one_read_and_get_what_the_store_gives() {
        let (store, _db) = log_of(10).await;
        let direct = positions(store.as_ref(), 0, 100).await;
        let shared = SharedTail::new(store.clone());
        for _ in 0..5 {
            assert_eq!(positions(&shared, 0, 100).await, direct);
        }
        // From the middle and with a smaller limit: the same slice as the store's.
        assert_eq!(positions(&shared, direct[3], 4).await, direct[4..8]);
        assert_eq!(shared.stats(), TailStats { served: 5, read: 1 });
    }

    #[tokio::test]
    async fn the_window_grows_from_its_end_and_drops_its_oldest_events() {
        let (store, _db) = log_of(12).await;
        let direct = positions(store.as_ref(), 0, 100).await;
        let shared = SharedTail::with_capacity(store.clone(), 6);
        assert_eq!(positions(&shared, 0, 4).await, direct[..4]);
        assert_eq!(positions(&shared, direct[3], 4).await, direct[4..8]);
        assert_eq!(positions(&shared, direct[7], 4).await, direct[8..12]);
        let reads = shared.stats().read;
        // The last six are kept; an older position is read from the store, correctly.
        assert_eq!(positions(&shared, direct[5], 100).await, direct[6..]);
        assert_eq!(shared.stats().read, reads);
        assert_eq!(positions(&shared, direct[1], 3).await, direct[2..5]);
        assert_eq!(shared.stats().read, reads + 1);
        // At the end with nothing new: asks the store (nothing), keeps the window.
        assert!(positions(&shared, direct[11], 10).await.is_empty());
        assert_eq!(positions(&shared, direct[8], 10).await, direct[9..]);
    }

    #[tokio::test]
    async fn a_follower_ahead_of_the_window_restarts_it_there() {
        let (store, _db) = log_of(8).await;
        let direct = positions(store.as_ref(), 0, 100).await;
        let shared = SharedTail::new(store.clone());
        assert_eq!(positions(&shared, 0, 2).await, direct[..2]);
        assert_eq!(positions(&shared, direct[5], 10).await, direct[6..]);
        // The window now starts at direct[5]: earlier positions go to the store.
        assert_eq!(positions(&shared, direct[0], 3).await, direct[1..4]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_followers_each_get_the_whole_log_once_in_order() {
        let (store, _db) = log_of(0).await;
        let shared: Arc<dyn EventStore> = Arc::new(SharedTail::with_capacity(store.clone(), 40));
        let (writers, per_writer) = (4_u64, 50_u64);
        let total = usize::try_from(writers * per_writer).unwrap();
        let followers: Vec<_> = [7, 13, 50, 500]
            .into_iter()
            .map(|batch| {
                let shared = shared.clone();
                tokio::spawn(async move {
                    let mut subscription = crate::Subscription::new(shared, 0)
                        .batch_size(batch)
                        .idle_poll(Duration::from_millis(10));
                    let mut seen = Vec::new();
                    while seen.len() < total {
                        seen.extend(subscription.next_batch().await.unwrap());
                    }
                    seen
                })
            })
            .collect();
        let appenders: Vec<_> = (0..writers)
            .map(|w| {
                let store = store.clone();
                tokio::spawn(async move {
                    for i in 0..per_writer {
                        store
                            .append(
                                &StreamId::of("stock", w.to_string()),
                                ExpectedVersion::Any,
                                vec![NewEvent::new("Reserved", 1, serde_json::json!({ "i": i }))],
                            )
                            .await
                            .unwrap();
                    }
                })
            })
            .collect();
        for appender in appenders {
            appender.await.unwrap();
        }
        let direct = positions(store.as_ref(), 0, total + 1).await;
        assert_eq!(direct.len(), total);
        for follower in followers {
            let seen = follower.await.unwrap();
            assert_eq!(seen.iter().map(|e| e.position).collect::<Vec<_>>(), direct);
        }
    }
}
