//! The command line.
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Emporium: an event-sourced e-commerce backend. With no command, `serve`.
#[derive(Debug, Parser)]
#[command(name = "emporium", version, about)]
pub struct Cli {
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
    /// Run the API (commands, docs, probes, metrics) on EMPORIUM_ADDR.
    Serve,
    /// Apply database migrations and exit.
    Migrate,
    /// Print the effective configuration, secrets masked.
    CheckConfig,
    /// Manage back-office accounts.
    Admin {
        /// What to do.
        #[command(subcommand)]
        command: AdminCommand,
    },
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
