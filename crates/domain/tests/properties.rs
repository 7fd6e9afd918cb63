//! Property tests of the domain's invariants: stock is never oversold, order status only
//! moves along its state machine, and every event survives the storage codec.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeZone, Utc};
use domain::account::{AccountEvent, Email, Gender, MobileNumber, Role};
use domain::aggregate::{Aggregate, DomainEvent, decode, encode};
use domain::catalog::{ProductEvent, VariantSpec};
use domain::ids::{AccountId, OrderId, ProductId, ShipmentId, Sku};
use domain::inventory::{Stock, StockCommand, StockEvent, StockState};
use domain::money::{Currency, Money};
use domain::order::{
    Actor, Order, OrderCommand, OrderEvent, OrderLine, OrderState, OrderStatus, PricedLine,
    ShippingAddress,
};
use proptest::prelude::*;
use serde_json::{Map, Value};
use uuid::Uuid;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
}

// ---------------------------------------------------------------- stock

#[derive(Debug, Clone)]
enum StockOp {
    Adjust(i64),
    Reserve(u8, u32),
    Release(u8),
    Commit(u8),
}

fn stock_op() -> impl Strategy<Value = StockOp> {
    prop_oneof![
        (-30i64..=30).prop_map(StockOp::Adjust),
        (0u8..4, 0u32..=15).prop_map(|(o, q)| StockOp::Reserve(o, q)),
        (0u8..4).prop_map(StockOp::Release),
        (0u8..4).prop_map(StockOp::Commit),
    ]
}

fn order_id(n: u8) -> OrderId {
    OrderId::new(Uuid::from_u128(u128::from(n) + 1))
}

fn stock_command(op: &StockOp) -> StockCommand {
    match *op {
        StockOp::Adjust(delta) => StockCommand::Adjust {
            sku: Sku::parse("SKU-1").unwrap(),
            delta,
            reason: "count".into(),
            now: t0(),
            adjustment_id: None,
        },
        StockOp::Reserve(o, qty) => StockCommand::Reserve {
            order_id: order_id(o),
            qty,
            now: t0(),
        },
        StockOp::Release(o) => StockCommand::Release {
            order_id: order_id(o),
            now: t0(),
        },
        StockOp::Commit(o) => StockCommand::Commit {
            order_id: order_id(o),
            now: t0(),
        },
    }
}

proptest! {
    #[test]
    fn stock_is_never_oversold(ops in prop::collection::vec(stock_op(), 0..80)) {
        let mut state = StockState::default();
        let mut history = Vec::new();
        let mut adjusted_total = 0i64;
        for op in &ops {
            let before = state.clone();
            let Ok(events) = Stock::decide(&state, stock_command(op)) else {
                continue;
            };
            for event in &events {
                if let StockEvent::StockAdjusted { delta, .. } = event {
                    adjusted_total += delta;
                }
                state = Stock::evolve(state, event);
            }
            history.extend(events);
            prop_assert!(state.available() >= 0, "available {} after {op:?}", state.available());
            prop_assert!(state.on_hand >= state.reserved_total());
            prop_assert!(state.committed >= before.committed);
            // Units are conserved: everything ever adjusted in is on hand or shipped.
            prop_assert_eq!(state.on_hand + state.committed, adjusted_total);
        }
        prop_assert_eq!(Stock::fold(&history), state);
    }

    #[test]
    fn retried_reservation_is_idempotent(stock in 1i64..50, qty in 1u32..50) {
        let state = Stock::fold(&[StockEvent::StockAdjusted {
            sku: Sku::parse("S").unwrap(),
            delta: stock,
            reason: "r".into(),
            at: t0(), adjustment_id: None,
        }]);
        let reserve = stock_command(&StockOp::Reserve(0, qty));
        match Stock::decide(&state, reserve.clone()) {
            Ok(events) => {
                prop_assert!(i64::from(qty) <= stock);
                let after = events.iter().fold(state, Stock::evolve);
                prop_assert_eq!(Stock::decide(&after, reserve), Ok(vec![]));
            }
            Err(_) => prop_assert!(i64::from(qty) > stock),
        }
    }
}

// ---------------------------------------------------------------- order

fn customer() -> AccountId {
    AccountId::new(Uuid::from_u128(100))
}

