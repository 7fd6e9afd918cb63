//! The middleware every API shares, in the order requests meet it: a request id (made
//! or kept), a trace span carrying it, panics turned into 500 problems, a body size
//! limit, and a timeout.
use std::time::Duration;

use axum::{
    Router,
    http::{HeaderName, Request},
    response::IntoResponse,
};
use tower_http::{
    catch_panic::CatchPanicLayer,
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::TraceLayer,
};

use crate::ApiError;

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Largest request body accepted (1 MiB): product attributes are capped well below it.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Wraps `router` in the shared middleware.
pub fn apply<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    // Layers wrap outwards: the last added runs first, so the request id exists before
    // the trace span is opened and is copied onto every response, errors included.
    router
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::GATEWAY_TIMEOUT, Duration::from_secs(30)))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(CatchPanicLayer::custom(|_| ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let id = request.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %request.method(), uri = %request.uri().path(), request_id = %id)
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
}
