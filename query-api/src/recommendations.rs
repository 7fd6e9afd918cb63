//! Recommendations: which products to show next to a product, and to a customer.
//!
//! Two reasons, bought-together first:
//! - **`boughtTogether`**: products that counted orders (placed, not cancelled) hold together
//!   with the product, from the `bought_together` projection; the score is the number of
//!   such orders. For a customer, the seeds are the [`SEED_PRODUCTS`] products they bought
//!   most recently, and the score is summed over them.
//! - **`similar`**: computed at query time from the catalogue read model. A candidate scores
//!   [`CATEGORY_WEIGHT`] for every category it shares with a seed and [`ATTRIBUTE_WEIGHT`]
//!   for every top-level scalar attribute it has with the same value (`brand = Northwind`),
//!   summed over the seeds (for a product, the product itself).
//!
//! Only active products with some available stock (on hand less reserved, over their
//! variants) are recommended, never the product itself, never twice, and never to a
//! customer anything they have bought (in an order not cancelled). Ties are broken by
//! product id, so the same read models always give the same answer.
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use sqlx::{AnyPool, Row};
use utoipa::ToSchema;
use uuid::Uuid;
use web::ApiError;

use crate::{
    read::product_views,
    views::{ProductStatus, ProductView},
};

/// Items answered when `limit` is not given.
pub const DEFAULT_LIMIT: u32 = 10;
/// Most items answered.
pub const MAX_LIMIT: u32 = 50;
/// Score of a shared category in `similar`.
pub const CATEGORY_WEIGHT: i64 = 2;
/// Score of a shared attribute value in `similar`.
pub const ATTRIBUTE_WEIGHT: i64 = 1;
/// How many of a customer's most recently bought products seed their recommendations.
pub const SEED_PRODUCTS: i64 = 20;

/// Why a product is recommended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Reason {
    /// Often in the same orders.
    BoughtTogether,
    /// Shares categories and attribute values.
    Similar,
}

/// One recommended product.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecommendationView {
    /// The product, as the product list shows it.
    pub product: ProductView,
    /// Why it is recommended.
    pub reason: Reason,
    /// `boughtTogether`: how many orders hold both; `similar`: the similarity score. Higher
    /// is stronger; items are ordered by reason, then score.
    pub score: i64,
}

/// Recommended products, strongest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecommendationList {
    /// Bought-together items first, then similar ones.
    pub items: Vec<RecommendationView>,
}

/// A validated recommendation query.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecommendationQuery {
    /// Most items, 1 to [`MAX_LIMIT`].
    pub limit: u32,
}

impl Default for RecommendationQuery {
    fn default() -> Self {
        Self {
            limit: DEFAULT_LIMIT,
        }
    }
}

