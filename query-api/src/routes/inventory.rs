//! `GET /api/v1/inventory` and `GET /api/v1/inventory/{sku}`: stock levels, for the back
//! office.
use axum::extract::{Path, State};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use web::{ApiError, AppJson, Authorized, BackOffice, Problem};

use super::{PageParams, QueryPairs};
use crate::{
    consistency::{AskedPosition, InventoryRead, MinPosition},
    inventory_read::InventoryQuery,
    state::QueryState,
    views::{InventoryPage, InventoryView},
};

/// The inventory routes.
pub fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get))
}

/// Filters and page of the stock list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the parameters; they are parsed by `InventoryQuery::parse`
struct ListParams {
    /// Only SKUs with fewer units available than this (what to restock).
    #[param(rename = "availableBelow")]
    available_below: Option<i64>,
    /// Only this product's SKUs.
    #[param(rename = "productId")]
    product_id: Option<uuid::Uuid>,
}

/// Stock of every SKU, least available first, then by SKU (admin or staff). SKUs never
/// stocked are listed with zeros.
#[utoipa::path(get, path = "/api/v1/inventory", tag = "inventory", security(("bearer" = ["ADMIN", "STAFF"])), params(ListParams, PageParams),
    responses((status = 200, body = InventoryPage), (status = 400, description = "a bad parameter", body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 504, description = "the read model did not reach minPosition in time", body = Problem)))]
async fn list(
    State(state): State<QueryState>,
    _back_office: Authorized<BackOffice>,
    asked: AskedPosition<InventoryRead>,
    QueryPairs(pairs): QueryPairs,
) -> Result<AppJson<InventoryPage>, ApiError> {
    let query = InventoryQuery::parse(&pairs)?;
    asked.reached(&state.consistency).await?;
    Ok(AppJson(state.inventory.list(&query).await?))
}

/// Stock of one SKU: on hand, reserved, committed and available (admin or staff).
#[utoipa::path(get, path = "/api/v1/inventory/{sku}", tag = "inventory", security(("bearer" = ["ADMIN", "STAFF"])),
    params(("sku" = String, Path, description = "the variant's SKU"),
        ("X-Emporium-Min-Position" = Option<u64>, Header, description = "answer only once this log position is reflected"),
        ("minPosition" = Option<u64>, Query, description = "same as the header")),
    responses((status = 200, body = InventoryView), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, description = "no product has this SKU", body = Problem),
        (status = 504, description = "the read model did not reach minPosition in time", body = Problem)))]
async fn get(
    State(state): State<QueryState>,
    _back_office: Authorized<BackOffice>,
    _: MinPosition<InventoryRead>,
    Path(sku): Path<String>,
) -> Result<AppJson<InventoryView>, ApiError> {
    let view = state.inventory.get(&sku).await?;
    view.map(AppJson)
        .ok_or_else(|| ApiError::not_found("no product has this SKU"))
}
