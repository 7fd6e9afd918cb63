//! Product events: stable stored names, schema version 1.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::state::VariantSpec;
use crate::aggregate::DomainEvent;
use crate::ids::{ProductId, Sku};
use crate::money::Money;

/// What happened to a product.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all_fields = "camelCase")]
pub enum ProductEvent {
    /// The product exists, with its first variants.
    #[serde(rename = "ProductCreated")]
    ProductCreated {
        /// Product id.
        id: ProductId,
        /// Trimmed name.
        name: String,
        /// Description.
        description: String,
        /// Trimmed categories.
        categories: Vec<String>,
        /// Free-form attributes.
        attributes: Map<String, Value>,
        /// The variants.
        variants: Vec<VariantSpec>,
        /// Creation time.
        created_at: DateTime<Utc>,
    },
    /// Descriptive fields changed; only the changed ones are present.
    #[serde(rename = "ProductUpdated")]
    ProductUpdated {
        /// New name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// New description.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        description: Option<String>,
        /// New categories.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        categories: Option<Vec<String>>,
        /// New attributes.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        attributes: Option<Map<String, Value>>,
        /// Update time.
        updated_at: DateTime<Utc>,
    },
    /// A variant was added.
    #[serde(rename = "VariantAdded")]
    VariantAdded {
        /// The new variant.
        variant: VariantSpec,
        /// When.
        at: DateTime<Utc>,
    },
    /// A variant's price changed.
    #[serde(rename = "VariantPriceChanged")]
    VariantPriceChanged {
        /// The variant.
        sku: Sku,
        /// Price before.
        old_price: Money,
        /// Price now.
        price: Money,
        /// When.
        at: DateTime<Utc>,
    },
    /// The product was withdrawn from sale.
    #[serde(rename = "ProductArchived")]
    ProductArchived {
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for ProductEvent {
    fn event_type(&self) -> &'static str {
        match self {
            ProductEvent::ProductCreated { .. } => "ProductCreated",
            ProductEvent::ProductUpdated { .. } => "ProductUpdated",
            ProductEvent::VariantAdded { .. } => "VariantAdded",
            ProductEvent::VariantPriceChanged { .. } => "VariantPriceChanged",
            ProductEvent::ProductArchived { .. } => "ProductArchived",
        }
    }

    fn schema_version(_event_type: &str) -> u32 {
        1
    }

    fn upcast(_event_type: &str, _schema_version: u32, payload: Value) -> Value {
        payload
    }
}

impl ProductEvent {
    /// When the event happened.
    #[must_use]
    pub fn at(&self) -> DateTime<Utc> {
        match self {
            ProductEvent::ProductCreated { created_at, .. } => *created_at,
            ProductEvent::ProductUpdated { updated_at, .. } => *updated_at,
            ProductEvent::VariantAdded { at, .. }
            | ProductEvent::VariantPriceChanged { at, .. }
            | ProductEvent::ProductArchived { at } => *at,
        }
    }
}
