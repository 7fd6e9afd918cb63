//! One module per resource, each with `router()` and thin, documented handlers.
use axum::{
    extract::{FromRef, FromRequestParts},
    http::{header, request::Parts},
};
use std::sync::Arc;
use web::{ApiError, AuthUser, JwtVerifier};

pub mod accounts;
pub mod analytics;
pub mod customers;
pub mod inventory;
pub mod orders;
pub mod products;
pub mod recommendations;
pub mod search;

/// The caller when a bearer token is sent, `None` when none is: for public routes that
/// show more to the back office. A token that is sent must be valid (401 otherwise).
#[derive(Clone, Copy, Debug)]
pub struct MaybeAuthUser(pub Option<AuthUser>);

impl MaybeAuthUser {
    /// Whether the caller is an admin or staff member.
    pub fn is_staff(&self) -> bool {
        self.0.is_some_and(|user| user.is_staff())
    }
}

impl<S> FromRequestParts<S> for MaybeAuthUser
where
    Arc<JwtVerifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        if !parts.headers.contains_key(header::AUTHORIZATION) {
            return Ok(Self(None));
        }
        AuthUser::from_request_parts(parts, state)
            .await
            .map(|user| Self(Some(user)))
    }
}
