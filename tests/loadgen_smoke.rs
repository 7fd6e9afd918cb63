//! The load harness against the real `emporium` binary (embedded, on a free port), at a
//! tiny scale: setup, every scenario for a second, the hot-SKU check on a SKU that sells
//! out, projection lag, and the roof server. Not a measurement (debug build, a few
//! connections); it proves the harness speaks the API as it is.
mod support;

use std::path::Path;

use clap::Parser;
use loadgen::{
    cli::{Cli, Command as LoadCommand},
    report::Report,
    roof::Page,
};

use support::{Process, emporium, spawn_ready};

const ADMIN_PASSWORD: &str = "loadgen-smoke-admin-password";

async fn start(data: &Path) -> Process {
    let mut command = emporium(data);
    command
        .env("EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("EMPORIUM_RATE_LIMIT_SIGNUP_PER_MINUTE", "0");
    spawn_ready(command).await
}

fn parse(args: &[&str]) -> LoadCommand {
    let mut argv = vec!["loadgen"];
    argv.extend_from_slice(args);
    Cli::try_parse_from(argv).expect("arguments").command
}

async fn run(args: &[&str]) -> Report {
    let LoadCommand::Run(args) = parse(args) else {
        panic!("not a run")
    };
    loadgen::run::run(&args).await.expect("run")
}

fn op<'a>(report: &'a Report, name: &str) -> &'a loadgen::stats::OpSummary {
    report
        .ops
        .iter()
        .find(|o| o.op == name)
        .unwrap_or_else(|| panic!("no {name} in {report:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_harness_drives_every_scenario_against_the_real_binary() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path()).await;
    let base = server.base.as_str();
    let state = data.path().join("loadgen-state.json");
    let state = state.to_str().unwrap();

    let LoadCommand::Setup(setup) = parse(&[
        "setup",
        "--target",
        base,
        "--admin-password",
        ADMIN_PASSWORD,
        "--products",
        "12",
        "--skus-per-product",
        "2",
        "--stock",
        "1000",
        "--customers",
        "3",
        "--concurrency",
        "4",
        "--state",
        state,
    ]) else {
        panic!("not setup")
    };
    loadgen::setup::run(&setup).await.expect("setup");
    // A second setup finds everything in place and keeps it.
    loadgen::setup::run(&setup).await.expect("setup again");
    let saved = loadgen::state::State::load(Path::new(state)).unwrap();
    assert_eq!(saved.products.len(), 12);
    assert_eq!(saved.skus().len(), 24);
    assert_eq!(saved.customers.len(), 3);

    let short = [
        "--connections",
        "2",
        "--duration",
        "1s",
        "--warmup",
        "200ms",
    ];
    let with = |scenario: &'static str, extra: &[&'static str]| {
        let mut args = vec!["run", scenario, "--target", base, "--state", state];
        args.extend_from_slice(&short);
        args.extend_from_slice(extra);
        args.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };
    let run_with = |args: Vec<String>| async move {
        run(&args.iter().map(String::as_str).collect::<Vec<_>>()).await
    };

    let browse = run_with(with("browse", &[])).await;
    for name in ["list", "detail"] {
        let o = op(&browse, name);
        assert!(o.successes > 0, "{o:?}");
        assert_eq!(o.errors, 0, "{o:?}");
    }
    // Search may not be served by this build yet: a 404 is counted, nothing else is.
    if let Some(search) = browse.ops.iter().find(|o| o.op == "search") {
        assert!(search.error_kinds.keys().all(|k| k == "404"), "{search:?}");
    }

    let checkout = run_with(with("checkout", &["--lag-sample", "1"])).await;
    let orders = op(&checkout, "order");
    assert!(orders.successes > 0, "{orders:?}");
    assert_eq!(orders.errors, 0, "{orders:?}");
    let lag = checkout.lag.as_ref().expect("lag measured");
    assert!(lag.latency.count > 0, "{lag:?}");
    assert_eq!(lag.timeouts + lag.errors, 0, "{lag:?}");

    let poll = run_with(with(
        "checkout",
        &["--lag-sample", "1", "--lag-method", "poll"],
    ))
    .await;
    assert!(poll.lag.as_ref().unwrap().latency.count > 0, "{poll:?}");

    let mixed = run_with(with("mixed", &[])).await;
    assert!(mixed.total.successes > 0, "{mixed:?}");

    // Five units for everyone: the SKU sells out, and exactly five are taken.
    let hot = run_with(with(
        "hot-sku",
        &["--hot-stock", "5", "--admin-password", ADMIN_PASSWORD],
    ))
    .await;
    let check = hot.hot_sku.as_ref().expect("hot-SKU check");
    assert!(check.passed(), "{check:?}");
    assert_eq!(check.before.available, 5);
    assert_eq!(check.after.available, 0);
    assert_eq!(check.units_sold, 5);
    assert!(op(&hot, "order").rejected > 0, "{hot:?}");

    let page = run_with(with("page", &[])).await;
    assert!(op(&page, "page").successes > 0, "{page:?}");
    assert_eq!(page.total.errors, 0, "{page:?}");

    // The roof serves exactly the bytes of the page it copied.
    let roof_page = Page::fetch(base, loadgen::DEFAULT_PAGE).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let roof_url = format!("http://{}", listener.local_addr().unwrap());
    let roof_server = tokio::spawn(async move {
        axum::serve(listener, roof_page.router()).await.unwrap();
    });
    let from_emporium = reqwest::get(format!("{base}{}", loadgen::DEFAULT_PAGE))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let from_roof = reqwest::get(format!("{roof_url}{}", loadgen::DEFAULT_PAGE))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(from_roof, from_emporium);
    let mut args = vec!["run", "roof", "--target", roof_url.as_str()];
    args.extend_from_slice(&short);
    let roof = run(&args).await;
    assert!(op(&roof, "page").successes > 0, "{roof:?}");
    assert_eq!(roof.total.errors, 0, "{roof:?}");
    roof_server.abort();

    let table = loadgen::report::table_rows(&[roof, page, checkout], Some(1000.0));
    assert_eq!(table.lines().count(), 5, "{table}");
}
