//! A database per test, a scripted history of domain events, and event builders.
#![allow(dead_code)]

use std::sync::Arc;

use bus::IntegrationEvent;
use chrono::{DateTime, TimeZone, Utc};
use domain::{
    account::{AccountEvent, Email, Role},
    aggregate::{DomainEvent, encode},
    catalog::{ProductEvent, VariantSpec},
    ids::{AccountId, OrderId, ProductId, ShipmentId, Sku},
    inventory::StockEvent,
    money::{Currency, Money},
    order::{Actor, OrderEvent, OrderLine, OrderStatus, ShippingAddress},
};
use eventstore::{
    EventStore, ExpectedVersion, NewEvent, Position, StreamId, testsupport::TestBackend,
};
use serde_json::json;
use sqlx::AnyPool;
use uuid::Uuid;

pub use eventstore::testsupport::Backend;

/// A migrated database: its event store and a pool for checkpoints.
pub struct Db {
    pub store: Arc<dyn EventStore>,
    pub pool: AnyPool,
    _db: TestBackend,
}

/// Expands each `async fn name(db: Db)` into `sqlite::name` and `postgres::name`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),+ $(,)?) => {
        eventstore::backend_tests!($crate::support::Db::open; $($name),+);
    };
}

impl Db {
    /// A fresh, migrated database (`None`: PostgreSQL absent and not required).
    pub async fn open(backend: Backend) -> Option<Self> {
        let db = TestBackend::open(backend).await?;
        Some(Self {
            store: db.store.clone(),
            pool: db.pool(4).await,
            _db: db,
        })
    }

    /// Appends `events` to `stream` in one append; returns the last position.
    pub async fn append<E: DomainEvent>(&self, stream: &StreamId, events: &[E]) -> Position {
        let events = events
            .iter()
            .map(|e| {
                let (event_type, data) = encode(e);
                NewEvent::new(event_type, E::schema_version(e.event_type()), data)
            })
            .collect();
        self.store
            .append(stream, ExpectedVersion::Any, events)
            .await
            .expect("append")
            .position
    }

    /// The integration events of the whole log, as a fresh mapper sees them.
    pub async fn expected(&self) -> Vec<IntegrationEvent> {
        let events = self.store.read_all(0, 100_000).await.expect("read");
        bus::Mapper::new(self.store.clone())
            .map_batch(&events)
            .await
            .expect("map")
    }
}

pub fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + seconds, 0)
        .single()
        .expect("time")
}

pub fn eur(amount: i64) -> Money {
    Money::new(amount, Currency::EUR)
}

pub fn order_id(n: u128) -> OrderId {
    OrderId::new(Uuid::from_u128(
        0x0190_0000_0000_7000_8000_0000_0000_0000 + n,
    ))
}

pub fn customer(n: u128) -> AccountId {
    AccountId::new(Uuid::from_u128(
        0x0193_0000_0000_7000_8000_0000_0000_0000 + n,
    ))
}

pub fn product_id(n: u128) -> ProductId {
    ProductId::new(Uuid::from_u128(
        0x0191_0000_0000_7000_8000_0000_0000_0000 + n,
    ))
}

pub fn admin() -> Actor {
    Actor {
        id: customer(0),
        role: Role::Admin,
    }
}

pub fn placed(n: u128, who: u128) -> OrderEvent {
    let line = OrderLine {
        sku: Sku::parse("TEE-M").expect("sku"),
        product_id: product_id(1),
        name: "Tee".into(),
        quantity: 2,
        unit_price: eur(1500),
        line_total: eur(3000),
    };
    OrderEvent::OrderPlaced {
        id: order_id(n),
        customer_id: customer(who),
        lines: vec![line],
        total: eur(3000),
        shipping_address: ShippingAddress {
            name: "Ada".into(),
            line1: "1 Way".into(),
            line2: None,
            city: "London".into(),
            region: None,
            postal_code: "N1".into(),
            country: "GB".into(),
        },
        placed_at: at(n as i64),
    }
}

