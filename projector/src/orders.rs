//! The `orders` projection: one row per order, with the order view the API serves.
//!
//! Table `rm_orders` (see `migrations/*/0004_order_read_models.sql`): the columns the
//! order list filters and sorts on (customer, status, creation time), the order stream's
//! version, and `view`: the order view JSON ([`OrderView`]), which holds everything needed
//! to rebuild the order's state.
//!
//! Events are applied by rebuilding each order's state from its stored view, folding the
//! events with the domain's own `evolve` (so the read model means exactly what the write
//! side means) and writing the row back: a batch loads every order it touches in one
//! statement and writes each changed order once.
//!
//! In the same transaction it keeps the orders per day and status
//! ([`order_counts`](crate::order_counts)), which the order list's total is read from.
use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, bail};
use async_trait::async_trait;
use domain::{
    aggregate::Aggregate,
    ids::{AccountId, OrderId, ProductId, ShipmentId, Sku},
    money::Money,
    order::{Order, OrderEvent, OrderLine, OrderState, OrderStatus, Shipment, ShippingAddress},
};
use eventstore::{RecordedEvent, StreamId};
use serde::{Deserialize, Serialize};
use sqlx::{Any, AnyConnection, Row, Transaction};

use crate::{
    batch::{self, Arg},
    order_counts::{self, CountChanges},
    runtime::{Projection, parse_timestamp, stream_id, timestamp},
};

/// The orders read model.
#[derive(Clone, Copy, Debug, Default)]
pub struct OrdersProjection;

impl OrdersProjection {
    /// Its name (checkpoint key).
    pub const NAME: &'static str = "orders";
}

/// One line of the stored order view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderLineView {
    /// The variant ordered.
    pub sku: Sku,
    /// Its product.
    pub product_id: ProductId,
    /// Product name at ordering time.
    pub name: String,
    /// Units.
    pub quantity: u32,
    /// Price of one unit at ordering time.
    pub unit_price: Money,
    /// `unitPrice × quantity`.
    pub line_total: Money,
}

/// One parcel of the stored order view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShipmentView {
    /// Shipment id.
    pub id: ShipmentId,
    /// Carrier.
    pub carrier: String,
    /// Tracking number.
    pub tracking_number: String,
    /// When it was handed to the carrier (RFC 3339, microseconds, UTC).
    pub created_at: String,
}

/// The order view as `rm_orders.view` stores it (DESIGN.md's order view, each line also
/// naming its product).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    /// Order id.
    pub id: OrderId,
    /// The customer who placed it.
    pub customer_id: AccountId,
    /// Its status.
    pub status: OrderStatus,
    /// Lines with price snapshots.
    pub lines: Vec<OrderLineView>,
    /// Sum of the line totals.
    pub total: Money,
    /// Where to ship.
    pub shipping_address: ShippingAddress,
    /// Parcels, in order.
    pub shipments: Vec<ShipmentView>,
    /// When it was placed (RFC 3339, microseconds, UTC).
    pub created_at: String,
    /// When it last changed (RFC 3339, microseconds, UTC).
    pub updated_at: String,
}

impl OrderView {
    /// The view of a placed order's state.
    ///
    /// # Errors
    /// When the state is not of a placed order.
    pub fn of(state: &OrderState) -> anyhow::Result<Self> {
        let placed_at = state.placed_at.context("order without placement time")?;
        Ok(Self {
            id: state.id.context("order without id")?,
            customer_id: state.customer_id.context("order without customer")?,
            status: state.status.context("order without status")?,
            lines: state
                .lines
                .iter()
                .map(|line| OrderLineView {
                    sku: line.sku.clone(),
                    product_id: line.product_id,
                    name: line.name.clone(),
                    quantity: line.quantity,
                    unit_price: line.unit_price,
                    line_total: line.line_total,
                })
                .collect(),
            total: state.total.context("order without total")?,
            shipping_address: state
                .shipping_address
                .clone()
                .context("order without address")?,
            shipments: state
                .shipments
                .iter()
                .map(|s| ShipmentView {
                    id: s.shipment_id,
                    carrier: s.carrier.clone(),
                    tracking_number: s.tracking_number.clone(),
                    created_at: timestamp(s.at),
                })
                .collect(),
            created_at: timestamp(placed_at),
            updated_at: timestamp(state.updated_at.unwrap_or(placed_at)),
        })
    }

    /// The order's state, rebuilt from the view.
    ///
    /// # Errors
    /// When a stored time does not parse.
    pub fn state(&self) -> anyhow::Result<OrderState> {
        Ok(OrderState {
            id: Some(self.id),
            customer_id: Some(self.customer_id),
            status: Some(self.status),
            lines: self
                .lines
                .iter()
                .map(|line| OrderLine {
                    sku: line.sku.clone(),
                    product_id: line.product_id,
                    name: line.name.clone(),
                    quantity: line.quantity,
                    unit_price: line.unit_price,
                    line_total: line.line_total,
                })
                .collect(),
            total: Some(self.total),
            shipping_address: Some(self.shipping_address.clone()),
            shipments: self
                .shipments
                .iter()
                .map(|s| {
                    Ok(Shipment {
                        shipment_id: s.id,
                        carrier: s.carrier.clone(),
                        tracking_number: s.tracking_number.clone(),
                        at: parse_timestamp(&s.created_at)?,
                    })
                })
                .collect::<anyhow::Result<_>>()?,
            placed_at: Some(parse_timestamp(&self.created_at)?),
            updated_at: Some(parse_timestamp(&self.updated_at)?),
        })
    }
}

