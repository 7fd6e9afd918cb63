//! A run's report: as a table for people, as JSON for files, and as rows of the README's
//! results table (`loadgen table`).
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::{
    hot::HotSkuCheck,
    lag::LagSummary,
    stats::{LatencySummary, OpSummary},
};

/// Everything one run measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// `browse`, `checkout`, `hot-sku`, `mixed`, `page`, `roof`.
    pub scenario: String,
    /// The deployment label (`embedded`, `split`), if given.
    pub mode: String,
    /// The command API (or all-in-one server) driven; for `page` and `roof`, the server
    /// whose page was read.
    pub target: String,
    /// The query API read from (the same as `target` unless split).
    #[serde(default)]
    pub query_target: String,
    /// Concurrent workers (connections).
    pub connections: usize,
    /// Open-loop rate, if any (requests per second).
    pub rate: Option<f64>,
    /// Warm-up, in seconds.
    pub warmup_seconds: f64,
    /// Measured window, in seconds.
    pub duration_seconds: f64,
    /// Every operation together.
    pub total: OpSummary,
    /// Per operation.
    pub ops: Vec<OpSummary>,
    /// Projection lag, for scenarios that place orders.
    pub lag: Option<LagSummary>,
    /// The hot-SKU oversell check.
    pub hot_sku: Option<HotSkuCheck>,
}

