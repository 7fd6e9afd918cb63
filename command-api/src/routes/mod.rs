//! One module per resource, each with `router()` and thin, documented handlers.
use axum::{
    body::Bytes,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use utoipa::ToSchema;
use web::ApiError;

pub mod accounts;
pub mod auth;
pub mod cart;
pub mod customers;
pub mod inventory;
pub mod names;
pub mod orders;
pub mod products;
pub mod wishlist;

/// The answer to every command: what it created or changed, the stream's new version,
/// and the global position of the last event it appended (for `X-Emporium-Min-Position`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CommandAnswer {
    /// Id of the resource (a UUID, or a SKU for inventory).
    pub id: String,
    /// The stream's version after the command (also sent as `ETag`).
    pub version: u64,
    /// Global position of the last event appended (also sent as `Emporium-Position`).
    pub position: u64,
}

impl CommandAnswer {
    /// An answer for `id` at `version` and `position`.
    pub fn new(id: impl ToString, version: u64, position: u64) -> Self {
        Self {
            id: id.to_string(),
            version,
            position,
        }
    }

    /// The response with `status`, the body, `ETag` and `Emporium-Position` headers.
    pub fn respond(self, status: StatusCode) -> Response {
        let mut response = (status, axum::Json(&self)).into_response();
        let headers = response.headers_mut();
        if let Ok(etag) = HeaderValue::from_str(&web::etag::versioned(self.version, None)) {
            headers.insert(header::ETAG, etag);
        }
        headers.insert("emporium-position", HeaderValue::from(self.position));
        response
    }
}

/// Parses an id from the path; anything that is not one names nothing (404).
pub(crate) fn parse_id<T: std::str::FromStr>(raw: &str, what: &str) -> Result<T, ApiError> {
    raw.parse()
        .map_err(|_| ApiError::not_found(format!("no such {what}")))
}

/// The version `If-Match` names (`"3"`, or a tag the query side sent, `"3.<digest>"`), or
/// none: without the header, or with `*`, a change applies to the current version.
pub(crate) fn if_match(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(web::etag::parse_if_match)
        .map(web::etag::IfMatch::expected_version)
        .ok_or_else(|| ApiError::BadRequest {
            code: "invalid_if_match",
            detail:
                "If-Match must be `*` or the one entity tag the change was based on, e.g. \"3\""
                    .into(),
        })
}

/// A JSON body that may be absent: an empty body, or `null`, is `T::default()`.
pub(crate) fn optional_json<T: DeserializeOwned + Default>(body: &Bytes) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    // `null` is no body too, as a client that serialises an absent optional body sends it.
    let value: Option<T> = serde_json::from_slice(body).map_err(|err| ApiError::BadRequest {
        code: "invalid_body",
        detail: err.to_string(),
    })?;
    web::nul::check_json(body)?;
    Ok(value.unwrap_or_default())
}

/// Money as it crosses the API: integer minor units and an ISO 4217 code.
#[derive(Clone, Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MoneyDto {
    /// Amount in minor units (cents): 1999 is 19.99.
    pub amount: i64,
    /// ISO 4217 code, e.g. `EUR`.
    pub currency: String,
}

impl From<domain::money::Money> for MoneyDto {
    fn from(money: domain::money::Money) -> Self {
        Self {
            amount: money.amount,
            currency: money.currency.to_string(),
        }
    }
}

impl MoneyDto {
    /// Parses into domain money, reporting a bad currency at `field.currency`.
    pub(crate) fn parse(
        &self,
        field: &str,
    ) -> Result<domain::money::Money, domain::validation::FieldError> {
        domain::money::Currency::parse(&self.currency)
            .map(|currency| domain::money::Money::new(self.amount, currency))
            .map_err(|e| e.at(format!("{field}.currency")))
    }
}
