//! Field validation that reports every bad field at once, each under its JSON (camelCase) path.
//!
//! Paths follow the request body as the API sees it: `name`, `variants[1].price.amount`,
//! `shippingAddress.postalCode`, `lines[0].quantity`. Parsers of value types return a single
//! [`FieldError`] named after the value (`sku`, `email`, …); callers re-home it with
//! [`FieldError::at`] so the path points into the body they validated.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One field at fault and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FieldError {
    /// JSON path of the field in camelCase, e.g. `variants[0].sku`.
    pub field: String,
    /// Human-readable statement of the rule the value breaks.
    pub message: String,
}

impl FieldError {
    /// A field error at `field` saying `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same error moved to another path (a parser names the bare value; the caller knows
    /// where it sits in the body).
    #[must_use]
    pub fn at(self, field: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: self.message,
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

/// Every field error found in one input; never empty when produced by [`Validator::finish`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Invalid(pub Vec<FieldError>);

impl Invalid {
    /// A single-field error, for rules that can only fail one way.
    pub fn single(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self(vec![FieldError::new(field, message)])
    }

    /// The field errors, in the order they were found.
    #[must_use]
    pub fn errors(&self) -> &[FieldError] {
        &self.0
    }

    /// Whether some error concerns exactly this field path.
    #[must_use]
    pub fn has_field(&self, field: &str) -> bool {
        self.0.iter().any(|e| e.field == field)
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid input")?;
        for (i, e) in self.0.iter().enumerate() {
            f.write_str(if i == 0 { ": " } else { "; " })?;
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Invalid {}

impl From<FieldError> for Invalid {
    fn from(e: FieldError) -> Self {
        Self(vec![e])
    }
}

/// Joins a path prefix and a field name: `join("shippingAddress", "city")` is
/// `shippingAddress.city`; an empty prefix gives the bare field.
#[must_use]
pub fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}

/// Collects field errors so that one answer lists all of them.
#[derive(Debug, Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    /// An empty collector.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Records `message` at `field` unless `ok`; returns `ok` so callers can skip checks that
    /// only make sense on a valid value.
    pub fn check(
        &mut self,
        ok: bool,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> bool {
        if !ok {
            self.errors.push(FieldError::new(field, message));
        }
        ok
    }

    /// Checks that `value`, trimmed, is `min..=max` characters (Unicode scalar values).
    pub fn text(&mut self, field: impl Into<String>, value: &str, min: usize, max: usize) -> bool {
        let len = value.trim().chars().count();
        if len < min {
            let message = if min == 1 {
                "must not be blank".to_owned()
            } else {
                format!("must be at least {min} characters")
            };
            self.errors.push(FieldError::new(field, message));
            false
        } else if len > max {
            self.errors.push(FieldError::new(
                field,
                format!("must be at most {max} characters"),
            ));
            false
        } else {
            true
        }
    }

    /// Records a ready-made field error.
    pub fn push(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    /// Keeps the value of a parse, or records its error at `field`.
    pub fn parse<T>(
        &mut self,
        field: impl Into<String>,
        result: Result<T, FieldError>,
    ) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors.push(e.at(field));
                None
            }
        }
    }

    /// Merges the errors of a nested validation (already carrying full paths).
    pub fn merge(&mut self, result: Result<(), Invalid>) -> bool {
        match result {
            Ok(()) => true,
            Err(Invalid(mut errors)) => {
                self.errors.append(&mut errors);
                false
            }
        }
    }

    /// Whether no error has been recorded yet.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// `Ok(())` when nothing was recorded.
    ///
    /// # Errors
    /// Every recorded field error, in the order found.
    pub fn finish(self) -> Result<(), Invalid> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(Invalid(self.errors))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_every_error_in_order() {
        let mut v = Validator::new();
        v.check(false, "a", "bad a");
        v.text("b", "   ", 1, 10);
        v.text("c", "hello", 1, 3);
        v.text("d", "ok", 1, 3);
        v.merge(Err(Invalid::single("e.f", "nested")));
        let err = v.finish().unwrap_err();
        let fields: Vec<_> = err.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["a", "b", "c", "e.f"]);
        assert_eq!(err.0[1].message, "must not be blank");
        assert_eq!(err.0[2].message, "must be at most 3 characters");
        assert!(err.to_string().starts_with("invalid input: a: bad a; b:"));
    }

    #[test]
    fn empty_validator_is_ok() {
        assert_eq!(Validator::new().finish(), Ok(()));
    }

    #[test]
    fn field_error_serializes_camel_case() {
        let json = serde_json::to_value(Invalid::single("lines[0].quantity", "x")).unwrap();
        assert_eq!(
            json,
            serde_json::json!([{ "field": "lines[0].quantity", "message": "x" }])
        );
    }

    #[test]
    fn join_paths() {
        assert_eq!(join("", "city"), "city");
        assert_eq!(join("shippingAddress", "city"), "shippingAddress.city");
    }
}
