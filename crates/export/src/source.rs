//! Reading the `orders` read model (`rm_orders`), one UTC day of placement at a time.
//!
//! `rm_orders.created_at` is the order's placement time (`OrderPlaced.placed_at`) as
//! RFC 3339 UTC text with microseconds, so a day is a text range on the
//! `rm_orders_created` index; `view` is the full order view the projection keeps, decoded
//! with the projector's own type so the export means what the read model means.
use anyhow::Context;
use chrono::NaiveDate;
use futures::{Stream, StreamExt};
use projector::orders::OrdersProjection;
use sqlx::AnyPool;

use crate::{
    days::{DayRange, bounds, parse_day},
    schema::OrderRecord,
};

/// The position of the log the `orders` read model reflects.
///
/// # Errors
/// When the database cannot be read.
pub async fn checkpoint(pool: &AnyPool) -> anyhow::Result<u64> {
    projector::checkpoint(pool, OrdersProjection::NAME).await
}

/// The days of `range` on which at least one order was placed, in order: one index seek
/// per such day, however long and sparse the range.
///
/// # Errors
/// When the database cannot be read or holds a malformed time.
pub async fn days_with_orders(pool: &AnyPool, range: DayRange) -> anyhow::Result<Vec<NaiveDate>> {
    let (mut from, end) = range.bounds();
    let mut days = Vec::new();
    loop {
        let first: Option<String> = sqlx::query_scalar(
            "SELECT MIN(created_at) FROM rm_orders WHERE created_at >= $1 AND created_at < $2",
        )
        .bind(&from)
        .bind(&end)
        .fetch_one(pool)
        .await
        .context("reading rm_orders")?;
        let Some(first) = first else {
            return Ok(days);
        };
        let day = first
            .get(..10)
            .and_then(|text| parse_day(text).ok())
            .with_context(|| format!("bad rm_orders.created_at {first:?}"))?;
        days.push(day);
        from = bounds(day).1;
    }
}

/// The orders placed on `day`, by placement time then id, streamed from one query (so one
/// consistent snapshot of the day).
pub fn orders_on(
    pool: &AnyPool,
    day: NaiveDate,
) -> impl Stream<Item = anyhow::Result<OrderRecord>> + '_ {
    let (start, end) = bounds(day);
    sqlx::query_scalar::<_, String>(
        "SELECT view FROM rm_orders WHERE created_at >= $1 AND created_at < $2 \
         ORDER BY created_at, id",
    )
    .bind(start)
    .bind(end)
    .fetch(pool)
    .map(|view| {
        let view = view.context("reading rm_orders")?;
        let view: projector::orders::OrderView =
            serde_json::from_str(&view).context("bad stored order view")?;
        OrderRecord::from_view(&view)
    })
}
