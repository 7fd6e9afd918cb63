//! [`SqlCartStore`]: carts and wishlists in SQL (`migrations/*/0005_carts.sql`), one SQL
//! text for SQLite and PostgreSQL.
//!
//! Every write is one transaction that first upserts the customer's header row (`carts` or
//! `wishlists`): on PostgreSQL that locks the row, on SQLite the transaction is `BEGIN
//! IMMEDIATE` and holds the database's write lock. Either way concurrent writes to one
//! list queue there, so a read-modify-write inside (a limit check, an increment) is exact.
//!
//! Expiry mirrors Redis' TTL: the header's `expires_at` moves on every write; lines of a
//! header past it read as absent and are dropped by the next write; [`SqlCartStore::purge_expired`]
//! deletes them all, and runs by itself at most once an hour after a write.
use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use async_trait::async_trait;
use domain::ids::{AccountId, Sku};
use sqlx::{Any, AnyPool, Row, Transaction};

use super::{CartError, CartLine, CartStore, CartStoreConfig, stored_quantity, stored_sku};

const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// The statements of one list kind (cart or wishlist) that every write shares.
struct Header {
    lock: &'static str,
    expiry: &'static str,
    clear: &'static str,
    touch: &'static str,
    purge_items: &'static str,
    purge_headers: &'static str,
}

const CART: Header = Header {
    lock: "INSERT INTO carts (customer_id, expires_at) VALUES ($1, $2) \
           ON CONFLICT (customer_id) DO UPDATE SET expires_at = carts.expires_at",
    expiry: "SELECT expires_at FROM carts WHERE customer_id = $1",
    clear: "DELETE FROM cart_lines WHERE customer_id = $1",
    touch: "UPDATE carts SET expires_at = $1 WHERE customer_id = $2",
    purge_items: "DELETE FROM cart_lines WHERE customer_id IN \
                  (SELECT customer_id FROM carts WHERE expires_at <= $1)",
    purge_headers: "DELETE FROM carts WHERE expires_at <= $1",
};

const WISHLIST: Header = Header {
    lock: "INSERT INTO wishlists (customer_id, expires_at) VALUES ($1, $2) \
           ON CONFLICT (customer_id) DO UPDATE SET expires_at = wishlists.expires_at",
    expiry: "SELECT expires_at FROM wishlists WHERE customer_id = $1",
    clear: "DELETE FROM wishlist_items WHERE customer_id = $1",
    touch: "UPDATE wishlists SET expires_at = $1 WHERE customer_id = $2",
    purge_items: "DELETE FROM wishlist_items WHERE customer_id IN \
                  (SELECT customer_id FROM wishlists WHERE expires_at <= $1)",
    purge_headers: "DELETE FROM wishlists WHERE expires_at <= $1",
};

/// Carts and wishlists in the SQL database.
#[derive(Clone)]
pub struct SqlCartStore {
    sql: AnyPool,
    config: CartStoreConfig,
    begin: &'static str,
    last_purge: Arc<Mutex<Instant>>,
}

fn failed(err: sqlx::Error) -> CartError {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => CartError::Unavailable(err.to_string()),
        other => CartError::Backend(other.to_string()),
    }
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// One write in progress: the header is locked and an expired list already emptied.
struct Write {
    tx: Transaction<'static, Any>,
    header: &'static Header,
    customer: String,
    expires_at: i64,
}

impl Write {
    /// Pushes the expiry and commits.
    async fn commit(mut self) -> Result<(), CartError> {
        sqlx::query(self.header.touch)
            .bind(self.expires_at)
            .bind(&self.customer)
            .execute(&mut *self.tx)
            .await
            .map_err(failed)?;
        self.tx.commit().await.map_err(failed)
    }
}

impl SqlCartStore {
    /// Carts in `sql` (migrated), kept as `config` says.
    pub fn new(sql: AnyPool, config: CartStoreConfig) -> Self {
        let sqlite = sql
            .connect_options()
            .database_url
            .scheme()
            .starts_with("sqlite");
        Self {
            sql,
            config,
            // Take SQLite's write lock at BEGIN: a transaction that started as a reader
            // could not wait for it later (SQLITE_BUSY at once), only fail.
            begin: if sqlite { "BEGIN IMMEDIATE" } else { "BEGIN" },
            last_purge: Arc::new(Mutex::new(Instant::now())),
        }
    }

    async fn write(
        &self,
        header: &'static Header,
        customer: AccountId,
    ) -> Result<Write, CartError> {
        let now = now_millis();
        let customer = customer.to_string();
        let expires_at = now.saturating_add(self.config.ttl_millis());
        let mut tx = self.sql.begin_with(self.begin).await.map_err(failed)?;
        sqlx::query(header.lock)
            .bind(&customer)
            .bind(expires_at)
            .execute(&mut *tx)
            .await
            .map_err(failed)?;
        let current: i64 = sqlx::query(header.expiry)
            .bind(&customer)
            .fetch_one(&mut *tx)
            .await
            .and_then(|row| row.try_get(0))
            .map_err(failed)?;
        if current <= now {
            sqlx::query(header.clear)
                .bind(&customer)
                .execute(&mut *tx)
                .await
                .map_err(failed)?;
        }
        Ok(Write {
            tx,
            header,
            customer,
            expires_at,
        })
    }

