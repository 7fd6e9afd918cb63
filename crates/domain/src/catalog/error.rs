//! Why a product command is refused.

use thiserror::Error;

use crate::ids::Sku;
use crate::validation::Invalid;

/// A product rule that a command would break.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProductError {
    /// Some fields are malformed; all of them are listed.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// `Create` on a product that already exists.
    #[error("the product already exists")]
    AlreadyExists,
    /// Any command but `Create` on a product that does not exist.
    #[error("no such product")]
    NotFound,
    /// A change to an archived product.
    #[error("the product is archived and can no longer change")]
    Archived,
    /// `Archive` on an archived product.
    #[error("the product is already archived")]
    AlreadyArchived,
    /// Two variants of the product would share a SKU.
    #[error("SKU {0} is used by more than one variant of the product")]
    DuplicateSku(Sku),
    /// Variants of one product must be priced in one currency.
    #[error("all variants of a product must be priced in the same currency")]
    MixedCurrencies,
    /// The product already has the maximum number of variants.
    #[error("a product has at most {max} variants")]
    TooManyVariants {
        /// The limit.
        max: usize,
    },
    /// The product has no variant with this SKU.
    #[error("the product has no variant with SKU {0}")]
    UnknownVariant(Sku),
}
