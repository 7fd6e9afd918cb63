//! Event store throughput: `cargo bench -p eventstore`.
//!
//! Appends (one event per append, and batches of 10) on one hot stream and across many
//! streams with 16 concurrent writers, stream reads, and subscription catch-up, for SQLite
//! and (when reachable) PostgreSQL. Criterion reports elements per second.
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use criterion::{
    BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main, measurement::WallTime,
};
use eventstore::{
    EventStore, ExpectedVersion, NewEvent, StreamId, Subscription,
    postgres::PostgresConfig,
    testsupport::{TestPostgres, TestSqlite},
};
use serde_json::json;
use tokio::runtime::Runtime;

const WRITERS: u64 = 16;

fn event() -> NewEvent {
    NewEvent::new(
        "StockReserved",
        1,
        json!({"orderId": uuid::Uuid::now_v7(), "qty": 2, "at": "2026-11-25T00:00:00Z"}),
    )
}

/// `iters` appends spread over 16 concurrent writers, each on its own stream.
async fn append_distinct(store: Arc<dyn EventStore>, iters: u64, batch: usize) -> Duration {
    let started = Instant::now();
    let tasks: Vec<_> = (0..WRITERS)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let stream = StreamId::of("stock", uuid::Uuid::now_v7().simple());
                for _ in 0..iters.div_ceil(WRITERS) {
                    let events = (0..batch).map(|_| event()).collect();
                    store
                        .append(&stream, ExpectedVersion::Any, events)
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("writer");
    }
    started.elapsed()
}

/// `iters` appends by one writer to one stream with an exact expected version.
async fn append_hot(store: Arc<dyn EventStore>, iters: u64) -> Duration {
    let stream = StreamId::of("stock", uuid::Uuid::now_v7().simple());
    let started = Instant::now();
    for version in 0..iters {
        store
            .append(&stream, ExpectedVersion::Exact(version), vec![event()])
            .await
            .expect("append");
    }
    started.elapsed()
}

fn bench_backend(
    group: &mut BenchmarkGroup<'_, WallTime>,
    runtime: &Runtime,
    name: &str,
    store: &Arc<dyn EventStore>,
) {
    group.throughput(Throughput::Elements(1));
    group.bench_function(
        format!("{name}/append_1_event_16_writers_distinct_streams"),
        |b| {
            b.to_async(runtime)
                .iter_custom(|iters| append_distinct(store.clone(), iters, 1));
        },
    );
    group.throughput(Throughput::Elements(10));
    group.bench_function(format!("{name}/append_batch_of_10_16_writers"), |b| {
        b.to_async(runtime)
            .iter_custom(|iters| append_distinct(store.clone(), iters, 10));
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function(format!("{name}/append_1_event_hot_stream_1_writer"), |b| {
        b.to_async(runtime)
            .iter_custom(|iters| append_hot(store.clone(), iters));
    });

    // Reads and catch-up over a log of 20,000 events.
    let stream = StreamId::of("stock", "bench-read");
    runtime.block_on(async {
        for _ in 0..20 {
            let events = (0..1000).map(|_| event()).collect();
            store
                .append(&stream, ExpectedVersion::Any, events)
                .await
                .expect("seed");
        }
    });
    group.throughput(Throughput::Elements(1000));
    group.bench_function(format!("{name}/read_stream_1000_events"), |b| {
        b.to_async(runtime)
            .iter(|| async { store.read_stream(&stream, 1, 1000).await.expect("read") });
    });
    let total = runtime.block_on(store.head_position()).expect("head");
    let count = runtime.block_on(async {
        let mut n = 0;
        let mut after = 0;
        loop {
            let page = store.read_all(after, 5000).await.expect("read");
            let Some(last) = page.last() else { break n };
            after = last.position;
            n += page.len() as u64;
        }
    });
    let _ = total;
    group.throughput(Throughput::Elements(count));
    group.bench_function(format!("{name}/subscription_catch_up"), |b| {
        b.to_async(runtime).iter(|| async {
            let mut subscription = Subscription::new(store.clone(), 0).batch_size(1000);
            let mut seen = 0;
            while seen < count {
                seen += subscription.next_batch().await.expect("catch up").len() as u64;
            }
        });
    });
}

fn eventstore_benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // Pools spawn their maintenance tasks on the current runtime when they are created.
    let _entered = runtime.enter();
    let mut group = c.benchmark_group("eventstore");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(5))
        .warm_up_time(Duration::from_secs(1));

    let sqlite = runtime.block_on(TestSqlite::new());
    let store: Arc<dyn EventStore> = Arc::new(sqlite.store);
    bench_backend(&mut group, &runtime, "sqlite", &store);

    if let Some(db) = runtime.block_on(TestPostgres::new()) {
        let config = PostgresConfig {
            max_connections: 20,
            ..PostgresConfig::default()
        };
        let store: Arc<dyn EventStore> = Arc::new(db.store(&config));
        bench_backend(&mut group, &runtime, "postgres", &store);
        runtime.block_on(async { drop(store) });
        drop(db);
    }
    group.finish();
}

criterion_group!(benches, eventstore_benches);
criterion_main!(benches);
