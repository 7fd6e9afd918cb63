//! The NUL character (U+0000) in what a client sends. PostgreSQL stores it in no text or
//! JSONB value, so a request carrying one would pass every check and then fail in the
//! write (a 5xx, or a projection stuck on the event): it is refused at the edge instead,
//! on every backend alike. In JSON it can only come as the escape `\u0000`; in a URI, as
//! `%00`.
use axum::{
    extract::Request,
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde_json::Value;

use crate::ApiError;

/// A 422 at the first field of the JSON `body` that holds a NUL, if one does.
///
/// # Errors
/// That 422 (`validation_failed`).
pub fn check_json(body: &[u8]) -> Result<(), ApiError> {
    match field_holding_nul(body) {
        Some(field) => Err(ApiError::invalid_field(
            field,
            "must not contain the NUL character (U+0000)",
        )),
        None => Ok(()),
    }
}

/// The JSON path (`lines[0].sku`) of the first string in `body` that holds a NUL, or of
/// the object whose key does; `None` when there is none. Cheap when there is none: the
/// body is parsed again only if it contains the escape at all.
pub fn field_holding_nul(body: &[u8]) -> Option<String> {
    const ESCAPE: &[u8] = b"\\u0000";
    if !body.windows(ESCAPE.len()).any(|w| w == ESCAPE) {
        return None;
    }
    let value: Value = serde_json::from_slice(body).ok()?;
    path_to_nul(&value, String::new())
}

fn path_to_nul(value: &Value, path: String) -> Option<String> {
    let here = || {
        if path.is_empty() {
            "body".to_owned()
        } else {
            path.clone()
        }
    };
    match value {
        Value::String(text) => text.contains('\0').then(here),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| path_to_nul(item, format!("{path}[{i}]"))),
        Value::Object(fields) => fields.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                return Some(here());
            }
            let inner = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            path_to_nul(item, inner)
        }),
        _ => None,
    }
}

/// Middleware: a path or query string holding `%00` is a 400 `invalid_uri` before any
/// handler reads it.
pub async fn refuse_in_uri(request: Request, next: Next) -> Response {
    let uri = request.uri();
    if uri.path().contains("%00") || uri.query().is_some_and(|q| q.contains("%00")) {
        return ApiError::BadRequest {
            code: "invalid_uri",
            detail: "the path or query holds %00, the NUL character, which no name, SKU or \
                     filter may contain"
                .into(),
        }
        .into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_field_that_holds_a_nul() {
        let body = br#"{"lines":[{"sku":"A"},{"sku":"B\u0000"}],"name":"x"}"#;
        assert_eq!(field_holding_nul(body).as_deref(), Some("lines[1].sku"));
        let key = br#"{"attributes":{"a\u0000":"v"}}"#;
        assert_eq!(field_holding_nul(key).as_deref(), Some("attributes"));
        assert_eq!(field_holding_nul(br#""\u0000""#).as_deref(), Some("body"));
    }

    #[test]
    fn an_escaped_backslash_before_u0000_is_text() {
        assert_eq!(field_holding_nul(br#"{"name":"C:\\u0000"}"#), None);
        assert_eq!(field_holding_nul(br#"{"name":"plain","n":1}"#), None);
    }
}
