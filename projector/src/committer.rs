//! One transaction for the batches of several projections.
//!
//! Every projection of a [`Projector`](crate::Projector) follows the log on its own (its
//! own owner lock, checkpoint, back-off), and the same new events wake them all, so their
//! batches arrive together. Committed one by one, each batch cost a `BEGIN`, a `COMMIT`
//! (a disk sync on SQLite) and a checkpoint notification, after which every split query
//! node reads the checkpoint table again: six times per order at low rates, where most
//! orders are a batch of their own. The committer task takes the batches waiting and
//! applies them in one transaction, each exactly as [`apply_batch`] does (its own
//! checkpoint row locked, only the events above it applied, its checkpoint moved).
//!
//! Only small batches are combined (at most [`COMBINE_MAX_EVENTS`] events): a large one
//! already spreads its transaction over many rows, and commits on its own connection in
//! parallel with the others.
//!
//! If that transaction fails, each batch is applied again in a transaction of its own, so
//! one projection's failure neither blocks nor fails the others: only its own batch
//! reports the error, and its runner retries it after a back-off as before.
use std::{collections::BTreeSet, sync::Arc};

use async_trait::async_trait;
use chrono::Utc;
use eventstore::{Position, RecordedEvent};
use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};

pub use crate::runtime::Batch;
use crate::runtime::{
    BatchOutcome, Projection, Sink, apply_batch, apply_in, begin_batch, timestamp, write_turn,
};

/// Most batches in one transaction (a projector has one per projection).
const MAX_BATCHES: usize = 32;

/// Batches of more events than this commit on their own, in parallel: their transaction's
/// fixed cost is small beside their rows, and one transaction of several such batches
/// runs all their statements one after another on one connection, which under load made
/// the projections fall seconds behind the log.
pub const COMBINE_MAX_EVENTS: usize = 32;

/// Applies every batch in one transaction; if that fails, each in its own. Returns each
/// batch's outcome, in the order given.
pub async fn apply_batches(
    pool: &AnyPool,
    batches: &[Batch<'_>],
) -> Vec<anyhow::Result<BatchOutcome>> {
    if let [one] = batches {
        return vec![apply_batch(pool, one.projection, one.committed, one.events).await];
    }
    match apply_together(pool, batches).await {
        Ok(outcomes) => outcomes.into_iter().map(Ok).collect(),
        Err(err) => {
            tracing::warn!(error = ?err, "a combined projection transaction failed; applying each batch on its own");
            let mut outcomes = Vec::with_capacity(batches.len());
            for batch in batches {
                outcomes
                    .push(apply_batch(pool, batch.projection, batch.committed, batch.events).await);
            }
            outcomes
        }
    }
}

async fn apply_together(
    pool: &AnyPool,
    batches: &[Batch<'_>],
) -> anyhow::Result<Vec<BatchOutcome>> {
    let names: BTreeSet<&str> = batches.iter().map(|b| b.projection.name()).collect();
    anyhow::ensure!(
        names.len() == batches.len(),
        "two batches of one projection cannot share a transaction"
    );
    let _turn = write_turn(pool).await;
    let mut tx = begin_batch(pool).await?;
    let outcomes = apply_in(&mut tx, batches, &timestamp(Utc::now())).await?;
    tx.commit().await?;
    Ok(outcomes)
}

struct Job {
    projection: Arc<dyn Projection>,
    committed: Position,
    events: Arc<[RecordedEvent]>,
    reply: oneshot::Sender<anyhow::Result<BatchOutcome>>,
}

/// A projection whose batches go through a committer task.
pub(crate) struct CommittedSink {
    projection: Arc<dyn Projection>,
    queue: mpsc::Sender<Job>,
}

#[async_trait]
impl Sink for CommittedSink {
    fn name(&self) -> &'static str {
        self.projection.name()
    }

    async fn apply_batch(
        &self,
        pool: &AnyPool,
        committed: Position,
        events: &Arc<[RecordedEvent]>,
    ) -> anyhow::Result<BatchOutcome> {
        if events.len() > COMBINE_MAX_EVENTS {
            return apply_batch(pool, &*self.projection, committed, events).await;
        }
        let (reply, outcome) = oneshot::channel();
        let job = Job {
            projection: self.projection.clone(),
            committed,
            events: events.clone(),
            reply,
        };
        let stopped = || anyhow::anyhow!("the projection committer stopped");
        self.queue.send(job).await.map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

/// The committer task of one projector, before it runs.
pub(crate) struct Committer {
    pool: AnyPool,
    queue: mpsc::Sender<Job>,
    jobs: mpsc::Receiver<Job>,
}

impl Committer {
    pub(crate) fn new(pool: AnyPool) -> Self {
        let (queue, jobs) = mpsc::channel(MAX_BATCHES);
        Self { pool, queue, jobs }
    }

    /// A sink for `projection` that commits through this committer.
    pub(crate) fn sink(&self, projection: Arc<dyn Projection>) -> CommittedSink {
        CommittedSink {
            projection,
            queue: self.queue.clone(),
        }
    }

    /// Commits the batches that arrive until every sink is dropped.
    pub(crate) async fn run(self) {
        let Self {
            pool,
            queue,
            mut jobs,
        } = self;
        drop(queue);
        let mut waiting = Vec::with_capacity(MAX_BATCHES);
        while jobs.recv_many(&mut waiting, MAX_BATCHES).await > 0 {
            let batches: Vec<Batch<'_>> = waiting
                .iter()
                .map(|job: &Job| Batch {
                    projection: &*job.projection,
                    committed: job.committed,
                    events: &job.events,
                })
                .collect();
            let outcomes = apply_batches(&pool, &batches).await;
            drop(batches);
            for (job, outcome) in waiting.drain(..).zip(outcomes) {
                // A runner that stopped meanwhile no longer waits; its batch stands.
                let _ = job.reply.send(outcome);
            }
        }
    }
}
