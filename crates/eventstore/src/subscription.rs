//! Catch-up subscriptions to the whole log: history first, then live events.
use std::{sync::Arc, time::Duration};

use crate::{EventStore, Position, RecordedEvent, StoreError};

/// Follows the log from a position. Delivers every event exactly once, in position order,
/// because it only ever asks [`EventStore::read_all`] for what follows the last position
/// it delivered, and `read_all` only returns positions that can no longer be preceded.
pub struct Subscription {
    store: Arc<dyn EventStore>,
    after: Position,
    batch_size: usize,
    idle_poll: Duration,
}

impl Subscription {
    /// A subscription delivering events after `after` (0: from the beginning).
    pub fn new(store: Arc<dyn EventStore>, after: Position) -> Self {
        Self {
            store,
            after,
            batch_size: 500,
            idle_poll: Duration::from_millis(250),
        }
    }

    /// How many events one [`Subscription::next_batch`] returns at most.
    #[must_use]
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    /// How often to look for new events when no wake-up arrives (other processes' appends
    /// on backends without notifications).
    #[must_use]
    pub fn idle_poll(mut self, idle_poll: Duration) -> Self {
        self.idle_poll = idle_poll;
        self
    }

    /// The position of the last event delivered.
    pub fn position(&self) -> Position {
        self.after
    }

    /// The next events after the last delivered one, waiting until there is at least one.
    /// An error leaves the position unchanged, so calling again resumes without loss.
    pub async fn next_batch(&mut self) -> Result<Vec<RecordedEvent>, StoreError> {
        loop {
            let seen = self.store.change_marker();
            let events = self.store.read_all(self.after, self.batch_size).await?;
            if let Some(last) = events.last() {
                self.after = last.position;
                return Ok(events);
            }
            self.store.wait_for_change(seen, self.idle_poll).await;
        }
    }
}
