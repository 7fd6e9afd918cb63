//! Extractors whose rejections are problem documents: [`AppJson`] for bodies,
//! [`AuthUser`] for bearer tokens and [`Authorized`] for a role on top.
use std::{marker::PhantomData, ops::Deref, sync::Arc};

use axum::{
    body::Bytes,
    extract::{FromRef, FromRequest, FromRequestParts, Request, rejection::JsonRejection},
    http::{header, request::Parts},
    response::{IntoResponse, Response},
};
use domain::{account::Role, ids::AccountId};
use serde::{Serialize, de::DeserializeOwned};

use crate::{ApiError, JwtVerifier, nul};

/// JSON body extractor and responder. Bodies that do not parse, carry unknown fields or
/// have the wrong content type become 4xx problems instead of axum's plain-text answers.
/// A string holding the NUL character (`\u0000`) is a 422 at its field: PostgreSQL cannot
/// store it in text or JSONB, so it would fail deep in a write, after checks had passed.
#[derive(Debug, Clone, Copy, Default)]
pub struct AppJson<T>(pub T);

impl<S, T> FromRequest<S> for AppJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let (parts, body) = req.into_parts();
        let bytes = Bytes::from_request(Request::from_parts(parts.clone(), body), state)
            .await
            .map_err(|_| ApiError::PayloadTooLarge)?;
        let again = Request::from_parts(parts, axum::body::Body::from(bytes.clone()));
        let value = match axum::Json::<T>::from_request(again, state).await {
            Ok(axum::Json(value)) => value,
            Err(rejection) => return Err(json_rejection(&rejection)),
        };
        nul::check_json(&bytes)?;
        Ok(Self(value))
    }
}

fn json_rejection(rejection: &JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(err) => {
            // serde's message names the field and what it expected; internals it does not leak.
            let detail =
                std::error::Error::source(err).map_or_else(|| err.body_text(), ToString::to_string);
            ApiError::BadRequest {
                code: "invalid_body",
                detail,
            }
        }
        JsonRejection::JsonSyntaxError(_) => ApiError::BadRequest {
            code: "malformed_json",
            detail: "the body is not valid JSON".into(),
        },
        JsonRejection::MissingJsonContentType(_) => {
            ApiError::UnsupportedMediaType("send the body as application/json".into())
        }
        JsonRejection::BytesRejection(_) => ApiError::PayloadTooLarge,
        _ => ApiError::BadRequest {
            code: "invalid_body",
            detail: rejection.body_text(),
        },
    }
}

impl<T: Serialize> IntoResponse for AppJson<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive, as
/// RFC 7235 says), trimmed; `None` for any other header.
pub fn bearer_token(header: &axum::http::HeaderValue) -> Option<&str> {
    let value = header.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

/// The authenticated caller, from a verified `Authorization: Bearer` access token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuthUser {
    /// The account.
    pub id: AccountId,
    /// Its role when the token was issued.
    pub role: Role,
}

impl AuthUser {
    /// Fails with 403 unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden("your role may not do this"))
        }
    }

    /// Admins and staff: the back office.
    pub fn is_staff(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Staff)
    }
}

impl<S> FromRequestParts<S> for AuthUser
where
    Arc<JwtVerifier>: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let verifier = Arc::<JwtVerifier>::from_ref(state);
        let header = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))?;
        let token = bearer_token(header).ok_or_else(|| {
            ApiError::Unauthorized("the Authorization header must be `Bearer <token>`".into())
        })?;
        let claims = verifier.verify(token)?;
        Ok(Self {
            id: claims.sub,
            role: claims.role,
        })
    }
}

/// The roles an endpoint admits.
pub trait Roles: Send + Sync + 'static {
    /// Every role that may call it.
    const ROLES: &'static [Role];
}

/// Admins only.
#[derive(Debug)]
pub struct Admins;

impl Roles for Admins {
    const ROLES: &'static [Role] = &[Role::Admin];
}

/// Admins and staff: the back office.
#[derive(Debug)]
pub struct BackOffice;

impl Roles for BackOffice {
    const ROLES: &'static [Role] = &[Role::Admin, Role::Staff];
}

/// Customers only.
#[derive(Debug)]
pub struct Customers;

impl Roles for Customers {
    const ROLES: &'static [Role] = &[Role::Customer];
}

/// An authenticated caller with one of `R`'s roles: 401 without a valid token, 403 with
/// another role. As an extractor it runs before the body is read, so a caller who may not
/// use an endpoint learns only that, never what its body would have to be.
#[derive(Debug)]
pub struct Authorized<R> {
    user: AuthUser,
    roles: PhantomData<fn() -> R>,
}

impl<R: Roles> Authorized<R> {
    /// `user`, if one of `R`'s roles is theirs.
    pub fn check(user: AuthUser) -> Result<Self, ApiError> {
        user.require(R::ROLES)?;
        Ok(Self {
            user,
            roles: PhantomData,
        })
    }
}

impl<R> Deref for Authorized<R> {
    type Target = AuthUser;

    fn deref(&self) -> &AuthUser {
        &self.user
    }
}

impl<S, R> FromRequestParts<S> for Authorized<R>
where
    Arc<JwtVerifier>: FromRef<S>,
    S: Send + Sync,
    R: Roles,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Self::check(AuthUser::from_request_parts(parts, state).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(role: Role) -> AuthUser {
        AuthUser {
            id: AccountId::new(uuid::Uuid::now_v7()),
            role,
        }
    }

    fn admitted<R: Roles>(role: Role) -> bool {
        Authorized::<R>::check(caller(role)).is_ok()
    }

    #[test]
    fn each_role_set_admits_its_roles_only() {
        assert!(admitted::<Admins>(Role::Admin));
        assert!(!admitted::<Admins>(Role::Staff));
        assert!(!admitted::<Admins>(Role::Customer));
        assert!(admitted::<BackOffice>(Role::Admin));
        assert!(admitted::<BackOffice>(Role::Staff));
        assert!(!admitted::<BackOffice>(Role::Customer));
        assert!(admitted::<Customers>(Role::Customer));
        assert!(!admitted::<Customers>(Role::Admin));
        assert!(!admitted::<Customers>(Role::Staff));
    }

    #[test]
    fn a_refused_role_is_forbidden_and_an_admitted_caller_is_kept() {
        let err = Authorized::<Admins>::check(caller(Role::Customer)).unwrap_err();
        assert!(matches!(err, ApiError::Forbidden { .. }), "{err:?}");
        let staff = caller(Role::Staff);
        let authorized = Authorized::<BackOffice>::check(staff).unwrap();
        assert_eq!(*authorized, staff);
    }
}
