//! `Idempotency-Key` on every POST: the first response to a key is stored and replayed to
//! every retry, so a command takes effect once. Races are settled by the database: the
//! first request inserts the key (`ON CONFLICT DO NOTHING`), a concurrent duplicate waits
//! for the first to finish and then gets its response. A key reused by the same account
//! with a different request is a 422 (anonymous callers: see [`scope_of`]). Server errors
//! (5xx) are not stored, so a retry runs again; nor are refusals made before the command
//! ran (see [`refused_before_running`]); nor are responses marked `Cache-Control: no-store`
//! (tokens), which must never sit in a table.
//!
//! A malformed key is refused (400) without running anything; on a route that takes a
//! bearer token, a missing or failed token is answered first (401), as the handler would.
use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::{
    body::{Body, to_bytes},
    extract::{FromRequestParts, MatchedPath, Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use domain::account::Role;
use sha2::{Digest, Sha256};
use sqlx::{AnyPool, Row};
use web::{ApiError, AuthUser, layers::BODY_LIMIT};

use crate::state::AppState;

/// How long a duplicate waits for the first request with its key to finish.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(10);
/// A key left pending this long belongs to a request that died; it may be taken over.
const ABANDONED_AFTER_MS: i64 = 60_000;

/// The stored first responses.
#[derive(Clone, Debug)]
pub struct IdempotencyKeys {
    sql: AnyPool,
}

enum Begin {
    First,
    Replay {
        status: u16,
        content_type: String,
        body: String,
    },
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
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (scope, key, request_hash, created_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (scope, key) DO NOTHING",
        )
        .bind(scope)
        .bind(key)
        .bind(hash)
        .bind(now)
        .execute(&self.sql)
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(Begin::First);
        }
        let row = sqlx::query(
            "SELECT request_hash, status, content_type, body, created_at FROM idempotency_keys WHERE scope = $1 AND key = $2",
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
            return Ok(Begin::Replay {
                status: u16::try_from(status).unwrap_or(500),
                content_type: row
                    .try_get::<Option<String>, _>(2)?
                    .unwrap_or_else(|| "application/json".into()),
                body: row.try_get::<Option<String>, _>(3)?.unwrap_or_default(),
            });
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
                return Ok(Begin::First);
            }
        }
        Ok(Begin::InProgress)
    }

    async fn complete(
        &self,
        scope: &str,
        key: &str,
        status: u16,
        content_type: &str,
        body: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE idempotency_keys SET status = $1, content_type = $2, body = $3, completed_at = $4 WHERE scope = $5 AND key = $6",
        )
        .bind(i64::from(status))
        .bind(content_type)
        .bind(body)
        .bind(chrono::Utc::now().timestamp_millis())
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

fn replay(status: u16, content_type: &str, body: String) -> Response {
    let mut response =
        (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), body).into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(content_type) {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
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

/// The POST routes (path templates) that take a bearer token, with the roles each admits,
/// as the OpenAPI document declares them.
#[derive(Clone, Debug, Default)]
pub struct TokenRoutes(Arc<HashMap<String, Vec<Role>>>);

impl TokenRoutes {
    /// The POST operations of `doc` with a security requirement.
    pub fn of(doc: &utoipa::openapi::OpenApi) -> Self {
        Self(Arc::new(
            doc.paths
                .paths
                .iter()
                .filter_map(|(path, item)| {
                    let roles = web::openapi::admitted_roles(item.post.as_ref()?)?;
                    Some((path.clone(), roles))
                })
                .collect(),
        ))
    }

    fn roles(&self, path: &str) -> Option<&[Role]> {
        self.0.get(path).map(Vec::as_slice)
    }
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
    tokens: &TokenRoutes,
    request: Request,
) -> Response {
    let admitted = request
        .extensions()
        .get::<MatchedPath>()
        .and_then(|path| tokens.roles(path.as_str()));
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

/// Middleware over the command routes; `tokens` are those of them that take a token.
pub async fn middleware(
    State((state, tokens)): State<(AppState, TokenRoutes)>,
    request: Request,
    next: Next,
) -> Response {
    let Some(key) = request.headers().get("idempotency-key").cloned() else {
        return next.run(request).await;
    };
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let Some(key) = well_formed(&key) else {
        return refuse_malformed_key(&state, &tokens, request).await;
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
    hasher.update(&bytes);
    let hash = format!("{:x}", hasher.finalize());
    let scope = scope_of(account, &hash);
    let keys = &state.idempotency;

    let started = tokio::time::Instant::now();
    loop {
        match keys.begin(&scope, &key, &hash).await {
            Err(err) => return unavailable(&err),
            Ok(Begin::Mismatch) => {
                return ApiError::rule(
                    "idempotency_key_reused",
                    "this Idempotency-Key was already used for a different request",
                )
                .into_response();
            }
            Ok(Begin::Replay {
                status,
                content_type,
                body,
            }) => return replay(status, &content_type, body),
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
            Ok(Begin::First) => break,
        }
    }

    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
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
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("application/json");
        keys.complete(&scope, &key, parts.status.as_u16(), content_type, &text)
            .await
    };
    if let Err(err) = stored {
        tracing::warn!(%err, "could not record an idempotent response");
    }
    Response::from_parts(parts, Body::from(body))
}
