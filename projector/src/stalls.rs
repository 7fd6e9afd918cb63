//! Whether each projection is moving.
//!
//! A runner retries a batch it cannot apply until it succeeds (a projection never skips an
//! event), so a read model can stop at one event for good: a table dropped or altered by
//! hand, a bug, a database that refuses a row. Its readers then see it fall behind and
//! nothing else. Each runner therefore reports a [`Stall`] from its first failure until
//! it makes progress again, and [`Stalls`] gathers them for the node's readiness probe
//! and the log.
use std::{collections::BTreeMap, fmt, sync::Arc};

use chrono::{DateTime, SecondsFormat, Utc};
use eventstore::Position;
use tokio::sync::watch;

/// The longest error text a stall keeps (a database error can quote a whole row).
const MAX_ERROR_CHARS: usize = 500;

/// A projection that has not moved since its last success.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stall {
    /// When the first of the failures in a row happened.
    pub since: DateTime<Utc>,
    /// How many attempts in a row have failed.
    pub attempts: u32,
    /// The committed checkpoint: the events after it are the ones that fail.
    pub checkpoint: Position,
    /// The last failure, with its causes.
    pub error: String,
}

impl Stall {
    /// The stall after one more failure (`error`) at `checkpoint`, at `now`.
    fn after(
        previous: Option<&Self>,
        checkpoint: Position,
        error: &str,
        now: DateTime<Utc>,
    ) -> Self {
        Self {
            since: previous.map_or(now, |stall| stall.since),
            attempts: previous.map_or(1, |stall| stall.attempts.saturating_add(1)),
            checkpoint,
            error: truncate(error, MAX_ERROR_CHARS),
        }
    }
}

impl fmt::Display for Stall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "failing since {} ({} attempts) after position {}: {}",
            self.since.to_rfc3339_opts(SecondsFormat::Secs, true),
            self.attempts,
            self.checkpoint,
            self.error
        )
    }
}

fn truncate(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// One runner's side: records failures and progress.
pub(crate) struct StallReporter {
    name: &'static str,
    current: watch::Sender<Option<Stall>>,
}

impl StallReporter {
    pub(crate) fn new(name: &'static str) -> Self {
        Self {
            name,
            current: watch::channel(None).0,
        }
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Option<Stall>> {
        self.current.subscribe()
    }

    /// One more failure in a row at `checkpoint`.
    pub(crate) fn failed(&self, checkpoint: Position, error: &anyhow::Error) {
        let error = format!("{error:#}");
        self.current.send_modify(|current| {
            *current = Some(Stall::after(
                current.as_ref(),
                checkpoint,
                &error,
                Utc::now(),
            ));
        });
        metrics::counter!("emporium_projection_failures_total", "projection" => self.name)
            .increment(1);
        metrics::gauge!("emporium_projection_failing", "projection" => self.name).set(1.0);
    }

    /// The runner made progress (a batch committed, or it read its checkpoint): any
    /// stall is over.
    pub(crate) fn progressed(&self) {
        let cleared = self
            .current
            .send_if_modified(|current| current.take().is_some());
        if cleared {
            tracing::info!(projection = self.name, "projection moving again");
        }
        metrics::gauge!("emporium_projection_failing", "projection" => self.name).set(0.0);
    }
}

/// The stalls of a set of runners (cheap to clone).
#[derive(Clone, Debug, Default)]
pub struct Stalls {
    receivers: Arc<BTreeMap<&'static str, watch::Receiver<Option<Stall>>>>,
}

impl Stalls {
    /// The stalls of `runners`.
    pub fn of<'a>(runners: impl IntoIterator<Item = &'a crate::ProjectionRunner>) -> Self {
        Self {
            receivers: Arc::new(
                runners
                    .into_iter()
                    .map(|runner| (runner.name(), runner.watch_stall()))
                    .collect(),
            ),
        }
    }

    /// These and `runner`'s.
    #[must_use]
    pub fn with(self, runner: &crate::ProjectionRunner) -> Self {
        let mut receivers = (*self.receivers).clone();
        receivers.insert(runner.name(), runner.watch_stall());
        Self {
            receivers: Arc::new(receivers),
        }
    }

    /// Every projection stalled now, by name.
    pub fn current(&self) -> Vec<(&'static str, Stall)> {
        self.receivers
            .iter()
            .filter_map(|(name, rx)| rx.borrow().clone().map(|stall| (*name, stall)))
            .collect()
    }

    /// `Err` naming each stalled projection, for a readiness probe.
    ///
    /// # Errors
    /// When a projection is stalled.
    pub fn check(&self) -> Result<(), String> {
        let stalled = self.current();
        if stalled.is_empty() {
            return Ok(());
        }
        Err(stalled
            .iter()
            .map(|(name, stall)| format!("{name}: {stall}"))
            .collect::<Vec<_>>()
            .join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(seconds, 0).unwrap()
    }

    #[test]
    fn failures_in_a_row_keep_the_first_time_and_count_up() {
        let first = Stall::after(None, 7, "boom", at(100));
        assert_eq!(first.attempts, 1);
        assert_eq!(first.since, at(100));
        let second = Stall::after(Some(&first), 9, "bang", at(160));
        assert_eq!(second.attempts, 2);
        assert_eq!(second.since, at(100));
        assert_eq!(second.checkpoint, 9);
        assert_eq!(second.error, "bang");
        assert_eq!(
            second.to_string(),
            "failing since 1970-01-01T00:01:40Z (2 attempts) after position 9: bang"
        );
    }

    #[test]
    fn long_errors_are_cut_on_a_character_boundary() {
        let error = "é".repeat(MAX_ERROR_CHARS + 10);
        let stall = Stall::after(None, 1, &error, at(0));
        assert_eq!(stall.error.chars().count(), MAX_ERROR_CHARS + 1);
        assert!(stall.error.ends_with('…'));
        assert_eq!(truncate("short", 10), "short");
    }

    #[test]
    fn a_report_clears_on_progress_and_the_check_names_the_projection() {
        let reporter = StallReporter::new("sales");
        let stalls = Stalls {
            receivers: Arc::new(BTreeMap::from([("sales", reporter.subscribe())])),
        };
        assert_eq!(stalls.check(), Ok(()));
        reporter.failed(3, &anyhow::anyhow!("no such table").context("applying"));
        reporter.failed(3, &anyhow::anyhow!("no such table").context("applying"));
        let message = stalls.check().unwrap_err();
        assert!(message.starts_with("sales: failing since "), "{message}");
        assert!(
            message.ends_with("(2 attempts) after position 3: applying: no such table"),
            "{message}"
        );
        reporter.progressed();
        assert_eq!(stalls.check(), Ok(()));
        assert!(stalls.current().is_empty());
    }
}
