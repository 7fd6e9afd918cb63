//! Replay throughput: `cargo bench -p projector --bench replay`.
//!
//! Writes a realistic shop history into a fresh database — products with variants,
//! restocks and price changes, customers registering and editing their profiles, and
//! orders going through their lives (reservations, placement, payment, packing, shipment
//! and stock commits, delivery; one in ten cancelled with its stock released), all
//! interleaved as they would be in a live shop — then runs `replay all` into it and
//! prints log events per second. PostgreSQL (skipped when absent) and SQLite.
//!
//! Settings (environment): `EMPORIUM_REPLAY_BENCH_EVENTS` (default 250000),
//! `EMPORIUM_REPLAY_BENCH_BATCH` (events per shadow transaction, default the replay's
//! default), `EMPORIUM_REPLAY_BENCH_BACKENDS` (default `postgres,sqlite`).
use std::{
    cmp::Reverse,
    collections::BinaryHeap,
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::{DateTime, TimeZone, Utc};
use domain::{
    account::{AccountEvent, Email, Gender, MobileNumber, Role},
    aggregate::{DomainEvent, encode},
    catalog::{ProductEvent, VariantSpec},
    ids::{AccountId, OrderId, ProductId, ShipmentId, Sku},
    inventory::StockEvent,
    money::{Currency, Money},
    order::{Actor, OrderEvent, OrderLine, OrderStatus, ShippingAddress},
};
use eventstore::{
    EventStore,
    postgres::PostgresConfig,
    testsupport::{TestPostgres, TestSqlite},
};
use projector::{ReplayConfig, ReplayProgress, Replayer};
use serde_json::{Value, json};
use sqlx::{AnyPool, any::AnyPoolOptions};
use uuid::Uuid;

/// One event of the generated history.
struct Row {
    stream: String,
    version: i64,
    event_type: String,
    payload: Value,
}

#[derive(Default)]
struct History {
    rows: Vec<Row>,
    versions: std::collections::HashMap<String, i64>,
}

impl History {
    fn push<E: DomainEvent>(&mut self, stream: String, event: &E) {
        let (event_type, payload) = encode(event);
        let version = self.versions.entry(stream.clone()).or_default();
        *version += 1;
        self.rows.push(Row {
            stream,
            version: *version,
            event_type,
            payload,
        });
    }
}

/// A small deterministic generator (no dependency, same history every run).
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % bound.max(1)
    }
}

fn at(tick: u64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + i64::try_from(tick).unwrap() * 3, 0)
        .single()
        .unwrap()
}

fn uuid(kind: u128, n: u64) -> Uuid {
    Uuid::from_u128((kind << 96) | 0x7000_8000_0000_0000_0000 | u128::from(n))
}

fn eur(amount: i64) -> Money {
    Money::new(amount, Currency::EUR)
}

/// The later steps of an order's life.
enum Step {
    Pay,
    Pack,
    Ship,
    Deliver,
    Cancel(OrderStatus),
}

struct Order {
    id: OrderId,
    customer: AccountId,
    lines: Vec<(String, u32)>,
}