impl RecommendationQuery {
    /// Validates the query string's pairs: `limit` and `minPosition`, each at most once.
    ///
    /// # Errors
    /// 400 (`invalid_query`) naming the parameter at fault.
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut query = Self::default();
        let mut seen = Vec::new();
        for (key, value) in pairs {
            if seen.contains(&key.as_str()) {
                return Err(ApiError::invalid_query(format!("{key} is given twice")));
            }
            seen.push(key.as_str());
            match key.as_str() {
                "limit" => {
                    query.limit = value
                        .parse()
                        .ok()
                        .filter(|n| (1..=MAX_LIMIT).contains(n))
                        .ok_or_else(|| {
                            ApiError::invalid_query(format!(
                                "limit must be between 1 and {MAX_LIMIT}"
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
        Ok(query)
    }
}

/// Active, with some variant available: what may be recommended (over `rm_products p`).
const RECOMMENDABLE: &str = "p.status = 'ACTIVE' AND EXISTS (SELECT 1 FROM rm_variants v \
     JOIN rm_inventory i ON i.sku = v.sku \
     WHERE v.product_id = p.id AND i.on_hand - i.reserved > 0)";

/// Similarity candidates of the seed products `seeds` (a subquery or placeholder of product
/// ids): one row per category or attribute value a candidate shares with a seed, weighted.
fn similar_candidates(seeds: &str) -> String {
    format!(
        "SELECT c.product_id, {CATEGORY_WEIGHT} AS weight \
             FROM rm_product_categories seed \
             JOIN rm_product_categories c ON c.category = seed.category \
             WHERE seed.product_id IN ({seeds}) \
         UNION ALL \
         SELECT a.product_id, {ATTRIBUTE_WEIGHT} AS weight \
             FROM rm_product_attributes seed \
             JOIN rm_product_attributes a ON a.key = seed.key AND a.value = seed.value \
             WHERE seed.product_id IN ({seeds})"
    )
}

/// The distinct products a customer bought (`$1`: the customer), and the most recent of
/// them (`$2`: how many).
const CUSTOMER_PRODUCTS: &str = "WITH bought AS (\
         SELECT DISTINCT product_id FROM rm_bought_together_orders WHERE customer_id = $1), \
     seeds AS (\
         SELECT product_id FROM rm_bought_together_orders WHERE customer_id = $1 \
         GROUP BY product_id ORDER BY MAX(placed_at) DESC, product_id LIMIT $2)";

/// The recommendable products most similar to `seeds`, except `exclude` (a condition on
/// `s.product_id`), at most `limit`; `prefix` defines what the other parts refer to.
fn similar_sql(seeds: &str, exclude: &str, limit: &str, prefix: &str) -> String {
    let candidates = similar_candidates(seeds);
    format!(
        "{prefix} SELECT s.product_id AS id, CAST(SUM(s.weight) AS BIGINT) AS score \
         FROM ({candidates}) s \
         JOIN rm_products p ON p.id = s.product_id \
         WHERE {exclude} AND {RECOMMENDABLE} \
         GROUP BY s.product_id ORDER BY score DESC, s.product_id LIMIT {limit}"
    )
}

/// Scored product ids.
type Scored = Vec<(String, i64)>;

async fn scored(
    query: sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments>,
    pool: &AnyPool,
) -> Result<Scored, ApiError> {
    query
        .fetch_all(pool)
        .await
        .map_err(internal)?
        .iter()
        .map(|row| Ok((row.try_get("id")?, row.try_get("score")?)))
        .collect::<Result<_, sqlx::Error>>()
        .map_err(internal)
}

fn internal(err: impl Into<anyhow::Error>) -> ApiError {
    ApiError::Internal(err.into())
}

/// What to recommend next to a product, and to a customer.
#[derive(Clone, Debug)]
pub struct Recommendations {
    pool: AnyPool,
}

impl Recommendations {
    /// Over the read models in `pool`.
    pub fn new(pool: AnyPool) -> Self {
        Self { pool }
    }

    /// Recommendations next to product `id`; `None` when there is no such active product.
    ///
    /// # Errors
    /// When the read models cannot be read.
    pub async fn for_product(
        &self,
        id: &str,
        query: RecommendationQuery,
    ) -> Result<Option<RecommendationList>, ApiError> {
        let Ok(id) = id.parse::<Uuid>() else {
            return Ok(None);
        };
        let id = id.to_string();
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM rm_products WHERE id = $1")
                .bind(&id)
                .fetch_optional(&self.pool)
                .await
                .map_err(internal)?;
        if status.as_deref() != Some(ProductStatus::Active.as_str()) {
            return Ok(None);
        }
        let limit = i64::from(query.limit);
        let bought = scored(
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT b.other_product_id AS id, b.orders AS score FROM rm_bought_together b \
                 JOIN rm_products p ON p.id = b.other_product_id \
                 WHERE b.product_id = $1 AND {RECOMMENDABLE} \
                 ORDER BY b.orders DESC, b.other_product_id LIMIT $2"
            )))
            .bind(&id)
            .bind(limit),
            &self.pool,
        )
        .await?;
        let similar = if bought.len() < query.limit as usize {
            // Ask for as many more as there are bought-together items, which may repeat.
            scored(
                sqlx::query(sqlx::AssertSqlSafe(similar_sql(
                    "$1",
                    "s.product_id <> $1",
                    "$2",
                    "",
                )))
                .bind(&id)
                .bind(limit + i64::try_from(bought.len()).map_err(internal)?),
                &self.pool,
            )
            .await?
        } else {
            Vec::new()
        };
        self.assemble(&bought, &similar, query.limit)
            .await
            .map(Some)
    }

    /// Recommendations for customer `customer` from their own purchases (none for a customer
    /// who has bought nothing).
    ///
    /// # Errors
    /// When the read models cannot be read.
    pub async fn for_customer(
        &self,
        customer: &str,
        query: RecommendationQuery,
    ) -> Result<RecommendationList, ApiError> {
        let limit = i64::from(query.limit);
        let bought = scored(
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "{CUSTOMER_PRODUCTS} \
                 SELECT b.other_product_id AS id, CAST(SUM(b.orders) AS BIGINT) AS score \
                 FROM rm_bought_together b JOIN rm_products p ON p.id = b.other_product_id \
                 WHERE b.product_id IN (SELECT product_id FROM seeds) \
                     AND b.other_product_id NOT IN (SELECT product_id FROM bought) \
                     AND {RECOMMENDABLE} \
                 GROUP BY b.other_product_id ORDER BY score DESC, b.other_product_id LIMIT $3"
            )))
            .bind(customer)
            .bind(SEED_PRODUCTS)
            .bind(limit),
            &self.pool,
        )
        .await?;
        let similar = if bought.len() < query.limit as usize {
            scored(
                sqlx::query(sqlx::AssertSqlSafe(similar_sql(
                    "SELECT product_id FROM seeds",
                    "s.product_id NOT IN (SELECT product_id FROM bought)",
                    "$3",
                    CUSTOMER_PRODUCTS,
                )))
                .bind(customer)
                .bind(SEED_PRODUCTS)
                .bind(limit + i64::try_from(bought.len()).map_err(internal)?),
                &self.pool,
            )
            .await?
        } else {
            Vec::new()
        };
        self.assemble(&bought, &similar, query.limit).await
    }

