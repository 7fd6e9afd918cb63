//! Stock state and `evolve`.

use std::collections::BTreeMap;

use super::event::StockEvent;
use crate::ids::{OrderId, Sku};

/// A SKU's stock as its events left it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StockState {
    /// The SKU, known from the first adjustment.
    pub sku: Option<Sku>,
    /// Units physically held, reserved ones included.
    pub on_hand: i64,
    /// Units held per order, until released or committed.
    pub reserved: BTreeMap<OrderId, u32>,
    /// Units shipped so far; only grows.
    pub committed: i64,
}

impl StockState {
    /// Units held for orders.
    #[must_use]
    pub fn reserved_total(&self) -> i64 {
        self.reserved.values().map(|&q| i64::from(q)).sum()
    }

    /// Units that can still be reserved or written off; never negative.
    #[must_use]
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved_total()
    }

    /// Units held for `order_id`, if it holds a reservation.
    #[must_use]
    pub fn reservation(&self, order_id: OrderId) -> Option<u32> {
        self.reserved.get(&order_id).copied()
    }
}

pub(super) fn evolve(mut state: StockState, event: &StockEvent) -> StockState {
    match event {
        StockEvent::StockAdjusted { sku, delta, .. } => {
            if state.sku.is_none() {
                state.sku = Some(sku.clone());
            }
            state.on_hand += delta;
        }
        StockEvent::StockReserved { order_id, qty, .. } => {
            state.reserved.insert(*order_id, *qty);
        }
        StockEvent::StockReleased { order_id, .. } => {
            state.reserved.remove(order_id);
        }
        StockEvent::StockCommitted { order_id, qty, .. } => {
            state.reserved.remove(order_id);
            state.on_hand -= i64::from(*qty);
            state.committed += i64::from(*qty);
        }
    }
    state
}
