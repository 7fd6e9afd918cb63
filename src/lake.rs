//! `emporium export`: orders and order lines placed on a range of UTC days, as Parquet
//! partitioned by day, into a folder or an S3 bucket (the `export` crate does the work).
use export::{DayRange, Destination, NaiveDate};

use crate::{backends::Backends, settings::Settings};

/// Exports the days `from..=to` to `out` (a folder or `s3://bucket/prefix`) from the read
/// models of the configured backends, and prints what each day got.
pub async fn run(
    settings: &Settings,
    from: NaiveDate,
    to: NaiveDate,
    out: &str,
) -> anyhow::Result<()> {
    let range = DayRange::new(from, to)?;
    // Before touching the database: a bad destination is an input error.
    let destination = Destination::open(out)?;
    let backends = Backends::open(settings).await?;
    let report =
        export::export(backends.store.as_ref(), &backends.sql, &destination, range).await?;
    let (mut orders, mut lines) = (0, 0);
    for day in &report.days {
        orders += day.orders;
        lines += day.lines;
        let removed = match day.removed {
            0 => String::new(),
            n => format!(", {n} old file(s) removed"),
        };
        if day.orders == 0 {
            println!("{}  no orders: files removed{removed}", day.day);
        } else {
            println!(
                "{}  {} orders, {} lines{removed}",
                day.day, day.orders, day.lines
            );
        }
    }
    println!(
        "exported {orders} orders and {lines} lines placed {from}..={to} to {} (orders read model at log position {})",
        destination.display(),
        report.checkpoint
    );
    let head = backends.store.head_position().await?;
    if report.checkpoint < head {
        eprintln!(
            "note: the log has moved on to position {head}: what happened after position {} \
             is not in this export (export those days again later)",
            report.checkpoint
        );
    }
    Ok(())
}