fn generate(target: usize) -> Vec<Row> {
    let mut rng = Rng(42);
    let mut history = History::default();
    let admin = Actor {
        id: AccountId::new(uuid(3, 0)),
        role: Role::Admin,
    };
    // The catalogue: 2,000 products with 1–4 variants, each SKU restocked once.
    let mut skus: Vec<(ProductId, String, i64)> = Vec::new();
    for p in 0..2_000u64 {
        let id = ProductId::new(uuid(1, p));
        let variants: Vec<VariantSpec> = (0..=rng.below(4))
            .map(|v| VariantSpec {
                sku: Sku::parse(&format!("SKU-{p}-{v}")).unwrap(),
                price: eur(500 + i64::try_from(rng.below(20_000)).unwrap()),
                options: [(
                    "size".to_owned(),
                    ["S", "M", "L", "XL"][v as usize % 4].to_owned(),
                )]
                .into(),
            })
            .collect();
        let mut attributes = serde_json::Map::new();
        attributes.insert("brand".into(), json!(format!("brand-{}", p % 40)));
        attributes.insert("weight".into(), json!(rng.below(5_000)));
        history.push(
            format!("product-{id}"),
            &ProductEvent::ProductCreated {
                id,
                name: format!("Product {p}"),
                description: "A fine thing to own.".into(),
                categories: vec![format!("category-{}", p % 25), "all".into()],
                attributes,
                variants: variants.clone(),
                created_at: at(p),
            },
        );
        for variant in variants {
            history.push(
                format!("stock-{}", variant.sku),
                &StockEvent::StockAdjusted {
                    sku: variant.sku.clone(),
                    delta: 1_000_000,
                    reason: "first delivery".into(),
                    at: at(p),
                    adjustment_id: None,
                },
            );
            skus.push((id, variant.sku.as_str().to_owned(), variant.price.amount));
        }
    }
    // Then the shop runs: each tick a customer may register, a product may change, and an
    // order is placed; every order's later steps happen hundreds of ticks later.
    let mut customers: Vec<AccountId> = Vec::new();
    let mut scheduled: BinaryHeap<Reverse<(u64, u64, usize)>> = BinaryHeap::new();
    let mut steps: Vec<Option<(Step, usize)>> = Vec::new();
    let mut orders: Vec<Order> = Vec::new();
    let mut tick = 2_000u64;
    let mut shipments = 0u64;
    while history.rows.len() < target {
        tick += 1;
        if customers.len() < 50 || rng.below(3) == 0 {
            let n = customers.len() as u64;
            let id = AccountId::new(uuid(3, n + 1));
            history.push(
                format!("account-{id}"),
                &AccountEvent::AccountRegistered {
                    id,
                    role: Role::Customer,
                    username: format!("customer{n}@example.com"),
                    name: format!("Customer {n}"),
                    email: Some(Email::parse(&format!("customer{n}@example.com")).unwrap()),
                    mobile_number: Some(MobileNumber::parse(&format!("+4915{n:08}")).unwrap()),
                    gender: Some(Gender::Unspecified),
                    password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
                    registered_at: at(tick),
                },
            );
            customers.push(id);
        }
        if rng.below(20) == 0 {
            let id = customers[rng.below(customers.len() as u64) as usize];
            history.push(
                format!("account-{id}"),
                &AccountEvent::CustomerProfileUpdated {
                    name: Some(format!("Renamed {tick}")),
                    gender: None,
                    at: at(tick),
                },
            );
        }
        if rng.below(10) == 0 {
            let (product, sku, _) = &skus[rng.below(skus.len() as u64) as usize];
            let price = eur(500 + i64::try_from(rng.below(20_000)).unwrap());
            history.push(
                format!("product-{product}"),
                &ProductEvent::VariantPriceChanged {
                    sku: Sku::parse(sku).unwrap(),
                    old_price: eur(1),
                    price,
                    at: at(tick),
                },
            );
        }
        // A new order: reserve each line's stock, then place it.
        let id = OrderId::new(uuid(2, orders.len() as u64));
        let customer = customers[rng.below(customers.len() as u64) as usize];
        let mut lines: Vec<OrderLine> = Vec::new();
        for _ in 0..=rng.below(3) {
            let (product, sku, price) = &skus[rng.below(skus.len() as u64) as usize];
            if lines.iter().any(|l| l.sku.as_str() == sku) {
                continue;
            }
            let quantity = 1 + rng.below(3) as u32;
            history.push(
                format!("stock-{sku}"),
                &StockEvent::StockReserved {
                    order_id: id,
                    qty: quantity,
                    at: at(tick),
                },
            );
            lines.push(OrderLine {
                sku: Sku::parse(sku).unwrap(),
                product_id: *product,
                name: format!("Product {sku}"),
                quantity,
                unit_price: eur(*price),
                line_total: eur(*price * i64::from(quantity)),
            });
        }
        history.push(
            format!("order-{id}"),
            &OrderEvent::OrderPlaced {
                id,
                customer_id: customer,
                lines: lines.clone(),
                total: eur(lines.iter().map(|l| l.line_total.amount).sum()),
                shipping_address: ShippingAddress {
                    name: "Ada Lovelace".into(),
                    line1: "1 Analytical Way".into(),
                    line2: None,
                    city: "London".into(),
                    region: None,
                    postal_code: "N1 9GU".into(),
                    country: "GB".into(),
                },
                placed_at: at(tick),
            },
        );
        let order = orders.len();
        orders.push(Order {
            id,
            customer,
            lines: lines
                .iter()
                .map(|l| (l.sku.as_str().to_owned(), l.quantity))
                .collect(),
        });
        let first = if rng.below(10) == 0 {
            Step::Cancel(OrderStatus::Placed)
        } else {
            Step::Pay
        };
        steps.push(Some((first, order)));
        scheduled.push(Reverse((
            tick + 50 + rng.below(500),
            steps.len() as u64,
            steps.len() - 1,
        )));
        // Whatever is due now.
        while let Some(Reverse((due, _, step))) = scheduled.peek().copied() {
            if due > tick {
                break;
            }
            scheduled.pop();
            let (kind, order) = steps[step].take().unwrap();
            let Order {
                id,
                customer,
                lines,
            } = &orders[order];
            let stream = format!("order-{id}");
            let moved = |from, to| OrderEvent::OrderStatusChanged {
                from,
                to,
                by: admin,
                at: at(tick),
            };
            let next = match kind {
                Step::Pay => {
                    history.push(stream, &moved(OrderStatus::Placed, OrderStatus::Paid));
                    Some(Step::Pack)
                }
                Step::Pack => {
                    history.push(stream, &moved(OrderStatus::Paid, OrderStatus::Packed));
                    Some(Step::Ship)
                }
                Step::Ship => {
                    shipments += 1;
                    history.push(
                        stream.clone(),
                        &OrderEvent::ShipmentCreated {
                            shipment_id: ShipmentId::new(uuid(4, shipments)),
                            carrier: "DHL".into(),
                            tracking_number: format!("JJD{shipments}"),
                            by: admin,
                            at: at(tick),
                        },
                    );
                    for (sku, qty) in lines {
                        history.push(
                            format!("stock-{sku}"),
                            &StockEvent::StockCommitted {
                                order_id: *id,
                                qty: *qty,
                                at: at(tick),
                            },
                        );
                    }
                    history.push(stream, &moved(OrderStatus::Packed, OrderStatus::Shipped));
                    Some(Step::Deliver)
                }
                Step::Deliver => {
                    history.push(stream, &moved(OrderStatus::Shipped, OrderStatus::Delivered));
                    None
                }
                Step::Cancel(from) => {
                    history.push(
                        stream,
                        &OrderEvent::OrderCancelled {
                            from,
                            by: Actor {
                                id: *customer,
                                role: Role::Customer,
                            },
                            reason: Some("changed my mind".into()),
                            at: at(tick),
                        },
                    );
                    for (sku, qty) in lines {
                        history.push(
                            format!("stock-{sku}"),
                            &StockEvent::StockReleased {
                                order_id: *id,
                                qty: *qty,
                                at: at(tick),
                            },
                        );
                    }
                    None
                }
            };
            if let Some(next) = next {
                steps.push(Some((next, order)));
                scheduled.push(Reverse((
                    tick + 50 + rng.below(500),
                    steps.len() as u64,
                    steps.len() - 1,
                )));
            }
        }
    }
    history.rows
}

