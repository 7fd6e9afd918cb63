//! The cache hit paths of a product view: an L1 hit (no I/O at all), and a Redis hit (the
//! L1 misses, one HMGET and a JSON decode), both at the current checkpoint, so neither
//! touches the read model. The Redis case runs against `EMPORIUM_TEST_REDIS_URL` (default
//! `redis://127.0.0.1:6379`) and is left out when no Redis answers.
//!
//! `cargo bench -p query-api --bench view_cache` (numbers are taken on a quiet machine).
use std::{collections::BTreeMap, convert::Infallible, hint::black_box};

use cache::{LocalConfig, SharedViews, Source, Stored, ViewCache, testsupport};
use criterion::{Criterion, criterion_group, criterion_main};
use query_api::views::{MoneyView, PriceRange, ProductStatus, ProductView, VariantView};
use serde_json::json;

const ID: &str = "0197a3b4-0000-7000-8000-000000000001";
const AS_OF: u64 = 42;

fn product() -> ProductView {
    let variant = |sku: &str, amount: i64, size: &str| VariantView {
        sku: sku.into(),
        price: MoneyView {
            amount,
            currency: "EUR".into(),
        },
        options: BTreeMap::from([("size".to_owned(), size.to_owned())]),
        available: 0,
    };
    ProductView {
        id: ID.into(),
        name: "Linen Shirt".into(),
        description: "A light shirt for warm days, cut from washed linen.".into(),
        categories: vec!["shirts".into(), "summer".into()],
        attributes: json!({"material": "linen", "colour": "white", "fit": "regular"})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        status: ProductStatus::Active,
        variants: vec![
            variant("SHIRT-S", 4900, "S"),
            variant("SHIRT-M", 4900, "M"),
            variant("SHIRT-L", 5200, "L"),
        ],
        price_range: PriceRange {
            min: 4900,
            max: 5200,
            currency: "EUR".into(),
        },
        version: 3,
        created_at: "2025-06-15T15:06:40.000000Z".into(),
        updated_at: "2025-06-16T09:00:00.000000Z".into(),
    }
}

/// One lookup at the current checkpoint; the read model is never asked.
async fn lookup(cache: &ViewCache<ProductView>) -> Source {
    cache
        .get(
            ID,
            AS_OF,
            || async { Ok::<_, Infallible>(Some(3)) },
            || async { unreachable!("a hit never loads") },
        )
        .await
        .map(|fetched| fetched.source)
        .unwrap_or(Source::ReadModel)
}

fn hits(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");

    let local = ViewCache::new("product", &LocalConfig::default());
    runtime.block_on(async {
        let _ = local
            .get(
                ID,
                AS_OF,
                || async { Ok::<_, Infallible>(Some(3)) },
                || async { Ok(Some((3, product()))) },
            )
            .await;
        assert_eq!(lookup(&local).await, Source::Local);
    });
    c.bench_function("product view: L1 hit", |b| {
        b.to_async(&runtime)
            .iter(|| async { black_box(lookup(&local).await) });
    });

    let url = testsupport::redis_url();
    let shared = runtime.block_on(async {
        testsupport::answers(&url).await.ok()?;
        let shared = SharedViews::connect(testsupport::config_for(&url)).ok()?;
        let stored = Stored {
            version: 3,
            as_of: AS_OF,
            view: serde_json::to_string(&product()).ok()?,
        };
        shared.put("product", ID, stored).await.ok()?;
        Some(shared)
    });
    let Some(shared) = shared else {
        eprintln!("skipped: no Redis at {url}: the Redis hit is not measured");
        return;
    };
    // Registering the L1 starts its invalidation listener: inside the runtime.
    let remote = runtime.block_on(async {
        let remote = ViewCache::new("product", &LocalConfig::default()).with_shared(shared);
        remote.evict_local(ID);
        assert_eq!(lookup(&remote).await, Source::Shared);
        remote
    });
    c.bench_function("product view: Redis hit (L1 miss)", |b| {
        b.to_async(&runtime).iter(|| async {
            remote.evict_local(ID);
            black_box(lookup(&remote).await)
        });
    });
}

criterion_group!(benches, hits);
criterion_main!(benches);
