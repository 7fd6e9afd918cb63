//! The catalogue's read repository, [`ProductCatalogue`]: which products match, and what
//! one product looks like. Every value is bound, never spliced.
//!
//! Product views are cached ([`cache::ViewCache`]): in process, and in Redis when the node
//! has it. An entry remembers the `catalog` checkpoint it was read at; while that checkpoint
//! has not moved the entry is served as is, and once it has moved the entry is still served
//! if the product's stored version is unchanged (every catalogue row of a product comes from
//! its own stream, so same version, same rows). Availability is never cached: it is read
//! with every request.
//!
//! List pages are cached in process as the JSON they are sent as, each with the `catalog`
//! and `inventory` checkpoints taken before it was read; a page is served only while both
//! checkpoints are where they were, so no list is older than the read models (every
//! restock or order moves `inventory` and renders pages anew).
use std::{collections::BTreeMap, sync::Arc};

use anyhow::Context;
use bytes::Bytes;
use cache::{LocalConfig, SharedViews, ViewCache};
use projector::{CatalogProjection, InventoryProjection};
use serde_json::{Map, Value};
use sqlx::{AnyPool, Row, any::AnyRow};
use uuid::Uuid;
use web::ApiError;

use crate::{
    QueryConfig,
    consistency::Consistency,
    sql_filter::{Bind, Filter, escape_like},
    views::{MoneyView, PriceRange, ProductPage, ProductStatus, ProductView, VariantView},
};

/// Most products on one page.
pub const MAX_PAGE_SIZE: u32 = 100;
/// Products on a page when `pageSize` is not given.
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// Longest text accepted in a filter (`q`, `category`, attribute keys and values).
pub const MAX_FILTER_LEN: usize = projector::catalog::MAX_FILTERABLE_CHARS;
/// Most attribute filters in one query.
pub const MAX_ATTRIBUTE_FILTERS: usize = 10;

/// The order of a product list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Sort {
    /// By name, A to Z (`name`, the default).
    #[default]
    Name,
    /// By name, Z to A (`-name`).
    NameDesc,
    /// By lowest variant price, cheapest first (`price`).
    Price,
    /// By lowest variant price, dearest first (`-price`).
    PriceDesc,
    /// Newest first (`newest`).
    Newest,
}

impl Sort {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "name" => Some(Self::Name),
            "-name" => Some(Self::NameDesc),
            "price" => Some(Self::Price),
            "-price" => Some(Self::PriceDesc),
            "newest" => Some(Self::Newest),
            _ => None,
        }
    }

    /// The ORDER BY clause over the listed rows `l`, whose product id is `id`; ties broken
    /// by id so pages never overlap.
    fn order_by(self, id: &str) -> String {
        match self {
            Self::Name => format!("l.name_key ASC, {id} ASC"),
            Self::NameDesc => format!("l.name_key DESC, {id} ASC"),
            Self::Price => format!("l.min_price ASC, {id} ASC"),
            Self::PriceDesc => format!("l.min_price DESC, {id} ASC"),
            Self::Newest => format!("l.created_at DESC, {id} DESC"),
        }
    }
}

/// Where a list's rows come from, as `l`: every product (`rm_products`), or, when the list
/// is of one category, that category's rows of `rm_product_categories`, which carry the
/// same listing columns (status, name, price range, creation time) and an index per sort.
#[derive(Clone, Copy)]
struct Listed {
    /// The FROM item, aliased `l`.
    from: &'static str,
    /// The product id's column.
    id: &'static str,
}

impl Listed {
    fn of(query: &ProductQuery) -> Self {
        if query.category.is_some() {
            Self {
                from: "rm_product_categories l",
                id: "l.product_id",
            }
        } else {
            Self {
                from: "rm_products l",
                id: "l.id",
            }
        }
    }
}

