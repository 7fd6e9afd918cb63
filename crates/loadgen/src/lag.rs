//! Projection lag: the time from an order's answer to the order being readable through
//! the query API, measured for a sample of orders by tasks of their own, so the workers
//! placing orders never wait for it. At most `--lag-concurrency` measurements run at once;
//! a sample that finds them all busy is skipped (and counted), not queued, because a
//! queued measurement would add its own waiting to the lag.
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use tokio::{sync::Semaphore, time::Instant};

use crate::{
    cli::LagMethod,
    engine::Window,
    http::{Call, HttpClient},
    stats::{Latencies, LatencySummary},
};

/// How long a poll-based measurement keeps trying.
const POLL_DEADLINE: Duration = Duration::from_secs(30);

/// What the lag measurements found.
#[derive(Clone, Debug, Default)]
struct LagStats {
    latencies: Latencies,
    timeouts: u64,
    errors: u64,
    skipped: u64,
}

/// The lag, as reported.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LagSummary {
    /// `min-position` or `poll`.
    pub method: String,
    /// Percentiles of the measured lags.
    pub latency: LatencySummary,
    /// Orders never visible within the wait (504 from the query API, or the poll deadline).
    pub timeouts: u64,
    /// Measurements that failed otherwise (unexpected status, transport error).
    pub errors: u64,
    /// Samples skipped because every measurement slot was busy.
    pub skipped: u64,
}

/// Measures projection lag for sampled orders.
#[derive(Debug)]
pub struct LagProbe {
    client: HttpClient,
    query: String,
    method: LagMethod,
    poll_interval: Duration,
    window: Window,
    slots: Arc<Semaphore>,
    capacity: u32,
    stats: Mutex<LagStats>,
}

impl LagProbe {
    /// A probe reading orders from the query API at `query`.
    pub fn new(
        client: HttpClient,
        query: String,
        method: LagMethod,
        poll_interval: Duration,
        window: Window,
        concurrency: usize,
    ) -> Self {
        let capacity = u32::try_from(concurrency.clamp(1, 10_000)).unwrap_or(1);
        Self {
            client,
            query,
            method,
            poll_interval,
            window,
            slots: Arc::new(Semaphore::new(capacity as usize)),
            capacity,
            stats: Mutex::new(LagStats::default()),
        }
    }

    fn stats(&self) -> std::sync::MutexGuard<'_, LagStats> {
        self.stats
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts measuring the lag of order `id`, answered at `answered` with `position`,
    /// readable with `token`; skipped when the order was not answered inside the
    /// measured window or every slot is busy.
    pub fn sample(self: &Arc<Self>, id: String, position: u64, token: Arc<str>, answered: Instant) {
        if !self.window.measures(answered) {
            return;
        }
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            self.stats().skipped += 1;
            return;
        };
        let probe = self.clone();
        tokio::spawn(async move {
            let result = probe.measure(&id, position, &token, answered).await;
            let mut stats = probe.stats();
            match result {
                Measured::Lag(lag) => stats.latencies.record(lag),
                Measured::Timeout => stats.timeouts += 1,
                Measured::Error => stats.errors += 1,
            }
            drop(permit);
        });
    }

    async fn measure(&self, id: &str, position: u64, token: &str, answered: Instant) -> Measured {
        let url = format!("{}/api/v1/orders/{id}", self.query);
        match self.method {
            LagMethod::MinPosition => {
                let call = Call::get(&url)
                    .bearer(Some(token))
                    .header("x-emporium-min-position", position);
                match self.client.send(call).await {
                    Ok(answer) if answer.status.is_success() => Measured::Lag(answered.elapsed()),
                    Ok(answer) if answer.status.as_u16() == 504 => Measured::Timeout,
                    _ => Measured::Error,
                }
            }
            LagMethod::Poll => loop {
                match self.client.send(Call::get(&url).bearer(Some(token))).await {
                    Ok(answer) if answer.status.is_success() => {
                        return Measured::Lag(answered.elapsed());
                    }
                    Ok(answer) if answer.status.as_u16() == 404 => {}
                    _ => return Measured::Error,
                }
                if answered.elapsed() > POLL_DEADLINE {
                    return Measured::Timeout;
                }
                tokio::time::sleep(self.poll_interval).await;
            },
        }
    }

    /// Waits (at most `limit`) for the measurements in flight, then summarises.
    pub async fn finish(&self, limit: Duration) -> LagSummary {
        let _ = tokio::time::timeout(limit, self.slots.acquire_many(self.capacity)).await;
        let stats = self.stats();
        LagSummary {
            method: match self.method {
                LagMethod::MinPosition => "min-position",
                LagMethod::Poll => "poll",
            }
            .to_owned(),
            latency: stats.latencies.summary(),
            timeouts: stats.timeouts,
            errors: stats.errors,
            skipped: stats.skipped,
        }
    }
}

enum Measured {
    Lag(Duration),
    Timeout,
    Error,
}
