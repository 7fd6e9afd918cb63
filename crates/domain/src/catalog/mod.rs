//! The catalogue: products, their variants (one SKU and price each) and their lifecycle.
//!
//! Stream `product-{id}`. Invariants: SKUs are unique within a product, every variant of a
//! product is priced in one currency, prices are `0..=10^12` minor units, and an archived
//! product no longer changes.

mod command;
mod decide;
mod error;
mod event;
mod state;

pub use command::ProductCommand;
pub use error::ProductError;
pub use event::ProductEvent;
pub use state::{ProductState, ProductStatus, VariantSpec};

use crate::aggregate::Aggregate;

/// The product aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Product;

impl Aggregate for Product {
    const NAME: &'static str = "product";
    type State = ProductState;
    type Command = ProductCommand;
    type Event = ProductEvent;
    type Error = ProductError;

    fn decide(
        state: &ProductState,
        command: ProductCommand,
    ) -> Result<Vec<ProductEvent>, ProductError> {
        decide::decide(state, command)
    }

    fn evolve(state: ProductState, event: &ProductEvent) -> ProductState {
        state::evolve(state, event)
    }
}
