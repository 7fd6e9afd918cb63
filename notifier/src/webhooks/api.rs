//! `POST/GET /api/v1/admin/webhooks`, `DELETE /api/v1/admin/webhooks/{id}` and
//! `GET /api/v1/admin/webhooks/{id}/deliveries`: admins only.
use std::sync::Arc;

use axum::{
    extract::{FromRef, Path, Query, State, rejection::QueryRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use bus::Subject;
use serde::{Deserialize, Serialize};
use sqlx::{AnyPool, Row};
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};
use uuid::Uuid;
use web::{Admins, ApiError, AppJson, Authorized, JwtVerifier, Problem};

use super::{now_ms, signing};
use crate::ssrf::{self, UrlRefused};

/// What the webhook routes need.
#[derive(Clone)]
pub struct WebhookApi {
    /// Where endpoints and deliveries are kept (migrated).
    pub sql: AnyPool,
    /// Verifies admins' access tokens.
    pub verifier: Arc<JwtVerifier>,
    /// `EMPORIUM_WEBHOOK_ALLOW_PRIVATE`.
    pub allow_private: bool,
}

impl FromRef<WebhookApi> for Arc<JwtVerifier> {
    fn from_ref(state: &WebhookApi) -> Self {
        state.verifier.clone()
    }
}

/// The webhook routes, state applied.
pub fn routes(state: WebhookApi) -> OpenApiRouter {
    OpenApiRouter::new()
        .routes(routes!(create_endpoint, list_endpoints))
        .routes(routes!(delete_endpoint))
        .routes(routes!(list_deliveries))
        .route_layer(axum::middleware::from_fn(web::metrics::track))
        .with_state(state)
}

fn unavailable(err: &sqlx::Error) -> ApiError {
    tracing::warn!(%err, "webhook tables unavailable");
    ApiError::Unavailable("the notification store is unavailable; retry later".into())
}

/// An endpoint to register.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CreateEndpoint {
    /// Absolute `http`/`https` URL (≤ 2048 characters) on a public address.
    #[schema(example = "https://hooks.example.com/emporium")]
    pub url: String,
    /// Event types to receive (e.g. `order.placed`); absent or empty: every type.
    #[serde(default)]
    pub event_types: Option<Vec<String>>,
}

/// A registered endpoint.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointView {
    /// Its id.
    pub id: Uuid,
    /// Where deliveries are POSTed.
    pub url: String,
    /// The event types it receives; empty: every type.
    pub event_types: Vec<String>,
    /// When it was registered.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A new endpoint, with its signing secret (shown only in this answer).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedEndpoint {
    /// The endpoint.
    #[serde(flatten)]
    pub endpoint: EndpointView,
    /// `whsec_` + base64 of the 32-byte HMAC key. Keep it: it is never shown again.
    pub secret: String,
}

/// A page of endpoints.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EndpointList {
    /// The endpoints, oldest first.
    pub items: Vec<EndpointView>,
    /// The page (from 1).
    pub page: u32,
    /// Items per page.
    pub page_size: u32,
    /// Endpoints in all.
    pub total: i64,
}

/// `page` (1 to [`MAX_PAGE`], default 1) and `pageSize` (1..=100, default 20).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Paging {
    page: Option<u32>,
    page_size: Option<u32>,
    status: Option<DeliveryStatus>,
}

/// Where an event's delivery to an endpoint stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryStatus {
    /// Not delivered yet; another attempt is due.
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Every attempt failed; no more are made.
    Dead,
}

impl DeliveryStatus {
    /// The stored text, e.g. `pending`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }
}

/// The last page a list may be asked for, as on the query side.
const MAX_PAGE: u32 = 1_000_000;

impl Paging {
    fn checked(query: Result<Query<Paging>, QueryRejection>) -> Result<(u32, u32, Self), ApiError> {
        let Query(paging) = query.map_err(|err| ApiError::invalid_query(err.body_text()))?;
        let page = paging.page.unwrap_or(1);
        let size = paging.page_size.unwrap_or(20);
        if !(1..=MAX_PAGE).contains(&page) {
            return Err(ApiError::invalid_query(format!(
                "page must be an integer from 1 to {MAX_PAGE}"
            )));
        }
        if !(1..=100).contains(&size) {
            return Err(ApiError::invalid_query(
                "pageSize must be between 1 and 100",
            ));
        }
        Ok((page, size, paging))
    }
}

fn refused(err: UrlRefused) -> ApiError {
    match err {
        UrlRefused::Internal { .. } => ApiError::rule("webhook_url_refused", err.to_string()),
        other => ApiError::invalid_field("url", other.to_string()),
    }
}

