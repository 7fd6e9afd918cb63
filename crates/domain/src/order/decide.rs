//! Order rules: `decide` for every [`OrderCommand`].

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::command::OrderCommand;
use super::error::OrderError;
use super::event::OrderEvent;
use super::state::OrderState;
use super::values::{Actor, OrderLine, OrderStatus, PricedLine, ShippingAddress};
use crate::account::Role;
use crate::ids::{AccountId, OrderId, ShipmentId};
use crate::money::Money;
use crate::validation::Validator;

/// Most lines one order may have.
pub const MAX_LINES: usize = 50;
/// Most units of one SKU per order.
pub const MAX_QUANTITY: u32 = 1000;
const MAX_REASON: usize = 500;
const MAX_SHIPMENT_FIELD: usize = 64;

pub(super) fn decide(
    state: &OrderState,
    command: OrderCommand,
) -> Result<Vec<OrderEvent>, OrderError> {
    match command {
        OrderCommand::Place {
            id,
            customer_id,
            lines,
            shipping_address,
            now,
        } => place(state, id, customer_id, lines, shipping_address, now),
        OrderCommand::ChangeStatus { to, by, now } => change_status(state, to, by, now),
        OrderCommand::Cancel { by, reason, now } => cancel(state, by, reason, now),
        OrderCommand::CreateShipment {
            shipment_id,
            carrier,
            tracking_number,
            by,
            now,
        } => create_shipment(state, shipment_id, &carrier, &tracking_number, by, now),
    }
}

fn place(
    state: &OrderState,
    id: OrderId,
    customer_id: AccountId,
    lines: Vec<PricedLine>,
    shipping_address: ShippingAddress,
    now: DateTime<Utc>,
) -> Result<Vec<OrderEvent>, OrderError> {
    if state.exists() {
        return Err(OrderError::AlreadyPlaced);
    }
    let mut v = Validator::new();
    v.check(
        (1..=MAX_LINES).contains(&lines.len()),
        "lines",
        format!("must list 1 to {MAX_LINES} lines"),
    );
    let mut seen = BTreeSet::new();
    for (i, line) in lines.iter().enumerate() {
        v.check(
            (1..=MAX_QUANTITY).contains(&line.quantity),
            format!("lines[{i}].quantity"),
            format!("must be between 1 and {MAX_QUANTITY}"),
        );
        v.check(
            seen.insert(&line.sku),
            format!("lines[{i}].sku"),
            "appears on more than one line",
        );
        v.check(
            line.unit_price.amount >= 0,
            format!("lines[{i}].unitPrice.amount"),
            "must not be negative",
        );
    }
    v.merge(shipping_address.validate("shippingAddress"));
    v.finish()?;

    let currency = lines[0].unit_price.currency;
    if lines.iter().any(|l| l.unit_price.currency != currency) {
        return Err(OrderError::MixedCurrencies);
    }
    let mut total = Money::zero(currency);
    let mut order_lines = Vec::with_capacity(lines.len());
    for line in lines {
        let line_total = line
            .unit_price
            .checked_mul(line.quantity)
            .ok_or(OrderError::AmountOverflow)?;
        total = total
            .checked_add(line_total)
            .ok_or(OrderError::AmountOverflow)?;
        order_lines.push(OrderLine {
            sku: line.sku,
            product_id: line.product_id,
            name: line.name,
            quantity: line.quantity,
            unit_price: line.unit_price,
            line_total,
        });
    }
    Ok(vec![OrderEvent::OrderPlaced {
        id,
        customer_id,
        lines: order_lines,
        total,
        shipping_address,
        placed_at: now,
    }])
}

fn change_status(
    state: &OrderState,
    to: OrderStatus,
    by: Actor,
    now: DateTime<Utc>,
) -> Result<Vec<OrderEvent>, OrderError> {
    let from = current(state)?;
    if !by.role.is_back_office() {
        return Err(OrderError::Forbidden);
    }
    if to == OrderStatus::Cancelled {
        return cancel(state, by, None, now);
    }
    if !from.can_transition_to(to) {
        return Err(OrderError::IllegalTransition { from, to });
    }
    Ok(vec![OrderEvent::OrderStatusChanged {
        from,
        to,
        by,
        at: now,
    }])
}

