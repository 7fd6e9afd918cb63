//! `POST /api/v1/auth/{register,login,refresh,logout}`: customer sign-up and the token
//! life cycle. The work is in [`crate::auth::flows`].
use std::{convert::Infallible, net::IpAddr, net::SocketAddr, sync::Arc};

use axum::{
    extract::{ConnectInfo, FromRequestParts, State},
    http::{StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use domain::account::Gender;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use web::{ApiError, AppJson, AuthUser, Problem, client_ip::TrustedProxies};

use super::CommandAnswer;
use crate::{
    auth::{IssuedTokens, flows},
    idempotency::KeyedRequest,
    state::AppState,
};

/// The auth routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(request_password_reset))
        .routes(routes!(confirm_password_reset))
        .routes(routes!(change_password))
}

/// The client's IP address, when the server was started with connect info (it always is;
/// in-process tests without a socket have none, and are then not rate limited by IP).
/// Behind trusted proxies (an `Arc<TrustedProxies>` request extension, from
/// `EMPORIUM_TRUSTED_PROXIES`), the address they forwarded.
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Infallible> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|info| info.0.ip());
        let trusted = parts.extensions.get::<Arc<TrustedProxies>>();
        Ok(Self(match (peer, trusted) {
            (Some(peer), Some(trusted)) => Some(trusted.client(peer, &parts.headers)),
            (peer, _) => peer,
        }))
    }
}

/// A customer's sign-up.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegisterRequest {
    /// Display name, 1–100 characters.
    #[schema(example = "Ada Lovelace")]
    pub name: String,
    /// E-mail address; also the username. Must not belong to another account.
    #[schema(example = "ada@example.com")]
    pub email: String,
    /// Mobile number: 7–15 digits, optionally after `+`; spaces and dashes are ignored.
    /// Must not belong to another account.
    #[schema(example = "+44 7700 900123")]
    pub mobile_number: String,
    /// `FEMALE`, `MALE`, `OTHER` or `UNSPECIFIED`.
    #[serde(default)]
    #[schema(value_type = Option<super::names::GenderName>, example = "FEMALE")]
    pub gender: Option<Gender>,
    /// 8–128 characters.
    #[schema(example = "correct horse battery staple", format = Password)]
    pub password: String,
}

impl From<RegisterRequest> for flows::SignUp {
    fn from(body: RegisterRequest) -> Self {
        Self {
            name: body.name,
            email: body.email,
            mobile_number: body.mobile_number,
            gender: body.gender,
            password: body.password,
        }
    }
}

/// Credentials.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LoginRequest {
    /// An e-mail address, a mobile number or a back-office username.
    #[schema(example = "ada@example.com")]
    pub username: String,
    /// The password.
    #[schema(format = Password)]
    pub password: String,
}

/// A refresh token, to rotate or revoke.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RefreshRequest {
    /// The refresh token from the last login or refresh.
    pub refresh_token: String,
}

/// A signed-in caller's new password.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChangePasswordRequest {
    /// The password the account has now.
    #[schema(format = Password)]
    pub current_password: String,
    /// 8–128 characters.
    #[schema(format = Password)]
    pub new_password: String,
}

/// A signed-in session's tokens.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    /// Access token (JWT, EdDSA): send as `Authorization: Bearer <token>`.
    pub access_token: String,
    /// Refresh token: single use; trade it at `/api/v1/auth/refresh` for a new pair.
    pub refresh_token: String,
    /// Always `Bearer`.
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    #[schema(example = 900)]
    pub expires_in: u64,
}

impl TokenResponse {
    /// The tokens as a response that no cache may store (RFC 6749 §5.1).
    fn respond(tokens: IssuedTokens) -> Response {
        let body = Self {
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            token_type: "Bearer",
            expires_in: tokens.expires_in,
        };
        ([(header::CACHE_CONTROL, "no-store")], AppJson(body)).into_response()
    }
}

/// Sign up as a customer.
///
/// Rate limited per client IP (429 with `Retry-After`).
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses(
        (status = 201, description = "the account was opened", body = CommandAnswer),
        (status = 409, description = "`email_taken` or `mobile_taken` (the `field` member says which)", body = Problem),
        (status = 422, description = "invalid fields, each listed in `errors`", body = Problem),
        (status = 429, description = "too many sign-ups from this address", body = Problem)))]
async fn register(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    keyed: Option<KeyedRequest>,
    AppJson(body): AppJson<RegisterRequest>,
) -> Result<Response, ApiError> {
    let (id, done) = flows::register_customer(&state, ip, keyed, body.into()).await?;
    Ok(CommandAnswer::new(id, done.version, done.position).respond(StatusCode::CREATED))
}

/// Sign in: trade credentials for an access token and a refresh token.
///
/// Failed attempts are rate limited per username and per client IP (429).
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "wrong username or password (one answer for both)", body = Problem),
        (status = 403, description = "`account_locked`", body = Problem),
        (status = 429, description = "too many failed attempts", body = Problem)))]
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    AppJson(body): AppJson<LoginRequest>,
) -> Result<Response, ApiError> {
    let tokens = flows::login(&state, ip, &body.username, &body.password).await?;
    Ok(TokenResponse::respond(tokens))
}

/// Rotate a refresh token: it is used up and a new pair is issued. Presenting a token
/// that was already used revokes every token of its session.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "the token is unknown, expired, used or revoked", body = Problem)))]
async fn refresh(
    State(state): State<AppState>,
    AppJson(body): AppJson<RefreshRequest>,
) -> Result<Response, ApiError> {
    let tokens = flows::refresh(&state, &body.refresh_token).await?;
    Ok(TokenResponse::respond(tokens))
}

