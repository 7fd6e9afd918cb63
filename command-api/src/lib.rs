//! Emporium's command API: every write in the API, decided by the pure domain and
//! appended to the event log. It never decides from a read model: prices, stock,
//! ownership and uniqueness are all read from the log itself.
//!
//! Shape: `routes/` holds one module per resource with thin handlers; [`service`] is the
//! load-decide-append loop every handler goes through; [`ordering`] is the order flow
//! (reservations in SKU order, release on shortage); [`idempotency`] replays retried
//! commands; [`auth`] issues and rotates tokens; [`sweeper`] releases reservations whose
//! order never appeared; [`carts`] keeps carts and wishlists (Redis or SQL) and
//! [`shopping`] shows them with current prices and turns a cart into an order.
#![deny(missing_docs)]

mod app;
pub mod auth;
pub mod bootstrap;
pub mod carts;
pub mod claims;
pub mod idempotency;
pub mod ordering;
pub mod placements;
pub mod routes;
pub mod service;
pub mod shopping;
pub mod state;
pub mod sweeper;
pub mod tails;

pub use app::{BootstrapAdmin, CommandApiConfig, build_state, carts_check, router, routes};
pub use state::AppState;
