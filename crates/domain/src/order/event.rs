//! Order events: stable stored names, schema version 1, and the stock work each implies.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::values::{Actor, OrderLine, OrderStatus, ShippingAddress};
use crate::aggregate::DomainEvent;
use crate::ids::{AccountId, OrderId, ShipmentId};
use crate::money::Money;

/// What happened to an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all_fields = "camelCase")]
pub enum OrderEvent {
    /// The order exists, with price snapshots; its stock is reserved.
    #[serde(rename = "OrderPlaced")]
    OrderPlaced {
        /// Order id.
        id: OrderId,
        /// The customer.
        customer_id: AccountId,
        /// Lines with prices at ordering time.
        lines: Vec<OrderLine>,
        /// Sum of the line totals.
        total: Money,
        /// Where to ship.
        shipping_address: ShippingAddress,
        /// When.
        placed_at: DateTime<Utc>,
    },
    /// The status moved along an edge of the state machine (not to `CANCELLED`).
    #[serde(rename = "OrderStatusChanged")]
    OrderStatusChanged {
        /// Status before.
        from: OrderStatus,
        /// Status now.
        to: OrderStatus,
        /// Who moved it.
        by: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// A parcel was handed to a carrier.
    #[serde(rename = "ShipmentCreated")]
    ShipmentCreated {
        /// Shipment id.
        shipment_id: ShipmentId,
        /// Carrier.
        carrier: String,
        /// Tracking number.
        tracking_number: String,
        /// Who recorded it.
        by: Actor,
        /// When.
        at: DateTime<Utc>,
    },
    /// The order was cancelled; its stock is to be released.
    #[serde(rename = "OrderCancelled")]
    OrderCancelled {
        /// Status before.
        from: OrderStatus,
        /// Who cancelled.
        by: Actor,
        /// Why, if said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// When.
        at: DateTime<Utc>,
    },
}

/// Stock work that must follow an order event, on every line's `stock-{sku}` stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StockEffect {
    /// Nothing to do.
    None,
    /// Release the order's reservations (it was cancelled).
    Release,
    /// Commit the order's reservations (it shipped).
    Commit,
}

impl OrderEvent {
    /// What stock work follows this event.
    #[must_use]
    pub fn stock_effect(&self) -> StockEffect {
        match self {
            OrderEvent::OrderCancelled { .. } => StockEffect::Release,
            OrderEvent::OrderStatusChanged {
                to: OrderStatus::Shipped,
                ..
            } => StockEffect::Commit,
            _ => StockEffect::None,
        }
    }

    /// When the event happened.
    #[must_use]
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            OrderEvent::OrderPlaced { placed_at, .. } => *placed_at,
            OrderEvent::OrderStatusChanged { at, .. }
            | OrderEvent::ShipmentCreated { at, .. }
            | OrderEvent::OrderCancelled { at, .. } => *at,
        }
    }
}

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> &'static str {
        match self {
            OrderEvent::OrderPlaced { .. } => "OrderPlaced",
            OrderEvent::OrderStatusChanged { .. } => "OrderStatusChanged",
            OrderEvent::ShipmentCreated { .. } => "ShipmentCreated",
            OrderEvent::OrderCancelled { .. } => "OrderCancelled",
        }
    }

    fn schema_version(_event_type: &str) -> u32 {
        1
    }

    fn upcast(_event_type: &str, _schema_version: u32, payload: Value) -> Value {
        payload
    }
}
