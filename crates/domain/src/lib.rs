//! Emporium's domain: the aggregates (product, stock, account, order), their commands,
//! events and rules, as pure functions.
//!
//! Every aggregate implements [`aggregate::Aggregate`]: `decide(&state, command)` checks
//! the rules and answers with new events or an error; `evolve(state, &event)` applies an
//! event; state is nothing but the fold of `evolve` over a stream. This crate does no I/O,
//! no async, reads no clock and draws no random numbers: ids, `now` and looked-up prices
//! arrive inside commands, so every decision is deterministic and testable with
//! [`testing::given`]. Invariants held here: money is integer minor units and never a
//! float; stock is never oversold (`available()` never goes negative); an order's status
//! follows its state machine; every event has a stable stored name and schema version.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use domain::aggregate::{decode, encode, Aggregate};
//! use domain::ids::{OrderId, Sku};
//! use domain::inventory::{Stock, StockCommand, StockError, StockEvent};
//!
//! let now = Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap();
//! let sku = Sku::parse("TSHIRT-L").unwrap();
//! let history = vec![StockEvent::StockAdjusted { sku, delta: 1, reason: "restock".into(), at: now, adjustment_id: None }];
//! let state = Stock::fold(&history);
//!
//! let first = OrderId::new(uuid::Uuid::from_u128(1));
//! let events = Stock::decide(&state, StockCommand::Reserve { order_id: first, qty: 1, now }).unwrap();
//! let state = events.iter().fold(state, Stock::evolve);
//! assert_eq!(state.available(), 0);
//!
//! // The last unit is taken: a second order is refused, nothing is oversold.
//! let second = OrderId::new(uuid::Uuid::from_u128(2));
//! let refused = Stock::decide(&state, StockCommand::Reserve { order_id: second, qty: 1, now });
//! assert!(matches!(refused, Err(StockError::InsufficientStock { available: 0, .. })));
//!
//! // What a store keeps: a stable type name and a JSON payload.
//! let (event_type, data) = encode(&events[0]);
//! assert_eq!(event_type, "StockReserved");
//! assert_eq!(decode::<StockEvent>(&event_type, 1, data).unwrap(), events[0]);
//! ```

#![deny(missing_docs)]

pub mod account;
pub mod aggregate;
pub mod catalog;
pub mod ids;
pub mod inventory;
pub mod money;
pub mod order;
pub mod testing;
pub mod validation;
