//! [`RedisCartStore`]: a cart is the hash `{prefix}:cart:{customerId}` (SKU → units), a
//! wishlist the set `{prefix}:wishlist:{customerId}`. Every write is one Lua script, which
//! Redis runs atomically: the limit check and the change happen together, so concurrent
//! writes lose nothing and never pass a limit, and the key's TTL is pushed in the same
//! step. A key past its TTL is dropped by Redis itself.
use std::{collections::HashMap, sync::LazyLock, time::Duration};

use async_trait::async_trait;
use domain::ids::{AccountId, Sku};
use redis::{
    Client, RedisError, Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
};

use super::{CartError, CartLine, CartStore, CartStoreConfig, stored_quantity, stored_sku};

/// KEYS: cart. ARGV: sku, units, max units, max lines, ttl. Returns the new quantity, -1
/// when a new line would pass the line limit, -2 when the line would pass the unit limit.
static ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current then
  if redis.call('HLEN', KEYS[1]) >= tonumber(ARGV[4]) then return -1 end
  current = 0
end
local new = tonumber(current) + tonumber(ARGV[2])
if new > tonumber(ARGV[3]) then return -2 end
redis.call('HSET', KEYS[1], ARGV[1], new)
redis.call('EXPIRE', KEYS[1], ARGV[5])
return new
",
    )
});

/// KEYS: cart. ARGV: sku, units, ttl. Returns 1, or 0 (unchanged) when there is no line.
static SET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return 1
",
    )
});

/// KEYS: a cart or wishlist. ARGV: the removing command (HDEL, SREM), member, ttl.
/// Returns how many members went.
static REMOVE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local removed = redis.call(ARGV[1], KEYS[1], ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return removed
",
    )
});

/// KEYS: cart. ARGV: ttl, then (sku, units) pairs. Each line loses the units; a line left
/// with none goes.
static REMOVE_ORDERED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
for i = 2, #ARGV, 2 do
  local left = redis.call('HINCRBY', KEYS[1], ARGV[i], -tonumber(ARGV[i + 1]))
  if left <= 0 then redis.call('HDEL', KEYS[1], ARGV[i]) end
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
",
    )
});

/// KEYS: wishlist. ARGV: sku, max items, ttl. Returns 1 when added, 0 when already there,
/// -1 when full.
static WISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('SISMEMBER', KEYS[1], ARGV[1]) == 0
   and redis.call('SCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return -1
end
local added = redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[3])
return added
",
    )
});

/// Carts and wishlists in Redis.
#[derive(Clone)]
pub struct RedisCartStore {
    conn: ConnectionManager,
    prefix: String,
    config: CartStoreConfig,
}

fn failed(err: RedisError) -> CartError {
    if err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_connection_refusal()
        || err.is_unrecoverable_error()
    {
        CartError::Unavailable(err.to_string())
    } else {
        CartError::Backend(err.to_string())
    }
}

impl RedisCartStore {
    /// A store on the Redis at `url`, its keys under `prefix`. Connects lazily (on first
    /// use) and reconnects after an outage; while Redis is away, calls fail quickly with
    /// [`CartError::Unavailable`].
    ///
    /// # Errors
    /// When the URL is not a Redis URL.
    pub fn connect(url: &str, prefix: &str, config: CartStoreConfig) -> anyhow::Result<Self> {
        let client = Client::open(url)?;
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1);
        Ok(Self {
            conn: ConnectionManager::new_lazy_with_config(client, manager)?,
            prefix: prefix.to_owned(),
            config,
        })
    }

    /// The hash of `customer`'s cart.
    pub fn cart_key(&self, customer: AccountId) -> String {
        format!("{}:cart:{customer}", self.prefix)
    }

    /// The set of `customer`'s wishlist.
    pub fn wishlist_key(&self, customer: AccountId) -> String {
        format!("{}:wishlist:{customer}", self.prefix)
    }

    fn ttl(&self) -> u64 {
        self.config.ttl_seconds()
    }
}