/// A validated product list query.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ProductQuery {
    /// Which status to list (`ACTIVE` unless asked otherwise).
    pub status: ProductStatus,
    /// Listed under this category.
    pub category: Option<String>,
    /// Some variant costs at least this much (minor units).
    pub min_price: Option<i64>,
    /// Some variant costs at most this much (minor units); with `min_price`, the same variant.
    pub max_price: Option<i64>,
    /// Top-level attributes that must have these values (`attr.<key>=<value>`).
    pub attributes: Vec<(String, String)>,
    /// Case-insensitive substring of the name.
    pub q: Option<String>,
    /// The order.
    pub sort: Sort,
    /// Page number, from 1.
    pub page: u32,
    /// Products per page, 1 to [`MAX_PAGE_SIZE`].
    pub page_size: u32,
}

impl Default for ProductQuery {
    fn default() -> Self {
        Self {
            status: ProductStatus::Active,
            category: None,
            min_price: None,
            max_price: None,
            attributes: Vec::new(),
            q: None,
            sort: Sort::default(),
            page: 1,
            page_size: DEFAULT_PAGE_SIZE,
        }
    }
}

fn text(name: &str, value: &str) -> Result<String, ApiError> {
    if value.is_empty() || value.chars().count() > MAX_FILTER_LEN {
        return Err(ApiError::invalid_query(format!(
            "{name} must be 1 to {MAX_FILTER_LEN} characters"
        )));
    }
    Ok(value.to_owned())
}

fn number<T: std::str::FromStr + PartialOrd>(
    name: &str,
    value: &str,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ApiError> {
    value
        .parse::<T>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| ApiError::invalid_query(format!("{name} is out of range or not an integer")))
}

impl ProductQuery {
    /// Validates the query string's pairs. Unknown or repeated parameters are refused, so a
    /// misspelt filter never silently lists everything.
    ///
    /// # Errors
    /// 400 (`invalid_query`) naming the parameter at fault.
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut query = Self::default();
        let mut seen = Vec::new();
        for (key, value) in pairs {
            if let Some(attribute) = key.strip_prefix("attr.") {
                let attribute = text("an attribute name", attribute)?;
                if query.attributes.iter().any(|(k, _)| *k == attribute) {
                    return Err(ApiError::invalid_query(format!("{key} is given twice")));
                }
                query.attributes.push((attribute, text(key, value)?));
                continue;
            }
            if seen.contains(&key.as_str()) {
                return Err(ApiError::invalid_query(format!("{key} is given twice")));
            }
            seen.push(key.as_str());
            match key.as_str() {
                "category" => query.category = Some(text(key, value)?),
                "minPrice" => query.min_price = Some(number(key, value, 0..=i64::MAX)?),
                "maxPrice" => query.max_price = Some(number(key, value, 0..=i64::MAX)?),
                "status" => {
                    query.status = ProductStatus::parse(value).ok_or_else(|| {
                        ApiError::invalid_query("status must be ACTIVE or ARCHIVED")
                    })?;
                }
                "q" => query.q = Some(text(key, value)?),
                "sort" => {
                    query.sort = Sort::parse(value).ok_or_else(|| {
                        ApiError::invalid_query(
                            "sort must be one of name, -name, price, -price, newest",
                        )
                    })?;
                }
                "page" => query.page = number(key, value, 1..=1_000_000)?,
                "pageSize" => {
                    query.page_size = number(key, value, 1..=MAX_PAGE_SIZE).map_err(|_| {
                        ApiError::invalid_query(format!(
                            "pageSize must be between 1 and {MAX_PAGE_SIZE}"
                        ))
                    })?;
                }
                // Read by the read-your-writes extractor.
                "minPosition" => {}
                other => {
                    return Err(ApiError::invalid_query(format!(
                        "unknown parameter {other}"
                    )));
                }
            }
        }
        if query.attributes.len() > MAX_ATTRIBUTE_FILTERS {
            return Err(ApiError::invalid_query(format!(
                "at most {MAX_ATTRIBUTE_FILTERS} attribute filters"
            )));
        }
        if let (Some(min), Some(max)) = (query.min_price, query.max_price)
            && min > max
        {
            return Err(ApiError::invalid_query("minPrice must not exceed maxPrice"));
        }
        Ok(query)
    }
}

