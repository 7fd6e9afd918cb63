//! Carts and wishlists: customers' working state, not business facts, so they are not
//! event-sourced (DESIGN.md, "Shopping"). A [`CartStore`] keeps, per customer, the cart's
//! lines (SKU → quantity) and the wishlist's SKUs; two backends pass one contract suite:
//! [`RedisCartStore`] (hashes and sets with a TTL) when distributed, [`SqlCartStore`]
//! (SQLite embedded, PostgreSQL when there is no Redis).
//!
//! A store knows SKUs and quantities only. Names, prices and stock come from the command
//! side's aggregates when a cart is read ([`crate::shopping`]); checkout is an ordinary
//! order placed through [`crate::ordering`].
//!
//! Every write is atomic per customer and checks the limits in the same step, so
//! concurrent writes to one cart lose no line and no unit and never pass a limit.
use std::{
    hash::{Hash, Hasher},
    sync::Arc,
    time::Duration,
};

use async_trait::async_trait;
use domain::{
    ids::{AccountId, Sku},
    order::{MAX_LINES, MAX_QUANTITY},
};
use sqlx::AnyPool;
use tokio::sync::{Mutex, MutexGuard};
use web::ApiError;

#[cfg(feature = "contract")]
pub mod contract;
mod redis;
mod sql;

pub use self::{redis::RedisCartStore, sql::SqlCartStore};

/// How long an untouched cart or wishlist is kept by default: 30 days.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// One cart line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CartLine {
    /// The variant.
    pub sku: Sku,
    /// Units, `1..=max_quantity`.
    pub quantity: u32,
}

/// The limits a store enforces atomically with each write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CartLimits {
    /// Distinct SKUs in one cart.
    pub max_lines: usize,
    /// Units of one SKU in one cart.
    pub max_quantity: u32,
    /// SKUs in one wishlist.
    pub max_wishlist: usize,
}

impl Default for CartLimits {
    /// The order limits, so any cart can be checked out as one order: 50 lines of at most
    /// 1000 units; 100 wishlist items.
    fn default() -> Self {
        Self {
            max_lines: MAX_LINES,
            max_quantity: MAX_QUANTITY,
            max_wishlist: 100,
        }
    }
}

/// How a store keeps carts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CartStoreConfig {
    /// A cart or wishlist untouched this long is gone; every write starts the clock again.
    pub ttl: Duration,
    /// The limits.
    pub limits: CartLimits,
}

impl Default for CartStoreConfig {
    fn default() -> Self {
        Self {
            ttl: DEFAULT_TTL,
            limits: CartLimits::default(),
        }
    }
}

impl CartStoreConfig {
    /// The TTL in whole seconds, at least one.
    pub(crate) fn ttl_seconds(&self) -> u64 {
        self.ttl.as_secs().max(1)
    }

    /// The TTL in milliseconds.
    pub(crate) fn ttl_millis(&self) -> i64 {
        i64::try_from(self.ttl.as_millis()).unwrap_or(i64::MAX)
    }
}

/// Why a cart write was refused, or the store failed.
#[derive(Debug, thiserror::Error)]
pub enum CartError {
    /// A new line would pass the line limit.
    #[error("a cart holds at most {max} different SKUs")]
    TooManyLines {
        /// The limit.
        max: usize,
    },
    /// The line would pass the per-line unit limit.
    #[error("a cart holds at most {max} units of one SKU")]
    TooManyUnits {
        /// The limit.
        max: u32,
    },
    /// A quantity of zero: lines are removed, never set to nothing.
    #[error("a quantity must be at least 1")]
    ZeroQuantity,
    /// A new item would pass the wishlist limit.
    #[error("a wishlist holds at most {max} SKUs")]
    WishlistFull {
        /// The limit.
        max: usize,
    },
    /// The store cannot be reached.
    #[error("the cart store is unavailable: {0}")]
    Unavailable(String),
    /// The store failed in a way a retry will not fix.
    #[error("the cart store failed: {0}")]
    Backend(String),
    /// The store holds something no write of ours could have left there.
    #[error("the cart store holds unreadable data: {0}")]
    Corrupt(String),
}

impl From<CartError> for ApiError {
    fn from(err: CartError) -> Self {
        let detail = err.to_string();
        match err {
            CartError::TooManyLines { .. } => Self::rule("cart_line_limit", detail),
            CartError::TooManyUnits { .. } => Self::rule("cart_quantity_limit", detail),
            CartError::WishlistFull { .. } => Self::rule("wishlist_limit", detail),
            CartError::ZeroQuantity => Self::invalid_field("quantity", detail),
            CartError::Unavailable(_) => {
                Self::Unavailable("the cart store is unavailable; retry later".into())
            }
            CartError::Backend(_) | CartError::Corrupt(_) => {
                Self::Internal(anyhow::Error::new(err))
            }
        }
    }
}

