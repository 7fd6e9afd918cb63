//! `GET /api/v1/inventory/{sku}`: a SKU's stock, for the back office.
use axum::extract::{Path, State};
use utoipa_axum::{router::OpenApiRouter, routes};
use web::{ApiError, AppJson, Authorized, BackOffice, Problem};

use crate::{
    consistency::{InventoryRead, MinPosition},
    state::QueryState,
    views::InventoryView,
};

/// The inventory routes.
pub fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new().routes(routes!(get))
}

/// Stock of one SKU: on hand, reserved, committed and available (admin or staff).
#[utoipa::path(get, path = "/api/v1/inventory/{sku}", tag = "inventory", security(("bearer" = [])),
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
