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

/// Watches the replay counter every `every` until `stop` resolves, dropping the node's
/// cached views whenever it moves.
pub async fn forget_replayed_views(
    state: QueryState,
    every: Duration,
    stop: impl Future<Output = ()> + Send,
) {
    let watch = async {
        let mut seen = replays(&state).await;
        loop {
            tokio::time::sleep(every).await;
            let Some(now) = replays(&state).await else {
                continue;
            };
            if seen.is_some_and(|seen| seen != now) {
                forget(&state).await;
            }
            seen = Some(now);
        }
    };
    tokio::select! {
        () = watch => {}
        () = stop => {}
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

async fn forget(state: &QueryState) {
    state.products.clear_local();
    state.orders.views().clear_local();
    if let Some(shared) = &state.shared_cache {
        // Every node purges: harmless repeats, and no node depends on another being up.
        if let Err(err) = shared.purge().await {
            tracing::warn!(error = %err, "cannot purge the shared view cache after a replay");
        }
    }
    tracing::info!("a replay swapped read models in: cached views dropped");
}
