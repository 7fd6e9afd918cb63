//! The `sales` projection: orders, units and revenue of placed orders by UTC day of
//! placement and by product.
//!
//! Tables (see `migrations/*/0004_order_read_models.sql`): `rm_sales_daily` (per day,
//! product and currency), `rm_sales_days` (per day and currency, each order counted once
//! however many products it holds) and `rm_sales_orders` (what each counted order added).
//!
//! `OrderPlaced` adds the order to its day; `OrderCancelled` subtracts exactly what the
//! order added (rows that fall to zero orders are removed); every other order event
//! changes nothing. A batch sums what its events add to each row in memory and writes
//! each changed row once.
use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, bail};
use async_trait::async_trait;
use domain::{
    aggregate::Aggregate,
    ids::{OrderId, ProductId},
    order::{Order, OrderEvent, OrderLine},
};
use eventstore::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::{Any, AnyConnection, Row, Transaction};

use crate::{
    batch,
    orders::{decode_order_event, order_id},
    runtime::Projection,
};

/// The sales read model.
#[derive(Clone, Copy, Debug, Default)]
pub struct SalesProjection;

impl SalesProjection {
    /// Its name (checkpoint key).
    pub const NAME: &'static str = "sales";
}

/// What one order added for one product (`rm_sales_orders.lines`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ProductSale {
    product_id: ProductId,
    units: i64,
    revenue: i64,
}

/// The order's lines summed per product, in product order.
fn per_product(lines: &[OrderLine]) -> anyhow::Result<Vec<ProductSale>> {
    let mut sums: BTreeMap<ProductId, (i64, i64)> = BTreeMap::new();
    for line in lines {
        let (units, revenue) = sums.entry(line.product_id).or_default();
        *units += i64::from(line.quantity);
        *revenue = revenue
            .checked_add(line.line_total.amount)
            .context("revenue overflows")?;
    }
    Ok(sums
        .into_iter()
        .map(|(product_id, (units, revenue))| ProductSale {
            product_id,
            units,
            revenue,
        })
        .collect())
}

/// What one counted order added (`rm_sales_orders`).
#[derive(Clone, Debug)]
struct Counted {
    day: String,
    currency: String,
    sales: Vec<ProductSale>,
}

/// The columns of [`Figures`], orders first (a row with no orders is removed).
const FIGURES: [&str; 3] = ["orders", "units", "revenue"];

/// Orders, units and revenue to add to one row.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Figures {
    orders: i64,
    units: i64,
    revenue: i64,
}

impl Figures {
    fn add(&mut self, sign: i64, units: i64, revenue: i64) {
        self.orders += sign;
        self.units += sign * units;
        self.revenue += sign * revenue;
    }
}

/// What a batch folds: which of the orders it touches are counted (`None`: not counted),
/// starting from the stored rows, and what it adds to each day and product.
#[derive(Default)]
struct Fold {
    counted: BTreeMap<String, Option<Counted>>,
    stored: BTreeSet<String>,
    daily: BTreeMap<(String, String, String), Figures>,
    days: BTreeMap<(String, String), Figures>,
}

impl Fold {
    async fn load(conn: &mut AnyConnection, orders: &[String]) -> anyhow::Result<Self> {
        let mut fold = Self::default();
        for row in batch::fetch_in(
            conn,
            "SELECT order_id, day, currency, lines FROM rm_sales_orders WHERE order_id IN",
            "",
            orders,
        )
        .await?
        {
            let order: String = row.try_get("order_id")?;
            let sales: Vec<ProductSale> = serde_json::from_str(&row.try_get::<String, _>("lines")?)
                .context("bad stored sales lines")?;
            fold.stored.insert(order.clone());
            fold.counted.insert(
                order,
                Some(Counted {
                    day: row.try_get("day")?,
                    currency: row.try_get("currency")?,
                    sales,
                }),
            );
        }
        Ok(fold)
    }

    /// Adds `sign` × the order's figures to its day and products.
    fn add(&mut self, counted: &Counted, sign: i64) {
        let (mut units, mut revenue) = (0, 0);
        for sale in &counted.sales {
            self.daily
                .entry((
                    counted.day.clone(),
                    sale.product_id.to_string(),
                    counted.currency.clone(),
                ))
                .or_default()
                .add(sign, sale.units, sale.revenue);
            units += sale.units;
            revenue += sale.revenue;
        }
        self.days
            .entry((counted.day.clone(), counted.currency.clone()))
            .or_default()
            .add(sign, units, revenue);
    }

