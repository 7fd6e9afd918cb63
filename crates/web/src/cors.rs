//! Cross-origin requests (`EMPORIUM_CORS_ORIGINS`), for a shop whose web front end is served
//! from another origin than the API. None are allowed by default: a browser then lets only
//! pages from the API's own origin read its answers.
//!
//! Credentials travel in the `Authorization` header, never in cookies, so no origin is
//! ever allowed credentials, and `*` (any origin) is safe for a public storefront API.
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Which origins may call the API from a browser.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorsOrigins {
    /// Any origin (`*`).
    Any,
    /// These origins (`https://shop.example`), exactly.
    List(Vec<HeaderValue>),
}

impl CorsOrigins {
    /// Parses `*`, or origins separated by commas (`https://shop.example,
    /// http://localhost:3000`): a scheme (`http` or `https`), a host and an optional port,
    /// with no path.
    ///
    /// # Errors
    /// Says which entry is not an origin.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim() == "*" {
            return Ok(Self::Any);
        }
        let origins = text
            .split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .map(|entry| {
                let host = entry
                    .strip_prefix("https://")
                    .or_else(|| entry.strip_prefix("http://"))
                    .ok_or_else(|| {
                        format!("{entry:?} is not an origin: it needs http:// or https://")
                    })?;
                let valid = !host.is_empty()
                    && host.chars().all(|c| {
                        c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']')
                    });
                if !valid {
                    return Err(format!(
                        "{entry:?} is not an origin: a scheme, a host and an optional port, no path"
                    ));
                }
                HeaderValue::from_str(entry).map_err(|err| format!("{entry:?}: {err}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if origins.is_empty() {
            return Err("no origin given (use * for any)".into());
        }
        Ok(Self::List(origins))
    }

    /// The layer that answers preflight requests and marks the answers these origins may
    /// read: the API's methods, the request headers it reads, and the response headers a
    /// client needs (versions, positions, replays, rate limits).
    pub fn layer(&self) -> CorsLayer {
        let origin = match self {
            Self::Any => AllowOrigin::any(),
            Self::List(origins) => AllowOrigin::list(origins.iter().cloned()),
        };
        CorsLayer::new()
            .allow_origin(origin)
            .allow_methods([
                Method::GET,
                Method::HEAD,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_MATCH,
                header::IF_NONE_MATCH,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("x-emporium-min-position"),
                HeaderName::from_static("x-request-id"),
            ])
            .expose_headers([
                header::ETAG,
                header::LOCATION,
                header::RETRY_AFTER,
                header::WWW_AUTHENTICATE,
                HeaderName::from_static("emporium-position"),
                HeaderName::from_static("idempotent-replayed"),
                HeaderName::from_static("x-request-id"),
            ])
            .max_age(Duration::from_secs(3600))
    }
}

#[cfg(test)]
mod tests {
    use axum::{Router, body::Body, http::Request, routing::get};
    use tower::ServiceExt;

    use super::*;

    #[test]
    fn origins_parse_and_bad_ones_are_named() {
        assert_eq!(CorsOrigins::parse(" * "), Ok(CorsOrigins::Any));
        assert_eq!(
            CorsOrigins::parse("https://shop.example, http://localhost:3000,"),
            Ok(CorsOrigins::List(vec![
                HeaderValue::from_static("https://shop.example"),
                HeaderValue::from_static("http://localhost:3000"),
            ]))
        );
        for bad in [
            "shop.example",
            "https://shop.example/",
            "https://",
            "ftp://x",
            " , ",
        ] {
            assert!(CorsOrigins::parse(bad).is_err(), "{bad}");
        }
    }

    async fn preflight(layer: CorsLayer, origin: &str) -> axum::http::Response<Body> {
        let router = Router::new()
            .route("/api/v1/orders", get(|| async { "[]" }))
            .layer(layer);
        let request = Request::options("/api/v1/orders")
            .header(header::ORIGIN, origin)
            .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
            .header(
                header::ACCESS_CONTROL_REQUEST_HEADERS,
                "authorization,content-type,idempotency-key",
            )
            .body(Body::empty())
            .unwrap();
        router.oneshot(request).await.unwrap()
    }

    #[tokio::test]
    async fn listed_origins_pass_the_preflight_and_others_do_not() {
        let origins = CorsOrigins::parse("https://shop.example").unwrap();
        let allowed = preflight(origins.layer(), "https://shop.example").await;
        let headers = allowed.headers();
        assert_eq!(
            headers[header::ACCESS_CONTROL_ALLOW_ORIGIN],
            "https://shop.example"
        );
        let methods = headers[header::ACCESS_CONTROL_ALLOW_METHODS]
            .to_str()
            .unwrap();
        assert!(
            methods.contains("POST") && methods.contains("PATCH"),
            "{methods}"
        );
        let allowed_headers = headers[header::ACCESS_CONTROL_ALLOW_HEADERS]
            .to_str()
            .unwrap();
        assert!(
            allowed_headers.contains("idempotency-key"),
            "{allowed_headers}"
        );
        assert!(
            headers
                .get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS)
                .is_none()
        );

        let refused = preflight(origins.layer(), "https://evil.example").await;
        assert!(
            refused
                .headers()
                .get(header::ACCESS_CONTROL_ALLOW_ORIGIN)
                .is_none()
        );

        let any = preflight(CorsOrigins::Any.layer(), "https://anyone.example").await;
        assert_eq!(any.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    }
}
