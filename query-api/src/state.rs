//! The state handlers share, and the settings it is built from.
use std::{sync::Arc, time::Duration};

use axum::extract::FromRef;
use cache::SharedViews;
use eventstore::EventStore;
use projector::Positions;
use sqlx::AnyPool;
use web::JwtVerifier;

use crate::{
    account_read::AccountDirectory,
    consistency::Consistency,
    inventory_read::InventoryLevels,
    order_read::{CustomerDirectory, OrderBook, OrderHistory, SalesFigures},
    read::ProductCatalogue,
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

/// Shared state of the query API: one `Arc`, so cheap to clone. axum clones the state for
/// every request (and for each extractor that takes a part of it): cloning the parts
/// themselves, a dozen caches each holding several `Arc`s and channel senders, and
/// dropping them again, was a third of an embedded node's CPU serving cached pages.
#[derive(Clone)]
pub struct QueryState(Arc<QueryParts>);

impl std::ops::Deref for QueryState {
    type Target = QueryParts;

    fn deref(&self) -> &QueryParts {
        &self.0
    }
}

/// What [`QueryState`] shares.
#[derive(Clone)]
pub struct QueryParts {
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
    /// Every account, for the back office.
    pub accounts: AccountDirectory,
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
        Self(Arc::new(QueryParts {
            products: ProductCatalogue::new(pool.clone(), consistency.clone(), config),
            inventory: InventoryLevels::new(pool.clone()),
            orders: OrderBook::new(pool.clone(), consistency.clone(), config),
            customers: CustomerDirectory::new(pool.clone()),
            accounts: AccountDirectory::new(pool.clone()),
            sales: SalesFigures::new(pool.clone()),
            recommendations: Recommendations::new(pool.clone()),
            history: None,
            shared_cache: None,
            search: None,
            consistency,
            verifier,
            pool,
        }))
    }

    /// The parts, to change while building the state (copied if already shared).
    fn parts(&mut self) -> &mut QueryParts {
        Arc::make_mut(&mut self.0)
    }

    /// The same state reading orders' audit trails (`GET /api/v1/orders/{id}/history`)
    /// from the event store `store`.
    #[must_use]
    pub fn with_event_store(mut self, store: Arc<dyn EventStore>) -> Self {
        let parts = self.parts();
        parts.consistency = parts.consistency.clone().with_log(store.clone());
        parts.history = Some(OrderHistory::new(store));
        self
    }

    /// The same state answering `GET /api/v1/search` from `index`, whose position
    /// read-your-writes waits on.
    #[must_use]
    pub fn with_search(mut self, index: SearchIndex) -> Self {
        let parts = self.parts();
        parts.consistency = parts
            .consistency
            .clone()
            .with_local(SEARCH_PROJECTION, index.subscribe());
        parts.search = Some(index);
        self
    }
}

impl QueryState {
    /// The same state with `shared` (Redis) behind the in-process product and order view
    /// caches: views are read L1, then Redis, then the read model, and this node's L1
    /// obeys the invalidations published on `shared`'s channel.
    #[must_use]
    pub fn with_shared_cache(mut self, shared: SharedViews) -> Self {
        let parts = self.parts();
        parts.products = parts.products.clone().with_shared_cache(shared.clone());
        parts.orders = parts.orders.clone().with_shared_cache(shared.clone());
        parts.shared_cache = Some(shared);
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
