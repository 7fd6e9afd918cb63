//! Sends what the outbox holds: over SMTP when `EMPORIUM_SMTP_URL` is set, otherwise as
//! `.eml` files in `<data dir>/outbox/`, so a newcomer can read every message the shop
//! would have sent. Failed attempts are retried with exponential backoff and jitter; after
//! the last one the row is dead (and logged).
use std::{path::PathBuf, sync::Arc};

use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    message::{Mailbox, MultiPart, header::MessageId},
};
use tokio::sync::Notify;

use super::{
    EmailConfig, now_ms,
    outbox::{self, Claimed, Settled},
    templates::{Rendered, Template, Templates},
};

/// The lease on a row being written to the outbox folder (ms).
const FOLDER_LEASE_MS: i64 = 5_000;

/// Where messages go.
#[derive(Clone)]
pub enum Transport {
    /// An SMTP server.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    /// A folder of `.eml` files.
    Folder(PathBuf),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            // The URL may hold credentials: never shown.
            Transport::Smtp(_) => f.write_str("Smtp(..)"),
            Transport::Folder(dir) => f.debug_tuple("Folder").field(dir).finish(),
        }
    }
}

impl Transport {
    /// SMTP at `url` (`smtp://host:25`, `smtp://user:pass@host:587?tls=required`,
    /// `smtps://user:pass@host:465`), or the folder when there is none.
    ///
    /// # Errors
    /// The URL is not a usable SMTP URL.
    pub fn open(config: &EmailConfig) -> anyhow::Result<Self> {
        match &config.smtp_url {
            Some(url) => {
                let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                    .map_err(|err| anyhow::anyhow!("EMPORIUM_SMTP_URL is not usable: {err}"))?
                    .timeout(Some(config.timeout))
                    .build();
                Ok(Transport::Smtp(transport))
            }
            None => Ok(Transport::Folder(config.outbox_dir.clone())),
        }
    }

    /// How long a claimed row stays leased (ms): long enough for one attempt to end. A
    /// process that dies mid-attempt delays the message by this much, no more.
    fn lease_ms(&self, config: &EmailConfig) -> i64 {
        match self {
            Transport::Smtp(_) => super::duration_ms(config.timeout) * 2 + 5_000,
            // A file is written in milliseconds, and writing it twice changes nothing: its
            // name is the outbox id.
            Transport::Folder(_) => FOLDER_LEASE_MS,
        }
    }

    /// Hands `message` over, named `id` in the folder.
    async fn deliver(&self, id: &str, message: Message) -> Result<(), String> {
        match self {
            Transport::Smtp(smtp) => smtp
                .send(message)
                .await
                .map(|_| ())
                .map_err(|err| error_chain(&err)),
            Transport::Folder(dir) => write_eml(dir.clone(), id.to_owned(), message.formatted())
                .await
                .map_err(|err| format!("cannot write to {}: {err}", dir.display())),
        }
    }
}

/// Writes `bytes` as `<dir>/<id>.eml`: to a temporary name first, so a reader never sees
/// half a message.
async fn write_eml(dir: PathBuf, id: String, bytes: Vec<u8>) -> std::io::Result<()> {
    tokio::fs::create_dir_all(&dir).await?;
    let safe: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let temporary = dir.join(format!(".{safe}.eml.tmp"));
    tokio::fs::write(&temporary, bytes).await?;
    tokio::fs::rename(&temporary, dir.join(format!("{safe}.eml"))).await
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut reason = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        reason = format!("{reason}: {cause}");
        source = cause.source();
    }
    reason
}

/// Builds the MIME message: plain text and HTML as alternatives, and a `Message-ID` made
/// from the outbox id, so a message sent twice (a crash after the SMTP server took it) is
/// recognisably the same.
///
/// # Errors
/// An address does not parse.
pub fn build_message(
    config: &EmailConfig,
    id: &str,
    recipient: &str,
    name: Option<&str>,
    rendered: Rendered,
) -> Result<Message, String> {
    let from: Mailbox = config
        .from
        .parse()
        .map_err(|err| format!("EMPORIUM_SMTP_FROM {:?}: {err}", config.from))?;
    let to = Mailbox::new(
        name.map(ToOwned::to_owned),
        recipient
            .parse()
            .map_err(|err| format!("recipient {recipient:?}: {err}"))?,
    );
    let domain = from.email.domain().to_owned();
    Message::builder()
        .from(from)
        .to(to)
        .subject(rendered.subject)
        .header(MessageId::from(format!("<{id}@{domain}>")))
        .multipart(MultiPart::alternative_plain_html(
            rendered.text,
            rendered.html,
        ))
        .map_err(|err| err.to_string())
}

/// Sends due outbox rows.
pub struct Sender {
    sql: sqlx::AnyPool,
    config: EmailConfig,
    transport: Transport,
    templates: Arc<Templates>,
}

impl Sender {
    /// A sender over `sql` with `config`.
    ///
    /// # Errors
    /// The SMTP URL is not usable.
    pub fn new(sql: sqlx::AnyPool, config: EmailConfig) -> anyhow::Result<Self> {
        let transport = Transport::open(&config)?;
        let templates = Arc::new(Templates::new(&config.shop_name));
        Ok(Self {
            sql,
            config,
            transport,
            templates,
        })
    }