/// Change the signed-in account's password (any role), proven by the current one.
///
/// Every session of the account ends: its refresh tokens and the access tokens issued
/// before are revoked (at once here, within a second on the other nodes), and the answer
/// is a new pair for the caller. A wrong current password counts as a failed login of the
/// account (429 past the limit). Of two changes proven by the same current password, only
/// the first is made: the other is a 409 `password_changed`.
#[utoipa::path(post, path = "/api/v1/auth/password", tag = "auth", security(("bearer" = [])),
    request_body = ChangePasswordRequest,
    responses(
        (status = 200, description = "changed; the caller's new session", body = TokenResponse),
        (status = 401, body = Problem),
        (status = 403, description = "`account_locked`", body = Problem),
        (status = 409, description = "`password_changed`: another change came first", body = Problem),
        (status = 422, description = "`currentPassword` is wrong, or `newPassword` invalid", body = Problem),
        (status = 429, description = "too many failed attempts", body = Problem)))]
async fn change_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    user: AuthUser,
    AppJson(body): AppJson<ChangePasswordRequest>,
) -> Result<Response, ApiError> {
    let tokens =
        flows::change_password(&state, ip, user, &body.current_password, &body.new_password)
            .await?;
    Ok(TokenResponse::respond(tokens))
}

/// Sign out: revoke the refresh token and every token of its session.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", request_body = RefreshRequest,
    responses((status = 204, description = "signed out (also for an unknown token)"), (status = 400, body = Problem)))]
async fn logout(
    State(state): State<AppState>,
    AppJson(body): AppJson<RefreshRequest>,
) -> Result<Response, ApiError> {
    flows::logout(&state, &body.refresh_token).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Asks for a password-reset e-mail.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PasswordResetRequest {
    /// The account's e-mail address.
    #[schema(example = "ada@example.com")]
    pub email: String,
}

/// Sets a new password with the token from the e-mail.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PasswordResetConfirmation {
    /// The one-time token from the reset e-mail.
    pub token: String,
    /// 8–128 characters.
    #[schema(format = Password)]
    pub new_password: String,
}

/// Ask for a password-reset e-mail with a one-time token.
///
/// The answer is 202 whether or not an account has this address, so it tells nobody which
/// addresses have accounts. The token expires (an hour by default) and works once.
/// Rate limited per client IP (429).
#[utoipa::path(post, path = "/api/v1/auth/password-reset", tag = "auth", request_body = PasswordResetRequest,
    responses(
        (status = 202, description = "if an account has this address, a reset e-mail is on its way"),
        (status = 422, description = "not an e-mail address", body = Problem),
        (status = 429, description = "too many requests from this address", body = Problem)))]
async fn request_password_reset(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    AppJson(body): AppJson<PasswordResetRequest>,
) -> Result<Response, ApiError> {
    flows::request_password_reset(&state, ip, &body.email).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// Set a new password with the token from the reset e-mail.
///
/// The token is used up and every refresh token of the account is revoked (access tokens
/// already issued expire on their own, within minutes).
#[utoipa::path(post, path = "/api/v1/auth/password-reset/confirm", tag = "auth", request_body = PasswordResetConfirmation,
    responses(
        (status = 200, description = "the password was changed", body = CommandAnswer),
        (status = 400, description = "`invalid_reset_token`: unknown, expired or already used", body = Problem),
        (status = 422, description = "the new password does not meet the rules", body = Problem)))]
async fn confirm_password_reset(
    State(state): State<AppState>,
    AppJson(body): AppJson<PasswordResetConfirmation>,
) -> Result<Response, ApiError> {
    let (id, done) = flows::confirm_password_reset(&state, &body.token, &body.new_password).await?;
    Ok(CommandAnswer::new(id, done.version, done.position).respond(StatusCode::OK))
}

#[cfg(test)]
mod tests {
    use axum::{Router, body::Body, http::Request, routing::get};
    use tower::ServiceExt;

    use super::*;

    async fn ip(ClientIp(ip): ClientIp) -> String {
        ip.map_or_else(|| "none".to_owned(), |ip| ip.to_string())
    }

    async fn answer(request: Request<Body>) -> String {
        let response = Router::new()
            .route("/", get(ip))
            .oneshot(request)
            .await
            .unwrap();
        let bytes = axum::body::to_bytes(response.into_body(), 1024)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn the_client_ip_comes_from_connect_info_if_there_is_any() {
        let request = || Request::get("/").body(Body::empty()).unwrap();
        assert_eq!(answer(request()).await, "none");
        let mut with_info = request();
        with_info
            .extensions_mut()
            .insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 7], 4242))));
        assert_eq!(answer(with_info).await, "192.0.2.7");
    }

    #[tokio::test]
    async fn behind_a_trusted_proxy_the_client_ip_is_the_forwarded_one() {
        let request = |trusted: Option<&str>| {
            let mut request = Request::get("/")
                .header("x-forwarded-for", "203.0.113.9")
                .body(Body::empty())
                .unwrap();
            request
                .extensions_mut()
                .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 2], 4242))));
            if let Some(trusted) = trusted {
                request
                    .extensions_mut()
                    .insert(Arc::new(TrustedProxies::parse(trusted).unwrap()));
            }
            request
        };
        assert_eq!(answer(request(Some("10.0.0.0/8"))).await, "203.0.113.9");
        assert_eq!(answer(request(Some("192.0.2.1"))).await, "10.0.0.2");
        assert_eq!(answer(request(None)).await, "10.0.0.2", "nobody trusted");
    }
}
