//! What a search answers with (camelCase JSON, like the product list).
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::views::PriceRange;

/// One product found.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchHit {
    /// Product id (UUID).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Categories it is listed under.
    pub categories: Vec<String>,
    /// Lowest and highest variant price.
    pub price_range: PriceRange,
    /// The product's version the index holds (compare with its `ETag`).
    pub version: u64,
    /// Relevance: higher is better; only comparable within one answer.
    pub score: f32,
}

/// How many matches are listed under one category.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CategoryCount {
    /// The category.
    pub value: String,
    /// Matches listed under it.
    pub count: u64,
}

/// How many matches have their lowest price in `[from, to)`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PriceBucket {
    /// Lower bound, in minor units, included.
    pub from: i64,
    /// Upper bound, in minor units, excluded; `null` for the open-ended last bucket.
    pub to: Option<i64>,
    /// Matches whose lowest variant price falls in the bucket.
    pub count: u64,
}

/// Facet counts over every match of `q`, before the category and price filters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchFacets {
    /// Categories of the matches, most frequent first (then by name), at most 100.
    pub categories: Vec<CategoryCount>,
    /// The fixed price buckets, cheapest first, each with its count (zero included).
    pub price: Vec<PriceBucket>,
}

/// One page of search results.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SearchPage {
    /// The products on this page, most relevant first.
    pub items: Vec<SearchHit>,
    /// This page's number (1-based).
    pub page: u32,
    /// Products per page.
    pub page_size: u32,
    /// Products matching `q` and the filters, on all pages.
    pub total: u64,
    /// Counts for narrowing the search.
    pub facets: SearchFacets,
}
