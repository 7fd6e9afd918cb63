//! The state handlers share, and the settings it is built from.
use std::{sync::Arc, time::Duration};

use axum::extract::FromRef;
use eventstore::EventStore;
use projector::Positions;
use sqlx::AnyPool;
use web::JwtVerifier;

use crate::{
    consistency::Consistency,
    order_read::{CustomerDirectory, OrderBook, OrderHistory, SalesFigures},
    read::{InventoryLevels, ProductCatalogue},
    recommendations::Recommendations,
};

/// Settings of the query API.
#[derive(Clone, Debug)]
pub struct QueryConfig {
    /// How long a query with a minimum position waits for the read models before it is
    /// answered 504.
    pub min_position_wait: Duration,
    /// How long a product view stays in the in-process cache at most.
    pub product_cache_ttl: Duration,
    /// How many product views the in-process cache holds.
    pub product_cache_capacity: u64,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            min_position_wait: Duration::from_secs(5),
            product_cache_ttl: Duration::from_secs(10),
            product_cache_capacity: 10_000,
        }
    }
}

/// Shared state of the query API: cheap to clone, everything shared.
#[derive(Clone)]
pub struct QueryState {
    /// The read models.
    pub pool: AnyPool,
    /// Access-token verification (public key only).
    pub verifier: Arc<JwtVerifier>,
    /// Waits for the projections, for read-your-writes.
    pub consistency: Consistency,
    /// Products: the list and the cached product views.
    pub products: ProductCatalogue,
    /// Stock levels.
    pub inventory: InventoryLevels,
    /// Orders: the list and the order views.
    pub orders: OrderBook,
    /// Customers' profiles.
    pub customers: CustomerDirectory,
    /// Sales figures.
    pub sales: SalesFigures,
    /// Bought-together and similar products.
    pub recommendations: Recommendations,
    /// Orders' audit trails, read from the event store; `None` until
    /// [`QueryState::with_event_store`] gives it one (the history route then answers 503).
    pub history: Option<OrderHistory>,
}

impl QueryState {
    /// State over the read models in `pool` (migrated), verifying tokens with `verifier`.
    ///
    /// `positions` is the in-process projector's position watch; without it (the projector
    /// runs elsewhere) read-your-writes polls the `projection_checkpoints` table.
    pub fn new(
        pool: AnyPool,
        verifier: Arc<JwtVerifier>,
        positions: Option<Positions>,
        config: &QueryConfig,
    ) -> Self {
        let consistency = Consistency::new(pool.clone(), positions, config.min_position_wait);
        Self {
            products: ProductCatalogue::new(pool.clone(), consistency.clone(), config),
            inventory: InventoryLevels::new(pool.clone()),
            orders: OrderBook::new(pool.clone()),
            customers: CustomerDirectory::new(pool.clone()),
            sales: SalesFigures::new(pool.clone()),
            recommendations: Recommendations::new(pool.clone()),
            history: None,
            consistency,
            verifier,
            pool,
        }
    }

    /// The same state reading orders' audit trails (`GET /api/v1/orders/{id}/history`)
    /// from the event store `store`.
    #[must_use]
    pub fn with_event_store(mut self, store: Arc<dyn EventStore>) -> Self {
        self.history = Some(OrderHistory::new(store));
        self
    }
}

impl FromRef<QueryState> for Arc<JwtVerifier> {
    fn from_ref(state: &QueryState) -> Self {
        state.verifier.clone()
    }
}

impl FromRef<QueryState> for Consistency {
    fn from_ref(state: &QueryState) -> Self {
        state.consistency.clone()
    }
}
