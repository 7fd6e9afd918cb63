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
use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::Context;
use async_trait::async_trait;
use domain::{
    aggregate::Aggregate,
    ids::ProductId,
    order::{Order, OrderEvent, OrderLine},
};
use eventstore::RecordedEvent;
use sqlx::{Any, Row, Transaction};

use crate::{
    batch::{self, Arg},
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

/// What one batch does to the read model, folded in memory: each order's rows and each
/// pair's count are written once, whatever the number of events.
#[derive(Debug, Default)]
struct Fold {
    /// The distinct products of every touched order counted at this point of the batch
    /// (`None`: not counted), starting from the stored rows.
    counted: HashMap<String, Option<Vec<String>>>,
    /// Orders whose stored rows go.
    deleted: BTreeSet<String>,
    /// Orders whose rows are written: products, customer, time placed.
    inserted: BTreeMap<String, (Vec<String>, String, String)>,
    /// The change of each ordered pair's count.
    pairs: BTreeMap<(String, String), i64>,
    /// Products of cancelled orders, whose pairs at zero are removed.
    cancelled_products: BTreeSet<String>,
}

impl Fold {
    fn count_pairs(&mut self, products: &[String], delta: i64) {
        for product in products {
            for other in products.iter().filter(|other| *other != product) {
                *self
                    .pairs
                    .entry((product.clone(), other.clone()))
                    .or_default() += delta;
            }
        }
    }

    /// An order placed: counted once, unless it is counted already.
    fn placed(&mut self, order: String, customer: String, products: Vec<String>, at: String) {
        let counted = self.counted.entry(order.clone()).or_default();
        if counted.is_some() {
            return;
        }
        *counted = Some(products.clone());
        self.count_pairs(&products, 1);
        self.inserted.insert(order, (products, customer, at));
    }

    /// An order cancelled: subtracts exactly what it added, if it is counted.
    fn cancelled(&mut self, order: String) {
        let Some(products) = self.counted.get_mut(&order).and_then(Option::take) else {
            return;
        };
        self.count_pairs(&products, -1);
        self.cancelled_products.extend(products);
        if self.inserted.remove(&order).is_none() {
            self.deleted.insert(order);
        }
    }
}

/// The stored products of each of `orders` that is counted.
async fn counted_orders(
    tx: &mut Transaction<'_, Any>,
    orders: &[String],
) -> anyhow::Result<HashMap<String, Option<Vec<String>>>> {
    let rows = batch::fetch_in(
        tx,
        "SELECT order_id, product_id FROM rm_bought_together_orders WHERE order_id IN",
        "ORDER BY order_id, product_id",
        orders,
    )
    .await?;
    let mut counted: HashMap<String, Option<Vec<String>>> = HashMap::new();
    for row in rows {
        let order: String = row.try_get("order_id")?;
        let product: String = row.try_get("product_id")?;
        counted
            .entry(order)
            .or_insert_with(|| Some(Vec::new()))
            .get_or_insert_with(Vec::new)
            .push(product);
    }
    Ok(counted)
}

/// Writes what `fold` gathered.
async fn save(tx: &mut Transaction<'_, Any>, fold: Fold) -> anyhow::Result<()> {
    let deleted: Vec<String> = fold.deleted.into_iter().collect();
    batch::delete_in(
        tx,
        "DELETE FROM rm_bought_together_orders WHERE order_id IN",
        &deleted,
    )
    .await?;
    let rows: Vec<Vec<Arg>> = fold
        .inserted
        .into_iter()
        .flat_map(|(order, (products, customer, at))| {
            products.into_iter().map(move |product| {
                vec![
                    Arg::from(order.clone()),
                    product.into(),
                    customer.clone().into(),
                    at.clone().into(),
                ]
            })
        })
        .collect();
    batch::insert_rows(
        tx,
        "INSERT INTO rm_bought_together_orders (order_id, product_id, customer_id, placed_at)",
        "",
        rows,
    )
    .await?;
    let pairs: Vec<Vec<Arg>> = fold
        .pairs
        .into_iter()
        .filter(|(_, delta)| *delta != 0)
        .map(|((product, other), delta)| vec![product.into(), other.into(), delta.into()])
        .collect();
    batch::insert_rows(
        tx,
        "INSERT INTO rm_bought_together (product_id, other_product_id, orders)",
        "ON CONFLICT (product_id, other_product_id) DO UPDATE SET \
             orders = rm_bought_together.orders + excluded.orders",
        pairs,
    )
    .await?;
    let cancelled: Vec<String> = fold.cancelled_products.into_iter().collect();
    batch::delete_in(
        tx,
        "DELETE FROM rm_bought_together WHERE orders <= 0 AND product_id IN",
        &cancelled,
    )
    .await
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

    /// Loads the stored products of every order the batch places or cancels in one go,
    /// folds the events in memory, and writes each order's rows and each pair once.
    async fn apply_many(
        &self,
        tx: &mut Transaction<'_, Any>,
        events: &[&RecordedEvent],
    ) -> anyhow::Result<()> {
        let mut decoded = Vec::with_capacity(events.len());
        for recorded in events {
            let event = decode_order_event(recorded)
                .and_then(|event| Ok((order_id(&recorded.stream)?.to_string(), event)))
                .with_context(|| batch::describe(recorded))?;
            if matches!(
                event.1,
                OrderEvent::OrderPlaced { .. } | OrderEvent::OrderCancelled { .. }
            ) {
                decoded.push(event);
            }
        }
        if decoded.is_empty() {
            return Ok(());
        }
        let mut orders: Vec<String> = decoded.iter().map(|(order, _)| order.clone()).collect();
        orders.sort_unstable();
        orders.dedup();
        let mut fold = Fold {
            counted: counted_orders(tx, &orders).await?,
            ..Fold::default()
        };
        for (order, event) in decoded {
            match event {
                OrderEvent::OrderPlaced {
                    customer_id,
                    lines,
                    placed_at,
                    ..
                } => fold.placed(
                    order,
                    customer_id.to_string(),
                    distinct_products(&lines)
                        .iter()
                        .map(ToString::to_string)
                        .collect(),
                    timestamp(placed_at),
                ),
                OrderEvent::OrderCancelled { .. } => fold.cancelled(order),
                OrderEvent::OrderStatusChanged { .. } | OrderEvent::ShipmentCreated { .. } => {}
            }
        }
        save(tx, fold).await
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
