//! The HTTP roof: an axum server that answers every GET with the bytes of one page
//! fetched once from the target (same body, same content type). Nothing is computed per
//! request, so its rate on this machine is the most any handler serving that page could
//! reach; Emporium's cached page is compared with it in the same run.
use std::time::Duration;

use axum::{
    Router,
    http::{HeaderValue, header},
    response::IntoResponse,
};
use bytes::Bytes;
use tokio::net::TcpListener;

use crate::{
    cli::RoofServerArgs,
    http::{Call, HttpClient},
};

/// The page the roof serves.
#[derive(Clone, Debug)]
pub struct Page {
    content_type: HeaderValue,
    body: Bytes,
}

impl Page {
    /// Fetches `path` from `from` once.
    ///
    /// # Errors
    /// When the page does not answer 200.
    pub async fn fetch(from: &str, path: &str) -> anyhow::Result<Self> {
        let client = HttpClient::new(1, Duration::from_secs(30));
        let url = format!("{}{path}", from.trim_end_matches('/'));
        let answer = client
            .expect("fetching the roof page", Call::get(&url))
            .await?;
        let content_type = answer
            .content_type
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
            .unwrap_or_else(|| HeaderValue::from_static("application/json"));
        Ok(Self {
            content_type,
            body: answer.body,
        })
    }

    /// The router: every path answers the page.
    pub fn router(self) -> Router {
        Router::new().fallback(move || {
            let page = self.clone();
            async move { ([(header::CONTENT_TYPE, page.content_type)], page.body).into_response() }
        })
    }
}

async fn stopped() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let term = async {
            match term.as_mut() {
                Some(term) => {
                    term.recv().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            () = term => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// Runs `loadgen roof-server` until Ctrl-C or SIGTERM.
///
/// # Errors
/// When the page cannot be fetched or the address bound.
pub async fn serve(args: &RoofServerArgs) -> anyhow::Result<()> {
    let page = Page::fetch(&args.from, &args.path).await?;
    let size = page.body.len();
    let listener = TcpListener::bind(&args.addr).await?;
    println!(
        "roof server on http://{} answering every path with the {size} bytes of {}{}",
        listener.local_addr()?,
        args.from.trim_end_matches('/'),
        args.path
    );
    axum::serve(listener, page.router())
        .with_graceful_shutdown(stopped())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use axum::{body::Body, http::Request};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    #[tokio::test]
    async fn every_path_answers_the_same_bytes_and_type() {
        let page = Page {
            content_type: HeaderValue::from_static("application/json"),
            body: Bytes::from_static(br#"{"items":[],"page":1,"pageSize":20,"total":0}"#),
        };
        let router = page.clone().router();
        for path in ["/api/v1/products?page=1&pageSize=20", "/", "/anything/else"] {
            let response = router
                .clone()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            assert_eq!(response.headers()[header::CONTENT_TYPE], "application/json");
            let body = response.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, page.body);
        }
    }
}