/// The conditions of a product list query over the listed rows `l` of `listed`.
fn product_filter(query: &ProductQuery, listed: Listed) -> Filter {
    let mut filter = Filter::default();
    let id = listed.id;
    if let Some(category) = &query.category {
        filter.push("l.category", "=", category.clone());
    }
    filter.push("l.status", "=", query.status.as_str().to_owned());
    // A product has at least one variant, and its listed price range runs from its
    // cheapest variant's price to its dearest's: "some variant costs at least `min`" is
    // `max_price >= min`, "at most `max`" is `min_price <= max`. With both, one variant
    // must cost between them: true when either end of the range lies in the band, so the
    // variants are read only for a product whose range spans the whole band. (With 100,000
    // products, counting a band that read every candidate's variants took 200 ms.)
    let min = query.min_price.map(|bound| filter.bind(Bind::Int(bound)));
    let max = query.max_price.map(|bound| filter.bind(Bind::Int(bound)));
    if let Some(min) = &min {
        filter.require(format!("l.max_price >= {min}"));
    }
    if let Some(max) = &max {
        filter.require(format!("l.min_price <= {max}"));
    }
    if let (Some(min), Some(max)) = (&min, &max) {
        filter.require(format!(
            "(l.min_price >= {min} OR l.max_price <= {max} OR EXISTS (SELECT 1 FROM \
                 rm_variants pv WHERE pv.product_id = {id} AND pv.price_amount >= {min} \
                 AND pv.price_amount <= {max}))"
        ));
    }
    for (key, value) in &query.attributes {
        let key = filter.bind(Bind::Text(key.clone()));
        let value = filter.bind(Bind::Text(value.clone()));
        filter.require(format!(
            "EXISTS (SELECT 1 FROM rm_product_attributes a \
                 WHERE a.product_id = {id} AND a.key = {key} AND a.value = {value})"
        ));
    }
    if let Some(q) = &query.q {
        let pattern = format!("%{}%", escape_like(&q.to_lowercase()));
        let pattern = filter.bind(Bind::Text(pattern));
        filter.require(format!("l.name_key LIKE {pattern} ESCAPE '\\'"));
    }
    filter
}

const PRODUCT_COLUMNS: &str = "p.id, p.name, p.description, p.status, p.categories, \
    p.attributes, p.currency, p.min_price, p.max_price, p.version, p.created_at, p.updated_at";
const VARIANT_COLUMNS: &str = "v.sku AS v_sku, v.price_amount AS v_amount, \
    v.currency AS v_currency, v.options AS v_options";

