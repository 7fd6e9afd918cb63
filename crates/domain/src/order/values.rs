//! Order value types: the status machine, lines, the address, and who acted.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::account::Role;
use crate::ids::{AccountId, ProductId, Sku};
use crate::money::Money;
use crate::validation::{Invalid, Validator, join};

/// Where an order is in its life.
///
/// `PLACED → PAID → PACKED → SHIPPED → DELIVERED`, and `PLACED | PAID | PACKED → CANCELLED`;
/// nothing else, and no status moves to itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OrderStatus {
    /// Stock reserved, awaiting payment.
    Placed,
    /// Paid, awaiting packing.
    Paid,
    /// Packed, awaiting the carrier.
    Packed,
    /// Handed to the carrier; stock committed.
    Shipped,
    /// Received by the customer. Final.
    Delivered,
    /// Cancelled; stock released. Final.
    Cancelled,
}

impl OrderStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [OrderStatus; 6] = [
        OrderStatus::Placed,
        OrderStatus::Paid,
        OrderStatus::Packed,
        OrderStatus::Shipped,
        OrderStatus::Delivered,
        OrderStatus::Cancelled,
    ];

    /// Whether `self → to` is an edge of the state machine.
    #[must_use]
    pub fn can_transition_to(self, to: OrderStatus) -> bool {
        use OrderStatus::{Cancelled, Delivered, Packed, Paid, Placed, Shipped};
        matches!(
            (self, to),
            (Placed, Paid)
                | (Paid, Packed)
                | (Packed, Shipped)
                | (Shipped, Delivered)
                | (Placed | Paid | Packed, Cancelled)
        )
    }

    /// Whether no transition leaves this status.
    #[must_use]
    pub fn is_final(self) -> bool {
        matches!(self, OrderStatus::Delivered | OrderStatus::Cancelled)
    }

    /// The stored and displayed name, e.g. `"PLACED"`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Placed => "PLACED",
            OrderStatus::Paid => "PAID",
            OrderStatus::Packed => "PACKED",
            OrderStatus::Shipped => "SHIPPED",
            OrderStatus::Delivered => "DELIVERED",
            OrderStatus::Cancelled => "CANCELLED",
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who issued a command, as the authenticated caller; recorded in events for the audit trail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Actor {
    /// The caller's account.
    pub id: AccountId,
    /// The caller's role.
    pub role: Role,
}

/// Where an order goes.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShippingAddress {
    /// Recipient, 1..=100 characters.
    pub name: String,
    /// First address line, 1..=100 characters.
    pub line1: String,
    /// Second address line, at most 100 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line2: Option<String>,
    /// City, 1..=100 characters.
    pub city: String,
    /// Region or state, at most 100 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Postal code, 1..=20 characters.
    pub postal_code: String,
    /// ISO 3166-1 alpha-2 country code in upper case, e.g. `DE`.
    pub country: String,
}

impl ShippingAddress {
    /// Checks every field, reporting paths under `prefix` (e.g. `shippingAddress.postalCode`).
    ///
    /// # Errors
    /// Every field at fault, at once.
    pub fn validate(&self, prefix: &str) -> Result<(), Invalid> {
        let mut v = Validator::new();
        v.text(join(prefix, "name"), &self.name, 1, 100);
        v.text(join(prefix, "line1"), &self.line1, 1, 100);
        if let Some(line2) = &self.line2 {
            v.text(join(prefix, "line2"), line2, 0, 100);
        }
        v.text(join(prefix, "city"), &self.city, 1, 100);
        if let Some(region) = &self.region {
            v.text(join(prefix, "region"), region, 0, 100);
        }
        v.text(join(prefix, "postalCode"), &self.postal_code, 1, 20);
        v.check(
            self.country.len() == 2 && self.country.bytes().all(|b| b.is_ascii_uppercase()),
            join(prefix, "country"),
            "must be an ISO 3166-1 alpha-2 code in upper case, e.g. DE",
        );
        v.finish()
    }
}

/// An order line as the command layer priced it from the catalogue (never from the client).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PricedLine {
    /// The variant ordered.
    pub sku: Sku,
    /// Its product.
    pub product_id: ProductId,
    /// Product name at ordering time.
    pub name: String,
    /// Units, 1..=1000.
    pub quantity: u32,
    /// Catalogue price of one unit.
    pub unit_price: Money,
}

/// A line of a placed order, with its price snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderLine {
    /// The variant ordered.
    pub sku: Sku,
    /// Its product.
    pub product_id: ProductId,
    /// Product name at ordering time.
    pub name: String,
    /// Units.
    pub quantity: u32,
    /// Price of one unit at ordering time.
    pub unit_price: Money,
    /// `unit_price × quantity`.
    pub line_total: Money,
}

#[cfg(test)]
mod tests {
    use super::*;
    use OrderStatus::{Cancelled, Delivered, Packed, Paid, Placed, Shipped};

    #[test]
    fn transitions_are_exactly_the_state_machine() {
        let allowed = [
            (Placed, Paid),
            (Paid, Packed),
            (Packed, Shipped),
            (Shipped, Delivered),
            (Placed, Cancelled),
            (Paid, Cancelled),
            (Packed, Cancelled),
        ];
        for from in OrderStatus::ALL {
            for to in OrderStatus::ALL {
                assert_eq!(
                    from.can_transition_to(to),
                    allowed.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
        assert!(Delivered.is_final() && Cancelled.is_final() && !Shipped.is_final());
    }

    #[test]
    fn status_serde_matches_display() {
        for s in OrderStatus::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }

    fn address() -> ShippingAddress {
        ShippingAddress {
            name: "Ann".into(),
            line1: "1 Main St".into(),
            line2: None,
            city: "Berlin".into(),
            region: None,
            postal_code: "10115".into(),
            country: "DE".into(),
        }
    }

    #[test]
    fn valid_address() {
        assert_eq!(address().validate("shippingAddress"), Ok(()));
        let json = serde_json::to_value(address()).unwrap();
        assert_eq!(json["postalCode"], "10115");
        assert!(json.get("line2").is_none());
    }

    #[test]
    fn address_reports_every_field_with_prefix() {
        let bad = ShippingAddress {
            name: " ".into(),
            line1: String::new(),
            line2: Some("x".repeat(101)),
            city: "c".repeat(101),
            region: Some("r".repeat(101)),
            postal_code: "p".repeat(21),
            country: "de".into(),
        };
        let fields: Vec<_> = bad
            .validate("shippingAddress")
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "shippingAddress.name",
                "shippingAddress.line1",
                "shippingAddress.line2",
                "shippingAddress.city",
                "shippingAddress.region",
                "shippingAddress.postalCode",
                "shippingAddress.country",
            ]
        );
        for country in ["D", "DEU", "D1", ""] {
            let a = ShippingAddress {
                country: country.into(),
                ..address()
            };
            assert!(
                a.validate("").unwrap_err().has_field("country"),
                "{country:?}"
            );
        }
    }
}
