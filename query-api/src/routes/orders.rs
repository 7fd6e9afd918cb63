//! `GET /api/v1/orders`, `GET /api/v1/orders/{id}` and `GET /api/v1/orders/{id}/history`:
//! a customer's own orders, and every order for the back office.
//!
//! A customer sees only their own orders: anyone else's order, like an unknown or
//! malformed id, is a 404 (invariant 9), so a stranger learns nothing about it.
use axum::extract::{Path, State};
use domain::account::Role;
use projector::OrdersProjection;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use web::{ApiError, AppJson, AuthUser, Problem};

use super::{PageParams, QueryPairs};
use crate::{
    consistency::{AskedPosition, MinPosition, ReadSide},
    order_read::OrderQuery,
    order_views::{OrderEventView, OrderPage, OrderStatusView, OrderView},
    state::QueryState,
};

/// Order views and lists: the `orders` projection.
#[derive(Debug)]
pub struct OrdersRead;

impl ReadSide for OrdersRead {
    const PROJECTIONS: &'static [&'static str] = &[OrdersProjection::NAME];
}

/// An order's audit trail: read from the event store itself, which is always current, so
/// `minPosition` is validated but never waited for.
#[derive(Debug)]
pub struct HistoryRead;

impl ReadSide for HistoryRead {
    const PROJECTIONS: &'static [&'static str] = &[];
}

/// The order routes.
pub fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get))
        .routes(routes!(history))
}

/// Filters and page of the order list.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the parameters; they are parsed by `OrderQuery::parse`
struct ListParams {
    /// Only orders with this status.
    status: Option<OrderStatusView>,
    /// Only this customer's orders (admins and staff; a customer only ever sees their own).
    #[param(rename = "customerId")]
    customer_id: Option<uuid::Uuid>,
    /// Placed at or after: a date (`YYYY-MM-DD`, from its start, UTC) or an RFC 3339 time.
    from: Option<String>,
    /// Placed at or before: a date (`YYYY-MM-DD`, until its end, UTC) or an RFC 3339 time.
    to: Option<String>,
    /// Start after the page that gave this `nextCursor` (not with `page`): stable while
    /// new orders arrive, and as fast on the thousandth page as on the first.
    cursor: Option<String>,
}

/// Orders, newest first: a customer's own, or every order (with filters) for admins and
/// staff.
#[utoipa::path(get, path = "/api/v1/orders", tag = "orders", security(("bearer" = [])), params(ListParams, PageParams),
    responses((status = 200, body = OrderPage), (status = 400, description = "a bad parameter", body = Problem),
        (status = 401, body = Problem),
        (status = 504, description = "the read model did not reach minPosition in time", body = Problem)))]
async fn list(
    State(state): State<QueryState>,
    user: AuthUser,
    asked: AskedPosition<OrdersRead>,
    QueryPairs(pairs): QueryPairs,
) -> Result<AppJson<OrderPage>, ApiError> {
    let own = (user.role == Role::Customer).then_some(user.id);
    let query = OrderQuery::parse(&pairs, own)?;
    asked.reached(&state.consistency).await?;
    Ok(AppJson(state.orders.list(&query).await?))
}

fn not_found() -> ApiError {
    ApiError::not_found("no such order")
}

/// Whether `user` may see an order of `customer`: its owner, admins and staff.
fn may_see(user: &AuthUser, customer: &str) -> bool {
    user.is_staff() || customer == user.id.to_string()
}

/// One order: its owner, admins and staff; 404 to anyone else.
#[utoipa::path(get, path = "/api/v1/orders/{id}", tag = "orders", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "order id"),
        ("X-Emporium-Min-Position" = Option<u64>, Header, description = "answer only once this log position is reflected"),
        ("minPosition" = Option<u64>, Query, description = "same as the header")),
    responses((status = 200, body = OrderView), (status = 401, body = Problem),
        (status = 404, description = "no such order, or not yours", body = Problem),
        (status = 504, description = "the read model did not reach minPosition in time", body = Problem)))]
async fn get(
    State(state): State<QueryState>,
    user: AuthUser,
    _: MinPosition<OrdersRead>,
    Path(id): Path<String>,
) -> Result<AppJson<OrderView>, ApiError> {
    match state.orders.get(&id).await? {
        Some(order) if may_see(&user, &order.customer_id) => Ok(AppJson(order)),
        _ => Err(not_found()),
    }
}

/// An order's audit trail: every event of its stream, oldest first, read from the event
/// store. Its owner, admins and staff; 404 to anyone else.
#[utoipa::path(get, path = "/api/v1/orders/{id}/history", tag = "orders", security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "order id"),
        ("X-Emporium-Min-Position" = Option<u64>, Header, description = "accepted; the event store is always current"),
        ("minPosition" = Option<u64>, Query, description = "same as the header")),
    responses((status = 200, body = [OrderEventView]), (status = 401, body = Problem),
        (status = 404, description = "no such order, or not yours", body = Problem),
        (status = 503, description = "this process has no event store to read", body = Problem)))]
async fn history(
    State(state): State<QueryState>,
    user: AuthUser,
    _: MinPosition<HistoryRead>,
    Path(id): Path<String>,
) -> Result<AppJson<Vec<OrderEventView>>, ApiError> {
    let history = state.history.as_ref().ok_or_else(|| {
        ApiError::Unavailable("order histories are not available from this service".into())
    })?;
    let Some(trail) = history.trail(&id).await? else {
        return Err(not_found());
    };
    let customer = trail
        .order
        .customer_id
        .map(|c| c.to_string())
        .unwrap_or_default();
    if !may_see(&user, &customer) {
        return Err(not_found());
    }
    Ok(AppJson(trail.events))
}
