//! `PATCH /api/v1/customers/me`: a customer's own profile. The profile is read from the
//! query side (`GET /api/v1/customers/me`); the e-mail address and mobile number are
//! login names, claimed once at sign-up, and are not changed here.
use axum::{extract::State, http::HeaderMap, http::StatusCode, response::Response};
use domain::account::Gender;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use web::{ApiError, AppJson, Authorized, Customers, Problem};

use super::{CommandAnswer, if_match};
use crate::{auth::flows, idempotency::KeyedRequest, state::AppState};

/// The customer routes of the command side.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(update_profile))
}

/// The profile fields a customer may change; a field left out stays as it is.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateProfileRequest {
    /// Display name, 1–100 characters.
    #[schema(example = "Ada King")]
    pub name: Option<String>,
    /// `FEMALE`, `MALE`, `OTHER` or `UNSPECIFIED`.
    #[schema(value_type = Option<super::names::GenderName>, example = "FEMALE")]
    pub gender: Option<Gender>,
}

/// Update your own profile (customer): name and gender.
///
/// Send `If-Match` with the account's version (from an earlier answer's `ETag`) to be
/// refused (412) if the profile changed since. A change to what the profile already says
/// appends nothing and answers the current version.
#[utoipa::path(patch, path = "/api/v1/customers/me", tag = "customers", security(("bearer" = ["CUSTOMER"])),
    params(("If-Match" = Option<String>, Header, description = "expected version")),
    request_body = UpdateProfileRequest,
    responses(
        (status = 200, description = "the account's new version", body = CommandAnswer),
        (status = 400, description = "unknown fields (`email` and `mobileNumber` included)", body = Problem),
        (status = 401, body = Problem), (status = 403, description = "not a customer", body = Problem),
        (status = 412, body = Problem), (status = 422, body = Problem)))]
async fn update_profile(
    State(state): State<AppState>,
    user: Authorized<Customers>,
    keyed: Option<KeyedRequest>,
    headers: HeaderMap,
    AppJson(body): AppJson<UpdateProfileRequest>,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    let done =
        flows::update_profile(&state, *user, keyed, expected, body.name, body.gender).await?;
    Ok(CommandAnswer::new(user.id, done.version, done.position).respond(StatusCode::OK))
}
