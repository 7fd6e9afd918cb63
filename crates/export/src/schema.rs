//! The exported datasets' schemas (the README's table), and the pure step from order
//! records to Arrow record batches.
//!
//! Money is an `Int64` count of minor units (cents for EUR) beside a `Utf8` ISO 4217
//! currency, never a float; ids are UUID strings; times are UTC timestamps in
//! microseconds. Every column is non-null. The partition column `date` is not stored in the
//! files: readers take it from the `date=YYYY-MM-DD/` folder (hive partitioning), and
//! `placed_at` carries it too.
use std::sync::Arc;

use anyhow::Context;
use arrow_array::{
    ArrayRef, RecordBatch,
    builder::{
        ArrayBuilder, Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder,
    },
};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use projector::{orders::OrderView, runtime::parse_timestamp};

/// The version of the two schemas below, stored in every file's metadata
/// (`emporium.schema_version`). Adding a column keeps it; renaming or retyping one bumps it.
pub const SCHEMA_VERSION: &str = "1";

fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn field(name: &str, data_type: DataType) -> Field {
    Field::new(name, data_type, false)
}

/// `orders`: one row per order placed on the partition's day.
pub fn orders_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("order_id", DataType::Utf8),
        field("customer_id", DataType::Utf8),
        field("status", DataType::Utf8),
        field("placed_at", timestamp_type()),
        field("updated_at", timestamp_type()),
        field("line_count", DataType::Int32),
        field("units", DataType::Int64),
        field("total_minor", DataType::Int64),
        field("currency", DataType::Utf8),
        field("shipping_country", DataType::Utf8),
    ]))
}

/// `order_lines`: one row per line of an order placed on the partition's day.
pub fn order_lines_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        field("order_id", DataType::Utf8),
        field("line_number", DataType::Int32),
        field("sku", DataType::Utf8),
        field("product_id", DataType::Utf8),
        field("product_name", DataType::Utf8),
        field("quantity", DataType::Int64),
        field("unit_price_minor", DataType::Int64),
        field("line_total_minor", DataType::Int64),
        field("currency", DataType::Utf8),
        field("status", DataType::Utf8),
        field("placed_at", timestamp_type()),
    ]))
}

/// One order as exported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrderRecord {
    /// Order id (UUID).
    pub order_id: String,
    /// Customer account id (UUID).
    pub customer_id: String,
    /// Status now (`PLACED` … `DELIVERED`, or `CANCELLED`).
    pub status: String,
    /// When it was placed, microseconds since the epoch (UTC): its day is its partition.
    pub placed_at_micros: i64,
    /// When it last changed, microseconds since the epoch (UTC).
    pub updated_at_micros: i64,
    /// Total, minor units.
    pub total_minor: i64,
    /// ISO 4217 currency of every amount of the order.
    pub currency: String,
    /// ISO 3166-1 alpha-2 country it ships to.
    pub shipping_country: String,
    /// Its lines, in order.
    pub lines: Vec<LineRecord>,
}

/// One order line as exported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LineRecord {
    /// The variant ordered.
    pub sku: String,
    /// Its product (UUID).
    pub product_id: String,
    /// Product name at ordering time.
    pub product_name: String,
    /// Units.
    pub quantity: i64,
    /// Price of one unit at ordering time, minor units.
    pub unit_price_minor: i64,
    /// `unit_price_minor × quantity`.
    pub line_total_minor: i64,
    /// ISO 4217 currency of both amounts.
    pub currency: String,
}

fn micros(text: &str) -> anyhow::Result<i64> {
    Ok(parse_timestamp(text)?.timestamp_micros())
}

impl OrderRecord {
    /// The record of an order view as the `orders` read model stores it.
    ///
    /// # Errors
    /// When a stored time does not parse.
    pub fn from_view(view: &OrderView) -> anyhow::Result<Self> {
        Ok(Self {
            order_id: view.id.to_string(),
            customer_id: view.customer_id.to_string(),
            status: view.status.as_str().to_owned(),
            placed_at_micros: micros(&view.created_at)?,
            updated_at_micros: micros(&view.updated_at)?,
            total_minor: view.total.amount,
            currency: view.total.currency.to_string(),
            shipping_country: view.shipping_address.country.clone(),
            lines: view
                .lines
                .iter()
                .map(|line| LineRecord {
                    sku: line.sku.to_string(),
                    product_id: line.product_id.to_string(),
                    product_name: line.name.clone(),
                    quantity: i64::from(line.quantity),
                    unit_price_minor: line.unit_price.amount,
                    line_total_minor: line.line_total.amount,
                    currency: line.line_total.currency.to_string(),
                })
                .collect(),
        })
    }
}

