//! Committed checkpoints, read once for many concurrent requests.
//!
//! A query node without an in-process projector learns where the read models stand from
//! the `projection_checkpoints` table. Reading it per request made every cached list page
//! cost two primary-key queries, which bounded the split node's page rate by PostgreSQL.
//! Here concurrent callers share one read of the whole table, yet none gets an answer
//! older than its own arrival: a caller takes only a read that *started* after it arrived,
//! so what it sees is at least as new as a read of its own would have been.
use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
};

use sqlx::{AnyPool, Row};

/// Every projection's committed position at one moment.
pub type Snapshot = Arc<HashMap<String, u64>>;

/// Coalesces concurrent reads of the checkpoint table.
#[derive(Debug, Default)]
pub struct CheckpointReads {
    /// How many reads have started; a read takes its number before its query is sent.
    started: AtomicU64,
    /// One read at a time; the others queue here (in arrival order) for its result.
    seat: tokio::sync::Mutex<()>,
    /// The newest completed read and the number it started with.
    latest: Mutex<Option<(u64, Snapshot)>>,
}

impl CheckpointReads {
    /// Every checkpoint as committed no earlier than this call.
    ///
    /// # Errors
    /// When the table cannot be read.
    pub async fn fresh(&self, pool: &AnyPool) -> anyhow::Result<Snapshot> {
        let arrived = self.started.load(Ordering::Acquire);
        let _seat = self.seat.lock().await;
        if let Some(snapshot) = self.latest_started_after(arrived) {
            return Ok(snapshot);
        }
        let number = self.started.fetch_add(1, Ordering::AcqRel) + 1;
        let snapshot = Arc::new(read_all(pool).await?);
        *self.latest.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((number, snapshot.clone()));
        Ok(snapshot)
    }

    fn latest_started_after(&self, arrived: u64) -> Option<Snapshot> {
        let latest = self.latest.lock().unwrap_or_else(PoisonError::into_inner);
        latest
            .as_ref()
            .filter(|(number, _)| *number > arrived)
            .map(|(_, snapshot)| snapshot.clone())
    }
}

/// Every row of `projection_checkpoints`, read now.
pub(crate) async fn read_all(pool: &AnyPool) -> anyhow::Result<HashMap<String, u64>> {
    let rows = sqlx::query("SELECT name, position FROM projection_checkpoints")
        .fetch_all(pool)
        .await?;
    rows.iter()
        .map(|row| {
            let name: String = row.try_get("name")?;
            let position: i64 = row.try_get("position")?;
            Ok((name, u64::try_from(position)?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn table() -> AnyPool {
        sqlx::any::install_default_drivers();
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        sqlx::query("CREATE TABLE projection_checkpoints (name TEXT PRIMARY KEY, position BIGINT)")
            .execute(&pool)
            .await
            .unwrap();
        pool
    }

    async fn set(pool: &AnyPool, name: &str, position: i64) {
        sqlx::query(
            "INSERT INTO projection_checkpoints (name, position) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET position = excluded.position",
        )
        .bind(name)
        .bind(position)
        .execute(pool)
        .await
        .unwrap();
    }

    #[tokio::test]
    async fn a_read_sees_every_commit_made_before_it_was_asked() {
        let pool = table().await;
        let reads = CheckpointReads::default();
        set(&pool, "catalog", 3).await;
        assert_eq!(reads.fresh(&pool).await.unwrap()["catalog"], 3);
        set(&pool, "catalog", 7).await;
        set(&pool, "inventory", 2).await;
        let snapshot = reads.fresh(&pool).await.unwrap();
        assert_eq!((snapshot["catalog"], snapshot["inventory"]), (7, 2));
    }

    #[tokio::test]
    async fn concurrent_callers_share_reads() {
        let pool = table().await;
        set(&pool, "catalog", 1).await;
        let reads = Arc::new(CheckpointReads::default());
        let callers: Vec<_> = (0..64)
            .map(|_| {
                let (reads, pool) = (reads.clone(), pool.clone());
                tokio::spawn(async move { reads.fresh(&pool).await.unwrap()["catalog"] })
            })
            .collect();
        for caller in callers {
            assert_eq!(caller.await.unwrap(), 1);
        }
        assert!(reads.started.load(Ordering::Acquire) < 64);
    }
}
