//! The middleware every API shares, in the order requests meet it: a request id (made
//! or kept), a trace span carrying it, panics turned into 500 problems, bare error
//! answers turned into problems, a body size limit, and a timeout.
use std::time::Duration;

use axum::{
    Json, Router,
    http::{HeaderName, HeaderValue, Request, StatusCode, header},
    response::{IntoResponse, Response},
};
use tower_http::{
    catch_panic::CatchPanicLayer,
    limit::RequestBodyLimitLayer,
    request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer},
    timeout::TimeoutLayer,
    trace::TraceLayer,
};

use crate::{
    ApiError,
    error::{PROBLEM_JSON, Problem},
};

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Largest request body accepted (1 MiB): product attributes are capped well below it.
pub const BODY_LIMIT: usize = 1024 * 1024;

/// Wraps `router` in the shared middleware.
pub fn apply<S: Clone + Send + Sync + 'static>(router: Router<S>) -> Router<S> {
    // Layers wrap outwards: the last added runs first, so the request id exists before
    // the trace span is opened and is copied onto every response, errors included.
    router
        .layer(axum::middleware::from_fn(crate::nul::refuse_in_uri))
        .layer(TimeoutLayer::with_status_code(axum::http::StatusCode::GATEWAY_TIMEOUT, Duration::from_secs(30)))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
        .layer(axum::middleware::map_response(problem_for_bare_error))
        .layer(CatchPanicLayer::custom(|_| ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()))
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<_>| {
            let id = request.headers().get(&REQUEST_ID).and_then(|v| v.to_str().ok()).unwrap_or("-");
            tracing::info_span!("request", method = %request.method(), uri = %request.uri().path(), request_id = %id)
        }))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
}

/// Errors answered outside the handlers come as a bare status (axum: no route, a method
/// the route lacks; tower-http: a body over the limit, a timeout), with no body or a
/// plain-text one. Every error an API gives is a problem document, so those are rewritten
/// here; their other headers (`Allow`) stay.
async fn problem_for_bare_error(response: Response) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let bare = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|kind| kind.as_bytes().starts_with(b"text/plain"));
    if !bare {
        return response;
    }
    let (code, detail) = match status {
        StatusCode::NOT_FOUND => ("not_found", "no such resource"),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            "this resource does not take that method; the Allow header lists those it takes",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            "the request body is larger than the 1 MiB limit",
        ),
        StatusCode::GATEWAY_TIMEOUT => ("timeout", "the request took longer than 30 s"),
        // axum's path extraction: a segment that is not percent-encoded UTF-8.
        StatusCode::BAD_REQUEST => (
            "invalid_uri",
            "the path is malformed: a segment is not percent-encoded UTF-8",
        ),
        _ => ("error", status.canonical_reason().unwrap_or("error")),
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
    let body = Json(Problem::new(status, code, detail))
        .into_response()
        .into_body();
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use axum::{body::Body, routing::post};
    use tower::ServiceExt;

    use super::*;

    async fn answer(request: Request<Body>) -> (StatusCode, String, serde_json::Value) {
        let router = apply(
            Router::new()
                .route("/echo", post(|body: String| async { body }))
                .route(
                    "/named/{name}",
                    axum::routing::get(
                        |axum::extract::Path(name): axum::extract::Path<String>| async { name },
                    ),
                ),
        );
        let response = router.oneshot(request).await.unwrap();
        let status = response.status();
        let kind = response
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let allow = response.headers().get(header::ALLOW).cloned();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let mut body: serde_json::Value =
            serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        if let Some(allow) = allow {
            body["allow"] = allow.to_str().unwrap().into();
        }
        (status, kind, body)
    }

    #[tokio::test]
    async fn errors_made_outside_the_handlers_are_problems_too() {
        let (status, kind, body) =
            answer(Request::get("/nowhere").body(Body::empty()).unwrap()).await;
        assert_eq!(
            (status, kind.as_str()),
            (StatusCode::NOT_FOUND, "application/problem+json")
        );
        assert_eq!(body["code"], "not_found");

        let (status, kind, body) = answer(Request::get("/echo").body(Body::empty()).unwrap()).await;
        assert_eq!(
            (status, kind.as_str()),
            (StatusCode::METHOD_NOT_ALLOWED, "application/problem+json")
        );
        assert_eq!(body["code"], "method_not_allowed");
        assert_eq!(body["allow"], "POST", "{body}");

        let big = vec![b'a'; BODY_LIMIT + 1];
        let request = Request::post("/echo")
            .header(header::CONTENT_LENGTH, big.len())
            .body(Body::from(big))
            .unwrap();
        let (status, kind, body) = answer(request).await;
        assert_eq!(
            (status, kind.as_str()),
            (StatusCode::PAYLOAD_TOO_LARGE, "application/problem+json")
        );
        assert_eq!(body["status"], 413);

        let request = Request::get("/named/%FF").body(Body::empty()).unwrap();
        let (status, kind, body) = answer(request).await;
        assert_eq!(
            (status, kind.as_str(), &body["code"]),
            (
                StatusCode::BAD_REQUEST,
                "application/problem+json",
                &"invalid_uri".into()
            )
        );
        let request = Request::get("/named/a%00b").body(Body::empty()).unwrap();
        let (status, _, body) = answer(request).await;
        assert_eq!(
            (status, &body["code"]),
            (StatusCode::BAD_REQUEST, &"invalid_uri".into())
        );

        // What handlers answer is left alone.
        let request = Request::post("/echo").body(Body::from("hello")).unwrap();
        let (status, kind, _) = answer(request).await;
        assert_eq!(
            (status, kind.as_str()),
            (StatusCode::OK, "text/plain; charset=utf-8")
        );
    }
}