    fn placed(&mut self, id: OrderId, counted: Counted) -> anyhow::Result<()> {
        let slot = self.counted.entry(id.to_string()).or_default();
        if slot.is_some() {
            bail!("order counted twice");
        }
        *slot = Some(counted.clone());
        self.add(&counted, 1);
        Ok(())
    }

    fn cancelled(&mut self, id: OrderId) {
        // Never counted (cannot happen in a valid history): nothing to subtract.
        if let Some(counted) = self.counted.insert(id.to_string(), None).flatten() {
            self.add(&counted, -1);
        }
    }

    /// Writes what the batch added; rows that fall to zero orders are removed.
    async fn save(self, conn: &mut AnyConnection) -> anyhow::Result<()> {
        let mut uncounted = Vec::new();
        let mut counted = Vec::new();
        for (order, state) in self.counted {
            match state {
                Some(c) if !self.stored.contains(&order) => counted.push(vec![
                    order.into(),
                    c.day.into(),
                    c.currency.into(),
                    serde_json::to_string(&c.sales)?.into(),
                ]),
                None if self.stored.contains(&order) => uncounted.push(order),
                Some(_) | None => {}
            }
        }
        batch::delete_in(
            conn,
            "DELETE FROM rm_sales_orders WHERE order_id IN",
            &uncounted,
        )
        .await?;
        batch::insert_rows(
            conn,
            "INSERT INTO rm_sales_orders (order_id, day, currency, lines)",
            "",
            counted,
        )
        .await?;

        // Figures that add nothing change nothing (a row never rests at zero orders).
        let mut rows = Vec::new();
        for ((day, product, currency), f) in self.daily {
            if f == Figures::default() {
                continue;
            }
            rows.push(vec![
                day.into(),
                product.into(),
                currency.into(),
                f.orders.into(),
                f.units.into(),
                f.revenue.into(),
            ]);
        }
        batch::add_to_sums(
            conn,
            "rm_sales_daily",
            &["day", "product_id", "currency"],
            &FIGURES,
            rows,
        )
        .await?;

        let mut rows = Vec::new();
        for ((day, currency), f) in self.days {
            if f == Figures::default() {
                continue;
            }
            rows.push(vec![
                day.into(),
                currency.into(),
                f.orders.into(),
                f.units.into(),
                f.revenue.into(),
            ]);
        }
        batch::add_to_sums(conn, "rm_sales_days", &["day", "currency"], &FIGURES, rows).await
    }
}

/// The order ids of the events that count or uncount an order.
fn counting_order(id: OrderId, event: &OrderEvent) -> Option<String> {
    matches!(
        event,
        OrderEvent::OrderPlaced { .. } | OrderEvent::OrderCancelled { .. }
    )
    .then(|| id.to_string())
}

#[async_trait]
impl Projection for SalesProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        event.stream.category() == Order::NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["rm_sales_daily", "rm_sales_days", "rm_sales_orders"]
    }

    /// Loads the counted orders the batch touches in one go, sums what its events add to
    /// each day and product in memory and writes each changed row once.
    async fn apply_many(
        &self,
        tx: &mut Transaction<'_, Any>,
        events: &[&RecordedEvent],
    ) -> anyhow::Result<()> {
        // Only placements and cancellations count: the other order events are not even
        // decoded.
        let events: Vec<&RecordedEvent> = events
            .iter()
            .copied()
            .filter(|e| matches!(e.event_type.as_str(), "OrderPlaced" | "OrderCancelled"))
            .collect();
        let decoded = events
            .iter()
            .map(|recorded| {
                order_id(&recorded.stream)
                    .and_then(|id| Ok((id, decode_order_event(recorded)?)))
                    .with_context(|| batch::describe(recorded))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let orders: Vec<String> = decoded
            .iter()
            .filter_map(|(id, event)| counting_order(*id, event))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        if orders.is_empty() {
            return Ok(());
        }
        let mut fold = Fold::load(tx, &orders).await?;
        for ((id, event), recorded) in decoded.into_iter().zip(&events) {
            match event {
                OrderEvent::OrderPlaced {
                    lines,
                    total,
                    placed_at,
                    ..
                } => {
                    let counted = Counted {
                        day: placed_at.date_naive().format("%Y-%m-%d").to_string(),
                        currency: total.currency.to_string(),
                        sales: per_product(&lines).with_context(|| batch::describe(recorded))?,
                    };
                    fold.placed(id, counted)
                        .with_context(|| batch::describe(recorded))?;
                }
                OrderEvent::OrderCancelled { .. } => fold.cancelled(id),
                OrderEvent::OrderStatusChanged { .. } | OrderEvent::ShipmentCreated { .. } => {}
            }
        }
        fold.save(tx).await
    }
}
