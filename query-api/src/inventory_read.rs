//! Stock levels for the back office ([`InventoryLevels`]): one SKU's, and a list of every
//! SKU's, least available first (what to restock). Every value is bound, never spliced.
use sqlx::{AnyPool, Row};
use web::ApiError;

use crate::{
    order_read::internal,
    paging::{self, Paging},
    sql_filter::{Bind, Filter},
    views::{InventoryItem, InventoryPage, InventoryView},
};

/// Every SKU the catalogue knows, with its stock row when it has one.
const FROM_VARIANTS: &str = "FROM rm_variants v LEFT JOIN rm_inventory i ON i.sku = v.sku";
const ON_HAND: &str = "COALESCE(i.on_hand, 0)";
const RESERVED: &str = "COALESCE(i.reserved, 0)";
const AVAILABLE: &str = "(COALESCE(i.on_hand, 0) - COALESCE(i.reserved, 0))";

/// A validated stock list query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InventoryQuery {
    /// Only SKUs with fewer units available than this.
    pub available_below: Option<i64>,
    /// Only this product's SKUs.
    pub product_id: Option<String>,
    /// Which page.
    pub paging: Paging,
}

impl InventoryQuery {
    /// Validates the query string's pairs. Unknown or repeated parameters are refused.
    ///
    /// # Errors
    /// 400 (`invalid_query`) naming the parameter at fault.
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let (mut available_below, mut product_id) = (None, None);
        let paging = paging::parse(pairs, |key, value| {
            match key {
                "availableBelow" => {
                    available_below = Some(value.parse().map_err(|_| {
                        ApiError::invalid_query("availableBelow must be an integer")
                    })?);
                }
                "productId" => {
                    let id = value
                        .parse::<uuid::Uuid>()
                        .map_err(|_| ApiError::invalid_query("productId must be a UUID"))?;
                    product_id = Some(id.to_string());
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(Self {
            available_below,
            product_id,
            paging,
        })
    }

    fn filter(&self) -> Filter {
        let mut filter = Filter::default();
        if let Some(below) = self.available_below {
            let placeholder = filter.bind(Bind::Int(below));
            filter.require(format!("{AVAILABLE} < {placeholder}"));
        }
        if let Some(product) = &self.product_id {
            filter.push("v.product_id", "=", product.clone());
        }
        filter
    }
}

/// How much of a SKU there is.
#[derive(Clone, Debug)]
pub struct InventoryLevels {
    pool: AnyPool,
}

impl InventoryLevels {
    /// Over the read models in `pool`.
    pub fn new(pool: AnyPool) -> Self {
        Self { pool }
    }

    /// The stock of `sku`: its row, or zeros for a SKU the catalogue knows but that was
    /// never stocked; `None` for a SKU no product has.
    ///
    /// # Errors
    /// When the read models cannot be read.
    pub async fn get(&self, sku: &str) -> Result<Option<InventoryView>, ApiError> {
        let row =
            sqlx::query("SELECT on_hand, reserved, committed FROM rm_inventory WHERE sku = $1")
                .bind(sku)
                .fetch_optional(&self.pool)
                .await
                .map_err(internal)?;
        let (on_hand, reserved, committed): (i64, i64, i64) = match row {
            Some(row) => (
                row.try_get("on_hand").map_err(internal)?,
                row.try_get("reserved").map_err(internal)?,
                row.try_get("committed").map_err(internal)?,
            ),
            None => {
                let known: Option<String> =
                    sqlx::query_scalar("SELECT sku FROM rm_variants WHERE sku = $1")
                        .bind(sku)
                        .fetch_optional(&self.pool)
                        .await
                        .map_err(internal)?;
                if known.is_none() {
                    return Ok(None);
                }
                (0, 0, 0)
            }
        };
        Ok(Some(InventoryView {
            sku: sku.to_owned(),
            on_hand,
            reserved,
            committed,
            available: on_hand - reserved,
        }))
    }

    /// The stock of every SKU matching `query`, least available first, one page of them,
    /// and how many match. SKUs the catalogue knows but that were never stocked are listed
    /// with zeros.
    ///
    /// # Errors
    /// When the read models cannot be read.
    pub async fn list(&self, query: &InventoryQuery) -> Result<InventoryPage, ApiError> {
        let columns = format!(
            "v.sku, v.product_id, {ON_HAND} AS on_hand, {RESERVED} AS reserved, \
             COALESCE(i.committed, 0) AS committed"
        );
        let order = format!("{AVAILABLE}, v.sku");
        let (total, rows) = paging::fetch(
            &self.pool,
            &query.filter(),
            (&columns, FROM_VARIANTS, &order),
            query.paging,
        )
        .await?;
        let items = rows
            .iter()
            .map(|row| {
                let (on_hand, reserved): (i64, i64) =
                    (row.try_get("on_hand")?, row.try_get("reserved")?);
                Ok(InventoryItem {
                    sku: row.try_get("sku")?,
                    product_id: row.try_get("product_id")?,
                    on_hand,
                    reserved,
                    committed: row.try_get("committed")?,
                    available: on_hand - reserved,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(internal)?;
        Ok(InventoryPage {
            items,
            page: query.paging.page,
            page_size: query.paging.page_size,
            total,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &[(&str, &str)]) -> Result<InventoryQuery, ApiError> {
        InventoryQuery::parse(&crate::routes::pairs_of(query))
    }

    #[test]
    fn filters_are_bound() {
        let product = uuid::Uuid::now_v7().to_string();
        let query = parse(&[("availableBelow", "5"), ("productId", &product)]).unwrap();
        let filter = query.filter();
        assert_eq!(
            filter.where_clause(),
            format!("{AVAILABLE} < $1 AND v.product_id = $2")
        );
        assert_eq!(filter.bound(), 2);
    }

    #[test]
    fn bad_parameters_are_refused() {
        for bad in [
            vec![("availableBelow", "few")],
            vec![("availableBelow", "1e3")],
            vec![("productId", "not-a-uuid")],
            vec![("page", "0")],
            vec![("pageSize", "101")],
            vec![("sku", "A")],
            vec![("page", "1"), ("page", "2")],
        ] {
            let error = parse(&bad).unwrap_err();
            assert_eq!(error.problem().code, "invalid_query", "{bad:?}");
        }
        let query = parse(&[("minPosition", "5")]).unwrap();
        assert_eq!((query.paging.page, query.paging.page_size), (1, 20));
    }
}
