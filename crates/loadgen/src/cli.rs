//! The command line: `setup`, `run`, `roof-server`, `table`.
use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Emporium's load harness.
#[derive(Debug, Parser)]
#[command(name = "loadgen", version, about)]
pub struct Cli {
    /// Tokio worker threads for the load generator (default: one per core).
    #[arg(long, global = true)]
    pub threads: Option<usize>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the load catalogue and customers through the API (what already exists is
    /// kept) and write the state file.
    Setup(SetupArgs),
    /// Drive a scenario and report throughput, latencies, errors and projection lag.
    Run(RunArgs),
    /// Serve, on every path, the bytes of one page fetched once from the target: the
    /// HTTP roof.
    RoofServer(RoofServerArgs),
    /// Turn `run --json` reports into rows of the README's results table.
    Table(TableArgs),
}

/// Where the API is.
#[derive(Clone, Debug, Args)]
pub struct Targets {
    /// The command API (or the all-in-one server), e.g. http://127.0.0.1:8080.
    #[arg(long)]
    pub target: String,
    /// The query API, when it runs apart from the command API (default: --target).
    #[arg(long)]
    pub query_target: Option<String>,
}

impl Targets {
    /// The command API's base URL, without a trailing slash.
    pub fn command(&self) -> String {
        self.target.trim_end_matches('/').to_owned()
    }

    /// The query API's base URL, without a trailing slash.
    pub fn query(&self) -> String {
        self.query_target
            .as_deref()
            .unwrap_or(&self.target)
            .trim_end_matches('/')
            .to_owned()
    }
}

/// An admin's credentials.
#[derive(Clone, Debug, Args)]
pub struct AdminCredentials {
    /// The admin's username.
    #[arg(long, default_value = "admin", env = "LOADGEN_ADMIN_USER")]
    pub admin_user: String,
    /// The admin's password.
    #[arg(long, env = "LOADGEN_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
}

/// `loadgen setup`.
#[derive(Clone, Debug, Args)]
pub struct SetupArgs {
    /// Where the API is.
    #[command(flatten)]
    pub targets: Targets,
    /// The admin who creates the catalogue.
    #[command(flatten)]
    pub admin: AdminCredentials,
    /// Products in the load catalogue.
    #[arg(long, default_value_t = 1000)]
    pub products: usize,
    /// Variants (SKUs) per product.
    #[arg(long, default_value_t = 1)]
    pub skus_per_product: usize,
    /// Units on hand per SKU (SKUs with fewer available units are topped up).
    #[arg(long, default_value_t = 1_000_000)]
    pub stock: i64,
    /// Customers to register and log in.
    #[arg(long, default_value_t = 64)]
    pub customers: usize,
    /// Requests in flight at once while setting up.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// The state file to write.
    #[arg(long, default_value = "loadgen-state.json")]
    pub state: PathBuf,
    /// Request timeout.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub timeout: Duration,
}

/// The scenarios.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    /// Product list pages (filters, sorts, pages), product details, search.
    Browse,
    /// Customers place orders of `--lines` random SKUs each.
    Checkout,
    /// Every customer orders one unit of the same SKU; checks for oversell at the end.
    HotSku,
    /// 95 % browse requests, 5 % orders.
    Mixed,
    /// One fixed page (`--path`) over and over: the cached product list page.
    Page,
    /// The same as `page`, named for runs against `loadgen roof-server`.
    Roof,
}

impl Scenario {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Browse => "browse",
            Self::Checkout => "checkout",
            Self::HotSku => "hot-sku",
            Self::Mixed => "mixed",
            Self::Page => "page",
            Self::Roof => "roof",
        }
    }

    /// Whether it places orders (and so measures projection lag).
    pub fn places_orders(self) -> bool {
        matches!(self, Self::Checkout | Self::HotSku | Self::Mixed)
    }

    /// Whether it needs the state file written by `setup`.
    pub fn needs_state(self) -> bool {
        !matches!(self, Self::Page | Self::Roof)
    }
}

/// How projection lag is measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LagMethod {
    /// One read of the order with `X-Emporium-Min-Position`: the time until the query API
    /// answers it (read-your-writes as a client sees it; one extra request per sample).
    MinPosition,
    /// Read the order without it every `--lag-poll-interval` until it is there (finer
    /// when the query API polls its checkpoints, at the cost of more reads).
    Poll,
}

