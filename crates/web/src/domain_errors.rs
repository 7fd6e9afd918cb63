//! How each domain rule violation answers: one mapping per aggregate error, here only.
use domain::{
    account::AccountError, catalog::ProductError, inventory::StockError, order::OrderError,
};

use crate::ApiError;

impl From<ProductError> for ApiError {
    fn from(err: ProductError) -> Self {
        let detail = err.to_string();
        match err {
            ProductError::Invalid(invalid) => invalid.into(),
            ProductError::NotFound => Self::not_found("no such product"),
            ProductError::AlreadyExists => Self::conflict("product_exists", detail),
            ProductError::Archived | ProductError::AlreadyArchived => {
                Self::conflict("product_archived", detail)
            }
            ProductError::DuplicateSku(sku) => {
                Self::invalid_field("variants", format!("SKU {sku} appears twice"))
            }
            ProductError::MixedCurrencies => Self::rule("mixed_currencies", detail),
            ProductError::TooManyVariants { .. } => Self::rule("too_many_variants", detail),
            ProductError::UnknownVariant(_) => Self::rule("unknown_variant", detail),
        }
    }
}

impl From<StockError> for ApiError {
    fn from(err: StockError) -> Self {
        let detail = err.to_string();
        match err {
            StockError::Invalid(invalid) => invalid.into(),
            StockError::WriteOffExceedsAvailable { .. } => {
                Self::conflict("write_off_exceeds_available", detail)
            }
            StockError::InsufficientStock { .. } => Self::conflict("insufficient_stock", detail),
            StockError::Overflow => Self::rule("stock_overflow", detail),
            StockError::AlreadyReserved { .. } => Self::conflict("already_reserved", detail),
            StockError::NoReservation(_) => Self::conflict("no_reservation", detail),
            StockError::SkuMismatch { .. } => Self::Internal(anyhow::anyhow!(detail)),
        }
    }
}

impl From<OrderError> for ApiError {
    fn from(err: OrderError) -> Self {
        let detail = err.to_string();
        match err {
            OrderError::Invalid(invalid) => invalid.into(),
            // Another customer's order does not exist, as far as this caller can tell.
            OrderError::NotFound | OrderError::NotOwner => Self::not_found("no such order"),
            OrderError::AlreadyPlaced => Self::conflict("order_exists", detail),
            OrderError::Forbidden => Self::forbidden(detail),
            OrderError::IllegalTransition { .. } | OrderError::NotShippable { .. } => {
                Self::conflict("illegal_transition", detail)
            }
            OrderError::MixedCurrencies => Self::rule("mixed_currencies", detail),
            OrderError::AmountOverflow => Self::rule("amount_overflow", detail),
        }
    }
}

impl From<AccountError> for ApiError {
    fn from(err: AccountError) -> Self {
        let detail = err.to_string();
        match err {
            AccountError::Invalid(invalid) => invalid.into(),
            AccountError::NotFound => Self::not_found("no such account"),
            AccountError::AlreadyExists => Self::conflict("account_exists", detail),
            AccountError::AlreadyLocked | AccountError::NotLocked => {
                Self::conflict("lock_state", detail)
            }
            AccountError::NotACustomer => Self::rule("not_a_customer", detail),
            AccountError::PasswordChangedMeanwhile => Self::conflict("password_changed", detail),
        }
    }
}
