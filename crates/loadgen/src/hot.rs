//! The hot-SKU check: after everyone has ordered the same SKU, the inventory read model
//! (read once the projections have caught up with the last order) must show no oversell
//! and account for exactly the units the run was told were sold.
use serde::{Deserialize, Serialize};

/// `GET /api/v1/inventory/{sku}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    /// Units held, reserved ones included.
    pub on_hand: i64,
    /// Units held for orders.
    pub reserved: i64,
    /// Units shipped.
    pub committed: i64,
    /// Units that can still be ordered.
    pub available: i64,
}

impl Inventory {
    /// Units taken by orders: reserved or shipped.
    pub fn taken(&self) -> i64 {
        self.reserved + self.committed
    }
}

/// What the check found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HotSkuCheck {
    /// The SKU.
    pub sku: String,
    /// Its stock before the run.
    pub before: Inventory,
    /// Its stock after the run.
    pub after: Inventory,
    /// Units the run was told were sold (201 answers × quantity), warm-up included.
    pub units_sold: i64,
    /// Orders whose outcome the run never learned (transport errors): each may or may not
    /// have taken a unit.
    pub unknown_outcomes: i64,
    /// Available stock went negative, or more was taken than there was.
    pub oversold: bool,
    /// The units taken match the units sold (within the unknown outcomes), and nothing
    /// was added or removed besides.
    pub accounted: bool,
}

impl HotSkuCheck {
    /// Compares the stock before and after a run that sold `units_sold` units with
    /// `unknown_outcomes` orders of one unit each unaccounted for.
    pub fn new(
        sku: String,
        before: Inventory,
        after: Inventory,
        units_sold: i64,
        unknown_outcomes: i64,
    ) -> Self {
        let taken = after.taken() - before.taken();
        let oversold = after.available < 0 || after.reserved > after.on_hand;
        let stock_unchanged = before.on_hand + before.committed == after.on_hand + after.committed;
        let accounted =
            stock_unchanged && taken >= units_sold && taken <= units_sold + unknown_outcomes;
        Self {
            sku,
            before,
            after,
            units_sold,
            unknown_outcomes,
            oversold,
            accounted,
        }
    }

    /// Whether the run passes: no oversell and every unit accounted for.
    pub fn passed(&self) -> bool {
        !self.oversold && self.accounted
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stock(on_hand: i64, reserved: i64) -> Inventory {
        Inventory {
            on_hand,
            reserved,
            committed: 0,
            available: on_hand - reserved,
        }
    }

    #[test]
    fn a_clean_sell_out_passes() {
        let check = HotSkuCheck::new("S".into(), stock(100, 0), stock(100, 100), 100, 0);
        assert!(check.passed(), "{check:?}");
    }

    #[test]
    fn negative_availability_is_an_oversell() {
        let check = HotSkuCheck::new("S".into(), stock(100, 0), stock(100, 101), 101, 0);
        assert!(check.oversold);
        assert!(!check.passed());
    }

    #[test]
    fn units_taken_but_not_sold_are_unaccounted() {
        let check = HotSkuCheck::new("S".into(), stock(100, 0), stock(100, 60), 50, 0);
        assert!(!check.oversold);
        assert!(!check.accounted);
        // …unless that many orders ended without an answer.
        let check = HotSkuCheck::new("S".into(), stock(100, 0), stock(100, 60), 50, 10);
        assert!(check.passed(), "{check:?}");
    }

    #[test]
    fn units_sold_but_not_taken_are_unaccounted() {
        let check = HotSkuCheck::new("S".into(), stock(100, 0), stock(100, 40), 50, 0);
        assert!(!check.accounted);
    }

    #[test]
    fn stock_that_changed_during_the_run_fails_the_check() {
        let check = HotSkuCheck::new("S".into(), stock(100, 0), stock(150, 50), 50, 0);
        assert!(!check.oversold);
        assert!(!check.accounted);
    }

    #[test]
    fn shipped_units_count_as_taken() {
        let before = Inventory {
            on_hand: 90,
            reserved: 5,
            committed: 10,
            available: 85,
        };
        let after = Inventory {
            on_hand: 90,
            reserved: 25,
            committed: 10,
            available: 65,
        };
        assert!(HotSkuCheck::new("S".into(), before, after, 20, 0).passed());
    }
}
