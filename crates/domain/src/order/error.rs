//! Why an order command is refused.

use thiserror::Error;

use super::values::OrderStatus;
use crate::validation::Invalid;

/// An order rule that a command would break.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OrderError {
    /// Some fields are malformed; all of them are listed.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// `Place` on an order that already exists.
    #[error("the order has already been placed")]
    AlreadyPlaced,
    /// Any command but `Place` on an order that does not exist.
    #[error("no such order")]
    NotFound,
    /// The caller's role may not do this (customers cannot change status or ship).
    #[error("this action is reserved to admins and staff")]
    Forbidden,
    /// A customer acting on someone else's order; shown to them as "not found".
    #[error("the order belongs to another customer")]
    NotOwner,
    /// The state machine has no such edge for this caller.
    #[error("an order cannot go from {from} to {to}")]
    IllegalTransition {
        /// Current status.
        from: OrderStatus,
        /// Requested status.
        to: OrderStatus,
    },
    /// A shipment for an order that is not packed yet.
    #[error("an order must be packed before it ships (it is {status})")]
    NotShippable {
        /// Current status.
        status: OrderStatus,
    },
    /// Lines priced in more than one currency.
    #[error("all lines of an order must be priced in the same currency")]
    MixedCurrencies,
    /// A line total or the order total does not fit in the money type.
    #[error("the order total is too large")]
    AmountOverflow,
}
