//! Order state and `evolve`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::event::OrderEvent;
use super::values::{OrderLine, OrderStatus, ShippingAddress};
use crate::ids::{AccountId, OrderId, ShipmentId};
use crate::money::Money;

/// One parcel of an order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shipment {
    /// Shipment id.
    pub shipment_id: ShipmentId,
    /// Carrier.
    pub carrier: String,
    /// Tracking number.
    pub tracking_number: String,
    /// When it was handed over.
    pub at: DateTime<Utc>,
}

/// An order as its events left it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderState {
    /// Set once placed.
    pub id: Option<OrderId>,
    /// The customer who placed it.
    pub customer_id: Option<AccountId>,
    /// `None` until placed.
    pub status: Option<OrderStatus>,
    /// Lines with price snapshots.
    pub lines: Vec<OrderLine>,
    /// Sum of the line totals.
    pub total: Option<Money>,
    /// Where to ship.
    pub shipping_address: Option<ShippingAddress>,
    /// Parcels, in order.
    pub shipments: Vec<Shipment>,
    /// When it was placed.
    pub placed_at: Option<DateTime<Utc>>,
    /// Time of the last event.
    pub updated_at: Option<DateTime<Utc>>,
}

impl OrderState {
    /// Whether the order has been placed.
    #[must_use]
    pub fn exists(&self) -> bool {
        self.status.is_some()
    }

    /// Whether `customer` placed this order.
    #[must_use]
    pub fn is_owned_by(&self, customer: AccountId) -> bool {
        self.customer_id == Some(customer)
    }
}

pub(super) fn evolve(mut state: OrderState, event: &OrderEvent) -> OrderState {
    state.updated_at = Some(event.at());
    match event {
        OrderEvent::OrderPlaced {
            id,
            customer_id,
            lines,
            total,
            shipping_address,
            placed_at,
        } => {
            state.id = Some(*id);
            state.customer_id = Some(*customer_id);
            state.status = Some(OrderStatus::Placed);
            state.lines.clone_from(lines);
            state.total = Some(*total);
            state.shipping_address = Some(shipping_address.clone());
            state.placed_at = Some(*placed_at);
        }
        OrderEvent::OrderStatusChanged { to, .. } => state.status = Some(*to),
        OrderEvent::ShipmentCreated {
            shipment_id,
            carrier,
            tracking_number,
            at,
            ..
        } => state.shipments.push(Shipment {
            shipment_id: *shipment_id,
            carrier: carrier.clone(),
            tracking_number: tracking_number.clone(),
            at: *at,
        }),
        OrderEvent::OrderCancelled { .. } => state.status = Some(OrderStatus::Cancelled),
    }
    state
}
