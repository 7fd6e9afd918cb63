//! A fresh database per test, scripted histories, table dumps and condition polling.
#![allow(dead_code)]

use std::{
    collections::BTreeMap,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use async_trait::async_trait;
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
    EventStore, ExpectedVersion, NewEvent, Position, RecordedEvent, StreamId,
    testsupport::TestBackend,
};
use projector::{Projection, ProjectionRunner, RunnerConfig};
use serde_json::{Map, Value, json};
use sqlx::{Any, AnyPool, Row, Transaction};
use tokio::{sync::Notify, task::JoinHandle};
use uuid::Uuid;

pub use eventstore::testsupport::Backend;

/// A migrated database with its event store and a read-model pool.
pub struct Db {
    pub backend: Backend,
    pub store: Arc<dyn EventStore>,
    pub pool: AnyPool,
    _db: TestBackend,
}

/// Expands each listed `async fn name(db: Db)` into `sqlite::name` and `postgres::name`
/// (the latter skipped when PostgreSQL is absent and not required).
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
            backend,
            store: db.store.clone(),
            pool: db.pool(6).await,
            _db: db,
        })
    }

    /// Appends `events` to `stream` (no version check) and returns the last position.
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

    /// Appends one raw event (for old schema versions).
    pub async fn append_raw(&self, stream: &StreamId, event: NewEvent) -> Position {
        self.store
            .append(stream, ExpectedVersion::Any, vec![event])
            .await
            .expect("append")
            .position
    }

    /// Appends a scripted history; returns the head position.
    pub async fn append_history(&self, history: &[Step]) -> Position {
        let mut head = 0;
        for step in history {
            head = match step {
                Step::Product(stream, event) => {
                    self.append(stream, std::slice::from_ref(event)).await
                }
                Step::Stock(stream, event) => {
                    self.append(stream, std::slice::from_ref(event)).await
                }
                Step::Order(stream, event) => {
                    self.append(stream, std::slice::from_ref(event)).await
                }
                Step::Account(stream, event) => {
                    self.append(stream, std::slice::from_ref(event)).await
                }
            };
        }
        head
    }

    pub async fn head(&self) -> Position {
        self.store.head_position().await.expect("head")
    }

    /// A runner of `projection` on this database.
    pub fn runner(
        &self,
        projection: Arc<dyn Projection>,
        config: RunnerConfig,
    ) -> ProjectionRunner {
        ProjectionRunner::new(projection, self.store.clone(), self.pool.clone(), config)
    }

    /// Waits (polling, never sleeping blindly) until `name`'s checkpoint reaches `position`.
    pub async fn wait_for_checkpoint(&self, name: &str, position: Position) {
        let pool = self.pool.clone();
        let name = name.to_owned();
        eventually(&format!("checkpoint of {name} >= {position}"), move || {
            let (pool, name) = (pool.clone(), name.clone());
            async move { projector::checkpoint(&pool, &name).await.unwrap_or(0) >= position }
        })
        .await;
    }

    /// Empties the projection's tables and sets its checkpoint to 0 (what a replay does).
    pub async fn reset(&self, name: &str) {
        for table in tables_of(name) {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                .execute(&self.pool)
                .await
                .expect("empty table");
        }
        sqlx::query("UPDATE projection_checkpoints SET position = 0 WHERE name = $1")
            .bind(name)
            .execute(&self.pool)
            .await
            .expect("reset checkpoint");
    }

    /// Every row of the projection's tables, as sorted text.
    pub async fn dump(&self, name: &str) -> BTreeMap<&'static str, Vec<Vec<String>>> {
        let mut dump = BTreeMap::new();
        for &table in tables_of(name) {
            let rows = sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM {table}")))
                .fetch_all(&self.pool)
                .await
                .expect("dump");
            let mut rows: Vec<Vec<String>> = rows
                .iter()
                .map(|row| {
                    (0..row.len())
                        .map(|i| {
                            row.try_get::<Option<String>, _>(i)
                                .map(|v| v.unwrap_or_else(|| "NULL".into()))
                                .or_else(|_| row.try_get::<i64, _>(i).map(|v| v.to_string()))
                                .expect("text or integer column")
                        })
                        .collect()
                })
                .collect();
            rows.sort();
            dump.insert(table, rows);
        }
        dump
    }
}

