//! `loadgen`: Emporium's load harness (see the library's documentation and the README's
//! "Load testing" section).
use anyhow::Context;
use clap::Parser;
use loadgen::{cli, report, roof, run, setup};

fn main() -> anyhow::Result<()> {
    let cli = cli::Cli::parse();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = cli.threads {
        runtime.worker_threads(threads.max(1));
    }
    let runtime = runtime.enable_all().build()?;
    runtime.block_on(async {
        match cli.command {
            cli::Command::Setup(args) => setup::run(&args).await,
            cli::Command::Run(args) => {
                let report = run::run(&args).await?;
                print_report(&report, args.json.as_deref())?;
                if report.hot_sku.as_ref().is_some_and(|c| !c.passed()) {
                    anyhow::bail!("the hot-SKU check failed");
                }
                Ok(())
            }
            cli::Command::RoofServer(args) => roof::serve(&args).await,
            cli::Command::Table(args) => {
                let reports = args
                    .reports
                    .iter()
                    .map(|path| {
                        let text = std::fs::read_to_string(path)
                            .with_context(|| format!("reading {}", path.display()))?;
                        serde_json::from_str(&text)
                            .with_context(|| format!("{} is not a loadgen report", path.display()))
                    })
                    .collect::<anyhow::Result<Vec<report::Report>>>()?;
                println!("{}", report::table_rows(&reports, args.write_roof));
                Ok(())
            }
        }
    })
}

/// The table on standard output; with `--json`, JSON there instead, or with
/// `--json FILE`, the table there and JSON in the file.
fn print_report(report: &report::Report, json: Option<&str>) -> anyhow::Result<()> {
    match json {
        Some("-") => println!("{}", serde_json::to_string_pretty(report)?),
        Some(path) => {
            std::fs::write(path, serde_json::to_string_pretty(report)?)
                .with_context(|| format!("writing {path}"))?;
            print!("{}", report.to_table());
        }
        None => print!("{}", report.to_table()),
    }
    Ok(())
}
