//! `GET /api/v1/customers/me`: a customer's own profile.
use axum::extract::State;
use projector::CustomersProjection;
use utoipa_axum::{router::OpenApiRouter, routes};
use web::{ApiError, AppJson, Authorized, Customers, Problem};

use crate::{
    consistency::{MinPosition, ReadSide},
    order_views::CustomerProfileView,
    state::QueryState,
};

/// Profiles: the `customers` projection.
#[derive(Debug)]
pub struct CustomersRead;

impl ReadSide for CustomersRead {
    const PROJECTIONS: &'static [&'static str] = &[CustomersProjection::NAME];
}

/// The customer routes.
pub fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new().routes(routes!(me))
}

/// The caller's own profile (customers only). Right after signing up, send the position
/// the sign-up answered with, or the profile may not be there yet (404).
#[utoipa::path(get, path = "/api/v1/customers/me", tag = "customers", security(("bearer" = ["CUSTOMER"])),
    params(("X-Emporium-Min-Position" = Option<u64>, Header, description = "answer only once this log position is reflected"),
        ("minPosition" = Option<u64>, Query, description = "same as the header")),
    responses((status = 200, body = CustomerProfileView), (status = 401, body = Problem),
        (status = 403, description = "not a customer", body = Problem),
        (status = 404, description = "the read model has not seen this customer yet", body = Problem),
        (status = 504, description = "the read model did not reach minPosition in time", body = Problem)))]
async fn me(
    State(state): State<QueryState>,
    user: Authorized<Customers>,
    _: MinPosition<CustomersRead>,
) -> Result<AppJson<CustomerProfileView>, ApiError> {
    state
        .customers
        .profile(user.id)
        .await?
        .map(AppJson)
        .ok_or_else(|| ApiError::not_found("no profile for this account yet"))
}
