//! Shared HTTP glue for Emporium's command and query APIs.
//!
//! One error type ([`ApiError`]) rendered as RFC 9457 `application/problem+json` with a
//! stable `code`; a JSON extractor whose rejections are problems too; the bearer-token
//! extractor that verifies access tokens with the public key only; request metrics for
//! Prometheus; health probes; logging set-up and graceful shutdown. Handlers stay thin
//! because every mapping lives here, once.
#![deny(missing_docs)]

pub mod client_ip;
pub mod cors;
mod domain_errors;
pub mod error;
pub mod etag;
pub mod extract;
pub mod health;
pub mod jwt;
pub mod layers;
pub mod metrics;
pub mod nul;
pub mod openapi;
pub mod revocations;
pub mod server;
pub mod shutdown;
pub mod telemetry;

pub use error::{ApiError, Problem};
pub use extract::{Admins, AppJson, AuthUser, Authorized, BackOffice, Customers, Roles};
pub use jwt::{AccessClaims, JwtVerifier};
