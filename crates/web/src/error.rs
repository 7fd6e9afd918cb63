//! [`ApiError`]: every failure an API answers with, and its one mapping to a status and a
//! problem document. 5xx bodies are opaque; their cause is logged once, here.
use axum::{
    http::{HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use domain::validation::{FieldError, Invalid};
use eventstore::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// The media type of every error answer (RFC 9457).
pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// A URI naming the problem type (`urn:emporium:problem:<code>`).
    #[serde(rename = "type")]
    pub kind: String,
    /// Short, human-readable summary of the problem type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong in this occurrence.
    pub detail: String,
    /// Stable machine-readable code, e.g. `insufficient_stock`.
    pub code: String,
    /// For invalid input: every field at fault, with JSON paths such as `lines[0].quantity`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<FieldErrorSchema>)]
    pub errors: Vec<FieldError>,
    /// Extra members specific to the problem (e.g. `shortSkus`).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub extra: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Problem {
    /// A problem of `status` with the stable `code` (its type is
    /// `urn:emporium:problem:<code>`, its title the status's reason), and nothing more.
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:emporium:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_string(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_string(),
            errors: Vec::new(),
            extra: None,
        }
    }
}

/// One field at fault (the domain's `FieldError`, described for the OpenAPI document).
#[derive(ToSchema)]
#[schema(as = FieldError)]
#[allow(dead_code)]
pub struct FieldErrorSchema {
    /// JSON path of the field, e.g. `lines[0].quantity`.
    field: String,
    /// What is wrong with it.
    message: String,
}

/// Every error an Emporium API answers with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed request (400).
    #[error("{detail}")]
    BadRequest {
        /// Stable code.
        code: &'static str,
        /// Explanation.
        detail: String,
    },
    /// Well-formed but invalid input (422), with the fields at fault.
    #[error("invalid input")]
    Validation(Vec<FieldError>),
    /// A business rule refused the command (422).
    #[error("{detail}")]
    Rule {
        /// Stable code.
        code: &'static str,
        /// Explanation.
        detail: String,
    },
    /// Missing, malformed, expired or forged credentials (401).
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated but not allowed (403).
    #[error("{detail}")]
    Forbidden {
        /// Stable code.
        code: &'static str,
        /// Explanation.
        detail: String,
    },
    /// No such resource, or not the caller's (404).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the current state (409).
    #[error("{detail}")]
    Conflict {
        /// Stable code.
        code: &'static str,
        /// Explanation.
        detail: String,
        /// Problem-specific members.
        extra: Option<serde_json::Map<String, serde_json::Value>>,
    },
    /// An `If-Match` precondition failed (412).
    #[error("{0}")]
    PreconditionFailed(String),
    /// Unsupported media type (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Request body too large (413).
    #[error("request body is too large")]
    PayloadTooLarge,
    /// Rate limited (429), with the seconds to wait.
    #[error("too many requests")]
    TooManyRequests {
        /// Seconds until a retry may succeed.
        retry_after_secs: u64,
    },
    /// A dependency is unavailable (503).
    #[error("{0}")]
    Unavailable(String),
    /// Waiting for something (a projection) took too long (504).
    #[error("{0}")]
    GatewayTimeout(String),
    /// A bug or an unexpected failure (500). The cause is logged, never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// A 404 for `what`.
    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound(what.into())
    }

    /// A 403 with the `forbidden` code.
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::Forbidden {
            code: "forbidden",
            detail: detail.into(),
        }
    }

    /// A 409 with a code.
    pub fn conflict(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            detail: detail.into(),
            extra: None,
        }
    }

    /// A 422 with a code.
    pub fn rule(code: &'static str, detail: impl Into<String>) -> Self {
        Self::Rule {
            code,
            detail: detail.into(),
        }
    }

    /// A 400 `invalid_query`: a query parameter that is unknown, repeated or out of range.
    pub fn invalid_query(detail: impl Into<String>) -> Self {
        Self::BadRequest {
            code: "invalid_query",
            detail: detail.into(),
        }
    }

    /// A 422 for one bad field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    /// The status this error answers with: the one place that decides it.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::Validation(_) | Self::Rule { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict { .. } => StatusCode::CONFLICT,
            Self::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::GatewayTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn code(&self) -> &'static str {
        match self {
            Self::BadRequest { code, .. }
            | Self::Rule { code, .. }
            | Self::Forbidden { code, .. }
            | Self::Conflict { code, .. } => code,
            Self::Validation(_) => "validation_failed",
            Self::Unauthorized(_) => "unauthorized",
            Self::NotFound(_) => "not_found",
            Self::PreconditionFailed(_) => "version_mismatch",
            Self::UnsupportedMediaType(_) => "unsupported_media_type",
            Self::PayloadTooLarge => "payload_too_large",
            Self::TooManyRequests { .. } => "rate_limited",
            Self::Unavailable(_) => "unavailable",
            Self::GatewayTimeout(_) => "timeout",
            Self::Internal(_) => "internal_error",
        }
    }

    /// The problem document for this error.
    pub fn problem(&self) -> Problem {
        let status = self.status();
        let detail = match self {
            Self::Validation(errors) => {
                let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
                format!("invalid input: {}", fields.join(", "))
            }
            Self::Internal(_) => "an unexpected error occurred; it has been logged".to_string(),
            Self::TooManyRequests { retry_after_secs } => {
                format!("too many requests; retry after {retry_after_secs} s")
            }
            other => other.to_string(),
        };
        Problem {
            errors: match self {
                Self::Validation(errors) => errors.clone(),
                _ => Vec::new(),
            },
            extra: match self {
                Self::Conflict { extra, .. } => extra.clone(),
                _ => None,
            },
            ..Problem::new(status, self.code(), detail)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Self::Internal(err) = &self {
            tracing::error!(error = ?err, "request failed");
        } else if let Self::Unavailable(detail) = &self {
            tracing::warn!(%detail, "dependency unavailable");
        }
        let problem = self.problem();
        let mut response = (self.status(), axum::Json(problem)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        match &self {
            Self::TooManyRequests { retry_after_secs } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after_secs));
            }
            Self::Unauthorized(_) => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
    }
}

impl From<Invalid> for ApiError {
    fn from(invalid: Invalid) -> Self {
        Self::Validation(invalid.0)
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict { .. } => Self::conflict(
                "concurrency_conflict",
                "the resource was changed concurrently; retry the request",
            ),
            StoreError::Unavailable(_) => {
                Self::Unavailable("the event store is unavailable; retry later".into())
            }
            StoreError::Invalid(detail) => Self::BadRequest {
                code: "bad_request",
                detail,
            },
            StoreError::Corrupt(_) => Self::Internal(anyhow::Error::new(err)),
        }
    }
}
