//! Write-through of product and order views into the shared cache (Redis).
//!
//! [`ViewCacheWriter`] follows the log with its own checkpoint (`view_cache` in
//! `projection_checkpoints`). For each batch it collects the products and orders the
//! events touched, waits until the `catalog` and `orders` projections have committed the
//! batch, renders the touched views from the read model with the same code the reads use
//! ([`render_product`], [`render_orders`]), writes them to Redis by compare-and-set (labelled
//! with the projection's checkpoint read before rendering) and publishes one invalidation
//! naming them, which evicts them from every query node's L1. Only then does its checkpoint
//! move, so nothing is lost: a Redis failure is retried with a back-off (doubling up to
//! [`RunnerConfig::backoff_max`]) until it succeeds.
//!
//! After an outage the writer purges the view namespace before writing again: entries
//! written before it may be stale, and a purge is cheaper than proving which. Reads stay
//! correct meanwhile, because every hit is validated against the read model's checkpoint or
//! version ([`cache`]), and that is also why a duplicate writer (two projector processes)
//! is harmless: it only repeats compare-and-set writes.
//!
//! Built on the projector's public runtime API ([`Subscription`], [`projector::checkpoint`],
//! [`Positions`]) rather than [`projector::ProjectionRunner`], whose batches are SQL
//! transactions: this sink writes to Redis and must not hold the read model's write lock
//! (SQLite) while it waits for the projections it reads.
use std::{collections::BTreeSet, future::Future, sync::Arc, time::Duration};

use cache::{CacheError, SharedViews, Stored};
use chrono::Utc;
use domain::{aggregate::Aggregate, catalog::Product, order::Order};
use eventstore::{EventStore, Position, RecordedEvent, Subscription};
use projector::{
    CatalogProjection, OrdersProjection, Positions, RunnerConfig, runtime::stream_key,
};
use sqlx::AnyPool;
use web::health;

use crate::{
    order_read::{ORDER_VIEWS, render_orders},
    read::{PRODUCT_VIEWS, render_product},
};

/// The readiness check of a node that uses Redis: `cache`, degrading (the node still
/// answers, from the read models, while Redis is down).
pub fn readiness(shared: SharedViews) -> health::Check {
    health::Check::degrading("cache", move || {
        let shared = shared.clone();
        async move { shared.check().await }
    })
}

/// The products and orders (ids) a batch of events touched.
#[derive(Debug, Default, PartialEq, Eq)]
struct Touched {
    products: BTreeSet<String>,
    orders: BTreeSet<String>,
}

impl Touched {
    fn of(events: &[RecordedEvent]) -> Self {
        let mut touched = Self::default();
        for event in events {
            let (category, ids) = match event.stream.category() {
                Product::NAME => (Product::NAME, &mut touched.products),
                Order::NAME => (Order::NAME, &mut touched.orders),
                _ => continue,
            };
            if let Ok(id) = stream_key(&event.stream, category) {
                ids.insert(id.to_owned());
            }
        }
        touched
    }
}

