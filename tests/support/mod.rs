//! What the end-to-end tests share: the real `emporium` binary started as a user starts
//! it (a clean environment, a free port, ready when `/health/ready` says so), JSON over
//! HTTP, and polling with a deadline.
#![allow(dead_code)]

use std::{
    future::Future,
    net::TcpListener,
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::Value;

/// A running `emporium` process, killed (SIGKILL) and reaped on drop.
pub struct Process {
    pub child: Child,
    pub base: String,
}

impl Process {
    /// Kills the process at once, as a crash or `kill -9` would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port nothing listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// `emporium` with a clean environment: only `PATH`, the data folder and quiet logs.
pub fn emporium(data: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_emporium"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("EMPORIUM_DATA_DIR", data)
        .env("EMPORIUM_LOG", "warn");
    command
}

/// Starts `command` on a free port and waits until it is ready.
pub async fn spawn_ready(mut command: Command) -> Process {
    let port = free_port();
    let child = command
        .env("EMPORIUM_ADDR", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .spawn()
        .expect("start emporium");
    let process = Process {
        child,
        base: format!("http://127.0.0.1:{port}"),
    };
    let client = reqwest::Client::new();
    eventually(
        "emporium to become ready",
        Duration::from_secs(60),
        || async {
            let ready = client
                .get(format!("{}/health/ready", process.base))
                .send()
                .await;
            ready
                .is_ok_and(|response| response.status() == StatusCode::OK)
                .then_some(())
        },
    )
    .await;
    process
}

/// POSTs `body` as JSON; the status and the JSON answer (`Null` when there is none).
pub async fn post(
    client: &reqwest::Client,
    url: String,
    token: Option<&str>,
    body: Value,
) -> (StatusCode, Value) {
    let mut request = client.post(url).json(&body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// GETs `url`; the status and the JSON answer (`Null` when there is none).
pub async fn get(
    client: &reqwest::Client,
    url: String,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = client.get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("request");
    let status = response.status();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// An access token for `username`.
pub async fn login(client: &reqwest::Client, base: &str, username: &str, password: &str) -> String {
    let (status, body) = post(
        client,
        format!("{base}/api/v1/auth/login"),
        None,
        serde_json::json!({"username": username, "password": password}),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "login {username}: {body}");
    body["accessToken"].as_str().expect("token").to_owned()
}

/// Polls `check` every 50 ms until it gives `Some`; panics naming `what` after `deadline`.
pub async fn eventually<T, F, Fut>(what: &str, deadline: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let until = Instant::now() + deadline;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