/// `loadgen run`.
#[derive(Clone, Debug, Args)]
pub struct RunArgs {
    /// What to drive.
    #[arg(value_enum)]
    pub scenario: Scenario,
    /// Where the API is.
    #[command(flatten)]
    pub targets: Targets,
    /// Concurrent workers, each with its own keep-alive connection.
    #[arg(long, short = 'c', default_value_t = 64)]
    pub connections: usize,
    /// How long to measure (after the warm-up): 30s, 2m, 500ms.
    #[arg(long, short = 'd', default_value = "30s", value_parser = parse_duration)]
    pub duration: Duration,
    /// How long to run before measuring.
    #[arg(long, short = 'w', default_value = "5s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// Open loop: start this many requests per second in total, measuring each from when
    /// it was due (no coordinated omission). Default: closed loop, as fast as answered.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Request timeout.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// The state file written by `setup`.
    #[arg(long, default_value = "loadgen-state.json")]
    pub state: PathBuf,
    /// Order lines per order (distinct SKUs) in `checkout` and `mixed`.
    #[arg(long, default_value_t = 2)]
    pub lines: usize,
    /// The share of orders whose projection lag is measured (0 to 1).
    #[arg(long, default_value_t = 0.1)]
    pub lag_sample: f64,
    /// How projection lag is measured.
    #[arg(long, value_enum, default_value_t = LagMethod::MinPosition)]
    pub lag_method: LagMethod,
    /// Pause between reads with `--lag-method poll`.
    #[arg(long, default_value = "5ms", value_parser = parse_duration)]
    pub lag_poll_interval: Duration,
    /// Lag measurements in flight at most; a sample is skipped rather than queued.
    #[arg(long, default_value_t = 16)]
    pub lag_concurrency: usize,
    /// Send an `Idempotency-Key` with every order, as a careful client does.
    #[arg(long)]
    pub idempotency_keys: bool,
    /// The page `page` and `roof` request.
    #[arg(long, default_value = crate::DEFAULT_PAGE)]
    pub path: String,
    /// The SKU `hot-sku` orders (default: the catalogue's first).
    #[arg(long)]
    pub hot_sku: Option<String>,
    /// Before `hot-sku`, set the hot SKU's available units to this (an admin adjustment),
    /// e.g. to watch it sell out. Default: leave the stock as it is.
    #[arg(long)]
    pub hot_stock: Option<i64>,
    /// The admin `hot-sku` reads the inventory with.
    #[command(flatten)]
    pub admin: AdminCredentials,
    /// A label for the deployment in the report (`embedded`, `split`).
    #[arg(long, default_value = "")]
    pub mode: String,
    /// Print the report as JSON instead of the table; with a FILE, write the JSON there
    /// and print the table.
    #[arg(long, num_args = 0..=1, default_missing_value = "-", value_name = "FILE")]
    pub json: Option<String>,
}

/// `loadgen roof-server`.
#[derive(Clone, Debug, Args)]
pub struct RoofServerArgs {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8099")]
    pub addr: String,
    /// The server to copy the page from, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    pub from: String,
    /// The page to copy.
    #[arg(long, default_value = crate::DEFAULT_PAGE)]
    pub path: String,
}

/// `loadgen table`.
#[derive(Clone, Debug, Args)]
pub struct TableArgs {
    /// Reports written by `run --json FILE`.
    #[arg(required = true)]
    pub reports: Vec<PathBuf>,
    /// The write roof (pgbench transactions per second) for the order scenarios.
    #[arg(long)]
    pub write_roof: Option<f64>,
}

/// Parses `30s`, `2m`, `1h`, `250ms`, or a bare number of seconds (`1.5`).
///
/// # Errors
/// A message saying what is accepted.
pub fn parse_duration(raw: &str) -> Result<Duration, String> {
    let raw = raw.trim();
    let split = raw
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(raw.len());
    let (number, unit) = raw.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{raw:?} is not a duration (e.g. 30s, 2m, 500ms)"))?;
    let seconds = match unit.trim() {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => return Err(format!("unknown unit {other:?} in {raw:?} (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{raw:?} is out of range"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_and_without_units() {
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration(" 0 "), Ok(Duration::ZERO));
        assert!(parse_duration("fast").is_err());
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn run_arguments_parse_with_their_defaults() {
        let cli = Cli::try_parse_from([
            "loadgen",
            "run",
            "checkout",
            "--target",
            "http://127.0.0.1:8080/",
            "-c",
            "8",
            "--duration",
            "10s",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(args.scenario, Scenario::Checkout);
        assert_eq!(args.connections, 8);
        assert_eq!(args.duration, Duration::from_secs(10));
        assert_eq!(args.warmup, Duration::from_secs(5));
        assert_eq!(args.rate, None);
        assert_eq!(args.lines, 2);
        assert_eq!(args.lag_method, LagMethod::MinPosition);
        assert_eq!(args.json, None);
        assert_eq!(args.targets.command(), "http://127.0.0.1:8080");
        assert_eq!(args.targets.query(), "http://127.0.0.1:8080");
    }

    #[test]
    fn split_targets_and_json_output_parse() {
        let cli = Cli::try_parse_from([
            "loadgen",
            "--threads",
            "1",
            "run",
            "hot-sku",
            "--target",
            "http://127.0.0.1:1",
            "--query-target",
            "http://127.0.0.1:2/",
            "--rate",
            "300",
            "--json",
        ])
        .unwrap();
        assert_eq!(cli.threads, Some(1));
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(args.scenario, Scenario::HotSku);
        assert_eq!(args.targets.query(), "http://127.0.0.1:2");
        assert_eq!(args.rate, Some(300.0));
        assert_eq!(args.json.as_deref(), Some("-"));

        let cli = Cli::try_parse_from([
            "loadgen", "run", "roof", "--target", "http://x", "--json", "out.json",
        ])
        .unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert_eq!(args.json.as_deref(), Some("out.json"));
        assert!(!args.scenario.needs_state());
    }

    #[test]
    fn setup_needs_a_target_and_parses_sizes() {
        assert!(Cli::try_parse_from(["loadgen", "setup"]).is_err());
        let cli = Cli::try_parse_from([
            "loadgen",
            "setup",
            "--target",
            "http://x",
            "--admin-password",
            "secret",
            "--products",
            "10",
            "--skus-per-product",
            "3",
            "--stock",
            "50",
        ])
        .unwrap();
        let Command::Setup(args) = cli.command else {
            panic!("not setup")
        };
        assert_eq!(
            (args.products, args.skus_per_product, args.stock),
            (10, 3, 50)
        );
        assert_eq!(args.admin.admin_user, "admin");
        assert_eq!(args.admin.admin_password.as_deref(), Some("secret"));
    }

    #[test]
    fn unknown_scenarios_are_refused() {
        assert!(
            Cli::try_parse_from(["loadgen", "run", "stampede", "--target", "http://x"]).is_err()
        );
    }
}
