//! `POST /api/v1/admin/accounts` and `…/{id}/lock`, `…/{id}/unlock`: back-office
//! account management, for admins only.
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use domain::{account::Role, ids::AccountId};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use web::{Admins, ApiError, AppJson, Authorized, Problem};

use super::{CommandAnswer, parse_id};
use crate::{
    auth::flows, bootstrap::create_back_office_account, idempotency::KeyedRequest,
    service::CommandMeta, state::AppState,
};

/// The account management routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(lock))
        .routes(routes!(unlock))
}

/// A new back-office account.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateAccountRequest {
    /// `ADMIN` or `STAFF` (customers sign up themselves).
    #[schema(value_type = super::names::BackOfficeRole, example = "STAFF")]
    pub role: Role,
    /// Login name: 3–64 of `a-z 0-9 . _ -`, starting with a letter; case-insensitive.
    #[schema(example = "ops.lead")]
    pub username: String,
    /// Display name, 1–100 characters.
    #[schema(example = "Grace Hopper")]
    pub name: String,
    /// 8–128 characters.
    #[schema(format = Password)]
    pub password: String,
}

/// Why an account is locked.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LockRequest {
    /// 1–200 characters, kept in the account's history.
    #[schema(example = "chargeback fraud")]
    pub reason: String,
}

/// Create an admin or staff account (admin).
#[utoipa::path(post, path = "/api/v1/admin/accounts", tag = "accounts", security(("bearer" = ["ADMIN"])),
    request_body = CreateAccountRequest,
    responses(
        (status = 201, body = CommandAnswer),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 409, description = "`username_taken`", body = Problem),
        (status = 422, description = "invalid fields (a `CUSTOMER` role included)", body = Problem)))]
async fn create(
    State(state): State<AppState>,
    user: Authorized<Admins>,
    keyed: Option<KeyedRequest>,
    AppJson(body): AppJson<CreateAccountRequest>,
) -> Result<Response, ApiError> {
    let meta = CommandMeta::for_request(format!("account-{}", user.id), keyed);
    let (id, done) = create_back_office_account(
        &state,
        // Named by its request when keyed: a run after a crash finds the account.
        AccountId::new(KeyedRequest::id_or_new(keyed)),
        body.role,
        &body.username,
        &body.name,
        &body.password,
        &meta,
    )
    .await?;
    Ok(CommandAnswer::new(id, done.version, done.position).respond(StatusCode::CREATED))
}

/// Lock an account (admin): it can no longer sign in, and its refresh tokens and the
/// access tokens it holds are revoked (refused at once by this node, within a second by
/// the others).
#[utoipa::path(post, path = "/api/v1/admin/accounts/{id}/lock", tag = "accounts", security(("bearer" = ["ADMIN"])),
    params(("id" = uuid::Uuid, Path, description = "account id")), request_body = LockRequest,
    responses(
        (status = 200, body = CommandAnswer),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "already locked (`lock_state`)", body = Problem),
        (status = 422, description = "invalid reason, or `cannot_lock_self`", body = Problem)))]
async fn lock(
    State(state): State<AppState>,
    user: Authorized<Admins>,
    keyed: Option<KeyedRequest>,
    Path(id): Path<String>,
    AppJson(body): AppJson<LockRequest>,
) -> Result<Response, ApiError> {
    let id: AccountId = parse_id(&id, "account")?;
    let done = flows::lock_account(&state, *user, keyed, id, body.reason).await?;
    Ok(CommandAnswer::new(id, done.version, done.position).respond(StatusCode::OK))
}

/// Unlock a locked account (admin).
#[utoipa::path(post, path = "/api/v1/admin/accounts/{id}/unlock", tag = "accounts", security(("bearer" = ["ADMIN"])),
    params(("id" = uuid::Uuid, Path, description = "account id")),
    responses(
        (status = 200, body = CommandAnswer),
        (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 409, description = "not locked (`lock_state`)", body = Problem)))]
async fn unlock(
    State(state): State<AppState>,
    user: Authorized<Admins>,
    keyed: Option<KeyedRequest>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id: AccountId = parse_id(&id, "account")?;
    let done = flows::unlock_account(&state, *user, keyed, id).await?;
    Ok(CommandAnswer::new(id, done.version, done.position).respond(StatusCode::OK))
}
