//! `Idempotency-Key` on every write (POST, PUT, PATCH, DELETE): the first response to a key
//! is stored and replayed to every retry (its status, body, and the headers a client reads
//! off a command's answer: see [`REPLAYED_HEADERS`]), so a command takes effect once. Races are settled by the database: the
//! first request inserts the key (`ON CONFLICT DO NOTHING`), a concurrent duplicate waits
//! for the first to finish and then gets its response. A key reused by the same account
//! with a different request is a 422 (anonymous callers: see [`scope_of`]). Server errors
//! (5xx) are not stored, so a retry runs again; nor are refusals made before the command
//! ran (see [`refused_before_running`]); nor are responses marked `Cache-Control: no-store`
//! (tokens), which must never sit in a table.
//!
//! A malformed key is refused (400) without running anything; on a route that takes a
//! bearer token, the caller is judged first, as the handler would: 401 for a missing or
//! failed token, 403 for a role the route does not admit.
use std::{collections::HashMap, convert::Infallible, sync::Arc, time::Duration};

use axum::{
    body::{Body, to_bytes},
    extract::{FromRequestParts, MatchedPath, OptionalFromRequestParts, Request, State},
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header, request::Parts},
    middleware::Next,
    response::{IntoResponse, Response},
};
use domain::account::Role;
use sha2::{Digest, Sha256};
use sqlx::{AnyPool, Row};
use uuid::Uuid;
use web::{ApiError, AuthUser, layers::BODY_LIMIT};

use crate::state::AppState;

/// The headers of a first answer that its replays repeat, besides its content type.
const REPLAYED_HEADERS: [HeaderName; 3] = [
    header::ETAG,
    header::LOCATION,
    HeaderName::from_static("emporium-position"),
];

/// How long a duplicate waits for the first request with its key to finish.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(10);
/// A key left pending this long belongs to a request that died; it may be taken over.
const ABANDONED_AFTER_MS: i64 = 60_000;

/// A first answer, as stored.
struct Stored {
    status: u16,
    content_type: Option<String>,
    /// [`REPLAYED_HEADERS`] the answer had, as a JSON object of names to values.
    headers: Option<String>,
    body: String,
}

impl Stored {
    /// What `parts` and `body` store.
    fn of(parts: &axum::http::response::Parts, body: String) -> Self {
        let text = |value: &HeaderValue| value.to_str().ok().map(str::to_owned);
        let kept: serde_json::Map<String, serde_json::Value> = REPLAYED_HEADERS
            .iter()
            .filter_map(|name| {
                let value = text(parts.headers.get(name)?)?;
                Some((name.as_str().to_owned(), value.into()))
            })
            .collect();
        Self {
            status: parts.status.as_u16(),
            content_type: parts.headers.get(header::CONTENT_TYPE).and_then(text),
            headers: (!kept.is_empty()).then(|| serde_json::Value::Object(kept).to_string()),
            body,
        }
    }

    /// The answer again, marked `Idempotent-Replayed`.
    fn replay(self) -> Response {
        let mut response = Response::new(Body::from(self.body));
        *response.status_mut() = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        let headers = response.headers_mut();
        if let Some(value) = self
            .content_type
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            headers.insert(header::CONTENT_TYPE, value);
        }
        replay_headers(headers, self.headers.as_deref());
        headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
        response
    }
}

/// Puts back the [`REPLAYED_HEADERS`] stored as `stored`.
fn replay_headers(headers: &mut HeaderMap, stored: Option<&str>) {
    let Some(serde_json::Value::Object(kept)) = stored.and_then(|s| serde_json::from_str(s).ok())
    else {
        return;
    };
    for name in &REPLAYED_HEADERS {
        if let Some(value) = kept
            .get(name.as_str())
            .and_then(serde_json::Value::as_str)
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            headers.insert(name.clone(), value);
        }
    }
}

/// The stored first responses.
#[derive(Clone, Debug)]
pub struct IdempotencyKeys {
    sql: AnyPool,
}