    /// Deletes every expired cart and wishlist; returns how many lists went.
    pub async fn purge_expired(&self) -> Result<u64, CartError> {
        let now = now_millis();
        let mut purged = 0;
        for header in [&CART, &WISHLIST] {
            sqlx::query(header.purge_items)
                .bind(now)
                .execute(&self.sql)
                .await
                .map_err(failed)?;
            purged += sqlx::query(header.purge_headers)
                .bind(now)
                .execute(&self.sql)
                .await
                .map_err(failed)?
                .rows_affected();
        }
        Ok(purged)
    }

    /// Starts a purge in the background when the last one is an hour old.
    fn purge_if_due(&self) {
        let due = self.last_purge.lock().is_ok_and(|mut last| {
            let due = last.elapsed() >= PURGE_EVERY;
            if due {
                *last = Instant::now();
            }
            due
        });
        if due {
            let store = self.clone();
            tokio::spawn(async move {
                match store.purge_expired().await {
                    Ok(n) => tracing::debug!(purged = n, "expired carts and wishlists purged"),
                    Err(err) => tracing::warn!(%err, "purging expired carts failed"),
                }
            });
        }
    }

    async fn line_quantity(write: &mut Write, sku: &Sku) -> Result<Option<i64>, CartError> {
        sqlx::query("SELECT quantity FROM cart_lines WHERE customer_id = $1 AND sku = $2")
            .bind(&write.customer)
            .bind(sku.as_str())
            .fetch_optional(&mut *write.tx)
            .await
            .and_then(|row| row.map(|r| r.try_get(0)).transpose())
            .map_err(failed)
    }

    async fn read_skus(
        &self,
        query: &'static str,
        customer: AccountId,
    ) -> Result<Vec<sqlx::any::AnyRow>, CartError> {
        sqlx::query(query)
            .bind(customer.to_string())
            .bind(now_millis())
            .fetch_all(&self.sql)
            .await
            .map_err(failed)
    }
}

#[async_trait]
impl CartStore for SqlCartStore {
    async fn lines(&self, customer: AccountId) -> Result<Vec<CartLine>, CartError> {
        let rows = self
            .read_skus(
                "SELECT l.sku, l.quantity FROM cart_lines l \
                 JOIN carts c ON c.customer_id = l.customer_id \
                 WHERE l.customer_id = $1 AND c.expires_at > $2",
                customer,
            )
            .await?;
        let mut lines = rows
            .iter()
            .map(|row| {
                let sku = stored_sku(&row.try_get::<String, _>(0).map_err(failed)?)?;
                let quantity = stored_quantity(&sku, row.try_get(1).map_err(failed)?)?;
                Ok(CartLine { sku, quantity })
            })
            .collect::<Result<Vec<_>, CartError>>()?;
        // Sorted here, not in SQL: collations differ between backends.
        lines.sort_by(|a, b| a.sku.cmp(&b.sku));
        Ok(lines)
    }

    async fn add(&self, customer: AccountId, sku: &Sku, quantity: u32) -> Result<u32, CartError> {
        if quantity == 0 {
            return Err(CartError::ZeroQuantity);
        }
        let limits = self.config.limits;
        if quantity > limits.max_quantity {
            return Err(CartError::TooManyUnits {
                max: limits.max_quantity,
            });
        }
        let mut write = self.write(&CART, customer).await?;
        let new = match Self::line_quantity(&mut write, sku).await? {
            Some(current) => {
                let new = current.saturating_add(i64::from(quantity));
                if new > i64::from(limits.max_quantity) {
                    return Err(CartError::TooManyUnits {
                        max: limits.max_quantity,
                    });
                }
                sqlx::query(
                    "UPDATE cart_lines SET quantity = $1 WHERE customer_id = $2 AND sku = $3",
                )
                .bind(new)
                .bind(&write.customer)
                .bind(sku.as_str())
                .execute(&mut *write.tx)
                .await
                .map_err(failed)?;
                new
            }
            None => {
                let lines: i64 =
                    sqlx::query("SELECT COUNT(*) FROM cart_lines WHERE customer_id = $1")
                        .bind(&write.customer)
                        .fetch_one(&mut *write.tx)
                        .await
                        .and_then(|row| row.try_get(0))
                        .map_err(failed)?;
                if usize::try_from(lines).unwrap_or(usize::MAX) >= limits.max_lines {
                    return Err(CartError::TooManyLines {
                        max: limits.max_lines,
                    });
                }
                sqlx::query(
                    "INSERT INTO cart_lines (customer_id, sku, quantity) VALUES ($1, $2, $3)",
                )
                .bind(&write.customer)
                .bind(sku.as_str())
                .bind(i64::from(quantity))
                .execute(&mut *write.tx)
                .await
                .map_err(failed)?;
                i64::from(quantity)
            }
        };
        write.commit().await?;
        self.purge_if_due();
        stored_quantity(sku, new)
    }