fn actor() -> impl Strategy<Value = Actor> {
    prop_oneof![
        Just(Actor {
            id: AccountId::new(Uuid::from_u128(1)),
            role: Role::Admin
        }),
        Just(Actor {
            id: AccountId::new(Uuid::from_u128(2)),
            role: Role::Staff
        }),
        Just(Actor {
            id: customer(),
            role: Role::Customer
        }),
        Just(Actor {
            id: AccountId::new(Uuid::from_u128(3)),
            role: Role::Customer
        }),
    ]
}

fn status() -> impl Strategy<Value = OrderStatus> {
    prop::sample::select(OrderStatus::ALL.to_vec())
}

fn order_command() -> impl Strategy<Value = OrderCommand> {
    prop_oneof![
        (status(), actor()).prop_map(|(to, by)| OrderCommand::ChangeStatus { to, by, now: t0() }),
        actor().prop_map(|by| OrderCommand::Cancel {
            by,
            reason: None,
            now: t0()
        }),
        (0u128..3, actor()).prop_map(|(n, by)| OrderCommand::CreateShipment {
            shipment_id: ShipmentId::new(Uuid::from_u128(n)),
            carrier: "DHL".into(),
            tracking_number: format!("T{n}"),
            by,
            now: t0(),
        }),
    ]
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

proptest! {
    #[test]
    fn order_status_follows_the_state_machine(
        commands in prop::collection::vec(order_command(), 0..40),
    ) {
        let place = OrderCommand::Place {
            id: OrderId::new(Uuid::from_u128(9)),
            customer_id: customer(),
            lines: vec![PricedLine {
                sku: Sku::parse("A").unwrap(),
                product_id: ProductId::new(Uuid::from_u128(5)),
                name: "A".into(),
                quantity: 2,
                unit_price: Money::new(100, Currency::EUR),
            }],
            shipping_address: address(),
            now: t0(),
        };
        let placed = Order::decide(&OrderState::default(), place).unwrap();
        let mut state = Order::fold(&placed);
        for command in commands {
            let by = match &command {
                OrderCommand::ChangeStatus { by, .. }
                | OrderCommand::Cancel { by, .. }
                | OrderCommand::CreateShipment { by, .. } => *by,
                OrderCommand::Place { .. } => unreachable!(),
            };
            let Ok(events) = Order::decide(&state, command) else {
                continue;
            };
            for event in &events {
                let from = state.status.unwrap();
                match event {
                    OrderEvent::OrderStatusChanged { from: f, to, .. } => {
                        prop_assert_eq!(*f, from);
                        prop_assert!(from.can_transition_to(*to), "{} -> {}", from, to);
                        prop_assert!(by.role != Role::Customer);
                    }
                    OrderEvent::OrderCancelled { from: f, .. } => {
                        prop_assert_eq!(*f, from);
                        prop_assert!(from.can_transition_to(OrderStatus::Cancelled));
                        if by.role == Role::Customer {
                            prop_assert_eq!(by.id, customer());
                            prop_assert!(matches!(from, OrderStatus::Placed | OrderStatus::Paid));
                        }
                    }
                    OrderEvent::ShipmentCreated { .. } => {
                        prop_assert!(matches!(from, OrderStatus::Packed | OrderStatus::Shipped));
                        prop_assert!(by.role != Role::Customer);
                    }
                    OrderEvent::OrderPlaced { .. } => prop_assert!(false, "placed twice"),
                }
                state = Order::evolve(state, event);
                prop_assert!(state.status.is_some_and(|s| OrderStatus::ALL.contains(&s)));
            }
        }
    }
}

// ---------------------------------------------------------------- codec

fn any_uuid() -> impl Strategy<Value = Uuid> {
    any::<u128>().prop_map(Uuid::from_u128)
}

fn any_time() -> impl Strategy<Value = DateTime<Utc>> {
    (0i64..8_000_000_000, 0u32..1_000_000_000)
        .prop_map(|(secs, nanos)| DateTime::from_timestamp(secs, nanos).unwrap())
}

fn any_sku() -> impl Strategy<Value = Sku> {
    "[A-Za-z0-9][A-Za-z0-9._-]{0,30}".prop_map(|s| Sku::parse(&s).unwrap())
}

fn any_money() -> impl Strategy<Value = Money> {
    (any::<i64>(), "[A-Z]{3}").prop_map(|(a, c)| Money::new(a, Currency::parse(&c).unwrap()))
}

fn any_role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Admin), Just(Role::Staff), Just(Role::Customer)]
}

