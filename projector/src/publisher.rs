//! The integration publisher: the log, mapped to integration events, published to the bus.
//!
//! It is a checkpointed projection of the log whose "rows" are messages: for each batch it
//! maps the events after its checkpoint (row `integration-publisher` of
//! `projection_checkpoints`), publishes them and waits until the bus has accepted every one
//! (each JetStream `PublishAck`), and only then commits the checkpoint. So:
//! - nothing is skipped: a failed publish (NATS down, an ack timed out) fails the batch,
//!   the checkpoint stays, and the runner retries the same batch with a back-off until it
//!   goes through: an outage delays publishing and loses nothing (invariant 8);
//! - a crash between publishing and committing republishes the batch, and JetStream drops
//!   the duplicates by `Nats-Msg-Id` (the domain event's id) within its duplicate window;
//! - it runs under the same [`ProjectionRunner`] as the SQL projections, so on PostgreSQL
//!   one process owns it (advisory lock) and another takes over when that one dies.
//!
//! No transaction is held while publishing (a NATS outage must not hold a database lock);
//! the checkpoint is moved with a compare-and-set on the position the batch started from.
use std::sync::Arc;

use async_trait::async_trait;
use bus::{Bus, Mapper};
use chrono::Utc;
use eventstore::{EventStore, Position, RecordedEvent};
use sqlx::AnyPool;

use crate::runtime::{BatchOutcome, ProjectionRunner, RunnerConfig, Sink, checkpoint, timestamp};

/// The publisher's checkpoint name.
pub const NAME: &str = "integration-publisher";

/// Publishes the log's integration events to a [`Bus`]; run it with [`runner`].
pub struct IntegrationPublisher {
    bus: Arc<dyn Bus>,
    mapper: Mapper,
}

impl IntegrationPublisher {
    /// A publisher of `store`'s events to `bus`.
    pub fn new(store: Arc<dyn EventStore>, bus: Arc<dyn Bus>) -> Self {
        Self {
            bus,
            mapper: Mapper::new(store),
        }
    }
}

#[async_trait]
impl Sink for IntegrationPublisher {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn apply_batch(
        &self,
        pool: &AnyPool,
        committed: Position,
        events: &Arc<[RecordedEvent]>,
    ) -> anyhow::Result<BatchOutcome> {
        let stored = checkpoint(pool, NAME).await?;
        if stored < committed {
            return Ok(BatchOutcome::CheckpointMovedBack { stored });
        }
        let fresh = &events[events.partition_point(|e| e.position <= stored)..];
        let Some(last) = fresh.last().map(|e| e.position) else {
            return Ok(BatchOutcome::Committed {
                checkpoint: stored,
                applied: 0,
            });
        };
        let integration = self.mapper.map_batch(fresh).await?;
        self.bus.publish(&integration).await?;
        let moved = sqlx::query(
            "UPDATE projection_checkpoints SET position = $2, updated_at = $3 \
             WHERE name = $1 AND position = $4",
        )
        .bind(NAME)
        .bind(i64::try_from(last)?)
        .bind(timestamp(Utc::now()))
        .bind(i64::try_from(stored)?)
        .execute(pool)
        .await?
        .rows_affected();
        if moved == 0 {
            // Someone moved the checkpoint meanwhile (a reset, or a second publisher on a
            // store without ownership locks): resume from wherever it is now. What was just
            // published is harmless either way (deduplicated or republished).
            return Ok(BatchOutcome::CheckpointMovedBack {
                stored: checkpoint(pool, NAME).await?,
            });
        }
        Ok(BatchOutcome::Committed {
            checkpoint: last,
            applied: integration.len(),
        })
    }
}

/// A runner of the publisher of `store`'s events to `bus`, keeping its checkpoint in `pool`:
/// spawn its `run_until_stopped` next to the projector.
pub fn runner(
    store: Arc<dyn EventStore>,
    pool: AnyPool,
    bus: Arc<dyn Bus>,
    config: RunnerConfig,
) -> ProjectionRunner {
    let publisher = Arc::new(IntegrationPublisher::new(store.clone(), bus));
    ProjectionRunner::for_sink(publisher, store, pool, config)
}