/// Appends the history straight into the log table in large statements: setting up, not
/// what is measured.
async fn load_postgres(url: &str, rows: &[Row]) {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    for chunk in rows.chunks(5_000) {
        let streams: Vec<&str> = chunk.iter().map(|r| r.stream.as_str()).collect();
        let versions: Vec<i64> = chunk.iter().map(|r| r.version).collect();
        let ids: Vec<Uuid> = chunk.iter().map(|_| Uuid::now_v7()).collect();
        let types: Vec<&str> = chunk.iter().map(|r| r.event_type.as_str()).collect();
        let payloads: Vec<&Value> = chunk.iter().map(|r| &r.payload).collect();
        sqlx::query(
            "INSERT INTO events (stream_id, version, event_id, event_type, schema_version, payload, metadata) \
             SELECT s, v, i, t, 1, p, '{}'::jsonb \
             FROM unnest($1::text[], $2::bigint[], $3::uuid[], $4::text[], $5::jsonb[]) \
                 WITH ORDINALITY AS e(s, v, i, t, p, n) ORDER BY n",
        )
        .bind(&streams)
        .bind(&versions)
        .bind(&ids)
        .bind(&types)
        .bind(&payloads)
        .execute(&pool)
        .await
        .unwrap();
    }
    sqlx::query("ANALYZE events").execute(&pool).await.unwrap();
}

