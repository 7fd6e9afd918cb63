//! The contract every [`CartStore`] passes, one behaviour per case, and test support for
//! the Redis backend. `cart_store_contract_suite!(name, super::setup)` expands to one test
//! per case in `mod name`, where `setup(config)` returns a fresh store (and a guard that
//! cleans up) or `None` when its service is absent and the test is skipped.
use std::{collections::BTreeMap, future::Future, sync::Arc, time::Duration};

use domain::ids::{AccountId, Sku};
use uuid::Uuid;

use super::{CartError, CartLimits, CartLine, CartStore, CartStoreConfig, RedisCartStore};

/// Expands to one `#[tokio::test]` per contract case in `mod $backend`.
#[macro_export]
macro_rules! cart_store_contract_suite {
    ($backend:ident, $setup:path) => {
        $crate::cart_store_contract_suite!(@cases $backend, $setup,
            a_new_customer_has_nothing, add_creates_then_increments,
            set_changes_only_existing_lines, remove_reports_whether_a_line_went,
            limits_refuse_without_changing_anything, customers_never_see_each_others_lists,
            remove_ordered_keeps_what_the_order_did_not_take,
            concurrent_writes_lose_no_line_and_no_unit,
            concurrent_new_lines_never_pass_the_line_limit,
            concurrent_increments_never_pass_the_unit_limit,
            checkout_removal_racing_an_add_keeps_the_add,
            wishlist_adds_once_and_removes, wishlist_limit_holds_under_concurrency,
            untouched_lists_expire, ping_answers);
    };
    (@cases $backend:ident, $setup:path, $($case:ident),+) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    $crate::carts::contract::$case($setup).await;
                }
            )+
        }
    };
}

fn customer() -> AccountId {
    AccountId::new(Uuid::now_v7())
}

fn sku(raw: &str) -> Sku {
    Sku::parse(raw).expect("test SKU")
}

fn line(raw: &str, quantity: u32) -> CartLine {
    CartLine {
        sku: sku(raw),
        quantity,
    }
}

fn limits(max_lines: usize, max_quantity: u32, max_wishlist: usize) -> CartStoreConfig {
    CartStoreConfig {
        limits: CartLimits {
            max_lines,
            max_quantity,
            max_wishlist,
        },
        ..CartStoreConfig::default()
    }
}

async fn open<F, Fut, G>(setup: F, config: CartStoreConfig) -> Option<(Arc<dyn CartStore>, G)>
where
    F: Fn(CartStoreConfig) -> Fut,
    Fut: Future<Output = Option<(Arc<dyn CartStore>, G)>>,
{
    setup(config).await
}

/// A customer without a cart or wishlist reads empty ones.
pub async fn a_new_customer_has_nothing<F, Fut, G>(setup: F)
where
    F: Fn(CartStoreConfig) -> Fut,
    Fut: Future<Output = Option<(Arc<dyn CartStore>, G)>>,
{
    let Some((store, _guard)) = open(setup, CartStoreConfig::default()).await else {
        return;
    };
    let who = customer();
    assert!(store.lines(who).await.unwrap().is_empty());
    assert!(store.wishlist(who).await.unwrap().is_empty());
}

/// `add` creates a line, then adds to it; lines read back sorted by SKU.
pub async fn add_creates_then_increments<F, Fut, G>(setup: F)
where
    F: Fn(CartStoreConfig) -> Fut,
    Fut: Future<Output = Option<(Arc<dyn CartStore>, G)>>,
{
    let Some((store, _guard)) = open(setup, CartStoreConfig::default()).await else {
        return;
    };
    let who = customer();
    assert_eq!(store.add(who, &sku("B-2"), 2).await.unwrap(), 2);
    assert_eq!(store.add(who, &sku("B-2"), 3).await.unwrap(), 5);
    assert_eq!(store.add(who, &sku("A-1"), 1).await.unwrap(), 1);
    assert_eq!(
        store.lines(who).await.unwrap(),
        vec![line("A-1", 1), line("B-2", 5)]
    );
}