/// What a handler learns of the key its request came with (a request extension): the
/// id the middleware gave the request when the key was first seen, the same on every run
/// of it, so a command that creates a resource can name it by this id and recognise it
/// on a run after a crash (see [`KeyedRequest::retaken`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyedRequest {
    /// The request's id: a UUID v7 taken when its key was first seen.
    pub id: Uuid,
    /// True when an earlier run of this request died before its answer was stored: it may
    /// have taken effect, so a command checks before acting again.
    pub retaken: bool,
}

impl KeyedRequest {
    /// The id a resource a request creates gets, or the request's correlation id: the
    /// request's own when it came with a key (so every run of it names the same one),
    /// else a fresh UUID v7.
    pub fn id_or_new(keyed: Option<Self>) -> Uuid {
        keyed.map_or_else(Uuid::now_v7, |keyed| keyed.id)
    }
}

/// As an extractor, `Option<KeyedRequest>`: the key's request, or `None` without a key.
impl<S: Sync> OptionalFromRequestParts<S> for KeyedRequest {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Infallible> {
        Ok(parts.extensions.get::<Self>().copied())
    }
}

enum Begin {
    First(KeyedRequest),
    Replay(Stored),
    InProgress,
    Mismatch,
}

impl IdempotencyKeys {
    /// Keys stored in `sql` (table `idempotency_keys`).
    pub fn new(sql: AnyPool) -> Self {
        Self { sql }
    }

    async fn begin(&self, scope: &str, key: &str, hash: &str) -> Result<Begin, sqlx::Error> {
        let now = chrono::Utc::now().timestamp_millis();
        let id = Uuid::now_v7();
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (scope, key, request_hash, created_at, request_id) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scope, key) DO NOTHING",
        )
        .bind(scope)
        .bind(key)
        .bind(hash)
        .bind(now)
        .bind(id.to_string())
        .execute(&self.sql)
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(Begin::First(KeyedRequest { id, retaken: false }));
        }
        let row = sqlx::query(
            "SELECT request_hash, status, content_type, body, created_at, headers, request_id \
             FROM idempotency_keys WHERE scope = $1 AND key = $2",
        )
        .bind(scope)
        .bind(key)
        .fetch_optional(&self.sql)
        .await?;
        let Some(row) = row else {
            return Ok(Begin::InProgress);
        };
        if row.try_get::<String, _>(0)? != hash {
            return Ok(Begin::Mismatch);
        }
        if let Some(status) = row.try_get::<Option<i64>, _>(1)? {
            return Ok(Begin::Replay(Stored {
                status: u16::try_from(status).unwrap_or(500),
                content_type: row.try_get(2)?,
                headers: row.try_get(5)?,
                body: row.try_get::<Option<String>, _>(3)?.unwrap_or_default(),
            }));
        }
        let created_at: i64 = row.try_get(4)?;
        if now - created_at > ABANDONED_AFTER_MS {
            let taken = sqlx::query(
                "UPDATE idempotency_keys SET created_at = $1 WHERE scope = $2 AND key = $3 AND status IS NULL AND created_at = $4",
            )
            .bind(now)
            .bind(scope)
            .bind(key)
            .bind(created_at)
            .execute(&self.sql)
            .await?;
            if taken.rows_affected() == 1 {
                // Keys stored before request ids were have none; their first run named
                // nothing by the key, so a fresh id recognises nothing, as before.
                let id = row
                    .try_get::<Option<String>, _>(6)?
                    .and_then(|id| id.parse().ok())
                    .unwrap_or(id);
                return Ok(Begin::First(KeyedRequest { id, retaken: true }));
            }
        }
        Ok(Begin::InProgress)
    }

    async fn complete(&self, scope: &str, key: &str, answer: &Stored) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE idempotency_keys SET status = $1, content_type = $2, body = $3, completed_at = $4, \
             headers = $5 WHERE scope = $6 AND key = $7",
        )
        .bind(i64::from(answer.status))
        .bind(answer.content_type.as_deref())
        .bind(answer.body.as_str())
        .bind(chrono::Utc::now().timestamp_millis())
        .bind(answer.headers.as_deref())
        .bind(scope)
        .bind(key)
        .execute(&self.sql)
        .await?;
        Ok(())
    }

    async fn forget(&self, scope: &str, key: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND status IS NULL",
        )
        .bind(scope)
        .bind(key)
        .execute(&self.sql)
        .await?;
        Ok(())
    }
}

