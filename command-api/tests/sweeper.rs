//! The reservation sweeper against real databases (SQLite always, PostgreSQL when
//! reachable): reservations whose order never appeared, or was cancelled without its stock
//! released, are released once they are older than the timeout; a live order's never are.
//! A windowed sweep reads only the reservations reserved after its start.
use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use command_api::{
    AppState, CommandApiConfig,
    auth::AuthConfig,
    service::CommandMeta,
    sweeper::{self, Reach, Swept},
};
use domain::{
    account::Role,
    aggregate::Aggregate,
    ids::{AccountId, OrderId, ProductId, Sku},
    inventory::{Stock, StockEvent},
    money::{Currency, Money},
    order::{Actor, Order, OrderEvent, OrderLine, OrderStatus, ShippingAddress},
};
use eventstore::{
    EventStore, ExpectedVersion, StreamId,
    postgres::PostgresConfig,
    testsupport::{TestPostgres, TestSqlite},
};
use projector::{
    InventoryProjection, OrdersProjection, Projection, ProjectionRunner, RunnerConfig,
};
use sqlx::{AnyPool, any::AnyPoolOptions};
use uuid::Uuid;

/// Keeps the test database alive (dropped with the test).
#[allow(dead_code)]
enum Guard {
    Sqlite(TestSqlite),
    Postgres(TestPostgres),
}

struct Setup {
    state: AppState,
    sql: AnyPool,
    store: Arc<dyn EventStore>,
    _guard: Guard,
}

async fn setup(postgres: bool) -> Option<Setup> {
    sqlx::any::install_default_drivers();
    let (store, url, guard): (Arc<dyn EventStore>, String, Guard) = if postgres {
        let db = TestPostgres::new().await?;
        let store = db.store(&PostgresConfig::default());
        let url = db.url.clone();
        (Arc::new(store), url, Guard::Postgres(db))
    } else {
        let db = TestSqlite::new().await;
        let store = eventstore::sqlite::SqliteEventStore::open(&db.path)
            .await
            .expect("sqlite");
        let url = format!("sqlite://{}", db.path.display());
        (Arc::new(store), url, Guard::Sqlite(db))
    };
    let sql = AnyPoolOptions::new()
        .max_connections(4)
        .connect(&url)
        .await
        .expect("sql pool");
    let config = CommandApiConfig {
        auth: AuthConfig::default(),
        aggregate_cache_capacity: 1000,
        bootstrap_admin: None,
    };
    let state = command_api::build_state(store.clone(), sql.clone(), &config)
        .await
        .expect("state");
    Some(Setup {
        state,
        sql,
        store,
        _guard: guard,
    })
}

fn stock_stream(sku: &str) -> StreamId {
    StreamId::of("stock", sku)
}

fn sku(code: &str) -> Sku {
    Sku::parse(code).expect("sku")
}

impl Setup {
    async fn stock(&self, code: &str, events: &[StockEvent]) {
        self.state
            .commands
            .append::<Stock>(
                &stock_stream(code),
                ExpectedVersion::Any,
                events,
                &CommandMeta::by("test"),
            )
            .await
            .expect("append stock");
    }

    async fn order(&self, id: OrderId, events: &[OrderEvent]) {
        self.state
            .commands
            .append::<Order>(
                &StreamId::of("order", id),
                ExpectedVersion::Any,
                events,
                &CommandMeta::by("test"),
            )
            .await
            .expect("append order");
    }

    /// Runs the inventory and orders projections, the sweeper's read models, until both
    /// have reached the head of the log.
    async fn project(&self) {
        self.run_projection(Arc::new(InventoryProjection), InventoryProjection::NAME)
            .await;
        self.run_projection(Arc::new(OrdersProjection), OrdersProjection::NAME)
            .await;
    }

    /// Runs `projection` until it has reached the head of the log (polling its checkpoint,
    /// never sleeping blindly).
    async fn run_projection(&self, projection: Arc<dyn Projection>, name: &str) {
        let head = self.store.head_position().await.expect("head");
        let runner = ProjectionRunner::new(
            projection,
            self.store.clone(),
            self.sql.clone(),
            RunnerConfig {
                idle_poll: Duration::from_millis(20),
                ..RunnerConfig::default()
            },
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            runner
                .run_until_stopped(async {
                    let _ = stopped.await;
                })
                .await;
        });
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while projector::checkpoint(&self.sql, name).await.unwrap_or(0) < head {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the {name} projection did not catch up"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _ = stop.send(());
        task.await.expect("runner");
    }

