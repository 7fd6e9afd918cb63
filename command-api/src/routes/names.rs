//! The values the enumerated fields of request bodies accept, for the OpenAPI document
//! only. The domain's enums stay free of it, and they admit values a route refuses
//! (`CUSTOMER` for a back-office account, `PLACED` as an order's next status), which the
//! document must not offer.
use serde::Serialize;
use utoipa::ToSchema;

/// A back-office role (customers sign up themselves).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BackOfficeRole {
    /// Everything.
    Admin,
    /// Catalogue, stock and orders.
    Staff,
}

/// A status an order can be moved to.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NextStatus {
    /// Paid.
    Paid,
    /// Packed.
    Packed,
    /// Shipped.
    Shipped,
    /// Delivered.
    Delivered,
    /// Cancelled.
    Cancelled,
}

/// A customer's self-declared gender.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum GenderName {
    /// Female.
    Female,
    /// Male.
    Male,
    /// Other.
    Other,
    /// Not said.
    Unspecified,
}
