//! Probes: `/health/live` (the process answers) and `/health/ready` (its dependencies do).
use std::{collections::BTreeMap, future::Future, pin::Pin, sync::Arc};

use axum::{Json, Router, extract::State, http::StatusCode, routing::get};
use serde::Serialize;

type CheckFn = dyn Fn() -> Pin<Box<dyn Future<Output = Result<(), String>> + Send>> + Send + Sync;

/// One dependency to check for readiness.
#[derive(Clone)]
pub struct Check {
    name: &'static str,
    critical: bool,
    run: Arc<CheckFn>,
}

impl Check {
    /// A dependency without which the service cannot answer (503 when it fails).
    pub fn critical<F, Fut>(name: &'static str, run: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Self {
            name,
            critical: true,
            run: Arc::new(move || Box::pin(run())),
        }
    }

    /// A dependency whose loss degrades the service but does not stop it (still 200).
    pub fn degrading<F, Fut>(name: &'static str, run: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        Self {
            name,
            critical: false,
            run: Arc::new(move || Box::pin(run())),
        }
    }
}

#[derive(Serialize)]
struct Report {
    status: &'static str,
    checks: BTreeMap<&'static str, String>,
}

/// The probe routes over `checks`.
pub fn router<S: Clone + Send + Sync + 'static>(checks: Vec<Check>) -> Router<S> {
    Router::new()
        .route(
            "/health/live",
            get(|| async { Json(serde_json::json!({ "status": "live" })) }),
        )
        .route("/health/ready", get(ready).with_state(Arc::new(checks)))
}

async fn ready(State(checks): State<Arc<Vec<Check>>>) -> (StatusCode, Json<Report>) {
    let mut report = Report {
        status: "ready",
        checks: BTreeMap::new(),
    };
    let mut status = StatusCode::OK;
    for check in checks.iter() {
        let outcome = tokio::time::timeout(std::time::Duration::from_secs(2), (check.run)()).await;
        let outcome = outcome.unwrap_or_else(|_| Err("timed out".into()));
        match outcome {
            Ok(()) => {
                report.checks.insert(check.name, "ok".into());
            }
            Err(err) => {
                report.checks.insert(check.name, err);
                if check.critical {
                    status = StatusCode::SERVICE_UNAVAILABLE;
                    report.status = "unavailable";
                } else if report.status == "ready" {
                    report.status = "degraded";
                }
            }
        }
    }
    (status, Json(report))
}