fn cancel(
    state: &OrderState,
    by: Actor,
    reason: Option<String>,
    now: DateTime<Utc>,
) -> Result<Vec<OrderEvent>, OrderError> {
    let from = current(state)?;
    let allowed = match by.role {
        Role::Customer => {
            // Ownership first, so a stranger learns nothing about the order's status.
            if !state.is_owned_by(by.id) {
                return Err(OrderError::NotOwner);
            }
            matches!(from, OrderStatus::Placed | OrderStatus::Paid)
        }
        Role::Admin | Role::Staff => from.can_transition_to(OrderStatus::Cancelled),
    };
    if !allowed {
        return Err(OrderError::IllegalTransition {
            from,
            to: OrderStatus::Cancelled,
        });
    }
    let reason = reason
        .map(|r| r.trim().to_owned())
        .filter(|r| !r.is_empty());
    if let Some(reason) = &reason {
        let mut v = Validator::new();
        v.text("reason", reason, 0, MAX_REASON);
        v.finish()?;
    }
    Ok(vec![OrderEvent::OrderCancelled {
        from,
        by,
        reason,
        at: now,
    }])
}

fn create_shipment(
    state: &OrderState,
    shipment_id: ShipmentId,
    carrier: &str,
    tracking_number: &str,
    by: Actor,
    now: DateTime<Utc>,
) -> Result<Vec<OrderEvent>, OrderError> {
    let from = current(state)?;
    if !by.role.is_back_office() {
        return Err(OrderError::Forbidden);
    }
    let mut v = Validator::new();
    v.text("carrier", carrier, 1, MAX_SHIPMENT_FIELD);
    v.text("trackingNumber", tracking_number, 1, MAX_SHIPMENT_FIELD);
    v.finish()?;
    if state.shipments.iter().any(|s| s.shipment_id == shipment_id) {
        return Ok(vec![]);
    }
    let created = OrderEvent::ShipmentCreated {
        shipment_id,
        carrier: carrier.trim().to_owned(),
        tracking_number: tracking_number.trim().to_owned(),
        by,
        at: now,
    };
    match from {
        OrderStatus::Packed => Ok(vec![
            created,
            OrderEvent::OrderStatusChanged {
                from,
                to: OrderStatus::Shipped,
                by,
                at: now,
            },
        ]),
        // Another parcel of an order already on its way.
        OrderStatus::Shipped => Ok(vec![created]),
        OrderStatus::Placed | OrderStatus::Paid => Err(OrderError::NotShippable { status: from }),
        OrderStatus::Delivered | OrderStatus::Cancelled => Err(OrderError::IllegalTransition {
            from,
            to: OrderStatus::Shipped,
        }),
    }
}

