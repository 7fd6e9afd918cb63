//! Settings: defaults, then an optional TOML file, then `EMPORIUM_*` environment
//! variables. Secrets are kept out of `Debug` and masked by `describe`.
use std::{path::Path, path::PathBuf};

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
    /// `EMPORIUM_DATABASE_MAX_CONNECTIONS`.
    pub database_max_connections: u32,
    /// `EMPORIUM_AGGREGATE_CACHE_CAPACITY`: aggregates kept in memory by the command side.
    pub aggregate_cache_capacity: u64,
    /// `EMPORIUM_MIN_POSITION_WAIT_MS`: how long a query waits for `X-Emporium-Min-Position`.
    pub min_position_wait_ms: u64,
    /// `EMPORIUM_RESERVATION_TIMEOUT_SECONDS`: a reservation whose order has not appeared
    /// after this long is released by the sweeper (far longer than placing an order takes).
    pub reservation_timeout_seconds: u64,
    /// `EMPORIUM_SEARCH_DIR`: this query node's own search index (default
    /// `<data dir>/search`); deleted or unreadable, it is rebuilt from the log.
    pub search_dir: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            eventstore_url: None,
            bootstrap_admin_username: "admin".into(),
            bootstrap_admin_password: None,
            jwt_private_key: None,
            jwt_private_key_file: None,
            access_token_ttl_seconds: 15 * 60,
            refresh_token_ttl_seconds: 30 * 24 * 3600,
            rate_limit_signup_per_minute: 20,
            rate_limit_login_failures_per_minute: 10,
            database_max_connections: 16,
            aggregate_cache_capacity: 100_000,
            min_position_wait_ms: 5_000,
            reservation_timeout_seconds: 15 * 60,
            search_dir: None,
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(format!("EMPORIUM_{name}"))
        .ok()
        .filter(|v| !v.is_empty())
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
        env_parsed("DATABASE_MAX_CONNECTIONS", &mut s.database_max_connections)?;
        env_parsed("AGGREGATE_CACHE_CAPACITY", &mut s.aggregate_cache_capacity)?;
        env_parsed("MIN_POSITION_WAIT_MS", &mut s.min_position_wait_ms)?;
        env_parsed(
            "RESERVATION_TIMEOUT_SECONDS",
            &mut s.reservation_timeout_seconds,
        )?;
        if let Some(v) = env("SEARCH_DIR") {
            s.search_dir = Some(v.into());
        }
        Ok(settings)
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

    /// The effective configuration for humans, secrets masked.
    pub fn describe(&self) -> String {
        let mask = |v: &Option<String>| {
            v.as_ref()
                .map_or("(not set)".to_owned(), |_| "*** (set)".to_owned())
        };
        let url = |v: &Option<String>| v.as_deref().map_or("(embedded)".to_owned(), mask_url);
        [
            format!(
                "EMPORIUM_ADDR                                 {}",
                self.addr
            ),
            format!(
                "EMPORIUM_DATA_DIR                             {}",
                self.data_dir.display()
            ),
            format!(
                "EMPORIUM_DATABASE_URL                         {}",
                url(&self.database_url)
            ),
            format!(
                "EMPORIUM_EVENTSTORE_URL                       {}",
                url(&self.eventstore_url)
            ),
            format!(
                "EMPORIUM_BOOTSTRAP_ADMIN_USERNAME             {}",
                self.bootstrap_admin_username
            ),
            format!(
                "EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD             {}",
                mask(&self.bootstrap_admin_password)
            ),
            format!(
                "EMPORIUM_JWT_PRIVATE_KEY                      {}",
                mask(&self.jwt_private_key)
            ),
            format!(
                "EMPORIUM_JWT_PRIVATE_KEY_FILE                 {}",
                self.signing_key_file().display()
            ),
            format!(
                "EMPORIUM_ACCESS_TOKEN_TTL_SECONDS             {}",
                self.access_token_ttl_seconds
            ),
            format!(
                "EMPORIUM_REFRESH_TOKEN_TTL_SECONDS            {}",
                self.refresh_token_ttl_seconds
            ),
            format!(
                "EMPORIUM_RATE_LIMIT_SIGNUP_PER_MINUTE         {}",
                self.rate_limit_signup_per_minute
            ),
            format!(
                "EMPORIUM_RATE_LIMIT_LOGIN_FAILURES_PER_MINUTE {}",
                self.rate_limit_login_failures_per_minute
            ),
            format!(
                "EMPORIUM_DATABASE_MAX_CONNECTIONS             {}",
                self.database_max_connections
            ),
            format!(
                "EMPORIUM_AGGREGATE_CACHE_CAPACITY             {}",
                self.aggregate_cache_capacity
            ),
            format!(
                "EMPORIUM_SEARCH_DIR                           {}",
                self.search_dir().display()
            ),
        ]
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
    use super::mask_url;

    #[test]
    fn urls_lose_their_passwords() {
        assert_eq!(
            mask_url("postgres://app:s3cret@db:5432/shop"),
            "postgres://app:***@db:5432/shop"
        );
        assert_eq!(mask_url("postgres://db/shop"), "postgres://db/shop");
    }
}
