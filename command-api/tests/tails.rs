//! Concurrent tail reads batched into shared round trips on PostgreSQL: each caller gets
//! its own stream's events, whatever else was read with them.
use std::sync::Arc;

use command_api::tails::TailReader;
use eventstore::{
    EventStore, ExpectedVersion, NewEvent, StreamId, postgres::PostgresConfig,
    testsupport::TestPostgres,
};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_reads_each_get_their_own_tail() {
    let Some(db) = TestPostgres::new().await else {
        return;
    };
    let store: Arc<dyn EventStore> = Arc::new(db.store(&PostgresConfig::default()));
    assert!(store.capabilities().batched_tail_reads);
    let streams: Vec<StreamId> = (0..40)
        .map(|i| StreamId::new(format!("stock-T{i}")).expect("stream"))
        .collect();
    for (i, stream) in streams.iter().enumerate() {
        let events = (0..=i % 5)
            .map(|n| NewEvent::new("Counted", 1, json!({ "stream": i, "n": n })))
            .collect();
        store
            .append(stream, ExpectedVersion::NoStream, events)
            .await
            .expect("append");
    }
    let reader = TailReader::new(store.clone(), 3);
    let reads = streams.iter().enumerate().flat_map(|(i, stream)| {
        let reader = reader.clone();
        (1..=3).map(move |from| {
            let (reader, stream) = (reader.clone(), stream.clone());
            tokio::spawn(async move { (i, from, reader.read(&stream, from).await) })
        })
    });
    for read in futures::future::join_all(reads.collect::<Vec<_>>()).await {
        let (i, from, events) = read.expect("task");
        let events = events.expect("read");
        let stored = (i % 5 + 1) as u64;
        let expected: Vec<u64> = (from..=stored).take(3).collect();
        assert_eq!(
            events.iter().map(|e| e.version).collect::<Vec<_>>(),
            expected,
            "stream {i} from {from}"
        );
        assert!(events.iter().all(|e| e.payload["stream"] == json!(i)));
    }
}