/// `set` replaces an existing line's quantity and never creates a line.
pub async fn set_changes_only_existing_lines<F, Fut, G>(setup: F)
where
    F: Fn(CartStoreConfig) -> Fut,
    Fut: Future<Output = Option<(Arc<dyn CartStore>, G)>>,
{
    let Some((store, _guard)) = open(setup, CartStoreConfig::default()).await else {
        return;
    };
    let who = customer();
    assert!(!store.set(who, &sku("GHOST"), 4).await.unwrap());
    assert!(store.lines(who).await.unwrap().is_empty());
    store.add(who, &sku("REAL"), 9).await.unwrap();
    assert!(store.set(who, &sku("REAL"), 4).await.unwrap());
    assert!(!store.set(who, &sku("GHOST"), 4).await.unwrap());
    assert_eq!(store.lines(who).await.unwrap(), vec![line("REAL", 4)]);
}

/// `remove` drops a line and says whether there was one.
pub async fn remove_reports_whether_a_line_went<F, Fut, G>(setup: F)
where
    F: Fn(CartStoreConfig) -> Fut,
    Fut: Future<Output = Option<(Arc<dyn CartStore>, G)>>,
{
    let Some((store, _guard)) = open(setup, CartStoreConfig::default()).await else {
        return;
    };
    let who = customer();
    store.add(who, &sku("KEEP"), 1).await.unwrap();
    store.add(who, &sku("DROP"), 1).await.unwrap();
    assert!(store.remove(who, &sku("DROP")).await.unwrap());
    assert!(!store.remove(who, &sku("DROP")).await.unwrap());
    assert_eq!(store.lines(who).await.unwrap(), vec![line("KEEP", 1)]);
}

/// Every limit refuses the write and leaves the cart as it was.
pub async fn limits_refuse_without_changing_anything<F, Fut, G>(setup: F)
where
    F: Fn(CartStoreConfig) -> Fut,
    Fut: Future<Output = Option<(Arc<dyn CartStore>, G)>>,
{
    let Some((store, _guard)) = open(setup, limits(2, 10, 5)).await else {
        return;
    };
    let who = customer();
    assert_eq!(store.add(who, &sku("A"), 10).await.unwrap(), 10);
    assert!(matches!(
        store.add(who, &sku("A"), 1).await,
        Err(CartError::TooManyUnits { max: 10 })
    ));
    assert!(matches!(
        store.add(who, &sku("B"), 11).await,
        Err(CartError::TooManyUnits { max: 10 })
    ));
    store.add(who, &sku("B"), 1).await.unwrap();
    assert!(matches!(
        store.add(who, &sku("C"), 1).await,
        Err(CartError::TooManyLines { max: 2 })
    ));
    assert!(matches!(
        store.set(who, &sku("B"), 11).await,
        Err(CartError::TooManyUnits { max: 10 })
    ));
    assert!(matches!(
        store.add(who, &sku("B"), 0).await,
        Err(CartError::ZeroQuantity)
    ));
    assert!(matches!(
        store.set(who, &sku("B"), 0).await,
        Err(CartError::ZeroQuantity)
    ));
    assert_eq!(
        store.lines(who).await.unwrap(),
        vec![line("A", 10), line("B", 1)]
    );
    // A full cart still takes more units of a line it has.
    assert_eq!(store.add(who, &sku("B"), 2).await.unwrap(), 3);
}

/// One customer's writes never show in another's cart or wishlist.
pub async fn customers_never_see_each_others_lists<F, Fut, G>(setup: F)
where
    F: Fn(CartStoreConfig) -> Fut,
    Fut: Future<Output = Option<(Arc<dyn CartStore>, G)>>,
{
    let Some((store, _guard)) = open(setup, CartStoreConfig::default()).await else {
        return;
    };
    let (ada, bob) = (customer(), customer());
    store.add(ada, &sku("MINE"), 3).await.unwrap();
    store.wish(ada, &sku("WANT")).await.unwrap();
    assert!(store.lines(bob).await.unwrap().is_empty());
    assert!(store.wishlist(bob).await.unwrap().is_empty());
    assert!(!store.set(bob, &sku("MINE"), 1).await.unwrap());
    assert!(!store.remove(bob, &sku("MINE")).await.unwrap());
    store.remove_ordered(bob, &[line("MINE", 3)]).await.unwrap();
    assert!(!store.unwish(bob, &sku("WANT")).await.unwrap());
    assert_eq!(store.lines(ada).await.unwrap(), vec![line("MINE", 3)]);
    assert_eq!(store.wishlist(ada).await.unwrap(), vec![sku("WANT")]);
}

