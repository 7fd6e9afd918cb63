//! One module per resource, each with `router()` and thin, documented handlers.
use axum::{
    extract::{FromRef, FromRequestParts, Query},
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

/// The page parameters of a page-numbered list, with the bounds every such list enforces
/// ([`crate::paging::parse`], and the product and order lists' own parsers).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the parameters
pub struct PageParams {
    /// Page number, from 1.
    #[param(minimum = 1, maximum = 1000000)]
    page: Option<u32>,
    /// Items per page, 1 to 100 (default 20).
    #[param(rename = "pageSize", minimum = 1, maximum = 100)]
    page_size: Option<u32>,
    /// Answer only once this log position is reflected (also `X-Emporium-Min-Position`).
    #[param(rename = "minPosition", value_type = Option<i64>, minimum = 0)]
    min_position: Option<u64>,
}

/// `query` as the [`QueryPairs`] extractor gives it, for the parsers' unit tests.
#[cfg(test)]
pub(crate) fn pairs_of(query: &[(&str, &str)]) -> Vec<(String, String)> {
    query
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// The query string's pairs, in order and repeats kept (each list's parser refuses what it
/// does not take); a query string that does not decode is a 400 `invalid_query`.
#[derive(Clone, Debug)]
pub struct QueryPairs(pub Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for QueryPairs {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<Vec<(String, String)>>::from_request_parts(parts, state)
            .await
            .map(|Query(pairs)| Self(pairs))
            .map_err(|e| ApiError::invalid_query(e.body_text()))
    }
}