fn unavailable(err: &sqlx::Error) -> Response {
    tracing::warn!(%err, "idempotency store unavailable");
    ApiError::Unavailable("the idempotency store is unavailable; retry later".into())
        .into_response()
}

/// Keys are per caller. A verified account is one scope. Anonymous callers (sign-up,
/// sign-in, password reset) cannot be told apart, so their scope is the request itself:
/// two strangers who happen to send the same key never collide, and a retry (the same
/// request) still replays. The price is that an anonymous key reused for another request
/// is taken as a new key instead of a 422.
fn scope_of(account: Option<String>, request_hash: &str) -> String {
    account.unwrap_or_else(|| format!("anonymous:{request_hash}"))
}

/// Whether the response refused the request before the command ran, so that nothing
/// happened: its form (400 malformed, 413 too large, 415 not JSON) or its caller (401 a
/// token that failed or wrong credentials, 403 a role or a locked account, 429 a rate
/// limit). Such a request may succeed later: sent with the right `Content-Type` (which
/// the request's fingerprint leaves out), with a new token, once the account is unlocked,
/// or once the window has passed. So a retry with the key runs again; kept, the refusal
/// would be replayed for the key's lifetime.
fn refused_before_running(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::BAD_REQUEST
            | StatusCode::PAYLOAD_TOO_LARGE
            | StatusCode::UNSUPPORTED_MEDIA_TYPE
            | StatusCode::UNAUTHORIZED
            | StatusCode::FORBIDDEN
            | StatusCode::TOO_MANY_REQUESTS
    )
}

/// The write operations (method and path template) the key applies to, as the OpenAPI
/// document declares them, each with the roles it admits when it takes a bearer token.
/// A request no write operation takes (a method its path does not take: 405) passes
/// through untouched: `route_layer` still runs for those.
#[derive(Clone, Debug, Default)]
pub struct WriteRoutes(Arc<HashMap<(Method, String), Admitted>>);

/// The roles a write operation admits: `None` when it takes no token.
type Admitted = Option<Vec<Role>>;

impl WriteRoutes {
    /// The POST, PUT, PATCH and DELETE operations of `doc`, each of which is documented
    /// to take `Idempotency-Key` on the way, as the middleware honours it on each.
    pub fn documented(doc: &mut utoipa::openapi::OpenApi) -> Self {
        let mut routes = HashMap::new();
        for (path, item) in &mut doc.paths.paths {
            let operations = [
                (Method::POST, &mut item.post),
                (Method::PUT, &mut item.put),
                (Method::PATCH, &mut item.patch),
                (Method::DELETE, &mut item.delete),
            ];
            for (method, operation) in operations {
                if let Some(operation) = operation {
                    operation
                        .parameters
                        .get_or_insert_with(Vec::new)
                        .push(key_parameter().into());
                    let roles = web::openapi::admitted_roles(operation);
                    routes.insert((method, path.clone()), roles);
                }
            }
        }
        Self(Arc::new(routes))
    }

    /// The operation that takes `request`, if a write operation does: `Some(roles)` when
    /// it takes a token.
    fn taking(&self, request: &Request) -> Option<Option<&[Role]>> {
        let path = request.extensions().get::<MatchedPath>()?;
        self.0
            .get(&(request.method().clone(), path.as_str().to_owned()))
            .map(Option::as_deref)
    }
}

/// `Idempotency-Key`, as the OpenAPI document describes it.
fn key_parameter() -> utoipa::openapi::path::Parameter {
    use utoipa::openapi::{
        Required, Type,
        path::{ParameterBuilder, ParameterIn},
        schema::ObjectBuilder,
    };
    ParameterBuilder::new()
        .name("Idempotency-Key")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "a retry with the same key (per caller) replays the first answer and takes \
             effect once",
        ))
        .schema(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[!-~]{1,255}$")),
        ))
        .build()
}

