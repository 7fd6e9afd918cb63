//! The view cache against a real Redis: compare-and-set, validation of shared entries,
//! invalidation between nodes, and an outage of a private `redis-server`.
use std::{
    convert::Infallible,
    sync::atomic::{AtomicUsize, Ordering},
    time::Duration,
};

use cache::{
    LocalConfig, SharedViews, Source, Stored, ViewCache,
    testsupport::{RedisServer, config_for, raw_connection, test_redis},
};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct View {
    name: String,
}

fn view(name: &str) -> View {
    View { name: name.into() }
}

fn stored(version: u64, as_of: u64, name: &str) -> Stored {
    Stored {
        version,
        as_of,
        view: serde_json::to_string(&view(name)).unwrap(),
    }
}

/// Looks `id` up as a node whose read model holds `version` of the view named `name` at
/// checkpoint `as_of`; counts the read-model loads in `loads`.
async fn lookup(
    cache: &ViewCache<View>,
    id: &str,
    as_of: u64,
    version: u64,
    name: &str,
    loads: &AtomicUsize,
) -> (View, Source) {
    let fetched = cache
        .get(
            id,
            as_of,
            || async move { Ok::<_, Infallible>(Some(version)) },
            || async move {
                loads.fetch_add(1, Ordering::SeqCst);
                Ok(Some((version, view(name))))
            },
        )
        .await
        .unwrap();
    (fetched.view.unwrap(), fetched.source)
}

#[tokio::test]
async fn compare_and_set_never_replaces_newer_with_older() {
    let Some(config) = test_redis().await else {
        return;
    };
    let shared = SharedViews::connect(config).unwrap();
    let id = "p1";
    assert!(
        shared
            .put("product", id, stored(2, 10, "v2@10"))
            .await
            .unwrap()
    );
    // An older version, even read at a later checkpoint, is refused...
    assert!(
        !shared
            .put("product", id, stored(1, 20, "v1@20"))
            .await
            .unwrap()
    );
    // ...as is the same version read at an earlier or the same checkpoint...
    assert!(
        !shared
            .put("product", id, stored(2, 5, "v2@5"))
            .await
            .unwrap()
    );
    assert!(
        !shared
            .put("product", id, stored(2, 10, "v2@10 again"))
            .await
            .unwrap()
    );
    assert_eq!(
        shared.get("product", id).await.unwrap(),
        Some(stored(2, 10, "v2@10"))
    );
    // ...while a later checkpoint of the same version, or a newer version, is taken.
    assert!(
        shared
            .put("product", id, stored(2, 11, "v2@11"))
            .await
            .unwrap()
    );
    assert!(
        shared
            .put("product", id, stored(3, 1, "v3@1"))
            .await
            .unwrap()
    );
    assert_eq!(
        shared.get("product", id).await.unwrap(),
        Some(stored(3, 1, "v3@1"))
    );
    // Exact beyond 2^53, where Lua's numbers are not.
    let big = 9_007_199_254_740_993;
    assert!(
        shared
            .put("product", id, stored(big, 1, "big"))
            .await
            .unwrap()
    );
    assert!(
        !shared
            .put("product", id, stored(big - 1, 2, "smaller"))
            .await
            .unwrap()
    );
    assert_eq!(
        shared.get("product", id).await.unwrap().unwrap().version,
        big
    );
    // Kinds do not share keys, and entries carry the TTL backstop.
    assert_eq!(shared.get("order", id).await.unwrap(), None);
    let mut raw = raw_connection(&test_redis_url()).await;
    let ttl: i64 = redis::cmd("PTTL")
        .arg(shared.key("product", id))
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(ttl > 0 && ttl <= 60_000, "ttl {ttl}");
    assert_eq!(
        shared.key("product", id),
        format!("{}:view:product:p1", shared.namespace())
    );
}

fn test_redis_url() -> String {
    cache::testsupport::redis_url()
}

#[tokio::test]
async fn stale_shared_entries_are_never_served() {
    let Some(config) = test_redis().await else {
        return;
    };
    let cache = ViewCache::new("product", &LocalConfig::default())
        .with_shared(SharedViews::connect(config).unwrap());
    let shared = cache.shared().unwrap().clone();
    let loads = AtomicUsize::new(0);
    // A slow writer left version 1, read at checkpoint 40; the read model holds version 2 at
    // checkpoint 50: the entry is not served, and the fresh view replaces it.
    shared
        .put("product", "p", stored(1, 40, "old"))
        .await
        .unwrap();
    assert_eq!(
        lookup(&cache, "p", 50, 2, "new", &loads).await,
        (view("new"), Source::ReadModel)
    );
    assert_eq!(
        shared.get("product", "p").await.unwrap(),
        Some(stored(2, 50, "new"))
    );

    // An entry of the version the read model holds is served, whatever its checkpoint...
    cache.evict_local("q");
    shared
        .put("product", "q", stored(7, 3, "q7"))
        .await
        .unwrap();
    assert_eq!(
        lookup(&cache, "q", 60, 7, "q7 from the read model", &loads).await,
        (view("q7"), Source::Shared)
    );
    // ...and then from the L1, revalidated when the checkpoint moves.
    assert_eq!(
        lookup(&cache, "q", 60, 7, "q7 from the read model", &loads).await,
        (view("q7"), Source::Local)
    );
    assert_eq!(
        lookup(&cache, "q", 61, 8, "q8", &loads).await,
        (view("q8"), Source::ReadModel)
    );
    assert_eq!(loads.load(Ordering::SeqCst), 2);
}

