//! `POST /api/v1/products`, `PATCH` and `DELETE /api/v1/products/{id}`: the catalogue's writes.
use std::collections::BTreeMap;

use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::Response,
};
use chrono::Utc;
use domain::{
    aggregate::Aggregate,
    catalog::{Product, ProductCommand, ProductState, VariantSpec},
    ids::{ProductId, Sku},
    validation::Invalid,
};
use eventstore::StreamId;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use web::{Admins, ApiError, AppJson, Authorized, Problem};

use super::{CommandAnswer, MoneyDto, if_match, parse_id};
use crate::{claims::KeyKind, idempotency::KeyedRequest, service::CommandMeta, state::AppState};

/// The catalogue routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create))
        .routes(routes!(update, archive))
}

/// A variant: its own SKU, price and option values (size, colour, …).
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VariantDto {
    /// Unique stock-keeping unit: 1–64 of `A-Z a-z 0-9 . _ -`.
    pub sku: String,
    /// Price in minor units.
    pub price: MoneyDto,
    /// Option values, e.g. `{"size": "M", "colour": "red"}`.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// A new product.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateProduct {
    /// Display name.
    pub name: String,
    /// Long description.
    #[serde(default)]
    pub description: String,
    /// Categories it is listed under.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Free-form attributes (brand, material, …): at most 50 keys, 16 KiB.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: Map<String, Value>,
    /// One or more variants.
    pub variants: Vec<VariantDto>,
}

/// Changes to a product; absent fields stay as they are. A variant whose SKU exists gets
/// the new price; a new SKU adds a variant.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct UpdateProduct {
    /// New name.
    pub name: Option<String>,
    /// New description.
    pub description: Option<String>,
    /// New categories (replace the old ones).
    pub categories: Option<Vec<String>>,
    /// New attributes (replace the old ones).
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<Map<String, Value>>,
    /// Price changes and new variants.
    pub variants: Option<Vec<VariantDto>>,
}

fn parse_variants(variants: &[VariantDto], prefix: &str) -> Result<Vec<VariantSpec>, ApiError> {
    let mut errors = Vec::new();
    let mut parsed = Vec::new();
    for (i, variant) in variants.iter().enumerate() {
        let field = format!("{prefix}[{i}]");
        let sku = Sku::parse(&variant.sku).map_err(|e| e.at(format!("{field}.sku")));
        let price = variant.price.parse(&format!("{field}.price"));
        match (sku, price) {
            (Ok(sku), Ok(price)) => parsed.push(VariantSpec {
                sku,
                price,
                options: variant.options.clone(),
            }),
            (sku, price) => errors.extend([sku.err(), price.err()].into_iter().flatten()),
        }
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(Invalid(errors).into())
    }
}

fn sku_keys(variants: &[VariantSpec]) -> Vec<(KeyKind, String)> {
    variants
        .iter()
        .map(|v| (KeyKind::Sku, v.sku.as_str().to_owned()))
        .collect()
}

fn sku_taken(key: &str) -> ApiError {
    ApiError::Conflict {
        code: "sku_taken",
        detail: format!("SKU {key} already belongs to another product"),
        extra: Some(Map::from_iter([("sku".to_owned(), Value::from(key))])),
    }
}

