//! What a run measured: latency histograms and outcome counts per operation, recorded by
//! each worker without sharing anything and merged once the run is over.
//!
//! Latencies are recorded in microseconds in an HDR histogram with three significant
//! digits (so a percentile is exact to 0.1 %), up to [`MAX_LATENCY`]; anything slower is
//! clamped to it. Only requests that got the answer the scenario expects (2xx, 304, or an
//! expected refusal such as 409 sold out) enter the histogram: a failed request's latency
//! says nothing about the service's speed, and it is counted under its status instead.
use std::{collections::BTreeMap, fmt, time::Duration};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// The slowest latency a histogram distinguishes; slower ones are recorded as this.
pub const MAX_LATENCY: Duration = Duration::from_secs(120);

/// Why a request got no HTTP answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TransportError {
    /// The connection could not be opened.
    Connect,
    /// No answer within the request timeout.
    Timeout,
    /// The connection broke, or the answer was not HTTP.
    Io,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Connect => "connect",
            Self::Timeout => "timeout",
            Self::Io => "io",
        })
    }
}

/// How one request ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// 2xx, or 304.
    Success,
    /// A refusal the scenario expects and that is no fault (409 sold out on a hot SKU).
    Rejected(u16),
    /// Any other HTTP status.
    Failed(u16),
    /// No HTTP answer at all.
    Transport(TransportError),
}

impl Outcome {
    /// The outcome of an HTTP answer with `status`, where `expected_refusal` is a status
    /// that counts as [`Outcome::Rejected`] rather than a failure.
    pub fn of_status(status: u16, expected_refusal: Option<u16>) -> Self {
        if (200..300).contains(&status) || status == 304 {
            Self::Success
        } else if Some(status) == expected_refusal {
            Self::Rejected(status)
        } else {
            Self::Failed(status)
        }
    }

    fn is_timed(self) -> bool {
        matches!(self, Self::Success | Self::Rejected(_))
    }
}

/// A latency histogram in microseconds.
#[derive(Clone, Debug)]
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        let max = u64::try_from(MAX_LATENCY.as_micros()).unwrap_or(u64::MAX);
        Self(Histogram::new_with_bounds(1, max, 3).expect("valid histogram bounds"))
    }
}

impl Latencies {
    /// Records one latency (at least 1 µs, at most [`MAX_LATENCY`]).
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.0.saturating_record(micros.max(1));
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Latencies) {
        // Same bounds on both sides, so adding cannot fail.
        self.0.add(&other.0).expect("histograms with equal bounds");
    }

    /// The percentiles a report shows.
    pub fn summary(&self) -> LatencySummary {
        let ms = |micros: u64| micros as f64 / 1000.0;
        if self.0.is_empty() {
            return LatencySummary::default();
        }
        LatencySummary {
            count: self.0.len(),
            mean_ms: self.0.mean() / 1000.0,
            p50_ms: ms(self.0.value_at_quantile(0.50)),
            p95_ms: ms(self.0.value_at_quantile(0.95)),
            p99_ms: ms(self.0.value_at_quantile(0.99)),
            max_ms: ms(self.0.max()),
        }
    }
}

/// Percentiles of a histogram, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LatencySummary {
    /// How many latencies the percentiles are taken over.
    pub count: u64,
    /// Arithmetic mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

/// Everything recorded about one kind of request.
#[derive(Clone, Debug, Default)]
pub struct OpStats {
    latencies: Latencies,
    successes: u64,
    rejected: BTreeMap<u16, u64>,
    failed: BTreeMap<u16, u64>,
    transport: BTreeMap<TransportError, u64>,
}

impl OpStats {
    /// Counts one request and, if it was answered as expected, its latency.
    pub fn record(&mut self, latency: Duration, outcome: Outcome) {
        if outcome.is_timed() {
            self.latencies.record(latency);
        }
        match outcome {
            Outcome::Success => self.successes += 1,
            Outcome::Rejected(status) => *self.rejected.entry(status).or_default() += 1,
            Outcome::Failed(status) => *self.failed.entry(status).or_default() += 1,
            Outcome::Transport(error) => *self.transport.entry(error).or_default() += 1,
        }
    }

