//! `emporium`: the all-in-one binary and admin CLI. Reads settings, chooses backends from
//! their URLs, and runs the command asked for.
use clap::Parser;

mod admin;
mod backends;
mod cli;
mod demo;
mod lake;
mod replay;
mod serve;
mod settings;

use cli::{AdminCommand, Cli, Command};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc options the process runs with unless the operator set them, read by mimalloc
/// from the environment before `main` runs (bench/HISTORY.md has the numbers):
/// - `MIMALLOC_PURGE_DELAY=0`: mimalloc purges freed memory only while it allocates, so
///   with its default delay (one second) a process kept the high-water mark of its last
///   burst.
/// - `MIMALLOC_ALLOW_THP=0`: mimalloc asks for transparent huge pages on its arenas; each
///   touched 4 KiB then made 2 MiB resident (the all-in-one process after every scenario:
///   205 -> 161 MiB), and faulting them in compacted memory on the request path.
const ALLOCATOR_DEFAULTS: [(&str, &str); 2] =
    [("MIMALLOC_PURGE_DELAY", "0"), ("MIMALLOC_ALLOW_THP", "0")];

/// Starts the process again, once, with the [`ALLOCATOR_DEFAULTS`] the environment lacks
/// (same pid, arguments and environment otherwise).
#[cfg(unix)]
fn restart_with_allocator_defaults() {
    use std::os::unix::process::CommandExt;
    let missing: Vec<_> = ALLOCATOR_DEFAULTS
        .into_iter()
        .filter(|(name, _)| std::env::var_os(name).is_none())
        .collect();
    if missing.is_empty() {
        return;
    }
    let Ok(executable) = std::env::current_exe() else {
        return;
    };
    let error = std::process::Command::new(executable)
        .args(std::env::args_os().skip(1))
        .envs(missing)
        .exec();
    eprintln!(
        "could not restart with mimalloc's options set ({error}); going on with its defaults"
    );
}

fn main() -> anyhow::Result<()> {
    #[cfg(unix)]
    restart_with_allocator_defaults();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    web::telemetry::init();
    let settings = settings::Settings::from_env(cli.config.as_deref())?;
    let command = match cli.command {
        Some(command) => command,
        None => Command::Serve {
            role: cli::Role::from_env()?,
        },
    };
    match command {
        Command::Serve { role } => {
            if cli.demo {
                demo::load(&settings).await?;
            }
            serve::run(&settings, role).await
        }
        Command::Demo => demo::load(&settings).await,
        Command::Migrate => backends::Backends::open(&settings)
            .await
            .map(|_| println!("migrations applied")),
        Command::Replay {
            projection,
            batch_size,
        } => replay::run(&settings, projection.as_deref(), batch_size).await,
        Command::CheckConfig => {
            println!("{}", settings.describe());
            Ok(())
        }
        Command::Export { from, to, out } => lake::run(&settings, from, to, &out).await,
        Command::Admin {
            command:
                AdminCommand::Create {
                    username,
                    name,
                    role,
                },
        } => admin::create(&settings, &username, &name, &role).await,
    }
}
