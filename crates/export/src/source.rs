//! Reading the `orders` read model (`rm_orders`), one UTC day of placement at a time.
//!
//! `rm_orders.created_at` is the order's placement time (`OrderPlaced.placed_at`) as
//! RFC 3339 UTC text with microseconds, so a day is a text range on the
//! `rm_orders_created` index; `view` is the full order view the projection keeps, decoded
//! with the projector's own type so the export means what the read model means.
//!
//! Before reading, [`catch_up`] brings the read model to the log's head as the export
//! starts, exactly as the projector would (so an embedded store whose server is not running
//! exports everything too).
use anyhow::Context;
use chrono::{NaiveDate, Utc};
use eventstore::EventStore;
use futures::{Stream, StreamExt};
use projector::{BatchOutcome, apply_batch, orders::OrdersProjection};
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

/// Events applied per transaction by [`catch_up`].
const CATCH_UP_BATCH: usize = 1_000;

/// Applies to the `orders` read model the events of `store` it has not applied yet, up to
/// the head of the log when called, through the projector's own [`apply_batch`]: rows and
/// checkpoint in one transaction, after locking the checkpoint row, so this is safe while
/// a projector runs the same projection elsewhere (neither applies an event twice).
/// Returns the checkpoint reached.
///
/// # Errors
/// When the log or the database fails, or the projection refuses an event.
pub async fn catch_up(store: &dyn EventStore, pool: &AnyPool) -> anyhow::Result<u64> {
    let head = store
        .head_position()
        .await
        .context("reading the log's head")?;
    // The row the projector creates when it first runs (it may never have run here).
    sqlx::query(
        "INSERT INTO projection_checkpoints (name, position, updated_at) VALUES ($1, 0, $2) \
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(OrdersProjection::NAME)
    .bind(projector::timestamp(Utc::now()))
    .execute(pool)
    .await
    .context("creating the orders checkpoint")?;
    let mut committed = checkpoint(pool).await?;
    while committed < head {
        let events = store
            .read_all(committed, CATCH_UP_BATCH)
            .await
            .context("reading the log")?;
        if events.is_empty() {
            // PostgreSQL withholds events of transactions still in flight: the rest waits.
            break;
        }
        committed = match apply_batch(pool, &OrdersProjection, committed, &events).await? {
            BatchOutcome::Committed { checkpoint, .. } => checkpoint,
            // A replay reset the projection: follow it from where it is.
            BatchOutcome::CheckpointMovedBack { stored } => stored,
        };
    }
    Ok(committed)
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
