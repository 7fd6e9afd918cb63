//! `emporium replay [projection]`: rebuilds read models from the log into fresh tables and
//! swaps them in once caught up, while the old ones keep serving (see `projector::replay`).
use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::bail;
use projector::{Projection, ReplayConfig, ReplayProgress, Replayer};

use crate::{backends::Backends, settings::Settings};

/// The projections `name` designates: one by its name, or every one for `all` or none.
fn select(name: Option<&str>) -> anyhow::Result<Vec<Arc<dyn Projection>>> {
    let all = projector::default_projections();
    match name {
        None | Some("all") => Ok(all),
        Some(name) => {
            let known: Vec<&str> = all.iter().map(|p| p.name()).collect();
            match all.iter().find(|p| p.name() == name) {
                Some(projection) => Ok(vec![projection.clone()]),
                None => bail!(
                    "unknown projection {name:?}: choose one of {}, or all",
                    known.join(", ")
                ),
            }
        }
    }
}

/// A progress line for humans, at most one a second while reading.
fn printer() -> impl Fn(&ReplayProgress) + Send + Sync + 'static {
    let last = Mutex::new(Instant::now());
    move |progress| match progress {
        ReplayProgress::Started { projections, head } => {
            println!(
                "replaying {} from position 0 (head {head})",
                projections.join(", ")
            );
        }
        ReplayProgress::Read {
            position,
            head,
            events,
            elapsed,
        } => {
            let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
            if last.elapsed() >= Duration::from_secs(1) {
                *last = Instant::now();
                #[allow(clippy::cast_precision_loss)]
                let rate = *events as f64 / elapsed.as_secs_f64().max(1e-6);
                println!(
                    "  read up to position {position} of {head}: {events} events, {rate:.0} events/s"
                );
            }
        }
        ReplayProgress::Swapped {
            projection,
            checkpoint,
            tail,
            rows,
            took,
        } => println!(
            "  {projection}: swapped in at position {checkpoint} ({rows} rows, {tail} events applied during the swap, {} ms)",
            took.as_millis()
        ),
    }
}

/// Replays `projection` (every one when `None` or `all`).
pub async fn run(
    settings: &Settings,
    projection: Option<&str>,
    batch_size: usize,
) -> anyhow::Result<()> {
    let projections = select(projection)?;
    if batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let backends = Backends::open(settings).await?;
    println!("read models: {}", backends.description);
    let config = ReplayConfig {
        batch_size,
        ..ReplayConfig::default()
    };
    let report = Replayer::new(backends.store, backends.sql, config)
        .run(&projections, printer())
        .await?;
    println!(
        "replayed {} events into {} in {:.2} s: {:.0} events/s",
        report.events,
        report
            .checkpoints
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", "),
        report.elapsed.as_secs_f64(),
        report.events_per_second()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::select;

    #[test]
    fn projections_are_chosen_by_name_or_all() {
        assert_eq!(select(None).unwrap().len(), 6);
        assert_eq!(select(Some("all")).unwrap().len(), 6);
        assert_eq!(select(Some("orders")).unwrap()[0].name(), "orders");
        let Err(err) = select(Some("nope")) else {
            panic!("an unknown name is refused");
        };
        let err = err.to_string();
        assert!(
            err.contains("\"nope\"")
                && err.contains("catalog, inventory, orders, customers, sales, bought_together"),
            "{err}"
        );
    }
}