/// After checkout, lines lose what the order took; what it did not take stays, and
/// lines the order did not name are untouched.
pub async fn remove_ordered_keeps_what_the_order_did_not_take<F, Fut, G>(setup: F)
where
    F: Fn(CartStoreConfig) -> Fut,
    Fut: Future<Output = Option<(Arc<dyn CartStore>, G)>>,
{
    let Some((store, _guard)) = open(setup, CartStoreConfig::default()).await else {
        return;
    };
    let who = customer();
    store.add(who, &sku("ALL"), 2).await.unwrap();
    store.add(who, &sku("SOME"), 5).await.unwrap();
    store.add(who, &sku("OTHER"), 1).await.unwrap();
    store
        .remove_ordered(who, &[line("ALL", 2), line("SOME", 3), line("ABSENT", 1)])
        .await
        .unwrap();
    assert_eq!(
        store.lines(who).await.unwrap(),
        vec![line("OTHER", 1), line("SOME", 2)]
    );
    store.remove_ordered(who, &[]).await.unwrap();
    assert_eq!(store.lines(who).await.unwrap().len(), 2);
}

/// Many concurrent writes to one cart, to the same and to different SKUs: new lines,
/// increments of one hot line, quantity changes and removals of other lines. Nothing is
/// lost and nothing is applied twice.
pub async fn concurrent_writes_lose_no_line_and_no_unit<F, Fut, G>(setup: F)
where
    F: Fn(CartStoreConfig) -> Fut,
    Fut: Future<Output = Option<(Arc<dyn CartStore>, G)>>,
{
    let Some((store, _guard)) = open(setup, CartStoreConfig::default()).await else {
        return;
    };
    let who = customer();
    for i in 0..10 {
        store.add(who, &sku(&format!("SET-{i}")), 1).await.unwrap();
        store.add(who, &sku(&format!("GONE-{i}")), 1).await.unwrap();
    }
    let mut tasks = Vec::new();
    for i in 0..60 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.add(who, &sku("HOT"), 1).await.unwrap();
            match i % 6 {
                0..=2 => {
                    store
                        .add(who, &sku(&format!("NEW-{}", i % 20)), 2)
                        .await
                        .unwrap();
                }
                3 => {
                    assert!(
                        store
                            .set(who, &sku(&format!("SET-{}", i / 6)), 7)
                            .await
                            .unwrap()
                    );
                }
                4 => {
                    assert!(
                        store
                            .remove(who, &sku(&format!("GONE-{}", i / 6)))
                            .await
                            .unwrap()
                    );
                }
                _ => {
                    store.add(who, &sku("HOT"), 1).await.unwrap();
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("task");
    }
    let lines: BTreeMap<String, u32> = store
        .lines(who)
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.sku.to_string(), l.quantity))
        .collect();
    let mut expected = BTreeMap::new();
    expected.insert("HOT".to_owned(), 70);
    for i in 0..10 {
        expected.insert(format!("SET-{i}"), 7);
    }
    // NEW-k is added by the tasks i < 60 with i % 6 < 3 and i % 20 == k.
    for i in (0..60).filter(|i| i % 6 < 3) {
        *expected.entry(format!("NEW-{}", i % 20)).or_insert(0) += 2;
    }
    assert_eq!(lines, expected);
}

