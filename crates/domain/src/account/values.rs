//! Account value types, parsed and normalised at the edge.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize, Serializer};

use crate::validation::FieldError;

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    /// Everything, including every order transition and account creation.
    Admin,
    /// Back-office work: order handling, shipments.
    Staff,
    /// Shops; sees and cancels only their own orders.
    Customer,
}

impl Role {
    /// Admins and staff run the back office.
    #[must_use]
    pub fn is_back_office(self) -> bool {
        matches!(self, Role::Admin | Role::Staff)
    }
}

/// Self-declared gender of a customer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Gender {
    /// Female.
    Female,
    /// Male.
    Male,
    /// Another gender.
    Other,
    /// Not said.
    Unspecified,
}

/// An e-mail address: trimmed, lower-cased, at most 254 characters, one `@` between a
/// non-empty local part and a domain containing a dot, no whitespace.
///
/// Lower-casing makes it usable as a unique login name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Email(String);

impl Email {
    /// Parses and normalises an address.
    ///
    /// # Errors
    /// A [`FieldError`] at `email` saying which rule the input breaks.
    pub fn parse(raw: &str) -> Result<Email, FieldError> {
        let s = raw.trim().to_lowercase();
        let err = |m: &str| Err(FieldError::new("email", m));
        if s.is_empty() {
            return err("must not be blank");
        }
        if s.chars().count() > 254 {
            return err("must be at most 254 characters");
        }
        if s.chars().any(char::is_whitespace) {
            return err("must not contain whitespace");
        }
        let mut parts = s.split('@');
        let (Some(local), Some(domain), None) = (parts.next(), parts.next(), parts.next()) else {
            return err("must contain exactly one '@'");
        };
        if local.is_empty() {
            return err("must have a name before the '@'");
        }
        let labels_ok = domain.contains('.') && domain.split('.').all(|label| !label.is_empty());
        if !labels_ok {
            return err("must have a domain such as example.com after the '@'");
        }
        Ok(Email(s))
    }

    /// The normalised address.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A mobile number: spaces and dashes removed, an optional leading `+`, then 7..=15 digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct MobileNumber(String);

impl MobileNumber {
    /// Parses and normalises a number, e.g. `+44 7700-900123` → `+447700900123`.
    ///
    /// # Errors
    /// A [`FieldError`] at `mobileNumber` when the digits are malformed.
    pub fn parse(raw: &str) -> Result<MobileNumber, FieldError> {
        let s: String = raw
            .trim()
            .chars()
            .filter(|c| !matches!(c, ' ' | '-'))
            .collect();
        let digits = s.strip_prefix('+').unwrap_or(&s);
        let ok = (7..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit());
        if ok {
            Ok(MobileNumber(s))
        } else {
            Err(FieldError::new(
                "mobileNumber",
                "must be 7 to 15 digits, optionally after a leading '+'",
            ))
        }
    }

    /// The normalised number.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! string_value {
    ($name:ident) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = FieldError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = FieldError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                $name::parse(&s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }
    };
}

string_value!(Email);
string_value!(MobileNumber);

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn email_is_normalised() {
        assert_eq!(
            Email::parse("  Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
        assert!(Email::parse("a@b.co").is_ok());
    }

    #[test]
    fn bad_emails_are_refused() {
        let long = format!("{}@example.com", "a".repeat(250));
        for bad in [
            "",
            "ann",
            "ann@",
            "@example.com",
            "ann@example",
            "a@@b.com",
            "a@b@c.com",
            "a n@b.com",
            "a@b..com",
            "a@.com",
            "a@b.",
            &long,
        ] {
            assert_eq!(Email::parse(bad).unwrap_err().field, "email", "{bad:?}");
        }
    }

    #[test]
    fn mobile_number_is_normalised() {
        assert_eq!(
            MobileNumber::parse("+44 7700-900123").unwrap().as_str(),
            "+447700900123"
        );
        assert_eq!(MobileNumber::parse("1234567").unwrap().as_str(), "1234567");
        assert!(MobileNumber::parse("123456789012345").is_ok());
    }

    #[test]
    fn bad_mobile_numbers_are_refused() {
        for bad in [
            "",
            "123456",
            "1234567890123456",
            "++1234567",
            "12345a7",
            "1234567+",
            "(555) 1234567",
        ] {
            assert_eq!(
                MobileNumber::parse(bad).unwrap_err().field,
                "mobileNumber",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn serde_shapes() {
        assert_eq!(serde_json::to_value(Role::Admin).unwrap(), json!("ADMIN"));
        assert_eq!(
            serde_json::to_value(Role::Customer).unwrap(),
            json!("CUSTOMER")
        );
        assert_eq!(
            serde_json::to_value(Gender::Unspecified).unwrap(),
            json!("UNSPECIFIED")
        );
        let e: Email = serde_json::from_value(json!("A@B.com")).unwrap();
        assert_eq!(serde_json::to_value(&e).unwrap(), json!("a@b.com"));
        assert!(serde_json::from_value::<Email>(json!("nope")).is_err());
        assert!(serde_json::from_value::<MobileNumber>(json!("12")).is_err());
    }
}
