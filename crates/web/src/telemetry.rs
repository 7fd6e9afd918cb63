//! Logging: JSON lines by default (`EMPORIUM_LOG_FORMAT=pretty` for humans), filtered by
//! `EMPORIUM_LOG` (or `RUST_LOG`), e.g. `info,sqlx=warn`.
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

/// Installs the global subscriber once; later calls (tests) do nothing.
pub fn init() {
    let filter = std::env::var("EMPORIUM_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info,sqlx=warn,tower_http=info".into());
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let pretty = std::env::var("EMPORIUM_LOG_FORMAT").is_ok_and(|f| f == "pretty");
    let registry = tracing_subscriber::registry().with(filter);
    let _ = if pretty {
        registry.with(fmt::layer().with_target(false)).try_init()
    } else {
        registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true),
            )
            .try_init()
    };
}
