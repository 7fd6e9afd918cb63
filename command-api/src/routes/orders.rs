//! `POST /api/v1/orders` and the order's life after it: cancel, status, shipments.
use axum::{
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
    response::Response,
};
use chrono::Utc;
use domain::{
    ids::{OrderId, ShipmentId, Sku},
    order::{Actor, MAX_QUANTITY, OrderCommand, OrderStatus, ShippingAddress},
    validation::{FieldError, Invalid},
};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use web::{ApiError, AppJson, AuthUser, Authorized, BackOffice, Customers, Problem};

use super::{CommandAnswer, optional_json, parse_id};
use crate::{
    idempotency::KeyedRequest,
    ordering::{RequestedLine, change_order, place_customer_order},
    service::CommandMeta,
    state::AppState,
};

/// The order routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(place))
        .routes(routes!(cancel))
        .routes(routes!(change_status))
        .routes(routes!(create_shipment))
}

/// One line of a new order. Prices come from the catalogue, never from the client.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LineRequest {
    /// The variant's SKU.
    pub sku: String,
    /// Units (1–1000).
    pub quantity: i64,
}

/// Where to ship.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AddressRequest {
    /// Recipient.
    pub name: String,
    /// Street and number.
    pub line1: String,
    /// More address.
    pub line2: Option<String>,
    /// City.
    pub city: String,
    /// Region or state.
    pub region: Option<String>,
    /// Postal code.
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code, e.g. `DE`.
    pub country: String,
}

impl From<AddressRequest> for ShippingAddress {
    fn from(a: AddressRequest) -> Self {
        Self {
            name: a.name,
            line1: a.line1,
            line2: a.line2,
            city: a.city,
            region: a.region,
            postal_code: a.postal_code,
            country: a.country,
        }
    }
}

/// A new order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PlaceOrder {
    /// The lines.
    pub lines: Vec<LineRequest>,
    /// Where to ship.
    pub shipping_address: AddressRequest,
}

/// Parses request lines: every bad SKU or quantity is reported at once.
pub(crate) fn parse_lines(lines: &[LineRequest]) -> Result<Vec<RequestedLine>, ApiError> {
    let mut errors = Vec::new();
    let mut parsed = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let sku = Sku::parse(&line.sku).map_err(|e| e.at(format!("lines[{i}].sku")));
        let quantity = u32::try_from(line.quantity)
            .ok()
            .filter(|q| (1..=MAX_QUANTITY).contains(q))
            .ok_or_else(|| {
                FieldError::new(
                    format!("lines[{i}].quantity"),
                    format!("must be between 1 and {MAX_QUANTITY}"),
                )
            });
        match (sku, quantity) {
            (Ok(sku), Ok(quantity)) => parsed.push(RequestedLine { sku, quantity }),
            (sku, quantity) => errors.extend([sku.err(), quantity.err()].into_iter().flatten()),
        }
    }
    if lines.is_empty() {
        errors.push(FieldError::new("lines", "an order needs at least one line"));
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(Invalid(errors).into())
    }
}

fn actor(user: AuthUser) -> Actor {
    Actor {
        id: user.id,
        role: user.role,
    }
}

/// Place an order (customer). Stock is reserved for every line or for none: a shortage
/// answers 409 with `shortSkus` and reserves nothing.
#[utoipa::path(post, path = "/api/v1/orders", tag = "orders", security(("bearer" = ["CUSTOMER"])),
    request_body = PlaceOrder,
    responses((status = 201, body = CommandAnswer), (status = 409, description = "not enough stock (`shortSkus`)", body = Problem),
        (status = 422, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn place(
    State(state): State<AppState>,
    user: Authorized<Customers>,
    keyed: Option<KeyedRequest>,
    AppJson(body): AppJson<PlaceOrder>,
) -> Result<Response, ApiError> {
    let lines = parse_lines(&body.lines)?;
    let answer =
        place_customer_order(&state, &user, keyed, &lines, body.shipping_address.into()).await?;
    Ok(answer.respond(StatusCode::CREATED))
}

/// Why an order is cancelled.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CancelRequest {
    /// Optional reason.
    pub reason: Option<String>,
}

/// Cancel an order, releasing its stock: its customer while PLACED or PAID, admins and
/// staff until it ships.
#[utoipa::path(post, path = "/api/v1/orders/{id}/cancel", tag = "orders", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "order id")), request_body(content = Option<CancelRequest>),
    responses((status = 200, body = CommandAnswer), (status = 404, body = Problem), (status = 409, description = "too late to cancel", body = Problem)))]
