//! The cart store contract on every backend (SQLite, PostgreSQL, Redis), and what only
//! one backend has: Redis' key layout, TTL and recovery after an outage; SQL's purge.
use std::{net::TcpListener, process::Command, sync::Arc, time::Duration};

use command_api::{
    cart_store_contract_suite,
    carts::{
        CartError, CartStore, CartStoreConfig, RedisCartStore, SqlCartStore, contract::TestRedis,
    },
};
use domain::ids::{AccountId, Sku};
use eventstore::testsupport::{TestPostgres, TestSqlite};
use sqlx::{AnyPool, Row, any::AnyPoolOptions};

async fn pool(url: &str) -> AnyPool {
    sqlx::any::install_default_drivers();
    AnyPoolOptions::new()
        .max_connections(8)
        .connect(url)
        .await
        .expect("sql pool")
}

async fn sqlite_store(config: CartStoreConfig) -> Option<(Arc<dyn CartStore>, TestSqlite)> {
    let db = TestSqlite::new().await;
    let sql = pool(&format!("sqlite://{}", db.path.display())).await;
    Some((Arc::new(SqlCartStore::new(sql, config)), db))
}

async fn postgres_store(config: CartStoreConfig) -> Option<(Arc<dyn CartStore>, TestPostgres)> {
    let db = TestPostgres::new().await?;
    let sql = pool(&db.url).await;
    Some((Arc::new(SqlCartStore::new(sql, config)), db))
}

async fn redis_store(config: CartStoreConfig) -> Option<(Arc<dyn CartStore>, TestRedis)> {
    let redis = TestRedis::new().await?;
    Some((Arc::new(redis.store(config)), redis))
}

cart_store_contract_suite!(sqlite, super::sqlite_store);
cart_store_contract_suite!(postgres, super::postgres_store);
cart_store_contract_suite!(redis, super::redis_store);

fn customer() -> AccountId {
    AccountId::new(uuid::Uuid::now_v7())
}

fn sku(raw: &str) -> Sku {
    Sku::parse(raw).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keeps_a_hash_and_a_set_per_customer_with_the_ttl() {
    let Some(redis) = TestRedis::new().await else {
        return;
    };
    let config = CartStoreConfig {
        ttl: Duration::from_secs(7200),
        ..CartStoreConfig::default()
    };
    let store = redis.store(config);
    let who = customer();
    store.add(who, &sku("HASHED"), 3).await.unwrap();
    store.wish(who, &sku("SETTED")).await.unwrap();

    let client = ::redis::Client::open(redis.url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let cart = format!("{}:cart:{who}", redis.prefix);
    let wishlist = format!("{}:wishlist:{who}", redis.prefix);
    assert_eq!(store.cart_key(who), cart);
    let units: String = ::redis::cmd("HGET")
        .arg(&cart)
        .arg("HASHED")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(units, "3");
    let members: Vec<String> = ::redis::cmd("SMEMBERS")
        .arg(&wishlist)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(members, vec!["SETTED".to_owned()]);
    for key in [&cart, &wishlist] {
        let ttl: i64 = ::redis::cmd("TTL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert!((7000..=7200).contains(&ttl), "{key} has TTL {ttl}");
    }
    // Every write pushes the TTL back to the full period.
    let _: () = ::redis::cmd("EXPIRE")
        .arg(&cart)
        .arg(60)
        .query_async(&mut conn)
        .await
        .unwrap();
    store.set(who, &sku("HASHED"), 4).await.unwrap();
    let ttl: i64 = ::redis::cmd("TTL")
        .arg(&cart)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!((7000..=7200).contains(&ttl), "TTL after a write: {ttl}");
}

/// A Redis server of this test's own, on a free port, killed when dropped.
struct OwnRedis {
    port: u16,
    child: std::process::Child,
}

impl OwnRedis {
    fn start(port: u16) -> Option<Self> {
        match Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
        {
            Ok(child) => Some(Self { port, child }),
            Err(err) => {
                eventstore::testsupport::skip_or_fail("redis-server", "PATH", &err);
                None
            }
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn until_ok<T>(what: &str, mut attempt: impl AsyncFnMut() -> Result<T, CartError>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        match attempt().await {
            Ok(value) => return value,
            Err(err) => assert!(
                tokio::time::Instant::now() < deadline,
                "{what} still failing: {err}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_answers_unavailable_then_recovers() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let Some(server) = OwnRedis::start(port) else {
        return;
    };
    let store =
        RedisCartStore::connect(&server.url(), "outage", CartStoreConfig::default()).unwrap();
    let who = customer();
    until_ok("first write", async || {
        store.add(who, &sku("BEFORE"), 1).await
    })
    .await;

    drop(server);
    let err = loop {
        // The first call after the kill may still be on its way; the next one fails.
        match store.add(who, &sku("DURING"), 1).await {
            Err(err) => break err,
            Ok(_) => tokio::task::yield_now().await,
        }
    };
    assert!(matches!(err, CartError::Unavailable(_)), "{err:?}");
    assert!(matches!(
        store.lines(who).await,
        Err(CartError::Unavailable(_))
    ));

    let _server = OwnRedis::start(port).unwrap();
    until_ok("write after restart", async || {
        store.add(who, &sku("AFTER"), 1).await
    })
    .await;
    let lines = store.lines(who).await.unwrap();
    assert!(lines.iter().any(|l| l.sku == sku("AFTER")), "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sql_purge_deletes_expired_lists_only() {
    let db = TestSqlite::new().await;
    let sql = pool(&format!("sqlite://{}", db.path.display())).await;
    let short = SqlCartStore::new(
        sql.clone(),
        CartStoreConfig {
            ttl: Duration::from_secs(1),
            ..CartStoreConfig::default()
        },
    );
    let long = SqlCartStore::new(sql.clone(), CartStoreConfig::default());
    let (gone, kept) = (customer(), customer());
    short.add(gone, &sku("OLD"), 1).await.unwrap();
    short.wish(gone, &sku("OLD")).await.unwrap();
    long.add(kept, &sku("NEW"), 1).await.unwrap();
    long.wish(kept, &sku("NEW")).await.unwrap();
    until_ok("expiry", async || match short.lines(gone).await? {
        lines if lines.is_empty() => Ok(()),
        lines => Err(CartError::Backend(format!("still there: {lines:?}"))),
    })
    .await;
    until_ok("wishlist expiry", async || {
        match short.wishlist(gone).await? {
            skus if skus.is_empty() => Ok(()),
            skus => Err(CartError::Backend(format!("still there: {skus:?}"))),
        }
    })
    .await;
    assert_eq!(long.purge_expired().await.unwrap(), 2);
    for table in ["cart_lines", "wishlist_items", "carts", "wishlists"] {
        let rows: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT customer_id FROM {table}"
        )))
        .fetch_all(&sql)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
        assert_eq!(rows, vec![kept.to_string()], "{table}");
    }
}
