//! Identifiers: UUID newtypes (generated outside the domain, UUID v7 by convention) and the
//! validated [`Sku`].
//!
//! Each id type is distinct so an order id can never be passed where a product id is due.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize, Serializer};
use uuid::Uuid;

use crate::validation::FieldError;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps an id chosen by the caller (the domain never generates ids).
            pub const fn new(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The underlying UUID.
            pub const fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

uuid_id!(
    /// Identifies a product (stream `product-{id}`).
    ProductId
);
uuid_id!(
    /// Identifies an order (stream `order-{id}`).
    OrderId
);
uuid_id!(
    /// Identifies an account of any role (stream `account-{id}`).
    AccountId
);
uuid_id!(
    /// Identifies one parcel of an order.
    ShipmentId
);

/// Longest SKU accepted.
pub const SKU_MAX_LEN: usize = 64;

/// A stock-keeping unit: 1..=64 characters of `[A-Za-z0-9._-]` starting with a letter or
/// digit, surrounding whitespace trimmed, case kept as given.
///
/// Stock is kept per SKU in stream `stock-{sku}`; the character set keeps that name safe in
/// every backend and URL.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Sku(String);

impl Sku {
    /// Parses and normalises (trims) a SKU.
    ///
    /// # Errors
    /// A [`FieldError`] at `sku` naming the rule the input breaks.
    pub fn parse(raw: &str) -> Result<Sku, FieldError> {
        let s = raw.trim();
        let err = |m: &str| Err(FieldError::new("sku", m));
        if s.is_empty() {
            return err("must not be blank");
        }
        if s.len() > SKU_MAX_LEN {
            return err("must be at most 64 characters");
        }
        if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return err("must start with a letter or digit");
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return err("may contain only letters, digits, '.', '_' and '-'");
        }
        Ok(Sku(s.to_owned()))
    }

    /// The SKU text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Sku {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for Sku {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for Sku {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Sku::parse(s)
    }
}

impl TryFrom<String> for Sku {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Sku::parse(&s)
    }
}

impl Serialize for Sku {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sku_accepts_and_trims() {
        assert_eq!(
            Sku::parse("  TSHIRT-Red_L.2 ").unwrap().as_str(),
            "TSHIRT-Red_L.2"
        );
        assert_eq!(Sku::parse("a").unwrap().as_str(), "a");
        assert!(Sku::parse(&"A".repeat(64)).is_ok());
    }

    #[test]
    fn sku_rejects_bad_input() {
        for bad in [
            "",
            "   ",
            "-abc",
            ".abc",
            "a b",
            "a/b",
            "é",
            &"A".repeat(65),
        ] {
            assert_eq!(Sku::parse(bad).unwrap_err().field, "sku", "{bad:?}");
        }
    }

    #[test]
    fn sku_serde_validates() {
        let sku = Sku::parse("ABC-1").unwrap();
        assert_eq!(serde_json::to_value(&sku).unwrap(), json!("ABC-1"));
        assert_eq!(serde_json::from_value::<Sku>(json!("ABC-1")).unwrap(), sku);
        assert!(serde_json::from_value::<Sku>(json!("bad sku")).is_err());
    }

    #[test]
    fn uuid_ids_round_trip() {
        let u = Uuid::from_u128(0x0192_0000_0000_7000_8000_0000_0000_0001);
        let id = OrderId::new(u);
        assert_eq!(id.as_uuid(), u);
        assert_eq!(id.to_string().parse::<OrderId>().unwrap(), id);
        assert_eq!(serde_json::to_value(id).unwrap(), json!(u.to_string()));
        assert_eq!(
            serde_json::from_value::<OrderId>(json!(u.to_string())).unwrap(),
            id
        );
        assert!("nope".parse::<ProductId>().is_err());
    }
}
