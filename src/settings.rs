//! Settings: defaults, then an optional TOML file, then `EMPORIUM_*` environment
//! variables. Secrets are kept out of `Debug` and masked by `describe`.
use std::{path::Path, path::PathBuf, time::Duration};

use anyhow::Context;
use serde::Deserialize;

/// Every setting, with its environment variable.
#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// `EMPORIUM_ADDR`: where the API listens.
    pub addr: String,
    /// `EMPORIUM_DATA_DIR`: embedded database, signing key.
    pub data_dir: PathBuf,
    /// `EMPORIUM_DATABASE_URL`: PostgreSQL for read models, tokens, idempotency keys
    /// (and the event log unless `eventstore_url` says otherwise). None: embedded SQLite.
    pub database_url: Option<String>,
    /// `EMPORIUM_EVENTSTORE_URL`: `postgres://…`, `esdb://…` / `kurrentdb://…`, or `sqlite:…`.
    pub eventstore_url: Option<String>,
    /// `EMPORIUM_NATS_URL`: NATS with JetStream for integration events (`nats://…`). None:
    /// the in-process bus (subscribers read the log).
    pub nats_url: Option<String>,
    /// `EMPORIUM_NATS_STREAM`: the JetStream stream holding the integration events.
    pub nats_stream: String,
    /// `EMPORIUM_NATS_NAMESPACE`: a prefix for every subject (`{namespace}.emporium.…`), so
    /// several shops can share one NATS server. None: subjects are `emporium.…`.
    pub nats_namespace: Option<String>,
    /// `EMPORIUM_BOOTSTRAP_ADMIN_USERNAME`.
    pub bootstrap_admin_username: String,
    /// `EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD`: creates the first admin on a store with none.
    pub bootstrap_admin_password: Option<String>,
    /// `EMPORIUM_JWT_PRIVATE_KEY`: Ed25519 private key (PKCS#8 PEM) signing access tokens.
    pub jwt_private_key: Option<String>,
    /// `EMPORIUM_JWT_PRIVATE_KEY_FILE`: where the key is read from (generated if missing).
    pub jwt_private_key_file: Option<PathBuf>,
    /// `EMPORIUM_ACCESS_TOKEN_TTL_SECONDS`.
    pub access_token_ttl_seconds: u64,
    /// `EMPORIUM_REFRESH_TOKEN_TTL_SECONDS`.
    pub refresh_token_ttl_seconds: u64,
    /// `EMPORIUM_RATE_LIMIT_SIGNUP_PER_MINUTE` (per IP).
    pub rate_limit_signup_per_minute: u32,
    /// `EMPORIUM_RATE_LIMIT_LOGIN_FAILURES_PER_MINUTE` (per username).
    pub rate_limit_login_failures_per_minute: u32,
    /// `EMPORIUM_DATABASE_MAX_CONNECTIONS`; unset: [`Settings::database_pool_size`].
    pub database_max_connections: Option<u32>,
    /// `EMPORIUM_AGGREGATE_CACHE_CAPACITY`: aggregates kept in memory by the command side.
    pub aggregate_cache_capacity: u64,
    /// `EMPORIUM_MIN_POSITION_WAIT_MS`: how long a query waits for `X-Emporium-Min-Position`.
    pub min_position_wait_ms: u64,
    /// `EMPORIUM_RESERVATION_TIMEOUT_SECONDS`: a reservation whose order has not appeared
    /// after this long is released by the sweeper (far longer than placing an order takes).
    pub reservation_timeout_seconds: u64,
    /// `EMPORIUM_WEBHOOK_ALLOW_PRIVATE`: let webhooks reach private, loopback and
    /// link-local addresses (tests and closed networks only; off by default, against SSRF).
    pub webhook_allow_private: bool,
    /// `EMPORIUM_WEBHOOK_MAX_ATTEMPTS`: attempts before a webhook delivery is dead.
    pub webhook_max_attempts: u32,
    /// `EMPORIUM_WEBHOOK_RETRY_BASE_MS`: delay before the second attempt; doubles each time
    /// (up to an hour), with jitter.
    pub webhook_retry_base_ms: u64,
    /// `EMPORIUM_WEBHOOK_TIMEOUT_MS`: how long an endpoint may take to answer.
    pub webhook_timeout_ms: u64,
    /// `EMPORIUM_REDIS_URL`: Redis for the shared view cache and for carts and wishlists
    /// (`redis://host:6379/0`). None: views are cached in process only, carts are kept in the
    /// SQL database.
    pub redis_url: Option<String>,
    /// `EMPORIUM_CACHE_NAMESPACE`: prefix of the cache's Redis keys and channel.
    pub cache_namespace: String,
    /// `EMPORIUM_CACHE_REDIS_TTL_SECONDS`: expiry of a view in Redis (a backstop).
    pub cache_redis_ttl_seconds: u64,
    /// `EMPORIUM_CACHE_TIMEOUT_MS`: longest wait for Redis on a request; then the read model
    /// answers.
    pub cache_timeout_ms: u64,
    /// `EMPORIUM_CACHE_LOCAL_CAPACITY`: product views, and order views, each node keeps in
    /// process. A product view takes about 2 KiB: with 100,000 products browsed at random,
    /// 10,000 of them took a query node from 58-60 to 70-71 MiB, while a shop's
    /// hot products are far fewer and the shared cache serves the rest.
    pub cache_local_capacity: u64,
    /// `EMPORIUM_CACHE_LOCAL_TTL_SECONDS`: longest a view stays in process.
    pub cache_local_ttl_seconds: u64,
    /// `EMPORIUM_CART_TTL_SECONDS`: a cart or wishlist untouched this long is dropped.
    pub cart_ttl_seconds: u64,
    /// `EMPORIUM_SEARCH_DIR`: this query node's own search index (default
    /// `<data dir>/search`); deleted or unreadable, it is rebuilt from the log.
    pub search_dir: Option<PathBuf>,
    /// `EMPORIUM_SMTP_URL`: the SMTP server e-mails go to (`smtp://host:25`,
    /// `smtp://user:pass@host:587?tls=required`, `smtps://user:pass@host:465`). None: each
    /// e-mail is written as an `.eml` file to `<data dir>/outbox/`.
    pub smtp_url: Option<String>,
    /// `EMPORIUM_SMTP_FROM`: the sender of every e-mail.
    pub smtp_from: String,
    /// `EMPORIUM_SMTP_MAX_ATTEMPTS`: attempts before an e-mail is given up.
    pub smtp_max_attempts: u32,
    /// `EMPORIUM_SHOP_NAME`: how the e-mails sign.
    pub shop_name: String,
    /// `EMPORIUM_PASSWORD_RESET_TTL_SECONDS`: how long a reset token is valid.
    pub password_reset_ttl_seconds: u64,
    /// `EMPORIUM_PASSWORD_RESET_URL`: the shop's reset page, with `{token}` where the token
    /// goes. None: the e-mail shows the token itself.
    pub password_reset_url: Option<String>,
    /// `EMPORIUM_CORS_ORIGINS`: the origins whose pages may call the API from a browser
    /// (`https://shop.example,https://admin.shop.example`, or `*`). None: same origin only.
    pub cors_origins: Option<String>,
    /// `EMPORIUM_TRUSTED_PROXIES`: load balancers (addresses or networks) whose
    /// `X-Forwarded-For` names the client for the per-IP rate limits. None: the peer.
    pub trusted_proxies: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            eventstore_url: None,
            nats_url: None,
            nats_stream: "EMPORIUM".into(),
            nats_namespace: None,
            bootstrap_admin_username: "admin".into(),
            bootstrap_admin_password: None,
            jwt_private_key: None,
            jwt_private_key_file: None,
            access_token_ttl_seconds: 15 * 60,
            refresh_token_ttl_seconds: 30 * 24 * 3600,
            rate_limit_signup_per_minute: 20,
            rate_limit_login_failures_per_minute: 10,
            database_max_connections: None,
            aggregate_cache_capacity: 10_000,
            min_position_wait_ms: 5_000,
            reservation_timeout_seconds: 15 * 60,
            webhook_allow_private: false,
            webhook_max_attempts: 8,
            webhook_retry_base_ms: 5_000,
            webhook_timeout_ms: 10_000,
            redis_url: None,
            cache_namespace: "emporium".into(),
            cache_redis_ttl_seconds: 3600,
            cache_timeout_ms: 100,
            cache_local_capacity: 2_000,
            cache_local_ttl_seconds: 10,
            cart_ttl_seconds: 30 * 24 * 3600,
            search_dir: None,
            smtp_url: None,
            smtp_from: "Emporium <no-reply@localhost>".into(),
            smtp_max_attempts: 8,
            shop_name: "Emporium".into(),
            password_reset_ttl_seconds: 3600,
            password_reset_url: None,
            cors_origins: None,
            trusted_proxies: None,
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(format!("EMPORIUM_{name}"))
        .ok()
        .filter(|v| !v.is_empty())
}

