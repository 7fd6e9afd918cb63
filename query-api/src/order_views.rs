//! What the order, customer and analytics queries answer with (camelCase JSON), described
//! for the OpenAPI document.
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::views::MoneyView;

/// Where an order is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatusView {
    /// Stock reserved, awaiting payment.
    Placed,
    /// Paid, awaiting packing.
    Paid,
    /// Packed, awaiting the carrier.
    Packed,
    /// Handed to the carrier.
    Shipped,
    /// Received by the customer.
    Delivered,
    /// Cancelled; stock released.
    Cancelled,
}

impl OrderStatusView {
    /// Every status.
    pub const ALL: [Self; 6] = [
        Self::Placed,
        Self::Paid,
        Self::Packed,
        Self::Shipped,
        Self::Delivered,
        Self::Cancelled,
    ];

    /// The stored text, e.g. `PLACED`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Placed => "PLACED",
            Self::Paid => "PAID",
            Self::Packed => "PACKED",
            Self::Shipped => "SHIPPED",
            Self::Delivered => "DELIVERED",
            Self::Cancelled => "CANCELLED",
        }
    }

    /// Parses the stored text.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// One line of an order, priced when it was placed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderLineView {
    /// The variant ordered.
    pub sku: String,
    /// Its product (UUID).
    pub product_id: String,
    /// Product name when ordered.
    pub name: String,
    /// Units.
    pub quantity: u32,
    /// Price of one unit when ordered.
    pub unit_price: MoneyView,
    /// `unitPrice × quantity`.
    pub line_total: MoneyView,
}

/// Where an order goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AddressView {
    /// Recipient.
    pub name: String,
    /// Street and number.
    pub line1: String,
    /// More address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    /// City.
    pub city: String,
    /// Region or state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Postal code.
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code.
    pub country: String,
}

/// One parcel of an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ShipmentView {
    /// Shipment id (UUID).
    pub id: String,
    /// Carrier.
    pub carrier: String,
    /// The carrier's tracking number.
    pub tracking_number: String,
    /// When it was handed to the carrier (RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
}

/// An order as its customer and the back office see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    /// Order id (UUID).
    pub id: String,
    /// The customer who placed it (account id).
    pub customer_id: String,
    /// Its status.
    pub status: OrderStatusView,
    /// Lines with the prices they were ordered at.
    pub lines: Vec<OrderLineView>,
    /// Sum of the line totals.
    pub total: MoneyView,
    /// Where it goes.
    pub shipping_address: AddressView,
    /// Parcels handed to carriers, in order.
    pub shipments: Vec<ShipmentView>,
    /// When it was placed (RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
    /// When it last changed (RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: String,
}

/// One page of orders, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderPage {
    /// The orders on this page.
    pub items: Vec<OrderView>,
    /// This page's number (1-based).
    pub page: u32,
    /// Orders per page.
    pub page_size: u32,
    /// Orders matching the filters, on all pages.
    pub total: u64,
    /// Send as `cursor` for the page after this one; null on the last page.
    pub next_cursor: Option<String>,
}

/// One event of an order's audit trail, as the event store holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderEventView {
    /// The event's id (UUID v7).
    pub event_id: String,
    /// Its type, e.g. `OrderPlaced`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Its version in the order's stream (1 for `OrderPlaced`).
    pub version: u64,
    /// Its position in the global log.
    pub position: u64,
    /// When it was recorded (RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    pub at: String,
    /// Who caused it (`account-{id}`, or a system component), if recorded.
    pub actor: Option<String>,
    /// The event's data, in its current schema.
    #[schema(value_type = Object)]
    pub data: Value,
}

/// A customer's own profile.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CustomerProfileView {
    /// Account id (UUID).
    pub id: String,
    /// Display name.
    pub name: String,
    /// E-mail address.
    pub email: Option<String>,
    /// Mobile number.
    pub mobile_number: Option<String>,
    /// `FEMALE`, `MALE`, `OTHER` or `UNSPECIFIED`, if given.
    pub gender: Option<String>,
    /// When the account was opened (RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    pub registered_at: String,
}

/// What an account may do. For the OpenAPI document: the rows hold the same text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RoleView {
    /// Everything.
    Admin,
    /// Catalogue, stock and orders.
    Staff,
    /// A shopper.
    Customer,
}

/// An account as the back office sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountView {
    /// Account id (UUID): what `POST /api/v1/admin/accounts/{id}/lock` takes.
    pub id: String,
    /// What the account may do.
    #[schema(value_type = RoleView)]
    pub role: String,
    /// Login name: a customer's e-mail address, a back-office username.
    pub username: String,
    /// Display name.
    pub name: String,
    /// E-mail address (customers).
    pub email: Option<String>,
    /// Mobile number (customers).
    pub mobile_number: Option<String>,
    /// `FEMALE`, `MALE`, `OTHER` or `UNSPECIFIED`, if given.
    pub gender: Option<String>,
    /// Whether sign-in is refused.
    pub locked: bool,
    /// When the account was opened (RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    pub registered_at: String,
    /// When the account last changed (RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: String,
}

/// One page of accounts, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccountPage {
    /// The accounts on this page.
    pub items: Vec<AccountView>,
    /// This page's number (1-based).
    pub page: u32,
    /// Accounts per page.
    pub page_size: u32,
    /// Accounts matching the filters, on all pages.
    pub total: u64,
}

/// Sales of one group (a day, a product, or a product on a day) in one currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SalesItem {
    /// The UTC day the orders were placed (YYYY-MM-DD), when grouped by day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
    /// The product (UUID), when grouped by product.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// Orders not cancelled (an order counts once per group, however many lines it has).
    pub orders: i64,
    /// Units sold.
    pub units: i64,
    /// Revenue: the sum of the line totals.
    pub revenue: MoneyView,
}

/// All sales in the period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SalesTotals {
    /// Orders not cancelled.
    pub orders: i64,
    /// Units sold.
    pub units: i64,
    /// Revenue, one amount per currency sold in (by currency code; empty when nothing
    /// was sold).
    pub revenue: Vec<MoneyView>,
}

/// Sales by day and product; cancelled orders are not counted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SalesReport {
    /// One item per group and currency, by day, then product, then currency.
    pub items: Vec<SalesItem>,
    /// The whole period.
    pub totals: SalesTotals,
}
