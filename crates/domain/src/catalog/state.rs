//! Product state, its value types, and `evolve`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::event::ProductEvent;
use crate::ids::{ProductId, Sku};
use crate::money::{Currency, Money};

/// One sellable variant: its SKU, price and option values (size, colour…).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VariantSpec {
    /// Unique within the product; stock is kept per SKU.
    pub sku: Sku,
    /// Price in minor units, `0..=10^12`.
    pub price: Money,
    /// Option name to value, at most 10, each at most 64 characters.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// Whether a product is on sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProductStatus {
    /// On sale.
    Active,
    /// Withdrawn for good.
    Archived,
}

/// A product as its events left it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProductState {
    /// Set once created.
    pub id: Option<ProductId>,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Categories.
    pub categories: Vec<String>,
    /// Free-form attributes.
    pub attributes: Map<String, Value>,
    /// Variants in the order they were added.
    pub variants: Vec<VariantSpec>,
    /// `None` until created.
    pub status: Option<ProductStatus>,
    /// Creation time.
    pub created_at: Option<DateTime<Utc>>,
    /// Time of the last event.
    pub updated_at: Option<DateTime<Utc>>,
}

impl ProductState {
    /// Whether the product has been created.
    #[must_use]
    pub fn exists(&self) -> bool {
        self.status.is_some()
    }

    /// Whether the product is archived.
    #[must_use]
    pub fn is_archived(&self) -> bool {
        self.status == Some(ProductStatus::Archived)
    }

    /// The variant with this SKU, if any.
    #[must_use]
    pub fn variant(&self, sku: &Sku) -> Option<&VariantSpec> {
        self.variants.iter().find(|v| &v.sku == sku)
    }

    /// The currency every variant is priced in (`None` before creation).
    #[must_use]
    pub fn currency(&self) -> Option<Currency> {
        self.variants.first().map(|v| v.price.currency)
    }
}

pub(super) fn evolve(mut state: ProductState, event: &ProductEvent) -> ProductState {
    state.updated_at = Some(event.at());
    match event {
        ProductEvent::ProductCreated {
            id,
            name,
            description,
            categories,
            attributes,
            variants,
            created_at,
        } => {
            state.id = Some(*id);
            state.name.clone_from(name);
            state.description.clone_from(description);
            state.categories.clone_from(categories);
            state.attributes.clone_from(attributes);
            state.variants.clone_from(variants);
            state.status = Some(ProductStatus::Active);
            state.created_at = Some(*created_at);
        }
        ProductEvent::ProductUpdated {
            name,
            description,
            categories,
            attributes,
            ..
        } => {
            if let Some(name) = name {
                state.name.clone_from(name);
            }
            if let Some(description) = description {
                state.description.clone_from(description);
            }
            if let Some(categories) = categories {
                state.categories.clone_from(categories);
            }
            if let Some(attributes) = attributes {
                state.attributes.clone_from(attributes);
            }
        }
        ProductEvent::VariantAdded { variant, .. } => state.variants.push(variant.clone()),
        ProductEvent::VariantPriceChanged { sku, price, .. } => {
            let variant = state
                .variants
                .iter_mut()
                .find(|v| &v.sku == sku)
                .unwrap_or_else(|| panic!("VariantPriceChanged for unknown SKU {sku}"));
            variant.price = *price;
        }
        ProductEvent::ProductArchived { .. } => state.status = Some(ProductStatus::Archived),
    }
    state
}
