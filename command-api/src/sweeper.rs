//! The reservation sweeper (DESIGN.md, "Placing an order", step 4): releases stock held for
//! orders that never appeared, or that were cancelled without their stock being released.
//!
//! An order reserves its SKUs before `OrderPlaced` is appended; a process that dies in
//! between leaves reservations without an order. The sweeper reads the open reservations
//! older than a timeout from the `inventory` read model (`rm_reservations`), and for each
//! asks the event store, the source of truth, whether its order exists:
//! - the order stream `order-{id}` does not exist: the reservation is an orphan;
//! - the order, folded from its stream, is `CANCELLED`: its stock is due back;
//! - otherwise the order is live and its reservation is left alone, always.
//!
//! Releases go through the stock aggregate (`StockCommand::Release`), which is idempotent:
//! a reservation the read model still shows but that is already gone appends nothing.
//!
//! The timeout must be far longer than placing an order takes: an order whose placement
//! is still running when its reservation times out would lose its stock.
use std::{collections::BTreeMap, future::Future, time::Duration};

use anyhow::Context;
use chrono::{SecondsFormat, Utc};
use domain::{
    aggregate::Aggregate,
    ids::{OrderId, Sku},
    inventory::{Stock, StockCommand},
    order::{Order, OrderStatus},
};
use sqlx::{AnyPool, Row};

use crate::{
    ordering::order_stream, routes::inventory::stock_stream, service::CommandMeta, state::AppState,
};

/// The actor recorded on the sweeper's releases.
pub const ACTOR: &str = "reservation-sweeper";

/// Most reservations read in one sweep; the next sweep takes the rest.
const MAX_PER_SWEEP: i64 = 1000;

/// Whether the order's reservations may be released: it never appeared, or it is
/// cancelled.
async fn releasable(state: &AppState, order: OrderId) -> anyhow::Result<bool> {
    let stream = order_stream(order);
    if state.commands.store().stream_version(&stream).await? == 0 {
        return Ok(true);
    }
    let loaded = state
        .commands
        .load::<Order>(&stream)
        .await
        .map_err(|e| anyhow::anyhow!("loading {stream}: {e}"))?;
    Ok(loaded.state.status == Some(OrderStatus::Cancelled))
}

/// One sweep: releases every reservation older than `older_than` whose order does not
/// exist in the event store or is cancelled. Returns how many reservations were released
/// (reservations already gone from the log are not counted).
///
/// # Errors
/// When the read model or the event store cannot be read, or a release cannot be
/// appended; releases done before the failure stay done.
pub async fn sweep_once(
    state: &AppState,
    sql: &AnyPool,
    older_than: Duration,
) -> anyhow::Result<usize> {
    let cutoff = Utc::now() - chrono::Duration::from_std(older_than).context("timeout too long")?;
    let rows = sqlx::query(
        "SELECT sku, order_id FROM rm_reservations WHERE reserved_at <= $1 \
         ORDER BY reserved_at, order_id, sku LIMIT $2",
    )
    .bind(cutoff.to_rfc3339_opts(SecondsFormat::Micros, true))
    .bind(MAX_PER_SWEEP)
    .fetch_all(sql)
    .await
    .context("reading rm_reservations")?;
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
    let mut released = 0;
    for (order, skus) in by_order {
        if !releasable(state, order).await? {
            continue;
        }
        for sku in skus {
            let done = state
                .commands
                .execute::<Stock, _>(&stock_stream(&sku), &meta, |stock| {
                    Ok(Stock::decide(
                        stock,
                        StockCommand::Release {
                            order_id: order,
                            now: Utc::now(),
                        },
                    )?)
                })
                .await
                .map_err(|e| anyhow::anyhow!("releasing {sku} of order {order}: {e}"))?;
            if !done.events.is_empty() {
                tracing::info!(%order, %sku, "reservation swept: released the stock");
                released += 1;
            }
        }
    }
    Ok(released)
}

/// Sweeps every `every` until `shutdown` resolves, releasing reservations older than
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
                Ok(released) => tracing::info!(released, "reservation sweep done"),
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
