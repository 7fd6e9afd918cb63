//! Test support: isolated streams on the shared NATS server, NATS servers of a test's own
//! (to stop and start them), and polling with a deadline.
use std::{
    future::Future,
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use eventstore::testsupport::skip_or_fail;

use crate::{NatsBus, NatsConfig};

/// The NATS server tests use: `EMPORIUM_TEST_NATS_URL`, or the local default.
pub fn nats_url() -> String {
    std::env::var("EMPORIUM_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// Settings with a stream and subject namespace of their own (nothing else on the server
/// sees them), a short ack wait and short requests.
pub fn isolated_config(url: &str) -> NatsConfig {
    let unique = uuid::Uuid::now_v7().simple().to_string();
    NatsConfig {
        stream: format!("EMPORIUM_TEST_{unique}"),
        namespace: Some(format!("t{unique}")),
        ack_wait: Duration::from_secs(2),
        request_timeout: Duration::from_secs(2),
        ..NatsConfig::new(url)
    }
}

/// A bus on its own stream of the shared test server; the stream is deleted on drop.
pub struct TestNats {
    /// The connected bus.
    pub bus: NatsBus,
}

impl TestNats {
    /// Connects to [`nats_url`] with [`isolated_config`], or returns `None` (after printing
    /// why) when there is no server and services are not required.
    pub async fn connect() -> Option<Self> {
        let url = nats_url();
        match NatsBus::connect_now(isolated_config(&url)).await {
            Ok(bus) => Some(Self { bus }),
            Err(err) => {
                skip_or_fail("NATS", &url, &err);
                None
            }
        }
    }

    /// Messages stored in the stream now.
    pub async fn stored(&self) -> u64 {
        stored_messages(&self.bus).await
    }
}

impl Drop for TestNats {
    fn drop(&mut self) {
        let (js, stream) = (
            self.bus.jetstream().clone(),
            self.bus.config().stream.clone(),
        );
        // Drop runs inside the test's runtime, which cannot be blocked on: use a thread.
        let _ = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                runtime.block_on(async move {
                    let _ = tokio::time::timeout(Duration::from_secs(2), js.delete_stream(stream))
                        .await;
                });
            }
        })
        .join();
    }
}

/// Messages stored in `bus`'s stream now.
///
/// # Panics
/// When the stream cannot be read.
pub async fn stored_messages(bus: &NatsBus) -> u64 {
    let mut stream = bus
        .jetstream()
        .get_stream(&bus.config().stream)
        .await
        .expect("stream");
    stream.info().await.expect("stream info").state.messages
}

/// A `nats-server` with JetStream of a test's own, on a free port with its storage in a
/// temporary folder, to stop and start again (same port, same storage). Killed on drop.
pub struct NatsServer {
    binary: PathBuf,
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl NatsServer {
    /// Starts a server (`EMPORIUM_NATS_SERVER_BIN`, else `/usr/sbin/nats-server`, else
    /// `nats-server` on the `PATH`), or returns `None` (after printing why) when there is
    /// none and services are not required.
    pub async fn start() -> Option<Self> {
        let binary = std::env::var_os("EMPORIUM_NATS_SERVER_BIN")
            .map(PathBuf::from)
            .or_else(|| {
                let usual = PathBuf::from("/usr/sbin/nats-server");
                usual.exists().then_some(usual)
            })
            .unwrap_or_else(|| PathBuf::from("nats-server"));
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut server = Self {
            binary,
            port,
            dir: tempfile::tempdir().expect("temporary folder"),
            child: None,
        };
        if let Err(err) = server.spawn() {
            skip_or_fail(
                "nats-server binary",
                &server.binary.display().to_string(),
                &err,
            );
            return None;
        }
        server.wait_until_listening().await;
        Some(server)
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) -> std::io::Result<()> {
        let child = Command::new(&self.binary)
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        Ok(())
    }

    async fn wait_until_listening(&self) {
        let addr = format!("127.0.0.1:{}", self.port);
        eventually("nats-server to listen", || {
            let addr = addr.clone();
            async move { tokio::net::TcpStream::connect(addr).await.is_ok() }
        })
        .await;
    }

    /// Kills the server (SIGKILL: no goodbye to clients) and waits for it to exit.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and storage, and waits until it listens.
    ///
    /// # Panics
    /// When it cannot be started.
    pub async fn restart(&mut self) {
        self.kill();
        self.spawn().expect("restart nats-server");
        self.wait_until_listening().await;
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `condition` every 10 ms until it holds, failing the test after 60 s.
///
/// # Panics
/// When the deadline passes.
pub async fn eventually<F, Fut>(what: &str, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !condition().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