/// Column builders for a batch of orders and their lines.
pub struct Batches {
    orders: OrderColumns,
    lines: LineColumns,
}

struct OrderColumns {
    order_id: StringBuilder,
    customer_id: StringBuilder,
    status: StringBuilder,
    placed_at: TimestampMicrosecondBuilder,
    updated_at: TimestampMicrosecondBuilder,
    line_count: Int32Builder,
    units: Int64Builder,
    total_minor: Int64Builder,
    currency: StringBuilder,
    shipping_country: StringBuilder,
}

struct LineColumns {
    order_id: StringBuilder,
    line_number: Int32Builder,
    sku: StringBuilder,
    product_id: StringBuilder,
    product_name: StringBuilder,
    quantity: Int64Builder,
    unit_price_minor: Int64Builder,
    line_total_minor: Int64Builder,
    currency: StringBuilder,
    status: StringBuilder,
    placed_at: TimestampMicrosecondBuilder,
}

fn timestamps() -> TimestampMicrosecondBuilder {
    TimestampMicrosecondBuilder::new().with_timezone("UTC")
}

impl Default for Batches {
    fn default() -> Self {
        Self {
            orders: OrderColumns {
                order_id: StringBuilder::new(),
                customer_id: StringBuilder::new(),
                status: StringBuilder::new(),
                placed_at: timestamps(),
                updated_at: timestamps(),
                line_count: Int32Builder::new(),
                units: Int64Builder::new(),
                total_minor: Int64Builder::new(),
                currency: StringBuilder::new(),
                shipping_country: StringBuilder::new(),
            },
            lines: LineColumns {
                order_id: StringBuilder::new(),
                line_number: Int32Builder::new(),
                sku: StringBuilder::new(),
                product_id: StringBuilder::new(),
                product_name: StringBuilder::new(),
                quantity: Int64Builder::new(),
                unit_price_minor: Int64Builder::new(),
                line_total_minor: Int64Builder::new(),
                currency: StringBuilder::new(),
                status: StringBuilder::new(),
                placed_at: timestamps(),
            },
        }
    }
}

impl Batches {
    /// Adds an order and its lines.
    ///
    /// # Errors
    /// When the order has more lines than an `Int32` counts or its units overflow.
    pub fn push(&mut self, order: &OrderRecord) -> anyhow::Result<()> {
        let line_count = i32::try_from(order.lines.len()).context("too many lines")?;
        let units = order
            .lines
            .iter()
            .try_fold(0_i64, |sum, line| sum.checked_add(line.quantity))
            .context("units overflow")?;
        let o = &mut self.orders;
        o.order_id.append_value(&order.order_id);
        o.customer_id.append_value(&order.customer_id);
        o.status.append_value(&order.status);
        o.placed_at.append_value(order.placed_at_micros);
        o.updated_at.append_value(order.updated_at_micros);
        o.line_count.append_value(line_count);
        o.units.append_value(units);
        o.total_minor.append_value(order.total_minor);
        o.currency.append_value(&order.currency);
        o.shipping_country.append_value(&order.shipping_country);
        let l = &mut self.lines;
        for (number, line) in (1..).zip(&order.lines) {
            l.order_id.append_value(&order.order_id);
            l.line_number.append_value(number);
            l.sku.append_value(&line.sku);
            l.product_id.append_value(&line.product_id);
            l.product_name.append_value(&line.product_name);
            l.quantity.append_value(line.quantity);
            l.unit_price_minor.append_value(line.unit_price_minor);
            l.line_total_minor.append_value(line.line_total_minor);
            l.currency.append_value(&line.currency);
            l.status.append_value(&order.status);
            l.placed_at.append_value(order.placed_at_micros);
        }
        Ok(())
    }

    /// Orders pushed since the last [`Batches::finish`].
    pub fn orders(&self) -> usize {
        self.orders.order_id.len()
    }