pub fn moved(from: OrderStatus, to: OrderStatus) -> OrderEvent {
    OrderEvent::OrderStatusChanged {
        from,
        to,
        by: admin(),
        at: at(100),
    }
}

pub fn shipment(n: u128) -> OrderEvent {
    OrderEvent::ShipmentCreated {
        shipment_id: ShipmentId::new(Uuid::from_u128(n)),
        carrier: "DHL".into(),
        tracking_number: format!("JJD{n}"),
        by: admin(),
        at: at(200),
    }
}

/// Appends a history touching every subject: products, stock, a customer, and orders
/// that are paid, packed, shipped (with a parcel), delivered and cancelled.
pub async fn scripted_history(db: &Db, orders: u128) {
    let product = StreamId::of("product", product_id(1));
    db.append(
        &product,
        &[ProductEvent::ProductCreated {
            id: product_id(1),
            name: "Tee".into(),
            description: "Soft".into(),
            categories: vec!["shirts".into()],
            attributes: serde_json::Map::new(),
            variants: vec![VariantSpec {
                sku: Sku::parse("TEE-M").expect("sku"),
                price: eur(1500),
                options: Default::default(),
            }],
            created_at: at(0),
        }],
    )
    .await;
    db.append(
        &StreamId::of("stock", "TEE-M"),
        &[StockEvent::StockAdjusted {
            sku: Sku::parse("TEE-M").expect("sku"),
            delta: 100,
            reason: "restock".into(),
            at: at(1),
            adjustment_id: None,
        }],
    )
    .await;
    db.append(
        &StreamId::of("account", customer(1)),
        &[AccountEvent::AccountRegistered {
            id: customer(1),
            role: Role::Customer,
            username: "ada@example.com".into(),
            name: "Ada".into(),
            email: Some(Email::parse("ada@example.com").expect("email")),
            mobile_number: None,
            gender: None,
            password_hash: "$argon2id$secret".into(),
            registered_at: at(2),
        }],
    )
    .await;
    for n in 1..=orders {
        use OrderStatus::{Delivered, Packed, Paid, Placed, Shipped};
        let stream = StreamId::of("order", order_id(n));
        db.append(&stream, &[placed(n, 1)]).await;
        db.append(
            &StreamId::of("stock", "TEE-M"),
            &[StockEvent::StockReserved {
                order_id: order_id(n),
                qty: 2,
                at: at(3),
            }],
        )
        .await;
        db.append(&stream, &[moved(Placed, Paid)]).await;
        if n % 3 == 0 {
            db.append(
                &stream,
                &[OrderEvent::OrderCancelled {
                    from: Paid,
                    by: admin(),
                    reason: None,
                    at: at(5),
                }],
            )
            .await;
            continue;
        }
        db.append(&stream, &[moved(Paid, Packed)]).await;
        db.append(&stream, &[shipment(n), moved(Packed, Shipped)])
            .await;
        db.append(&stream, &[moved(Shipped, Delivered)]).await;
    }
    db.append(
        &product,
        &[
            ProductEvent::VariantPriceChanged {
                sku: Sku::parse("TEE-M").expect("sku"),
                old_price: eur(1500),
                price: eur(1200),
                at: at(300),
            },
            ProductEvent::ProductUpdated {
                name: Some("Tee 2".into()),
                description: None,
                categories: None,
                attributes: None,
                updated_at: at(301),
            },
            ProductEvent::ProductArchived { at: at(302) },
        ],
    )
    .await;
}

/// A synthetic integration event (for carrier tests that need no log).
pub fn synthetic(position: u64, subject: bus::Subject) -> IntegrationEvent {
    IntegrationEvent {
        id: Uuid::now_v7(),
        subject: subject.as_str().into(),
        event_type: subject.event_type().into(),
        position,
        occurred_at: at(position as i64),
        data: json!({ "n": position }),
    }
}
