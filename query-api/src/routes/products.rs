//! `GET /api/v1/products` and `GET /api/v1/products/{id}`: the public catalogue.
use axum::{
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};
use web::{ApiError, AppJson, Problem};

use super::{MaybeAuthUser, PageParams, QueryPairs};
use crate::{
    consistency::{AskedPosition, MinPosition, ProductsRead},
    read::ProductQuery,
    state::QueryState,
    views::{ProductPage, ProductStatus, ProductView},
};

/// The catalogue routes.
pub fn router() -> OpenApiRouter<QueryState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get))
}

/// Filters, order and page of the product list. Attribute filters are written
/// `attr.<key>=<value>` (e.g. `attr.colour=red`) and match top-level scalar attributes.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // documents the parameters; they are parsed by `ProductQuery::parse`
struct ListParams {
    /// Listed under this category.
    #[param(min_length = 1, max_length = 200)]
    category: Option<String>,
    /// Some variant costs at least this much (minor units).
    #[param(rename = "minPrice")]
    min_price: Option<i64>,
    /// Some variant costs at most this much (minor units).
    #[param(rename = "maxPrice")]
    max_price: Option<i64>,
    /// `ACTIVE` (default) or `ARCHIVED` (admins and staff only).
    status: Option<ProductStatus>,
    /// Case-insensitive substring of the name.
    #[param(min_length = 1, max_length = 200)]
    q: Option<String>,
    /// `name` (default), `-name`, `price`, `-price` (by lowest variant price) or `newest`.
    sort: Option<String>,
}

/// List products: filter, sort, paginate. Archived products are listed to admins and
/// staff only.
/// Sends an `ETag` (a hash of the page); with a matching `If-None-Match`, answers 304.
#[utoipa::path(get, path = "/api/v1/products", tag = "catalogue", params(ListParams, PageParams,
        ("If-None-Match" = Option<String>, Header, description = "the ETag you hold")),
    responses((status = 200, body = ProductPage, headers(("ETag" = String, description = "a hash of the page, quoted"))),
        (status = 304, description = "unchanged since the ETag you hold"), (status = 400, description = "a bad parameter", body = Problem),
        (status = 401, body = Problem), (status = 403, description = "archived products asked for without the role", body = Problem),
        (status = 504, description = "the read models did not reach minPosition in time", body = Problem)))]
async fn list(
    State(state): State<QueryState>,
    user: MaybeAuthUser,
    asked: AskedPosition<ProductsRead>,
    headers: HeaderMap,
    QueryPairs(pairs): QueryPairs,
) -> Result<Response, ApiError> {
    let query = ProductQuery::parse(&pairs)?;
    asked.reached(&state.consistency).await?;
    if query.status == ProductStatus::Archived && !user.is_staff() {
        return Err(match user.0 {
            None => ApiError::Unauthorized(
                "archived products are listed to admins and staff only".into(),
            ),
            Some(_) => ApiError::forbidden("archived products are listed to admins and staff only"),
        });
    }
    let page = state.products.list_json(&query).await?;
    if not_modified(&headers, &page.etag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, page.etag)]).into_response());
    }
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (header::ETAG, page.etag),
        ],
        page.json,
    )
        .into_response())
}

/// `If-None-Match` holds `etag` (or `*`), compared weakly.
fn not_modified(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|tag| tag.trim().trim_start_matches("W/"))
        .any(|tag| tag == "*" || tag == etag)
}

/// A product's `ETag`: its version and a digest of the stock its variants show, so that a
/// stock movement, which leaves the version as it is, still changes the tag (fixed hash
/// keys: every node gives one view the same tag).
fn product_etag(product: &ProductView) -> String {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::hash::DefaultHasher::new();
    for variant in &product.variants {
        variant.sku.hash(&mut hasher);
        variant.available.hash(&mut hasher);
    }
    web::etag::versioned(product.version, Some(hasher.finish()))
}

/// One product. Sends `ETag: "<version>.<stock digest>"`; with a matching `If-None-Match`,
/// answers 304.
/// An archived product is shown to admins and staff only (404 to anyone else).
#[utoipa::path(get, path = "/api/v1/products/{id}", tag = "catalogue",
    params(("id" = uuid::Uuid, Path, description = "product id"),
        ("If-None-Match" = Option<String>, Header, description = "the ETag you hold"),
        ("X-Emporium-Min-Position" = Option<u64>, Header, description = "answer only once this log position is reflected"),
        ("minPosition" = Option<u64>, Query, description = "same as the header")),
    responses((status = 200, body = ProductView, headers(("ETag" = String, description = "the product's version and a digest of its variants' stock; `If-Match` on the command side takes it"))),
        (status = 304, description = "unchanged since the ETag you hold"), (status = 404, body = Problem),
        (status = 504, description = "the read models did not reach minPosition in time", body = Problem)))]
async fn get(
    State(state): State<QueryState>,
    user: MaybeAuthUser,
    _: MinPosition<ProductsRead>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let product = state.products.get(&id, user.is_staff()).await?;
    let product = product.ok_or_else(|| ApiError::not_found("no such product"))?;
    let etag = product_etag(&product);
    let etag_header = HeaderValue::from_str(&etag).map_err(|e| ApiError::Internal(e.into()))?;
    if not_modified(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag_header)]).into_response());
    }
    Ok(([(header::ETAG, etag_header)], AppJson(product)).into_response())
}
