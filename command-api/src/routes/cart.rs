//! `/api/v1/cart`: the calling customer's cart, and checkout. Customers only: admins and
//! staff (who have no cart) get 403, anonymous callers 401. A cart is addressed by the
//! caller's token alone, so nobody can name anyone else's.
use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use web::{ApiError, AppJson, Authorized, Customers, Problem};

use super::{CommandAnswer, orders::AddressRequest};
use crate::{
    idempotency::KeyedRequest,
    shopping::{self, CartView},
    state::AppState,
};

/// The cart routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get))
        .routes(routes!(add))
        .routes(routes!(change, remove))
        .routes(routes!(checkout))
}

/// Units of a SKU to put in the cart.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddItem {
    /// The variant's SKU; it must be on sale.
    pub sku: String,
    /// Units to add (1–1000); added to what the line already has, up to 1000.
    pub quantity: i64,
}

/// A line's new quantity.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChangeQuantity {
    /// Units (1–1000). 0 is refused: `DELETE` removes a line.
    pub quantity: i64,
}

/// Where the order placed from the cart is shipped.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Checkout {
    /// Where to ship.
    pub shipping_address: AddressRequest,
}

/// The caller's cart: every line with the product's current name, price and
/// availability, and the total of the lines that can be bought.
#[utoipa::path(get, path = "/api/v1/cart", tag = "cart", security(("bearer" = ["CUSTOMER"])),
    responses((status = 200, body = CartView), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn get(
    State(state): State<AppState>,
    user: Authorized<Customers>,
) -> Result<Json<CartView>, ApiError> {
    let customer = user.id;
    Ok(Json(shopping::view_cart(&state, customer).await?))
}

/// Put units of a SKU in the cart: a new line, or more of one it has. At most 50 lines
/// and 1000 units a line (the limits of one order).
#[utoipa::path(post, path = "/api/v1/cart/items", tag = "cart", security(("bearer" = ["CUSTOMER"])),
    request_body = AddItem,
    responses((status = 200, description = "the cart after the change", body = CartView),
        (status = 422, description = "bad quantity, `unknown_sku`, `sku_not_for_sale`, `cart_line_limit`, `cart_quantity_limit`", body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn add(
    State(state): State<AppState>,
    user: Authorized<Customers>,
    AppJson(body): AppJson<AddItem>,
) -> Result<Json<CartView>, ApiError> {
    let customer = user.id;
    Ok(Json(
        shopping::add_item(&state, customer, &body.sku, body.quantity).await?,
    ))
}

/// Set the quantity of a line the cart has.
#[utoipa::path(patch, path = "/api/v1/cart/items/{sku}", tag = "cart", security(("bearer" = ["CUSTOMER"])),
    params(("sku" = String, Path, description = "the line's SKU")), request_body = ChangeQuantity,
    responses((status = 200, description = "the cart after the change", body = CartView),
        (status = 404, description = "the cart has no line for this SKU", body = Problem),
        (status = 422, description = "bad quantity (0 included), `unknown_sku`, `sku_not_for_sale`", body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn change(
    State(state): State<AppState>,
    user: Authorized<Customers>,
    Path(sku): Path<String>,
    AppJson(body): AppJson<ChangeQuantity>,
) -> Result<Json<CartView>, ApiError> {
    let customer = user.id;
    Ok(Json(
        shopping::change_quantity(&state, customer, &sku, body.quantity).await?,
    ))
}

/// Remove a line. Idempotent: removing a line the cart does not have changes nothing.
#[utoipa::path(delete, path = "/api/v1/cart/items/{sku}", tag = "cart", security(("bearer" = ["CUSTOMER"])),
    params(("sku" = String, Path, description = "the line's SKU")),
    responses((status = 200, description = "the cart after the change", body = CartView),
        (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn remove(
    State(state): State<AppState>,
    user: Authorized<Customers>,
    Path(sku): Path<String>,
) -> Result<Json<CartView>, ApiError> {
    let customer = user.id;
    Ok(Json(shopping::remove_item(&state, customer, &sku).await?))
}

/// Place an order from the cart, exactly as `POST /api/v1/orders` would with the cart's
/// lines: catalogue prices, stock reserved for every line or none. Only a placed order
/// empties the cart, of what it ordered; a shortage answers 409 with `shortSkus` and
/// leaves the cart as it was.
#[utoipa::path(post, path = "/api/v1/cart/checkout", tag = "cart", security(("bearer" = ["CUSTOMER"])),
    request_body = Checkout,
    responses((status = 201, description = "the order placed", body = CommandAnswer),
        (status = 409, description = "not enough stock (`shortSkus`)", body = Problem),
        (status = 422, description = "`cart_empty`, a line no longer on sale (`lines[i].sku`), `mixed_currencies`, bad address", body = Problem),
        (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn checkout(
    State(state): State<AppState>,
    user: Authorized<Customers>,
    keyed: Option<KeyedRequest>,
    AppJson(body): AppJson<Checkout>,
) -> Result<Response, ApiError> {
    let answer = shopping::checkout(&state, &user, keyed, body.shipping_address.into()).await?;
    Ok(answer.respond(StatusCode::CREATED))
}
