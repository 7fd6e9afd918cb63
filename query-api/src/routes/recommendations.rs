//! `GET /api/v1/products/{id}/recommendations` (public) and
//! `GET /api/v1/customers/me/recommendations` (customers): bought-together and similar
//! products (see [`crate::recommendations`] for the reasons and scores).
use axum::extract::{Path, State};
use projector::{BoughtTogetherProjection, CatalogProjection, InventoryProjection};
use utoipa_axum::{router::OpenApiRouter, routes};
use web::{ApiError, AppJson, Authorized, Customers, Problem};

use super::QueryPairs;
use crate::{
    consistency::{AskedPosition, ReadSide},
    recommendations::{RecommendationList, RecommendationQuery},
    state::QueryState,
};

/// Recommendations: pair counts and purchases, the catalogue, and stock.
#[derive(Debug)]
pub struct RecommendationsRead;

impl ReadSide for RecommendationsRead {
    const PROJECTIONS: &'static [&'static str] = &[
        BoughtTogetherProjection::NAME,
        CatalogProjection::NAME,
        InventoryProjection::NAME,
    ];
}

/// The recommendation routes.
pub fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new()
        .routes(routes!(for_product))
        .routes(routes!(for_me))
}

/// Products to show next to an active product: those most often bought together with it
/// (`boughtTogether`, score = orders holding both), then the most similar ones (`similar`,
/// score = 2 per shared category + 1 per shared attribute value). Only active products
/// with stock available; 404 for an unknown or archived product.
#[utoipa::path(get, path = "/api/v1/products/{id}/recommendations", tag = "recommendations",
    params(("id" = uuid::Uuid, Path, description = "product id"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 50, description = "most items, 1 to 50 (default 10)"),
        ("X-Emporium-Min-Position" = Option<u64>, Header, description = "answer only once this log position is reflected"),
        ("minPosition" = Option<i64>, Query, minimum = 0, description = "same as the header")),
    responses((status = 200, body = RecommendationList), (status = 400, description = "a bad parameter", body = Problem),
        (status = 404, description = "no such active product", body = Problem),
        (status = 504, description = "the read models did not reach minPosition in time", body = Problem)))]
async fn for_product(
    State(state): State<QueryState>,
    asked: AskedPosition<RecommendationsRead>,
    Path(id): Path<String>,
    QueryPairs(pairs): QueryPairs,
) -> Result<AppJson<RecommendationList>, ApiError> {
    let query = RecommendationQuery::parse(&pairs)?;
    asked.reached(&state.consistency).await?;
    state
        .recommendations
        .for_product(&id, query)
        .await?
        .map(AppJson)
        .ok_or_else(|| ApiError::not_found("no such product"))
}

/// Products for the caller (customers only), from their own purchases: bought together with
/// what they bought, then similar to it, never anything they have bought already (orders
/// not cancelled). Empty until they have ordered.
#[utoipa::path(get, path = "/api/v1/customers/me/recommendations", tag = "recommendations",
    security(("bearer" = ["CUSTOMER"])),
    params(("limit" = Option<u32>, Query, minimum = 1, maximum = 50, description = "most items, 1 to 50 (default 10)"),
        ("X-Emporium-Min-Position" = Option<u64>, Header, description = "answer only once this log position is reflected"),
        ("minPosition" = Option<i64>, Query, minimum = 0, description = "same as the header")),
    responses((status = 200, body = RecommendationList), (status = 400, description = "a bad parameter", body = Problem),
        (status = 401, body = Problem), (status = 403, description = "not a customer", body = Problem),
        (status = 504, description = "the read models did not reach minPosition in time", body = Problem)))]
async fn for_me(
    State(state): State<QueryState>,
    user: Authorized<Customers>,
    asked: AskedPosition<RecommendationsRead>,
    QueryPairs(pairs): QueryPairs,
) -> Result<AppJson<RecommendationList>, ApiError> {
    let query = RecommendationQuery::parse(&pairs)?;
    asked.reached(&state.consistency).await?;
    let list = state
        .recommendations
        .for_customer(&user.id.to_string(), query)
        .await?;
    Ok(AppJson(list))
}