/// Where carts and wishlists are kept. Each method is atomic for its customer.
#[async_trait]
pub trait CartStore: Send + Sync {
    /// The cart's lines, sorted by SKU; empty when there is no cart or it expired.
    async fn lines(&self, customer: AccountId) -> Result<Vec<CartLine>, CartError>;

    /// Adds `quantity` units of `sku`: a new line, or more of an existing one. Returns the
    /// line's new quantity. Fails with [`CartError::TooManyUnits`] when the line would pass
    /// the unit limit and [`CartError::TooManyLines`] when a new line would pass the line
    /// limit, and with [`CartError::ZeroQuantity`] for 0, changing nothing.
    async fn add(&self, customer: AccountId, sku: &Sku, quantity: u32) -> Result<u32, CartError>;

    /// Sets the quantity of an existing line. `false`, changing nothing, when the cart has
    /// no such line. Fails with [`CartError::TooManyUnits`] above the unit limit and with
    /// [`CartError::ZeroQuantity`] for 0.
    async fn set(&self, customer: AccountId, sku: &Sku, quantity: u32) -> Result<bool, CartError>;

    /// Removes a line; `false` when there was none.
    async fn remove(&self, customer: AccountId, sku: &Sku) -> Result<bool, CartError>;

    /// Takes what an order bought out of the cart: each line loses `ordered`'s units and
    /// goes when none are left. Lines added or grown since the cart was read keep what the
    /// order did not take.
    async fn remove_ordered(
        &self,
        customer: AccountId,
        ordered: &[CartLine],
    ) -> Result<(), CartError>;

    /// The wishlist's SKUs, sorted; empty when there is none or it expired.
    async fn wishlist(&self, customer: AccountId) -> Result<Vec<Sku>, CartError>;

    /// Puts `sku` on the wishlist; `false` when it was there already. Fails with
    /// [`CartError::WishlistFull`] when a new item would pass the limit.
    async fn wish(&self, customer: AccountId, sku: &Sku) -> Result<bool, CartError>;

    /// Takes `sku` off the wishlist; `false` when it was not on it.
    async fn unwish(&self, customer: AccountId, sku: &Sku) -> Result<bool, CartError>;

    /// Whether the store answers (readiness).
    async fn ping(&self) -> Result<(), CartError>;
}

/// Opens the cart store the settings choose: Redis when `redis_url` is set (connected
/// lazily, so an outage at start-up delays carts, not the service), else the SQL database.
pub fn open_store(
    redis_url: Option<&str>,
    sql: AnyPool,
    config: CartStoreConfig,
) -> anyhow::Result<Arc<dyn CartStore>> {
    Ok(match redis_url {
        Some(url) => Arc::new(RedisCartStore::connect(url, "emporium", config)?),
        None => Arc::new(SqlCartStore::new(sql, config)),
    })
}

const CHECKOUT_STRIPES: usize = 256;

/// The cart store of the command API, and the per-customer checkout lock.
#[derive(Clone)]
pub struct Carts {
    store: Arc<dyn CartStore>,
    checkout_locks: Arc<Vec<Mutex<()>>>,
}

impl Carts {
    /// Carts kept in `store`.
    pub fn new(store: Arc<dyn CartStore>) -> Self {
        Self {
            store,
            checkout_locks: Arc::new((0..CHECKOUT_STRIPES).map(|_| Mutex::new(())).collect()),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn CartStore> {
        &self.store
    }

    /// Serialises one customer's checkouts within this process, so a double-submitted
    /// checkout finds the cart already emptied instead of placing the order twice. These
    /// locks are never held together with another of their kind, so they cannot deadlock.
    pub async fn checkout_lock(&self, customer: AccountId) -> MutexGuard<'_, ()> {
        let mut hasher = std::hash::DefaultHasher::new();
        customer.hash(&mut hasher);
        let stripe = usize::try_from(hasher.finish() % CHECKOUT_STRIPES as u64).unwrap_or(0);
        self.checkout_locks[stripe].lock().await
    }
}

/// Parses a SKU read back from a store: the store only ever holds SKUs that parsed.
pub(crate) fn stored_sku(raw: &str) -> Result<Sku, CartError> {
    Sku::parse(raw).map_err(|_| CartError::Corrupt(format!("stored SKU {raw:?}")))
}

/// Parses a quantity read back from a store.
pub(crate) fn stored_quantity(sku: &Sku, raw: i64) -> Result<u32, CartError> {
    u32::try_from(raw)
        .ok()
        .filter(|q| *q > 0)
        .ok_or_else(|| CartError::Corrupt(format!("quantity {raw} of {sku}")))
}
