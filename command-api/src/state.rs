//! The application state handlers share: one `Arc`, cheap to clone.
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

/// Shared state of the command API: one `Arc`. axum clones the state for every request
/// (and for each extractor that takes a part of it), so the parts, each holding caches,
/// channel senders and `Arc`s of their own, are cloned once, when the state is built.
#[derive(Clone)]
pub struct AppState(Arc<AppParts>);

impl std::ops::Deref for AppState {
    type Target = AppParts;

    fn deref(&self) -> &AppParts {
        &self.0
    }
}

/// What [`AppState`] shares.
#[derive(Clone)]
pub struct AppParts {
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
    /// The state sharing `parts`.
    #[must_use]
    pub fn new(parts: AppParts) -> Self {
        Self(Arc::new(parts))
    }

    /// The same state with carts and wishlists kept in `store` (by default they are in
    /// the SQL database).
    #[must_use]
    pub fn with_cart_store(mut self, store: Arc<dyn CartStore>) -> Self {
        Arc::make_mut(&mut self.0).carts = Carts::new(store);
        self
    }
}

impl FromRef<AppState> for Arc<JwtVerifier> {
    fn from_ref(state: &AppState) -> Self {
        state.verifier.clone()
    }
}
