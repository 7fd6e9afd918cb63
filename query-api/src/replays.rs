//! Caches after a replay.
//!
//! Cached views and list pages are validated against the projections' checkpoints
//! ([`cache`]), and a replay (`emporium replay`) swaps rebuilt rows in under the checkpoint
//! the projection already had: the checkpoint alone cannot tell a node that what it cached
//! is gone. Each swap therefore also counts itself in the [`REPLAYS`] row, in the same
//! transaction, and every query node polls that row: when it moves, the node empties its
//! in-process caches and purges the shared one (Redis), so a repaired read model is what
//! every reader sees within one poll.
use std::{future::Future, time::Duration};

use projector::REPLAYS;

use crate::QueryState;

/// How often a query node looks at the replay counter.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// A query node's watch on the replay counter.
pub struct ReplayWatch {
    state: QueryState,
    seen: Option<u64>,
}

impl ReplayWatch {
    /// Takes the first reading now: a swap after this call is seen by [`Self::run`].
    pub async fn new(state: QueryState) -> Self {
        let seen = replays(&state).await;
        Self { state, seen }
    }

    /// Polls the counter every `every` until `stop` resolves, dropping the node's cached
    /// views whenever it has moved.
    pub async fn run(mut self, every: Duration, stop: impl Future<Output = ()> + Send) {
        let watch = async {
            loop {
                tokio::time::sleep(every).await;
                let Some(now) = replays(&self.state).await else {
                    continue;
                };
                if self.seen.is_some_and(|seen| seen != now) && !forget(&self.state).await {
                    continue;
                }
                self.seen = Some(now);
            }
        };
        tokio::select! {
            () = watch => {}
            () = stop => {}
        }
    }
}

/// The replay counter, or `None` while the database cannot be read (the next poll retries).
async fn replays(state: &QueryState) -> Option<u64> {
    match projector::checkpoint(&state.pool, REPLAYS).await {
        Ok(count) => Some(count),
        Err(err) => {
            tracing::warn!(error = %err, "cannot read the replay counter");
            None
        }
    }
}

/// Drops the node's cached views: Redis first, so the L1 cannot refill from it with what
/// the swap replaced. `false` when Redis could not be purged: the L1 is emptied anyway, and
/// the next poll tries both again.
async fn forget(state: &QueryState) -> bool {
    let purged = match &state.shared_cache {
        // Every node purges: harmless repeats, and no node depends on another being up.
        Some(shared) => match shared.purge().await {
            Ok(_) => true,
            Err(err) => {
                tracing::warn!(error = %err, "cannot purge the shared view cache after a replay");
                false
            }
        },
        None => true,
    };
    state.products.clear_local();
    state.orders.views().clear_local();
    tracing::info!("a replay swapped read models in: cached views dropped");
    purged
}
