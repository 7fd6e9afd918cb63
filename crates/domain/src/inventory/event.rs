//! Stock events: stable stored names; `StockReserved` is at schema 1 (schema 0 said
//! `quantity` where it now says `qty`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::aggregate::DomainEvent;
use crate::ids::{OrderId, Sku};

/// What happened to a SKU's stock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all_fields = "camelCase")]
pub enum StockEvent {
    /// Units on hand changed by `delta` (restock or write-off).
    #[serde(rename = "StockAdjusted")]
    StockAdjusted {
        /// The SKU.
        sku: Sku,
        /// Units added (positive) or removed (negative).
        delta: i64,
        /// Why.
        reason: String,
        /// When.
        at: DateTime<Utc>,
        /// The id of the keyed request that made it (absent without a key, and in events
        /// recorded before), so that a run of that request after a crash is not counted
        /// again.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        adjustment_id: Option<Uuid>,
    },
    /// Units were held for an order.
    #[serde(rename = "StockReserved")]
    StockReserved {
        /// The order.
        order_id: OrderId,
        /// Units held.
        qty: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// An order's reservation was given back.
    #[serde(rename = "StockReleased")]
    StockReleased {
        /// The order.
        order_id: OrderId,
        /// Units given back.
        qty: u32,
        /// When.
        at: DateTime<Utc>,
    },
    /// An order's reserved units were shipped and left the stock.
    #[serde(rename = "StockCommitted")]
    StockCommitted {
        /// The order.
        order_id: OrderId,
        /// Units shipped.
        qty: u32,
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for StockEvent {
    fn event_type(&self) -> &'static str {
        match self {
            StockEvent::StockAdjusted { .. } => "StockAdjusted",
            StockEvent::StockReserved { .. } => "StockReserved",
            StockEvent::StockReleased { .. } => "StockReleased",
            StockEvent::StockCommitted { .. } => "StockCommitted",
        }
    }

    fn schema_version(_event_type: &str) -> u32 {
        1
    }

    fn upcast(event_type: &str, schema_version: u32, payload: Value) -> Value {
        match (event_type, schema_version, payload) {
            ("StockReserved", 0, Value::Object(mut data)) => {
                if let Some(qty) = data.remove("quantity") {
                    data.insert("qty".to_owned(), qty);
                }
                Value::Object(data)
            }
            (_, _, payload) => payload,
        }
    }
}

impl StockEvent {
    /// The order concerned, for every event but an adjustment.
    #[must_use]
    pub fn order_id(&self) -> Option<OrderId> {
        match self {
            StockEvent::StockAdjusted { .. } => None,
            StockEvent::StockReserved { order_id, .. }
            | StockEvent::StockReleased { order_id, .. }
            | StockEvent::StockCommitted { order_id, .. } => Some(*order_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use serde_json::json;
    use uuid::Uuid;

    use super::*;
    use crate::aggregate::{decode, encode};

    #[test]
    fn stock_reserved_v0_is_upcast() {
        let order_id = OrderId::new(Uuid::from_u128(7));
        let v0 = json!({
            "orderId": order_id.to_string(),
            "quantity": 3,
            "at": "2025-01-02T03:04:05Z",
        });
        let event: StockEvent = decode("StockReserved", 0, v0).unwrap();
        assert_eq!(
            event,
            StockEvent::StockReserved {
                order_id,
                qty: 3,
                at: Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap(),
            }
        );
        let (t, current) = encode(&event);
        assert_eq!(t, "StockReserved");
        assert_eq!(current["qty"], 3);
        assert!(current.get("quantity").is_none());
        assert_eq!(StockEvent::schema_version("StockReserved"), 1);
        // Current payloads pass through untouched.
        assert_eq!(
            StockEvent::upcast("StockReserved", 1, current.clone()),
            current
        );
    }
}