/// Concurrent new lines on a nearly full cart: exactly as many succeed as there is room.
pub async fn concurrent_new_lines_never_pass_the_line_limit<F, Fut, G>(setup: F)
where
    F: Fn(CartStoreConfig) -> Fut,
    Fut: Future<Output = Option<(Arc<dyn CartStore>, G)>>,
{
    let Some((store, _guard)) = open(setup, limits(5, 10, 5)).await else {
        return;
    };
    let who = customer();
    store.add(who, &sku("FIRST"), 1).await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.add(who, &sku(&format!("L-{i}")), 1).await })
        })
        .collect();
    let mut added = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(1) => added += 1,
            Err(CartError::TooManyLines { max: 5 }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(added, 4);
    assert_eq!(store.lines(who).await.unwrap().len(), 5);
}

/// Concurrent increments of one line: exactly as many succeed as the unit limit allows.
pub async fn concurrent_increments_never_pass_the_unit_limit<F, Fut, G>(setup: F)
where
    F: Fn(CartStoreConfig) -> Fut,
    Fut: Future<Output = Option<(Arc<dyn CartStore>, G)>>,
{
    let Some((store, _guard)) = open(setup, limits(5, 10, 5)).await else {
        return;
    };
    let who = customer();
    let tasks: Vec<_> = (0..30)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.add(who, &sku("ONE"), 1).await })
        })
        .collect();
    let mut quantities = Vec::new();
    for task in tasks {
        match task.await.expect("task") {
            Ok(quantity) => quantities.push(quantity),
            Err(CartError::TooManyUnits { max: 10 }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    quantities.sort_unstable();
    assert_eq!(quantities, (1..=10).collect::<Vec<_>>());
    assert_eq!(store.lines(who).await.unwrap(), vec![line("ONE", 10)]);
}

/// A checkout's removal racing an add of the same SKU: whichever runs first, the added
/// units stay in the cart.
pub async fn checkout_removal_racing_an_add_keeps_the_add<F, Fut, G>(setup: F)
where
    F: Fn(CartStoreConfig) -> Fut,
    Fut: Future<Output = Option<(Arc<dyn CartStore>, G)>>,
{
    let Some((store, _guard)) = open(setup, CartStoreConfig::default()).await else {
        return;
    };
    for _ in 0..10 {
        let who = customer();
        store.add(who, &sku("RACE"), 5).await.unwrap();
        let (a, b) = (store.clone(), store.clone());
        let removal = tokio::spawn(async move { a.remove_ordered(who, &[line("RACE", 5)]).await });
        let add = tokio::spawn(async move { b.add(who, &sku("RACE"), 2).await });
        removal.await.expect("task").unwrap();
        add.await.expect("task").unwrap();
        assert_eq!(store.lines(who).await.unwrap(), vec![line("RACE", 2)]);
    }
}

/// Wishlist items are added once and removed; the answer says whether anything changed.
pub async fn wishlist_adds_once_and_removes<F, Fut, G>(setup: F)
where
    F: Fn(CartStoreConfig) -> Fut,
    Fut: Future<Output = Option<(Arc<dyn CartStore>, G)>>,
{
    let Some((store, _guard)) = open(setup, CartStoreConfig::default()).await else {
        return;
    };
    let who = customer();
    assert!(store.wish(who, &sku("W-2")).await.unwrap());
    assert!(!store.wish(who, &sku("W-2")).await.unwrap());
    assert!(store.wish(who, &sku("W-1")).await.unwrap());
    assert_eq!(
        store.wishlist(who).await.unwrap(),
        vec![sku("W-1"), sku("W-2")]
    );
    assert!(store.unwish(who, &sku("W-2")).await.unwrap());
    assert!(!store.unwish(who, &sku("W-2")).await.unwrap());
    assert_eq!(store.wishlist(who).await.unwrap(), vec![sku("W-1")]);
    // The wishlist and the cart are separate lists.
    assert!(store.lines(who).await.unwrap().is_empty());
}

/// Concurrent wishes: none lost, and never more items than the limit; a full wishlist
/// still accepts an item it already has.
pub async fn wishlist_limit_holds_under_concurrency<F, Fut, G>(setup: F)
where
    F: Fn(CartStoreConfig) -> Fut,
    Fut: Future<Output = Option<(Arc<dyn CartStore>, G)>>,
{
    let Some((store, _guard)) = open(setup, limits(5, 10, 8)).await else {
        return;
    };
    let who = customer();
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move { store.wish(who, &sku(&format!("W-{i:02}"))).await })
        })
        .collect();
    let mut added = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(true) => added += 1,
            Err(CartError::WishlistFull { max: 8 }) => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(added, 8);
    let items = store.wishlist(who).await.unwrap();
    assert_eq!(items.len(), 8);
    assert!(!store.wish(who, &items[0]).await.unwrap());
}

