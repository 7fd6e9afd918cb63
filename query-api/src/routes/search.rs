//! `GET /api/v1/search`: full-text search over the catalogue, with facets.
use std::sync::Arc;

use axum::{
    extract::{FromRequestParts, State},
    http::request::Parts,
};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use web::{ApiError, AppJson, Problem};

use super::QueryPairs;
use crate::{
    consistency::{AskedPosition, SearchRead},
    search::{SearchIndex, SearchQuery, views::SearchPage},
    state::QueryState,
};

/// The search routes.
pub fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new().routes(routes!(search))
}

/// This node's search index; 503 when it has none. Extracted before the read-your-writes
/// wait, which would otherwise wait for an index that does not exist.
struct Searchable(SearchIndex);

impl FromRequestParts<QueryState> for Searchable {
    type Rejection = ApiError;

    async fn from_request_parts(_: &mut Parts, state: &QueryState) -> Result<Self, ApiError> {
        state.search.clone().map(Self).ok_or_else(|| {
            ApiError::Unavailable("search is not available from this service".into())
        })
    }
}

/// The search parameters.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the parameters; they are parsed by `SearchQuery::parse`
struct SearchParams {
    /// The words to find, 1 to 200 characters (at most 10 words): in names (weighted
    /// most), attribute and option values, and descriptions. Each word matches exactly or
    /// with typos (1 for words of 4 to 7 letters, 2 from 8); the last word also matches
    /// as a prefix.
    #[param(min_length = 1, max_length = 200)]
    q: String,
    /// Only products listed under this category (facet counts ignore this filter).
    #[param(min_length = 1, max_length = 200)]
    category: Option<String>,
    /// Only products with a variant costing at least this much (minor units).
    #[param(rename = "minPrice")]
    min_price: Option<i64>,
    /// Only products with a variant costing at most this much (minor units).
    #[param(rename = "maxPrice")]
    max_price: Option<i64>,
    /// Page number, from 1 (`page × pageSize` at most 10,000).
    #[param(minimum = 1, maximum = 10000)]
    page: Option<u32>,
    /// Products per page, 1 to 100 (default 20).
    #[param(rename = "pageSize", minimum = 1, maximum = 100)]
    page_size: Option<u32>,
    /// Answer only once this node's index reflects this log position (also
    /// `X-Emporium-Min-Position`).
    #[param(rename = "minPosition", value_type = Option<i64>, minimum = 0)]
    min_position: Option<u64>,
}

/// Search ACTIVE products, most relevant first, with category and price facets counted
/// over every match of `q` (before the category and price filters).
#[utoipa::path(get, path = "/api/v1/search", tag = "catalogue", params(SearchParams),
    responses((status = 200, body = SearchPage), (status = 400, description = "a bad parameter", body = Problem),
        (status = 503, description = "this service has no search index", body = Problem),
        (status = 504, description = "the index did not reach minPosition in time", body = Problem)))]
async fn search(
    State(state): State<QueryState>,
    Searchable(index): Searchable,
    asked: AskedPosition<SearchRead>,
    QueryPairs(pairs): QueryPairs,
) -> Result<AppJson<Arc<SearchPage>>, ApiError> {
    let query = SearchQuery::parse(&pairs)?;
    asked.reached(&state.consistency).await?;
    Ok(AppJson(index.run(query).await?))
}