/// Register a webhook endpoint. The answer carries the signing secret, shown only here.
///
/// The URL's host is resolved; private, loopback and link-local addresses are refused
/// (`webhook_url_refused`) unless the server allows them.
#[utoipa::path(post, path = "/api/v1/admin/webhooks", tag = "webhooks", request_body = CreateEndpoint,
    security(("bearer" = ["ADMIN"])),
    responses(
        (status = 201, body = CreatedEndpoint),
        (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 422, description = "invalid URL or event type (`errors`), or `webhook_url_refused`", body = Problem)))]
async fn create_endpoint(
    State(state): State<WebhookApi>,
    admin: Authorized<Admins>,
    AppJson(body): AppJson<CreateEndpoint>,
) -> Result<Response, ApiError> {
    let url = ssrf::parse_url(body.url.trim()).map_err(refused)?;
    let mut types: Vec<String> = Vec::new();
    let mut errors = Vec::new();
    for (i, kind) in body.event_types.unwrap_or_default().iter().enumerate() {
        match Subject::ALL.iter().find(|s| s.event_type() == kind) {
            Some(subject) => types.push(subject.event_type().to_owned()),
            None => errors.push(domain::validation::FieldError::new(
                format!("eventTypes[{i}]"),
                "unknown event type (e.g. order.placed)",
            )),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    types.sort();
    types.dedup();
    ssrf::check_destination(&url, state.allow_private)
        .await
        .map_err(refused)?;
    let id = Uuid::now_v7();
    let secret = signing::new_secret();
    let created_at = now_ms();
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, url, event_types, secret, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(id.to_string())
    .bind(url.as_str())
    .bind(serde_json::to_string(&types).unwrap_or_else(|_| "[]".into()))
    .bind(&secret)
    .bind(admin.id.to_string())
    .bind(created_at)
    .execute(&state.sql)
    .await
    .map_err(|err| unavailable(&err))?;
    tracing::info!(endpoint = %id, url = %url, by = %admin.id, "webhook endpoint registered");
    let body = CreatedEndpoint {
        endpoint: EndpointView {
            id,
            url: url.to_string(),
            event_types: types,
            created_at: from_ms(created_at),
        },
        secret,
    };
    Ok((
        StatusCode::CREATED,
        [(axum::http::header::CACHE_CONTROL, "no-store")],
        AppJson(body),
    )
        .into_response())
}

fn from_ms(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// List the webhook endpoints (without their secrets).
#[utoipa::path(get, path = "/api/v1/admin/webhooks", tag = "webhooks",
    params(("page" = Option<u32>, Query, minimum = 1, maximum = 1000000), ("pageSize" = Option<u32>, Query, minimum = 1, maximum = 100)),
    security(("bearer" = ["ADMIN"])),
    responses((status = 200, body = EndpointList), (status = 401, body = Problem), (status = 403, body = Problem)))]
async fn list_endpoints(
    State(state): State<WebhookApi>,
    _admin: Authorized<Admins>,
    query: Result<Query<Paging>, QueryRejection>,
) -> Result<AppJson<EndpointList>, ApiError> {
    let (page, size, _) = Paging::checked(query)?;
    let total: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM webhook_endpoints WHERE deleted_at IS NULL")
            .fetch_one(&state.sql)
            .await
            .map_err(|err| unavailable(&err))?;
    let rows = sqlx::query(
        "SELECT id, url, event_types, created_at FROM webhook_endpoints WHERE deleted_at IS NULL \
         ORDER BY created_at, id LIMIT $1 OFFSET $2",
    )
    .bind(i64::from(size))
    .bind(i64::from(page - 1) * i64::from(size))
    .fetch_all(&state.sql)
    .await
    .map_err(|err| unavailable(&err))?;
    let items = rows
        .iter()
        .map(|row| {
            let id: String = row.get(0);
            let types: String = row.get(2);
            EndpointView {
                id: id.parse().unwrap_or_default(),
                url: row.get(1),
                event_types: serde_json::from_str(&types).unwrap_or_default(),
                created_at: from_ms(row.get(3)),
            }
        })
        .collect();
    Ok(AppJson(EndpointList {
        items,
        page,
        page_size: size,
        total,
    }))
}

async fn live_endpoint(sql: &AnyPool, raw: &str) -> Result<String, ApiError> {
    let id: Uuid = raw
        .parse()
        .map_err(|_| ApiError::not_found("no such webhook endpoint"))?;
    let found: Option<String> =
        sqlx::query_scalar("SELECT id FROM webhook_endpoints WHERE id = $1 AND deleted_at IS NULL")
            .bind(id.to_string())
            .fetch_optional(sql)
            .await
            .map_err(|err| unavailable(&err))?;
    found.ok_or_else(|| ApiError::not_found("no such webhook endpoint"))
}

/// Delete a webhook endpoint: nothing more is sent to it. Its delivery log is kept.
#[utoipa::path(delete, path = "/api/v1/admin/webhooks/{id}", tag = "webhooks",
    params(("id" = Uuid, Path)),
    security(("bearer" = ["ADMIN"])),
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn delete_endpoint(
    State(state): State<WebhookApi>,
    admin: Authorized<Admins>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = live_endpoint(&state.sql, &id).await?;
    sqlx::query(
        "UPDATE webhook_endpoints SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL",
    )
    .bind(now_ms())
    .bind(&id)
    .execute(&state.sql)
    .await
    .map_err(|err| unavailable(&err))?;
    tracing::info!(endpoint = %id, by = %admin.id, "webhook endpoint deleted");
    Ok(StatusCode::NO_CONTENT)
}

/// One attempt to deliver.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    /// 1, 2, …
    pub attempt: i64,
    /// When it was made.
    pub at: chrono::DateTime<chrono::Utc>,
    /// The endpoint's HTTP status, if it answered.
    pub status_code: Option<i64>,
    /// Why it failed without an answer (refused address, timeout, connection error).
    pub error: Option<String>,
    /// How long it took.
    pub duration_ms: i64,
}