#[async_trait]
impl CartStore for RedisCartStore {
    async fn lines(&self, customer: AccountId) -> Result<Vec<CartLine>, CartError> {
        let hash: HashMap<String, i64> = redis::cmd("HGETALL")
            .arg(self.cart_key(customer))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(failed)?;
        let mut lines = hash
            .into_iter()
            .map(|(sku, quantity)| {
                let sku = stored_sku(&sku)?;
                let quantity = stored_quantity(&sku, quantity)?;
                Ok(CartLine { sku, quantity })
            })
            .collect::<Result<Vec<_>, CartError>>()?;
        lines.sort_by(|a, b| a.sku.cmp(&b.sku));
        Ok(lines)
    }

    async fn add(&self, customer: AccountId, sku: &Sku, quantity: u32) -> Result<u32, CartError> {
        if quantity == 0 {
            return Err(CartError::ZeroQuantity);
        }
        let limits = self.config.limits;
        let outcome: i64 = ADD
            .key(self.cart_key(customer))
            .arg(sku.as_str())
            .arg(quantity)
            .arg(limits.max_quantity)
            .arg(limits.max_lines)
            .arg(self.ttl())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(failed)?;
        match outcome {
            -1 => Err(CartError::TooManyLines {
                max: limits.max_lines,
            }),
            -2 => Err(CartError::TooManyUnits {
                max: limits.max_quantity,
            }),
            new => stored_quantity(sku, new),
        }
    }

    async fn set(&self, customer: AccountId, sku: &Sku, quantity: u32) -> Result<bool, CartError> {
        if quantity == 0 {
            return Err(CartError::ZeroQuantity);
        }
        let max = self.config.limits.max_quantity;
        if quantity > max {
            return Err(CartError::TooManyUnits { max });
        }
        let changed: i64 = SET
            .key(self.cart_key(customer))
            .arg(sku.as_str())
            .arg(quantity)
            .arg(self.ttl())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(failed)?;
        Ok(changed == 1)
    }

    async fn remove(&self, customer: AccountId, sku: &Sku) -> Result<bool, CartError> {
        let removed: i64 = REMOVE
            .key(self.cart_key(customer))
            .arg("HDEL")
            .arg(sku.as_str())
            .arg(self.ttl())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(failed)?;
        Ok(removed > 0)
    }

    async fn remove_ordered(
        &self,
        customer: AccountId,
        ordered: &[CartLine],
    ) -> Result<(), CartError> {
        if ordered.is_empty() {
            return Ok(());
        }
        let mut invocation = REMOVE_ORDERED.key(self.cart_key(customer));
        invocation.arg(self.ttl());
        for line in ordered {
            invocation.arg(line.sku.as_str()).arg(line.quantity);
        }
        invocation
            .invoke_async::<i64>(&mut self.conn.clone())
            .await
            .map(|_| ())
            .map_err(failed)
    }

    async fn wishlist(&self, customer: AccountId) -> Result<Vec<Sku>, CartError> {
        let members: Vec<String> = redis::cmd("SMEMBERS")
            .arg(self.wishlist_key(customer))
            .query_async(&mut self.conn.clone())
            .await
            .map_err(failed)?;
        let mut skus = members
            .iter()
            .map(|sku| stored_sku(sku))
            .collect::<Result<Vec<_>, CartError>>()?;
        skus.sort();
        Ok(skus)
    }

    async fn wish(&self, customer: AccountId, sku: &Sku) -> Result<bool, CartError> {
        let max = self.config.limits.max_wishlist;
        let outcome: i64 = WISH
            .key(self.wishlist_key(customer))
            .arg(sku.as_str())
            .arg(max)
            .arg(self.ttl())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(failed)?;
        match outcome {
            -1 => Err(CartError::WishlistFull { max }),
            added => Ok(added == 1),
        }
    }

    async fn unwish(&self, customer: AccountId, sku: &Sku) -> Result<bool, CartError> {
        let removed: i64 = REMOVE
            .key(self.wishlist_key(customer))
            .arg("SREM")
            .arg(sku.as_str())
            .arg(self.ttl())
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(failed)?;
        Ok(removed > 0)
    }

    async fn ping(&self) -> Result<(), CartError> {
        redis::cmd("PING")
            .query_async::<String>(&mut self.conn.clone())
            .await
            .map(|_| ())
            .map_err(failed)
    }
}
