//! The export against real folders and real read models: day files written, replaced
//! whole (never duplicated), removed when a day has no orders, left as they were when a
//! run fails; and, on SQLite and PostgreSQL, a back-dated history projected by the real
//! `orders` and `sales` projections, exported by day with the same figures the sales
//! report serves.
use std::{
    collections::BTreeMap,
    fs::File,
    path::{Path as FsPath, PathBuf},
    sync::Arc,
};

use arrow_array::{Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use chrono::{DateTime, NaiveDate, Utc};
use domain::{
    account::Role,
    aggregate::{DomainEvent, encode},
    ids::{AccountId, OrderId, ProductId, Sku},
    money::{Currency, Money},
    order::{Actor, OrderEvent, OrderLine, OrderStatus, ShippingAddress},
};
use eventstore::{
    EventStore, ExpectedVersion, NewEvent, StreamId,
    postgres::PostgresConfig,
    testsupport::{TestPostgres, TestSqlite},
};
use export::{
    Dataset, DayRange, Destination, parse_day,
    schema::{LineRecord, OrderRecord},
    write::write_day,
};
use object_store::{ObjectStoreExt, PutPayload};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use projector::{OrdersProjection, Projection, SalesProjection, apply_batch};

use sqlx::{AnyPool, Row, any::AnyPoolOptions};
use uuid::Uuid;

fn day(text: &str) -> NaiveDate {
    parse_day(text).unwrap()
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

/// Every file under `root`, relative, sorted.
fn files(root: &FsPath) -> Vec<String> {
    fn walk(dir: &FsPath, root: &FsPath, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else {
                out.push(path.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut out = Vec::new();
    if root.exists() {
        walk(root, root, &mut out);
    }
    out.sort();
    out
}

/// A Parquet file read back whole: its rows as one batch, and its key-value metadata.
fn read(path: &FsPath) -> (RecordBatch, BTreeMap<String, String>) {
    let builder = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap()).unwrap();
    let metadata = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .into_iter()
        .flatten()
        .filter_map(|kv| Some((kv.key.clone(), kv.value.clone()?)))
        .collect();
    let schema = builder.schema().clone();
    let mut batches = builder
        .with_batch_size(1 << 20)
        .build()
        .unwrap()
        .map(Result::unwrap);
    let batch = batches
        .next()
        .unwrap_or_else(|| RecordBatch::new_empty(schema));
    assert!(batches.next().is_none(), "a test file is read as one batch");
    (batch, metadata)
}

fn strings(batch: &RecordBatch, column: &str) -> Vec<String> {
    let array = batch.column_by_name(column).unwrap();
    let array = array.as_any().downcast_ref::<StringArray>().unwrap();
    assert_eq!(array.null_count(), 0);
    array.iter().map(|v| v.unwrap().to_owned()).collect()
}

fn ints(batch: &RecordBatch, column: &str) -> Vec<i64> {
    let array = batch.column_by_name(column).unwrap();
    array
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .values()
        .to_vec()
}

fn times(batch: &RecordBatch, column: &str) -> Vec<i64> {
    let array = batch.column_by_name(column).unwrap();
    let array = array
        .as_any()
        .downcast_ref::<TimestampMicrosecondArray>()
        .unwrap();
    assert_eq!(array.timezone(), Some("UTC"));
    array.values().to_vec()
}

fn record(n: u128, placed_at: &str, quantities: &[u32]) -> OrderRecord {
    let micros = at(placed_at).timestamp_micros();
    OrderRecord {
        order_id: Uuid::from_u128(n).to_string(),
        customer_id: Uuid::from_u128(1_000 + n).to_string(),
        status: "PLACED".into(),
        placed_at_micros: micros,
        updated_at_micros: micros,
        total_minor: quantities.iter().map(|&q| i64::from(q) * 499).sum(),
        currency: "EUR".into(),
        shipping_country: "FR".into(),
        lines: quantities
            .iter()
            .enumerate()
            .map(|(i, &q)| LineRecord {
                sku: format!("MUG-{i}"),
                product_id: Uuid::from_u128(2_000 + i as u128).to_string(),
                product_name: format!("Mug {i}"),
                quantity: i64::from(q),
                unit_price_minor: 499,
                line_total_minor: i64::from(q) * 499,
                currency: "EUR".into(),
            })
            .collect(),
    }
}

fn records(list: Vec<OrderRecord>) -> impl futures::Stream<Item = anyhow::Result<OrderRecord>> {
    futures::stream::iter(list.into_iter().map(Ok))
}

const ORDERS_1: &str = "orders/date=2024-05-01/part-0.parquet";
const LINES_1: &str = "order_lines/date=2024-05-01/part-0.parquet";

#[tokio::test]
async fn a_day_is_replaced_whole_and_never_duplicated() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let lake = Destination::open(root.to_str().unwrap()).unwrap();
    let may1 = day("2024-05-01");
    let meta = [("emporium.orders_checkpoint".to_owned(), "42".to_owned())];

    let first = vec![
        record(1, "2024-05-01T00:00:00Z", &[2, 3]),
        record(2, "2024-05-01T23:59:59.999999Z", &[1]),
    ];
    let report = write_day(&lake, may1, records(first.clone()), &meta)
        .await
        .unwrap();
    assert_eq!((report.orders, report.lines, report.removed), (2, 3, 0));
    assert_eq!(files(&root), [LINES_1, ORDERS_1], "no staging file is left");
    let (orders, metadata) = read(&root.join(ORDERS_1));
    assert_eq!(
        strings(&orders, "order_id"),
        [
            Uuid::from_u128(1).to_string(),
            Uuid::from_u128(2).to_string()
        ]
    );
    assert_eq!(ints(&orders, "units"), [5, 1]);
    assert_eq!(ints(&orders, "total_minor"), [2_495, 499]);
    assert_eq!(
        times(&orders, "placed_at"),
        [1_714_521_600_000_000, 1_714_607_999_999_999]
    );
    assert_eq!(metadata["emporium.dataset"], "orders");
    assert_eq!(metadata["emporium.schema_version"], "1");
    assert_eq!(metadata["emporium.orders_checkpoint"], "42");
    let (lines, metadata) = read(&root.join(LINES_1));
    assert_eq!(ints(&lines, "quantity"), [2, 3, 1]);
    assert_eq!(ints(&lines, "line_total_minor"), [998, 1_497, 499]);
    assert_eq!(strings(&lines, "status"), ["PLACED"; 3]);
    assert_eq!(metadata["emporium.dataset"], "order_lines");

    // The same input writes the same bytes: a re-run is a no-op for a finished day.
    let before = std::fs::read(root.join(ORDERS_1)).unwrap();
    write_day(&lake, may1, records(first), &meta).await.unwrap();
    assert_eq!(std::fs::read(root.join(ORDERS_1)).unwrap(), before);

    // A re-run with other data replaces the rows, and removes a file of an earlier layout.
    let stale = "orders/date=2024-05-01/part-1.parquet";
    std::fs::write(root.join(stale), b"old").unwrap();
    let second = vec![record(3, "2024-05-01T12:00:00Z", &[4])];
    let report = write_day(&lake, may1, records(second), &meta)
        .await
        .unwrap();
    assert_eq!((report.orders, report.lines, report.removed), (1, 1, 1));
    assert_eq!(files(&root), [LINES_1, ORDERS_1]);
    let (orders, _) = read(&root.join(ORDERS_1));
    assert_eq!(
        strings(&orders, "order_id"),
        [Uuid::from_u128(3).to_string()]
    );
    assert_eq!(read(&root.join(LINES_1)).0.num_rows(), 1);

    // Another day is untouched by this one's runs and listed beside it.
    write_day(
        &lake,
        day("2024-05-02"),
        records(vec![record(4, "2024-05-02T08:00:00Z", &[1])]),
        &meta,
    )
    .await
    .unwrap();
    for dataset in Dataset::ALL {
        assert_eq!(
            lake.partition_days(dataset)
                .await
                .unwrap()
                .into_iter()
                .collect::<Vec<_>>(),
            [may1, day("2024-05-02")]
        );
    }

    // A day with no orders has no files, and no folders.
    let report = write_day(&lake, may1, records(Vec::new()), &meta)
        .await
        .unwrap();
    assert_eq!((report.orders, report.lines, report.removed), (0, 0, 2));
    assert_eq!(
        files(&root),
        [
            "order_lines/date=2024-05-02/part-0.parquet",
            "orders/date=2024-05-02/part-0.parquet"
        ]
    );
    assert!(!root.join("orders/date=2024-05-01").exists());
}

#[tokio::test]
async fn a_failed_run_leaves_the_day_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let lake = Destination::open(root.to_str().unwrap()).unwrap();
    let may1 = day("2024-05-01");
    write_day(
        &lake,
        may1,
        records(vec![record(1, "2024-05-01T10:00:00Z", &[1, 2])]),
        &[],
    )
    .await
    .unwrap();
    let before = (
        std::fs::read(root.join(ORDERS_1)).unwrap(),
        std::fs::read(root.join(LINES_1)).unwrap(),
    );

    // Enough orders that batches reach the writers before the read fails.
    let mut list: Vec<anyhow::Result<OrderRecord>> = (0..10_000)
        .map(|n| Ok(record(100 + n, "2024-05-01T11:00:00Z", &[1])))
        .collect();
    list.push(Err(anyhow::anyhow!("the database went away")));
    let err = write_day(&lake, may1, futures::stream::iter(list), &[])
        .await
        .unwrap_err();
    assert!(
        format!("{err:#}").contains("the database went away"),
        "{err:#}"
    );

    assert_eq!(files(&root), [LINES_1, ORDERS_1]);
    assert_eq!(std::fs::read(root.join(ORDERS_1)).unwrap(), before.0);
    assert_eq!(std::fs::read(root.join(LINES_1)).unwrap(), before.1);
}

// --- a projected history on a real database -------------------------------------------

struct Db {
    store: Arc<dyn EventStore>,
    pool: AnyPool,
    _guard: (Option<TestSqlite>, Option<TestPostgres>),
}

impl Db {
    async fn sqlite() -> Self {
        sqlx::any::install_default_drivers();
        let db = TestSqlite::new().await;
        let pool = AnyPoolOptions::new()
            .connect(&format!("sqlite://{}", db.path.display()))
            .await
            .unwrap();
        let store = eventstore::sqlite::SqliteEventStore::open(&db.path)
            .await
            .unwrap();
        Self {
            store: Arc::new(store),
            pool,
            _guard: (Some(db), None),
        }
    }

    async fn postgres() -> Option<Self> {
        sqlx::any::install_default_drivers();
        let db = TestPostgres::new().await?;
        let pool = AnyPoolOptions::new().connect(&db.url).await.unwrap();
        Some(Self {
            store: Arc::new(db.store(&PostgresConfig::default())),
            pool,
            _guard: (None, Some(db)),
        })
    }

    async fn append(&self, id: OrderId, event: &OrderEvent) {
        let (event_type, data) = encode(event);
        let new = NewEvent::new(
            event_type,
            OrderEvent::schema_version(event.event_type()),
            data,
        );
        self.store
            .append(&StreamId::of("order", id), ExpectedVersion::Any, vec![new])
            .await
            .unwrap();
    }

    /// Runs `projections` over the whole log, as the projector does (rows and checkpoint
    /// in one transaction).
    async fn project(&self, projections: &[&dyn Projection]) {
        let events = self.store.read_all(0, 100_000).await.unwrap();
        for projection in projections {
            let name = projection.name();
            let committed = projector::checkpoint(&self.pool, name).await.unwrap();
            sqlx::query(
                "INSERT INTO projection_checkpoints (name, position, updated_at) \
                 VALUES ($1, 0, '2024-01-01T00:00:00.000000Z') ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .execute(&self.pool)
            .await
            .unwrap();
            apply_batch(&self.pool, *projection, committed, &events)
                .await
                .unwrap();
        }
    }
}

fn money(amount: i64, currency: &str) -> Money {
    Money {
        amount,
        currency: Currency::parse(currency).unwrap(),
    }
}

fn line(sku: &str, product: u128, quantity: u32, unit: i64, currency: &str) -> OrderLine {
    OrderLine {
        sku: Sku::parse(sku).unwrap(),
        product_id: ProductId::new(Uuid::from_u128(product)),
        name: format!("Product {product}"),
        quantity,
        unit_price: money(unit, currency),
        line_total: money(unit * i64::from(quantity), currency),
    }
}

fn placed(id: OrderId, lines: Vec<OrderLine>, placed_at: &str) -> OrderEvent {
    let currency = lines[0].line_total.currency;
    let total = lines.iter().map(|l| l.line_total.amount).sum();
    OrderEvent::OrderPlaced {
        id,
        customer_id: AccountId::new(Uuid::from_u128(7)),
        total: Money {
            amount: total,
            currency,
        },
        lines,
        shipping_address: ShippingAddress {
            name: "Ada Lovelace".into(),
            line1: "1 Analytical Way".into(),
            line2: None,
            city: "London".into(),
            region: None,
            postal_code: "N1 9GU".into(),
            country: "GB".into(),
        },
        placed_at: at(placed_at),
    }
}

fn admin() -> Actor {
    Actor {
        id: AccountId::new(Uuid::from_u128(1)),
        role: Role::Admin,
    }
}

/// Orders on 2024-04-30 (outside the range), 05-01 (two, one at the day's last
/// microsecond), 05-02 (one cancelled, one at the first microsecond, then paid), 05-04
/// (EUR and USD). 05-03 has none.
async fn history(db: &Db) {
    let order = |n: u128| {
        OrderId::new(Uuid::from_u128(
            0x0190_0000_0000_7000_8000_0000_0000_0000 + n,
        ))
    };
    let script = [
        (
            1,
            placed(
                order(1),
                vec![line("MUG-B", 11, 2, 1_250, "EUR")],
                "2024-04-30T12:00:00Z",
            ),
        ),
        (
            2,
            placed(
                order(2),
                vec![
                    line("MUG-B", 11, 1, 1_250, "EUR"),
                    line("TEA-G", 12, 3, 800, "EUR"),
                ],
                "2024-05-01T08:30:00Z",
            ),
        ),
        (
            3,
            placed(
                order(3),
                vec![line("TEA-G", 12, 1, 800, "EUR")],
                "2024-05-01T23:59:59.999999Z",
            ),
        ),
        (
            4,
            placed(
                order(4),
                vec![line("MUG-B", 11, 5, 1_250, "EUR")],
                "2024-05-02T09:00:00Z",
            ),
        ),
        (
            5,
            placed(
                order(5),
                vec![line("TEA-G", 12, 2, 800, "EUR")],
                "2024-05-02T00:00:00Z",
            ),
        ),
        (
            6,
            placed(
                order(6),
                vec![line("MUG-B", 11, 1, 1_250, "EUR")],
                "2024-05-04T10:00:00Z",
            ),
        ),
        (
            7,
            placed(
                order(7),
                vec![line("MUG-US", 13, 2, 1_500, "USD")],
                "2024-05-04T11:00:00Z",
            ),
        ),
    ];
    for (n, event) in &script {
        db.append(order(*n), event).await;
    }
    db.append(
        order(4),
        &OrderEvent::OrderCancelled {
            from: OrderStatus::Placed,
            by: admin(),
            reason: Some("changed mind".into()),
            at: at("2024-05-03T10:00:00Z"),
        },
    )
    .await;
    db.append(
        order(5),
        &OrderEvent::OrderStatusChanged {
            from: OrderStatus::Placed,
            to: OrderStatus::Paid,
            by: admin(),
            at: at("2024-05-05T10:00:00Z"),
        },
    )
    .await;
    // The sales report's read model only: the export brings the orders read model up to
    // the log's head itself.
    db.project(&[&SalesProjection]).await;
}

/// (day, currency) → (orders, units, revenue) as the sales report's read model holds it.
async fn sales_by_day(pool: &AnyPool) -> BTreeMap<(String, String), (i64, i64, i64)> {
    sqlx::query("SELECT day, currency, orders, units, revenue FROM rm_sales_days")
        .fetch_all(pool)
        .await
        .unwrap()
        .iter()
        .map(|row| {
            (
                (row.get("day"), row.get("currency")),
                (row.get("orders"), row.get("units"), row.get("revenue")),
            )
        })
        .collect()
}

/// The same figures from the exported lines: not cancelled, per partition and currency.
fn lake_by_day(root: &FsPath) -> BTreeMap<(String, String), (i64, i64, i64)> {
    let mut figures: BTreeMap<(String, String), (std::collections::BTreeSet<String>, i64, i64)> =
        BTreeMap::new();
    for file in files(root).iter().filter(|f| f.starts_with("order_lines/")) {
        let day = file
            .split('/')
            .nth(1)
            .and_then(|d| d.strip_prefix("date="))
            .unwrap()
            .to_owned();
        let (lines, _) = read(&root.join(file));
        let (ids, statuses, currencies) = (
            strings(&lines, "order_id"),
            strings(&lines, "status"),
            strings(&lines, "currency"),
        );
        let (quantities, totals) = (ints(&lines, "quantity"), ints(&lines, "line_total_minor"));
        for (placed_at, i) in times(&lines, "placed_at").into_iter().zip(0..) {
            let placed_day = DateTime::from_timestamp_micros(placed_at)
                .unwrap()
                .date_naive();
            assert_eq!(
                placed_day.to_string(),
                day,
                "a line lies in its placement day"
            );
            if statuses[i] == "CANCELLED" {
                continue;
            }
            let entry = figures
                .entry((day.clone(), currencies[i].clone()))
                .or_default();
            entry.0.insert(ids[i].clone());
            entry.1 += quantities[i];
            entry.2 += totals[i];
        }
    }
    figures
        .into_iter()
        .map(|(key, (orders, units, revenue))| (key, (orders.len() as i64, units, revenue)))
        .collect()
}

async fn exports_days_with_the_sales_reports_figures(db: Db) {
    history(&db).await;
    let dir = tempfile::tempdir().unwrap();
    let root: PathBuf = dir.path().join("lake");
    let lake = Destination::open(root.to_str().unwrap()).unwrap();
    // A day of the range that has no orders (any more) but has files from an earlier run.
    lake.store()
        .put(
            &lake.part_file(Dataset::Orders, day("2024-05-03")),
            PutPayload::from_static(b"stale"),
        )
        .await
        .unwrap();

    let range = DayRange::new(day("2024-05-01"), day("2024-05-04")).unwrap();
    assert_eq!(
        projector::checkpoint(&db.pool, OrdersProjection::NAME)
            .await
            .unwrap(),
        0
    );
    let report = export::export(db.store.as_ref(), &db.pool, &lake, range)
        .await
        .unwrap();
    let head = db.store.head_position().await.unwrap();
    assert_eq!(report.checkpoint, head);
    assert_eq!(
        projector::checkpoint(&db.pool, OrdersProjection::NAME)
            .await
            .unwrap(),
        head
    );
    let summary: Vec<_> = report
        .days
        .iter()
        .map(|d| (d.day.to_string(), d.orders, d.lines, d.removed))
        .collect();
    assert_eq!(
        summary,
        [
            ("2024-05-01".into(), 2, 3, 0),
            ("2024-05-02".into(), 2, 2, 0),
            ("2024-05-03".into(), 0, 0, 1),
            ("2024-05-04".into(), 2, 2, 0),
        ]
    );
    let layout = files(&root);
    assert_eq!(layout.len(), 6, "{layout:?}");
    assert!(
        layout
            .iter()
            .all(|f| !f.contains("2024-04-30") && !f.contains("2024-05-03"))
    );

    let (orders, metadata) = read(&root.join("orders/date=2024-05-02/part-0.parquet"));
    assert_eq!(metadata["emporium.orders_checkpoint"], head.to_string());
    // By placement time: the order placed at midnight first; statuses as they are now.
    assert_eq!(strings(&orders, "status"), ["PAID", "CANCELLED"]);
    assert_eq!(strings(&orders, "shipping_country"), ["GB", "GB"]);
    assert_eq!(ints(&orders, "total_minor"), [1_600, 6_250]);

    let mut expected = sales_by_day(&db.pool).await;
    expected.retain(|(day, _), _| day.as_str() >= "2024-05-01" && day.as_str() <= "2024-05-04");
    assert_eq!(expected.len(), 4, "{expected:?}");
    assert_eq!(lake_by_day(&root), expected);

    // A re-run rewrites the same days with the same rows: nothing added, nothing removed.
    let bytes: Vec<Vec<u8>> = layout
        .iter()
        .map(|f| std::fs::read(root.join(f)).unwrap())
        .collect();
    let again = export::export(db.store.as_ref(), &db.pool, &lake, range)
        .await
        .unwrap();
    assert_eq!(again.days.len(), 3, "the emptied day is not revisited");
    assert_eq!(files(&root), layout);
    let after: Vec<Vec<u8>> = layout
        .iter()
        .map(|f| std::fs::read(root.join(f)).unwrap())
        .collect();
    assert!(
        bytes == after,
        "a re-run over unchanged orders writes identical files"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_exports_days_with_the_sales_reports_figures() {
    exports_days_with_the_sales_reports_figures(Db::sqlite().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_exports_days_with_the_sales_reports_figures() {
    let Some(db) = Db::postgres().await else {
        return;
    };
    exports_days_with_the_sales_reports_figures(db).await;
}
