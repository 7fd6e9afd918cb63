//! The `inventory` projection: stock per SKU and the open reservations.
//!
//! Tables: `rm_inventory` (on hand, reserved, committed per SKU; `available = on_hand -
//! reserved` is computed when read) and `rm_reservations` (one row per open reservation,
//! with its time: what the reservation sweeper reads).
//!
//! Each event changes the counters by the same amounts the domain's `evolve` does: a
//! reservation replaces the order's previous one, a release gives back what the order
//! held, a commit takes the shipped units out of stock.
use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    aggregate::{Aggregate, decode},
    ids::OrderId,
    inventory::{Stock, StockEvent},
};
use eventstore::RecordedEvent;
use sqlx::{Any, Transaction};

use crate::runtime::{Projection, stream_key, timestamp};

/// The inventory read model.
#[derive(Clone, Copy, Debug, Default)]
pub struct InventoryProjection;

impl InventoryProjection {
    /// Its name (checkpoint key).
    pub const NAME: &'static str = "inventory";
}

/// Changes of one SKU's counters.
struct Delta {
    on_hand: i64,
    reserved: i64,
    committed: i64,
}

async fn bump(
    tx: &mut Transaction<'_, Any>,
    sku: &str,
    delta: Delta,
    at: DateTime<Utc>,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO rm_inventory (sku, on_hand, reserved, committed, updated_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (sku) DO UPDATE SET on_hand = rm_inventory.on_hand + excluded.on_hand, \
             reserved = rm_inventory.reserved + excluded.reserved, \
             committed = rm_inventory.committed + excluded.committed, \
             updated_at = excluded.updated_at",
    )
    .bind(sku)
    .bind(delta.on_hand)
    .bind(delta.reserved)
    .bind(delta.committed)
    .bind(timestamp(at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Removes the order's reservation of `sku`; returns the units it held (0: none).
async fn take_reservation(
    tx: &mut Transaction<'_, Any>,
    sku: &str,
    order_id: OrderId,
) -> anyhow::Result<i64> {
    let held: Option<i64> = sqlx::query_scalar(
        "DELETE FROM rm_reservations WHERE sku = $1 AND order_id = $2 RETURNING qty",
    )
    .bind(sku)
    .bind(order_id.to_string())
    .fetch_optional(&mut **tx)
    .await?;
    Ok(held.unwrap_or(0))
}

#[async_trait]
impl Projection for InventoryProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        event.stream.category() == Stock::NAME
    }

    async fn apply(
        &self,
        tx: &mut Transaction<'_, Any>,
        recorded: &RecordedEvent,
    ) -> anyhow::Result<()> {
        let event: StockEvent = decode(
            &recorded.event_type,
            recorded.schema_version,
            recorded.payload.clone(),
        )
        .context("undecodable stock event")?;
        let sku = stream_key(&recorded.stream, Stock::NAME)?;
        match event {
            StockEvent::StockAdjusted { delta, at, .. } => {
                let delta = Delta {
                    on_hand: delta,
                    reserved: 0,
                    committed: 0,
                };
                bump(tx, sku, delta, at).await
            }
            StockEvent::StockReserved { order_id, qty, at } => {
                let before = take_reservation(tx, sku, order_id).await?;
                sqlx::query(
                    "INSERT INTO rm_reservations (sku, order_id, qty, reserved_at) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(sku)
                .bind(order_id.to_string())
                .bind(i64::from(qty))
                .bind(timestamp(at))
                .execute(&mut **tx)
                .await?;
                let delta = Delta {
                    on_hand: 0,
                    reserved: i64::from(qty) - before,
                    committed: 0,
                };
                bump(tx, sku, delta, at).await
            }
            StockEvent::StockReleased { order_id, at, .. } => {
                let held = take_reservation(tx, sku, order_id).await?;
                let delta = Delta {
                    on_hand: 0,
                    reserved: -held,
                    committed: 0,
                };
                bump(tx, sku, delta, at).await
            }
            StockEvent::StockCommitted { order_id, qty, at } => {
                let held = take_reservation(tx, sku, order_id).await?;
                let delta = Delta {
                    on_hand: -i64::from(qty),
                    reserved: -held,
                    committed: i64::from(qty),
                };
                bump(tx, sku, delta, at).await
            }
        }
    }
}
