//! The `catalog` projection: products and their variants, as the product list and product
//! view read them.
//!
//! Tables (see `migrations/*/0003_read_models.sql`): `rm_products` (one row per product,
//! with its price range and the product stream's version), `rm_product_categories` (one
//! row per product and category, with what the product is listed by: see `Listing`),
//! `rm_product_attributes` (top-level scalar attributes, for filtering) and `rm_variants`.
//!
//! Events are applied by loading each product's stored state, folding the events with the
//! domain's own `evolve` (so the read model means exactly what the write side means) and
//! writing back what they changed: a batch loads every product it touches in one go and
//! writes each changed row once.
use std::collections::{BTreeMap, BTreeSet, HashMap};

use anyhow::{Context, bail};
use async_trait::async_trait;
use domain::{
    aggregate::Aggregate,
    catalog::{Product, ProductEvent, ProductState, ProductStatus, VariantSpec},
    ids::{ProductId, Sku},
    money::{Currency, Money},
};
use eventstore::RecordedEvent;
use serde_json::Value;
use sqlx::{Any, AnyConnection, Row, Transaction};

use crate::{
    batch::{self, Arg},
    runtime::{Projection, parse_timestamp, stream_id, timestamp},
};

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

/// The longest attribute name or value, in characters, a product list filters by
/// (`attr.<key>=<value>`). Longer ones are kept in the product but not in
/// `rm_product_attributes`, whose index (name, value, product) PostgreSQL caps at about
/// 2.7 kB a row: a 12,000-character value failed the catalogue projection's batch, and so
/// stopped it, on every retry.
pub const MAX_FILTERABLE_CHARS: usize = 200;