    /// Claims and sends every row due now; returns how many were attempted.
    ///
    /// # Errors
    /// The database failed.
    pub async fn run_once(&self) -> Result<usize, sqlx::Error> {
        let now = now_ms();
        let lease = now + self.transport.lease_ms(&self.config);
        let claimed = outbox::claim_due(&self.sql, now, lease, 16).await?;
        let count = claimed.len();
        for row in claimed {
            let outcome = self.attempt(&row).await;
            let settled_at = now_ms();
            match &outcome {
                Settled::Sent => {
                    tracing::info!(email = %row.id, template = %row.template, "e-mail sent");
                }
                Settled::RetryAt(_, error) => {
                    tracing::warn!(email = %row.id, attempt = row.attempts + 1, %error, "e-mail attempt failed; will retry");
                }
                Settled::Dead(error) => {
                    tracing::error!(email = %row.id, attempts = row.attempts + 1, %error, "e-mail given up");
                }
            }
            if !outbox::settle(&self.sql, &row, &outcome, settled_at).await? {
                tracing::warn!(email = %row.id, "lease lost while sending; the newer attempt stands");
            }
        }
        Ok(count)
    }

    async fn attempt(&self, row: &Claimed) -> Settled {
        let attempt = row.attempts + 1;
        let failed = |error: String, permanent: bool| {
            if permanent || attempt >= i64::from(self.config.max_attempts) {
                Settled::Dead(error)
            } else {
                let delay = crate::retry::delay(
                    self.config.base_delay,
                    self.config.max_delay,
                    u32::try_from(attempt).unwrap_or(u32::MAX),
                );
                Settled::RetryAt(now_ms() + super::duration_ms(delay), error)
            }
        };
        let Some(template) = Template::parse(&row.template) else {
            return failed(format!("unknown template {:?}", row.template), true);
        };
        let data: serde_json::Value = match serde_json::from_str(&row.data) {
            Ok(data) => data,
            Err(err) => return failed(format!("unreadable data: {err}"), true),
        };
        let rendered = match self.templates.render(template, &data) {
            Ok(rendered) => rendered,
            Err(err) => return failed(format!("template {}: {err}", row.template), true),
        };
        let name = data.get("customer_name").and_then(|v| v.as_str());
        let message = match build_message(&self.config, &row.id, &row.recipient, name, rendered) {
            Ok(message) => message,
            Err(err) => return failed(err, true),
        };
        match self.transport.deliver(&row.id, message).await {
            Ok(()) => Settled::Sent,
            Err(err) => failed(err, false),
        }
    }

    /// Sends due rows until `stop`: whenever `wake` is notified, and at least every poll
    /// interval (retries come due by time alone).
    pub async fn run(self, wake: Arc<Notify>, stop: impl std::future::Future<Output = ()> + Send) {
        let poll = self.config.poll_interval;
        crate::drain_until_stopped("e-mail sender", || self.run_once(), wake, poll, stop).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered() -> Rendered {
        Rendered {
            subject: "Your order 1 was delivered".into(),
            text: "Hello Ada".into(),
            html: "<p>Hello Ada</p>".into(),
        }
    }

    #[test]
    fn messages_carry_both_parts_and_a_stable_id() {
        let config = EmailConfig::default();
        let message = build_message(
            &config,
            "0190-ab",
            "ada@example.com",
            Some("Ada Lovelace"),
            rendered(),
        )
        .unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        assert!(
            text.contains("To: \"Ada Lovelace\" <ada@example.com>"),
            "{text}"
        );
        assert!(
            text.contains("Subject: Your order 1 was delivered"),
            "{text}"
        );
        assert!(text.contains("Message-ID: <0190-ab@localhost>"), "{text}");
        assert!(text.contains("multipart/alternative"), "{text}");
        assert!(
            text.contains("text/plain") && text.contains("text/html"),
            "{text}"
        );
    }

    #[test]
    fn bad_addresses_are_refused() {
        let config = EmailConfig::default();
        assert!(build_message(&config, "1", "not an address", None, rendered()).is_err());
        let config = EmailConfig {
            from: "nobody".into(),
            ..EmailConfig::default()
        };
        assert!(build_message(&config, "1", "ada@example.com", None, rendered()).is_err());
    }

    #[test]
    fn a_folder_lease_is_short_and_an_smtp_lease_outlasts_the_conversation() {
        let config = EmailConfig::default();
        let folder = Transport::open(&config).unwrap();
        assert_eq!(folder.lease_ms(&config), FOLDER_LEASE_MS);
        let config = EmailConfig {
            smtp_url: Some("smtp://127.0.0.1:2525".into()),
            ..EmailConfig::default()
        };
        let smtp = Transport::open(&config).unwrap();
        assert!(smtp.lease_ms(&config) > 2 * super::super::duration_ms(config.timeout));
    }

    #[test]
    fn transports_never_show_credentials() {
        let config = EmailConfig {
            smtp_url: Some("smtp://user:secret@127.0.0.1:2525".into()),
            ..EmailConfig::default()
        };
        let transport = Transport::open(&config).unwrap();
        assert!(!format!("{transport:?}").contains("secret"));
        let config = EmailConfig {
            smtp_url: Some("ftp://example.com".into()),
            ..EmailConfig::default()
        };
        assert!(Transport::open(&config).is_err());
    }

    #[tokio::test]
    async fn the_folder_gets_whole_files_only() {
        let dir = tempfile::tempdir().unwrap();
        write_eml(dir.path().join("outbox"), "a/b".into(), b"hello".to_vec())
            .await
            .unwrap();
        let names: Vec<String> = std::fs::read_dir(dir.path().join("outbox"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec!["a_b.eml".to_owned()]);
    }
}