    /// Adds everything `other` recorded.
    pub fn merge(&mut self, other: &OpStats) {
        self.latencies.merge(&other.latencies);
        self.successes += other.successes;
        for (status, n) in &other.rejected {
            *self.rejected.entry(*status).or_default() += n;
        }
        for (status, n) in &other.failed {
            *self.failed.entry(*status).or_default() += n;
        }
        for (error, n) in &other.transport {
            *self.transport.entry(*error).or_default() += n;
        }
    }

    /// Requests that ended as errors: unexpected statuses and transport failures.
    pub fn errors(&self) -> u64 {
        self.failed.values().sum::<u64>() + self.transport.values().sum::<u64>()
    }

    /// The summary of this operation over a measured window of `seconds`.
    pub fn summary(&self, op: &str, seconds: f64) -> OpSummary {
        let rejected = self.rejected.values().sum::<u64>();
        let errors = self.errors();
        let requests = self.successes + rejected + errors;
        let per_second = |n: u64| {
            if seconds > 0.0 {
                n as f64 / seconds
            } else {
                0.0
            }
        };
        let mut error_kinds = BTreeMap::new();
        for (status, n) in &self.failed {
            error_kinds.insert(status.to_string(), *n);
        }
        for (error, n) in &self.transport {
            error_kinds.insert(error.to_string(), *n);
        }
        OpSummary {
            op: op.to_owned(),
            requests,
            successes: self.successes,
            rejected,
            errors,
            throughput: per_second(self.successes),
            requests_per_second: per_second(requests),
            latency: self.latencies.summary(),
            error_kinds,
            rejected_kinds: self
                .rejected
                .iter()
                .map(|(status, n)| (status.to_string(), *n))
                .collect(),
        }
    }
}

/// One operation's numbers, as reported.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OpSummary {
    /// The operation (`list`, `detail`, `search`, `order`, `page`), or `total`.
    pub op: String,
    /// Requests measured.
    pub requests: u64,
    /// Answered 2xx or 304.
    pub successes: u64,
    /// Expected refusals (sold out).
    pub rejected: u64,
    /// Unexpected statuses and transport failures.
    pub errors: u64,
    /// Successes per second: the throughput.
    pub throughput: f64,
    /// Requests per second, whatever their outcome.
    pub requests_per_second: f64,
    /// Latencies of successes and expected refusals.
    pub latency: LatencySummary,
    /// Errors by HTTP status or transport failure (`timeout`, `connect`, `io`).
    pub error_kinds: BTreeMap<String, u64>,
    /// Expected refusals by HTTP status.
    pub rejected_kinds: BTreeMap<String, u64>,
}

/// Everything one worker recorded, per operation.
#[derive(Clone, Debug, Default)]
pub struct Recorder {
    ops: BTreeMap<&'static str, OpStats>,
}

impl Recorder {
    /// Records one request of operation `op`.
    pub fn record(&mut self, op: &'static str, latency: Duration, outcome: Outcome) {
        self.ops.entry(op).or_default().record(latency, outcome);
    }

    /// Adds everything `other` recorded.
    pub fn merge(&mut self, other: &Recorder) {
        for (op, stats) in &other.ops {
            self.ops.entry(op).or_default().merge(stats);
        }
    }