/// Whether an attribute with this name and value can be filtered by: both short enough.
fn filterable(name: &str, value: &str) -> bool {
    name.chars().count() <= MAX_FILTERABLE_CHARS && value.chars().count() <= MAX_FILTERABLE_CHARS
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

/// The states of these products as the read model holds them (absent: not created yet).
async fn load(
    conn: &mut AnyConnection,
    ids: &[ProductId],
) -> anyhow::Result<HashMap<ProductId, ProductState>> {
    let keys: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let mut variants: HashMap<String, Vec<(i64, VariantSpec)>> = HashMap::new();
    for v in batch::fetch_in(
        conn,
        "SELECT product_id, sku, price_amount, currency, options, ordinal FROM rm_variants \
         WHERE product_id IN",
        "",
        &keys,
    )
    .await?
    {
        let currency = Currency::parse(&v.try_get::<String, _>("currency")?)?;
        variants.entry(v.try_get("product_id")?).or_default().push((
            v.try_get("ordinal")?,
            VariantSpec {
                sku: Sku::parse(&v.try_get::<String, _>("sku")?)?,
                price: Money::new(v.try_get("price_amount")?, currency),
                options: serde_json::from_str(&v.try_get::<String, _>("options")?)?,
            },
        ));
    }
    let rows = batch::fetch_in(
        conn,
        "SELECT id, name, description, status, categories, attributes, created_at, updated_at \
         FROM rm_products WHERE id IN",
        "",
        &keys,
    )
    .await?;
    let mut states = HashMap::with_capacity(rows.len());
    for row in rows {
        let key: String = row.try_get("id")?;
        let id: ProductId = key
            .parse()
            .ok()
            .with_context(|| format!("bad stored product id {key:?}"))?;
        let status = match row.try_get::<String, _>("status")?.as_str() {
            "ACTIVE" => ProductStatus::Active,
            "ARCHIVED" => ProductStatus::Archived,
            other => bail!("bad stored status {other:?}"),
        };
        let mut variants = variants.remove(&key).unwrap_or_default();
        variants.sort_by_key(|(ordinal, _)| *ordinal);
        states.insert(
            id,
            ProductState {
                id: Some(id),
                name: row.try_get("name")?,
                description: row.try_get("description")?,
                categories: serde_json::from_str(&row.try_get::<String, _>("categories")?)?,
                attributes: serde_json::from_str(&row.try_get::<String, _>("attributes")?)?,
                variants: variants.into_iter().map(|(_, v)| v).collect(),
                status: Some(status),
                created_at: Some(parse_timestamp(&row.try_get::<String, _>("created_at")?)?),
                updated_at: Some(parse_timestamp(&row.try_get::<String, _>("updated_at")?)?),
            },
        );
    }
    Ok(states)
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

/// What a product is listed by: its status, lower-cased name, price range and creation
/// time. Its row and each of its category rows carry them (a category's list is a range
/// of one index of `rm_product_categories`, `migrations/*/…_category_listing.sql`).
struct Listing {
    status: &'static str,
    name_key: String,
    min_price: i64,
    max_price: i64,
    created_at: String,
}

impl Listing {
    fn of(state: &ProductState) -> anyhow::Result<Self> {
        let prices = state.variants.iter().map(|v| v.price.amount);
        let status = state.status.context("product without status")?;
        let created_at = state.created_at.context("product without creation time")?;
        Ok(Self {
            status: status_text(status),
            name_key: state.name.to_lowercase(),
            min_price: prices.clone().min().unwrap_or(0),
            max_price: prices.max().unwrap_or(0),
            created_at: timestamp(created_at),
        })
    }
}

fn product_row(id: ProductId, state: &ProductState, version: u64) -> anyhow::Result<Vec<Arg>> {
    let listing = Listing::of(state)?;
    let currency = state.currency().map(|c| c.to_string()).unwrap_or_default();
    let created_at = state.created_at.context("product without creation time")?;
    let updated_at = state.updated_at.unwrap_or(created_at);
    Ok(vec![
        id.to_string().into(),
        state.name.as_str().into(),
        listing.name_key.into(),
        state.description.as_str().into(),
        listing.status.into(),
        serde_json::to_string(&state.categories)?.into(),
        serde_json::to_string(&state.attributes)?.into(),
        currency.into(),
        listing.min_price.into(),
        listing.max_price.into(),
        i64::try_from(version)?.into(),
        listing.created_at.into(),
        timestamp(updated_at).into(),
    ])
}

/// The rows of `rm_product_categories` for the product: one per distinct category.
fn category_rows(id: ProductId, state: &ProductState) -> anyhow::Result<Vec<Vec<Arg>>> {
    let listing = Listing::of(state)?;
    let distinct: BTreeSet<&String> = state.categories.iter().collect();
    Ok(distinct
        .into_iter()
        .map(|category| {
            vec![
                id.to_string().into(),
                category.as_str().into(),
                listing.status.into(),
                listing.name_key.as_str().into(),
                listing.min_price.into(),
                listing.max_price.into(),
                listing.created_at.as_str().into(),
            ]
        })
        .collect())
}

fn variant_row(id: ProductId, state: &ProductState, sku: &Sku) -> anyhow::Result<Vec<Arg>> {
    let (ordinal, variant) = state
        .variants
        .iter()
        .enumerate()
        .find(|(_, v)| &v.sku == sku)
        .with_context(|| format!("variant {sku} missing after evolve"))?;
    Ok(vec![
        sku.as_str().into(),
        id.to_string().into(),
        variant.price.amount.into(),
        variant.price.currency.to_string().into(),
        serde_json::to_string(&variant.options)?.into(),
        i64::try_from(ordinal)?.into(),
    ])
}

/// What a batch changed besides each touched product's own row.
#[derive(Default)]
struct Changes {
    /// Touched products and the version of their last event.
    products: BTreeMap<ProductId, u64>,
    /// Products whose attributes were set.
    attributes: BTreeSet<ProductId>,
    /// Variants written, each by the product of the last event that wrote it.
    variants: BTreeMap<Sku, ProductId>,
}

impl Changes {
    fn record(&mut self, id: ProductId, version: u64, event: &ProductEvent) {
        self.products.insert(id, version);
        match event {
            ProductEvent::ProductCreated { variants, .. } => {
                self.attributes.insert(id);
                for variant in variants {
                    self.variants.insert(variant.sku.clone(), id);
                }
            }
            ProductEvent::ProductUpdated { attributes, .. } => {
                if attributes.is_some() {
                    self.attributes.insert(id);
                }
            }
            ProductEvent::VariantAdded { variant, .. } => {
                self.variants.insert(variant.sku.clone(), id);
            }
            ProductEvent::VariantPriceChanged { sku, .. } => {
                self.variants.insert(sku.clone(), id);
            }
            ProductEvent::ProductArchived { .. } => {}
        }
    }

    async fn save(
        self,
        conn: &mut AnyConnection,
        states: &HashMap<ProductId, ProductState>,
    ) -> anyhow::Result<()> {
        let state = |id: &ProductId| states.get(id).context("folded product missing");
        let products = self
            .products
            .iter()
            .map(|(id, version)| product_row(*id, state(id)?, *version))
            .collect::<anyhow::Result<Vec<_>>>()?;
        batch::insert_rows(
            conn,
            "INSERT INTO rm_products (id, name, name_key, description, status, categories, \
                 attributes, currency, min_price, max_price, version, created_at, updated_at)",
            "ON CONFLICT (id) DO UPDATE SET name = excluded.name, name_key = excluded.name_key, \
                 description = excluded.description, status = excluded.status, \
                 categories = excluded.categories, attributes = excluded.attributes, \
                 currency = excluded.currency, min_price = excluded.min_price, \
                 max_price = excluded.max_price, version = excluded.version, \
                 created_at = excluded.created_at, updated_at = excluded.updated_at",
            products,
        )
        .await?;

        // Every change of a product can change how it is listed: its category rows are
        // written anew with each.
        let keys: Vec<String> = self.products.keys().map(ToString::to_string).collect();
        batch::delete_in(
            conn,
            "DELETE FROM rm_product_categories WHERE product_id IN",
            &keys,
        )
        .await?;
        let mut categories = Vec::new();
        for id in self.products.keys() {
            categories.extend(category_rows(*id, state(id)?)?);
        }
        batch::insert_rows(
            conn,
            "INSERT INTO rm_product_categories (product_id, category, status, name_key, \
                 min_price, max_price, created_at)",
            "ON CONFLICT (product_id, category) DO NOTHING",
            categories,
        )
        .await?;

        let keys: Vec<String> = self.attributes.iter().map(ToString::to_string).collect();
        batch::delete_in(
            conn,
            "DELETE FROM rm_product_attributes WHERE product_id IN",
            &keys,
        )
        .await?;
        let mut attributes = Vec::new();
        for id in &self.attributes {
            for (name, value) in &state(id)?.attributes {
                if let Some(value) = scalar_text(value).filter(|v| filterable(name, v)) {
                    attributes.push(vec![
                        id.to_string().into(),
                        name.as_str().into(),
                        value.into(),
                    ]);
                }
            }
        }
        batch::insert_rows(
            conn,
            "INSERT INTO rm_product_attributes (product_id, key, value)",
            "",
            attributes,
        )
        .await?;

        let variants = self
            .variants
            .iter()
            .map(|(sku, id)| variant_row(*id, state(id)?, sku))
            .collect::<anyhow::Result<Vec<_>>>()?;
        batch::insert_rows(
            conn,
            "INSERT INTO rm_variants (sku, product_id, price_amount, currency, options, ordinal)",
            "ON CONFLICT (sku) DO UPDATE SET product_id = excluded.product_id, \
                 price_amount = excluded.price_amount, currency = excluded.currency, \
                 options = excluded.options, ordinal = excluded.ordinal",
            variants,
        )
        .await
    }
}

fn decode_one(recorded: &RecordedEvent) -> anyhow::Result<(ProductId, ProductEvent)> {
    let event: ProductEvent =
        batch::decode_event::<ProductEvent>(recorded).context("undecodable product event")?;
    Ok((stream_id(&recorded.stream, Product::NAME)?, event))
}

#[async_trait]
impl Projection for CatalogProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        event.stream.category() == Product::NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &[
            "rm_products",
            "rm_product_categories",
            "rm_product_attributes",
            "rm_variants",
        ]
    }

    fn lookup_indexes(&self) -> &'static [&'static str] {
        // Loading a product's variants.
        &["rm_variants_product"]
    }

    /// Loads every product the batch touches in one go, folds the events in memory and
    /// writes each changed row once.
    async fn apply_many(
        &self,
        tx: &mut Transaction<'_, Any>,
        events: &[&RecordedEvent],
    ) -> anyhow::Result<()> {
        let decoded = events
            .iter()
            .map(|recorded| decode_one(recorded).with_context(|| batch::describe(recorded)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut ids: Vec<ProductId> = decoded.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut states = load(tx, &ids).await?;
        let mut changes = Changes::default();
        for ((id, event), recorded) in decoded.iter().zip(events) {
            let before = states.remove(id);
            check(before.as_ref(), event).with_context(|| batch::describe(recorded))?;
            states.insert(*id, Product::evolve(before.unwrap_or_default(), event));
            changes.record(*id, recorded.version, event);
        }
        changes.save(tx, &states).await
    }
}