fn current(state: &OrderState) -> Result<OrderStatus, OrderError> {
    state.status.ok_or(OrderError::NotFound)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use uuid::Uuid;

    use super::*;
    use crate::aggregate::Aggregate;
    use crate::ids::{ProductId, Sku};
    use crate::money::Currency;
    use crate::order::{Order, StockEffect};
    use crate::testing::{given, given_no_events};
    use crate::validation::Invalid;
    use OrderStatus::{Cancelled, Delivered, Packed, Paid, Placed, Shipped};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap()
    }
    fn oid() -> OrderId {
        OrderId::new(Uuid::from_u128(1))
    }
    fn customer() -> AccountId {
        AccountId::new(Uuid::from_u128(100))
    }
    fn owner() -> Actor {
        Actor {
            id: customer(),
            role: Role::Customer,
        }
    }
    fn stranger() -> Actor {
        Actor {
            id: AccountId::new(Uuid::from_u128(101)),
            role: Role::Customer,
        }
    }
    fn admin() -> Actor {
        Actor {
            id: AccountId::new(Uuid::from_u128(1)),
            role: Role::Admin,
        }
    }
    fn staff() -> Actor {
        Actor {
            id: AccountId::new(Uuid::from_u128(2)),
            role: Role::Staff,
        }
    }
    fn sku(s: &str) -> Sku {
        Sku::parse(s).unwrap()
    }
    fn eur(amount: i64) -> Money {
        Money::new(amount, Currency::EUR)
    }
    fn address() -> ShippingAddress {
        ShippingAddress {
            name: "Ann".into(),
            line1: "1 Main St".into(),
            line2: None,
            city: "Berlin".into(),
            region: None,
            postal_code: "10115".into(),
            country: "DE".into(),
        }
    }
    fn priced(s: &str, quantity: u32, unit: i64) -> PricedLine {
        PricedLine {
            sku: sku(s),
            product_id: ProductId::new(Uuid::from_u128(7)),
            name: format!("Product {s}"),
            quantity,
            unit_price: eur(unit),
        }
    }
    fn place(lines: Vec<PricedLine>) -> OrderCommand {
        OrderCommand::Place {
            id: oid(),
            customer_id: customer(),
            lines,
            shipping_address: address(),
            now: now(),
        }
    }
    fn placed() -> OrderEvent {
        let line = |s: &str, quantity, unit, total| OrderLine {
            sku: sku(s),
            product_id: ProductId::new(Uuid::from_u128(7)),
            name: format!("Product {s}"),
            quantity,
            unit_price: eur(unit),
            line_total: eur(total),
        };
        OrderEvent::OrderPlaced {
            id: oid(),
            customer_id: customer(),
            lines: vec![line("A", 2, 1999, 3998), line("B", 1, 500, 500)],
            total: eur(4498),
            shipping_address: address(),
            placed_at: now(),
        }
    }
    fn moved(from: OrderStatus, to: OrderStatus) -> OrderEvent {
        OrderEvent::OrderStatusChanged {
            from,
            to,
            by: admin(),
            at: now(),
        }
    }
    /// History that leaves the order in `status`.
    fn history(status: OrderStatus) -> Vec<OrderEvent> {
        let mut events = vec![placed()];
        let path = [Placed, Paid, Packed, Shipped, Delivered];
        if status == Cancelled {
            events.push(OrderEvent::OrderCancelled {
                from: Placed,
                by: admin(),
                reason: None,
                at: now(),
            });
            return events;
        }
        for pair in path.windows(2) {
            if pair[0] == status {
                break;
            }
            events.push(moved(pair[0], pair[1]));
        }
        events
    }
    fn change(to: OrderStatus, by: Actor) -> OrderCommand {
        OrderCommand::ChangeStatus { to, by, now: now() }
    }
    fn cancel(by: Actor) -> OrderCommand {
        OrderCommand::Cancel {
            by,
            reason: None,
            now: now(),
        }
    }
    fn cancelled(from: OrderStatus, by: Actor) -> OrderEvent {
        OrderEvent::OrderCancelled {
            from,
            by,
            reason: None,
            at: now(),
        }
    }
    fn ship(n: u128, by: Actor) -> OrderCommand {
        OrderCommand::CreateShipment {
            shipment_id: ShipmentId::new(Uuid::from_u128(n)),
            carrier: " DHL ".into(),
            tracking_number: "JJD0001".into(),
            by,
            now: now(),
        }
    }
    fn shipment_created(n: u128) -> OrderEvent {
        OrderEvent::ShipmentCreated {
            shipment_id: ShipmentId::new(Uuid::from_u128(n)),
            carrier: "DHL".into(),
            tracking_number: "JJD0001".into(),
            by: admin(),
            at: now(),
        }
    }
    fn invalid_fields(result: Result<Vec<OrderEvent>, OrderError>) -> Vec<String> {
        match result {
            Err(OrderError::Invalid(Invalid(errors))) => {
                errors.into_iter().map(|e| e.field).collect()
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn history_helper_reaches_each_status() {
        for status in OrderStatus::ALL {
            assert_eq!(Order::fold(&history(status)).status, Some(status));
        }
    }

    // --- Place ---

    #[test]
    fn place_computes_line_totals_and_total() {
        let state = given_no_events::<Order>()
            .when(place(vec![priced("A", 2, 1999), priced("B", 1, 500)]))
            .then_events(vec![placed()]);
        assert_eq!(state.status, Some(Placed));
        assert_eq!(state.total, Some(eur(4498)));
        assert!(state.is_owned_by(customer()));
    }

    #[test]
    fn place_twice_is_refused() {
        given::<Order>(vec![placed()])
            .when(place(vec![priced("A", 1, 1)]))
            .then_error(OrderError::AlreadyPlaced);
    }

    #[test]
    fn place_needs_1_to_50_lines() {
        let fields = given_no_events::<Order>()
            .when(place(vec![]))
            .then(invalid_fields);
        assert_eq!(fields, ["lines"]);
        let many = (0..51).map(|i| priced(&format!("S{i}"), 1, 1)).collect();
        let fields = given_no_events::<Order>()
            .when(place(many))
            .then(invalid_fields);
        assert_eq!(fields, ["lines"]);
        let fifty = (0..50).map(|i| priced(&format!("S{i}"), 1, 1)).collect();
        given_no_events::<Order>()
            .when(place(fifty))
            .then(|r| assert!(r.is_ok()));
    }

    #[test]
    fn place_reports_every_bad_line_and_address_field() {
        let cmd = OrderCommand::Place {
            id: oid(),
            customer_id: customer(),
            lines: vec![
                priced("A", 0, 1),
                priced("B", MAX_QUANTITY, 1),
                priced("C", MAX_QUANTITY + 1, -1),
                priced("A", 1, 1),
            ],
            shipping_address: ShippingAddress {
                postal_code: String::new(),
                country: "Germany".into(),
                ..address()
            },
            now: now(),
        };
        let fields = given_no_events::<Order>().when(cmd).then(invalid_fields);
        assert_eq!(
            fields,
            [
                "lines[0].quantity",
                "lines[2].quantity",
                "lines[2].unitPrice.amount",
                "lines[3].sku",
                "shippingAddress.postalCode",
                "shippingAddress.country",
            ]
        );
    }

    #[test]
    fn place_refuses_mixed_currencies() {
        let mut usd = priced("B", 1, 1);
        usd.unit_price.currency = Currency::USD;
        given_no_events::<Order>()
            .when(place(vec![priced("A", 1, 1), usd]))
            .then_error(OrderError::MixedCurrencies);
    }

    #[test]
    fn place_refuses_overflowing_amounts() {
        given_no_events::<Order>()
            .when(place(vec![priced("A", 1000, i64::MAX / 999)]))
            .then_error(OrderError::AmountOverflow);
        given_no_events::<Order>()
            .when(place(vec![priced("A", 1, i64::MAX), priced("B", 1, 1)]))
            .then_error(OrderError::AmountOverflow);
    }

    // --- ChangeStatus ---

    #[test]
    fn back_office_moves_along_the_happy_path() {
        for (from, to) in [
            (Placed, Paid),
            (Paid, Packed),
            (Packed, Shipped),
            (Shipped, Delivered),
        ] {
            for by in [admin(), staff()] {
                let state = given::<Order>(history(from))
                    .when(change(to, by))
                    .then_events(vec![OrderEvent::OrderStatusChanged {
                        from,
                        to,
                        by,
                        at: now(),
                    }]);
                assert_eq!(state.status, Some(to));
            }
        }
    }

    #[test]
    fn illegal_transitions_are_refused() {
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                if to == Cancelled || from.can_transition_to(to) {
                    continue;
                }
                given::<Order>(history(from))
                    .when(change(to, admin()))
                    .then_error(OrderError::IllegalTransition { from, to });
            }
        }
    }

    #[test]
    fn customers_cannot_change_status() {
        given::<Order>(history(Placed))
            .when(change(Paid, owner()))
            .then_error(OrderError::Forbidden);
    }

    #[test]
    fn change_status_on_missing_order_is_not_found() {
        given_no_events::<Order>()
            .when(change(Paid, admin()))
            .then_error(OrderError::NotFound);
    }

    #[test]
    fn change_status_to_cancelled_is_a_cancel() {
        given::<Order>(history(Packed))
            .when(change(Cancelled, staff()))
            .then_events(vec![cancelled(Packed, staff())]);
        given::<Order>(history(Shipped))
            .when(change(Cancelled, admin()))
            .then_error(OrderError::IllegalTransition {
                from: Shipped,
                to: Cancelled,
            });
    }

    // --- Cancel ---

    #[test]
    fn customer_cancels_own_order_before_packing() {
        for from in [Placed, Paid] {
            let state = given::<Order>(history(from))
                .when(cancel(owner()))
                .then_events(vec![cancelled(from, owner())]);
            assert_eq!(state.status, Some(Cancelled));
        }
    }

    #[test]
    fn customer_cannot_cancel_once_packed() {
        for from in [Packed, Shipped, Delivered, Cancelled] {
            given::<Order>(history(from))
                .when(cancel(owner()))
                .then_error(OrderError::IllegalTransition {
                    from,
                    to: Cancelled,
                });
        }
    }

    #[test]
    fn customer_cannot_cancel_someone_elses_order() {
        for from in OrderStatus::ALL {
            given::<Order>(history(from))
                .when(cancel(stranger()))
                .then_error(OrderError::NotOwner);
        }
    }

    #[test]
    fn back_office_cancels_until_shipped() {
        for by in [admin(), staff()] {
            for from in [Placed, Paid, Packed] {
                given::<Order>(history(from))
                    .when(cancel(by))
                    .then_events(vec![cancelled(from, by)]);
            }
            for from in [Shipped, Delivered, Cancelled] {
                given::<Order>(history(from)).when(cancel(by)).then_error(
                    OrderError::IllegalTransition {
                        from,
                        to: Cancelled,
                    },
                );
            }
        }
    }

    #[test]
    fn cancel_reason_is_trimmed_and_bounded() {
        given::<Order>(history(Placed))
            .when(OrderCommand::Cancel {
                by: owner(),
                reason: Some("  changed my mind ".into()),
                now: now(),
            })
            .then_events(vec![OrderEvent::OrderCancelled {
                from: Placed,
                by: owner(),
                reason: Some("changed my mind".into()),
                at: now(),
            }]);
        given::<Order>(history(Placed))
            .when(OrderCommand::Cancel {
                by: owner(),
                reason: Some("   ".into()),
                now: now(),
            })
            .then_events(vec![cancelled(Placed, owner())]);
        let fields = given::<Order>(history(Placed))
            .when(OrderCommand::Cancel {
                by: owner(),
                reason: Some("r".repeat(501)),
                now: now(),
            })
            .then(invalid_fields);
        assert_eq!(fields, ["reason"]);
    }

    #[test]
    fn cancel_missing_order_is_not_found() {
        given_no_events::<Order>()
            .when(cancel(owner()))
            .then_error(OrderError::NotFound);
    }

    // --- CreateShipment ---

    #[test]
    fn first_shipment_ships_a_packed_order() {
        let state = given::<Order>(history(Packed))
            .when(ship(1, admin()))
            .then_events(vec![shipment_created(1), moved(Packed, Shipped)]);
        assert_eq!(state.status, Some(Shipped));
        assert_eq!(state.shipments.len(), 1);
        assert_eq!(state.shipments[0].carrier, "DHL");
    }

    #[test]
    fn extra_parcel_on_shipped_order() {
        let mut events = history(Packed);
        events.extend([shipment_created(1), moved(Packed, Shipped)]);
        let state = given::<Order>(events)
            .when(ship(2, admin()))
            .then_events(vec![shipment_created(2)]);
        assert_eq!(state.shipments.len(), 2);
    }

    #[test]
    fn repeated_shipment_id_is_a_no_op() {
        let mut events = history(Packed);
        events.extend([shipment_created(1), moved(Packed, Shipped)]);
        given::<Order>(events)
            .when(ship(1, admin()))
            .then_no_events();
    }

    #[test]
    fn shipment_before_packing_is_refused() {
        for status in [Placed, Paid] {
            given::<Order>(history(status))
                .when(ship(1, admin()))
                .then_error(OrderError::NotShippable { status });
        }
    }

    #[test]
    fn shipment_after_delivery_or_cancel_is_refused() {
        for from in [Delivered, Cancelled] {
            given::<Order>(history(from))
                .when(ship(1, staff()))
                .then_error(OrderError::IllegalTransition { from, to: Shipped });
        }
    }

    #[test]
    fn shipment_rules() {
        given::<Order>(history(Packed))
            .when(ship(1, owner()))
            .then_error(OrderError::Forbidden);
        given_no_events::<Order>()
            .when(ship(1, admin()))
            .then_error(OrderError::NotFound);
        let fields = given::<Order>(history(Packed))
            .when(OrderCommand::CreateShipment {
                shipment_id: ShipmentId::new(Uuid::from_u128(1)),
                carrier: String::new(),
                tracking_number: "t".repeat(65),
                by: admin(),
                now: now(),
            })
            .then(invalid_fields);
        assert_eq!(fields, ["carrier", "trackingNumber"]);
    }

    // --- Stock effects and storage ---

    #[test]
    fn stock_effects() {
        assert_eq!(placed().stock_effect(), StockEffect::None);
        assert_eq!(moved(Placed, Paid).stock_effect(), StockEffect::None);
        assert_eq!(moved(Packed, Shipped).stock_effect(), StockEffect::Commit);
        assert_eq!(shipment_created(1).stock_effect(), StockEffect::None);
        assert_eq!(
            cancelled(Paid, owner()).stock_effect(),
            StockEffect::Release
        );
    }

    #[test]
    fn events_round_trip() {
        let mut events = history(Delivered);
        events.push(shipment_created(3));
        events.push(cancelled(Paid, owner()));
        for e in events {
            let (t, data) = crate::aggregate::encode(&e);
            assert_eq!(
                crate::aggregate::decode::<OrderEvent>(&t, 1, data).unwrap(),
                e
            );
        }
        let (_, data) = crate::aggregate::encode(&placed());
        assert_eq!(data["lines"][0]["lineTotal"]["amount"], 3998);
        assert_eq!(data["shippingAddress"]["postalCode"], "10115");
        assert_eq!(data["customerId"], customer().to_string());
        let (_, data) = crate::aggregate::encode(&moved(Placed, Paid));
        assert_eq!(data["from"], "PLACED");
        assert_eq!(data["by"]["role"], "ADMIN");
    }
}