    /// Per-operation summaries (in name order), then their total.
    pub fn summaries(&self, seconds: f64) -> (Vec<OpSummary>, OpSummary) {
        let mut total = OpStats::default();
        let ops = self
            .ops
            .iter()
            .map(|(op, stats)| {
                total.merge(stats);
                stats.summary(op, seconds)
            })
            .collect();
        (ops, total.summary("total", seconds))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn percentiles_come_from_the_recorded_latencies() {
        let mut latencies = Latencies::default();
        for n in 1..=100 {
            latencies.record(ms(n));
        }
        let summary = latencies.summary();
        assert_eq!(summary.count, 100);
        // Three significant digits: within 0.1 % of the exact value.
        assert!((summary.p50_ms - 50.0).abs() < 0.1, "{summary:?}");
        assert!((summary.p95_ms - 95.0).abs() < 0.1, "{summary:?}");
        assert!((summary.p99_ms - 99.0).abs() < 0.1, "{summary:?}");
        assert!((summary.max_ms - 100.0).abs() < 0.1, "{summary:?}");
        assert!((summary.mean_ms - 50.5).abs() < 0.1, "{summary:?}");
    }

    #[test]
    fn an_empty_histogram_summarises_to_zeros() {
        assert_eq!(Latencies::default().summary(), LatencySummary::default());
    }

    #[test]
    fn extreme_latencies_are_clamped_not_lost() {
        let mut latencies = Latencies::default();
        latencies.record(Duration::ZERO);
        latencies.record(Duration::from_secs(3600));
        let summary = latencies.summary();
        assert_eq!(summary.count, 2);
        assert!(summary.max_ms >= 119_000.0 && summary.max_ms <= 121_000.0);
    }

    #[test]
    fn statuses_are_classified() {
        assert_eq!(Outcome::of_status(201, None), Outcome::Success);
        assert_eq!(Outcome::of_status(304, None), Outcome::Success);
        assert_eq!(Outcome::of_status(409, Some(409)), Outcome::Rejected(409));
        assert_eq!(Outcome::of_status(409, None), Outcome::Failed(409));
        assert_eq!(Outcome::of_status(500, Some(409)), Outcome::Failed(500));
    }

    #[test]
    fn failures_are_counted_but_not_timed() {
        let mut stats = OpStats::default();
        stats.record(ms(10), Outcome::Success);
        stats.record(ms(20), Outcome::Rejected(409));
        stats.record(ms(5000), Outcome::Failed(504));
        stats.record(ms(9000), Outcome::Transport(TransportError::Timeout));
        let summary = stats.summary("order", 2.0);
        assert_eq!(summary.requests, 4);
        assert_eq!(summary.successes, 1);
        assert_eq!(summary.rejected, 1);
        assert_eq!(summary.errors, 2);
        assert_eq!(summary.throughput, 0.5);
        assert_eq!(summary.requests_per_second, 2.0);
        assert_eq!(summary.latency.count, 2);
        assert!(summary.latency.max_ms < 21.0);
        assert_eq!(summary.error_kinds["504"], 1);
        assert_eq!(summary.error_kinds["timeout"], 1);
        assert_eq!(summary.rejected_kinds["409"], 1);
    }

    #[test]
    fn merged_recorders_add_up_per_operation_and_in_total() {
        let mut a = Recorder::default();
        a.record("list", ms(1), Outcome::Success);
        a.record("search", ms(1), Outcome::Failed(404));
        let mut b = Recorder::default();
        b.record("list", ms(3), Outcome::Success);
        b.record("detail", ms(2), Outcome::Success);
        b.record("list", ms(1), Outcome::Transport(TransportError::Connect));
        a.merge(&b);
        let (ops, total) = a.summaries(1.0);
        let names: Vec<_> = ops.iter().map(|o| o.op.as_str()).collect();
        assert_eq!(names, ["detail", "list", "search"]);
        assert_eq!(ops[1].requests, 3);
        assert_eq!(ops[1].successes, 2);
        assert_eq!(ops[1].error_kinds["connect"], 1);
        assert_eq!(total.requests, 5);
        assert_eq!(total.successes, 3);
        assert_eq!(total.errors, 2);
        assert_eq!(total.latency.count, 3);
        assert!((total.latency.max_ms - 3.0).abs() < 0.01);
    }

    #[test]
    fn a_zero_length_window_has_no_throughput() {
        let mut stats = OpStats::default();
        stats.record(ms(1), Outcome::Success);
        assert_eq!(stats.summary("x", 0.0).throughput, 0.0);
    }
}