fn any_actor() -> impl Strategy<Value = Actor> {
    (any_uuid(), any_role()).prop_map(|(u, role)| Actor {
        id: AccountId::new(u),
        role,
    })
}

fn any_stock_event() -> impl Strategy<Value = StockEvent> {
    prop_oneof![
        (any_sku(), any::<i64>(), any::<String>(), any_time()).prop_map(
            |(sku, delta, reason, at)| StockEvent::StockAdjusted {
                sku,
                delta,
                reason,
                at,
                adjustment_id: None
            }
        ),
        (any_uuid(), any::<u32>(), any_time()).prop_map(|(u, qty, at)| StockEvent::StockReserved {
            order_id: OrderId::new(u),
            qty,
            at
        }),
        (any_uuid(), any::<u32>(), any_time()).prop_map(|(u, qty, at)| StockEvent::StockReleased {
            order_id: OrderId::new(u),
            qty,
            at
        }),
        (any_uuid(), any::<u32>(), any_time()).prop_map(|(u, qty, at)| {
            StockEvent::StockCommitted {
                order_id: OrderId::new(u),
                qty,
                at,
            }
        }),
    ]
}

fn any_address() -> impl Strategy<Value = ShippingAddress> {
    (
        any::<String>(),
        any::<String>(),
        proptest::option::of(any::<String>()),
        any::<String>(),
        proptest::option::of(any::<String>()),
        any::<String>(),
        "[A-Z]{2}",
    )
        .prop_map(
            |(name, line1, line2, city, region, postal_code, country)| ShippingAddress {
                name,
                line1,
                line2,
                city,
                region,
                postal_code,
                country,
            },
        )
}

fn any_line() -> impl Strategy<Value = OrderLine> {
    (
        any_sku(),
        any_uuid(),
        any::<String>(),
        any::<u32>(),
        any_money(),
        any_money(),
    )
        .prop_map(
            |(sku, p, name, quantity, unit_price, line_total)| OrderLine {
                sku,
                product_id: ProductId::new(p),
                name,
                quantity,
                unit_price,
                line_total,
            },
        )
}

fn any_order_event() -> impl Strategy<Value = OrderEvent> {
    prop_oneof![
        (
            any_uuid(),
            any_uuid(),
            prop::collection::vec(any_line(), 0..4),
            any_money(),
            any_address(),
            any_time()
        )
            .prop_map(|(id, c, lines, total, shipping_address, placed_at)| {
                OrderEvent::OrderPlaced {
                    id: OrderId::new(id),
                    customer_id: AccountId::new(c),
                    lines,
                    total,
                    shipping_address,
                    placed_at,
                }
            }),
        (status(), status(), any_actor(), any_time())
            .prop_map(|(from, to, by, at)| OrderEvent::OrderStatusChanged { from, to, by, at }),
        (
            any_uuid(),
            any::<String>(),
            any::<String>(),
            any_actor(),
            any_time()
        )
            .prop_map(|(s, carrier, tracking_number, by, at)| {
                OrderEvent::ShipmentCreated {
                    shipment_id: ShipmentId::new(s),
                    carrier,
                    tracking_number,
                    by,
                    at,
                }
            }),
        (
            status(),
            any_actor(),
            proptest::option::of(any::<String>()),
            any_time()
        )
            .prop_map(|(from, by, reason, at)| OrderEvent::OrderCancelled {
                from,
                by,
                reason,
                at
            }),
    ]
}

fn any_json_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ]
}

fn any_attributes() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(any::<String>(), any_json_scalar(), 0..4)
        .prop_map(|m| m.into_iter().collect())
}

fn any_variant() -> impl Strategy<Value = VariantSpec> {
    (
        any_sku(),
        any_money(),
        prop::collection::btree_map(any::<String>(), any::<String>(), 0..3),
    )
        .prop_map(
            |(sku, price, options): (Sku, Money, BTreeMap<String, String>)| VariantSpec {
                sku,
                price,
                options,
            },
        )
}

