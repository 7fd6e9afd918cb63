//! The event log: one [`EventStore`] trait, its backends, and the contract every backend
//! passes.
//!
//! The store moves envelopes (type name, schema version, JSON payload, metadata) and never
//! sees a domain type, so it is tested alone and knows nothing of Emporium's domain.
//!
//! Guarantees every backend gives (proved by the `contract` module, run against each one):
//! - a stream's versions are contiguous from 1; an append with the wrong expected version
//!   fails with [`StoreError::Conflict`] and writes nothing;
//! - an append is atomic for its batch;
//! - [`EventStore::read_all`] returns only events that are safe to deliver: a position it
//!   has returned is never preceded later by a newly visible lower position, so a reader
//!   that resumes after its last position misses nothing (invariant 3);
//! - re-appending events whose ids are already stored at the same place succeeds without
//!   writing anything (a retried append is idempotent).
#![deny(missing_docs)]

mod error;
pub mod shared_tail;
mod signal;
mod store;
mod subscription;
mod types;
pub mod write_gate;

pub mod postgres;
pub mod sqlite;

#[cfg(feature = "kurrentdb")]
pub mod kurrent;

#[cfg(feature = "contract")]
pub mod contract;
#[cfg(feature = "contract")]
pub mod testsupport;

pub use error::StoreError;
pub use store::{EventStore, StoreCapabilities};
pub use subscription::Subscription;
pub use types::{
    AppendResult, EventMetadata, ExpectedVersion, NewEvent, Position, RecordedEvent, StreamAppend,
    StreamId,
};
