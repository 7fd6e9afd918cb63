//! Emporium's notifier: a downstream subscriber of the integration events that sends
//! e-mails and signed webhooks, at least once, checkpointed like any projection.
//!
//! - [`webhooks`]: endpoints (admin API), deliveries, signing, the delivery worker.
//! - [`ssrf`]: the guard that keeps webhooks off internal addresses.
#![deny(missing_docs)]

pub mod ssrf;
pub mod webhooks;
