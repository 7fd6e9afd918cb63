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

/// The mimalloc option that delays giving freed memory back to the system (milliseconds).
const PURGE_DELAY: &str = "MIMALLOC_PURGE_DELAY";

/// mimalloc reads its options from the environment before `main` runs, and it purges
/// freed memory only while it allocates: with its default delay (one second) a process
/// keeps the high-water mark of its last burst. An immediate purge measured lower memory
/// and no loss of throughput (README, Load results), so unless the operator chose a delay
/// the process starts itself again, once, with `MIMALLOC_PURGE_DELAY=0` (same pid,
/// arguments and environment otherwise).
#[cfg(unix)]
fn restart_with_prompt_purge() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os(PURGE_DELAY).is_some() {
        return;
    }
    let Ok(executable) = std::env::current_exe() else {
        return;
    };
    let error = std::process::Command::new(executable)
        .args(std::env::args_os().skip(1))
        .env(PURGE_DELAY, "0")
        .exec();
    eprintln!("could not restart with {PURGE_DELAY}=0 ({error}); going on with mimalloc's default");
}

fn main() -> anyhow::Result<()> {
    #[cfg(unix)]
    restart_with_prompt_purge();
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