/// One event's delivery to the endpoint.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    /// The event id: the `webhook-id` header, the same on every attempt.
    pub event_id: Uuid,
    /// E.g. `order.placed`.
    pub event_type: String,
    /// `pending`, `delivered` or `dead` (no attempts left).
    #[schema(value_type = DeliveryStatus)]
    pub status: String,
    /// Every attempt so far, oldest first.
    pub attempts: Vec<AttemptView>,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When the delivery was recorded.
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// A page of deliveries.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryList {
    /// Newest first.
    pub items: Vec<DeliveryView>,
    /// The page (from 1).
    pub page: u32,
    /// Items per page.
    pub page_size: u32,
    /// Deliveries in all (with the filter).
    pub total: i64,
}

/// The delivery log of an endpoint: each event, its status and every attempt.
#[utoipa::path(get, path = "/api/v1/admin/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = Uuid, Path), ("page" = Option<u32>, Query, minimum = 1, maximum = 1000000), ("pageSize" = Option<u32>, Query, minimum = 1, maximum = 100),
        ("status" = Option<DeliveryStatus>, Query, description = "only deliveries in this state")),
    security(("bearer" = ["ADMIN"])),
    responses((status = 200, body = DeliveryList), (status = 401, body = Problem), (status = 403, body = Problem), (status = 404, body = Problem)))]
async fn list_deliveries(
    State(state): State<WebhookApi>,
    _admin: Authorized<Admins>,
    Path(id): Path<String>,
    query: Result<Query<Paging>, QueryRejection>,
) -> Result<AppJson<DeliveryList>, ApiError> {
    let (page, size, paging) = Paging::checked(query)?;
    let status = paging.status.map_or("", DeliveryStatus::as_str);
    let id = live_endpoint(&state.sql, &id).await?;
    let total: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM webhook_deliveries WHERE endpoint_id = $1 \
         AND ($2 = '' OR status = $2)",
    )
    .bind(&id)
    .bind(status)
    .fetch_one(&state.sql)
    .await
    .map_err(|err| unavailable(&err))?;
    let rows = sqlx::query(
        "SELECT id, event_id, event_type, status, next_attempt_at, created_at \
         FROM webhook_deliveries WHERE endpoint_id = $1 AND ($2 = '' OR status = $2) \
         ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4",
    )
    .bind(&id)
    .bind(status)
    .bind(i64::from(size))
    .bind(i64::from(page - 1) * i64::from(size))
    .fetch_all(&state.sql)
    .await
    .map_err(|err| unavailable(&err))?;
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let delivery: String = row.get(0);
        let attempts = sqlx::query(
            "SELECT attempt, at, status_code, error, duration_ms FROM webhook_attempts \
             WHERE delivery_id = $1 ORDER BY attempt",
        )
        .bind(&delivery)
        .fetch_all(&state.sql)
        .await
        .map_err(|err| unavailable(&err))?
        .iter()
        .map(|a| AttemptView {
            attempt: a.get(0),
            at: from_ms(a.get(1)),
            status_code: a.get(2),
            error: a.get(3),
            duration_ms: a.get(4),
        })
        .collect();
        let event_id: String = row.get(1);
        let status: String = row.get(3);
        let next: Option<i64> = row.get(4);
        items.push(DeliveryView {
            event_id: event_id.parse().unwrap_or_default(),
            event_type: row.get(2),
            next_attempt_at: next.filter(|_| status == "pending").map(from_ms),
            status,
            attempts,
            created_at: from_ms(row.get(5)),
        });
    }
    Ok(AppJson(DeliveryList {
        items,
        page,
        page_size: size,
        total,
    }))
}
