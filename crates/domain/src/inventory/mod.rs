//! Inventory: stock of one SKU, reserved per order and committed when shipped.
//!
//! Stream `stock-{sku}`. Invariants: `available() = on_hand - reserved_total()` is never
//! negative in any reachable state (stock is never oversold), `on_hand` always covers what
//! is reserved, and `committed` only grows. Each order holds at most one reservation.

mod command;
mod decide;
mod error;
mod event;
mod state;

pub use command::StockCommand;
pub use decide::{MAX_ADJUSTMENT, MAX_RESERVATION};
pub use error::StockError;
pub use event::StockEvent;
pub use state::{Reservations, StockState};

use crate::aggregate::Aggregate;

/// The stock aggregate, one per SKU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stock;

impl Aggregate for Stock {
    const NAME: &'static str = "stock";
    type State = StockState;
    type Command = StockCommand;
    type Event = StockEvent;
    type Error = StockError;

    fn decide(state: &StockState, command: StockCommand) -> Result<Vec<StockEvent>, StockError> {
        decide::decide(state, command)
    }

    fn evolve(state: StockState, event: &StockEvent) -> StockState {
        state::evolve(state, event)
    }
}
