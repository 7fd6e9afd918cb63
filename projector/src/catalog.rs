//! The `catalog` projection: products and their variants, as the product list and product
//! view read them.
//!
//! Tables (see `migrations/*/0003_read_models.sql`): `rm_products` (one row per product,
//! with its price range and the product stream's version), `rm_product_categories`,
//! `rm_product_attributes` (top-level scalar attributes, for filtering) and `rm_variants`.
//!
//! Each event is applied by loading the product's stored state, folding the event with
//! the domain's own `evolve` (so the read model means exactly what the write side means)
//! and writing back what the event changed.
use anyhow::{Context, bail};
use async_trait::async_trait;
use domain::{
    aggregate::{Aggregate, decode},
    catalog::{Product, ProductEvent, ProductState, ProductStatus, VariantSpec},
    ids::{ProductId, Sku},
    money::{Currency, Money},
};
use eventstore::RecordedEvent;
use serde_json::{Map, Value};
use sqlx::{Any, Row, Transaction};

use crate::runtime::{Projection, parse_timestamp, stream_id, timestamp};

/// The catalogue read model.
#[derive(Clone, Copy, Debug, Default)]
pub struct CatalogProjection;

impl CatalogProjection {
    /// Its name (checkpoint key).
    pub const NAME: &'static str = "catalog";
}

/// The stored text of a product status.
pub fn status_text(status: ProductStatus) -> &'static str {
    match status {
        ProductStatus::Active => "ACTIVE",
        ProductStatus::Archived => "ARCHIVED",
    }
}

/// An attribute value as `rm_product_attributes` stores it: strings as they are, numbers
/// and booleans as their JSON text; `None` for null, arrays and objects (not filterable).
pub fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// The product's state as the read model holds it (`None`: not created yet).
async fn load(
    tx: &mut Transaction<'_, Any>,
    id: ProductId,
) -> anyhow::Result<Option<ProductState>> {
    let key = id.to_string();
    let Some(row) = sqlx::query(
        "SELECT name, description, status, categories, attributes, created_at, updated_at \
         FROM rm_products WHERE id = $1",
    )
    .bind(&key)
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(None);
    };
    let status = match row.try_get::<String, _>("status")?.as_str() {
        "ACTIVE" => ProductStatus::Active,
        "ARCHIVED" => ProductStatus::Archived,
        other => bail!("bad stored status {other:?}"),
    };
    let variants = sqlx::query(
        "SELECT sku, price_amount, currency, options FROM rm_variants \
         WHERE product_id = $1 ORDER BY ordinal",
    )
    .bind(&key)
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(|v| {
        let currency = Currency::parse(&v.try_get::<String, _>("currency")?)?;
        Ok(VariantSpec {
            sku: Sku::parse(&v.try_get::<String, _>("sku")?)?,
            price: Money::new(v.try_get("price_amount")?, currency),
            options: serde_json::from_str(&v.try_get::<String, _>("options")?)?,
        })
    })
    .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(Some(ProductState {
        id: Some(id),
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        categories: serde_json::from_str(&row.try_get::<String, _>("categories")?)?,
        attributes: serde_json::from_str(&row.try_get::<String, _>("attributes")?)?,
        variants,
        status: Some(status),
        created_at: Some(parse_timestamp(&row.try_get::<String, _>("created_at")?)?),
        updated_at: Some(parse_timestamp(&row.try_get::<String, _>("updated_at")?)?),
    }))
}

/// Refuses events that no valid history holds, before `evolve` (which would panic or
/// produce a product without identity).
fn check(state: Option<&ProductState>, event: &ProductEvent) -> anyhow::Result<()> {
    match (state, event) {
        (Some(_), ProductEvent::ProductCreated { .. }) => bail!("product created twice"),
        (None, ProductEvent::ProductCreated { .. }) => Ok(()),
        (None, _) => bail!("event for a product that was never created"),
        (Some(state), ProductEvent::VariantPriceChanged { sku, .. })
            if state.variant(sku).is_none() =>
        {
            bail!("price change of unknown variant {sku}")
        }
        (Some(_), _) => Ok(()),
    }
}