/// Polls `condition` until it holds, or panics after `within`.
async fn eventually(within: Duration, what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !condition().await {
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn an_invalidation_evicts_every_nodes_l1() {
    let Some(config) = test_redis().await else {
        return;
    };
    let node = |config| {
        ViewCache::<View>::new("product", &LocalConfig::default())
            .with_shared(SharedViews::connect(config).unwrap())
    };
    let (a, b) = (node(config.clone()), node(config));
    for cache in [&a, &b] {
        assert!(
            cache
                .shared()
                .unwrap()
                .wait_listening(Duration::from_secs(10))
                .await
        );
    }
    let loads = AtomicUsize::new(0);
    lookup(&b, "p", 1, 1, "p1", &loads).await;
    lookup(&b, "other", 1, 1, "other", &loads).await;
    assert!(b.contains_local("p"));
    a.shared()
        .unwrap()
        .publish(&["product:p".to_owned(), "order:other".to_owned()])
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "b evicts p", async || {
        !b.contains_local("p")
    })
    .await;
    // Only the named view of the named kind goes.
    assert!(b.contains_local("other"));
}

#[tokio::test]
async fn a_redis_outage_costs_reads_nothing_and_the_cache_comes_back() {
    let Some(mut server) = RedisServer::start().await else {
        return;
    };
    let cache = ViewCache::<View>::new("product", &LocalConfig::default())
        .with_shared(SharedViews::connect(config_for(&server.url())).unwrap());
    let shared = cache.shared().unwrap().clone();
    assert!(shared.wait_listening(Duration::from_secs(10)).await);
    assert_eq!(shared.check().await, Ok(()));
    let loads = AtomicUsize::new(0);
    lookup(&cache, "p", 1, 1, "p1", &loads).await;
    assert_eq!(
        shared.get("product", "p").await.unwrap(),
        Some(stored(1, 1, "p1"))
    );

    server.stop();
    // Every read answers, from the read model, within a bounded time.
    for n in 2..12 {
        cache.evict_local("p");
        let started = Instant::now();
        assert_eq!(
            lookup(&cache, "p", n, n, &format!("p{n}"), &loads).await,
            (view(&format!("p{n}")), Source::ReadModel)
        );
        assert!(started.elapsed() < Duration::from_secs(2), "a read stalled");
    }
    let degraded = shared.check().await.unwrap_err();
    assert!(degraded.starts_with("degraded"), "{degraded}");
    assert!(shared.degraded().is_some());

    server.restart().await;
    eventually(
        Duration::from_secs(15),
        "the cache is ready again",
        async || shared.check().await.is_ok(),
    )
    .await;
    // The restarted server is empty; a read fills it again, and the next lookup reads it.
    eventually(
        Duration::from_secs(15),
        "a read fills Redis again",
        async || {
            cache.evict_local("p");
            lookup(&cache, "p", 20, 20, "p20", &loads).await;
            shared.get("product", "p").await.ok().flatten() == Some(stored(20, 20, "p20"))
        },
    )
    .await;
    cache.evict_local("p");
    assert_eq!(
        lookup(&cache, "p", 20, 20, "not this", &loads).await,
        (view("p20"), Source::Shared)
    );
}

#[tokio::test]
async fn purge_removes_the_namespace_only() {
    let Some(config) = test_redis().await else {
        return;
    };
    let mine = SharedViews::connect(config).unwrap();
    let theirs = SharedViews::connect(config_for(&test_redis_url())).unwrap();
    for n in 0..25 {
        mine.put("product", &format!("p{n}"), stored(1, 1, "x"))
            .await
            .unwrap();
    }
    mine.put("order", "o", stored(1, 1, "x")).await.unwrap();
    theirs
        .put("product", "p0", stored(1, 1, "x"))
        .await
        .unwrap();
    assert_eq!(mine.purge().await.unwrap(), 26);
    assert_eq!(mine.get("product", "p0").await.unwrap(), None);
    assert_eq!(mine.get("order", "o").await.unwrap(), None);
    assert!(theirs.get("product", "p0").await.unwrap().is_some());
}
