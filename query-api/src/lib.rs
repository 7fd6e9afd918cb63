//! Query API: the REST reads of Emporium, served from the read models the projector
//! writes (and, for product and order views, from the view cache in front of them: in
//! process, and in Redis with [`QueryState::with_shared_cache`], which the projector side
//! fills through [`ViewCacheWriter`]).
//!
//! Every GET accepts `X-Emporium-Min-Position: N` (or `?minPosition=N`): it is answered
//! only once the projections it reads have reached the log position a command answered
//! with, or 504 after [`QueryConfig::min_position_wait`] — read-your-writes on an
//! eventually consistent system ([`consistency`]). Errors are problem documents
//! ([`web::ApiError`]); every SQL value is bound ([`read`]).
//!
//! Shape: `routes/` holds one module per resource with thin handlers; [`read`] (catalogue),
//! [`inventory_read`] (stock), [`order_read`] (orders, order histories, customers, sales) and
//! [`account_read`] (the back office's account directory) hold the repositories and their
//! SQL; [`views`] and [`order_views`] the JSON shapes. Compose it
//! with an in-process projector by passing its positions, and give it the event store for
//! orders' audit trails (without one, `GET /api/v1/orders/{id}/history` answers 503) and
//! a [`search::SearchIndex`] for full-text search (without one, `GET /api/v1/search`
//! answers 503; its [`search::SearchProjection`] keeps it current):
//!
//! ```no_run
//! # fn compose(pool: sqlx::AnyPool, verifier: std::sync::Arc<web::JwtVerifier>, positions: projector::Positions, store: std::sync::Arc<dyn eventstore::EventStore>) {
//! let state = query_api::QueryState::new(pool, verifier, Some(positions), &query_api::QueryConfig::default())
//!     .with_event_store(store);
//! let router = query_api::router(state); // or merge query_api::routes(state) with other services
//! # let _ = router;
//! # }
//! ```
#![deny(missing_docs)]

pub mod account_read;
mod app;
pub mod cache_writer;
pub mod checkpoint_feed;
pub mod checkpoint_reads;
pub mod consistency;
pub mod inventory_read;
pub mod order_read;
pub mod order_views;
pub mod paging;
pub mod read;
pub mod recommendations;
pub mod replays;
pub mod routes;
pub mod search;
mod sql_filter;
pub mod state;
pub mod views;

pub use app::{router, routes};
pub use cache_writer::ViewCacheWriter;
pub use state::{QueryConfig, QueryState};
