//! `GET /api/v1/admin/accounts` and `GET /api/v1/admin/accounts/{id}`: the back office
//! finds an account (to lock or unlock it, or to read a customer's orders by id).
use axum::extract::{Path, State};
use domain::ids::AccountId;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use web::{Admins, ApiError, AppJson, Authorized, Problem};

use super::{PageParams, QueryPairs, customers::CustomersRead};
use crate::{
    account_read::AccountQuery,
    consistency::{AskedPosition, MinPosition},
    order_views::{AccountPage, AccountView, RoleView},
    state::QueryState,
};

/// The account directory routes.
pub fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get))
}

/// Filters and page of the account list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the parameters; they are parsed by `AccountQuery::parse`
struct ListParams {
    /// Only accounts with this role.
    role: Option<RoleView>,
    /// Only locked (`true`) or unlocked (`false`) accounts.
    locked: Option<bool>,
    /// Part of the name, username, e-mail address or mobile number, any case (1–100
    /// characters).
    #[param(min_length = 1, max_length = 100)]
    q: Option<String>,
}

/// Accounts of every role, newest first (admin).
#[utoipa::path(get, path = "/api/v1/admin/accounts", tag = "accounts", security(("bearer" = ["ADMIN"])), params(ListParams, PageParams),
    responses((status = 200, body = AccountPage), (status = 400, description = "a bad parameter", body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 504, description = "the read model did not reach minPosition in time", body = Problem)))]
async fn list(
    State(state): State<QueryState>,
    _: Authorized<Admins>,
    asked: AskedPosition<CustomersRead>,
    QueryPairs(pairs): QueryPairs,
) -> Result<AppJson<AccountPage>, ApiError> {
    let query = AccountQuery::parse(&pairs)?;
    asked.reached(&state.consistency).await?;
    Ok(AppJson(state.accounts.list(&query).await?))
}

/// One account (admin).
#[utoipa::path(get, path = "/api/v1/admin/accounts/{id}", tag = "accounts", security(("bearer" = ["ADMIN"])),
    params(("id" = uuid::Uuid, Path, description = "account id"),
        ("X-Emporium-Min-Position" = Option<u64>, Header, description = "answer only once this log position is reflected"),
        ("minPosition" = Option<u64>, Query, description = "same as the header")),
    responses((status = 200, body = AccountView), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, description = "no such account (or not projected yet)", body = Problem),
        (status = 504, description = "the read model did not reach minPosition in time", body = Problem)))]
async fn get(
    State(state): State<QueryState>,
    _: Authorized<Admins>,
    _: MinPosition<CustomersRead>,
    Path(id): Path<String>,
) -> Result<AppJson<AccountView>, ApiError> {
    let not_found = || ApiError::not_found("no such account");
    let id: AccountId = id.parse().map_err(|_| not_found())?;
    state
        .accounts
        .get(id)
        .await?
        .map(AppJson)
        .ok_or_else(not_found)
}