    /// Units held per order for `code`, folded from the log.
    async fn held(&self, code: &str) -> Vec<(OrderId, u32)> {
        let stock = self
            .state
            .commands
            .load::<Stock>(&stock_stream(code))
            .await
            .expect("load stock")
            .state;
        stock.reserved.iter().collect()
    }

    /// One sweep of `reach` settling reservations older than `older_than`.
    async fn sweep(&self, older_than: Duration, reach: Reach) -> Swept {
        sweeper::sweep_once(&self.state, &self.sql, older_than, reach)
            .await
            .expect("sweep")
    }

    /// The open reservations the read model shows: (sku, order).
    async fn open(&self) -> Vec<(String, String)> {
        let mut rows: Vec<(String, String)> =
            sqlx::query_as("SELECT sku, order_id FROM rm_reservations")
                .fetch_all(&self.sql)
                .await
                .expect("reservations");
        rows.sort();
        rows
    }
}

fn placed(id: OrderId, code: &str, quantity: u32, at: DateTime<Utc>) -> OrderEvent {
    OrderEvent::OrderPlaced {
        id,
        customer_id: AccountId::new(Uuid::now_v7()),
        lines: vec![OrderLine {
            sku: sku(code),
            product_id: ProductId::new(Uuid::now_v7()),
            name: "Mug".into(),
            quantity,
            unit_price: Money::new(900, Currency::EUR),
            line_total: Money::new(900 * i64::from(quantity), Currency::EUR),
        }],
        total: Money::new(900 * i64::from(quantity), Currency::EUR),
        shipping_address: ShippingAddress {
            name: "Ada".into(),
            line1: "1 Way".into(),
            line2: None,
            city: "London".into(),
            region: None,
            postal_code: "N1".into(),
            country: "GB".into(),
        },
        placed_at: at,
    }
}

fn restocked(code: &str, delta: i64, at: DateTime<Utc>) -> StockEvent {
    StockEvent::StockAdjusted {
        sku: sku(code),
        delta,
        reason: "restock".into(),
        at,
        adjustment_id: None,
    }
}

fn reserved(order_id: OrderId, qty: u32, at: DateTime<Utc>) -> StockEvent {
    StockEvent::StockReserved { order_id, qty, at }
}

async fn sweeps_orphaned_and_cancelled_reservations_only(postgres: bool) {
    let Some(db) = setup(postgres).await else {
        return;
    };
    let old = Utc::now() - chrono::Duration::hours(2);
    let now = Utc::now();
    let id = || OrderId::new(Uuid::now_v7());
    let (orphan, live, cancelled, fresh) = (id(), id(), id(), id());
    db.stock(
        "MUG",
        &[
            restocked("MUG", 20, old),
            reserved(orphan, 3, old),
            reserved(live, 2, old),
            reserved(cancelled, 1, old),
            reserved(fresh, 4, now),
        ],
    )
    .await;
    db.stock(
        "PLATE",
        &[restocked("PLATE", 5, old), reserved(orphan, 1, old)],
    )
    .await;
    db.order(live, &[placed(live, "MUG", 2, old)]).await;
    db.order(
        cancelled,
        &[
            placed(cancelled, "MUG", 1, old),
            OrderEvent::OrderCancelled {
                from: OrderStatus::Placed,
                by: Actor {
                    id: AccountId::new(Uuid::now_v7()),
                    role: Role::Admin,
                },
                reason: None,
                at: old,
            },
        ],
    )
    .await;
    db.project().await;
    assert_eq!(db.open().await.len(), 5);

    // With a one-hour timeout: the orphan (both SKUs) and the cancelled order's stock.
    let released = db
        .sweep(Duration::from_secs(3600), Reach::All)
        .await
        .settled;
    assert_eq!(released, 3);
    let mut expected = vec![(live, 2), (fresh, 4)];
    expected.sort();
    assert_eq!(db.held("MUG").await, expected);
    assert_eq!(db.held("PLATE").await, vec![]);
    let releases = db
        .store
        .read_stream(&stock_stream("PLATE"), 3, 10)
        .await
        .expect("read");
    assert_eq!(releases.len(), 1);
    assert_eq!(releases[0].event_type, "StockReleased");
    assert_eq!(releases[0].metadata.actor.as_deref(), Some(sweeper::ACTOR));
    // Before the projector has seen the releases, a second sweep finds nothing left to do.
    assert_eq!(
        db.sweep(Duration::from_secs(3600), Reach::All)
            .await
            .settled,
        0
    );

    // Timeout 0: the fresh orphan goes too; the live order's reservation never does.
    db.project().await;
    let released = db.sweep(Duration::ZERO, Reach::All).await.settled;
    assert_eq!(released, 1);
    assert_eq!(db.held("MUG").await, vec![(live, 2)]);
    db.project().await;
    assert_eq!(db.open().await, vec![("MUG".to_owned(), live.to_string())]);
    let state = Stock::fold(
        &db.store
            .read_stream(&stock_stream("MUG"), 1, 100)
            .await
            .expect("read")
            .into_iter()
            .map(|e| {
                domain::aggregate::decode(
                    &e.event_type,
                    e.schema_version,
                    std::sync::Arc::unwrap_or_clone(e.payload),
                )
                .expect("decode")
            })
            .collect::<Vec<StockEvent>>(),
    );
    assert_eq!((state.on_hand, state.available()), (20, 18));
}

