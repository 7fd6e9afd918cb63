//! Writing one day: both datasets' files streamed as Parquet, published atomically under
//! their deterministic names, then every other object of the day's partitions removed.
use std::pin::pin;

use anyhow::Context;
use arrow_array::RecordBatch;
use chrono::NaiveDate;
use futures::{Stream, StreamExt};
use object_store::{buffered::BufWriter, path::Path};
use parquet::{
    arrow::AsyncArrowWriter,
    basic::Compression,
    file::{metadata::KeyValue, properties::WriterProperties},
};

use crate::{
    destination::{Dataset, Destination},
    schema::{Batches, OrderRecord, SCHEMA_VERSION, order_lines_schema, orders_schema},
};

/// Orders gathered before a batch is handed to the Parquet writers (which buffer a row
/// group, up to about a million rows, before it reaches the store).
const BATCH_ORDERS: usize = 8192;

/// What exporting one day did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DayReport {
    /// The UTC day of placement.
    pub day: NaiveDate,
    /// Orders written (0: the day has no file).
    pub orders: u64,
    /// Order lines written.
    pub lines: u64,
    /// Other objects removed from the day's partitions (files of an earlier run under
    /// other names; never the file just written).
    pub removed: usize,
}

/// One open Parquet file of a dataset.
struct Part {
    path: Path,
    writer: AsyncArrowWriter<BufWriter>,
}

impl Part {
    fn create(
        destination: &Destination,
        dataset: Dataset,
        day: NaiveDate,
        metadata: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let path = destination.part_file(dataset, day);
        let schema = match dataset {
            Dataset::Orders => orders_schema(),
            Dataset::OrderLines => order_lines_schema(),
        };
        let mut pairs = vec![
            KeyValue::new("emporium.dataset".into(), dataset.name().to_owned()),
            KeyValue::new("emporium.schema_version".into(), SCHEMA_VERSION.to_owned()),
        ];
        pairs.extend(
            metadata
                .iter()
                .map(|(key, value)| KeyValue::new(key.clone(), value.clone())),
        );
        let properties = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_key_value_metadata(Some(pairs))
            .build();
        let sink = BufWriter::new(destination.store().clone(), path.clone());
        let writer = AsyncArrowWriter::try_new(sink, schema, Some(properties))?;
        Ok(Self { path, writer })
    }
}

/// Both files of a day, created when its first order arrives.
struct DayFiles {
    lines: Part,
    orders: Part,
}

impl DayFiles {
    async fn write(&mut self, (orders, lines): (RecordBatch, RecordBatch)) -> anyhow::Result<()> {
        self.lines.writer.write(&lines).await?;
        self.orders.writer.write(&orders).await?;
        Ok(())
    }

    /// Nothing published: uploads begun are aborted (best effort; a staging file of a
    /// local folder is removed when its upload is dropped).
    async fn abort(self) {
        for part in [self.lines, self.orders] {
            let _ = part.writer.into_inner().abort().await;
        }
    }
}

/// Writes the `orders` of `day` (all of them: placed on that UTC day) into the day's
/// partitions of both datasets, replacing what an earlier run left there.
///
/// Each file is written under its final, deterministic name through a staging object that
/// becomes visible whole or not at all (a renamed staging file in a folder; a PUT or a
/// completed multipart upload on S3), so a reader never sees a partial file and a re-run
/// never adds rows beside the old ones. The lines file is published first, then the
/// orders file; other objects of the day's partitions are removed only after both. A day
/// without orders gets no file, and loses the files it had.
///
/// `metadata` is added to each file's key-value metadata.
///
/// # Errors
/// When an order cannot be read or a file cannot be written or published; the previous
/// files of the day then stay as they were (or, if the lines file was already published,
/// the orders file is the previous one).
pub async fn write_day(
    destination: &Destination,
    day: NaiveDate,
    orders: impl Stream<Item = anyhow::Result<OrderRecord>>,
    metadata: &[(String, String)],
) -> anyhow::Result<DayReport> {
    let mut orders = pin!(orders);
    let mut files: Option<DayFiles> = None;
    let mut batches = Batches::default();
    let (mut order_count, mut line_count) = (0_u64, 0_u64);
    let written: anyhow::Result<()> = async {
        loop {
            let next = orders.next().await.transpose()?;
            if let Some(order) = &next {
                batches.push(order)?;
                order_count += 1;
                line_count += order.lines.len() as u64;
            }
            let full = batches.orders() >= BATCH_ORDERS;
            if (full || next.is_none()) && batches.orders() > 0 {
                if files.is_none() {
                    files = Some(DayFiles {
                        lines: Part::create(destination, Dataset::OrderLines, day, metadata)?,
                        orders: Part::create(destination, Dataset::Orders, day, metadata)?,
                    });
                }
                if let Some(files) = files.as_mut() {
                    files.write(batches.finish()?).await?;
                }
            }
            if next.is_none() {
                return Ok(());
            }
        }
    }
    .await;
    if let Err(err) = written {
        if let Some(files) = files {
            files.abort().await;
        }
        return Err(err.context(format!("exporting {day}")));
    }
    let mut kept = [None, None];
    if let Some(DayFiles {
        mut lines,
        mut orders,
    }) = files
    {
        // A failed finish is not aborted: its upload may already be completing. An
        // unfinished S3 multipart upload is invisible (a bucket lifecycle rule reclaims it).
        for part in [&mut lines, &mut orders] {
            part.writer
                .finish()
                .await
                .with_context(|| format!("publishing {}/{}", destination.display(), part.path))?;
        }
        kept = [Some(lines.path), Some(orders.path)];
    }
    let mut removed = 0;
    for (dataset, keep) in Dataset::ALL.into_iter().zip(&kept) {
        removed += destination
            .remove_others(dataset, day, keep.as_ref())
            .await?;
    }
    Ok(DayReport {
        day,
        orders: order_count,
        lines: line_count,
        removed,
    })
}
