//! Prometheus metrics: request counts and latency histograms by route and status, plus
//! whatever the services record with the `metrics` macros (appends, conflicts, …).
use std::{
    sync::OnceLock,
    time::{Duration, Instant},
};

use axum::{
    extract::{MatchedPath, Request},
    http::header,
    middleware::Next,
    response::{IntoResponse, Response},
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// How often recorded histogram samples are folded into their buckets.
///
/// The exporter keeps every sample until it is folded, which only a scrape or an upkeep
/// does: unscraped, a node serving 57,000 requests/s grew by 1.2 MiB/s (README, Load
/// results). Folded each second, at most a second's samples are held.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(1);

/// The name of the thread that folds the samples.
pub const UPKEEP_THREAD: &str = "metrics-upkeep";

/// The process-wide recorder, installed on first use (every app in a test process shares it).
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("duration_seconds".into()),
                &[
                    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ],
            )
            .expect("valid buckets");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed (tests): keep rendering ours anyway.
        let _ = metrics::set_global_recorder(recorder);
        keep_up(handle.clone());
        handle
    })
}

/// Folds `handle`'s samples every [`UPKEEP_INTERVAL`] on a thread of its own (a plain
/// thread: the recorder may be installed before, or outside, any tokio runtime).
fn keep_up(handle: PrometheusHandle) {
    let started = std::thread::Builder::new()
        .name(UPKEEP_THREAD.into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP_INTERVAL);
                handle.run_upkeep();
            }
        });
    if let Err(error) = started {
        tracing::error!(%error, "cannot start the metrics upkeep: unscraped histograms will grow");
    }
}

/// Middleware (as a `route_layer`, so the matched route is known) that counts and times requests.
pub async fn track(request: Request, next: Next) -> Response {
    // Installs the recorder on first use, so no composition can forget to.
    handle();
    let started = Instant::now();
    let method = request.method().to_string();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics` in the Prometheus text format.
pub async fn render() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle().render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The names of this process's threads (Linux: /proc/self/task/*/comm).
    fn thread_names() -> Vec<String> {
        std::fs::read_dir("/proc/self/task")
            .map(|tasks| {
                tasks
                    .flatten()
                    .filter_map(|task| std::fs::read_to_string(task.path().join("comm")).ok())
                    .map(|name| name.trim().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn upkeep_threads() -> usize {
        thread_names()
            .iter()
            .filter(|name| *name == UPKEEP_THREAD)
            .count()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn one_upkeep_thread_folds_the_samples_however_often_the_recorder_is_used() {
        handle();
        handle();
        // A new thread names itself once it runs: wait for that, not for a time.
        let deadline = Instant::now() + Duration::from_secs(10);
        while upkeep_threads() == 0 && Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert_eq!(upkeep_threads(), 1, "threads: {:?}", thread_names());
    }
}
