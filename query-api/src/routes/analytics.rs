//! `GET /api/v1/analytics/sales`: revenue, orders and units by day and product (admin).
use axum::extract::State;
use projector::SalesProjection;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use web::{Admins, ApiError, AppJson, Authorized, Problem};

use super::QueryPairs;
use crate::{
    consistency::{AskedPosition, ReadSide},
    order_read::SalesQuery,
    order_views::SalesReport,
    state::QueryState,
};

/// Sales figures: the `sales` projection.
#[derive(Debug)]
pub struct SalesRead;

impl ReadSide for SalesRead {
    const PROJECTIONS: &'static [&'static str] = &[SalesProjection::NAME];
}

/// The analytics routes.
pub fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new().routes(routes!(sales))
}

/// Period and grouping of the sales report.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the parameters; they are parsed by `SalesQuery::parse`
struct SalesParams {
    /// First UTC day of placement (`YYYY-MM-DD`, inclusive).
    from: Option<String>,
    /// Last UTC day of placement (`YYYY-MM-DD`, inclusive).
    to: Option<String>,
    /// `day` (default), `product` or `day,product`.
    #[param(rename = "groupBy")]
    group_by: Option<String>,
    /// Answer only once this log position is reflected (also `X-Emporium-Min-Position`).
    #[param(rename = "minPosition", value_type = Option<i64>, minimum = 0)]
    min_position: Option<u64>,
}

/// Sales by UTC day of placement and by product, in each currency sold in; cancelled
/// orders are not counted (admin only).
#[utoipa::path(get, path = "/api/v1/analytics/sales", tag = "analytics", security(("bearer" = ["ADMIN"])), params(SalesParams),
    responses((status = 200, body = SalesReport), (status = 400, description = "a bad parameter", body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 504, description = "the read model did not reach minPosition in time", body = Problem)))]
async fn sales(
    State(state): State<QueryState>,
    _admin: Authorized<Admins>,
    asked: AskedPosition<SalesRead>,
    QueryPairs(pairs): QueryPairs,
) -> Result<AppJson<SalesReport>, ApiError> {
    let query = SalesQuery::parse(&pairs)?;
    asked.reached(&state.consistency).await?;
    Ok(AppJson(state.sales.report(&query).await?))
}
