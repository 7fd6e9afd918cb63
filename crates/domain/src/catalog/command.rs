//! Commands on a product, carrying every input `decide` needs.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::state::VariantSpec;
use crate::ids::{ProductId, Sku};
use crate::money::Money;

/// What a caller may ask of a product.
#[derive(Debug, Clone, PartialEq)]
pub enum ProductCommand {
    /// Create the product with at least one variant.
    Create {
        /// New id, chosen by the caller.
        id: ProductId,
        /// Display name, 1..=200 characters (trimmed).
        name: String,
        /// Up to 5000 characters.
        description: String,
        /// 1..=20 categories of 1..=64 characters.
        categories: Vec<String>,
        /// Free-form JSON attributes: at most 50 keys, 16 KiB and 4 levels deep.
        attributes: Map<String, Value>,
        /// 1..=100 variants with unique SKUs in one currency.
        variants: Vec<VariantSpec>,
        /// When the command was issued.
        now: DateTime<Utc>,
    },
    /// Change descriptive fields; `None` leaves a field as it is.
    Update {
        /// New name.
        name: Option<String>,
        /// New description.
        description: Option<String>,
        /// New categories (replacing the old ones).
        categories: Option<Vec<String>>,
        /// New attributes (replacing the old ones).
        attributes: Option<Map<String, Value>>,
        /// When the command was issued.
        now: DateTime<Utc>,
    },
    /// Add one more variant.
    AddVariant {
        /// The variant; its SKU must be new to the product.
        variant: VariantSpec,
        /// When the command was issued.
        now: DateTime<Utc>,
    },
    /// Reprice one variant (same currency as the product).
    ChangeVariantPrice {
        /// The variant to reprice.
        sku: Sku,
        /// The new price.
        price: Money,
        /// When the command was issued.
        now: DateTime<Utc>,
    },
    /// Withdraw the product from sale for good.
    Archive {
        /// When the command was issued.
        now: DateTime<Utc>,
    },
}