fn any_product_event() -> impl Strategy<Value = ProductEvent> {
    prop_oneof![
        (
            any_uuid(),
            any::<String>(),
            any::<String>(),
            prop::collection::vec(any::<String>(), 0..3),
            any_attributes(),
            prop::collection::vec(any_variant(), 0..3),
            any_time()
        )
            .prop_map(
                |(id, name, description, categories, attributes, variants, created_at)| {
                    ProductEvent::ProductCreated {
                        id: ProductId::new(id),
                        name,
                        description,
                        categories,
                        attributes,
                        variants,
                        created_at,
                    }
                }
            ),
        (
            proptest::option::of(any::<String>()),
            proptest::option::of(any::<String>()),
            proptest::option::of(prop::collection::vec(any::<String>(), 0..3)),
            proptest::option::of(any_attributes()),
            any_time()
        )
            .prop_map(|(name, description, categories, attributes, updated_at)| {
                ProductEvent::ProductUpdated {
                    name,
                    description,
                    categories,
                    attributes,
                    updated_at,
                }
            }),
        (any_variant(), any_time())
            .prop_map(|(variant, at)| ProductEvent::VariantAdded { variant, at }),
        (any_sku(), any_money(), any_money(), any_time()).prop_map(
            |(sku, old_price, price, at)| {
                ProductEvent::VariantPriceChanged {
                    sku,
                    old_price,
                    price,
                    at,
                }
            }
        ),
        any_time().prop_map(|at| ProductEvent::ProductArchived { at }),
    ]
}

fn any_gender() -> impl Strategy<Value = Gender> {
    prop_oneof![
        Just(Gender::Female),
        Just(Gender::Male),
        Just(Gender::Other),
        Just(Gender::Unspecified)
    ]
}

fn any_account_event() -> impl Strategy<Value = AccountEvent> {
    prop_oneof![
        (
            any_uuid(),
            any_role(),
            any::<String>(),
            any::<String>(),
            proptest::option::of("[a-z0-9]{1,10}@[a-z]{1,10}\\.[a-z]{2,4}"),
            proptest::option::of("\\+?[0-9]{7,15}"),
            proptest::option::of(any_gender()),
            any::<String>(),
            any_time()
        )
            .prop_map(
                |(
                    id,
                    role,
                    username,
                    name,
                    email,
                    mobile,
                    gender,
                    password_hash,
                    registered_at,
                )| {
                    AccountEvent::AccountRegistered {
                        id: AccountId::new(id),
                        role,
                        username,
                        name,
                        email: email.map(|e| Email::parse(&e).unwrap()),
                        mobile_number: mobile.map(|m| MobileNumber::parse(&m).unwrap()),
                        gender,
                        password_hash,
                        registered_at,
                    }
                }
            ),
        (
            proptest::option::of(any::<String>()),
            proptest::option::of(any_gender()),
            any_time()
        )
            .prop_map(|(name, gender, at)| AccountEvent::CustomerProfileUpdated {
                name,
                gender,
                at
            }),
        (any::<String>(), any_time())
            .prop_map(|(password_hash, at)| AccountEvent::PasswordChanged { password_hash, at }),
        (any::<String>(), any_time())
            .prop_map(|(reason, at)| AccountEvent::AccountLocked { reason, at }),
        any_time().prop_map(|at| AccountEvent::AccountUnlocked { at }),
    ]
}

fn round_trips<E: DomainEvent>(event: &E) -> Result<(), TestCaseError> {
    let (event_type, data) = encode(event);
    prop_assert_eq!(event_type.as_str(), event.event_type());
    let version = E::schema_version(&event_type);
    prop_assert_eq!(version, 1);
    // Through text, as a store keeps it.
    let text = serde_json::to_string(&data).unwrap();
    let data: Value = serde_json::from_str(&text).unwrap();
    let back: E = decode(&event_type, version, data)
        .map_err(|e| TestCaseError::fail(format!("decode failed: {e}")))?;
    prop_assert_eq!(&back, event);
    Ok(())
}

proptest! {
    #[test]
    fn stock_events_round_trip(event in any_stock_event()) {
        round_trips(&event)?;
    }

    #[test]
    fn order_events_round_trip(event in any_order_event()) {
        round_trips(&event)?;
    }

    #[test]
    fn product_events_round_trip(event in any_product_event()) {
        round_trips(&event)?;
    }

    #[test]
    fn account_events_round_trip(event in any_account_event()) {
        round_trips(&event)?;
    }
}
