//! Stock state and `evolve`.

use std::fmt;

use rpds::{RedBlackTreeMapSync, RedBlackTreeSetSync};
use uuid::Uuid;

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
    pub reserved: Reservations,
    /// Units shipped so far; only grows.
    pub committed: i64,
    /// The ids of the keyed requests whose adjustments were recorded.
    pub keyed_adjustments: RedBlackTreeSetSync<Uuid>,
}

impl StockState {
    /// Units held for orders.
    #[must_use]
    pub fn reserved_total(&self) -> i64 {
        self.reserved.units()
    }

    /// Units that can still be reserved or written off; never negative.
    #[must_use]
    pub fn available(&self) -> i64 {
        self.on_hand - self.reserved_total()
    }

    /// Units held for `order_id`, if it holds a reservation.
    #[must_use]
    pub fn reservation(&self, order_id: OrderId) -> Option<u32> {
        self.reserved.get(order_id)
    }
}

/// The open reservations of one SKU, with their sum.
///
/// A popular SKU holds one reservation per order until it ships, a hundred thousand or
/// more; the command side clones the state to decide on it. A persistent map keeps that
/// clone O(1) and an added reservation O(log n), and the running sum keeps `available()`
/// O(1), so an order's cost does not grow with the stream.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Reservations {
    by_order: RedBlackTreeMapSync<OrderId, u32>,
    units: i64,
}

impl Reservations {
    /// Units held for `order_id`.
    #[must_use]
    pub fn get(&self, order_id: OrderId) -> Option<u32> {
        self.by_order.get(&order_id).copied()
    }

    /// Holds `qty` units for `order_id` (replacing what it held).
    pub fn insert(&mut self, order_id: OrderId, qty: u32) {
        self.remove(order_id);
        self.by_order.insert_mut(order_id, qty);
        self.units += i64::from(qty);
    }

    /// Drops the reservation of `order_id`, if any.
    pub fn remove(&mut self, order_id: OrderId) {
        if let Some(qty) = self.get(order_id) {
            self.by_order.remove_mut(&order_id);
            self.units -= i64::from(qty);
        }
    }

    /// Units held in all.
    #[must_use]
    pub fn units(&self) -> i64 {
        self.units
    }

    /// How many orders hold units.
    #[must_use]
    pub fn len(&self) -> usize {
        self.by_order.size()
    }

    /// No order holds units.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.by_order.is_empty()
    }

    /// Every reservation, by order id.
    pub fn iter(&self) -> impl Iterator<Item = (OrderId, u32)> + '_ {
        self.by_order.iter().map(|(order, qty)| (*order, *qty))
    }
}

impl fmt::Debug for Reservations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

pub(super) fn evolve(mut state: StockState, event: &StockEvent) -> StockState {
    match event {
        StockEvent::StockAdjusted {
            sku,
            delta,
            adjustment_id,
            ..
        } => {
            if state.sku.is_none() {
                state.sku = Some(sku.clone());
            }
            state.on_hand += delta;
            if let Some(id) = adjustment_id {
                state.keyed_adjustments.insert_mut(*id);
            }
        }
        StockEvent::StockReserved { order_id, qty, .. } => {
            state.reserved.insert(*order_id, *qty);
        }
        StockEvent::StockReleased { order_id, .. } => {
            state.reserved.remove(*order_id);
        }
        StockEvent::StockCommitted { order_id, qty, .. } => {
            state.reserved.remove(*order_id);
            state.on_hand -= i64::from(*qty);
            state.committed += i64::from(*qty);
        }
    }
    state
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn order() -> OrderId {
        OrderId::new(Uuid::now_v7())
    }

    #[test]
    fn the_running_sum_follows_inserts_replacements_and_removals() {
        let (a, b) = (order(), order());
        let mut held = Reservations::default();
        held.insert(a, 3);
        held.insert(b, 4);
        held.insert(a, 5);
        assert_eq!((held.units(), held.len()), (9, 2));
        held.remove(b);
        held.remove(b);
        assert_eq!((held.units(), held.len(), held.get(a)), (5, 1, Some(5)));
        held.remove(a);
        assert!(held.is_empty());
        assert_eq!(held.units(), 0);
    }

    #[test]
    fn a_clone_is_independent_of_the_original() {
        let kept = order();
        let mut original = Reservations::default();
        original.insert(kept, 2);
        let mut copy = original.clone();
        copy.insert(order(), 7);
        copy.remove(kept);
        assert_eq!(original.iter().collect::<Vec<_>>(), [(kept, 2)]);
        assert_eq!((copy.units(), copy.len()), (7, 1));
        assert_ne!(original, copy);
    }
}