/// A cart and a wishlist nobody writes to are gone after the TTL, and what was in them
/// does not come back with the next write.
pub async fn untouched_lists_expire<F, Fut, G>(setup: F)
where
    F: Fn(CartStoreConfig) -> Fut,
    Fut: Future<Output = Option<(Arc<dyn CartStore>, G)>>,
{
    let config = CartStoreConfig {
        ttl: Duration::from_secs(1),
        ..CartStoreConfig::default()
    };
    let Some((store, _guard)) = open(setup, config).await else {
        return;
    };
    let who = customer();
    store.add(who, &sku("OLD"), 1).await.unwrap();
    store.wish(who, &sku("OLD")).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let lines = store.lines(who).await.unwrap();
        let wishes = store.wishlist(who).await.unwrap();
        if lines.is_empty() && wishes.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "still there: {lines:?} {wishes:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    store.add(who, &sku("NEW"), 1).await.unwrap();
    store.wish(who, &sku("NEW")).await.unwrap();
    assert!(
        !store
            .lines(who)
            .await
            .unwrap()
            .iter()
            .any(|l| l.sku == sku("OLD"))
    );
    assert!(!store.wishlist(who).await.unwrap().contains(&sku("OLD")));
}

/// The store answers a ping.
pub async fn ping_answers<F, Fut, G>(setup: F)
where
    F: Fn(CartStoreConfig) -> Fut,
    Fut: Future<Output = Option<(Arc<dyn CartStore>, G)>>,
{
    let Some((store, _guard)) = open(setup, CartStoreConfig::default()).await else {
        return;
    };
    store.ping().await.unwrap();
}

/// A Redis for one test: the server at `EMPORIUM_TEST_REDIS_URL` (default
/// `redis://127.0.0.1:6379`), every key under a prefix of its own, deleted on drop.
pub struct TestRedis {
    /// The server.
    pub url: String,
    /// The key prefix of this test.
    pub prefix: String,
}

impl TestRedis {
    /// The test Redis, or `None` (after `skip_or_fail`) when none answers.
    pub async fn new() -> Option<Self> {
        let url = std::env::var("EMPORIUM_TEST_REDIS_URL")
            .unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let reachable = async {
            let client = redis::Client::open(url.as_str())?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<String>(&mut conn).await
        };
        match tokio::time::timeout(Duration::from_secs(3), reachable).await {
            Ok(Ok(_)) => Some(Self {
                url,
                prefix: format!("emporium-test-{}", Uuid::now_v7().simple()),
            }),
            Ok(Err(err)) => {
                eventstore::testsupport::skip_or_fail("Redis", &url, &err);
                None
            }
            Err(err) => {
                eventstore::testsupport::skip_or_fail("Redis", &url, &err);
                None
            }
        }
    }

    /// A store under this test's prefix.
    pub fn store(&self, config: CartStoreConfig) -> RedisCartStore {
        RedisCartStore::connect(&self.url, &self.prefix, config).expect("redis store")
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        let clean = || -> redis::RedisResult<()> {
            let client = redis::Client::open(self.url.as_str())?;
            let mut conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
            let mut cursor = 0_u64;
            loop {
                let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                    .arg(cursor)
                    .arg("MATCH")
                    .arg(format!("{}:*", self.prefix))
                    .arg("COUNT")
                    .arg(1000)
                    .query(&mut conn)?;
                if !keys.is_empty() {
                    redis::cmd("DEL").arg(&keys).query::<()>(&mut conn)?;
                }
                if next == 0 {
                    return Ok(());
                }
                cursor = next;
            }
        };
        if let Err(err) = clean() {
            eprintln!(
                "could not delete the test keys under {}: {err}",
                self.prefix
            );
        }
    }
}
