//! Emporium's view cache: product and order views kept in an in-process L1 (moka) and,
//! when Redis is configured, in a shared L2 that every query node reads and the projector
//! writes through.
//!
//! **The consistency rule.** Every cached entry carries the view's `version` (its stream's
//! version) and `as_of`: a checkpoint of the projection the view is read from, taken
//! *before* the view was rendered, so the view is at least as new as the read model was at
//! `as_of`. A reader takes the current checkpoint first, then serves an entry only when
//! its `as_of` equals that checkpoint, or when the read model still holds the entry's
//! version (one primary-key lookup; a view is a function of its stream alone, so same
//! version, same view). Otherwise it renders the view from the read model. No reader can
//! therefore be served a view older than what the read model held when the request began,
//! whatever a slow writer, a missed invalidation or a Redis outage left behind — invalidation
//! only saves work, it is not needed for correctness.
//!
//! - [`ViewCache`]: one kind of view (`product`, `order`): L1, then L2, then the loader the
//!   caller gives, each hit validated as above; a miss fills both layers.
//! - [`SharedViews`]: the Redis L2: entries as hashes (`version`, `asOf`, `view` JSON) under
//!   `{namespace}:view:{kind}:{id}` with a TTL backstop, written by a compare-and-set
//!   script that never replaces an entry with an older one; invalidations on the pub/sub
//!   channel `{namespace}:invalidate`, which every node's L1 listens to; a short timeout on
//!   every command and a breaker, so an outage costs a request nothing but the fallback to
//!   the read model, and a health flag for the readiness probe.
#![deny(missing_docs)]

mod config;
mod shared;
#[cfg(feature = "testsupport")]
pub mod testsupport;
mod tiered;

pub use config::{LocalConfig, RedisConfig};
pub use shared::{CacheError, SharedViews, Stored};
pub use tiered::{Entry, Fetched, Source, ViewCache};
