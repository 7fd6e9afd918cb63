//! The `inventory` projection: stock per SKU and the open reservations.
//!
//! Tables: `rm_inventory` (on hand, reserved, committed per SKU; `available = on_hand -
//! reserved` is computed when read) and `rm_reservations` (one row per open reservation,
//! with its time: what the reservation sweeper reads).
//!
//! Each event changes the counters by the same amounts the domain's `evolve` does: a
//! reservation replaces the order's previous one, a release gives back what the order
//! held, a commit takes the shipped units out of stock. A batch loads the counters and
//! reservations it touches in one go, folds its events in memory and writes each changed
//! row once.
use std::collections::{BTreeMap, BTreeSet};

use anyhow::Context;
use async_trait::async_trait;
use domain::{
    aggregate::Aggregate,
    ids::OrderId,
    inventory::{Stock, StockEvent},
};
use eventstore::RecordedEvent;
use sqlx::{Any, AnyConnection, Row, Transaction};

use crate::{
    batch::{self, Arg},
    runtime::{Projection, stream_key, timestamp},
};

/// The inventory read model.
#[derive(Clone, Copy, Debug, Default)]
pub struct InventoryProjection;

impl InventoryProjection {
    /// Its name (checkpoint key).
    pub const NAME: &'static str = "inventory";
}

/// One SKU's counters and the time of its last event.
#[derive(Clone, Debug, Default)]
struct Counters {
    on_hand: i64,
    reserved: i64,
    committed: i64,
    updated_at: String,
}

/// An open reservation: units and when they were reserved.
#[derive(Clone, Debug)]
struct Reservation {
    qty: i64,
    reserved_at: String,
}

/// What a batch folds: the counters of every SKU it touches and every (SKU, order)
/// reservation it touches (`None`: none open), starting from the stored rows.
#[derive(Default)]
struct Fold {
    counters: BTreeMap<String, Counters>,
    reservations: BTreeMap<(String, String), Option<Reservation>>,
    stored_reservations: BTreeSet<(String, String)>,
}

impl Fold {
    async fn load(
        conn: &mut AnyConnection,
        skus: &[String],
        pairs: &[Vec<String>],
    ) -> anyhow::Result<Self> {
        let mut fold = Self::default();
        for row in batch::fetch_in(
            conn,
            "SELECT sku, on_hand, reserved, committed, updated_at FROM rm_inventory WHERE sku IN",
            "",
            skus,
        )
        .await?
        {
            fold.counters.insert(
                row.try_get("sku")?,
                Counters {
                    on_hand: row.try_get("on_hand")?,
                    reserved: row.try_get("reserved")?,
                    committed: row.try_get("committed")?,
                    updated_at: row.try_get("updated_at")?,
                },
            );
        }
        for row in batch::fetch_keys(
            conn,
            "rm_reservations",
            &["sku", "order_id"],
            "t.sku, t.order_id, t.qty, t.reserved_at",
            pairs,
        )
        .await?
        {
            let key: (String, String) = (row.try_get("sku")?, row.try_get("order_id")?);
            fold.stored_reservations.insert(key.clone());
            fold.reservations.insert(
                key,
                Some(Reservation {
                    qty: row.try_get("qty")?,
                    reserved_at: row.try_get("reserved_at")?,
                }),
            );
        }
        Ok(fold)
    }

    /// Removes the order's reservation of `sku`; returns the units it held (0: none).
    fn take_reservation(&mut self, sku: &str, order_id: OrderId) -> i64 {
        self.reservations
            .insert((sku.to_owned(), order_id.to_string()), None)
            .flatten()
            .map_or(0, |r| r.qty)
    }