async fn cancel(
    State(state): State<AppState>,
    user: AuthUser,
    keyed: Option<KeyedRequest>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let id: OrderId = parse_id(&id, "order")?;
    let body: CancelRequest = optional_json(&body)?;
    let meta = CommandMeta::for_request(format!("account-{}", user.id), keyed);
    let command = OrderCommand::Cancel {
        by: actor(user),
        reason: body.reason,
        now: Utc::now(),
    };
    let (done, position) = change_order(&state, id, &meta, command).await?;
    Ok(CommandAnswer::new(id, done.version, position).respond(StatusCode::OK))
}

/// The next status.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct StatusRequest {
    /// `PAID`, `PACKED`, `SHIPPED`, `DELIVERED` or `CANCELLED`.
    #[schema(value_type = super::names::NextStatus)]
    pub status: OrderStatus,
}

/// Move an order along its state machine (admin, staff):
/// PLACED → PAID → PACKED → SHIPPED → DELIVERED; PLACED | PAID | PACKED → CANCELLED.
#[utoipa::path(post, path = "/api/v1/orders/{id}/status", tag = "orders", security(("bearer" = ["ADMIN", "STAFF"])),
    params(("id" = Uuid, Path, description = "order id")), request_body = StatusRequest,
    responses((status = 200, body = CommandAnswer), (status = 404, body = Problem), (status = 409, description = "illegal transition", body = Problem), (status = 403, body = Problem)))]
async fn change_status(
    State(state): State<AppState>,
    user: Authorized<BackOffice>,
    keyed: Option<KeyedRequest>,
    Path(id): Path<String>,
    AppJson(body): AppJson<StatusRequest>,
) -> Result<Response, ApiError> {
    let id: OrderId = parse_id(&id, "order")?;
    let meta = CommandMeta::for_request(format!("account-{}", user.id), keyed);
    let command = OrderCommand::ChangeStatus {
        to: body.status,
        by: actor(*user),
        now: Utc::now(),
    };
    let (done, position) = change_order(&state, id, &meta, command).await?;
    Ok(CommandAnswer::new(id, done.version, position).respond(StatusCode::OK))
}

/// A parcel handed to a carrier.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ShipmentRequest {
    /// Carrier name, e.g. `DHL`.
    pub carrier: String,
    /// The carrier's tracking number.
    pub tracking_number: String,
}

/// Record a shipment (admin, staff). A PACKED order becomes SHIPPED and its stock is
/// committed; a SHIPPED order may get further parcels.
#[utoipa::path(post, path = "/api/v1/orders/{id}/shipments", tag = "orders", security(("bearer" = ["ADMIN", "STAFF"])),
    params(("id" = Uuid, Path, description = "order id")), request_body = ShipmentRequest,
    responses((status = 201, body = CommandAnswer), (status = 404, body = Problem), (status = 409, description = "not packed yet", body = Problem), (status = 422, body = Problem)))]
async fn create_shipment(
    State(state): State<AppState>,
    user: Authorized<BackOffice>,
    keyed: Option<KeyedRequest>,
    Path(id): Path<String>,
    AppJson(body): AppJson<ShipmentRequest>,
) -> Result<Response, ApiError> {
    let id: OrderId = parse_id(&id, "order")?;
    let meta = CommandMeta::for_request(format!("account-{}", user.id), keyed);
    // Named by its request when keyed: the order takes a shipment id once, a second guard
    // beside the run after a crash finding its parcel recorded.
    let shipment_id = ShipmentId::new(KeyedRequest::id_or_new(keyed));
    let command = OrderCommand::CreateShipment {
        shipment_id,
        carrier: body.carrier,
        tracking_number: body.tracking_number,
        by: actor(*user),
        now: Utc::now(),
    };
    let (done, position) = change_order(&state, id, &meta, command).await?;
    Ok(CommandAnswer::new(id, done.version, position).respond(StatusCode::CREATED))
}