pub fn tables_of(name: &str) -> &'static [&'static str] {
    match name {
        "catalog" => &[
            "rm_products",
            "rm_product_categories",
            "rm_product_attributes",
            "rm_variants",
        ],
        "inventory" => &["rm_inventory", "rm_reservations"],
        "orders" => &["rm_orders", "rm_order_counts"],
        "customers" => &["rm_customers"],
        "sales" => &["rm_sales_daily", "rm_sales_days", "rm_sales_orders"],
        "bought_together" => projector::BoughtTogetherProjection::TABLES,
        other => panic!("unknown projection {other}"),
    }
}

/// Polls `condition` every 10 ms for up to 30 s.
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Fast polls and back-offs, for tests.
pub fn config(batch_size: usize) -> RunnerConfig {
    RunnerConfig {
        batch_size,
        idle_poll: Duration::from_millis(50),
        linger: Duration::ZERO,
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(100),
        ownership_poll: Duration::from_millis(50),
    }
}

/// Spawns `runner` until the returned sender is dropped or fires.
pub fn spawn(runner: ProjectionRunner) -> (JoinHandle<()>, tokio::sync::oneshot::Sender<()>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        runner
            .run_until_stopped(async {
                let _ = stopped.await;
            })
            .await;
    });
    (task, stop)
}

/// Runs `projection` from its checkpoint until it reaches the head, then stops it.
pub async fn run_to_head(db: &Db, projection: Arc<dyn Projection>, batch_size: usize) {
    let name = projection.name();
    let head = db.head().await;
    let (task, stop) = spawn(db.runner(projection, config(batch_size)));
    db.wait_for_checkpoint(name, head).await;
    let _ = stop.send(());
    task.await.expect("runner task");
}

/// A projection that applies `limit` events, then hangs inside its transaction until the
/// task is aborted: a kill in the middle of a batch.
pub struct Killer {
    inner: Arc<dyn Projection>,
    remaining: AtomicUsize,
    pub hung: Notify,
}

impl Killer {
    pub fn new(inner: Arc<dyn Projection>, limit: usize) -> Arc<Self> {
        Arc::new(Self {
            inner,
            remaining: AtomicUsize::new(limit),
            hung: Notify::new(),
        })
    }
}

#[async_trait]
impl Projection for Killer {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        self.inner.handles(event)
    }

    /// One event at a time, so the kill can fall between any two of a batch.
    async fn apply_many(
        &self,
        tx: &mut Transaction<'_, Any>,
        events: &[&RecordedEvent],
    ) -> anyhow::Result<()> {
        for event in events {
            let left = self.remaining.load(Ordering::SeqCst);
            if left == 0 {
                self.hung.notify_one();
                std::future::pending::<()>().await;
            }
            self.remaining.store(left - 1, Ordering::SeqCst);
            self.inner.apply_many(tx, &[event]).await?;
        }
        Ok(())
    }
}

/// A projection that fails its first `failures` applications, then delegates.
pub struct Flaky {
    inner: Arc<dyn Projection>,
    failures: AtomicUsize,
}

impl Flaky {
    pub fn new(inner: Arc<dyn Projection>, failures: usize) -> Arc<Self> {
        Arc::new(Self {
            inner,
            failures: AtomicUsize::new(failures),
        })
    }

    /// Fails no more from now on.
    pub fn heal(&self) {
        self.failures.store(0, Ordering::SeqCst);
    }
}

