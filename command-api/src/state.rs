//! The application state handlers share: cheap to clone, everything behind `Arc`s.
use std::sync::Arc;

use axum::extract::FromRef;
use web::JwtVerifier;

use crate::{
    auth::Auth,
    carts::{CartStore, Carts},
    claims::Claims,
    idempotency::IdempotencyKeys,
    placements::Placements,
    service::CommandService,
};

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
    /// Carts and wishlists.
    pub carts: Carts,
    /// The group committer of orders, when the store appends to several streams in one
    /// transaction (else orders take the one-append-per-stream path).
    pub placements: Option<Placements>,
}

impl AppState {
    /// The same state with carts and wishlists kept in `store` (by default they are in
    /// the SQL database).
    #[must_use]
    pub fn with_cart_store(mut self, store: Arc<dyn CartStore>) -> Self {
        self.carts = Carts::new(store);
        self
    }
}

impl FromRef<AppState> for Arc<JwtVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}
