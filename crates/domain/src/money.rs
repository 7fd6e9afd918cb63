//! Money as an integer count of minor units plus an ISO 4217 currency code; never a float.
//!
//! Arithmetic is checked: adding different currencies or overflowing `i64` yields `None`,
//! so a total can never be silently wrong.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize, Serializer};

use crate::validation::FieldError;

/// An ISO 4217 currency code: exactly three ASCII uppercase letters, stored inline.
///
/// The code's shape is checked, not its membership in the ISO list: the catalogue decides
/// which currencies it sells in.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(try_from = "String")]
pub struct Currency([u8; 3]);

impl Currency {
    /// Euro.
    pub const EUR: Currency = Currency(*b"EUR");
    /// US dollar.
    pub const USD: Currency = Currency(*b"USD");
    /// Pound sterling.
    pub const GBP: Currency = Currency(*b"GBP");

    /// Parses a code such as `EUR`; lower case or any other length is rejected, not fixed up.
    ///
    /// # Errors
    /// A [`FieldError`] at `currency` for anything but three ASCII upper-case letters.
    pub fn parse(code: &str) -> Result<Currency, FieldError> {
        match code.as_bytes() {
            &[a, b, c] if [a, b, c].iter().all(u8::is_ascii_uppercase) => Ok(Currency([a, b, c])),
            _ => Err(FieldError::new(
                "currency",
                "must be a three-letter ISO 4217 code in upper case, e.g. EUR",
            )),
        }
    }

    /// The code, e.g. `"EUR"`.
    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only `parse` and the constants build a Currency, and both hold ASCII letters, so
        // the fallback is unreachable.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl Currency {
    /// How many digits of the amount are the minor unit (ISO 4217): 2 for most currencies,
    /// 0 for yen or won, 3 for dinars. Only for display; amounts are always minor units.
    #[must_use]
    pub fn minor_digits(&self) -> u32 {
        match &self.0 {
            b"BIF" | b"CLP" | b"DJF" | b"GNF" | b"ISK" | b"JPY" | b"KMF" | b"KRW" | b"PYG"
            | b"RWF" | b"UGX" | b"UYI" | b"VND" | b"VUV" | b"XAF" | b"XOF" | b"XPF" => 0,
            b"BHD" | b"IQD" | b"JOD" | b"KWD" | b"LYD" | b"OMR" | b"TND" => 3,
            _ => 2,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

impl FromStr for Currency {
    type Err = FieldError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::parse(s)
    }
}

impl TryFrom<String> for Currency {
    type Error = FieldError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Currency::parse(&s)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// An amount in minor units (cents for EUR) of one currency.
///
/// Serialized as `{ "amount": 1999, "currency": "EUR" }`. Not ordered: amounts in different
/// currencies do not compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Money {
    /// Minor units; may be negative only where a rule allows it (prices never are).
    pub amount: i64,
    /// The currency the amount is counted in.
    pub currency: Currency,
}

impl Money {
    /// `amount` minor units of `currency`.
    #[must_use]
    pub const fn new(amount: i64, currency: Currency) -> Money {
        Money { amount, currency }
    }

    /// Nothing, in `currency`: the neutral start of a sum.
    #[must_use]
    pub const fn zero(currency: Currency) -> Money {
        Money::new(0, currency)
    }

    /// The sum, or `None` when the currencies differ or the amount overflows.
    #[must_use]
    pub fn checked_add(&self, other: Money) -> Option<Money> {
        if self.currency != other.currency {
            return None;
        }
        Some(Money::new(
            self.amount.checked_add(other.amount)?,
            self.currency,
        ))
    }

    /// `qty` times this amount, or `None` on overflow.
    #[must_use]
    pub fn checked_mul(&self, qty: u32) -> Option<Money> {
        Some(Money::new(
            self.amount.checked_mul(i64::from(qty))?,
            self.currency,
        ))
    }
}

/// For people: `12.34 EUR`, `-0.05 USD`, `1500 JPY`.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = self.currency.minor_digits();
        let sign = if self.amount < 0 { "-" } else { "" };
        let units = self.amount.unsigned_abs();
        if digits == 0 {
            return write!(f, "{sign}{units} {}", self.currency);
        }
        let scale = 10u64.pow(digits);
        write!(
            f,
            "{sign}{}.{:0width$} {}",
            units / scale,
            units % scale,
            self.currency,
            width = digits as usize
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn money_displays_in_major_units() {
        let shown =
            |amount, code: &str| Money::new(amount, Currency::parse(code).unwrap()).to_string();
        assert_eq!(shown(1999, "EUR"), "19.99 EUR");
        assert_eq!(shown(5, "USD"), "0.05 USD");
        assert_eq!(shown(-105, "GBP"), "-1.05 GBP");
        assert_eq!(shown(1500, "JPY"), "1500 JPY");
        assert_eq!(shown(1234, "KWD"), "1.234 KWD");
        assert_eq!(shown(i64::MIN, "EUR"), "-92233720368547758.08 EUR");
    }

    #[test]
    fn currency_parses_only_three_uppercase_letters() {
        assert_eq!(Currency::parse("EUR").unwrap(), Currency::EUR);
        for bad in ["eur", "EU", "EURO", "", "E1R", "ÉUR", " EUR"] {
            let err = Currency::parse(bad).unwrap_err();
            assert_eq!(err.field, "currency", "{bad:?}");
        }
    }

    #[test]
    fn currency_serde_is_a_string() {
        assert_eq!(serde_json::to_value(Currency::USD).unwrap(), json!("USD"));
        let c: Currency = serde_json::from_value(json!("GBP")).unwrap();
        assert_eq!(c, Currency::GBP);
        assert!(serde_json::from_value::<Currency>(json!("gbp")).is_err());
        assert_eq!(Currency::EUR.to_string(), "EUR");
        assert_eq!("EUR".parse::<Currency>().unwrap(), Currency::EUR);
    }

    #[test]
    fn money_serde_shape() {
        let m = Money::new(1999, Currency::EUR);
        assert_eq!(
            serde_json::to_value(m).unwrap(),
            json!({ "amount": 1999, "currency": "EUR" })
        );
        let back: Money =
            serde_json::from_value(json!({ "amount": 1999, "currency": "EUR" })).unwrap();
        assert_eq!(back, m);
        assert!(
            serde_json::from_value::<Money>(json!({ "amount": 19.99, "currency": "EUR" })).is_err()
        );
    }

    #[test]
    fn checked_arithmetic() {
        let a = Money::new(250, Currency::EUR);
        assert_eq!(a.checked_add(a), Some(Money::new(500, Currency::EUR)));
        assert_eq!(a.checked_add(Money::new(1, Currency::USD)), None);
        assert_eq!(
            Money::new(i64::MAX, Currency::EUR).checked_add(Money::new(1, Currency::EUR)),
            None
        );
        assert_eq!(a.checked_mul(4), Some(Money::new(1000, Currency::EUR)));
        assert_eq!(
            Money::new(i64::MAX / 2 + 1, Currency::EUR).checked_mul(2),
            None
        );
        assert_eq!(Money::zero(Currency::GBP), Money::new(0, Currency::GBP));
    }
}
