//! The reservation sweeper (DESIGN.md, "Placing an order", step 4): settles stock held for
//! orders that never appeared, or whose stock work a crash interrupted.
//!
//! An order reserves its SKUs before `OrderPlaced` is appended; a process that dies in
//! between leaves reservations without an order. Cancelling and shipping change the order
//! first and the stock after, so a crash in between leaves a cancelled order's stock
//! reserved, or a shipped order's stock reserved instead of committed. The sweeper reads
//! the open reservations older than a timeout whose order the `orders` read model does
//! not show live (`rm_reservations` without a row in `rm_orders`, or with a cancelled,
//! shipped or delivered one), and for each asks the event store, the source of truth:
//! - the order stream `order-{id}` does not exist: the reservation is an orphan, released;
//! - the order, folded from its stream, is `CANCELLED`: its stock is released;
//! - it is `SHIPPED` or `DELIVERED`: its stock is committed;
//! - otherwise the order is live and its reservation is left alone, always.
//!
//! Reservations of live orders are left out by the query itself, however many there are:
//! a shop with orders awaiting payment or packing holds thousands of old reservations, and
//! a sweep that read the oldest thousand and skipped them would never reach an orphan.
//!
//! Releases and commits go through the stock aggregate, which is idempotent: a reservation
//! the read model still shows but that is already gone appends nothing.
//!
//! The timeout must be far longer than placing an order takes: an order whose placement
//! is still running when its reservation times out would lose its stock.
use std::{collections::BTreeMap, future::Future, time::Duration};

use anyhow::Context;
use chrono::{SecondsFormat, Utc};
use domain::{
    ids::{OrderId, Sku},
    order::{Order, OrderStatus, StockEffect},
};
use sqlx::{AnyPool, Row};

use crate::{
    ordering::{order_stream, settle_stock},
    service::CommandMeta,
    state::AppState,
};

/// The actor recorded on the sweeper's releases and commits.
pub const ACTOR: &str = "reservation-sweeper";

/// Most reservations read in one sweep; the next sweep takes the rest.
const MAX_PER_SWEEP: i64 = 1000;

/// What becomes of an old reservation, as its order in the event store says: released
/// when there is no such order or it is cancelled, committed when it is shipped or
/// delivered, kept (`StockEffect::None`) while it is live.
async fn settlement(state: &AppState, order: OrderId) -> anyhow::Result<StockEffect> {
    let stream = order_stream(order);
    if state.commands.store().stream_version(&stream).await? == 0 {
        return Ok(StockEffect::Release);
    }
    let loaded = state
        .commands
        .load::<Order>(&stream)
        .await
        .map_err(|e| anyhow::anyhow!("loading {stream}: {e}"))?;
    Ok(match loaded.state.status {
        Some(OrderStatus::Cancelled) => StockEffect::Release,
        Some(OrderStatus::Shipped | OrderStatus::Delivered) => StockEffect::Commit,
        _ => StockEffect::None,
    })
}

/// One sweep: settles every reservation older than `older_than` whose order does not exist
/// in the event store (released), is cancelled (released), or is shipped or delivered
/// (committed). Returns how many reservations were settled (reservations already gone
/// from the log are not counted).
///
/// # Errors
/// When the read models or the event store cannot be read, or a release or commit cannot
/// be appended; what was settled before the failure stays settled.
pub async fn sweep_once(
    state: &AppState,
    sql: &AnyPool,
    older_than: Duration,
) -> anyhow::Result<usize> {
    let cutoff = Utc::now() - chrono::Duration::from_std(older_than).context("timeout too long")?;
    let rows = sqlx::query(
        "SELECT r.sku, r.order_id FROM rm_reservations r \
         LEFT JOIN rm_orders o ON o.id = r.order_id \
         WHERE r.reserved_at <= $1 \
           AND (o.id IS NULL OR o.status IN ('CANCELLED', 'SHIPPED', 'DELIVERED')) \
         ORDER BY r.reserved_at, r.order_id, r.sku LIMIT $2",
    )
    .bind(cutoff.to_rfc3339_opts(SecondsFormat::Micros, true))
    .bind(MAX_PER_SWEEP)
    .fetch_all(sql)
    .await
    .context("reading rm_reservations and rm_orders")?;
    let mut by_order: BTreeMap<OrderId, Vec<Sku>> = BTreeMap::new();
    for row in rows {
        let order: String = row.try_get("order_id")?;
        let sku: String = row.try_get("sku")?;
        let order: OrderId = order
            .parse()
            .with_context(|| format!("bad order id {order:?} in rm_reservations"))?;
        let sku = Sku::parse(&sku).map_err(|e| anyhow::anyhow!("bad SKU {sku:?}: {e:?}"))?;
        by_order.entry(order).or_default().push(sku);
    }
    let meta = CommandMeta::by(ACTOR);
    let mut settled = 0;
    for (order, skus) in by_order {
        let settlement = settlement(state, order).await?;
        if settlement == StockEffect::None {
            continue;
        }
        for sku in skus {
            let done = settle_stock(state, &sku, order, settlement, &meta)
                .await
                .map_err(|e| anyhow::anyhow!("settling {sku} of order {order}: {e}"))?;
            if !done.events.is_empty() {
                tracing::info!(%order, %sku, ?settlement, "reservation swept");
                settled += 1;
            }
        }
    }
    Ok(settled)
}

/// Sweeps every `every` until `shutdown` resolves, settling reservations older than
/// `older_than` (see [`sweep_once`]). A failed sweep is logged and tried again next time.
pub async fn run(
    state: AppState,
    sql: AnyPool,
    every: Duration,
    older_than: Duration,
    shutdown: impl Future<Output = ()>,
) {
    let sweeping = async {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match sweep_once(&state, &sql, older_than).await {
                Ok(0) => {}
                Ok(settled) => tracing::info!(settled, "reservation sweep done"),
                Err(err) => {
                    tracing::warn!(error = ?err, "reservation sweep failed; retrying later")
                }
            }
        }
    };
    tokio::select! {
        biased;
        () = shutdown => tracing::info!("reservation sweeper stopped"),
        () = sweeping => {}
    }
}