/// `text` (setting `EMPORIUM_{name}`) parsed with `parse`, its error naming the setting.
fn parse_list<T>(
    name: &str,
    text: Option<&str>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> anyhow::Result<Option<T>> {
    text.map(|text| parse(text).map_err(|err| anyhow::anyhow!("EMPORIUM_{name}: {err}")))
        .transpose()
}

fn env_parsed<T: std::str::FromStr>(name: &str, target: &mut T) -> anyhow::Result<()> {
    if let Some(raw) = env(name) {
        *target = raw
            .parse()
            .map_err(|_| anyhow::anyhow!("EMPORIUM_{name}={raw:?} is not valid"))?;
    }
    Ok(())
}

impl Settings {
    /// The size of each database pool: the setting, else 16 on PostgreSQL and 4 for the
    /// embedded SQLite file (one writer at a time and two cores' worth of readers: with 16
    /// the embedded process served fewer requests and orders and held about 20 MiB more of
    /// SQLite page caches and prepared statements, see bench/HISTORY.md).
    pub fn database_pool_size(&self) -> u32 {
        self.database_max_connections
            .unwrap_or(if self.database_url.is_some() { 16 } else { 4 })
    }

    /// Defaults, the TOML file if given, then the environment.
    pub fn from_env(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut settings = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading {}", path.display()))?;
                toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?
            }
            None => Self::default(),
        };
        let s = &mut settings;
        if let Some(v) = env("ADDR") {
            s.addr = v;
        }
        if let Some(v) = env("DATA_DIR") {
            s.data_dir = v.into();
        }
        if let Some(v) = env("DATABASE_URL") {
            s.database_url = Some(v);
        }
        if let Some(v) = env("EVENTSTORE_URL") {
            s.eventstore_url = Some(v);
        }
        if let Some(v) = env("NATS_URL") {
            s.nats_url = Some(v);
        }
        if let Some(v) = env("NATS_STREAM") {
            s.nats_stream = v;
        }
        if let Some(v) = env("NATS_NAMESPACE") {
            s.nats_namespace = Some(v);
        }
        if let Some(v) = env("BOOTSTRAP_ADMIN_USERNAME") {
            s.bootstrap_admin_username = v;
        }
        if let Some(v) = env("BOOTSTRAP_ADMIN_PASSWORD") {
            s.bootstrap_admin_password = Some(v);
        }
        if let Some(v) = env("JWT_PRIVATE_KEY") {
            s.jwt_private_key = Some(v);
        }
        if let Some(v) = env("JWT_PRIVATE_KEY_FILE") {
            s.jwt_private_key_file = Some(v.into());
        }
        env_parsed("ACCESS_TOKEN_TTL_SECONDS", &mut s.access_token_ttl_seconds)?;
        env_parsed(
            "REFRESH_TOKEN_TTL_SECONDS",
            &mut s.refresh_token_ttl_seconds,
        )?;
        env_parsed(
            "RATE_LIMIT_SIGNUP_PER_MINUTE",
            &mut s.rate_limit_signup_per_minute,
        )?;
        env_parsed(
            "RATE_LIMIT_LOGIN_FAILURES_PER_MINUTE",
            &mut s.rate_limit_login_failures_per_minute,
        )?;
        if env("DATABASE_MAX_CONNECTIONS").is_some() {
            let mut size = 0_u32;
            env_parsed("DATABASE_MAX_CONNECTIONS", &mut size)?;
            s.database_max_connections = Some(size);
        }
        env_parsed("AGGREGATE_CACHE_CAPACITY", &mut s.aggregate_cache_capacity)?;
        env_parsed("MIN_POSITION_WAIT_MS", &mut s.min_position_wait_ms)?;
        env_parsed(
            "RESERVATION_TIMEOUT_SECONDS",
            &mut s.reservation_timeout_seconds,
        )?;
        env_parsed("WEBHOOK_ALLOW_PRIVATE", &mut s.webhook_allow_private)?;
        env_parsed("WEBHOOK_MAX_ATTEMPTS", &mut s.webhook_max_attempts)?;
        env_parsed("WEBHOOK_RETRY_BASE_MS", &mut s.webhook_retry_base_ms)?;
        env_parsed("WEBHOOK_TIMEOUT_MS", &mut s.webhook_timeout_ms)?;
        if let Some(v) = env("REDIS_URL") {
            s.redis_url = Some(v);
        }
        if let Some(v) = env("CACHE_NAMESPACE") {
            s.cache_namespace = v;
        }
        env_parsed("CACHE_REDIS_TTL_SECONDS", &mut s.cache_redis_ttl_seconds)?;
        env_parsed("CACHE_TIMEOUT_MS", &mut s.cache_timeout_ms)?;
        env_parsed("CACHE_LOCAL_CAPACITY", &mut s.cache_local_capacity)?;
        env_parsed("CACHE_LOCAL_TTL_SECONDS", &mut s.cache_local_ttl_seconds)?;
        env_parsed("CART_TTL_SECONDS", &mut s.cart_ttl_seconds)?;
        if s.cart_ttl_seconds == 0 {
            anyhow::bail!("EMPORIUM_CART_TTL_SECONDS must be at least 1");
        }
        if let Some(v) = env("SEARCH_DIR") {
            s.search_dir = Some(v.into());
        }
        if let Some(v) = env("SMTP_URL") {
            s.smtp_url = Some(v);
        }
        if let Some(v) = env("SMTP_FROM") {
            s.smtp_from = v;
        }
        env_parsed("SMTP_MAX_ATTEMPTS", &mut s.smtp_max_attempts)?;
        if let Some(v) = env("SHOP_NAME") {
            s.shop_name = v;
        }
        env_parsed(
            "PASSWORD_RESET_TTL_SECONDS",
            &mut s.password_reset_ttl_seconds,
        )?;
        if let Some(v) = env("PASSWORD_RESET_URL") {
            s.password_reset_url = Some(v);
        }
        if s.password_reset_ttl_seconds == 0 {
            anyhow::bail!("EMPORIUM_PASSWORD_RESET_TTL_SECONDS must be at least 1");
        }
        if let Some(v) = env("CORS_ORIGINS") {
            s.cors_origins = Some(v);
        }
        if let Some(v) = env("TRUSTED_PROXIES") {
            s.trusted_proxies = Some(v);
        }
        settings.cors()?;
        settings.trusted_proxies()?;
        Ok(settings)
    }

    /// The proxies `EMPORIUM_TRUSTED_PROXIES` names; `None` when it is not set.
    ///
    /// # Errors
    /// An entry is neither an address nor a network.
    pub fn trusted_proxies(&self) -> anyhow::Result<Option<web::client_ip::TrustedProxies>> {
        parse_list(
            "TRUSTED_PROXIES",
            self.trusted_proxies.as_deref(),
            web::client_ip::TrustedProxies::parse,
        )
    }

    /// The origins `EMPORIUM_CORS_ORIGINS` allows; `None` when it is not set.
    ///
    /// # Errors
    /// An entry is not an origin.
    pub fn cors(&self) -> anyhow::Result<Option<web::cors::CorsOrigins>> {
        parse_list(
            "CORS_ORIGINS",
            self.cors_origins.as_deref(),
            web::cors::CorsOrigins::parse,
        )
    }

    /// The shared view cache's settings, when `EMPORIUM_REDIS_URL` is set.
    pub fn redis_cache(&self) -> Option<cache::RedisConfig> {
        let url = self.redis_url.as_deref()?;
        Some(cache::RedisConfig {
            namespace: self.cache_namespace.clone(),
            ttl: Duration::from_secs(self.cache_redis_ttl_seconds),
            command_timeout: Duration::from_millis(self.cache_timeout_ms),
            ..cache::RedisConfig::new(url)
        })
    }

    /// The signing key file: the setting, or `<data dir>/jwt-ed25519.pem`.
    pub fn signing_key_file(&self) -> PathBuf {
        self.jwt_private_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("jwt-ed25519.pem"))
    }

    /// The search index folder: the setting, or `<data dir>/search`.
    pub fn search_dir(&self) -> PathBuf {
        self.search_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("search"))
    }

    /// The e-mail settings: SMTP, or `.eml` files in `<data dir>/outbox`.
    pub fn email(&self) -> notifier::EmailConfig {
        notifier::EmailConfig {
            smtp_url: self.smtp_url.clone(),
            from: self.smtp_from.clone(),
            outbox_dir: self.data_dir.join("outbox"),
            shop_name: self.shop_name.clone(),
            max_attempts: self.smtp_max_attempts.max(1),
            ..notifier::EmailConfig::default()
        }
    }

    /// The effective configuration for humans, secrets masked.
    pub fn describe(&self) -> String {
        let mask = |v: &Option<String>| {
            v.as_ref()
                .map_or("(not set)".to_owned(), |_| "*** (set)".to_owned())
        };
        let url = |v: &Option<String>, none: &str| v.as_deref().map_or(none.to_owned(), mask_url);
        let rows: Vec<(&str, String)> = vec![
            ("ADDR", self.addr.clone()),
            ("DATA_DIR", self.data_dir.display().to_string()),
            ("DATABASE_URL", url(&self.database_url, "(embedded)")),
            ("EVENTSTORE_URL", url(&self.eventstore_url, "(embedded)")),
            ("NATS_URL", url(&self.nats_url, "(in-process bus)")),
            ("NATS_STREAM", self.nats_stream.clone()),
            (
                "NATS_NAMESPACE",
                self.nats_namespace
                    .clone()
                    .unwrap_or_else(|| "(none)".into()),
            ),
            (
                "BOOTSTRAP_ADMIN_USERNAME",
                self.bootstrap_admin_username.clone(),
            ),
            (
                "BOOTSTRAP_ADMIN_PASSWORD",
                mask(&self.bootstrap_admin_password),
            ),
            ("JWT_PRIVATE_KEY", mask(&self.jwt_private_key)),
            (
                "JWT_PRIVATE_KEY_FILE",
                self.signing_key_file().display().to_string(),
            ),
            (
                "ACCESS_TOKEN_TTL_SECONDS",
                self.access_token_ttl_seconds.to_string(),
            ),
            (
                "REFRESH_TOKEN_TTL_SECONDS",
                self.refresh_token_ttl_seconds.to_string(),
            ),
            (
                "RATE_LIMIT_SIGNUP_PER_MINUTE",
                self.rate_limit_signup_per_minute.to_string(),
            ),
            (
                "RATE_LIMIT_LOGIN_FAILURES_PER_MINUTE",
                self.rate_limit_login_failures_per_minute.to_string(),
            ),
            (
                "DATABASE_MAX_CONNECTIONS",
                self.database_pool_size().to_string(),
            ),
            (
                "AGGREGATE_CACHE_CAPACITY",
                self.aggregate_cache_capacity.to_string(),
            ),
            (
                "MIN_POSITION_WAIT_MS",
                self.min_position_wait_ms.to_string(),
            ),
            (
                "RESERVATION_TIMEOUT_SECONDS",
                self.reservation_timeout_seconds.to_string(),
            ),
            (
                "WEBHOOK_ALLOW_PRIVATE",
                self.webhook_allow_private.to_string(),
            ),
            (
                "WEBHOOK_MAX_ATTEMPTS",
                self.webhook_max_attempts.to_string(),
            ),
            (
                "WEBHOOK_RETRY_BASE_MS",
                self.webhook_retry_base_ms.to_string(),
            ),
            ("WEBHOOK_TIMEOUT_MS", self.webhook_timeout_ms.to_string()),
            (
                "REDIS_URL",
                url(&self.redis_url, "(not set: in-process cache, carts in SQL)"),
            ),
            ("CACHE_NAMESPACE", self.cache_namespace.clone()),
            (
                "CACHE_REDIS_TTL_SECONDS",
                self.cache_redis_ttl_seconds.to_string(),
            ),
            ("CACHE_TIMEOUT_MS", self.cache_timeout_ms.to_string()),
            (
                "CACHE_LOCAL_CAPACITY",
                self.cache_local_capacity.to_string(),
            ),
            (
                "CACHE_LOCAL_TTL_SECONDS",
                self.cache_local_ttl_seconds.to_string(),
            ),
            ("CART_TTL_SECONDS", self.cart_ttl_seconds.to_string()),
            ("SEARCH_DIR", self.search_dir().display().to_string()),
            (
                "SMTP_URL",
                url(
                    &self.smtp_url,
                    &format!(
                        "(not set: e-mails go to {})",
                        self.data_dir.join("outbox").display()
                    ),
                ),
            ),
            ("SMTP_FROM", self.smtp_from.clone()),
            ("SMTP_MAX_ATTEMPTS", self.smtp_max_attempts.to_string()),
            ("SHOP_NAME", self.shop_name.clone()),
            (
                "PASSWORD_RESET_TTL_SECONDS",
                self.password_reset_ttl_seconds.to_string(),
            ),
            (
                "PASSWORD_RESET_URL",
                self.password_reset_url
                    .clone()
                    .unwrap_or_else(|| "(not set: the e-mail shows the token)".into()),
            ),
            (
                "CORS_ORIGINS",
                self.cors_origins
                    .clone()
                    .unwrap_or_else(|| "(not set: same origin only)".into()),
            ),
            (
                "TRUSTED_PROXIES",
                self.trusted_proxies
                    .clone()
                    .unwrap_or_else(|| "(not set: the peer is the client)".into()),
            ),
        ];
        rows.into_iter()
            .map(|(name, value)| format!("{:<46}{value}", format!("EMPORIUM_{name}")))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// A URL with its password replaced by `***`.
fn mask_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            let user = credentials.split(':').next().unwrap_or_default();
            format!("{}{user}:***{}", &url[..scheme + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{Settings, mask_url};

    /// The settings read from a file holding `line`.
    fn from_file(line: &str) -> anyhow::Result<Settings> {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("emporium.toml");
        std::fs::write(&file, format!("{line}\n")).unwrap();
        Settings::from_env(Some(&file))
    }

    #[test]
    fn cors_origins_are_checked_when_the_settings_are_read() {
        let err = from_file("cors_origins = \"shop.example\"")
            .err()
            .expect("refused");
        assert!(err.to_string().contains("EMPORIUM_CORS_ORIGINS"), "{err}");
        let settings = from_file("cors_origins = \"https://shop.example\"").unwrap();
        assert!(settings.cors().unwrap().is_some());
        assert!(Settings::default().cors().unwrap().is_none());
    }

    #[test]
    fn trusted_proxies_are_checked_when_the_settings_are_read() {
        let err = from_file("trusted_proxies = \"nginx\"")
            .err()
            .expect("refused");
        assert!(
            err.to_string().contains("EMPORIUM_TRUSTED_PROXIES"),
            "{err}"
        );
        let settings = from_file("trusted_proxies = \"172.16.0.0/12\"").unwrap();
        assert!(settings.trusted_proxies().unwrap().is_some());
    }

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(
            mask_url("postgres://app:s3cret@db:5432/shop"),
            "postgres://app:***@db:5432/shop"
        );
        assert_eq!(mask_url("postgres://db/shop"), "postgres://db/shop");
    }
}
