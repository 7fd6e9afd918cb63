//! The state handlers share, and the settings it is built from.
use std::{sync::Arc, time::Duration};

use axum::extract::FromRef;
use cache::SharedViews;
use eventstore::EventStore;
use projector::Positions;
use sqlx::AnyPool;
use web::JwtVerifier;

use crate::{
    consistency::Consistency,
    order_read::{CustomerDirectory, OrderBook, OrderHistory, SalesFigures},
    read::{InventoryLevels, ProductCatalogue},
    recommendations::Recommendations,
    search::{SEARCH_PROJECTION, SearchIndex},
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
    /// How long an order view stays in the in-process cache at most.
    pub order_cache_ttl: Duration,
    /// How many order views the in-process cache holds.
    pub order_cache_capacity: u64,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            min_position_wait: Duration::from_secs(5),
            product_cache_ttl: Duration::from_secs(10),
            product_cache_capacity: 10_000,
            order_cache_ttl: Duration::from_secs(10),
            order_cache_capacity: 10_000,
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
    /// The shared view cache (Redis) behind the in-process ones, if this node has one
    /// ([`QueryState::with_shared_cache`]); its health is a degrading readiness check.
    pub shared_cache: Option<SharedViews>,
    /// This node's search index; `None` until [`QueryState::with_search`] gives it one
    /// (the search route then answers 503).
    pub search: Option<SearchIndex>,
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
            orders: OrderBook::new(pool.clone(), consistency.clone(), config),
            customers: CustomerDirectory::new(pool.clone()),
            sales: SalesFigures::new(pool.clone()),
            recommendations: Recommendations::new(pool.clone()),
            history: None,
            shared_cache: None,
            search: None,
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

    /// The same state answering `GET /api/v1/search` from `index`, whose position
    /// read-your-writes waits on.
    #[must_use]
    pub fn with_search(mut self, index: SearchIndex) -> Self {
        self.consistency = self
            .consistency
            .with_local(SEARCH_PROJECTION, index.subscribe());
        self.search = Some(index);
        self
    }
}

impl QueryState {
    /// The same state with `shared` (Redis) behind the in-process product and order view
    /// caches: views are read L1, then Redis, then the read model, and this node's L1
    /// obeys the invalidations published on `shared`'s channel.
    #[must_use]
    pub fn with_shared_cache(mut self, shared: SharedViews) -> Self {
        self.products = self.products.with_shared_cache(shared.clone());
        self.orders = self.orders.with_shared_cache(shared.clone());
        self.shared_cache = Some(shared);
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
