//! Search latency: `cargo bench -p query-api --bench search`.
//!
//! Indexes a generated catalogue (through the real search projection, from an embedded
//! SQLite log), then measures one search — one word, as the load generator's `browse`
//! asks, exact words, typos, a prefix, and filters — each answering a page of 20 with
//! facets over every match. The catalogue has 3,000 products, or `SEARCH_BENCH_PRODUCTS`
//! (`SEARCH_BENCH_PRODUCTS=100000` is the catalogue of the README's 100,000-product runs).
use std::{hint::black_box, sync::Arc, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use domain::{
    aggregate::encode,
    catalog::{ProductEvent, VariantSpec},
    ids::{ProductId, Sku},
    money::{Currency, Money},
};
use eventstore::{EventStore, ExpectedVersion, NewEvent, StreamId, testsupport::TestSqlite};
use query_api::search::{SearchConfig, SearchIndex, SearchQuery};
use serde_json::json;
use tokio::runtime::Runtime;

const DEFAULT_PRODUCTS: usize = 3_000;

fn products() -> usize {
    std::env::var("SEARCH_BENCH_PRODUCTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_PRODUCTS)
}
const ADJECTIVES: [&str; 12] = [
    "oak", "walnut", "linen", "wool", "velvet", "brass", "steel", "ceramic", "leather", "bamboo",
    "marble", "cotton",
];
const NOUNS: [&str; 10] = [
    "chair", "table", "lamp", "cushion", "rug", "vase", "shelf", "mug", "sofa", "blanket",
];
const CATEGORIES: [&str; 6] = [
    "furniture",
    "lighting",
    "textiles",
    "decor",
    "kitchen",
    "storage",
];

fn product(i: usize) -> ProductEvent {
    let adjective = ADJECTIVES[i % ADJECTIVES.len()];
    let noun = NOUNS[(i / ADJECTIVES.len()) % NOUNS.len()];
    let colour = ["red", "green", "blue", "white", "black"][i % 5];
    let price = 500 + i64::try_from(i * 37 % 90_000).expect("price");
    ProductEvent::ProductCreated {
        id: ProductId::new(uuid::Uuid::now_v7()),
        name: format!("{adjective} {noun} {i}"),
        description: format!("A {colour} {noun} made of {adjective}, model number {i}"),
        categories: vec![CATEGORIES[i % CATEGORIES.len()].to_owned()],
        attributes: json!({"material": adjective, "colour": colour})
            .as_object()
            .cloned()
            .unwrap_or_default(),
        variants: vec![VariantSpec {
            sku: Sku::parse(&format!("SKU-{i}")).expect("sku"),
            price: Money::new(price, Currency::EUR),
            options: [("size".to_owned(), ["S", "M", "L"][i % 3].to_owned())].into(),
        }],
        created_at: chrono::Utc::now(),
    }
}

/// A catalogue indexed by the search projection; the folders live as long as the value.
struct Indexed {
    index: SearchIndex,
    _db: TestSqlite,
    _folder: tempfile::TempDir,
}

fn indexed(runtime: &Runtime, products: usize) -> Indexed {
    runtime.block_on(async {
        let db = TestSqlite::new().await;
        let store: Arc<dyn EventStore> = Arc::new(
            eventstore::sqlite::SqliteEventStore::open(&db.path)
                .await
                .expect("sqlite"),
        );
        for i in 0..products {
            let event = product(i);
            let ProductEvent::ProductCreated { id, .. } = &event else {
                unreachable!()
            };
            let (event_type, data) = encode(&event);
            store
                .append(
                    &StreamId::of("product", id),
                    ExpectedVersion::NoStream,
                    vec![NewEvent::new(event_type, 1, data)],
                )
                .await
                .expect("append");
        }
        let folder = tempfile::tempdir().expect("folder");
        let started = std::time::Instant::now();
        let (index, projection) = SearchIndex::open(folder.path()).expect("open");
        let head = store.head_position().await.expect("head");
        tokio::spawn(projection.run_until_stopped(
            store,
            SearchConfig::default(),
            std::future::pending(),
        ));
        assert!(
            tokio::time::timeout(Duration::from_secs(600), index.wait_for(head))
                .await
                .expect("indexed in time")
        );
        // Let the background merges end, as they would long before a catalogue this size
        // is browsed (the reader follows each one).
        let mut segments = index.segments();
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let now = index.segments();
            if now == segments {
                break;
            }
            segments = now;
        }
        let bytes: u64 = std::fs::read_dir(folder.path())
            .expect("index folder")
            .filter_map(|entry| entry.ok()?.metadata().ok())
            .map(|metadata| metadata.len())
            .sum();
        println!(
            "{products} products indexed in {:.1} s (merges included): {} segments, {:.1} MiB",
            started.elapsed().as_secs_f64(),
            segments,
            bytes as f64 / f64::from(1 << 20)
        );
        Indexed {
            index,
            _db: db,
            _folder: folder,
        }
    })
}

fn search(c: &mut Criterion) {
    let runtime = Runtime::new().expect("runtime");
    let products = products();
    let indexed = indexed(&runtime, products);
    let filtered = SearchQuery {
        category: Some("furniture".into()),
        min_price: Some(1_000),
        max_price: Some(50_000),
        ..SearchQuery::new("oak chair")
    };
    let queries = [
        ("one word", SearchQuery::new("walnut")),
        ("exact", SearchQuery::new("walnut table")),
        ("typos", SearchQuery::new("walnot tabel")),
        ("prefix", SearchQuery::new("velvet so")),
        ("filtered", filtered),
    ];
    let mut group = c.benchmark_group(format!("search {products} products"));
    for (name, query) in &queries {
        let found = indexed.index.search(query).expect("search").total;
        assert!(found > 0, "{name} finds something");
        group.bench_function(*name, |b| {
            b.iter(|| indexed.index.search(black_box(query)).expect("search"));
        });
    }
    group.finish();
}

criterion_group!(benches, search);
criterion_main!(benches);
