//! Stock rules: `decide` for every [`StockCommand`].

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::command::StockCommand;
use super::error::StockError;
use super::event::StockEvent;
use super::state::StockState;
use crate::ids::{OrderId, Sku};
use crate::validation::Validator;

/// Largest restock or write-off in one adjustment.
pub const MAX_ADJUSTMENT: i64 = 1_000_000_000;
/// Largest reservation for one order.
pub const MAX_RESERVATION: u32 = 10_000;
const MAX_REASON: usize = 200;

pub(super) fn decide(
    state: &StockState,
    command: StockCommand,
) -> Result<Vec<StockEvent>, StockError> {
    match command {
        StockCommand::Adjust {
            sku,
            delta,
            reason,
            adjustment_id,
            now,
        } => adjust(state, sku, delta, &reason, adjustment_id, now),
        StockCommand::Reserve { order_id, qty, now } => reserve(state, order_id, qty, now),
        StockCommand::Release { order_id, now } => Ok(state
            .reservation(order_id)
            // Nothing held is fine: the sweeper and a cancellation may both release.
            .map(|qty| StockEvent::StockReleased {
                order_id,
                qty,
                at: now,
            })
            .into_iter()
            .collect()),
        StockCommand::Commit { order_id, now } => match state.reservation(order_id) {
            Some(qty) => Ok(vec![StockEvent::StockCommitted {
                order_id,
                qty,
                at: now,
            }]),
            None => Err(StockError::NoReservation(order_id)),
        },
    }
}

fn adjust(
    state: &StockState,
    sku: Sku,
    delta: i64,
    reason: &str,
    adjustment_id: Option<Uuid>,
    now: DateTime<Utc>,
) -> Result<Vec<StockEvent>, StockError> {
    if adjustment_id.is_some_and(|id| state.keyed_adjustments.contains(&id)) {
        // Recorded by an earlier run of the same request.
        return Ok(vec![]);
    }
    let mut v = Validator::new();
    v.check(delta != 0, "delta", "must not be zero");
    v.check(
        delta.unsigned_abs() <= MAX_ADJUSTMENT.unsigned_abs(),
        "delta",
        format!("must be between -{MAX_ADJUSTMENT} and {MAX_ADJUSTMENT}"),
    );
    v.text("reason", reason, 1, MAX_REASON);
    v.finish()?;
    if let Some(expected) = &state.sku
        && *expected != sku
    {
        return Err(StockError::SkuMismatch {
            expected: expected.clone(),
            actual: sku,
        });
    }
    let available = state.available();
    if delta < 0 && available + delta < 0 {
        return Err(StockError::WriteOffExceedsAvailable {
            requested: -delta,
            available,
        });
    }
    if state.on_hand.checked_add(delta).is_none() {
        return Err(StockError::Overflow);
    }
    Ok(vec![StockEvent::StockAdjusted {
        sku,
        delta,
        reason: reason.trim().to_owned(),
        at: now,
        adjustment_id,
    }])
}

