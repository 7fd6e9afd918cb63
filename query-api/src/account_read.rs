//! The back office's account directory (`rm_customers`, every role): which accounts match
//! a filter, and one account. Every value is bound, never spliced.
use domain::ids::AccountId;
use sqlx::{AnyPool, Row, any::AnyRow};
use web::ApiError;

use crate::{
    order_read::internal,
    order_views::{AccountPage, AccountView},
    paging::{self, Paging},
    sql_filter::{Bind, Filter, escape_like},
};

/// Longest `q` accepted, in characters.
const MAX_TERM: usize = 100;

const COLUMNS: &str = "id, role, username, name, email, mobile_number, gender, locked, \
                       registered_at, updated_at";

/// A validated account query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountQuery {
    /// Only accounts with this role (`ADMIN`, `STAFF`, `CUSTOMER`).
    pub role: Option<&'static str>,
    /// Only locked (`true`) or unlocked (`false`) accounts.
    pub locked: Option<bool>,
    /// Part of the name, username, e-mail address or mobile number, any case.
    pub term: Option<String>,
    /// Which page.
    pub paging: Paging,
}

impl AccountQuery {
    /// Validates the query string's pairs. Unknown or repeated parameters are refused.
    ///
    /// # Errors
    /// 400 (`invalid_query`) naming the parameter at fault.
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let (mut role, mut locked, mut term) = (None, None, None);
        let paging = paging::parse(pairs, |key, value| {
            match key {
                "role" => {
                    role = Some(match value {
                        "ADMIN" => "ADMIN",
                        "STAFF" => "STAFF",
                        "CUSTOMER" => "CUSTOMER",
                        _ => {
                            return Err(ApiError::invalid_query(
                                "role must be one of ADMIN, STAFF, CUSTOMER",
                            ));
                        }
                    });
                }
                "locked" => {
                    locked =
                        Some(value.parse().map_err(|_| {
                            ApiError::invalid_query("locked must be true or false")
                        })?);
                }
                "q" => {
                    let value = value.trim();
                    if value.is_empty() || value.chars().count() > MAX_TERM {
                        return Err(ApiError::invalid_query(format!(
                            "q must be 1 to {MAX_TERM} characters"
                        )));
                    }
                    term = Some(value.to_lowercase());
                }
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        Ok(Self {
            role,
            locked,
            term,
            paging,
        })
    }

    fn filter(&self) -> Filter {
        let mut filter = Filter::default();
        if let Some(role) = self.role {
            filter.push("role", "=", role.to_owned());
        }
        if let Some(locked) = self.locked {
            let placeholder = filter.bind(Bind::Int(i64::from(locked)));
            filter.require(format!("locked = {placeholder}"));
        }
        if let Some(term) = &self.term {
            let placeholder = filter.bind(Bind::Text(format!("%{}%", escape_like(term))));
            filter.require(format!(
                "(lower(name) LIKE {placeholder} ESCAPE '\\' \
                 OR lower(username) LIKE {placeholder} ESCAPE '\\' \
                 OR lower(COALESCE(email, '')) LIKE {placeholder} ESCAPE '\\' \
                 OR COALESCE(mobile_number, '') LIKE {placeholder} ESCAPE '\\')"
            ));
        }
        filter
    }
}

/// Every account, for the back office.
#[derive(Clone, Debug)]
pub struct AccountDirectory {
    pool: AnyPool,
}

impl AccountDirectory {
    /// Over the read models in `pool`.
    pub fn new(pool: AnyPool) -> Self {
        Self { pool }
    }

    /// The accounts matching `query`, newest first, one page of them, and how many match.
    ///
    /// # Errors
    /// When the read models cannot be read.
    pub async fn list(&self, query: &AccountQuery) -> Result<AccountPage, ApiError> {
        let order = "registered_at DESC, id DESC";
        let (total, rows) = paging::fetch(
            &self.pool,
            &query.filter(),
            (COLUMNS, "FROM rm_customers", order),
            query.paging,
        )
        .await?;
        Ok(AccountPage {
            items: rows
                .iter()
                .map(view)
                .collect::<Result<_, _>>()
                .map_err(internal)?,
            page: query.paging.page,
            page_size: query.paging.page_size,
            total,
        })
    }

    /// Account `id`, if the read model has it.
    ///
    /// # Errors
    /// When the read models cannot be read.
    pub async fn get(&self, id: AccountId) -> Result<Option<AccountView>, ApiError> {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM rm_customers WHERE id = $1"
        )))
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map_err(internal)?
        .as_ref()
        .map(view)
        .transpose()
        .map_err(internal)
    }
}

fn view(row: &AnyRow) -> Result<AccountView, sqlx::Error> {
    Ok(AccountView {
        id: row.try_get("id")?,
        role: row.try_get("role")?,
        username: row.try_get("username")?,
        name: row.try_get("name")?,
        email: row.try_get("email")?,
        mobile_number: row.try_get("mobile_number")?,
        gender: row.try_get("gender")?,
        locked: row.try_get::<i64, _>("locked")? != 0,
        registered_at: row.try_get("registered_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(query: &[(&str, &str)]) -> Result<AccountQuery, ApiError> {
        AccountQuery::parse(&crate::routes::pairs_of(query))
    }

    #[test]
    fn filters_are_bound_and_wildcards_taken_literally() {
        let query = parse(&[
            ("role", "CUSTOMER"),
            ("locked", "true"),
            ("q", " Ada_100% "),
        ])
        .unwrap();
        assert_eq!(query.term.as_deref(), Some("ada_100%"));
        let filter = query.filter();
        assert!(
            filter
                .where_clause()
                .starts_with("role = $1 AND locked = $2 AND (lower(name) LIKE $3")
        );
        assert_eq!(filter.bound(), 3);
        assert_eq!(escape_like("ada_100%\\"), "ada\\_100\\%\\\\");
    }

    #[test]
    fn bad_parameters_are_refused() {
        let long = "a".repeat(MAX_TERM + 1);
        for bad in [
            vec![("role", "customer")],
            vec![("locked", "yes")],
            vec![("q", "")],
            vec![("q", "  ")],
            vec![("q", long.as_str())],
            vec![("page", "0")],
            vec![("pageSize", "101")],
            vec![("sort", "name")],
            vec![("role", "ADMIN"), ("role", "STAFF")],
        ] {
            let error = parse(&bad).unwrap_err();
            assert_eq!(error.problem().code, "invalid_query", "{bad:?}");
        }
        let query = parse(&[("minPosition", "5")]).unwrap();
        assert_eq!(
            (query.paging.page, query.paging.page_size, query.role),
            (1, 20, None)
        );
    }
}