/// Create a product with its variants (admin).
#[utoipa::path(post, path = "/api/v1/products", tag = "catalogue", security(("bearer" = ["ADMIN"])),
    request_body = CreateProduct,
    responses((status = 201, body = CommandAnswer), (status = 409, description = "a SKU is taken", body = Problem),
        (status = 422, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn create(
    State(state): State<AppState>,
    user: Authorized<Admins>,
    keyed: Option<KeyedRequest>,
    AppJson(body): AppJson<CreateProduct>,
) -> Result<Response, ApiError> {
    // Named by its request when keyed, so a run after a crash finds the product (and
    // its SKUs' claims, owned by the same stream) instead of making a second one.
    let id = ProductId::new(KeyedRequest::id_or_new(keyed));
    let variants = parse_variants(&body.variants, "variants")?;
    let command = ProductCommand::Create {
        id,
        name: body.name,
        description: body.description,
        categories: body.categories,
        attributes: body.attributes,
        variants: variants.clone(),
        now: Utc::now(),
    };
    // Decide once before claiming SKUs, so invalid input claims nothing.
    Product::decide(&ProductState::default(), command.clone())?;
    let stream = StreamId::of(Product::NAME, id);
    let meta = CommandMeta::for_request(format!("account-{}", user.id), keyed);
    let keys = sku_keys(&variants);
    if let Err((_, key)) = state
        .claims
        .claim_all(&keys, stream.as_str(), &meta)
        .await?
    {
        return Err(sku_taken(&key));
    }
    let created = state
        .commands
        .execute_request::<Product, _>(&stream, None, &meta, |s| {
            Ok(Product::decide(s, command.clone())?)
        })
        .await;
    match created {
        Ok(done) => {
            Ok(CommandAnswer::new(id, done.version, done.position).respond(StatusCode::CREATED))
        }
        Err(err) => {
            state
                .claims
                .release_all(&keys, stream.as_str(), &meta)
                .await?;
            Err(err)
        }
    }
}

/// Folds the commands one PATCH implies into one list of events, each decided on the
/// state the previous ones produced, so they are appended together or not at all.
fn decide_update(
    state: &ProductState,
    body: &UpdateProduct,
    variants: &[VariantSpec],
) -> Result<Vec<domain::catalog::ProductEvent>, ApiError> {
    let now = Utc::now();
    let mut commands = vec![ProductCommand::Update {
        name: body.name.clone(),
        description: body.description.clone(),
        categories: body.categories.clone(),
        attributes: body.attributes.clone(),
        now,
    }];
    for variant in variants {
        commands.push(if state.variant(&variant.sku).is_some() {
            ProductCommand::ChangeVariantPrice {
                sku: variant.sku.clone(),
                price: variant.price,
                now,
            }
        } else {
            ProductCommand::AddVariant {
                variant: variant.clone(),
                now,
            }
        });
    }
    let mut current = state.clone();
    let mut events = Vec::new();
    for command in commands {
        let decided = Product::decide(&current, command)?;
        current = decided.iter().fold(current, Product::evolve);
        events.extend(decided);
    }
    Ok(events)
}

/// Update a product (admin). Send `If-Match` with the version you read to be refused
/// (412) if someone changed it since.
#[utoipa::path(patch, path = "/api/v1/products/{id}", tag = "catalogue", security(("bearer" = ["ADMIN"])),
    params(("id" = Uuid, Path, description = "product id"), ("If-Match" = Option<String>, Header, description = "expected version")),
    request_body = UpdateProduct,
    responses((status = 200, body = CommandAnswer), (status = 404, body = Problem), (status = 409, body = Problem),
        (status = 412, body = Problem), (status = 422, body = Problem)))]
async fn update(
    State(state): State<AppState>,
    user: Authorized<Admins>,
    keyed: Option<KeyedRequest>,
    Path(id): Path<String>,
    headers: HeaderMap,
    AppJson(body): AppJson<UpdateProduct>,
) -> Result<Response, ApiError> {
    let id: ProductId = parse_id(&id, "product")?;
    let expected = if_match(&headers)?;
    let variants = parse_variants(body.variants.as_deref().unwrap_or_default(), "variants")?;
    let stream = StreamId::of(Product::NAME, id);
    let meta = CommandMeta::for_request(format!("account-{}", user.id), keyed);
    // A run after a crash answers before validating: the lost run's change is in `current`.
    if let Some(done) = state
        .commands
        .appended_before::<Product>(&stream, &meta)
        .await?
    {
        return Ok(CommandAnswer::new(id, done.version, done.position).respond(StatusCode::OK));
    }
    let current = state.commands.load::<Product>(&stream).await?;
    let new_skus: Vec<VariantSpec> = variants
        .iter()
        .filter(|v| current.state.variant(&v.sku).is_none())
        .cloned()
        .collect();
    // Validate before claiming new SKUs.
    decide_update(&current.state, &body, &variants)?;
    if let Err((_, key)) = state
        .claims
        .claim_all(&sku_keys(&new_skus), stream.as_str(), &meta)
        .await?
    {
        return Err(sku_taken(&key));
    }
    let updated = state
        .commands
        .execute_if_version::<Product, _>(&stream, expected, &meta, |s| {
            decide_update(s, &body, &variants)
        })
        .await;
    match updated {
        Ok(done) => Ok(CommandAnswer::new(id, done.version, done.position).respond(StatusCode::OK)),
        Err(err) => {
            state
                .claims
                .release_all(&sku_keys(&new_skus), stream.as_str(), &meta)
                .await?;
            Err(err)
        }
    }
}

/// Archive a product (admin): it leaves the catalogue; its SKUs stay reserved to it.
#[utoipa::path(delete, path = "/api/v1/products/{id}", tag = "catalogue", security(("bearer" = ["ADMIN"])),
    params(("id" = Uuid, Path, description = "product id"), ("If-Match" = Option<String>, Header, description = "expected version")),
    responses((status = 200, body = CommandAnswer), (status = 404, body = Problem), (status = 409, body = Problem), (status = 412, body = Problem)))]
async fn archive(
    State(state): State<AppState>,
    user: Authorized<Admins>,
    keyed: Option<KeyedRequest>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id: ProductId = parse_id(&id, "product")?;
    let stream = StreamId::of(Product::NAME, id);
    let meta = CommandMeta::for_request(format!("account-{}", user.id), keyed);
    let done = state
        .commands
        .execute_request::<Product, _>(&stream, if_match(&headers)?, &meta, |s| {
            Ok(Product::decide(
                s,
                ProductCommand::Archive { now: Utc::now() },
            )?)
        })
        .await?;
    Ok(CommandAnswer::new(id, done.version, done.position).respond(StatusCode::OK))
}