fn reserve(
    state: &StockState,
    order_id: OrderId,
    qty: u32,
    now: DateTime<Utc>,
) -> Result<Vec<StockEvent>, StockError> {
    let mut v = Validator::new();
    v.check(
        (1..=MAX_RESERVATION).contains(&qty),
        "qty",
        format!("must be between 1 and {MAX_RESERVATION}"),
    );
    v.finish()?;
    if let Some(reserved) = state.reservation(order_id) {
        // A retried placement finds its own reservation already there.
        return if reserved == qty {
            Ok(vec![])
        } else {
            Err(StockError::AlreadyReserved {
                order_id,
                reserved,
                requested: qty,
            })
        };
    }
    let available = state.available();
    if available < i64::from(qty) {
        return Err(StockError::InsufficientStock {
            sku: state.sku.clone(),
            requested: qty,
            available,
        });
    }
    Ok(vec![StockEvent::StockReserved {
        order_id,
        qty,
        at: now,
    }])
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use uuid::Uuid;

    use super::*;
    use crate::inventory::Stock;
    use crate::testing::{given, given_no_events};
    use crate::validation::Invalid;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap()
    }
    fn sku() -> Sku {
        Sku::parse("TS-L").unwrap()
    }
    fn order(n: u128) -> OrderId {
        OrderId::new(Uuid::from_u128(n))
    }
    fn adjusted(delta: i64) -> StockEvent {
        StockEvent::StockAdjusted {
            sku: sku(),
            delta,
            reason: "restock".into(),
            at: now(),
            adjustment_id: None,
        }
    }
    fn reserved(n: u128, qty: u32) -> StockEvent {
        StockEvent::StockReserved {
            order_id: order(n),
            qty,
            at: now(),
        }
    }
    fn adjust(delta: i64, reason: &str) -> StockCommand {
        StockCommand::Adjust {
            sku: sku(),
            delta,
            reason: reason.into(),
            now: now(),
            adjustment_id: None,
        }
    }
    fn reserve(n: u128, qty: u32) -> StockCommand {
        StockCommand::Reserve {
            order_id: order(n),
            qty,
            now: now(),
        }
    }
    fn invalid_fields(result: Result<Vec<StockEvent>, StockError>) -> Vec<String> {
        match result {
            Err(StockError::Invalid(Invalid(errors))) => {
                errors.into_iter().map(|e| e.field).collect()
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn a_keyed_adjustment_is_made_once() {
        let id = Uuid::from_u128(7);
        let keyed = StockCommand::Adjust {
            sku: sku(),
            delta: 5,
            reason: "restock".into(),
            adjustment_id: Some(id),
            now: now(),
        };
        let recorded = StockEvent::StockAdjusted {
            sku: sku(),
            delta: 5,
            reason: "restock".into(),
            at: now(),
            adjustment_id: Some(id),
        };
        let state = given::<Stock>(vec![adjusted(10)])
            .when(keyed.clone())
            .then_events(vec![recorded.clone()]);
        assert_eq!(state.on_hand, 15);
        // A run of the same request after a crash finds it recorded; another key does not.
        given::<Stock>(vec![adjusted(10), recorded.clone()])
            .when(keyed)
            .then_events(vec![]);
        given::<Stock>(vec![adjusted(10), recorded])
            .when(adjust(5, "restock"))
            .then_events(vec![adjusted(5)]);
    }

    #[test]
    fn restock_on_empty_stream() {
        let state = given_no_events::<Stock>()
            .when(adjust(10, " restock "))
            .then_events(vec![adjusted(10)]);
        assert_eq!(state.sku, Some(sku()));
        assert_eq!(state.on_hand, 10);
        assert_eq!(state.available(), 10);
    }

    #[test]
    fn adjustment_fields_are_validated() {
        let fields = given_no_events::<Stock>()
            .when(adjust(0, ""))
            .then(invalid_fields);
        assert_eq!(fields, ["delta", "reason"]);
        let fields = given_no_events::<Stock>()
            .when(adjust(MAX_ADJUSTMENT + 1, &"r".repeat(201)))
            .then(invalid_fields);
        assert_eq!(fields, ["delta", "reason"]);
        let fields = given_no_events::<Stock>()
            .when(adjust(i64::MIN, "r"))
            .then(invalid_fields);
        assert_eq!(fields, ["delta"]);
        given_no_events::<Stock>()
            .when(adjust(MAX_ADJUSTMENT, &"r".repeat(200)))
            .then(|r| assert!(r.is_ok()));
    }

    #[test]
    fn adjustment_must_name_the_streams_sku() {
        given::<Stock>(vec![adjusted(5)])
            .when(StockCommand::Adjust {
                sku: Sku::parse("OTHER").unwrap(),
                delta: 1,
                reason: "r".into(),
                now: now(),
                adjustment_id: None,
            })
            .then_error(StockError::SkuMismatch {
                expected: sku(),
                actual: Sku::parse("OTHER").unwrap(),
            });
    }

    #[test]
    fn write_off_is_limited_to_available() {
        given::<Stock>(vec![adjusted(10), reserved(1, 4)])
            .when(adjust(-7, "damaged"))
            .then_error(StockError::WriteOffExceedsAvailable {
                requested: 7,
                available: 6,
            });
        let state = given::<Stock>(vec![adjusted(10), reserved(1, 4)])
            .when(adjust(-6, "damaged"))
            .then_events(vec![StockEvent::StockAdjusted {
                sku: sku(),
                delta: -6,
                reason: "damaged".into(),
                at: now(),
                adjustment_id: None,
            }]);
        assert_eq!(state.available(), 0);
        assert_eq!(state.on_hand, 4);
    }

    #[test]
    fn on_hand_overflow_is_refused() {
        let history = vec![StockEvent::StockAdjusted {
            sku: sku(),
            delta: i64::MAX - 5,
            reason: "r".into(),
            at: now(),
            adjustment_id: None,
        }];
        given::<Stock>(history)
            .when(adjust(10, "r"))
            .then_error(StockError::Overflow);
    }

    #[test]
    fn reserve_available_units() {
        let state = given::<Stock>(vec![adjusted(5)])
            .when(reserve(1, 5))
            .then_events(vec![reserved(1, 5)]);
        assert_eq!(state.available(), 0);
        assert_eq!(state.reserved_total(), 5);
        assert_eq!(state.on_hand, 5);
    }

    #[test]
    fn reserve_more_than_available_is_refused() {
        given::<Stock>(vec![adjusted(5), reserved(1, 3)])
            .when(reserve(2, 3))
            .then_error(StockError::InsufficientStock {
                sku: Some(sku()),
                requested: 3,
                available: 2,
            });
        given_no_events::<Stock>()
            .when(reserve(2, 1))
            .then_error(StockError::InsufficientStock {
                sku: None,
                requested: 1,
                available: 0,
            });
    }

    #[test]
    fn reserve_qty_is_1_to_10000() {
        for qty in [0, MAX_RESERVATION + 1] {
            let fields = given::<Stock>(vec![adjusted(100_000)])
                .when(reserve(1, qty))
                .then(invalid_fields);
            assert_eq!(fields, ["qty"]);
        }
        given::<Stock>(vec![adjusted(100_000)])
            .when(reserve(1, MAX_RESERVATION))
            .then_events(vec![reserved(1, MAX_RESERVATION)]);
    }

    #[test]
    fn reserve_retry_is_idempotent() {
        given::<Stock>(vec![adjusted(5), reserved(1, 5)])
            .when(reserve(1, 5))
            .then_no_events();
    }

    #[test]
    fn reserve_again_with_other_qty_is_refused() {
        given::<Stock>(vec![adjusted(10), reserved(1, 2)])
            .when(reserve(1, 3))
            .then_error(StockError::AlreadyReserved {
                order_id: order(1),
                reserved: 2,
                requested: 3,
            });
    }

    #[test]
    fn release_gives_units_back() {
        let state = given::<Stock>(vec![adjusted(5), reserved(1, 5)])
            .when(StockCommand::Release {
                order_id: order(1),
                now: now(),
            })
            .then_events(vec![StockEvent::StockReleased {
                order_id: order(1),
                qty: 5,
                at: now(),
            }]);
        assert_eq!(state.available(), 5);
        assert!(state.reserved.is_empty());
    }

    #[test]
    fn release_without_reservation_is_a_no_op() {
        given::<Stock>(vec![adjusted(5)])
            .when(StockCommand::Release {
                order_id: order(1),
                now: now(),
            })
            .then_no_events();
    }

    #[test]
    fn commit_ships_reserved_units() {
        let state = given::<Stock>(vec![adjusted(5), reserved(1, 2), reserved(2, 1)])
            .when(StockCommand::Commit {
                order_id: order(1),
                now: now(),
            })
            .then_events(vec![StockEvent::StockCommitted {
                order_id: order(1),
                qty: 2,
                at: now(),
            }]);
        assert_eq!(state.on_hand, 3);
        assert_eq!(state.committed, 2);
        assert_eq!(state.reserved_total(), 1);
        assert_eq!(state.available(), 2);
    }

    #[test]
    fn commit_without_reservation_is_refused() {
        given::<Stock>(vec![adjusted(5)])
            .when(StockCommand::Commit {
                order_id: order(1),
                now: now(),
            })
            .then_error(StockError::NoReservation(order(1)));
    }
}
