//! The store's one error type. Infrastructure errors stay here; callers map them once.
use crate::types::{ExpectedVersion, StreamId};

/// What can go wrong when talking to the event log.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The stream was not at the expected version; nothing was written.
    #[error("stream {stream} is at version {actual}, expected {expected}")]
    Conflict {
        /// The stream whose version did not match.
        stream: StreamId,
        /// What the caller expected.
        expected: ExpectedVersion,
        /// The version the stream actually has (0: no stream).
        actual: u64,
    },
    /// The backend cannot be reached or failed transiently; retrying later may succeed.
    #[error("event store unavailable: {0}")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// Stored data could not be decoded, or the backend answered something impossible.
    #[error("event store data is corrupt: {0}")]
    Corrupt(String),
    /// The request itself is malformed (an empty batch, a bad stream name).
    #[error("invalid event store request: {0}")]
    Invalid(String),
}

impl StoreError {
    /// Wraps any error as [`StoreError::Unavailable`].
    pub fn unavailable(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Self::Unavailable(err.into())
    }

    /// True for a version conflict, which a caller may resolve by reloading and deciding again.
    pub fn is_conflict(&self) -> bool {
        matches!(self, Self::Conflict { .. })
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Decode(_)
            | sqlx::Error::TypeNotFound { .. } => Self::Corrupt(err.to_string()),
            other => Self::Unavailable(Box::new(other)),
        }
    }
}
