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
//! Most sweeps read only the reservations that crossed the timeout since the last sweep
//! (less [`WINDOW_OVERLAP`], for read models that learn of a reservation late): an index
//! range over `reserved_at`, whatever the number of live orders. The first sweep, one after
//! every [`WINDOWED_PER_FULL`] windowed ones, and one after a full sweep that could not
//! read all it found read every reservation past the timeout: so whatever a window missed
//! (a crash-interrupted cancellation, an orphan the read models learnt of later still) is
//! settled within the hour. The [`Schedule`] decides; it is pure.
//!
//! The timeout must be far longer than placing an order takes: an order whose placement
//! is still running when its reservation times out would lose its stock.
use std::{collections::BTreeMap, future::Future, time::Duration};

use anyhow::Context;
use chrono::{DateTime, SecondsFormat, Utc};
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
const MAX_PER_SWEEP: usize = 1000;

/// Sweeps that read only the newest reservations between two that read them all: with the
/// default interval of a minute, a full sweep an hour.
pub const WINDOWED_PER_FULL: u32 = 59;

/// How far before the last sweep's cutoff a windowed sweep reads: a reservation the
/// inventory projection writes up to this late (its lag is milliseconds when it is well)
/// is still read by a window; a later one by the next full sweep.
pub const WINDOW_OVERLAP: Duration = Duration::from_secs(60);

/// Which reservations past the timeout a sweep reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Every one.
    All,
    /// Those reserved after this moment.
    ReservedAfter(DateTime<Utc>),
}

/// What one sweep did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Swept {
    /// Reservations released or committed (those already gone from the log not counted).
    pub settled: usize,
    /// The sweep read the reservations reserved up to this moment (now less the timeout).
    pub cutoff: DateTime<Utc>,
    /// It read every one it found up to `cutoff`; false when it read its most.
    pub complete: bool,
}

/// Which reach the next sweep has: a window from the last complete sweep's cutoff, or
/// everything (see the module's documentation).
#[derive(Clone, Debug, Default)]
pub struct Schedule {
    /// The cutoff of the last complete sweep, when every sweep since the last full one
    /// was complete: reservations up to it have been read.
    read_up_to: Option<DateTime<Utc>>,
    /// Windowed sweeps since the last full one.
    windowed: u32,
}

impl Schedule {
    /// The reach of the next sweep.
    pub fn next(&self) -> Reach {
        match self.read_up_to {
            Some(cutoff) if self.windowed < WINDOWED_PER_FULL => Reach::ReservedAfter(
                cutoff - chrono::Duration::from_std(WINDOW_OVERLAP).unwrap_or_default(),
            ),
            _ => Reach::All,
        }
    }

    /// Takes note of a sweep of `reach` that did `swept`. A sweep that read its most
    /// leaves the next one to start where it did, and a full one to read everything.
    pub fn record(&mut self, reach: Reach, swept: Swept) {
        self.windowed = match reach {
            Reach::All => 0,
            Reach::ReservedAfter(_) => self.windowed + 1,
        };
        if swept.complete {
            self.read_up_to = Some(swept.cutoff);
        } else if reach == Reach::All {
            self.read_up_to = None;
        }
    }
}

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

/// One sweep of `reach`: settles every reservation older than `older_than` whose order
/// does not exist in the event store (released), is cancelled (released), or is shipped or
/// delivered (committed), up to [`MAX_PER_SWEEP`] of them.
///
/// # Errors
/// When the read models or the event store cannot be read, or a release or commit cannot
/// be appended; what was settled before the failure stays settled.
pub async fn sweep_once(
    state: &AppState,
    sql: &AnyPool,
    older_than: Duration,
    reach: Reach,
) -> anyhow::Result<Swept> {
    let cutoff = Utc::now() - chrono::Duration::from_std(older_than).context("timeout too long")?;
    let moment = |at: DateTime<Utc>| at.to_rfc3339_opts(SecondsFormat::Micros, true);
    // Every stored moment sorts after the empty string.
    let after = match reach {
        Reach::All => String::new(),
        Reach::ReservedAfter(at) => moment(at),
    };
    let rows = sqlx::query(
        "SELECT r.sku, r.order_id FROM rm_reservations r \
         LEFT JOIN rm_orders o ON o.id = r.order_id \
         WHERE r.reserved_at <= $1 AND r.reserved_at > $2 \
           AND (o.id IS NULL OR o.status IN ('CANCELLED', 'SHIPPED', 'DELIVERED')) \
         ORDER BY r.reserved_at, r.order_id, r.sku LIMIT $3",
    )
    .bind(moment(cutoff))
    .bind(after)
    .bind(i64::try_from(MAX_PER_SWEEP)?)
    .fetch_all(sql)
    .await
    .context("reading rm_reservations and rm_orders")?;
    let complete = rows.len() < MAX_PER_SWEEP;
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
    Ok(Swept {
        settled,
        cutoff,
        complete,
    })
}

/// Sweeps every `every` until `shutdown` resolves, settling reservations older than
/// `older_than` (see [`sweep_once`]), with the reach the [`Schedule`] gives. A failed sweep
/// is logged, and the next one has the same reach.
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
        let mut schedule = Schedule::default();
        loop {
            ticks.tick().await;
            let reach = schedule.next();
            match sweep_once(&state, &sql, older_than, reach).await {
                Ok(swept) => {
                    schedule.record(reach, swept);
                    if swept.settled > 0 {
                        tracing::info!(settled = swept.settled, ?reach, "reservation sweep done");
                    }
                }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn swept(cutoff: DateTime<Utc>, complete: bool) -> Swept {
        Swept {
            settled: 0,
            cutoff,
            complete,
        }
    }

    fn overlap() -> chrono::Duration {
        chrono::Duration::from_std(WINDOW_OVERLAP).unwrap()
    }

    #[test]
    fn the_first_sweep_reads_everything_and_the_next_ones_from_its_cutoff() {
        let mut schedule = Schedule::default();
        let start = Utc::now();
        assert_eq!(schedule.next(), Reach::All);
        schedule.record(Reach::All, swept(start, true));
        for minute in 1..=i64::from(WINDOWED_PER_FULL) {
            let reach = schedule.next();
            let last = start + chrono::Duration::minutes(minute - 1);
            assert_eq!(reach, Reach::ReservedAfter(last - overlap()));
            schedule.record(reach, swept(last + chrono::Duration::minutes(1), true));
        }
        assert_eq!(schedule.next(), Reach::All, "a full sweep an hour");
    }

    #[test]
    fn a_sweep_that_read_its_most_is_followed_by_one_with_the_same_start() {
        let mut schedule = Schedule::default();
        let start = Utc::now();
        schedule.record(Reach::All, swept(start, false));
        assert_eq!(schedule.next(), Reach::All, "the full sweep goes on");
        schedule.record(Reach::All, swept(start, true));
        let window = schedule.next();
        schedule.record(window, swept(start + chrono::Duration::minutes(1), false));
        assert_eq!(schedule.next(), window);
        schedule.record(window, swept(start + chrono::Duration::minutes(2), true));
        assert_eq!(
            schedule.next(),
            Reach::ReservedAfter(start + chrono::Duration::minutes(2) - overlap())
        );
    }
}
