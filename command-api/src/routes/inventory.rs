//! `POST /api/v1/inventory/{sku}/adjustments`: restock or write off.
use axum::{
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use chrono::Utc;
use domain::{
    aggregate::Aggregate,
    ids::Sku,
    inventory::{Stock, StockCommand},
};
use eventstore::StreamId;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use web::{Admins, ApiError, AppJson, Authorized, Problem};

use super::CommandAnswer;
use crate::{claims::KeyKind, idempotency::KeyedRequest, service::CommandMeta, state::AppState};

/// The inventory routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(adjust))
}

/// A stock adjustment.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Adjustment {
    /// Units to add (restock, positive) or remove (write-off, negative). A write-off can
    /// never take stock below what is reserved.
    pub delta: i64,
    /// Why, e.g. "delivery 2026-11-25" or "damaged in warehouse".
    pub reason: String,
}

/// The stream of a SKU's stock.
pub(crate) fn stock_stream(sku: &Sku) -> StreamId {
    StreamId::of(Stock::NAME, sku)
}

/// Restock or write off units of a SKU (admin).
#[utoipa::path(post, path = "/api/v1/inventory/{sku}/adjustments", tag = "inventory", security(("bearer" = ["ADMIN"])),
    params(("sku" = String, Path, description = "the variant's SKU")), request_body = Adjustment,
    responses((status = 200, body = CommandAnswer), (status = 404, description = "no product has this SKU", body = Problem),
        (status = 409, description = "a write-off exceeds available stock", body = Problem), (status = 422, body = Problem)))]
async fn adjust(
    State(state): State<AppState>,
    user: Authorized<Admins>,
    keyed: Option<KeyedRequest>,
    Path(sku): Path<String>,
    AppJson(body): AppJson<Adjustment>,
) -> Result<Response, ApiError> {
    let sku = Sku::parse(&sku).map_err(|_| ApiError::not_found("no product has this SKU"))?;
    if state
        .claims
        .owner(KeyKind::Sku, sku.as_str())
        .await?
        .is_none()
    {
        return Err(ApiError::not_found("no product has this SKU"));
    }
    let meta = CommandMeta::for_request(format!("account-{}", user.id), keyed);
    let command = StockCommand::Adjust {
        sku: sku.clone(),
        delta: body.delta,
        reason: body.reason,
        // Named by its request when keyed: the stock makes an adjustment once, a second
        // guard beside the run after a crash finding it recorded.
        adjustment_id: keyed.map(|keyed| keyed.id),
        now: Utc::now(),
    };
    let done = state
        .commands
        .execute_request::<Stock, _>(&stock_stream(&sku), None, &meta, |s| {
            Ok(Stock::decide(s, command.clone())?)
        })
        .await?;
    Ok(CommandAnswer::new(sku, done.version, done.position).respond(StatusCode::OK))
}
