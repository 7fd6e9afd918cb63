//! A lean HTTP/1.1 client: hyper with a keep-alive pool, one connection per concurrent
//! request (so `--connections C` closed-loop workers hold C connections), no redirects,
//! no retries, a timeout per request, and the whole body read before the clock stops.
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request, StatusCode, header};
use hyper_util::{
    client::legacy::{Client, connect::HttpConnector},
    rt::TokioExecutor,
};
use serde::de::DeserializeOwned;

use crate::stats::{Outcome, TransportError};

/// An answer: status, selected headers, body.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: StatusCode,
    /// `Emporium-Position`, when sent (commands answer with it).
    pub position: Option<u64>,
    /// `Content-Type`, when sent.
    pub content_type: Option<String>,
    /// The whole body.
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON.
    ///
    /// # Errors
    /// When it is not JSON of that shape.
    pub fn json<T: DeserializeOwned>(&self) -> anyhow::Result<T> {
        serde_json::from_slice(&self.body).map_err(|err| {
            anyhow::anyhow!(
                "answer {} is not the JSON expected ({err}): {}",
                self.status,
                String::from_utf8_lossy(&self.body[..self.body.len().min(300)])
            )
        })
    }

    /// The body as text, for error messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body[..self.body.len().min(500)]).into_owned()
    }

    /// How the request ended, `expected_refusal` being a status the scenario expects.
    pub fn outcome(&self, expected_refusal: Option<u16>) -> Outcome {
        Outcome::of_status(self.status.as_u16(), expected_refusal)
    }
}

/// One request to send.
#[derive(Clone, Debug)]
pub struct Call<'a> {
    method: Method,
    url: &'a str,
    token: Option<&'a str>,
    body: Option<Bytes>,
    headers: Vec<(&'static str, String)>,
}

impl<'a> Call<'a> {
    /// `GET url`.
    pub fn get(url: &'a str) -> Self {
        Self {
            method: Method::GET,
            url,
            token: None,
            body: None,
            headers: Vec::new(),
        }
    }

    /// `POST url` with a JSON body.
    pub fn post(url: &'a str, body: impl Into<Bytes>) -> Self {
        Self {
            method: Method::POST,
            url,
            token: None,
            body: Some(body.into()),
            headers: Vec::new(),
        }
    }

    /// With `Authorization: Bearer token`.
    #[must_use]
    pub fn bearer(mut self, token: Option<&'a str>) -> Self {
        self.token = token;
        self
    }

    /// With another header.
    #[must_use]
    pub fn header(mut self, name: &'static str, value: impl ToString) -> Self {
        self.headers.push((name, value.to_string()));
        self
    }
}

/// The client every worker shares (the pool is shared; cloning is cheap).
#[derive(Clone, Debug)]
pub struct HttpClient {
    client: Client<HttpConnector, Full<Bytes>>,
    timeout: Duration,
}

impl HttpClient {
    /// A client keeping up to `connections` idle connections per host, giving each request
    /// `timeout` (connecting, sending and reading the whole answer).
    pub fn new(connections: usize, timeout: Duration) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeout));
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(connections.max(1))
            .pool_idle_timeout(Duration::from_secs(90))
            // A retried request would be measured as one: let failures show.
            .retry_canceled_requests(false)
            .build(connector);
        Self { client, timeout }
    }

    /// Sends `call` and reads the whole answer.
    ///
    /// # Errors
    /// A [`TransportError`] when no HTTP answer came.
    pub async fn send(&self, call: Call<'_>) -> Result<Answer, TransportError> {
        let mut request = Request::builder().method(call.method).uri(call.url);
        if let Some(token) = call.token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if call.body.is_some() {
            request = request.header(header::CONTENT_TYPE, "application/json");
        }
        for (name, value) in call.headers {
            request = request.header(name, value);
        }
        let request = request
            .body(Full::new(call.body.unwrap_or_default()))
            .map_err(|_| TransportError::Io)?;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|err| {
                if err.is_connect() {
                    TransportError::Connect
                } else {
                    TransportError::Io
                }
            })?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|_| TransportError::Io)?
                .to_bytes();
            let header_text = |name| {
                parts
                    .headers
                    .get(name)
                    .and_then(|v: &hyper::header::HeaderValue| v.to_str().ok())
                    .map(str::to_owned)
            };
            Ok(Answer {
                status: parts.status,
                position: header_text("emporium-position").and_then(|v| v.parse().ok()),
                content_type: header_text("content-type"),
                body,
            })
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| TransportError::Timeout)?
    }

    /// Sends `call` and fails unless the answer is a success.
    ///
    /// # Errors
    /// On a transport error or a status outside 2xx.
    pub async fn expect(&self, what: &str, call: Call<'_>) -> anyhow::Result<Answer> {
        let url = call.url.to_owned();
        let answer = self
            .send(call)
            .await
            .map_err(|err| anyhow::anyhow!("{what}: {url}: {err}"))?;
        if !answer.status.is_success() {
            anyhow::bail!(
                "{what}: {url} answered {}: {}",
                answer.status,
                answer.text()
            );
        }
        Ok(answer)
    }
}
