//! Orders: placement with price snapshots, the status machine, cancellation and shipments.
//!
//! Stream `order-{id}`. Invariants: an order has 1..=50 lines with distinct SKUs in one
//! currency and a total computed without overflow; its status only moves along
//! `PLACED → PAID → PACKED → SHIPPED → DELIVERED` or `PLACED | PAID | PACKED → CANCELLED`;
//! customers act only on their own orders and may cancel only before packing. Stock work
//! that follows (release on cancel, commit on ship) is named by [`OrderEvent::stock_effect`].

mod command;
mod decide;
mod error;
mod event;
mod state;
mod values;

pub use command::OrderCommand;
pub use decide::{MAX_LINES, MAX_QUANTITY};
pub use error::OrderError;
pub use event::{OrderEvent, StockEffect};
pub use state::{OrderState, Shipment};
pub use values::{Actor, OrderLine, OrderStatus, PricedLine, ShippingAddress};

use crate::aggregate::Aggregate;

/// The order aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order;

impl Aggregate for Order {
    const NAME: &'static str = "order";
    type State = OrderState;
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;

    fn decide(state: &OrderState, command: OrderCommand) -> Result<Vec<OrderEvent>, OrderError> {
        decide::decide(state, command)
    }

    fn evolve(state: OrderState, event: &OrderEvent) -> OrderState {
        state::evolve(state, event)
    }
}