    /// Bought-together items, then similar ones not listed yet, up to `limit`, with their
    /// product views. A product that stopped being recommendable between the statements
    /// (archived, sold out) is left out.
    async fn assemble(
        &self,
        bought: &[(String, i64)],
        similar: &[(String, i64)],
        limit: u32,
    ) -> Result<RecommendationList, ApiError> {
        let mut picked: Vec<(&str, Reason, i64)> = Vec::new();
        let mut seen = BTreeSet::new();
        let candidates = bought
            .iter()
            .map(|(id, score)| (id, Reason::BoughtTogether, *score))
            .chain(
                similar
                    .iter()
                    .map(|(id, score)| (id, Reason::Similar, *score)),
            );
        for (id, reason, score) in candidates {
            if picked.len() == limit as usize {
                break;
            }
            if seen.insert(id.as_str()) {
                picked.push((id, reason, score));
            }
        }
        let ids: Vec<String> = picked.iter().map(|(id, _, _)| (*id).to_owned()).collect();
        let mut views: BTreeMap<String, ProductView> = product_views(&self.pool, &ids)
            .await?
            .into_iter()
            .filter(|p| {
                p.status == ProductStatus::Active && p.variants.iter().any(|v| v.available > 0)
            })
            .map(|p| (p.id.clone(), p))
            .collect();
        Ok(RecommendationList {
            items: picked
                .into_iter()
                .filter_map(|(id, reason, score)| {
                    views.remove(id).map(|product| RecommendationView {
                        product,
                        reason,
                        score,
                    })
                })
                .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &str) -> Vec<(String, String)> {
        query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }

    #[test]
    fn limit_defaults_and_bounds() {
        assert_eq!(RecommendationQuery::parse(&pairs("")).unwrap().limit, 10);
        assert_eq!(
            RecommendationQuery::parse(&pairs("limit=50&minPosition=3"))
                .unwrap()
                .limit,
            50
        );
        for bad in [
            "limit=0",
            "limit=51",
            "limit=x",
            "limit=1&limit=2",
            "page=1",
        ] {
            assert!(RecommendationQuery::parse(&pairs(bad)).is_err(), "{bad}");
        }
    }
}
