//! Projector: folds the event log into read models that the query API serves.
//!
//! A [`Projection`] turns events into SQL rows (one SQL text for SQLite and PostgreSQL,
//! through `sqlx::AnyPool`); a [`ProjectionRunner`] follows the log from the projection's
//! checkpoint and applies each batch in one transaction together with the new checkpoint,
//! so killing it at any moment and starting again gives the same rows as an uninterrupted
//! run (invariant 4), and replaying from position 0 into empty tables gives them too
//! (invariant 5). On PostgreSQL one process owns each projection (an advisory lock) and
//! another takes over when it dies. [`Projector`] runs every projection as a task and
//! exposes their positions ([`Positions`]) so an in-process query API can wait for
//! read-your-writes without polling, and whether any is stuck at an event it cannot
//! apply ([`Stalls`]) for the readiness probe. The integration publisher ([`publisher`]) is a
//! [`Sink`] of the same runtime: the log's integration events, published to the bus. A
//! [`Replayer`] rebuilds projections from position 0 into shadow tables and swaps them in
//! while the old ones keep serving.
//!
//! Compose it in a process like this (the pool's database is migrated by the event
//! store's migrator, which includes the read models' tables):
//!
//! ```no_run
//! # async fn compose(store: std::sync::Arc<dyn eventstore::EventStore>, pool: sqlx::AnyPool) {
//! let projector = projector::Projector::new(
//!     store,
//!     pool,
//!     &projector::RunnerConfig::default(),
//!     projector::default_projections(),
//! );
//! let positions = projector.positions(); // hand to the query API
//! tokio::spawn(projector.run_until_stopped(async { /* shutdown signal */ }));
//! # let _ = positions;
//! # }
//! ```
#![deny(missing_docs)]

pub mod batch;
pub mod bought_together;
pub mod catalog;
pub mod committer;
pub mod customers;
pub mod inventory;
pub mod order_counts;
pub mod orders;
pub mod publisher;
pub mod replay;
pub mod runtime;
pub mod sales;
pub mod stalls;

use std::sync::Arc;

pub use bought_together::BoughtTogetherProjection;
pub use catalog::CatalogProjection;
pub use committer::{Batch, apply_batches};
pub use customers::CustomersProjection;
pub use inventory::InventoryProjection;
pub use orders::OrdersProjection;
pub use replay::{REPLAYS, ReplayConfig, ReplayProgress, ReplayReport, Replayer};
pub use runtime::{
    BatchOutcome, Positions, Projection, ProjectionRunner, Projector, RunnerConfig, Sink,
    apply_batch, checkpoint, is_postgres, timestamp,
};
pub use sales::SalesProjection;
pub use stalls::{Stall, Stalls};

/// Every projection this crate provides: `catalog`, `inventory`, `orders`, `customers`,
/// `sales` and `bought_together`.
pub fn default_projections() -> Vec<Arc<dyn Projection>> {
    vec![
        Arc::new(CatalogProjection),
        Arc::new(InventoryProjection),
        Arc::new(OrdersProjection),
        Arc::new(CustomersProjection),
        Arc::new(SalesProjection),
        Arc::new(BoughtTogetherProjection),
    ]
}
