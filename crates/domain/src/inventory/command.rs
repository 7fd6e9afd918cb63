//! Commands on the stock of one SKU.

use chrono::{DateTime, Utc};

use uuid::Uuid;

use crate::ids::{OrderId, Sku};

/// What a caller may ask of a SKU's stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StockCommand {
    /// Restock (positive `delta`) or write off (negative `delta`) units on hand.
    Adjust {
        /// The SKU of this stream; fixes it on the first adjustment.
        sku: Sku,
        /// Units added or removed; non-zero, `|delta| <= 10^9`.
        delta: i64,
        /// Why, 1..=200 characters (trimmed).
        reason: String,
        /// The id of the keyed request asking for it: an adjustment already recorded
        /// under this id is not made again (a run of the request after a crash).
        adjustment_id: Option<Uuid>,
        /// When the command was issued.
        now: DateTime<Utc>,
    },
    /// Hold `qty` available units for an order.
    Reserve {
        /// The order the units are held for.
        order_id: OrderId,
        /// Units, `1..=10_000`.
        qty: u32,
        /// When the command was issued.
        now: DateTime<Utc>,
    },
    /// Give an order's reservation back (cancellation, or an order that never appeared).
    Release {
        /// The order whose reservation ends.
        order_id: OrderId,
        /// When the command was issued.
        now: DateTime<Utc>,
    },
    /// Ship an order's reserved units: they leave the warehouse.
    Commit {
        /// The order being shipped.
        order_id: OrderId,
        /// When the command was issued.
        now: DateTime<Utc>,
    },
}