/// A failure talking to Redis, as opposed to the read model.
#[derive(Debug, thiserror::Error)]
#[error("the shared cache failed: {0}")]
struct RedisFailed(#[from] CacheError);

/// Writes the views of touched products and orders into Redis after the projections that
/// hold them have committed. See the module documentation.
pub struct ViewCacheWriter {
    store: Arc<dyn EventStore>,
    pool: AnyPool,
    shared: SharedViews,
    positions: Option<Positions>,
    config: RunnerConfig,
}

impl ViewCacheWriter {
    /// Its checkpoint's name in `projection_checkpoints`.
    pub const NAME: &'static str = "view_cache";

    /// A writer following `store`, rendering from the read models in `pool` (migrated),
    /// writing to `shared`. `positions`: the in-process projector's, to wait on its
    /// commits instead of polling the checkpoint table. Batch size, idle poll and back-off
    /// come from `config`.
    pub fn new(
        store: Arc<dyn EventStore>,
        pool: AnyPool,
        shared: SharedViews,
        positions: Option<Positions>,
        config: RunnerConfig,
    ) -> Self {
        Self {
            store,
            pool,
            shared,
            positions,
            config,
        }
    }

    /// Runs until `shutdown` resolves. Stopping at any point is safe: the next run resumes
    /// from the checkpoint and writes again what was not confirmed.
    pub async fn run_until_stopped(&self, shutdown: impl Future<Output = ()>) {
        tokio::select! {
            biased;
            () = shutdown => tracing::info!("view cache writer stopped"),
            () = self.run_forever() => {}
        }
    }

    async fn run_forever(&self) {
        let mut pause = self.config.backoff_initial;
        loop {
            if let Err(err) = self.run().await {
                tracing::error!(error = ?err, "view cache writer failed; restarting after a back-off");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(self.config.backoff_max);
            }
        }
    }

    async fn run(&self) -> anyhow::Result<()> {
        let mut committed = ensure_checkpoint(&self.pool).await?;
        tracing::info!(checkpoint = committed, "view cache writer running");
        let mut subscription = Subscription::new(self.store.clone(), committed)
            .batch_size(self.config.batch_size)
            .idle_poll(self.config.idle_poll);
        let mut pause = self.config.backoff_initial;
        let mut outage = false;
        loop {
            let batch = match subscription.next_batch().await {
                Ok(batch) => batch,
                Err(err) => {
                    tracing::warn!(error = %err, "view cache writer cannot read the log; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(self.config.backoff_max);
                    continue;
                }
            };
            let end = batch.last().map_or(committed, |e| e.position);
            let touched = Touched::of(&batch);
            loop {
                match self.write_through(&touched, end, &mut outage).await {
                    Ok(()) => break,
                    Err(err) => {
                        outage |= err.is::<RedisFailed>();
                        tracing::warn!(error = %err, end, "view cache write-through failed; retrying after a back-off");
                        tokio::time::sleep(pause).await;
                        pause = (pause * 2).min(self.config.backoff_max);
                    }
                }
            }
            pause = self.config.backoff_initial;
            advance_checkpoint(&self.pool, end).await?;
            committed = end;
        }
    }

    /// Renders and writes the `touched` views once their projections have reached `end`,
    /// then publishes their invalidation. Purges first when Redis failed before.
    async fn write_through(
        &self,
        touched: &Touched,
        end: Position,
        outage: &mut bool,
    ) -> anyhow::Result<()> {
        if touched.products.is_empty() && touched.orders.is_empty() {
            return Ok(());
        }
        if !touched.products.is_empty() {
            self.reached(CatalogProjection::NAME, end).await?;
        }
        if !touched.orders.is_empty() {
            self.reached(OrdersProjection::NAME, end).await?;
        }
        if *outage {
            let removed = self.shared.purge().await.map_err(RedisFailed)?;
            tracing::info!(removed, "purged the view cache after a Redis outage");
            *outage = false;
        }
        let mut keys = Vec::new();
        if !touched.products.is_empty() {
            // Read before rendering: the views are at least as new as the read model here.
            let as_of = self.position(CatalogProjection::NAME).await?;
            let mut entries = Vec::new();
            for id in &touched.products {
                if let Some(view) = render_product(&self.pool, id).await? {
                    let stored = Stored {
                        version: view.version,
                        as_of,
                        view: serde_json::to_string(&view)?,
                    };
                    entries.push((id.clone(), stored));
                }
                keys.push(format!("{PRODUCT_VIEWS}:{id}"));
            }
            self.shared
                .put_all(PRODUCT_VIEWS, &entries)
                .await
                .map_err(RedisFailed)?;
        }
        if !touched.orders.is_empty() {
            let as_of = self.position(OrdersProjection::NAME).await?;
            let ids: Vec<String> = touched.orders.iter().cloned().collect();
            let mut entries = Vec::new();
            for (id, version, view) in render_orders(&self.pool, &ids).await? {
                let stored = Stored {
                    version,
                    as_of,
                    view: serde_json::to_string(&view)?,
                };
                entries.push((id, stored));
            }
            keys.extend(ids.iter().map(|id| format!("{ORDER_VIEWS}:{id}")));
            self.shared
                .put_all(ORDER_VIEWS, &entries)
                .await
                .map_err(RedisFailed)?;
        }
        self.shared.publish(&keys).await.map_err(RedisFailed)?;
        Ok(())
    }

    /// The checkpoint of projection `name`: the in-process watch, else the table.
    async fn position(&self, name: &str) -> anyhow::Result<Position> {
        match self.positions.as_ref().and_then(|p| p.current(name)) {
            Some(position) => Ok(position),
            None => projector::checkpoint(&self.pool, name).await,
        }
    }

    /// Returns once projection `name` has committed `end`.
    async fn reached(&self, name: &str, end: Position) -> anyhow::Result<()> {
        if let Some(positions) = &self.positions
            && positions.current(name).is_some()
            && positions.wait_for(name, end).await
        {
            return Ok(());
        }
        let mut pause = Duration::from_millis(10);
        while projector::checkpoint(&self.pool, name).await? < end {
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(self.config.idle_poll);
        }
        Ok(())
    }
}

/// Creates the writer's checkpoint row at 0 if it is missing; returns the checkpoint.
async fn ensure_checkpoint(pool: &AnyPool) -> anyhow::Result<Position> {
    sqlx::query(
        "INSERT INTO projection_checkpoints (name, position, updated_at) VALUES ($1, 0, $2) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(ViewCacheWriter::NAME)
    .bind(projector::timestamp(Utc::now()))
    .execute(pool)
    .await?;
    projector::checkpoint(pool, ViewCacheWriter::NAME).await
}

/// Moves the writer's checkpoint forward to `to` (never back, should two writers run).
async fn advance_checkpoint(pool: &AnyPool, to: Position) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE projection_checkpoints SET position = $2, updated_at = $3 \
         WHERE name = $1 AND position < $2",
    )
    .bind(ViewCacheWriter::NAME)
    .bind(i64::try_from(to)?)
    .bind(projector::timestamp(Utc::now()))
    .execute(pool)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use eventstore::{EventMetadata, StreamId};

    use super::*;

    fn event(stream: &str, position: Position) -> RecordedEvent {
        RecordedEvent {
            event_id: uuid::Uuid::now_v7(),
            stream: StreamId::new(stream).unwrap(),
            version: 1,
            position,
            event_type: "Anything".into(),
            schema_version: 1,
            payload: serde_json::json!({}).into(),
            metadata: EventMetadata::default(),
            recorded_at: Utc::now(),
        }
    }

    #[test]
    fn a_batch_touches_the_products_and_orders_of_its_streams() {
        let touched = Touched::of(&[
            event("product-p1", 1),
            event("stock-SKU-1", 2),
            event("order-o1", 3),
            event("product-p1", 4),
            event("account-a1", 5),
            event("product-p2", 6),
        ]);
        assert_eq!(
            touched,
            Touched {
                products: ["p1".to_owned(), "p2".to_owned()].into(),
                orders: ["o1".to_owned()].into(),
            }
        );
    }
}
