//! The domain's hot paths: `cargo bench -p domain`.
//!
//! - deciding an order (2 lines) and a stock reservation, on a fresh SKU and on a hot SKU
//!   holding many open reservations (the "100,000-event SKU within 2x of a fresh one"
//!   target starts here: the state the command side caches is what `decide` works on);
//! - folding a long stock stream (what loading an uncached aggregate costs, minus I/O);
//! - decoding stored events and folding them (the same with the JSON codec in the loop);
//! - encoding and decoding single events (`domain::aggregate::encode` / `decode`).
use std::hint::black_box;

use chrono::{DateTime, TimeZone, Utc};
use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use domain::{
    aggregate::{Aggregate, decode, encode},
    ids::{AccountId, OrderId, ProductId, Sku},
    inventory::{Stock, StockCommand, StockEvent, StockState},
    money::{Currency, Money},
    order::{Order, OrderCommand, OrderEvent, OrderState, PricedLine, ShippingAddress},
};
use serde_json::Value;
use uuid::Uuid;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 25, 12, 0, 0).unwrap()
}

fn sku(i: usize) -> Sku {
    Sku::parse(&format!("LG{i:05}-0")).unwrap()
}

fn order_id(i: u128) -> OrderId {
    OrderId::new(Uuid::from_u128(i + 1))
}

fn place_order(lines: usize) -> OrderCommand {
    let eur = Currency::parse("EUR").unwrap();
    OrderCommand::Place {
        id: order_id(0),
        customer_id: AccountId::new(Uuid::from_u128(42)),
        lines: (0..lines)
            .map(|i| PricedLine {
                sku: sku(i),
                product_id: ProductId::new(Uuid::from_u128(1000 + i as u128)),
                name: format!("Loadgen Linen shirt {i:05}"),
                quantity: 1,
                unit_price: Money::new(4900, eur),
            })
            .collect(),
        shipping_address: ShippingAddress {
            name: "Load Customer".into(),
            line1: "1 Benchmark Road".into(),
            line2: None,
            city: "Leeds".into(),
            region: None,
            postal_code: "LS1 1AA".into(),
            country: "GB".into(),
        },
        now: now(),
    }
}

/// A stock stream: one restock, then `reservations` orders of one unit, every other one
/// released again (so half stay open, as on a SKU whose orders are still in flight).
fn stock_stream(reservations: usize) -> Vec<StockEvent> {
    let mut events = vec![StockEvent::StockAdjusted {
        sku: sku(0),
        delta: 1_000_000_000,
        reason: "restock".into(),
        at: now(),
        adjustment_id: None,
    }];
    for i in 0..reservations as u128 {
        events.push(StockEvent::StockReserved {
            order_id: order_id(i),
            qty: 1,
            at: now(),
        });
        if i % 2 == 1 {
            events.push(StockEvent::StockReleased {
                order_id: order_id(i),
                qty: 1,
                at: now(),
            });
        }
    }
    events
}

fn reserve() -> StockCommand {
    StockCommand::Reserve {
        order_id: order_id(u128::from(u64::MAX)),
        qty: 1,
        now: now(),
    }
}

fn bench_decide(c: &mut Criterion) {
    let mut group = c.benchmark_group("decide");
    let command = place_order(2);
    group.bench_function("place order, 2 lines", |b| {
        b.iter_batched(
            || command.clone(),
            |command| Order::decide(black_box(&OrderState::default()), command).unwrap(),
            BatchSize::SmallInput,
        );
    });
    for reservations in [0, 1_000, 100_000] {
        let state: StockState = Stock::fold(&stock_stream(reservations));
        group.bench_function(
            format!("reserve stock, {} open reservations", reservations / 2),
            |b| b.iter(|| Stock::decide(black_box(&state), reserve()).unwrap()),
        );
    }
    // The command side clones the cached state before deciding: that copy is on the
    // hot path too.
    let hot: StockState = Stock::fold(&stock_stream(100_000));
    group.bench_function("clone a hot stock state, 50000 open reservations", |b| {
        b.iter(|| black_box(&hot).clone());
    });
    group.finish();
}

fn bench_fold(c: &mut Criterion) {
    let mut group = c.benchmark_group("fold");
    for reservations in [1_000, 100_000] {
        let events = stock_stream(reservations);
        group.throughput(Throughput::Elements(events.len() as u64));
        group.bench_function(format!("stock stream, {} events", events.len()), |b| {
            b.iter(|| Stock::fold(black_box(&events)));
        });
        let stored: Vec<(String, Value)> = events.iter().map(encode).collect();
        group.bench_function(
            format!("decode and fold a stock stream, {} events", events.len()),
            |b| {
                b.iter(|| {
                    stored
                        .iter()
                        .map(|(event_type, data)| {
                            decode::<StockEvent>(event_type, 1, data.clone()).unwrap()
                        })
                        .fold(StockState::default(), |state, event| {
                            Stock::evolve(state, &event)
                        })
                });
            },
        );
    }
    group.finish();
}

fn bench_codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("codec");
    let placed: OrderEvent = Order::decide(&OrderState::default(), place_order(2))
        .unwrap()
        .remove(0);
    let reserved = StockEvent::StockReserved {
        order_id: order_id(7),
        qty: 2,
        at: now(),
    };
    group.bench_function("encode OrderPlaced, 2 lines", |b| {
        b.iter(|| encode(black_box(&placed)));
    });
    group.bench_function("encode StockReserved", |b| {
        b.iter(|| encode(black_box(&reserved)));
    });
    let (placed_type, placed_data) = encode(&placed);
    let (reserved_type, reserved_data) = encode(&reserved);
    group.bench_function("decode OrderPlaced, 2 lines", |b| {
        b.iter_batched(
            || placed_data.clone(),
            |data| decode::<OrderEvent>(&placed_type, 1, data).unwrap(),
            BatchSize::SmallInput,
        );
    });
    group.bench_function("decode StockReserved", |b| {
        b.iter_batched(
            || reserved_data.clone(),
            |data| decode::<StockEvent>(&reserved_type, 1, data).unwrap(),
            BatchSize::SmallInput,
        );
    });
    // What a store holds is text: parsing it is part of every load.
    let stored = serde_json::to_string(&placed_data).unwrap();
    group.bench_function("parse and decode OrderPlaced from stored JSON", |b| {
        b.iter(|| {
            let data: Value = serde_json::from_str(black_box(&stored)).unwrap();
            decode::<OrderEvent>(&placed_type, 1, data).unwrap()
        });
    });
    group.finish();
}

// Not a measurement: checks once, before timing, that the inputs are what the names say
// (a bench over a refused command would time the error path).
fn check_inputs() {
    let state = Stock::fold(&stock_stream(100_000));
    assert_eq!(state.reserved.len(), 50_000);
    assert!(Stock::decide(&state, reserve()).is_ok());
    assert!(matches!(
        Order::decide(&OrderState::default(), place_order(2)).unwrap()[0],
        OrderEvent::OrderPlaced { .. }
    ));
}

fn benches(c: &mut Criterion) {
    check_inputs();
    bench_decide(c);
    bench_fold(c);
    bench_codec(c);
}

criterion_group!(domain_benches, benches);
criterion_main!(domain_benches);