async fn save_product(
    tx: &mut Transaction<'_, Any>,
    id: ProductId,
    state: &ProductState,
    version: u64,
) -> anyhow::Result<()> {
    let prices = state.variants.iter().map(|v| v.price.amount);
    let (min, max) = (prices.clone().min().unwrap_or(0), prices.max().unwrap_or(0));
    let currency = state.currency().map(|c| c.to_string()).unwrap_or_default();
    let status = state.status.context("product without status")?;
    let created_at = state.created_at.context("product without creation time")?;
    let updated_at = state.updated_at.unwrap_or(created_at);
    sqlx::query(
        "INSERT INTO rm_products (id, name, name_key, description, status, categories, attributes, \
             currency, min_price, max_price, version, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, name_key = excluded.name_key, \
             description = excluded.description, status = excluded.status, \
             categories = excluded.categories, attributes = excluded.attributes, \
             currency = excluded.currency, min_price = excluded.min_price, \
             max_price = excluded.max_price, version = excluded.version, \
             created_at = excluded.created_at, updated_at = excluded.updated_at",
    )
    .bind(id.to_string())
    .bind(&state.name)
    .bind(state.name.to_lowercase())
    .bind(&state.description)
    .bind(status_text(status))
    .bind(serde_json::to_string(&state.categories)?)
    .bind(serde_json::to_string(&state.attributes)?)
    .bind(currency)
    .bind(min)
    .bind(max)
    .bind(i64::try_from(version)?)
    .bind(timestamp(created_at))
    .bind(timestamp(updated_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn save_categories(
    tx: &mut Transaction<'_, Any>,
    id: ProductId,
    categories: &[String],
) -> anyhow::Result<()> {
    let key = id.to_string();
    sqlx::query("DELETE FROM rm_product_categories WHERE product_id = $1")
        .bind(&key)
        .execute(&mut **tx)
        .await?;
    for category in categories {
        sqlx::query(
            "INSERT INTO rm_product_categories (product_id, category) VALUES ($1, $2) \
             ON CONFLICT (product_id, category) DO NOTHING",
        )
        .bind(&key)
        .bind(category)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn save_attributes(
    tx: &mut Transaction<'_, Any>,
    id: ProductId,
    attributes: &Map<String, Value>,
) -> anyhow::Result<()> {
    let key = id.to_string();
    sqlx::query("DELETE FROM rm_product_attributes WHERE product_id = $1")
        .bind(&key)
        .execute(&mut **tx)
        .await?;
    for (name, value) in attributes {
        let Some(value) = scalar_text(value) else {
            continue;
        };
        sqlx::query(
            "INSERT INTO rm_product_attributes (product_id, key, value) VALUES ($1, $2, $3)",
        )
        .bind(&key)
        .bind(name)
        .bind(value)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

async fn save_variant(
    tx: &mut Transaction<'_, Any>,
    id: ProductId,
    state: &ProductState,
    sku: &Sku,
) -> anyhow::Result<()> {
    let (ordinal, variant) = state
        .variants
        .iter()
        .enumerate()
        .find(|(_, v)| &v.sku == sku)
        .with_context(|| format!("variant {sku} missing after evolve"))?;
    sqlx::query(
        "INSERT INTO rm_variants (sku, product_id, price_amount, currency, options, ordinal) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (sku) DO UPDATE SET product_id = excluded.product_id, \
             price_amount = excluded.price_amount, currency = excluded.currency, \
             options = excluded.options, ordinal = excluded.ordinal",
    )
    .bind(sku.as_str())
    .bind(id.to_string())
    .bind(variant.price.amount)
    .bind(variant.price.currency.to_string())
    .bind(serde_json::to_string(&variant.options)?)
    .bind(i64::try_from(ordinal)?)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[async_trait]
impl Projection for CatalogProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        event.stream.category() == Product::NAME
    }

    async fn apply(
        &self,
        tx: &mut Transaction<'_, Any>,
        recorded: &RecordedEvent,
    ) -> anyhow::Result<()> {
        let event: ProductEvent = decode(
            &recorded.event_type,
            recorded.schema_version,
            recorded.payload.clone(),
        )
        .context("undecodable product event")?;
        let id = stream_id(&recorded.stream, Product::NAME)?;
        let before = load(tx, id).await?;
        check(before.as_ref(), &event)?;
        let state = Product::evolve(before.unwrap_or_default(), &event);
        save_product(tx, id, &state, recorded.version).await?;
        match &event {
            ProductEvent::ProductCreated {
                categories,
                attributes,
                variants,
                ..
            } => {
                save_categories(tx, id, categories).await?;
                save_attributes(tx, id, attributes).await?;
                for variant in variants {
                    save_variant(tx, id, &state, &variant.sku).await?;
                }
            }
            ProductEvent::ProductUpdated {
                categories,
                attributes,
                ..
            } => {
                if let Some(categories) = categories {
                    save_categories(tx, id, categories).await?;
                }
                if let Some(attributes) = attributes {
                    save_attributes(tx, id, attributes).await?;
                }
            }
            ProductEvent::VariantAdded { variant, .. } => {
                save_variant(tx, id, &state, &variant.sku).await?;
            }
            ProductEvent::VariantPriceChanged { sku, .. } => {
                save_variant(tx, id, &state, sku).await?;
            }
            ProductEvent::ProductArchived { .. } => {}
        }
        Ok(())
    }
}
