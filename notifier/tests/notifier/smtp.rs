//! A real SMTP server for the tests: Python's aiosmtpd (from PyPI), storing every message it
//! accepts in a Maildir with the envelope's sender and recipients as `X-MailFrom` and
//! `X-RcptTo` headers. Skipped, with a line saying so, where aiosmtpd is not installed,
//! unless `EMPORIUM_REQUIRE_SERVICES=1`.
use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use base64::{Engine, engine::general_purpose::STANDARD};

/// A running aiosmtpd, killed on drop.
pub struct SmtpSink {
    pub port: u16,
    maildir: PathBuf,
    child: Child,
    _dir: tempfile::TempDir,
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn aiosmtpd_available() -> bool {
    Command::new("python3")
        .args(["-c", "import aiosmtpd"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl SmtpSink {
    /// A server on a free port, or `None` (after saying why) without aiosmtpd.
    pub async fn start() -> Option<Self> {
        Self::start_on(free_port()).await
    }

    /// A server on `port`.
    pub async fn start_on(port: u16) -> Option<Self> {
        if !aiosmtpd_available() {
            assert!(
                std::env::var("EMPORIUM_REQUIRE_SERVICES").as_deref() != Ok("1"),
                "aiosmtpd is required: python3 -m pip install aiosmtpd"
            );
            eprintln!("skipped: no aiosmtpd (python3 -m pip install aiosmtpd)");
            return None;
        }
        let dir = tempfile::tempdir().expect("temp dir");
        // aiosmtpd creates the Maildir itself.
        let maildir = dir.path().join("maildir");
        let child = Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        let sink = Self {
            port,
            maildir,
            child,
            _dir: dir,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "aiosmtpd did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Some(sink)
    }

    /// `smtp://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Mail> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return Vec::new();
        };
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = entries
            .filter_map(Result::ok)
            .map(|e| {
                let modified = e.metadata().and_then(|m| m.modified()).expect("mtime");
                (modified, e.path())
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|(_, path)| Mail::parse(&std::fs::read_to_string(path).expect("message")))
            .collect()
    }

    /// Waits until `n` messages arrived; returns them all.
    pub async fn wait_for(&self, n: usize) -> Vec<Mail> {
        crate::support::eventually(
            &format!("{n} e-mails at the SMTP server"),
            Duration::from_secs(30),
            || async {
                let messages = self.messages();
                (messages.len() >= n).then_some(messages)
            },
        )
        .await
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A received message: its headers, and the decoded text of every part.
#[derive(Debug, Clone)]
pub struct Mail {
    pub raw: String,
    headers: Vec<(String, String)>,
    /// Decoded bodies of the text parts, by content type (`text/plain`, `text/html`).
    pub parts: Vec<(String, String)>,
}

impl Mail {
    fn parse(raw: &str) -> Self {
        let raw = raw.replace("\r\n", "\n");
        let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
        let headers = unfold(head);
        let mut parts = Vec::new();
        // Each MIME part: its own headers, a blank line, its body up to the next boundary.
        for chunk in body.split("\n--") {
            let Some((part_head, part_body)) = chunk.split_once("\n\n") else {
                continue;
            };
            let part_headers = unfold(part_head.trim_start_matches(|c| c != '\n'));
            let find = |name: &str| {
                part_headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| v.to_lowercase())
                    .unwrap_or_default()
            };
            let content_type = find("content-type");
            if !content_type.starts_with("text/") {
                continue;
            }
            let kind = content_type
                .split(';')
                .next()
                .unwrap_or_default()
                .to_owned();
            let decoded = match find("content-transfer-encoding").as_str() {
                "base64" => String::from_utf8(
                    STANDARD
                        .decode(part_body.split_whitespace().collect::<String>())
                        .expect("base64 part"),
                )
                .expect("utf-8 part"),
                "quoted-printable" => quoted_printable(part_body),
                _ => part_body.to_owned(),
            };
            parts.push((kind, decoded));
        }
        Self {
            raw: raw.clone(),
            headers,
            parts,
        }
    }

    /// The value of header `name`.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The subject.
    pub fn subject(&self) -> &str {
        self.header("subject").unwrap_or_default()
    }

    /// The decoded `text/plain` part.
    pub fn text(&self) -> &str {
        self.part("text/plain")
    }

    /// The decoded `text/html` part.
    pub fn html(&self) -> &str {
        self.part("text/html")
    }

    fn part(&self, kind: &str) -> &str {
        self.parts
            .iter()
            .find(|(k, _)| k == kind)
            .map(|(_, body)| body.as_str())
            .unwrap_or_default()
    }
}

/// Headers with continuation lines joined.
fn unfold(head: &str) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    headers
}

fn quoted_printable(text: &str) -> String {
    let joined = text.replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'='
            && i + 2 < bytes.len()
            && let Ok(byte) = u8::from_str_radix(&joined[i + 1..i + 3], 16)
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).expect("utf-8 text")
}
