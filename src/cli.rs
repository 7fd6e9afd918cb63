//! The command line.
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Emporium: an event-sourced e-commerce backend. With no command, `serve`.
#[derive(Debug, Parser)]
#[command(name = "emporium", version, about)]
pub struct Cli {
    /// With `serve` (or no command): load the demo data first if the store is empty.
    #[arg(long, global = true)]
    pub demo: bool,
    /// Optional TOML settings file (environment variables override it).
    #[arg(long, global = true, env = "EMPORIUM_CONFIG")]
    pub config: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run Emporium on EMPORIUM_ADDR: everything in one process, or one role of a split
    /// deployment.
    Serve {
        /// Which part to run.
        #[arg(long, value_enum, default_value_t = Role::All, env = "EMPORIUM_ROLE")]
        role: Role,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Load the demo catalogue, a demo admin (password printed once), customers and
    /// orders into an empty store, and exit.
    Demo,
    /// Print the effective configuration, secrets masked.
    CheckConfig,
    /// Rebuild read models from the whole log into fresh tables and swap them in once
    /// caught up, while the old ones keep serving. Safe while `emporium serve` runs.
    Replay {
        /// The projection to rebuild: catalog, inventory, orders, customers, sales,
        /// bought_together, or all (the default).
        projection: Option<String>,
        /// Most events folded into the fresh tables in one transaction.
        #[arg(long, default_value_t = 25_000)]
        batch_size: usize,
    },
    /// Export orders and order lines placed on the UTC days --from..=--to as Parquet,
    /// partitioned by day (orders/date=YYYY-MM-DD/, order_lines/date=YYYY-MM-DD/), into a
    /// folder or an S3 bucket. Re-running a day replaces its files; a day without orders
    /// loses its files.
    Export {
        /// First UTC day of placement, inclusive.
        #[arg(long, value_name = "YYYY-MM-DD", value_parser = export::parse_day)]
        from: export::NaiveDate,
        /// Last UTC day of placement, inclusive (not before --from).
        #[arg(long, value_name = "YYYY-MM-DD", value_parser = export::parse_day)]
        to: export::NaiveDate,
        /// A folder (created if missing) or s3://bucket/prefix; S3 credentials, region and
        /// endpoint come from the AWS_* environment variables.
        #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
        out: String,
    },
    /// Manage back-office accounts.
    Admin {
        /// What to do.
        #[command(subcommand)]
        command: AdminCommand,
    },
}

/// The parts of Emporium a process can run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// Command API, projector and query API together (the default).
    All,
    /// The command API (writes).
    Command,
    /// The query API (reads); the projector runs elsewhere.
    Query,
    /// The projector alone (probes and metrics on EMPORIUM_ADDR).
    Projector,
    /// The notifier alone: e-mails and webhooks from the integration events (probes and
    /// metrics on EMPORIUM_ADDR).
    Notifier,
}

impl Role {
    /// `EMPORIUM_ROLE`, for when no command is given (`serve --role` reads it too).
    ///
    /// # Errors
    /// The variable names no role.
    pub fn from_env() -> anyhow::Result<Role> {
        match std::env::var("EMPORIUM_ROLE") {
            Ok(value) if !value.is_empty() => <Role as clap::ValueEnum>::from_str(&value, true)
                .map_err(|_| {
                    anyhow::anyhow!(
                        "EMPORIUM_ROLE={value:?} is not a role (all, command, query, projector, notifier)"
                    )
                }),
            _ => Ok(Role::All),
        }
    }
}

/// Admin subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin (or staff) account. The password is read from standard input
    /// (a prompt when it is a terminal), never from a flag.
    Create {
        /// Login name.
        #[arg(long, default_value = "admin")]
        username: String,
        /// Display name.
        #[arg(long, default_value = "Administrator")]
        name: String,
        /// ADMIN or STAFF.
        #[arg(long, default_value = "ADMIN")]
        role: String,
    },
}