/// `key` if it is 1 to 255 visible ASCII characters.
fn well_formed(key: &HeaderValue) -> Option<String> {
    key.to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
}

/// The answer to a malformed key: the caller is judged first, as the handler would judge
/// it (on a route that takes a token, 401 without a valid one, 403 with a role the route
/// does not admit), then the key (400).
async fn refuse_malformed_key(
    state: &AppState,
    admitted: Option<&[Role]>,
    request: Request,
) -> Response {
    if let Some(roles) = admitted {
        let (mut parts, _) = request.into_parts();
        let caller = AuthUser::from_request_parts(&mut parts, state).await;
        if let Err(refusal) = caller.and_then(|caller| caller.require(roles)) {
            return refusal.into_response();
        }
    }
    ApiError::BadRequest {
        code: "invalid_idempotency_key",
        detail: "Idempotency-Key must be 1 to 255 visible ASCII characters".into(),
    }
    .into_response()
}

/// Middleware over the command routes, the write ones of which are `routes`.
pub async fn middleware(
    State((state, routes)): State<(AppState, WriteRoutes)>,
    request: Request,
    next: Next,
) -> Response {
    let Some(key) = request.headers().get("idempotency-key").cloned() else {
        return next.run(request).await;
    };
    let Some(admitted) = routes.taking(&request) else {
        return next.run(request).await;
    };
    let Some(key) = well_formed(&key) else {
        return refuse_malformed_key(&state, admitted, request).await;
    };
    let account = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(web::extract::bearer_token)
        .and_then(|token| state.verifier.verify(token).ok())
        .map(|claims| claims.sub.to_string());
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, BODY_LIMIT).await else {
        return ApiError::PayloadTooLarge.into_response();
    };
    let mut hasher = Sha256::new();
    hasher.update(parts.method.as_str());
    hasher.update(parts.uri.path());
    // A retry of a conditional write names the same version; another version is another request.
    if let Some(if_match) = parts.headers.get(header::IF_MATCH) {
        hasher.update(b"\0if-match:");
        hasher.update(if_match.as_bytes());
    }
    hasher.update(&bytes);
    let hash = format!("{:x}", hasher.finalize());
    let scope = scope_of(account, &hash);
    let keys = &state.idempotency;

    let started = tokio::time::Instant::now();
    let keyed = loop {
        match keys.begin(&scope, &key, &hash).await {
            Err(err) => return unavailable(&err),
            Ok(Begin::Mismatch) => {
                return ApiError::rule(
                    "idempotency_key_reused",
                    "this Idempotency-Key was already used for a different request",
                )
                .into_response();
            }
            Ok(Begin::Replay(answer)) => return answer.replay(),
            Ok(Begin::InProgress) if started.elapsed() < WAIT_FOR_FIRST => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Ok(Begin::InProgress) => {
                return ApiError::conflict(
                    "request_in_progress",
                    "a request with this Idempotency-Key is still running",
                )
                .into_response();
            }
            Ok(Begin::First(keyed)) => break keyed,
        }
    };

    let mut request = Request::from_parts(parts, Body::from(bytes));
    request.extensions_mut().insert(keyed);
    let response = next.run(request).await;
    let (parts, body) = response.into_parts();
    let Ok(body) = to_bytes(body, usize::MAX).await else {
        let _ = keys.forget(&scope, &key).await;
        return ApiError::Internal(anyhow::anyhow!("could not read the response body"))
            .into_response();
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    let secret = parts
        .headers
        .get(header::CACHE_CONTROL)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("no-store"));
    let stored = if parts.status.is_server_error() || refused_before_running(parts.status) || secret
    {
        keys.forget(&scope, &key).await
    } else {
        keys.complete(&scope, &key, &Stored::of(&parts, text)).await
    };
    if let Err(err) = stored {
        tracing::warn!(%err, "could not record an idempotent response");
    }
    Response::from_parts(parts, Body::from(body))
}
