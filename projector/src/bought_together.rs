//! The `bought_together` projection: which products are bought in the same orders, and what
//! each customer has bought; the recommendations are read from it.
//!
//! Tables (see `migrations/*/0006_recommendations.sql`):
//! - `rm_bought_together_orders`: the distinct products of every counted order (placed and
//!   not cancelled), with its customer and time. A cancellation reads its order's products
//!   here, so the projection needs no other read model and replays on its own; the same
//!   rows are each customer's purchase history.
//! - `rm_bought_together`: for each ordered pair of distinct products, how many counted
//!   orders hold both (stored in both directions; rows at zero are removed).
//!
//! `OrderPlaced` counts the order once per pair of its distinct products, however many
//! lines or units it has of each; `OrderCancelled` subtracts exactly what its order added.
//! Every other order event changes nothing. An order counted already is not counted again,
//! and a cancellation of an order that is not counted subtracts nothing.
use std::collections::BTreeSet;

use async_trait::async_trait;
use domain::{
    aggregate::Aggregate,
    ids::{AccountId, OrderId, ProductId},
    order::{Order, OrderEvent, OrderLine},
};
use eventstore::RecordedEvent;
use sqlx::{Any, Transaction};

use crate::{
    orders::{decode_order_event, order_id},
    runtime::{Projection, timestamp},
};

/// The bought-together read model (pair counts and purchase histories).
#[derive(Clone, Copy, Debug, Default)]
pub struct BoughtTogetherProjection;

impl BoughtTogetherProjection {
    /// Its name (checkpoint key).
    pub const NAME: &'static str = "bought_together";
    /// The tables it owns, emptied by a replay.
    pub const TABLES: &'static [&'static str] =
        &["rm_bought_together", "rm_bought_together_orders"];
}

/// The distinct products of an order's lines, in product order.
fn distinct_products(lines: &[OrderLine]) -> BTreeSet<ProductId> {
    lines.iter().map(|line| line.product_id).collect()
}

/// Adds `delta` to the pairs of `product` with every other product of order `order`
/// (which `rm_bought_together_orders` holds at this point); removes pairs left at zero.
async fn add_pairs(
    tx: &mut Transaction<'_, Any>,
    order: &str,
    product: &str,
    delta: i64,
) -> anyhow::Result<()> {
    // One statement per product of the order (not per pair): an order holds at most
    // `domain::order::MAX_LINES` products.
    sqlx::query(
        "INSERT INTO rm_bought_together (product_id, other_product_id, orders) \
         SELECT $1, o.product_id, $3 FROM rm_bought_together_orders o \
         WHERE o.order_id = $2 AND o.product_id <> $1 \
         ON CONFLICT (product_id, other_product_id) DO UPDATE SET \
             orders = rm_bought_together.orders + excluded.orders",
    )
    .bind(product)
    .bind(order)
    .bind(delta)
    .execute(&mut **tx)
    .await?;
    if delta < 0 {
        sqlx::query("DELETE FROM rm_bought_together WHERE product_id = $1 AND orders <= 0")
            .bind(product)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

async fn placed(
    tx: &mut Transaction<'_, Any>,
    id: OrderId,
    customer: AccountId,
    lines: &[OrderLine],
    placed_at: &str,
) -> anyhow::Result<()> {
    let order = id.to_string();
    let counted: Option<String> = sqlx::query_scalar(
        "SELECT order_id FROM rm_bought_together_orders WHERE order_id = $1 LIMIT 1",
    )
    .bind(&order)
    .fetch_optional(&mut **tx)
    .await?;
    if counted.is_some() {
        return Ok(());
    }
    let products: Vec<String> = distinct_products(lines)
        .iter()
        .map(ToString::to_string)
        .collect();
    for product in &products {
        sqlx::query(
            "INSERT INTO rm_bought_together_orders (order_id, product_id, customer_id, placed_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(&order)
        .bind(product)
        .bind(customer.to_string())
        .bind(placed_at)
        .execute(&mut **tx)
        .await?;
    }
    for product in &products {
        add_pairs(tx, &order, product, 1).await?;
    }
    Ok(())
}

async fn cancelled(tx: &mut Transaction<'_, Any>, id: OrderId) -> anyhow::Result<()> {
    let order = id.to_string();
    let products: Vec<String> = sqlx::query_scalar(
        "SELECT product_id FROM rm_bought_together_orders WHERE order_id = $1 \
         ORDER BY product_id",
    )
    .bind(&order)
    .fetch_all(&mut **tx)
    .await?;
    for product in &products {
        add_pairs(tx, &order, product, -1).await?;
    }
    sqlx::query("DELETE FROM rm_bought_together_orders WHERE order_id = $1")
        .bind(&order)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[async_trait]
impl Projection for BoughtTogetherProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        event.stream.category() == Order::NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        Self::TABLES
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
                customer_id,
                lines,
                placed_at,
                ..
            } => placed(tx, id, customer_id, &lines, &timestamp(placed_at)).await,
            OrderEvent::OrderCancelled { .. } => cancelled(tx, id).await,
            OrderEvent::OrderStatusChanged { .. } | OrderEvent::ShipmentCreated { .. } => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use domain::{
        ids::Sku,
        money::{Currency, Money},
    };
    use uuid::Uuid;

    use super::*;

    fn line(product: u128, sku: &str) -> OrderLine {
        OrderLine {
            sku: Sku::parse(sku).unwrap(),
            product_id: ProductId::new(Uuid::from_u128(product)),
            name: sku.into(),
            quantity: 2,
            unit_price: Money::new(100, Currency::EUR),
            line_total: Money::new(200, Currency::EUR),
        }
    }

    #[test]
    fn an_order_counts_each_product_once() {
        let lines = [line(2, "B-1"), line(1, "A-1"), line(2, "B-2")];
        let products: Vec<ProductId> = distinct_products(&lines).into_iter().collect();
        assert_eq!(
            products,
            [
                ProductId::new(Uuid::from_u128(1)),
                ProductId::new(Uuid::from_u128(2))
            ]
        );
    }
}