    /// The counters change by the same amounts the domain's `evolve` changes them: a
    /// reservation replaces the order's previous one, a release gives back what the order
    /// held, a commit takes the shipped units out of stock.
    fn apply(&mut self, sku: &str, event: StockEvent) {
        let (on_hand, reserved, committed, at) = match event {
            StockEvent::StockAdjusted { delta, at, .. } => (delta, 0, 0, at),
            StockEvent::StockReserved { order_id, qty, at } => {
                let before = self.take_reservation(sku, order_id);
                self.reservations.insert(
                    (sku.to_owned(), order_id.to_string()),
                    Some(Reservation {
                        qty: i64::from(qty),
                        reserved_at: timestamp(at),
                    }),
                );
                (0, i64::from(qty) - before, 0, at)
            }
            StockEvent::StockReleased { order_id, at, .. } => {
                (0, -self.take_reservation(sku, order_id), 0, at)
            }
            StockEvent::StockCommitted { order_id, qty, at } => {
                let held = self.take_reservation(sku, order_id);
                (-i64::from(qty), -held, i64::from(qty), at)
            }
        };
        let counters = self.counters.entry(sku.to_owned()).or_default();
        counters.on_hand += on_hand;
        counters.reserved += reserved;
        counters.committed += committed;
        counters.updated_at = timestamp(at);
    }

    async fn save(self, conn: &mut AnyConnection) -> anyhow::Result<()> {
        let counters: Vec<Vec<Arg>> = self
            .counters
            .into_iter()
            .map(|(sku, c)| {
                vec![
                    sku.into(),
                    c.on_hand.into(),
                    c.reserved.into(),
                    c.committed.into(),
                    c.updated_at.into(),
                ]
            })
            .collect();
        batch::insert_rows(
            conn,
            "INSERT INTO rm_inventory (sku, on_hand, reserved, committed, updated_at)",
            "ON CONFLICT (sku) DO UPDATE SET on_hand = excluded.on_hand, \
                 reserved = excluded.reserved, committed = excluded.committed, \
                 updated_at = excluded.updated_at",
            counters,
        )
        .await?;
        let mut closed = Vec::new();
        let mut open = Vec::new();
        for ((sku, order_id), reservation) in self.reservations {
            match reservation {
                Some(r) => open.push(vec![
                    sku.into(),
                    order_id.into(),
                    r.qty.into(),
                    r.reserved_at.into(),
                ]),
                None if self
                    .stored_reservations
                    .contains(&(sku.clone(), order_id.clone())) =>
                {
                    closed.push(vec![sku, order_id]);
                }
                None => {}
            }
        }
        batch::execute_for_keys(
            conn,
            "DELETE FROM rm_reservations WHERE",
            &["sku", "order_id"],
            &closed,
        )
        .await?;
        batch::insert_rows(
            conn,
            "INSERT INTO rm_reservations (sku, order_id, qty, reserved_at)",
            "ON CONFLICT (sku, order_id) DO UPDATE SET qty = excluded.qty, \
                 reserved_at = excluded.reserved_at",
            open,
        )
        .await
    }
}

fn decode_one(recorded: &RecordedEvent) -> anyhow::Result<(&str, StockEvent)> {
    let event: StockEvent =
        batch::decode_event::<StockEvent>(recorded).context("undecodable stock event")?;
    Ok((stream_key(&recorded.stream, Stock::NAME)?, event))
}

/// The (SKU, order) reservation an event touches.
fn reservation_key(sku: &str, event: &StockEvent) -> Option<Vec<String>> {
    match event {
        StockEvent::StockAdjusted { .. } => None,
        StockEvent::StockReserved { order_id, .. }
        | StockEvent::StockReleased { order_id, .. }
        | StockEvent::StockCommitted { order_id, .. } => {
            Some(vec![sku.to_owned(), order_id.to_string()])
        }
    }
}

#[async_trait]
impl Projection for InventoryProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        event.stream.category() == Stock::NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["rm_inventory", "rm_reservations"]
    }

    /// Loads the counters and reservations the batch touches in one go, folds the events
    /// in memory and writes each changed row once.
    async fn apply_many(
        &self,
        tx: &mut Transaction<'_, Any>,
        events: &[&RecordedEvent],
    ) -> anyhow::Result<()> {
        let decoded = events
            .iter()
            .map(|recorded| decode_one(recorded).with_context(|| batch::describe(recorded)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let skus: Vec<String> = decoded
            .iter()
            .map(|(sku, _)| (*sku).to_owned())
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let pairs: Vec<Vec<String>> = decoded
            .iter()
            .filter_map(|(sku, event)| reservation_key(sku, event))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let mut fold = Fold::load(tx, &skus, &pairs).await?;
        for (sku, event) in decoded {
            fold.apply(sku, event);
        }
        fold.save(tx).await
    }
}
