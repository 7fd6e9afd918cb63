//! The application state handlers share: cheap to clone, everything behind `Arc`s.
use std::sync::Arc;

use axum::extract::FromRef;
use web::JwtVerifier;

use crate::{auth::Auth, claims::Claims, idempotency::IdempotencyKeys, service::CommandService};

/// Shared state of the command API.
#[derive(Clone)]
pub struct AppState {
    /// Load, decide, append.
    pub commands: CommandService,
    /// Unique keys (e-mail, mobile number, username, SKU).
    pub claims: Claims,
    /// Passwords, tokens, rate limits.
    pub auth: Arc<Auth>,
    /// Access-token verification.
    pub verifier: Arc<JwtVerifier>,
    /// Replays of commands retried with the same `Idempotency-Key`.
    pub idempotency: IdempotencyKeys,
}

impl FromRef<AppState> for Arc<JwtVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}