    async fn set(&self, customer: AccountId, sku: &Sku, quantity: u32) -> Result<bool, CartError> {
        if quantity == 0 {
            return Err(CartError::ZeroQuantity);
        }
        let max = self.config.limits.max_quantity;
        if quantity > max {
            return Err(CartError::TooManyUnits { max });
        }
        let mut write = self.write(&CART, customer).await?;
        let changed =
            sqlx::query("UPDATE cart_lines SET quantity = $1 WHERE customer_id = $2 AND sku = $3")
                .bind(i64::from(quantity))
                .bind(&write.customer)
                .bind(sku.as_str())
                .execute(&mut *write.tx)
                .await
                .map_err(failed)?
                .rows_affected();
        if changed == 0 {
            // Dropping the transaction rolls it back: a missing line changes nothing.
            return Ok(false);
        }
        write.commit().await?;
        Ok(true)
    }

    async fn remove(&self, customer: AccountId, sku: &Sku) -> Result<bool, CartError> {
        let mut write = self.write(&CART, customer).await?;
        let removed = sqlx::query("DELETE FROM cart_lines WHERE customer_id = $1 AND sku = $2")
            .bind(&write.customer)
            .bind(sku.as_str())
            .execute(&mut *write.tx)
            .await
            .map_err(failed)?
            .rows_affected();
        write.commit().await?;
        Ok(removed > 0)
    }

    async fn remove_ordered(
        &self,
        customer: AccountId,
        ordered: &[CartLine],
    ) -> Result<(), CartError> {
        let mut write = self.write(&CART, customer).await?;
        for line in ordered {
            sqlx::query(
                "UPDATE cart_lines SET quantity = quantity - $1 WHERE customer_id = $2 AND sku = $3",
            )
            .bind(i64::from(line.quantity))
            .bind(&write.customer)
            .bind(line.sku.as_str())
            .execute(&mut *write.tx)
            .await
            .map_err(failed)?;
        }
        sqlx::query("DELETE FROM cart_lines WHERE customer_id = $1 AND quantity <= 0")
            .bind(&write.customer)
            .execute(&mut *write.tx)
            .await
            .map_err(failed)?;
        write.commit().await
    }

    async fn wishlist(&self, customer: AccountId) -> Result<Vec<Sku>, CartError> {
        let rows = self
            .read_skus(
                "SELECT i.sku FROM wishlist_items i \
                 JOIN wishlists w ON w.customer_id = i.customer_id \
                 WHERE i.customer_id = $1 AND w.expires_at > $2",
                customer,
            )
            .await?;
        let mut skus = rows
            .iter()
            .map(|row| stored_sku(&row.try_get::<String, _>(0).map_err(failed)?))
            .collect::<Result<Vec<_>, CartError>>()?;
        skus.sort();
        Ok(skus)
    }

    async fn wish(&self, customer: AccountId, sku: &Sku) -> Result<bool, CartError> {
        let max = self.config.limits.max_wishlist;
        let mut write = self.write(&WISHLIST, customer).await?;
        let present =
            sqlx::query("SELECT 1 FROM wishlist_items WHERE customer_id = $1 AND sku = $2")
                .bind(&write.customer)
                .bind(sku.as_str())
                .fetch_optional(&mut *write.tx)
                .await
                .map_err(failed)?
                .is_some();
        if !present {
            let items: i64 =
                sqlx::query("SELECT COUNT(*) FROM wishlist_items WHERE customer_id = $1")
                    .bind(&write.customer)
                    .fetch_one(&mut *write.tx)
                    .await
                    .and_then(|row| row.try_get(0))
                    .map_err(failed)?;
            if usize::try_from(items).unwrap_or(usize::MAX) >= max {
                return Err(CartError::WishlistFull { max });
            }
            sqlx::query("INSERT INTO wishlist_items (customer_id, sku) VALUES ($1, $2)")
                .bind(&write.customer)
                .bind(sku.as_str())
                .execute(&mut *write.tx)
                .await
                .map_err(failed)?;
        }
        write.commit().await?;
        self.purge_if_due();
        Ok(!present)
    }

    async fn unwish(&self, customer: AccountId, sku: &Sku) -> Result<bool, CartError> {
        let mut write = self.write(&WISHLIST, customer).await?;
        let removed = sqlx::query("DELETE FROM wishlist_items WHERE customer_id = $1 AND sku = $2")
            .bind(&write.customer)
            .bind(sku.as_str())
            .execute(&mut *write.tx)
            .await
            .map_err(failed)?
            .rows_affected();
        write.commit().await?;
        Ok(removed > 0)
    }

    async fn ping(&self) -> Result<(), CartError> {
        sqlx::query("SELECT 1")
            .execute(&self.sql)
            .await
            .map(|_| ())
            .map_err(failed)
    }
}
