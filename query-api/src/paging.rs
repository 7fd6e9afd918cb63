//! Page-numbered lists of the back office: their common query parameters (`page`,
//! `pageSize`, `minPosition`, each at most once, nothing unknown) and one page of rows with
//! the total that matches.
use sqlx::{AnyPool, Row, any::AnyRow};
use web::ApiError;

use crate::{
    order_read::{internal, number, once},
    read::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE},
    sql_filter::Filter,
};

/// Which page of a list, and how long pages are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Paging {
    /// Page number, from 1.
    pub page: u32,
    /// Items per page, 1 to [`MAX_PAGE_SIZE`].
    pub page_size: u32,
}

/// Walks a list's query pairs: refuses a parameter given twice, reads `page` and
/// `pageSize`, leaves `minPosition` to the read-your-writes extractor, and hands every
/// other pair to `filter`, which answers whether it knows the parameter.
///
/// # Errors
/// 400 (`invalid_query`) naming the parameter at fault, or `filter`'s error.
pub(crate) fn parse(
    pairs: &[(String, String)],
    mut filter: impl FnMut(&str, &str) -> Result<bool, ApiError>,
) -> Result<Paging, ApiError> {
    let mut paging = Paging {
        page: 1,
        page_size: DEFAULT_PAGE_SIZE,
    };
    let mut seen = Vec::new();
    for (key, value) in pairs {
        once(&mut seen, key)?;
        match key.as_str() {
            "page" => paging.page = number(key, value, 1..=1_000_000)?,
            "pageSize" => paging.page_size = number(key, value, 1..=MAX_PAGE_SIZE)?,
            "minPosition" => {}
            other => {
                if !filter(other, value)? {
                    return Err(ApiError::invalid_query(format!(
                        "unknown parameter {other}"
                    )));
                }
            }
        }
    }
    Ok(paging)
}

/// The rows `SELECT {columns} {from} WHERE <filter> ORDER BY {order}` on `paging`'s page,
/// and how many rows match on all pages. `columns`, `from` and `order` are fixed SQL.
///
/// # Errors
/// When the read models cannot be read.
pub(crate) async fn fetch(
    pool: &AnyPool,
    filter: &Filter,
    (columns, from, order): (&str, &str, &str),
    paging: Paging,
) -> Result<(u64, Vec<AnyRow>), ApiError> {
    let condition = filter.where_clause();
    let total: i64 = filter
        .query(format!("SELECT COUNT(*) AS n {from} WHERE {condition}"))
        .fetch_one(pool)
        .await
        .and_then(|row| row.try_get("n"))
        .map_err(internal)?;
    let next = filter.bound();
    let rows = filter
        .query(format!(
            "SELECT {columns} {from} WHERE {condition} ORDER BY {order} LIMIT ${} OFFSET ${}",
            next + 1,
            next + 2
        ))
        .bind(i64::from(paging.page_size))
        .bind(i64::from(paging.page - 1) * i64::from(paging.page_size))
        .fetch_all(pool)
        .await
        .map_err(internal)?;
    Ok((u64::try_from(total).unwrap_or_default(), rows))
}