/// Milliseconds, with two decimals below 10 ms and one above.
pub fn fmt_ms(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

/// The four latency columns (p50, p95, p99, max), or dashes when nothing was timed.
fn latency_columns(latency: &LatencySummary) -> [String; 4] {
    if latency.count == 0 {
        return ["-", "-", "-", "-"].map(str::to_owned);
    }
    [
        latency.p50_ms,
        latency.p95_ms,
        latency.p99_ms,
        latency.max_ms,
    ]
    .map(fmt_ms)
}

/// A rate with thousands separators and no decimals (`1,523/s`).
pub fn fmt_rate(per_second: f64) -> String {
    let whole = per_second.round().max(0.0) as u64;
    let digits = whole.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out + "/s"
}

fn kinds(map: &std::collections::BTreeMap<String, u64>) -> String {
    map.iter()
        .map(|(kind, n)| format!("{kind}×{n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

impl Report {
    /// The report for people.
    pub fn to_table(&self) -> String {
        let mut out = String::new();
        let mode = if self.mode.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.mode)
        };
        let pacing = self
            .rate
            .map_or("closed loop".to_owned(), |r| format!("open loop at {r}/s"));
        let _ = writeln!(
            out,
            "{}{mode} against {}: {} connections, {pacing}, {:.1} s measured after {:.1} s warm-up",
            self.scenario,
            self.target,
            self.connections,
            self.duration_seconds,
            self.warmup_seconds
        );
        let _ = writeln!(
            out,
            "{:<8} {:>9} {:>11} {:>10} {:>10} {:>10} {:>10} {:>7}  errors / refused",
            "op", "requests", "throughput", "p50", "p95", "p99", "max", "errors"
        );
        for op in self.ops.iter().chain(std::iter::once(&self.total)) {
            let mut notes = kinds(&op.error_kinds);
            if op.rejected > 0 {
                let _ = write!(notes, " refused {}", kinds(&op.rejected_kinds));
            }
            let [p50, p95, p99, max] = latency_columns(&op.latency);
            let _ = writeln!(
                out,
                "{:<8} {:>9} {:>11} {:>10} {:>10} {:>10} {:>10} {:>7}  {}",
                op.op,
                op.requests,
                fmt_rate(op.throughput),
                p50,
                p95,
                p99,
                max,
                op.errors,
                notes.trim()
            );
        }
        if let Some(lag) = self.lag.as_ref().filter(|l| l.latency.count == 0) {
            let _ = writeln!(
                out,
                "projection lag ({}): no samples; {} timed out, {} failed, {} skipped",
                lag.method, lag.timeouts, lag.errors, lag.skipped
            );
        }
        if let Some(lag) = self.lag.as_ref().filter(|l| l.latency.count > 0) {
            let _ = writeln!(
                out,
                "projection lag ({}, {} samples): p50 {}, p95 {}, p99 {}, max {}; {} timed out, {} failed, {} skipped",
                lag.method,
                lag.latency.count,
                fmt_ms(lag.latency.p50_ms),
                fmt_ms(lag.latency.p95_ms),
                fmt_ms(lag.latency.p99_ms),
                fmt_ms(lag.latency.max_ms),
                lag.timeouts,
                lag.errors,
                lag.skipped
            );
        }
        if let Some(hot) = &self.hot_sku {
            let _ = writeln!(
                out,
                "hot SKU {}: {} units sold ({} unknown outcomes); before on hand {} reserved {} committed {}; after on hand {} reserved {} committed {} available {}: {}",
                hot.sku,
                hot.units_sold,
                hot.unknown_outcomes,
                hot.before.on_hand,
                hot.before.reserved,
                hot.before.committed,
                hot.after.on_hand,
                hot.after.reserved,
                hot.after.committed,
                hot.after.available,
                match (hot.oversold, hot.accounted) {
                    (false, true) => "no oversell, every unit accounted for",
                    (true, _) => "OVERSOLD",
                    (false, false) => "units taken do not match units sold",
                }
            );
        }
        out
    }
}

/// The target each scenario is held to (issue #6), for the results table.
pub fn target_of(scenario: &str, mode: &str) -> &'static str {
    match (scenario, mode) {
        ("page", _) => "≥ 50 % of the HTTP roof, p99 ≤ 10 ms at 64 connections",
        ("checkout", "split") => "≥ 1,500 orders/s, p99 ≤ 50 ms, lag p99 ≤ 100 ms",
        ("checkout", _) => "≥ 500 orders/s, lag p99 ≤ 100 ms",
        ("hot-sku", _) => "≥ 300 orders/s, no oversell",
        ("roof", _) => "(the HTTP roof)",
        _ => "",
    }
}

/// The header of the README's results table.
pub const TABLE_HEADER: &str = "| scenario | mode | connections | throughput | p50 | p95 | p99 | max | errors | lag p99 | target | roof |\n|---|---|---|---|---|---|---|---|---|---|---|---|";

/// Rows of the README's results table, one per report. The HTTP roof is the throughput
/// of a `roof` report among them; the write roof is pgbench's rate.
pub fn table_rows(reports: &[Report], write_roof: Option<f64>) -> String {
    let http_roof = reports
        .iter()
        .find(|r| r.scenario == "roof")
        .map(|r| r.total.throughput);
    let mut out = String::from(TABLE_HEADER);
    for r in reports {
        let roof = match r.scenario.as_str() {
            "page" | "browse" | "mixed" => http_roof,
            "checkout" | "hot-sku" => write_roof,
            _ => None,
        };
        let roof = match roof {
            Some(roof) if roof > 0.0 => format!(
                "{} ({:.0} %)",
                fmt_rate(roof),
                100.0 * r.total.throughput / roof
            ),
            _ => "-".to_owned(),
        };
        let lag = r
            .lag
            .as_ref()
            .filter(|l| l.latency.count > 0)
            .map_or("-".to_owned(), |l| fmt_ms(l.latency.p99_ms));
        let mut errors = r.total.errors.to_string();
        if let Some(hot) = &r.hot_sku {
            errors += if hot.passed() {
                ", no oversell"
            } else {
                ", OVERSOLD or unaccounted"
            };
        }
        let [p50, p95, p99, max] = latency_columns(&r.total.latency);
        let _ = write!(
            out,
            "\n| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            r.scenario,
            if r.mode.is_empty() { "-" } else { &r.mode },
            r.connections,
            fmt_rate(r.total.throughput),
            p50,
            p95,
            p99,
            max,
            errors,
            lag,
            target_of(&r.scenario, &r.mode),
            roof
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::{hot::Inventory, stats::LatencySummary};

    fn op(name: &str, throughput: f64, p99: f64) -> OpSummary {
        OpSummary {
            op: name.into(),
            requests: 100,
            successes: 98,
            rejected: 0,
            errors: 2,
            throughput,
            requests_per_second: throughput,
            latency: LatencySummary {
                count: 98,
                mean_ms: 1.0,
                p50_ms: 1.234,
                p95_ms: 5.0,
                p99_ms: p99,
                max_ms: 42.0,
            },
            error_kinds: BTreeMap::from([("500".into(), 1), ("timeout".into(), 1)]),
            rejected_kinds: BTreeMap::new(),
        }
    }

    fn report(scenario: &str, mode: &str, throughput: f64) -> Report {
        Report {
            scenario: scenario.into(),
            mode: mode.into(),
            target: "http://127.0.0.1:8080".into(),
            query_target: "http://127.0.0.1:8080".into(),
            connections: 64,
            rate: None,
            warmup_seconds: 5.0,
            duration_seconds: 30.0,
            total: op("total", throughput, 9.5),
            ops: vec![op("page", throughput, 9.5)],
            lag: None,
            hot_sku: None,
        }
    }

    #[test]
    fn numbers_are_formatted_for_people() {
        assert_eq!(fmt_ms(1.234), "1.23 ms");
        assert_eq!(fmt_ms(12.34), "12.3 ms");
        assert_eq!(fmt_rate(1523.4), "1,523/s");
        assert_eq!(fmt_rate(999.6), "1,000/s");
        assert_eq!(fmt_rate(1_234_567.0), "1,234,567/s");
        assert_eq!(fmt_rate(0.0), "0/s");
    }

    #[test]
    fn the_table_shows_every_op_errors_and_extras() {
        let mut r = report("checkout", "split", 1500.0);
        r.lag = Some(LagSummary {
            method: "min-position".into(),
            latency: LatencySummary {
                count: 10,
                p99_ms: 80.0,
                ..LatencySummary::default()
            },
            ..LagSummary::default()
        });
        let table = r.to_table();
        assert!(
            table.starts_with(
                "checkout (split) against http://127.0.0.1:8080: 64 connections, closed loop"
            ),
            "{table}"
        );
        assert!(table.contains("1,500/s"), "{table}");
        assert!(table.contains("500×1 timeout×1"), "{table}");
        assert!(
            table.contains("projection lag (min-position, 10 samples)"),
            "{table}"
        );
        assert!(table.contains("p99 80.0 ms"), "{table}");
        assert_eq!(table.lines().filter(|l| l.starts_with("total")).count(), 1);
    }

    #[test]
    fn nothing_timed_shows_dashes_not_zeros() {
        let mut r = report("browse", "embedded", 0.0);
        r.ops[0].latency = LatencySummary::default();
        r.total.latency = LatencySummary::default();
        r.lag = Some(LagSummary {
            method: "poll".into(),
            skipped: 3,
            ..LagSummary::default()
        });
        let table = r.to_table();
        assert!(!table.contains("0.00 ms"), "{table}");
        assert!(
            table.contains("projection lag (poll): no samples"),
            "{table}"
        );
        assert!(table_rows(&[r], None).contains("| 0/s | - | - | - | - |"));
    }

    #[test]
    fn the_table_states_the_hot_sku_verdict() {
        let mut r = report("hot-sku", "embedded", 300.0);
        let before = Inventory {
            on_hand: 10,
            reserved: 0,
            committed: 0,
            available: 10,
        };
        let after = Inventory {
            reserved: 10,
            available: 0,
            ..before
        };
        r.hot_sku = Some(HotSkuCheck::new("LG00000-0".into(), before, after, 10, 0));
        assert!(
            r.to_table()
                .contains("no oversell, every unit accounted for")
        );
        r.hot_sku = Some(HotSkuCheck::new(
            "LG00000-0".into(),
            before,
            Inventory {
                reserved: 11,
                available: -1,
                ..before
            },
            11,
            0,
        ));
        assert!(r.to_table().contains("OVERSOLD"));
        assert!(table_rows(&[r], None).contains("OVERSOLD or unaccounted"));
    }

    #[test]
    fn rows_compare_pages_with_the_http_roof_and_orders_with_the_write_roof() {
        let reports = [
            report("roof", "", 40_000.0),
            report("page", "embedded", 24_000.0),
            report("checkout", "split", 1_200.0),
        ];
        let table = table_rows(&reports, Some(9_000.0));
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0], TABLE_HEADER.lines().next().unwrap());
        assert!(
            lines[2].starts_with(
                "| roof | - | 64 | 40,000/s | 1.23 ms | 5.00 ms | 9.50 ms | 42.0 ms | 2 | - |"
            ),
            "{}",
            lines[2]
        );
        assert!(lines[3].ends_with("| 40,000/s (60 %) |"), "{}", lines[3]);
        assert!(lines[3].contains("≥ 50 % of the HTTP roof"), "{}", lines[3]);
        assert!(lines[4].ends_with("| 9,000/s (13 %) |"), "{}", lines[4]);
        assert!(lines[4].contains("≥ 1,500 orders/s"), "{}", lines[4]);
        // Without the roofs, the roof column is empty.
        assert!(
            table_rows(&reports[1..], None)
                .lines()
                .nth(2)
                .unwrap()
                .ends_with("| - |")
        );
    }

    #[test]
    fn reports_round_trip_through_json() {
        let r = report("browse", "embedded", 5000.0);
        let text = serde_json::to_string(&r).unwrap();
        assert!(text.contains("\"durationSeconds\":30.0"), "{text}");
        assert_eq!(serde_json::from_str::<Report>(&text).unwrap(), r);
    }
}
