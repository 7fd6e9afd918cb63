//! What the query API answers with (camelCase JSON), described for the OpenAPI document.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// Whether a product is on sale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProductStatus {
    /// On sale.
    Active,
    /// Withdrawn; visible to admins and staff only.
    Archived,
}

impl ProductStatus {
    /// The stored text (`ACTIVE`, `ARCHIVED`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "ACTIVE",
            Self::Archived => "ARCHIVED",
        }
    }

    /// Parses the stored text.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ACTIVE" => Some(Self::Active),
            "ARCHIVED" => Some(Self::Archived),
            _ => None,
        }
    }
}

/// An amount of money: integer minor units and an ISO 4217 code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MoneyView {
    /// Minor units (cents): 1999 is 19.99.
    pub amount: i64,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
}

/// One variant of a product.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VariantView {
    /// Its stock-keeping unit.
    pub sku: String,
    /// Its current price.
    pub price: MoneyView,
    /// Option values, e.g. `{"size": "M"}`.
    pub options: BTreeMap<String, String>,
    /// Units that can be ordered now (on hand less reserved; 0 when never stocked).
    pub available: i64,
}

/// The cheapest and dearest variant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PriceRange {
    /// Lowest variant price, in minor units.
    pub min: i64,
    /// Highest variant price, in minor units.
    pub max: i64,
    /// ISO 4217 code.
    pub currency: String,
}

/// A product as the catalogue shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductView {
    /// Product id (UUID).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Categories it is listed under.
    pub categories: Vec<String>,
    /// Free-form attributes.
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
    /// On sale or archived.
    pub status: ProductStatus,
    /// Variants, in the order they were added.
    pub variants: Vec<VariantView>,
    /// Lowest and highest variant price.
    pub price_range: PriceRange,
    /// The product's version (also its `ETag`); send it as `If-Match` when updating.
    pub version: u64,
    /// When it was created (RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    pub created_at: String,
    /// When it last changed (RFC 3339).
    #[schema(value_type = String, format = DateTime)]
    pub updated_at: String,
}

/// One page of products.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductPage {
    /// The products on this page.
    pub items: Vec<ProductView>,
    /// This page's number (1-based).
    pub page: u32,
    /// Products per page.
    pub page_size: u32,
    /// Products matching the filters, on all pages.
    pub total: u64,
}

/// Stock of one SKU in the back office's list: the inventory view and the SKU's product.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InventoryItem {
    /// The SKU.
    pub sku: String,
    /// The product (UUID) the SKU is a variant of.
    pub product_id: String,
    /// Units physically held, reserved ones included.
    pub on_hand: i64,
    /// Units held for orders not yet shipped.
    pub reserved: i64,
    /// Units shipped so far.
    pub committed: i64,
    /// Units that can still be ordered: on hand less reserved.
    pub available: i64,
}

/// One page of stock levels, least available first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InventoryPage {
    /// The SKUs on this page.
    pub items: Vec<InventoryItem>,
    /// This page's number (1-based).
    pub page: u32,
    /// SKUs per page.
    pub page_size: u32,
    /// SKUs matching the filters, on all pages.
    pub total: u64,
}

/// Stock of one SKU.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InventoryView {
    /// The SKU.
    pub sku: String,
    /// Units physically held, reserved ones included.
    pub on_hand: i64,
    /// Units held for orders not yet shipped.
    pub reserved: i64,
    /// Units shipped so far.
    pub committed: i64,
    /// Units that can still be ordered: on hand less reserved.
    pub available: i64,
}
