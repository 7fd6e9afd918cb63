//! The `sales` projection: orders, units and revenue of placed orders by UTC day of
//! placement and by product.
//!
//! Tables (see `migrations/*/0004_order_read_models.sql`): `rm_sales_daily` (per day,
//! product and currency), `rm_sales_days` (per day and currency, each order counted once
//! however many products it holds) and `rm_sales_orders` (what each counted order added).
//!
//! `OrderPlaced` adds the order to its day; `OrderCancelled` subtracts exactly what the
//! order added (rows that fall to zero orders are removed); every other order event
//! changes nothing.
use std::collections::BTreeMap;

use anyhow::Context;
use async_trait::async_trait;
use domain::{
    aggregate::Aggregate,
    ids::{OrderId, ProductId},
    money::Currency,
    order::{Order, OrderEvent, OrderLine},
};
use eventstore::RecordedEvent;
use serde::{Deserialize, Serialize};
use sqlx::{Any, Row, Transaction};

use crate::{
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

/// Adds `sign` × the order's figures to its day and products; removes rows left empty.
async fn add(
    tx: &mut Transaction<'_, Any>,
    day: &str,
    currency: &str,
    sales: &[ProductSale],
    sign: i64,
) -> anyhow::Result<()> {
    for sale in sales {
        let product = sale.product_id.to_string();
        sqlx::query(
            "INSERT INTO rm_sales_daily (day, product_id, currency, orders, units, revenue) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (day, product_id, currency) DO UPDATE SET \
                 orders = rm_sales_daily.orders + excluded.orders, \
                 units = rm_sales_daily.units + excluded.units, \
                 revenue = rm_sales_daily.revenue + excluded.revenue",
        )
        .bind(day)
        .bind(&product)
        .bind(currency)
        .bind(sign)
        .bind(sign * sale.units)
        .bind(sign * sale.revenue)
        .execute(&mut **tx)
        .await?;
        sqlx::query(
            "DELETE FROM rm_sales_daily WHERE day = $1 AND product_id = $2 AND currency = $3 \
             AND orders <= 0",
        )
        .bind(day)
        .bind(&product)
        .bind(currency)
        .execute(&mut **tx)
        .await?;
    }
    let units: i64 = sales.iter().map(|s| s.units).sum();
    let revenue: i64 = sales.iter().map(|s| s.revenue).sum();
    sqlx::query(
        "INSERT INTO rm_sales_days (day, currency, orders, units, revenue) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (day, currency) DO UPDATE SET \
             orders = rm_sales_days.orders + excluded.orders, \
             units = rm_sales_days.units + excluded.units, \
             revenue = rm_sales_days.revenue + excluded.revenue",
    )
    .bind(day)
    .bind(currency)
    .bind(sign)
    .bind(sign * units)
    .bind(sign * revenue)
    .execute(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM rm_sales_days WHERE day = $1 AND currency = $2 AND orders <= 0")
        .bind(day)
        .bind(currency)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn placed(
    tx: &mut Transaction<'_, Any>,
    id: OrderId,
    lines: &[OrderLine],
    currency: Currency,
    day: &str,
) -> anyhow::Result<()> {
    let sales = per_product(lines)?;
    let currency = currency.to_string();
    sqlx::query(
        "INSERT INTO rm_sales_orders (order_id, day, currency, lines) VALUES ($1, $2, $3, $4)",
    )
    .bind(id.to_string())
    .bind(day)
    .bind(&currency)
    .bind(serde_json::to_string(&sales)?)
    .execute(&mut **tx)
    .await
    .context("order counted twice")?;
    add(tx, day, &currency, &sales, 1).await
}

async fn cancelled(tx: &mut Transaction<'_, Any>, id: OrderId) -> anyhow::Result<()> {
    let Some(row) = sqlx::query(
        "DELETE FROM rm_sales_orders WHERE order_id = $1 RETURNING day, currency, lines",
    )
    .bind(id.to_string())
    .fetch_optional(&mut **tx)
    .await?
    else {
        // Never counted (cannot happen in a valid history): nothing to subtract.
        return Ok(());
    };
    let day: String = row.try_get("day")?;
    let currency: String = row.try_get("currency")?;
    let sales: Vec<ProductSale> = serde_json::from_str(&row.try_get::<String, _>("lines")?)
        .context("bad stored sales lines")?;
    add(tx, &day, &currency, &sales, -1).await
}

#[async_trait]
impl Projection for SalesProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        event.stream.category() == Order::NAME
    }

    async fn apply(
        &self,
        tx: &mut Transaction<'_, Any>,
        recorded: &RecordedEvent,
    ) -> anyhow::Result<()> {
        let event = decode_order_event(recorded)?;
        let id = order_id(&recorded.stream)?;
        match event {
            OrderEvent::OrderPlaced {
                lines,
                total,
                placed_at,
                ..
            } => {
                let day = placed_at.date_naive().format("%Y-%m-%d").to_string();
                placed(tx, id, &lines, total.currency, &day).await
            }
            OrderEvent::OrderCancelled { .. } => cancelled(tx, id).await,
            OrderEvent::OrderStatusChanged { .. } | OrderEvent::ShipmentCreated { .. } => Ok(()),
        }
    }
}
