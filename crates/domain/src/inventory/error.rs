//! Why a stock command is refused.

use thiserror::Error;

use crate::ids::{OrderId, Sku};
use crate::validation::Invalid;

/// A stock rule that a command would break.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StockError {
    /// Some fields are malformed; all of them are listed.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// An adjustment names a SKU other than the one this stream keeps.
    #[error("this stream keeps stock of SKU {expected}, not {actual}")]
    SkuMismatch {
        /// The stream's SKU.
        expected: Sku,
        /// The SKU in the command.
        actual: Sku,
    },
    /// A write-off larger than the unreserved units on hand.
    #[error("cannot write off {requested} units: only {available} are available")]
    WriteOffExceedsAvailable {
        /// Units to write off.
        requested: i64,
        /// Units on hand and not reserved.
        available: i64,
    },
    /// The adjustment would overflow the on-hand count.
    #[error("the on-hand count would overflow")]
    Overflow,
    /// Not enough unreserved units for a reservation.
    #[error("insufficient stock: requested {requested}, available {available}")]
    InsufficientStock {
        /// The SKU, when the stream has ever been stocked.
        sku: Option<Sku>,
        /// Units asked for.
        requested: u32,
        /// Units on hand and not reserved.
        available: i64,
    },
    /// The order already holds a reservation of a different quantity.
    #[error(
        "order {order_id} already holds a reservation of {reserved} units (requested {requested})"
    )]
    AlreadyReserved {
        /// The order.
        order_id: OrderId,
        /// Units it holds.
        reserved: u32,
        /// Units asked for now.
        requested: u32,
    },
    /// `Commit` for an order holding no reservation.
    #[error("order {0} holds no reservation to commit")]
    NoReservation(OrderId),
}
