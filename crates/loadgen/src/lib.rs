//! Emporium's load harness, as a library so the end-to-end smoke test can drive it in
//! process; the `loadgen` binary is its command line.
//!
//! `setup` makes a catalogue and customers through the API; `run <scenario>` drives
//! browse, checkout, hot-SKU, mixed or single-page load with C keep-alive connections
//! (closed loop, or open loop at `--rate`) and reports throughput, latency percentiles,
//! errors by status and projection lag; `roof-server` serves the HTTP roof; `table` turns
//! JSON reports into the README's results table.
#![deny(missing_docs)]

pub mod api;
pub mod cli;
pub mod engine;
pub mod hot;
pub mod http;
pub mod lag;
pub mod report;
pub mod roof;
pub mod run;
pub mod setup;
pub mod state;
pub mod stats;
pub mod workload;

/// The page `page`, `roof` and `roof-server` use: the first page of the product list.
pub const DEFAULT_PAGE: &str = "/api/v1/products?page=1&pageSize=20";