/// The order id named by an `order-{id}` stream.
///
/// # Errors
/// When the stream is not an order stream.
pub fn order_id(stream: &StreamId) -> anyhow::Result<OrderId> {
    stream_id(stream, Order::NAME)
}

/// Decodes an order event.
///
/// # Errors
/// When the event is not an order event of a known schema.
pub fn decode_order_event(recorded: &RecordedEvent) -> anyhow::Result<OrderEvent> {
    batch::decode_event::<OrderEvent>(recorded).context("undecodable order event")
}

/// The states of these orders as the read model holds them (absent: not placed yet).
async fn load(
    conn: &mut AnyConnection,
    ids: &[OrderId],
) -> anyhow::Result<HashMap<OrderId, OrderState>> {
    let keys: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let rows = batch::fetch_in(
        conn,
        "SELECT id, view FROM rm_orders WHERE id IN",
        "",
        &keys,
    )
    .await?;
    let mut states = HashMap::with_capacity(rows.len());
    for row in rows {
        let view: OrderView = serde_json::from_str(&row.try_get::<String, _>("view")?)
            .context("bad stored order view")?;
        states.insert(view.id, view.state()?);
    }
    Ok(states)
}

/// Refuses events that no valid history holds, before `evolve`.
fn check(state: Option<&OrderState>, id: OrderId, event: &OrderEvent) -> anyhow::Result<()> {
    match (state, event) {
        (Some(_), OrderEvent::OrderPlaced { .. }) => bail!("order placed twice"),
        (None, OrderEvent::OrderPlaced { id: placed, .. }) if *placed != id => {
            bail!("OrderPlaced of {placed} in the stream of {id}")
        }
        (None, OrderEvent::OrderPlaced { .. }) | (Some(_), _) => Ok(()),
        (None, _) => bail!("event for an order that was never placed"),
    }
}

fn row(view: &OrderView, version: u64) -> anyhow::Result<Vec<Arg>> {
    Ok(vec![
        view.id.to_string().into(),
        view.customer_id.to_string().into(),
        view.status.as_str().into(),
        view.total.amount.into(),
        view.total.currency.to_string().into(),
        view.created_at.clone().into(),
        view.updated_at.clone().into(),
        i64::try_from(version)?.into(),
        serde_json::to_string(view)?.into(),
    ])
}

async fn save(conn: &mut AnyConnection, rows: Vec<Vec<Arg>>) -> anyhow::Result<()> {
    batch::insert_rows(
        conn,
        "INSERT INTO rm_orders (id, customer_id, status, total_amount, currency, created_at, \
             updated_at, version, view)",
        "ON CONFLICT (id) DO UPDATE SET customer_id = excluded.customer_id, \
             status = excluded.status, total_amount = excluded.total_amount, \
             currency = excluded.currency, created_at = excluded.created_at, \
             updated_at = excluded.updated_at, version = excluded.version, view = excluded.view",
        rows,
    )
    .await
}

#[async_trait]
impl Projection for OrdersProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        event.stream.category() == Order::NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["rm_orders", "rm_order_counts"]
    }

    /// Loads every order the batch touches in one go, folds the events in memory and
    /// writes each changed order once.
    async fn apply_many(
        &self,
        tx: &mut Transaction<'_, Any>,
        events: &[&RecordedEvent],
    ) -> anyhow::Result<()> {
        let decoded = events
            .iter()
            .map(|recorded| {
                order_id(&recorded.stream)
                    .and_then(|id| Ok((id, decode_order_event(recorded)?)))
                    .with_context(|| batch::describe(recorded))
            })
            .collect::<anyhow::Result<Vec<(OrderId, OrderEvent)>>>()?;
        let mut ids: Vec<OrderId> = decoded.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut states = load(tx, &ids).await?;
        let loaded_status: HashMap<OrderId, OrderStatus> = states
            .iter()
            .filter_map(|(id, state)| Some((*id, state.status?)))
            .collect();
        let mut versions: BTreeMap<OrderId, u64> = BTreeMap::new();
        for ((id, event), recorded) in decoded.iter().zip(events) {
            let before = states.remove(id);
            check(before.as_ref(), *id, event).with_context(|| batch::describe(recorded))?;
            states.insert(*id, Order::evolve(before.unwrap_or_default(), event));
            versions.insert(*id, recorded.version);
        }
        let mut counts = CountChanges::default();
        let mut rows = Vec::with_capacity(versions.len());
        for (id, version) in &versions {
            let view = OrderView::of(states.get(id).context("folded order missing")?)?;
            counts.moved(
                order_counts::day_of(&view.created_at),
                loaded_status.get(id).copied(),
                view.status,
            );
            rows.push(row(&view, *version)?);
        }
        save(tx, rows).await?;
        counts.write(tx).await
    }
}