fn product_from_row(row: &AnyRow) -> anyhow::Result<ProductView> {
    let status: String = row.try_get("status")?;
    let currency: String = row.try_get("currency")?;
    Ok(ProductView {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        categories: serde_json::from_str(&row.try_get::<String, _>("categories")?)?,
        attributes: serde_json::from_str::<Map<String, Value>>(
            &row.try_get::<String, _>("attributes")?,
        )?,
        status: ProductStatus::parse(&status)
            .with_context(|| format!("bad stored status {status:?}"))?,
        variants: Vec::new(),
        price_range: PriceRange {
            min: row.try_get("min_price")?,
            max: row.try_get("max_price")?,
            currency,
        },
        version: u64::try_from(row.try_get::<i64, _>("version")?)?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The variant of a joined row (`None`: the product has no variant row).
fn variant_from_row(row: &AnyRow, with_available: bool) -> anyhow::Result<Option<VariantView>> {
    let Some(sku) = row.try_get::<Option<String>, _>("v_sku")? else {
        return Ok(None);
    };
    let available = if with_available {
        row.try_get::<Option<i64>, _>("v_available")?.unwrap_or(0)
    } else {
        0
    };
    Ok(Some(VariantView {
        sku,
        price: MoneyView {
            amount: row.try_get("v_amount")?,
            currency: row.try_get("v_currency")?,
        },
        options: serde_json::from_str::<BTreeMap<String, String>>(
            &row.try_get::<String, _>("v_options")?,
        )?,
        available,
    }))
}

/// Products with their variants from rows joined one per variant, in row order.
fn group(rows: &[AnyRow], with_available: bool) -> anyhow::Result<Vec<ProductView>> {
    let mut products: Vec<ProductView> = Vec::new();
    for row in rows {
        let id: String = row.try_get("id")?;
        if products.last().is_none_or(|p| p.id != id) {
            products.push(product_from_row(row)?);
        }
        if let (Some(variant), Some(product)) =
            (variant_from_row(row, with_available)?, products.last_mut())
        {
            product.variants.push(variant);
        }
    }
    Ok(products)
}

/// The views of the products `ids` as the product list shows them (variants with live
/// availability), in no particular order; ids without a product are left out.
///
/// # Errors
/// When the read models cannot be read.
pub(crate) async fn product_views(
    pool: &AnyPool,
    ids: &[String],
) -> Result<Vec<ProductView>, ApiError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let placeholders: Vec<String> = (1..=ids.len()).map(|n| format!("${n}")).collect();
    let sql = format!(
        "SELECT {PRODUCT_COLUMNS}, {VARIANT_COLUMNS}, i.on_hand - i.reserved AS v_available \
         FROM rm_products p \
         LEFT JOIN rm_variants v ON v.product_id = p.id \
         LEFT JOIN rm_inventory i ON i.sku = v.sku \
         WHERE p.id IN ({}) ORDER BY p.id, v.ordinal",
        placeholders.join(", ")
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for id in ids {
        query = query.bind(id.clone());
    }
    let rows = query.fetch_all(pool).await.map_err(internal)?;
    Ok(group(&rows, true)?)
}

/// A list page as sent, its entity tag, and the read models' checkpoints it was read at.
#[derive(Debug)]
struct CachedPage {
    as_of: (u64, u64),
    page: ListPage,
}

/// A list page's JSON and its `ETag` (a hash of those bytes, so every node that reads the
/// same page gives it the same tag, and any change in it, a replay's included, a new one).
#[derive(Clone, Debug)]
pub struct ListPage {
    /// The page as sent.
    pub json: Bytes,
    /// Quoted, ready for the `ETag` header.
    pub etag: String,
}

impl ListPage {
    fn new(json: Bytes) -> Self {
        use std::hash::{Hash, Hasher};
        // Fixed keys: the same bytes hash alike in every process.
        let mut hasher = std::hash::DefaultHasher::new();
        json.hash(&mut hasher);
        let etag = format!("\"l{:016x}{:x}\"", hasher.finish(), json.len());
        Self { json, etag }
    }
}

/// Most bytes of list pages one node keeps.
const PAGE_CACHE_BYTES: u64 = 8 * 1024 * 1024;

/// Most filters whose match count one node keeps.
const TOTALS_CACHED: u64 = 10_000;

/// Which products match a query, and what one product looks like.
#[derive(Clone, Debug)]
pub struct ProductCatalogue {
    pool: AnyPool,
    consistency: Consistency,
    views: ViewCache<ProductView>,
    pages: moka::sync::Cache<ProductQuery, Arc<CachedPage>>,
    /// Match counts by filter (sort and page cleared), with the checkpoints read before
    /// each was counted: every page and sort of one filter shares one `COUNT(*)`.
    totals: moka::sync::Cache<ProductQuery, ((u64, u64), i64)>,
}

impl ProductCatalogue {
    /// Over the read models in `pool`, caching in process as `config` says.
    pub fn new(pool: AnyPool, consistency: Consistency, config: &QueryConfig) -> Self {
        let local = LocalConfig {
            capacity: config.product_cache_capacity,
            ttl: config.product_cache_ttl,
        };
        let pages = moka::sync::Cache::builder()
            .max_capacity(PAGE_CACHE_BYTES)
            .weigher(|_, cached: &Arc<CachedPage>| {
                u32::try_from(cached.page.json.len()).unwrap_or(u32::MAX)
            })
            .time_to_live(config.product_cache_ttl)
            .build();
        Self {
            pool,
            consistency,
            views: ViewCache::new(PRODUCT_VIEWS, &local),
            pages,
            totals: moka::sync::Cache::builder()
                .max_capacity(TOTALS_CACHED)
                .time_to_live(config.product_cache_ttl)
                .build(),
        }
    }

    /// One page of the products matching `query` as JSON, with its `ETag`: from the page cache while the
    /// catalogue and the inventory are where they were when it was read, else read anew.
    ///
    /// # Errors
    /// When the read models cannot be read.
    pub async fn list_json(&self, query: &ProductQuery) -> Result<ListPage, ApiError> {
        // Checkpoints first: the page read after them is at least that new.
        let as_of = self
            .consistency
            .position_pair([CatalogProjection::NAME, InventoryProjection::NAME])
            .await?;
        if let Some(cached) = self.pages.get(query).filter(|cached| cached.as_of == as_of) {
            return Ok(cached.page.clone());
        }
        let page = self.list_at(query, Some(as_of)).await?;
        let page = ListPage::new(Bytes::from(serde_json::to_vec(&page).map_err(internal)?));
        self.pages.insert(
            query.clone(),
            Arc::new(CachedPage {
                as_of,
                page: page.clone(),
            }),
        );
        Ok(page)
    }

    /// The same catalogue with `shared` (Redis) behind its in-process cache.
    #[must_use]
    pub fn with_shared_cache(mut self, shared: SharedViews) -> Self {
        self.views = self.views.with_shared(shared);
        self
    }

    /// Drops every list page and product view this node caches in process.
    pub fn clear_local(&self) {
        self.pages.invalidate_all();
        self.totals.invalidate_all();
        self.views.clear_local();
    }

    /// The product view cache (for diagnostics and tests).
    pub fn views(&self) -> &ViewCache<ProductView> {
        &self.views
    }

    /// One page of the products matching `query`, with the total over all pages.
    ///
    /// # Errors
    /// When the read models cannot be read.
    pub async fn list(&self, query: &ProductQuery) -> Result<ProductPage, ApiError> {
        self.list_at(query, None).await
    }

    /// [`Self::list`], taking the total from the totals cache when it was counted at
    /// `as_of` (the checkpoints read before this call).
    async fn list_at(
        &self,
        query: &ProductQuery,
        as_of: Option<(u64, u64)>,
    ) -> Result<ProductPage, ApiError> {
        let listed = Listed::of(query);
        let filter = product_filter(query, listed);
        let condition = filter.where_clause();
        let by_filter = ProductQuery {
            sort: Sort::default(),
            page: 1,
            page_size: 1,
            ..query.clone()
        };
        let cached = as_of.and_then(|as_of| {
            self.totals
                .get(&by_filter)
                .filter(|(counted_at, _)| *counted_at == as_of)
        });
        let total = match cached {
            Some((_, total)) => total,
            None => {
                let total: i64 = filter
                    .query(format!(
                        "SELECT COUNT(*) AS total FROM {} WHERE {condition}",
                        listed.from
                    ))
                    .fetch_one(&self.pool)
                    .await
                    .map_err(internal)?
                    .try_get("total")
                    .map_err(internal)?;
                if let Some(as_of) = as_of {
                    self.totals.insert(by_filter, (as_of, total));
                }
                total
            }
        };
        let limit = i64::from(query.page_size);
        let offset = i64::from(query.page - 1) * limit;
        let n = filter.bound();
        // One statement, so a page and its variants come from one snapshot.
        let sql = format!(
            "SELECT {PRODUCT_COLUMNS}, {VARIANT_COLUMNS}, i.on_hand - i.reserved AS v_available \
             FROM (SELECT {id} AS id, l.name_key, l.min_price, l.created_at FROM {from} \
                   WHERE {condition} ORDER BY {inner} LIMIT ${} OFFSET ${}) l \
             JOIN rm_products p ON p.id = l.id \
             LEFT JOIN rm_variants v ON v.product_id = p.id \
             LEFT JOIN rm_inventory i ON i.sku = v.sku \
             ORDER BY {outer}, v.ordinal",
            n + 1,
            n + 2,
            id = listed.id,
            from = listed.from,
            inner = query.sort.order_by(listed.id),
            outer = query.sort.order_by("l.id"),
        );
        let rows = filter
            .query(sql)
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await
            .map_err(internal)?;
        Ok(ProductPage {
            items: group(&rows, true)?,
            page: query.page,
            page_size: query.page_size,
            total: u64::try_from(total).map_err(internal)?,
        })
    }

    /// The product `id`, or `None` when there is none (or it is archived and
    /// `include_archived` is false).
    ///
    /// # Errors
    /// When the read models cannot be read.
    pub async fn get(
        &self,
        id: &str,
        include_archived: bool,
    ) -> Result<Option<ProductView>, ApiError> {
        let Ok(id) = id.parse::<Uuid>() else {
            return Ok(None);
        };
        let Some(mut product) = self.cached_or_load(id.to_string()).await? else {
            return Ok(None);
        };
        if product.status == ProductStatus::Archived && !include_archived {
            return Ok(None);
        }
        let available: BTreeMap<String, i64> = sqlx::query(
            "SELECT v.sku, i.on_hand - i.reserved AS available FROM rm_variants v \
             JOIN rm_inventory i ON i.sku = v.sku WHERE v.product_id = $1",
        )
        .bind(&product.id)
        .fetch_all(&self.pool)
        .await
        .map_err(internal)?
        .iter()
        .map(|row| Ok((row.try_get("sku")?, row.try_get("available")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(internal)?;
        for variant in &mut product.variants {
            variant.available = available.get(&variant.sku).copied().unwrap_or(0);
        }
        Ok(Some(product))
    }

    async fn cached_or_load(&self, id: String) -> Result<Option<ProductView>, ApiError> {
        // Read before the rows, so an entry is never labelled newer than its content.
        let as_of = self.consistency.position(CatalogProjection::NAME).await?;
        let fetched = self
            .views
            .get(
                &id,
                as_of,
                || product_version(&self.pool, &id),
                || async {
                    let product = render_product(&self.pool, &id).await?;
                    Ok(product.map(|p| (p.version, p)))
                },
            )
            .await
            .map_err(ApiError::Internal)?;
        Ok(fetched.view)
    }
}

/// The kind of the product views in the cache (`{namespace}:view:product:{id}`).
pub const PRODUCT_VIEWS: &str = "product";

/// The version of product `id` the catalogue holds (`None`: no such product).
///
/// # Errors
/// When the read models cannot be read.
pub async fn product_version(pool: &AnyPool, id: &str) -> anyhow::Result<Option<u64>> {
    let version: Option<i64> = sqlx::query_scalar("SELECT version FROM rm_products WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    Ok(version.map(u64::try_from).transpose()?)
}

/// The view of product `id` as the catalogue holds it, availability left at 0 (it is never
/// cached); `None`: no such product. Every cached product view is rendered here.
///
/// # Errors
/// When the read models cannot be read.
pub async fn render_product(pool: &AnyPool, id: &str) -> anyhow::Result<Option<ProductView>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PRODUCT_COLUMNS}, {VARIANT_COLUMNS} FROM rm_products p \
         LEFT JOIN rm_variants v ON v.product_id = p.id WHERE p.id = $1 ORDER BY v.ordinal"
    )))
    .bind(id)
    .fetch_all(pool)
    .await?;
    Ok(group(&rows, false)?.pop())
}

fn internal(err: impl Into<anyhow::Error>) -> ApiError {
    ApiError::Internal(err.into())
}