fn admin() -> Actor {
    Actor {
        id: AccountId::new(Uuid::now_v7()),
        role: Role::Admin,
    }
}

fn moved(from: OrderStatus, to: OrderStatus, at: DateTime<Utc>) -> OrderEvent {
    OrderEvent::OrderStatusChanged {
        from,
        to,
        by: admin(),
        at,
    }
}

/// A shop holds many old reservations of live orders (awaiting payment, packing): more
/// than one sweep reads. They must not hide an orphan reserved after them.
async fn a_backlog_of_live_orders_hides_no_orphan(postgres: bool) {
    let Some(db) = setup(postgres).await else {
        return;
    };
    let old = Utc::now() - chrono::Duration::hours(3);
    let live: Vec<OrderId> = (0..1_001).map(|_| OrderId::new(Uuid::now_v7())).collect();
    let orphan = OrderId::new(Uuid::now_v7());
    let mut stock = vec![restocked("MUG", 2_000, old)];
    stock.extend(live.iter().map(|id| reserved(*id, 1, old)));
    // Newer than every live reservation, still older than the timeout.
    stock.push(reserved(orphan, 1, old + chrono::Duration::minutes(30)));
    db.stock("MUG", &stock).await;
    for id in &live {
        db.order(*id, &[placed(*id, "MUG", 1, old)]).await;
    }
    db.project().await;

    let settled = db
        .sweep(Duration::from_secs(3600), Reach::All)
        .await
        .settled;
    assert_eq!(settled, 1, "the orphan behind the live orders");
    let held = db.held("MUG").await;
    assert_eq!(held.len(), live.len());
    assert!(!held.iter().any(|(id, _)| *id == orphan));
}

/// A windowed sweep reads only the reservations reserved after its start: an index range,
/// however many older ones there are; a full sweep reads them all.
async fn a_windowed_sweep_reads_only_the_newest_reservations(postgres: bool) {
    let Some(db) = setup(postgres).await else {
        return;
    };
    let now = Utc::now();
    let (older, newer) = (OrderId::new(Uuid::now_v7()), OrderId::new(Uuid::now_v7()));
    let (three_hours_ago, ninety_minutes_ago) = (
        now - chrono::Duration::hours(3),
        now - chrono::Duration::minutes(90),
    );
    db.stock(
        "MUG",
        &[
            restocked("MUG", 10, three_hours_ago),
            reserved(older, 1, three_hours_ago),
            reserved(newer, 2, ninety_minutes_ago),
        ],
    )
    .await;
    db.project().await;
    let window = Reach::ReservedAfter(now - chrono::Duration::hours(2));
    let swept = db.sweep(Duration::from_secs(3600), window).await;
    assert_eq!(swept.settled, 1, "only the orphan inside the window");
    assert!(swept.complete);
    assert!(swept.cutoff <= Utc::now() - chrono::Duration::hours(1));
    assert_eq!(db.held("MUG").await, vec![(older, 1)]);
    db.project().await;
    assert_eq!(db.sweep(Duration::from_secs(3600), window).await.settled, 0);
    assert_eq!(
        db.sweep(Duration::from_secs(3600), Reach::All)
            .await
            .settled,
        1,
        "the full sweep finds the older one"
    );
    assert_eq!(db.held("MUG").await, vec![]);
}

