//! The data-lake export (`emporium export`): orders and order lines as Parquet, one
//! partition per UTC day of placement, into a local folder or an S3 bucket, readable by
//! DuckDB, Spark or Athena.
//!
//! Layout under the destination's root (hive partitioning):
//! `orders/date=YYYY-MM-DD/part-0.parquet` and `order_lines/date=YYYY-MM-DD/part-0.parquet`;
//! the columns are in [`schema`].
//!
//! Source and meaning: the `orders` read model (`rm_orders`). An order belongs to the UTC
//! day its `OrderPlaced` event says it was placed on, and is exported with its status now;
//! cancelled orders are exported too (status `CANCELLED`). This is the rule of the `sales`
//! projection behind `GET /api/v1/analytics/sales`, so, once both projections have reached
//! the same log position, a day's revenue (sum of `line_total_minor`), units (sum of
//! `quantity`) and orders (distinct `order_id`) over the lines whose `status` is not
//! `CANCELLED`, per currency, equal that day's sales figures.
//!
//! Guarantees: a day is rewritten whole on every run that covers it (see
//! [`write::write_day`]): files are published atomically under deterministic names, so a
//! re-run replaces a day's rows and never duplicates them; a day without orders has no
//! files. The export first brings the `orders` read model up to the log's head (see
//! [`source::catch_up`]), then reads only the read model.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod days;
pub mod destination;
pub mod schema;
pub mod source;
pub mod write;

use std::collections::BTreeSet;

pub use chrono::NaiveDate;
pub use days::{DayRange, parse_day};
pub use destination::{Dataset, Destination};
pub use write::DayReport;

use eventstore::EventStore;
use sqlx::AnyPool;

/// What an export did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The log position the `orders` read model reflected once caught up (also in each
    /// file's metadata as `emporium.orders_checkpoint`).
    pub checkpoint: u64,
    /// Every day rewritten: the days of the range with orders, and those without orders
    /// whose earlier files were removed.
    pub days: Vec<DayReport>,
}

/// Exports the orders placed on the days of `range` to `destination`, one day after
/// another: the `orders` read model in `pool` is first caught up with `store`'s head.
///
/// Days with orders are found with one index seek each; days without orders are visited
/// only when they have partitions to remove, so a long, sparse range costs little.
///
/// # Errors
/// When the read model or the destination fails; the days done before stay done, the day
/// that failed keeps its previous files.
pub async fn export(
    store: &dyn EventStore,
    pool: &AnyPool,
    destination: &Destination,
    range: DayRange,
) -> anyhow::Result<Report> {
    let checkpoint = source::catch_up(store, pool).await?;
    let mut days: BTreeSet<NaiveDate> = source::days_with_orders(pool, range)
        .await?
        .into_iter()
        .collect();
    for dataset in Dataset::ALL {
        let existing = destination.partition_days(dataset).await?;
        days.extend(existing.into_iter().filter(|day| range.contains(*day)));
    }
    let metadata = [(
        "emporium.orders_checkpoint".to_owned(),
        checkpoint.to_string(),
    )];
    let mut reports = Vec::with_capacity(days.len());
    for day in days {
        let orders = source::orders_on(pool, day);
        reports.push(write::write_day(destination, day, orders, &metadata).await?);
    }
    Ok(Report {
        checkpoint,
        days: reports,
    })
}
