//! A known order history, written to the event store as domain events with their actors:
//! two customers, four orders over three days, one of them cancelled.
#![allow(dead_code)]

use domain::{
    account::{AccountEvent, Email, Gender, MobileNumber, Role},
    aggregate::{DomainEvent, encode},
    ids::{AccountId, OrderId, ProductId, ShipmentId},
    order::{Actor, OrderEvent, OrderLine, OrderStatus, ShippingAddress},
};
use eventstore::{EventMetadata, ExpectedVersion, NewEvent, Position, StreamId};
use uuid::Uuid;

use crate::helpers::{TestApp, at, eur, sku};

pub const DAY: i64 = 86_400;

/// The ids of the known history.
pub struct Shop {
    pub ann: AccountId,
    pub bob: AccountId,
    pub admin: AccountId,
    /// Ann's, day 1, PLACED: 2 × SHIRT-M (shirt) at 49.00 and 1 × MUG (mug) at 9.00.
    pub a1: OrderId,
    /// Ann's, day 2, SHIPPED: 3 × MUG at 9.00.
    pub a2: OrderId,
    /// Ann's, day 3, CANCELLED: 1 × SHIRT-M at 49.00.
    pub a3: OrderId,
    /// Bob's, day 2, PAID: 1 × SHIRT-L (shirt) at 52.00 and 2 × MUG at 9.00.
    pub b1: OrderId,
    pub shirt: ProductId,
    pub mug: ProductId,
}

pub fn order_stream(id: OrderId) -> StreamId {
    StreamId::of("order", id)
}

pub fn account_stream(id: AccountId) -> StreamId {
    StreamId::of("account", id)
}

pub fn line(product_id: ProductId, code: &str, quantity: u32, unit: i64) -> OrderLine {
    OrderLine {
        sku: sku(code),
        product_id,
        name: format!("Product {code}"),
        quantity,
        unit_price: eur(unit),
        line_total: eur(unit * i64::from(quantity)),
    }
}

pub fn address() -> ShippingAddress {
    ShippingAddress {
        name: "Ada Lovelace".into(),
        line1: "1 Analytical Way".into(),
        line2: None,
        city: "London".into(),
        region: None,
        postal_code: "N1 9GU".into(),
        country: "GB".into(),
    }
}

pub fn placed(id: OrderId, customer: AccountId, lines: Vec<OrderLine>, seconds: i64) -> OrderEvent {
    OrderEvent::OrderPlaced {
        id,
        customer_id: customer,
        total: eur(lines.iter().map(|l| l.line_total.amount).sum()),
        lines,
        shipping_address: address(),
        placed_at: at(seconds),
    }
}

/// A customer's `AccountRegistered`.
pub fn registered(id: AccountId, n: u32, seconds: i64) -> AccountEvent {
    AccountEvent::AccountRegistered {
        id,
        role: Role::Customer,
        username: format!("shopper{n}@example.com"),
        name: format!("Shopper {n}"),
        email: Some(Email::parse(&format!("shopper{n}@example.com")).unwrap()),
        mobile_number: Some(MobileNumber::parse(&format!("+4917{n:08}")).unwrap()),
        gender: Some(Gender::Female),
        password_hash: "$argon2id$not-a-real-hash".into(),
        registered_at: at(seconds),
    }
}

/// Appends `events` to `stream` as `actor` did (`account-{id}`); returns the last position.
pub async fn append_by<E: DomainEvent>(
    app: &TestApp,
    stream: &StreamId,
    actor: AccountId,
    events: &[E],
) -> Position {
    let metadata = EventMetadata {
        actor: Some(format!("account-{actor}")),
        correlation_id: Some(Uuid::now_v7()),
        causation_id: None,
    };
    let events = events
        .iter()
        .map(|e| {
            let (event_type, data) = encode(e);
            NewEvent::new(event_type, E::schema_version(e.event_type()), data)
                .with_metadata(metadata.clone())
        })
        .collect();
    app.store
        .append(stream, ExpectedVersion::Any, events)
        .await
        .expect("append")
        .position
}

/// Writes the known history and waits for every projection.
pub async fn seed_orders(app: &TestApp) -> Shop {
    let id = || Uuid::now_v7();
    let shop = Shop {
        ann: AccountId::new(id()),
        bob: AccountId::new(id()),
        admin: AccountId::new(id()),
        a1: OrderId::new(id()),
        a2: OrderId::new(id()),
        a3: OrderId::new(id()),
        b1: OrderId::new(id()),
        shirt: ProductId::new(Uuid::from_u128(1)),
        mug: ProductId::new(Uuid::from_u128(2)),
    };
    let admin = Actor {
        id: shop.admin,
        role: Role::Admin,
    };
    let moved = |from, to, seconds| OrderEvent::OrderStatusChanged {
        from,
        to,
        by: admin,
        at: at(seconds),
    };
    for (customer, n) in [(shop.ann, 1), (shop.bob, 2)] {
        append_by(
            app,
            &account_stream(customer),
            customer,
            &[registered(customer, n, 0)],
        )
        .await;
    }
    append_by(
        app,
        &order_stream(shop.a1),
        shop.ann,
        &[placed(
            shop.a1,
            shop.ann,
            vec![
                line(shop.shirt, "SHIRT-M", 2, 4900),
                line(shop.mug, "MUG", 1, 900),
            ],
            0,
        )],
    )
    .await;
    append_by(
        app,
        &order_stream(shop.a2),
        shop.ann,
        &[placed(
            shop.a2,
            shop.ann,
            vec![line(shop.mug, "MUG", 3, 900)],
            DAY,
        )],
    )
    .await;
    append_by(
        app,
        &order_stream(shop.b1),
        shop.bob,
        &[placed(
            shop.b1,
            shop.bob,
            vec![
                line(shop.shirt, "SHIRT-L", 1, 5200),
                line(shop.mug, "MUG", 2, 900),
            ],
            DAY + 60,
        )],
    )
    .await;
    append_by(
        app,
        &order_stream(shop.a2),
        shop.admin,
        &[
            moved(OrderStatus::Placed, OrderStatus::Paid, DAY + 10),
            moved(OrderStatus::Paid, OrderStatus::Packed, DAY + 20),
            OrderEvent::ShipmentCreated {
                shipment_id: ShipmentId::new(Uuid::from_u128(7)),
                carrier: "DHL".into(),
                tracking_number: "JJD0007".into(),
                by: admin,
                at: at(DAY + 30),
            },
            moved(OrderStatus::Packed, OrderStatus::Shipped, DAY + 30),
        ],
    )
    .await;
    append_by(
        app,
        &order_stream(shop.b1),
        shop.admin,
        &[moved(OrderStatus::Placed, OrderStatus::Paid, DAY + 70)],
    )
    .await;
    append_by(
        app,
        &order_stream(shop.a3),
        shop.ann,
        &[
            placed(
                shop.a3,
                shop.ann,
                vec![line(shop.shirt, "SHIRT-M", 1, 4900)],
                2 * DAY,
            ),
            OrderEvent::OrderCancelled {
                from: OrderStatus::Placed,
                by: Actor {
                    id: shop.ann,
                    role: Role::Customer,
                },
                reason: Some("changed my mind".into()),
                at: at(2 * DAY + 5),
            },
        ],
    )
    .await;
    app.caught_up().await;
    shop
}

/// The ids of a list answer's items, in order.
pub fn ids(list: &serde_json::Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|o| o["id"].as_str().expect("id").to_owned())
        .collect()
}