async fn load_sqlite(pool: &sqlx::SqlitePool, rows: &[Row]) {
    let now = Utc::now();
    for chunk in rows.chunks(2_000) {
        let mut tx = pool.begin().await.unwrap();
        for row in chunk {
            sqlx::query(
                "INSERT INTO events (stream_id, version, event_id, event_type, schema_version, payload, metadata, recorded_at) \
                 VALUES ($1, $2, $3, $4, 1, $5, '{}', $6)",
            )
            .bind(&row.stream)
            .bind(row.version)
            .bind(Uuid::now_v7().to_string())
            .bind(&row.event_type)
            .bind(row.payload.to_string())
            .bind(now)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        tx.commit().await.unwrap();
    }
}

/// With `EMPORIUM_REPLAY_BENCH_DETAIL=1`: reading the log alone, then each projection
/// alone, to see where the time goes.
async fn detail(store: &Arc<dyn EventStore>, pool: &AnyPool, config: &ReplayConfig) {
    let started = Instant::now();
    let (mut after, mut events) = (0, 0);
    loop {
        let batch = store.read_all(after, config.batch_size).await.unwrap();
        let Some(last) = batch.last() else { break };
        after = last.position;
        events += batch.len();
    }
    #[allow(clippy::cast_precision_loss)]
    let rate = events as f64 / started.elapsed().as_secs_f64();
    println!("  reading the log alone: {rate:.0} events/s");
    for projection in projector::default_projections() {
        let name = projection.name();
        let report = Replayer::new(store.clone(), pool.clone(), config.clone())
            .run(&[projection], |_| {})
            .await
            .unwrap();
        println!(
            "  {name} alone: {:.2} s, {:.0} events/s",
            report.elapsed.as_secs_f64(),
            report.events_per_second()
        );
    }
}

async fn measure(name: &str, store: Arc<dyn EventStore>, pool: AnyPool, config: ReplayConfig) {
    if setting("EMPORIUM_REPLAY_BENCH_DETAIL").is_some() {
        detail(&store, &pool, &config).await;
    }
    let head = store.head_position().await.unwrap();
    if let Ok(uptime) = std::fs::read_to_string("/proc/uptime") {
        // To cut a system-wide profile at the start of the replay.
        println!(
            "replay starts at uptime {}",
            uptime.split(' ').next().unwrap_or("")
        );
    }
    let started = Instant::now();
    let report = Replayer::new(store, pool, config)
        .run(&projector::default_projections(), move |progress| {
            if let ReplayProgress::Swapped {
                projection,
                tail,
                rows,
                took,
                ..
            } = progress
            {
                println!(
                    "  {projection:<10} swapped: {rows} rows copied, {tail} events in the swap, {:.0} ms",
                    took.as_secs_f64() * 1e3
                );
            }
        })
        .await
        .unwrap();
    let catch_up: Duration = started.elapsed();
    assert_eq!(report.events, head);
    println!(
        "{name}: replay all of {} events in {:.2} s: {:.0} events/s (wall {:.2} s)",
        report.events,
        report.elapsed.as_secs_f64(),
        report.events_per_second(),
        catch_up.as_secs_f64()
    );
}

fn setting(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this too (a short run).
    let quick = !std::env::args().any(|a| a == "--bench");
    let events: usize = setting("EMPORIUM_REPLAY_BENCH_EVENTS")
        .map(|v| v.parse().expect("EMPORIUM_REPLAY_BENCH_EVENTS"))
        .unwrap_or(if quick { 5_000 } else { 250_000 });
    let mut config = ReplayConfig::default();
    if let Some(batch) = setting("EMPORIUM_REPLAY_BENCH_BATCH") {
        config.batch_size = batch.parse().expect("EMPORIUM_REPLAY_BENCH_BATCH");
    }
    let backends = setting("EMPORIUM_REPLAY_BENCH_BACKENDS").unwrap_or("postgres,sqlite".into());
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        sqlx::any::install_default_drivers();
        let started = Instant::now();
        let rows = generate(events);
        println!(
            "generated {} events ({} streams) in {:.1} s",
            rows.len(),
            rows.iter()
                .map(|r| r.stream.as_str())
                .collect::<std::collections::HashSet<_>>()
                .len(),
            started.elapsed().as_secs_f64()
        );
        if backends.contains("postgres")
            && let Some(db) = TestPostgres::new().await
        {
            load_postgres(&db.url, &rows).await;
            let store = Arc::new(db.store(&PostgresConfig::default()));
            let pool = AnyPoolOptions::new().connect(&db.url).await.unwrap();
            // The server processes that work for this database, for CPU profiles
            // (`perf record -a`, then count the samples of these pids).
            let backends = setting("EMPORIUM_REPLAY_BENCH_PIDS").map(|_| {
                let url = db.url.clone();
                tokio::spawn(async move {
                    let pool = sqlx::PgPool::connect(&url).await.unwrap();
                    let mut pids = std::collections::BTreeSet::new();
                    loop {
                        let now: Vec<i32> = sqlx::query_scalar(
                            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()",
                        )
                        .fetch_all(&pool)
                        .await
                        .unwrap_or_default();
                        pids.extend(now);
                        println!("backend pids: {pids:?}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                })
            });
            measure("PostgreSQL", store, pool, config.clone()).await;
            if let Some(task) = backends {
                task.abort();
            }
        }
        if backends.contains("sqlite") {
            let db = TestSqlite::new().await;
            load_sqlite(db.store.write_pool(), &rows).await;
            let store = Arc::new(
                eventstore::sqlite::SqliteEventStore::open(&db.path)
                    .await
                    .unwrap(),
            );
            let pool = AnyPoolOptions::new()
                .connect(&format!("sqlite://{}", db.path.display()))
                .await
                .unwrap();
            measure("SQLite", store, pool, config).await;
        }
    });
}
