//! `loadgen run`: builds the workers of a scenario, runs them (see [`crate::engine`]),
//! and assembles the report with the projection lag and the hot-SKU check.
use std::{
    sync::{
        Arc,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

use anyhow::Context;
use futures::{StreamExt, TryStreamExt, stream};
use rand::{SeedableRng, rngs::StdRng};
use serde::Deserialize;
use tokio::time::Instant;

use crate::{
    api::{self, CommandAnswer},
    cli::{RunArgs, Scenario},
    engine::{Pacer, Step, Window, run_worker},
    hot::HotSkuCheck,
    http::{Call, HttpClient},
    lag::LagProbe,
    report::Report,
    state::{State, unix_now},
    stats::{Outcome, Recorder, TransportError},
    workload::{Browser, mixed_is_order, order_body, pick_skus},
};

/// How long hot-sku waits for the read models to catch up with earlier runs' orders.
const CATCH_UP: Duration = Duration::from_secs(120);

/// What every worker of a run shares.
struct Shared {
    scenario: Scenario,
    client: HttpClient,
    query: String,
    orders_url: String,
    page_url: String,
    browser: Browser,
    skus: Vec<String>,
    hot_sku: Option<String>,
    lines: usize,
    idempotency_keys: bool,
    lag: Option<Arc<LagProbe>>,
    lag_sample: f64,
    /// Units of successful orders, warm-up included (the hot-SKU check counts them all).
    units_sold: AtomicI64,
    /// Orders that got no answer: each may or may not have been placed.
    unknown_orders: AtomicI64,
    /// The highest position an order answered with.
    last_position: AtomicU64,
}

#[derive(Deserialize)]
struct Problem {
    #[serde(default)]
    code: String,
}

/// One worker: a customer's token and its own random numbers.
struct Worker {
    shared: Arc<Shared>,
    token: Option<Arc<str>>,
    rng: StdRng,
}

impl Worker {
    async fn get(&self, op: &'static str, url: &str) -> (&'static str, Outcome) {
        let outcome = match self.shared.client.send(Call::get(url)).await {
            Ok(answer) => answer.outcome(None),
            Err(err) => Outcome::Transport(err),
        };
        (op, outcome)
    }

    async fn browse(&mut self) -> (&'static str, Outcome) {
        let request = self.shared.browser.next(&mut self.rng);
        let url = format!("{}{}", self.shared.query, request.path());
        self.get(request.op(), &url).await
    }

    async fn order(&mut self) -> (&'static str, Outcome) {
        let shared = self.shared.clone();
        let skus: Vec<&str> = match &shared.hot_sku {
            Some(sku) => vec![sku.as_str()],
            None => pick_skus(&mut self.rng, &shared.skus, shared.lines),
        };
        let mut call =
            Call::post(&shared.orders_url, order_body(&skus)).bearer(self.token.as_deref());
        if shared.idempotency_keys {
            call = call.header("idempotency-key", uuid::Uuid::new_v4());
        }
        let answer = match shared.client.send(call).await {
            Ok(answer) => answer,
            Err(err) => {
                if err != TransportError::Connect {
                    shared.unknown_orders.fetch_add(1, Ordering::Relaxed);
                }
                return ("order", Outcome::Transport(err));
            }
        };
        let answered = Instant::now();
        let status = answer.status.as_u16();
        if answer.status.is_success() {
            let units = i64::try_from(skus.len()).unwrap_or(0);
            shared.units_sold.fetch_add(units, Ordering::Relaxed);
            if let Some(position) = answer.position {
                shared.last_position.fetch_max(position, Ordering::Relaxed);
            }
            if let (Some(lag), Some(token)) = (&shared.lag, &self.token)
                && rand::Rng::gen_bool(&mut self.rng, shared.lag_sample)
                && let Ok(placed) = answer.json::<CommandAnswer>()
            {
                lag.sample(placed.id, placed.position, token.clone(), answered);
            }
            return ("order", Outcome::Success);
        }
        // Sold out is the expected end of a hot SKU, not a failure of the service.
        let sold_out = status == 409
            && answer
                .json::<Problem>()
                .is_ok_and(|p| p.code == "insufficient_stock");
        let outcome = if sold_out {
            Outcome::Rejected(409)
        } else {
            Outcome::Failed(status)
        };
        ("order", outcome)
    }
}

impl Step for Worker {
    async fn step(&mut self, _due: Instant) -> (&'static str, Outcome) {
        match self.shared.scenario {
            Scenario::Browse => self.browse().await,
            Scenario::Checkout | Scenario::HotSku => self.order().await,
            Scenario::Mixed => {
                if mixed_is_order(&mut self.rng) {
                    self.order().await
                } else {
                    self.browse().await
                }
            }
            Scenario::Page | Scenario::Roof => {
                let url = self.shared.page_url.clone();
                self.get("page", &url).await
            }
        }
    }
}

/// Logs in again every customer whose token would expire before the run ends (plus a
/// minute), and saves the fresh tokens.
async fn refresh_tokens(
    client: &HttpClient,
    command: &str,
    state: &mut State,
    run_length: Duration,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let needed = unix_now() + run_length.as_secs() + 60;
    let stale: Vec<usize> = (0..state.customers.len())
        .filter(|&i| !state.customers[i].token_valid_until(needed, 0))
        .collect();
    if stale.is_empty() {
        return Ok(());
    }
    let fresh: Vec<_> = stream::iter(stale.iter().map(|&i| state.customers[i].clone()))
        .map(|customer| async move { api::relogin(client, command, &customer).await })
        .buffered(16)
        .try_collect()
        .await?;
    for (i, customer) in stale.into_iter().zip(fresh) {
        state.customers[i] = customer;
    }
    state.save(path)
}

/// Runs `loadgen run` and answers its report.
///
/// # Errors
/// When the state cannot be read or the setup calls around the run fail.
pub async fn run(args: &RunArgs) -> anyhow::Result<Report> {
    let scenario = args.scenario;
    let (command, query) = (args.targets.command(), args.targets.query());
    let client = HttpClient::new(args.connections, args.timeout);
    let mut state = if scenario.needs_state() {
        State::load(&args.state)?
    } else {
        State::default()
    };
    if scenario.places_orders() {
        anyhow::ensure!(
            !state.customers.is_empty(),
            "the state file has no customers: run `loadgen setup --customers N`"
        );
        refresh_tokens(
            &client,
            &command,
            &mut state,
            args.warmup + args.duration,
            &args.state,
        )
        .await?;
    }
    let skus = state.skus();
    if matches!(scenario, Scenario::Checkout | Scenario::Mixed) {
        anyhow::ensure!(
            skus.len() >= args.lines.max(1),
            "the catalogue has {} SKUs, fewer than --lines {}",
            skus.len(),
            args.lines
        );
    }

    // The hot SKU, its stock (set if asked) and the inventory before the run.
    let mut hot = None;
    if scenario == Scenario::HotSku {
        let sku = args
            .hot_sku
            .clone()
            .or_else(|| skus.first().cloned())
            .context("no hot SKU: give --hot-sku or run `loadgen setup` first")?;
        let admin = api::admin_token(&client, &command, &args.admin)
            .await
            .context("hot-sku checks the inventory as an admin")?;
        // The read models may still be catching up with an earlier run's orders: a restock
        // of one unit gives a position to read the starting point at (a read at position 0
        // could miss reservations that are committed but not yet projected).
        let position = api::adjust_stock(&client, &command, &admin, &sku, 1).await?;
        let mut before =
            api::inventory_caught_up(&client, &query, &admin, &sku, position, CATCH_UP).await?;
        if let Some(target) = args.hot_stock
            && target != before.available
        {
            let position =
                api::adjust_stock(&client, &command, &admin, &sku, target - before.available)
                    .await?;
            before =
                api::inventory_caught_up(&client, &query, &admin, &sku, position, CATCH_UP).await?;
        }
        hot = Some((sku, admin, before));
    }

    let window = Window::new(Instant::now(), args.warmup, args.duration);
    let lag = (scenario.places_orders() && args.lag_sample > 0.0).then(|| {
        Arc::new(LagProbe::new(
            client.clone(),
            query.clone(),
            args.lag_method,
            args.lag_poll_interval,
            window,
            args.lag_concurrency,
        ))
    });
    let shared = Arc::new(Shared {
        scenario,
        client: client.clone(),
        query: query.clone(),
        orders_url: format!("{command}/api/v1/orders"),
        page_url: format!("{query}{}", args.path),
        browser: Browser::new(&state),
        skus,
        hot_sku: hot.as_ref().map(|(sku, _, _)| sku.clone()),
        lines: args.lines.max(1),
        idempotency_keys: args.idempotency_keys,
        lag: lag.clone(),
        lag_sample: args.lag_sample.clamp(0.0, 1.0),
        units_sold: AtomicI64::new(0),
        unknown_orders: AtomicI64::new(0),
        last_position: AtomicU64::new(0),
    });
    let pacer = args
        .rate
        .map(|rate| Arc::new(Pacer::new(window.start, rate)));
    let workers: Vec<_> = (0..args.connections.max(1))
        .map(|i| {
            let token = (!state.customers.is_empty()).then(|| {
                Arc::<str>::from(
                    state.customers[i % state.customers.len()]
                        .access_token
                        .as_str(),
                )
            });
            let worker = Worker {
                shared: shared.clone(),
                token,
                rng: StdRng::seed_from_u64(i as u64),
            };
            let pacer = pacer.clone();
            tokio::spawn(async move { run_worker(worker, window, pacer.as_deref()).await })
        })
        .collect();
    let mut recorder = Recorder::default();
    for worker in workers {
        recorder.merge(&worker.await.context("a worker panicked")?);
    }

    let lag = match lag {
        Some(probe) => Some(probe.finish(args.timeout).await),
        None => None,
    };
    let hot_sku = match hot {
        Some((sku, admin, before)) => {
            let last = shared.last_position.load(Ordering::Relaxed);
            api::wait_for_position(&client, &query, last, Duration::from_secs(120)).await?;
            let after =
                api::inventory_caught_up(&client, &query, &admin, &sku, last, CATCH_UP).await?;
            Some(HotSkuCheck::new(
                sku,
                before,
                after,
                shared.units_sold.load(Ordering::Relaxed),
                shared.unknown_orders.load(Ordering::Relaxed),
            ))
        }
        None => None,
    };
    let (ops, total) = recorder.summaries(window.seconds());
    Ok(Report {
        scenario: scenario.name().to_owned(),
        mode: args.mode.clone(),
        target: if scenario.needs_state() {
            command
        } else {
            query.clone()
        },
        query_target: query,
        connections: args.connections,
        rate: args.rate,
        warmup_seconds: args.warmup.as_secs_f64(),
        duration_seconds: window.seconds(),
        total,
        ops,
        lag,
        hot_sku,
    })
}
