//! Commands on an order.

use chrono::{DateTime, Utc};

use super::values::{Actor, OrderStatus, PricedLine, ShippingAddress};
use crate::ids::{AccountId, OrderId, ShipmentId};

/// What a caller may ask of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderCommand {
    /// Place the order; its stock has already been reserved by the command layer.
    Place {
        /// New id, chosen by the caller.
        id: OrderId,
        /// The customer placing it.
        customer_id: AccountId,
        /// 1..=50 lines with distinct SKUs, priced from the catalogue in one currency.
        lines: Vec<PricedLine>,
        /// Where to ship.
        shipping_address: ShippingAddress,
        /// When the command was issued.
        now: DateTime<Utc>,
    },
    /// Move the order along its state machine (back office only).
    ChangeStatus {
        /// Target status; `CANCELLED` behaves as [`OrderCommand::Cancel`] without a reason.
        to: OrderStatus,
        /// Who asks.
        by: Actor,
        /// When the command was issued.
        now: DateTime<Utc>,
    },
    /// Cancel the order: by its customer before it is packed, or by the back office until
    /// it ships.
    Cancel {
        /// Who asks.
        by: Actor,
        /// Why, at most 500 characters; blank means none.
        reason: Option<String>,
        /// When the command was issued.
        now: DateTime<Utc>,
    },
    /// Record a parcel handed to a carrier (back office only); the first one ships the order.
    CreateShipment {
        /// New id, chosen by the caller; repeating it is an idempotent no-op.
        shipment_id: ShipmentId,
        /// Carrier name, 1..=64 characters.
        carrier: String,
        /// Carrier's tracking number, 1..=64 characters.
        tracking_number: String,
        /// Who asks.
        by: Actor,
        /// When the command was issued.
        now: DateTime<Utc>,
    },
}