#[async_trait]
impl Projection for Flaky {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        self.inner.handles(event)
    }

    /// One event at a time, so each application can fail after writing its rows.
    async fn apply_many(
        &self,
        tx: &mut Transaction<'_, Any>,
        events: &[&RecordedEvent],
    ) -> anyhow::Result<()> {
        for event in events {
            // Write first, so a failure must roll real rows back.
            self.inner.apply_many(tx, &[event]).await?;
            if self
                .failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
            {
                anyhow::bail!("injected failure");
            }
        }
        Ok(())
    }
}

// ---- scripted histories ----

/// One append of a scripted history.
#[derive(Clone, Debug)]
pub enum Step {
    Product(StreamId, ProductEvent),
    Stock(StreamId, StockEvent),
    Order(StreamId, OrderEvent),
    Account(StreamId, AccountEvent),
}

pub fn at(seconds: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + seconds, 123_456_000)
        .single()
        .expect("time")
}

pub fn sku(text: &str) -> Sku {
    Sku::parse(text).expect("sku")
}

pub fn eur(amount: i64) -> Money {
    Money::new(amount, Currency::EUR)
}

pub fn variant(code: &str, amount: i64, options: &[(&str, &str)]) -> VariantSpec {
    VariantSpec {
        sku: sku(code),
        price: eur(amount),
        options: options
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

pub fn product_stream(id: ProductId) -> StreamId {
    StreamId::of("product", id)
}

pub fn stock_stream(code: &str) -> StreamId {
    StreamId::of("stock", code)
}

pub fn order(n: u128) -> OrderId {
    OrderId::new(Uuid::from_u128(
        0x0190_0000_0000_7000_8000_0000_0000_0000 + n,
    ))
}

pub fn product(n: u128) -> ProductId {
    ProductId::new(Uuid::from_u128(
        0x0191_0000_0000_7000_8000_0000_0000_0000 + n,
    ))
}

pub fn attributes(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("attributes must be an object, got {other}"),
    }
}

/// A deterministic pseudo-random, valid history over several products and SKUs: creations,
/// updates, added variants, price changes, archives, restocks, reservations, releases and
/// commits, interleaved.
pub fn random_history(seed: u64, steps: usize) -> Vec<Step> {
    let mut rng = seed;
    let mut next = move |bound: u64| {
        rng = rng
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (rng >> 33) % bound
    };
    let mut products: Vec<(ProductId, Vec<String>, bool)> = Vec::new();
    let mut stock: BTreeMap<String, (i64, BTreeMap<u128, u32>)> = BTreeMap::new();
    let mut history = Vec::new();
    let mut clock = 0;
    let mut orders = 0u128;
    let mut people = People::default();
    while history.len() < steps {
        clock += 1;
        // A quarter of the steps are account events and a quarter order events, so every
        // projection has plenty to apply.
        match history.len() % 4 {
            0 => {
                account_step(&mut next, &mut people, &mut history, clock);
                continue;
            }
            1 if !people.customers().is_empty() && !products.is_empty() => {
                let skus: Vec<(ProductId, String)> = products
                    .iter()
                    .flat_map(|(id, skus, _)| skus.iter().map(|s| (*id, s.clone())))
                    .collect();
                order_step(&mut next, &mut people, &skus, &mut history, clock);
                continue;
            }
            _ => {}
        }
        let live: Vec<usize> = (0..products.len()).filter(|i| !products[*i].2).collect();
        match next(10) {
            0 | 1 if products.len() < 6 || live.is_empty() => {
                let n = products.len();
                let id = product(n as u128 + 1);
                let skus: Vec<String> = (0..=next(2)).map(|v| format!("P{n}-V{v}")).collect();
                let variants = skus
                    .iter()
                    .map(|s| variant(s, 1000 + next(5000) as i64, &[("size", "M")]))
                    .collect();
                history.push(Step::Product(
                    product_stream(id),
                    ProductEvent::ProductCreated {
                        id,
                        name: format!("Product {}", next(100)),
                        description: format!("Description {n}"),
                        categories: vec![format!("cat{}", next(3))],
                        attributes: attributes(json!({"brand": format!("b{}", next(3)), "rank": next(9), "nested": {"x": 1}})),
                        variants,
                        created_at: at(clock),
                    },
                ));
                products.push((id, skus, false));
            }
            0..=3 if !live.is_empty() => {
                let i = live[next(live.len() as u64) as usize];
                let (id, skus, archived) = &mut products[i];
                let event = match next(4) {
                    0 => ProductEvent::ProductUpdated {
                        name: Some(format!("Renamed {}", next(100))),
                        description: None,
                        categories: Some(vec![format!("cat{}", next(3)), "all".into()]),
                        attributes: Some(attributes(
                            json!({"brand": format!("b{}", next(3)), "eco": next(2) == 0}),
                        )),
                        updated_at: at(clock),
                    },
                    1 if skus.len() < 5 => {
                        let code = format!("P{i}-V{}", skus.len());
                        skus.push(code.clone());
                        ProductEvent::VariantAdded {
                            variant: variant(&code, 500 + next(9000) as i64, &[("size", "L")]),
                            at: at(clock),
                        }
                    }
                    2 if !skus.is_empty() => {
                        let code = skus[next(skus.len() as u64) as usize].clone();
                        ProductEvent::VariantPriceChanged {
                            sku: sku(&code),
                            old_price: eur(0),
                            price: eur(100 + next(9000) as i64),
                            at: at(clock),
                        }
                    }
                    _ if next(4) == 0 => {
                        *archived = true;
                        ProductEvent::ProductArchived { at: at(clock) }
                    }
                    _ => ProductEvent::ProductUpdated {
                        name: None,
                        description: Some(format!("Text {}", next(1000))),
                        categories: None,
                        attributes: None,
                        updated_at: at(clock),
                    },
                };
                history.push(Step::Product(product_stream(*id), event));
            }
            _ if !products.is_empty() => {
                let (_, skus, _) = &products[next(products.len() as u64) as usize];
                let code = skus[next(skus.len() as u64) as usize].clone();
                let (on_hand, reserved) = stock.entry(code.clone()).or_default();
                let available = *on_hand - reserved.values().map(|q| i64::from(*q)).sum::<i64>();
                let event = match next(5) {
                    0 => {
                        let delta = next(20) as i64 + 1;
                        *on_hand += delta;
                        StockEvent::StockAdjusted {
                            sku: sku(&code),
                            delta,
                            reason: "restock".into(),
                            at: at(clock),
                            adjustment_id: None,
                        }
                    }
                    1 | 2 if available > 0 => {
                        orders += 1;
                        let qty = 1 + next(available.min(4) as u64) as u32;
                        reserved.insert(orders, qty);
                        StockEvent::StockReserved {
                            order_id: order(orders),
                            qty,
                            at: at(clock),
                        }
                    }
                    3 if !reserved.is_empty() => {
                        let (o, qty) = reserved.pop_first().expect("reservation");
                        StockEvent::StockReleased {
                            order_id: order(o),
                            qty,
                            at: at(clock),
                        }
                    }
                    4 if !reserved.is_empty() => {
                        let (o, qty) = reserved.pop_last().expect("reservation");
                        *on_hand -= i64::from(qty);
                        StockEvent::StockCommitted {
                            order_id: order(o),
                            qty,
                            at: at(clock),
                        }
                    }
                    _ => {
                        *on_hand += 3;
                        StockEvent::StockAdjusted {
                            sku: sku(&code),
                            delta: 3,
                            reason: "delivery".into(),
                            at: at(clock),
                            adjustment_id: None,
                        }
                    }
                };
                history.push(Step::Stock(stock_stream(&code), event));
            }
            _ => {}
        }
    }
    history
}

pub fn account(n: u128) -> AccountId {
    AccountId::new(Uuid::from_u128(
        0x0193_0000_0000_7000_8000_0000_0000_0000 + n,
    ))
}

pub fn placed_order(n: u128) -> OrderId {
    OrderId::new(Uuid::from_u128(
        0x0192_0000_0000_7000_8000_0000_0000_0000 + n,
    ))
}

pub fn account_stream(id: AccountId) -> StreamId {
    StreamId::of("account", id)
}

pub fn order_stream(id: OrderId) -> StreamId {
    StreamId::of("order", id)
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

pub fn admin_actor() -> Actor {
    Actor {
        id: account(0),
        role: Role::Admin,
    }
}

/// A registered customer: e-mail and mobile number derived from `n`.
pub fn registered(n: u128, role: Role, at_time: DateTime<Utc>) -> AccountEvent {
    let customer = role == Role::Customer;
    AccountEvent::AccountRegistered {
        id: account(n),
        role,
        username: format!("user{n}@example.com"),
        name: format!("Person {n}"),
        email: customer.then(|| Email::parse(&format!("user{n}@example.com")).expect("email")),
        mobile_number: customer
            .then(|| MobileNumber::parse(&format!("+4915{n:07}")).expect("mobile")),
        gender: customer.then_some(Gender::Female),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        registered_at: at_time,
    }
}

/// An order line of `quantity` units at `unit` cents.
pub fn order_line(product_id: ProductId, code: &str, quantity: u32, unit: i64) -> OrderLine {
    OrderLine {
        sku: sku(code),
        product_id,
        name: format!("Product {code}"),
        quantity,
        unit_price: eur(unit),
        line_total: eur(unit * i64::from(quantity)),
    }
}

/// An `OrderPlaced` of `lines` for `customer`.
pub fn order_placed(
    id: OrderId,
    customer: AccountId,
    lines: Vec<OrderLine>,
    placed_at: DateTime<Utc>,
) -> OrderEvent {
    let total = eur(lines.iter().map(|l| l.line_total.amount).sum());
    OrderEvent::OrderPlaced {
        id,
        customer_id: customer,
        lines,
        total,
        shipping_address: address(),
        placed_at,
    }
}

/// Accounts and orders of a random history.
#[derive(Default)]
pub struct People {
    /// (account, role, locked)
    accounts: Vec<(AccountId, Role, bool)>,
    /// (order, customer, status)
    orders: Vec<(OrderId, AccountId, OrderStatus)>,
    shipments: u128,
}

impl People {
    fn customers(&self) -> Vec<AccountId> {
        self.accounts
            .iter()
            .filter(|(_, role, _)| *role == Role::Customer)
            .map(|(id, _, _)| *id)
            .collect()
    }
}

/// Order events run on their own, coarser clock, so orders spread over several days.
fn order_time(clock: i64) -> DateTime<Utc> {
    at(clock * 7_000)
}

fn account_step(
    next: &mut impl FnMut(u64) -> u64,
    people: &mut People,
    history: &mut Vec<Step>,
    clock: i64,
) {
    if people.accounts.len() < 3 || next(4) == 0 {
        let n = people.accounts.len() as u128 + 1;
        // Every fourth account is staff: no e-mail, mobile number or gender.
        let role = if n.is_multiple_of(4) {
            Role::Staff
        } else {
            Role::Customer
        };
        history.push(Step::Account(
            account_stream(account(n)),
            registered(n, role, at(clock)),
        ));
        people.accounts.push((account(n), role, false));
        return;
    }
    let i = next(people.accounts.len() as u64) as usize;
    let (id, _, locked) = &mut people.accounts[i];
    let event = match next(4) {
        0 => AccountEvent::CustomerProfileUpdated {
            name: Some(format!("Renamed {}", next(100))),
            gender: (next(2) == 0).then_some(Gender::Other),
            at: at(clock),
        },
        1 => AccountEvent::PasswordChanged {
            password_hash: format!("$argon2id$new{}", next(1000)),
            at: at(clock),
        },
        2 if !*locked => {
            *locked = true;
            AccountEvent::AccountLocked {
                reason: "too many attempts".into(),
                at: at(clock),
            }
        }
        2 => {
            *locked = false;
            AccountEvent::AccountUnlocked { at: at(clock) }
        }
        _ => AccountEvent::CustomerProfileUpdated {
            name: None,
            gender: Some(Gender::Male),
            at: at(clock),
        },
    };
    history.push(Step::Account(account_stream(*id), event));
}

fn order_step(
    next: &mut impl FnMut(u64) -> u64,
    people: &mut People,
    skus: &[(ProductId, String)],
    history: &mut Vec<Step>,
    clock: i64,
) {
    let open: Vec<usize> = (0..people.orders.len())
        .filter(|i| !people.orders[*i].2.is_final())
        .collect();
    if open.is_empty() || next(3) == 0 {
        let n = people.orders.len() as u128 + 1;
        let customers = people.customers();
        let customer = customers[next(customers.len() as u64) as usize];
        let mut lines: Vec<OrderLine> = Vec::new();
        for _ in 0..=next(3) {
            let (product_id, code) = &skus[next(skus.len() as u64) as usize];
            if lines.iter().all(|l| l.sku.as_str() != code) {
                lines.push(order_line(
                    *product_id,
                    code,
                    1 + next(4) as u32,
                    500 + next(5000) as i64,
                ));
            }
        }
        let id = placed_order(n);
        history.push(Step::Order(
            order_stream(id),
            order_placed(id, customer, lines, order_time(clock)),
        ));
        people.orders.push((id, customer, OrderStatus::Placed));
        return;
    }
    let i = open[next(open.len() as u64) as usize];
    let (id, customer, status) = &mut people.orders[i];
    let stream = order_stream(*id);
    let admin = admin_actor();
    let moved = |from, to| OrderEvent::OrderStatusChanged {
        from,
        to,
        by: admin,
        at: order_time(clock),
    };
    let from = *status;
    match from {
        OrderStatus::Placed | OrderStatus::Paid | OrderStatus::Packed if next(4) == 0 => {
            let by = if from == OrderStatus::Packed {
                admin
            } else {
                Actor {
                    id: *customer,
                    role: Role::Customer,
                }
            };
            history.push(Step::Order(
                stream,
                OrderEvent::OrderCancelled {
                    from,
                    by,
                    reason: (next(2) == 0).then(|| "changed my mind".into()),
                    at: order_time(clock),
                },
            ));
            *status = OrderStatus::Cancelled;
        }
        OrderStatus::Placed => {
            history.push(Step::Order(stream, moved(from, OrderStatus::Paid)));
            *status = OrderStatus::Paid;
        }
        OrderStatus::Paid => {
            history.push(Step::Order(stream, moved(from, OrderStatus::Packed)));
            *status = OrderStatus::Packed;
        }
        OrderStatus::Packed | OrderStatus::Shipped => {
            people.shipments += 1;
            history.push(Step::Order(
                stream.clone(),
                OrderEvent::ShipmentCreated {
                    shipment_id: ShipmentId::new(Uuid::from_u128(people.shipments)),
                    carrier: "DHL".into(),
                    tracking_number: format!("JJD{}", people.shipments),
                    by: admin,
                    at: order_time(clock),
                },
            ));
            if from == OrderStatus::Packed {
                history.push(Step::Order(stream, moved(from, OrderStatus::Shipped)));
                *status = OrderStatus::Shipped;
            } else if next(2) == 0 {
                history.push(Step::Order(stream, moved(from, OrderStatus::Delivered)));
                *status = OrderStatus::Delivered;
            }
        }
        OrderStatus::Delivered | OrderStatus::Cancelled => unreachable!("open orders only"),
    }
}
