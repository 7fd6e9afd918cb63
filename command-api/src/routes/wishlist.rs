//! `/api/v1/wishlist`: the calling customer's wishlist. Customers only, like the cart.
//! `PUT` and `DELETE` are idempotent and answer 204 whether or not anything changed.
use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use utoipa_axum::{router::OpenApiRouter, routes};
use web::{ApiError, Authorized, Customers, Problem};

use crate::{
    shopping::{self, WishlistView},
    state::AppState,
};

/// The wishlist routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get))
        .routes(routes!(put, delete))
}

/// The caller's wishlist, every item with its current name, price and availability.
#[utoipa::path(get, path = "/api/v1/wishlist", tag = "wishlist", security(("bearer" = ["CUSTOMER"])),
    responses((status = 200, body = WishlistView), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn get(
    State(state): State<AppState>,
    user: Authorized<Customers>,
) -> Result<Json<WishlistView>, ApiError> {
    let customer = user.id;
    Ok(Json(shopping::view_wishlist(&state, customer).await?))
}

/// Put a SKU on the wishlist (at most 100). It must be on sale; putting it there again
/// changes nothing.
#[utoipa::path(put, path = "/api/v1/wishlist/{sku}", tag = "wishlist", security(("bearer" = ["CUSTOMER"])),
    params(("sku" = String, Path, description = "the variant's SKU")),
    responses((status = 204, description = "the SKU is on the wishlist"),
        (status = 422, description = "`unknown_sku`, `sku_not_for_sale`, `wishlist_limit`", body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn put(
    State(state): State<AppState>,
    user: Authorized<Customers>,
    Path(sku): Path<String>,
) -> Result<StatusCode, ApiError> {
    let customer = user.id;
    shopping::wish(&state, customer, &sku).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Take a SKU off the wishlist; one that is not on it changes nothing.
#[utoipa::path(delete, path = "/api/v1/wishlist/{sku}", tag = "wishlist", security(("bearer" = ["CUSTOMER"])),
    params(("sku" = String, Path, description = "the variant's SKU")),
    responses((status = 204, description = "the SKU is not on the wishlist"),
        (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn delete(
    State(state): State<AppState>,
    user: Authorized<Customers>,
    Path(sku): Path<String>,
) -> Result<StatusCode, ApiError> {
    let customer = user.id;
    shopping::unwish(&state, customer, &sku).await?;
    Ok(StatusCode::NO_CONTENT)
}
