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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
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