    /// The orders and lines pushed so far as one batch each, leaving the builders empty.
    ///
    /// # Errors
    /// Never for batches built by [`Batches::push`] (the columns match the schemas).
    pub fn finish(&mut self) -> anyhow::Result<(RecordBatch, RecordBatch)> {
        let o = &mut self.orders;
        let orders: Vec<ArrayRef> = vec![
            Arc::new(o.order_id.finish()),
            Arc::new(o.customer_id.finish()),
            Arc::new(o.status.finish()),
            Arc::new(o.placed_at.finish()),
            Arc::new(o.updated_at.finish()),
            Arc::new(o.line_count.finish()),
            Arc::new(o.units.finish()),
            Arc::new(o.total_minor.finish()),
            Arc::new(o.currency.finish()),
            Arc::new(o.shipping_country.finish()),
        ];
        let l = &mut self.lines;
        let lines: Vec<ArrayRef> = vec![
            Arc::new(l.order_id.finish()),
            Arc::new(l.line_number.finish()),
            Arc::new(l.sku.finish()),
            Arc::new(l.product_id.finish()),
            Arc::new(l.product_name.finish()),
            Arc::new(l.quantity.finish()),
            Arc::new(l.unit_price_minor.finish()),
            Arc::new(l.line_total_minor.finish()),
            Arc::new(l.currency.finish()),
            Arc::new(l.status.finish()),
            Arc::new(l.placed_at.finish()),
        ];
        Ok((
            RecordBatch::try_new(orders_schema(), orders)?,
            RecordBatch::try_new(order_lines_schema(), lines)?,
        ))
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::{Array, Int64Array, StringArray, TimestampMicrosecondArray};

    use super::*;

    pub(crate) fn order(id: &str, placed_at_micros: i64, quantities: &[i64]) -> OrderRecord {
        OrderRecord {
            order_id: id.to_owned(),
            customer_id: "0190a0d4-0000-7000-8000-000000000001".to_owned(),
            status: "PAID".to_owned(),
            placed_at_micros,
            updated_at_micros: placed_at_micros + 1,
            total_minor: quantities.iter().map(|q| q * 250).sum(),
            currency: "EUR".to_owned(),
            shipping_country: "DE".to_owned(),
            lines: quantities
                .iter()
                .enumerate()
                .map(|(i, &quantity)| LineRecord {
                    sku: format!("SKU-{i}"),
                    product_id: format!("0190a0d4-0000-7000-8000-00000000010{i}"),
                    product_name: format!("Product {i}"),
                    quantity,
                    unit_price_minor: 250,
                    line_total_minor: 250 * quantity,
                    currency: "EUR".to_owned(),
                })
                .collect(),
        }
    }

    #[test]
    fn orders_and_lines_land_in_their_columns() {
        let mut batches = Batches::default();
        batches.push(&order("a", 1_000, &[2, 3])).unwrap();
        batches.push(&order("b", 2_000, &[1])).unwrap();
        assert_eq!(batches.orders(), 2);
        let (orders, lines) = batches.finish().unwrap();
        assert_eq!(batches.orders(), 0, "finish empties the builders");
        assert_eq!((orders.num_rows(), lines.num_rows()), (2, 3));
        assert_eq!(orders.schema(), orders_schema());
        assert_eq!(lines.schema(), order_lines_schema());

        let units = orders.column_by_name("units").unwrap();
        let units = units.as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(units.values(), &[5, 1]);
        let totals = orders.column_by_name("total_minor").unwrap();
        let totals = totals.as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(totals.values(), &[1_250, 250]);

        let ids = lines.column_by_name("order_id").unwrap();
        let ids = ids.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(ids.iter().flatten().collect::<Vec<_>>(), ["a", "a", "b"]);
        let numbers = lines.column_by_name("line_number").unwrap();
        let numbers = numbers
            .as_any()
            .downcast_ref::<arrow_array::Int32Array>()
            .unwrap();
        assert_eq!(numbers.values(), &[1, 2, 1]);
        let line_totals = lines.column_by_name("line_total_minor").unwrap();
        let line_totals = line_totals.as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(line_totals.values(), &[500, 750, 250]);
        let placed = lines.column_by_name("placed_at").unwrap();
        let placed = placed
            .as_any()
            .downcast_ref::<TimestampMicrosecondArray>()
            .unwrap();
        assert_eq!(placed.values(), &[1_000, 1_000, 2_000]);
        assert_eq!(placed.timezone(), Some("UTC"));
        assert_eq!(placed.null_count(), 0);
    }
}
