//! E-mail: order placed, shipped, delivered and cancelled, and password resets.
//!
//! - [`recorder`]: the bus consumer that queues order e-mails, one per event.
//! - [`outbox`]: the `email_outbox` table, also written by the command side for resets.
//! - [`templates`]: subjects, plain-text and HTML bodies from `notifier/templates/`.
//! - [`sender`]: delivery over SMTP, or into `.eml` files without an SMTP server.
use std::{path::PathBuf, time::Duration};

pub mod outbox;
pub mod recorder;
pub mod sender;
pub mod templates;

pub(crate) use crate::{duration_ms, now_ms};

/// E-mail settings.
#[derive(Clone)]
pub struct EmailConfig {
    /// The SMTP server (`EMPORIUM_SMTP_URL`); none writes `.eml` files to `outbox_dir`.
    pub smtp_url: Option<String>,
    /// The sender (`EMPORIUM_SMTP_FROM`).
    pub from: String,
    /// Where messages go without SMTP (`<data dir>/outbox`).
    pub outbox_dir: PathBuf,
    /// Who signs the messages (`EMPORIUM_SHOP_NAME`).
    pub shop_name: String,
    /// Attempts before a message is dead (`EMPORIUM_SMTP_MAX_ATTEMPTS`, default 8).
    pub max_attempts: u32,
    /// The delay before the second attempt; doubles each time (5 s).
    pub base_delay: Duration,
    /// The longest delay between attempts (1 hour).
    pub max_delay: Duration,
    /// How long one SMTP conversation may take (30 s).
    pub timeout: Duration,
    /// How often the sender looks for due messages when nothing wakes it (1 s).
    pub poll_interval: Duration,
}

impl Default for EmailConfig {
    fn default() -> Self {
        Self {
            smtp_url: None,
            from: "Emporium <no-reply@localhost>".into(),
            outbox_dir: PathBuf::from("data/outbox"),
            shop_name: "Emporium".into(),
            max_attempts: 8,
            base_delay: Duration::from_secs(5),
            max_delay: Duration::from_secs(3600),
            timeout: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
        }
    }
}

impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailConfig")
            .field("smtp_url", &self.smtp_url.as_ref().map(|_| "<set>"))
            .field("from", &self.from)
            .field("outbox_dir", &self.outbox_dir)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}