/// Shipping moves the order first and commits its stock after: a crash in between leaves
/// a shipped order's stock reserved. The sweeper commits it; a live order's stays.
async fn a_shipped_order_s_reserved_stock_is_committed(postgres: bool) {
    let Some(db) = setup(postgres).await else {
        return;
    };
    let old = Utc::now() - chrono::Duration::hours(2);
    let (shipped, packed) = (OrderId::new(Uuid::now_v7()), OrderId::new(Uuid::now_v7()));
    db.stock(
        "MUG",
        &[
            restocked("MUG", 10, old),
            reserved(shipped, 3, old),
            reserved(packed, 2, old),
        ],
    )
    .await;
    let to_packed = [
        moved(OrderStatus::Placed, OrderStatus::Paid, old),
        moved(OrderStatus::Paid, OrderStatus::Packed, old),
    ];
    for id in [shipped, packed] {
        let quantity = if id == shipped { 3 } else { 2 };
        let mut events = vec![placed(id, "MUG", quantity, old)];
        events.extend(to_packed.iter().cloned());
        db.order(id, &events).await;
    }
    db.order(
        shipped,
        &[moved(OrderStatus::Packed, OrderStatus::Shipped, old)],
    )
    .await;
    db.project().await;

    let settled = db
        .sweep(Duration::from_secs(3600), Reach::All)
        .await
        .settled;
    assert_eq!(settled, 1);
    assert_eq!(db.held("MUG").await, vec![(packed, 2)]);
    let stock = db
        .state
        .commands
        .load::<Stock>(&stock_stream("MUG"))
        .await
        .expect("load")
        .state;
    assert_eq!(
        (stock.on_hand, stock.committed, stock.available()),
        (7, 3, 5)
    );
}

/// `run` sweeps on its own schedule and stops when told to.
async fn the_sweeper_runs_until_stopped(postgres: bool) {
    let Some(db) = setup(postgres).await else {
        return;
    };
    let orphan = OrderId::new(Uuid::now_v7());
    db.stock(
        "MUG",
        &[
            restocked("MUG", 2, Utc::now()),
            reserved(orphan, 2, Utc::now()),
        ],
    )
    .await;
    db.project().await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(sweeper::run(
        db.state.clone(),
        db.sql.clone(),
        Duration::from_millis(20),
        Duration::ZERO,
        async {
            let _ = stopped.await;
        },
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !db.held("MUG").await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sweeper did not release the orphan"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("the sweeper stops")
        .expect("sweeper task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_sweeps_orphaned_and_cancelled_reservations_only() {
    sweeps_orphaned_and_cancelled_reservations_only(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_sweeps_orphaned_and_cancelled_reservations_only() {
    sweeps_orphaned_and_cancelled_reservations_only(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_the_sweeper_runs_until_stopped() {
    the_sweeper_runs_until_stopped(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_the_sweeper_runs_until_stopped() {
    the_sweeper_runs_until_stopped(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_backlog_of_live_orders_hides_no_orphan() {
    a_backlog_of_live_orders_hides_no_orphan(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_backlog_of_live_orders_hides_no_orphan() {
    a_backlog_of_live_orders_hides_no_orphan(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_shipped_order_s_reserved_stock_is_committed() {
    a_shipped_order_s_reserved_stock_is_committed(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_shipped_order_s_reserved_stock_is_committed() {
    a_shipped_order_s_reserved_stock_is_committed(true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_windowed_sweep_reads_only_the_newest_reservations() {
    a_windowed_sweep_reads_only_the_newest_reservations(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_a_windowed_sweep_reads_only_the_newest_reservations() {
    a_windowed_sweep_reads_only_the_newest_reservations(true).await;
}
