//! The behaviour every backend must show, one public function per behaviour.
//!
//! Backends run the whole suite with [`contract_suite!`](crate::contract_suite), which
//! expands to one named test per case (`postgres::stale_expected_version_conflicts`).
//! Each case gets a store on an empty log of its own.
use std::{collections::HashSet, sync::Arc, time::Duration};

use serde_json::json;
use uuid::Uuid;

use crate::{
    EventMetadata, EventStore, ExpectedVersion, NewEvent, RecordedEvent, StoreError, StreamAppend,
    StreamId, Subscription, testsupport::TcpProxy,
};

/// How long a case waits for something that should happen promptly.
const PATIENCE: Duration = Duration::from_secs(30);

fn stream(name: &str) -> StreamId {
    StreamId::new(format!("{name}-{}", Uuid::now_v7().simple())).expect("stream name")
}

fn event(n: u64) -> NewEvent {
    NewEvent::new("Tested", 1, json!({ "n": n }))
}

fn events(range: std::ops::Range<u64>) -> Vec<NewEvent> {
    range.map(event).collect()
}

async fn read_everything(store: &dyn EventStore) -> Vec<RecordedEvent> {
    let mut all = Vec::new();
    loop {
        let after = all.last().map_or(0, |e: &RecordedEvent| e.position);
        let page = store.read_all(after, 1000).await.expect("read_all");
        if page.is_empty() {
            return all;
        }
        all.extend(page);
    }
}

/// Reads a subscription until `count` events have arrived, failing after [`PATIENCE`].
async fn collect(subscription: &mut Subscription, count: usize) -> Vec<RecordedEvent> {
    let mut seen = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        while seen.len() < count {
            match subscription.next_batch().await {
                Ok(batch) => seen.extend(batch),
                // Transient errors (an outage) are retried: the position did not move.
                Err(StoreError::Unavailable(_)) => tokio::task::yield_now().await,
                Err(err) => panic!("subscription failed: {err}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("subscription delivered {} of {count} events", seen.len()));
    seen
}

fn assert_strictly_increasing(events: &[RecordedEvent]) {
    for pair in events.windows(2) {
        assert!(
            pair[0].position < pair[1].position,
            "positions out of order: {} then {}",
            pair[0].position,
            pair[1].position
        );
    }
}

/// A first append creates the stream at version 1 and returns its position.
pub async fn append_to_new_stream(store: Arc<dyn EventStore>) {
    let s = stream("order");
    assert_eq!(store.stream_version(&s).await.unwrap(), 0);
    let result = store
        .append(&s, ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap();
    assert_eq!(result.version, 1);
    assert!(result.position > 0);
    let read = store.read_stream(&s, 1, 10).await.unwrap();
    assert_eq!(read.len(), 1);
    assert_eq!((read[0].version, read[0].position), (1, result.position));
    assert_eq!(read[0].stream, s);
    assert_eq!(read[0].event_type, "Tested");
    assert_eq!(*read[0].payload, json!({ "n": 1 }));
    assert_eq!(store.stream_version(&s).await.unwrap(), 1);
}

/// Versions are 1, 2, 3, … with no hole, across many appends and batch sizes.
pub async fn versions_are_contiguous(store: Arc<dyn EventStore>) {
    let s = stream("stock");
    let mut expected = 0;
    for batch in [1, 3, 1, 5, 2] {
        let result = store
            .append(
                &s,
                ExpectedVersion::Exact(expected),
                events(expected..expected + batch),
            )
            .await
            .unwrap();
        expected += batch;
        assert_eq!(result.version, expected);
    }
    let read = store.read_stream(&s, 1, 100).await.unwrap();
    let versions: Vec<u64> = read.iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=expected).collect::<Vec<_>>());
    assert_strictly_increasing(&read);
}

/// `Any`, `NoStream`, `StreamExists` and `Exact` accept and refuse exactly as documented.
pub async fn expected_version_kinds(store: Arc<dyn EventStore>) {
    let s = stream("account");
    let conflict = |r: Result<_, StoreError>| matches!(r, Err(StoreError::Conflict { .. }));
    assert!(conflict(
        store
            .append(&s, ExpectedVersion::StreamExists, vec![event(0)])
            .await
    ));
    assert!(conflict(
        store
            .append(&s, ExpectedVersion::Exact(1), vec![event(0)])
            .await
    ));
    assert_eq!(
        store
            .append(&s, ExpectedVersion::Any, vec![event(1)])
            .await
            .unwrap()
            .version,
        1
    );
    assert!(conflict(
        store
            .append(&s, ExpectedVersion::NoStream, vec![event(0)])
            .await
    ));
    assert_eq!(
        store
            .append(&s, ExpectedVersion::StreamExists, vec![event(2)])
            .await
            .unwrap()
            .version,
        2
    );
    assert_eq!(
        store
            .append(&s, ExpectedVersion::Exact(2), vec![event(3)])
            .await
            .unwrap()
            .version,
        3
    );
    assert_eq!(
        store
            .append(&s, ExpectedVersion::Any, vec![event(4)])
            .await
            .unwrap()
            .version,
        4
    );
    assert_eq!(store.stream_version(&s).await.unwrap(), 4);
}

/// A stale or future expected version conflicts, reports the actual version, and writes nothing.
pub async fn stale_expected_version_conflicts(store: Arc<dyn EventStore>) {
    let s = stream("product");
    store
        .append(&s, ExpectedVersion::NoStream, events(0..2))
        .await
        .unwrap();
    let head = store.head_position().await.unwrap();
    for wrong in [0, 1, 3, 10] {
        match store
            .append(&s, ExpectedVersion::Exact(wrong), events(10..13))
            .await
        {
            Err(StoreError::Conflict {
                actual, expected, ..
            }) => {
                assert_eq!(actual, 2);
                assert_eq!(expected, ExpectedVersion::Exact(wrong));
            }
            other => panic!("expected a conflict for version {wrong}, got {other:?}"),
        }
    }
    assert_eq!(store.stream_version(&s).await.unwrap(), 2);
    assert_eq!(store.read_stream(&s, 1, 100).await.unwrap().len(), 2);
    assert_eq!(store.head_position().await.unwrap(), head);
}

/// A batch is all or nothing: when one event of it cannot be stored, none is.
pub async fn batch_append_is_atomic(store: Arc<dyn EventStore>) {
    let (a, b) = (stream("order"), stream("order"));
    if !store.capabilities().unique_event_ids {
        // Without a log-wide id index no single event of a batch can fail alone; the
        // expected-version check (all or nothing) is covered by the conflict cases.
        let written = store
            .append(&b, ExpectedVersion::NoStream, events(1..11))
            .await
            .unwrap();
        assert_eq!(written.version, 10);
        return;
    }
    let taken = event(0);
    store
        .append(&a, ExpectedVersion::NoStream, vec![taken.clone()])
        .await
        .unwrap();
    let mut batch = events(1..5);
    batch.push(taken);
    assert!(
        store
            .append(&b, ExpectedVersion::NoStream, batch)
            .await
            .is_err()
    );
    assert_eq!(store.stream_version(&b).await.unwrap(), 0);
    assert!(store.read_stream(&b, 1, 10).await.unwrap().is_empty());
    assert_eq!(read_everything(store.as_ref()).await.len(), 1);

    let written = store
        .append(&b, ExpectedVersion::NoStream, events(1..11))
        .await
        .unwrap();
    assert_eq!(written.version, 10);
    let read = store.read_stream(&b, 1, 100).await.unwrap();
    assert_eq!(read.len(), 10);
    assert_eq!(read.last().unwrap().position, written.position);
    assert_strictly_increasing(&read);
}

/// Many writers race for the same versions of one stream: each version has exactly one
/// winner, every loser gets a conflict, and nothing is lost or duplicated.
pub async fn concurrent_appends_one_winner_per_version(store: Arc<dyn EventStore>) {
    let s = stream("stock");
    let writers: u64 = 8;
    let rounds: u64 = 10;
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let (store, s) = (store.clone(), s.clone());
        tasks.push(tokio::spawn(async move {
            let mut wins = Vec::new();
            let mut conflicts = 0;
            for round in 0..rounds {
                loop {
                    let version = store.stream_version(&s).await.unwrap();
                    if version >= rounds * writers {
                        return (wins, conflicts);
                    }
                    let e = event(writer * 1000 + round);
                    match store
                        .append(&s, ExpectedVersion::Exact(version), vec![e.clone()])
                        .await
                    {
                        Ok(r) => {
                            assert_eq!(r.version, version + 1);
                            wins.push(e.event_id);
                            break;
                        }
                        Err(StoreError::Conflict { .. }) => conflicts += 1,
                        Err(err) => panic!("unexpected error: {err}"),
                    }
                }
            }
            (wins, conflicts)
        }));
    }
    let mut won = HashSet::new();
    for task in tasks {
        let (wins, _conflicts) = task.await.unwrap();
        for id in wins {
            assert!(won.insert(id), "an event won twice");
        }
    }
    let read = store.read_stream(&s, 1, 10_000).await.unwrap();
    assert_eq!(read.len(), won.len());
    let versions: Vec<u64> = read.iter().map(|e| e.version).collect();
    assert_eq!(versions, (1..=read.len() as u64).collect::<Vec<_>>());
    let stored: HashSet<Uuid> = read.iter().map(|e| e.event_id).collect();
    assert_eq!(stored, won);
}

/// Re-sending an append whose events are stored returns the first outcome and writes nothing.
pub async fn duplicate_event_id_is_idempotent(store: Arc<dyn EventStore>) {
    let s = stream("order");
    let batch = events(0..3);
    let first = store
        .append(&s, ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    let again = store
        .append(&s, ExpectedVersion::NoStream, batch.clone())
        .await
        .unwrap();
    assert_eq!(first, again);
    let again_any = store.append(&s, ExpectedVersion::Any, batch).await.unwrap();
    assert_eq!(first, again_any);
    assert_eq!(store.read_stream(&s, 1, 10).await.unwrap().len(), 3);
    assert_eq!(read_everything(store.as_ref()).await.len(), 3);
}

/// Reading a stream from any version returns that suffix, in order, honouring the limit.
pub async fn read_stream_from_version(store: Arc<dyn EventStore>) {
    let s = stream("product");
    let other = stream("product");
    store
        .append(&s, ExpectedVersion::NoStream, events(0..5))
        .await
        .unwrap();
    store
        .append(&other, ExpectedVersion::NoStream, events(100..103))
        .await
        .unwrap();
    store
        .append(&s, ExpectedVersion::Exact(5), events(5..10))
        .await
        .unwrap();
    for from in 1..=11 {
        let read = store.read_stream(&s, from, 100).await.unwrap();
        let versions: Vec<u64> = read.iter().map(|e| e.version).collect();
        assert_eq!(versions, (from..=10).collect::<Vec<_>>());
        assert!(read.iter().all(|e| e.stream == s));
    }
    let limited = store.read_stream(&s, 3, 4).await.unwrap();
    assert_eq!(
        limited.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![3, 4, 5, 6]
    );
    assert!(
        store
            .read_stream(&stream("missing"), 1, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

/// Several stream tails read at once answer what each `read_stream` answers, in order.
pub async fn read_stream_tails_match_read_stream(store: Arc<dyn EventStore>) {
    let (a, b, missing) = (stream("product"), stream("stock"), stream("product"));
    store
        .append(&a, ExpectedVersion::NoStream, events(0..6))
        .await
        .unwrap();
    store
        .append(&b, ExpectedVersion::NoStream, events(10..13))
        .await
        .unwrap();
    let tails = vec![
        (b.clone(), 2),
        (missing.clone(), 1),
        (a.clone(), 1),
        (a.clone(), 5),
        (b.clone(), 4),
    ];
    for limit in [1, 2, 100] {
        let read = store.read_stream_tails(&tails, limit).await.unwrap();
        assert_eq!(read.len(), tails.len());
        for ((s, from), got) in tails.iter().zip(&read) {
            let want = store.read_stream(s, *from, limit).await.unwrap();
            let ids = |events: &[RecordedEvent]| -> Vec<(u64, Uuid)> {
                events.iter().map(|e| (e.version, e.event_id)).collect()
            };
            assert_eq!(ids(got), ids(&want), "{s} from {from}, limit {limit}");
            assert!(got.iter().all(|e| e.stream == *s));
        }
    }
    assert!(store.read_stream_tails(&[], 10).await.unwrap().is_empty());
}

/// The whole log reads from any position, in order, in pages of any size.
pub async fn read_all_from_any_position(store: Arc<dyn EventStore>) {
    for i in 0..20 {
        store
            .append(
                &stream("order"),
                ExpectedVersion::NoStream,
                events(i..i + 1 + i % 3),
            )
            .await
            .unwrap();
    }
    let all = read_everything(store.as_ref()).await;
    assert_eq!(all.len(), (0..20).map(|i| 1 + i % 3).sum::<u64>() as usize);
    assert_strictly_increasing(&all);
    assert_eq!(
        store.head_position().await.unwrap(),
        all.last().unwrap().position
    );
    for (i, e) in all.iter().enumerate() {
        let after = store.read_all(e.position, 7).await.unwrap();
        let expected: Vec<_> = all[i + 1..].iter().take(7).cloned().collect();
        assert_eq!(after, expected);
    }
    let from_zero = store.read_all(0, 5).await.unwrap();
    assert_eq!(from_zero, all[..5].to_vec());
}

/// Metadata, type and schema version survive the round trip.
pub async fn metadata_round_trips(store: Arc<dyn EventStore>) {
    let s = stream("order");
    let metadata = EventMetadata {
        actor: Some("account-42".into()),
        correlation_id: Some(Uuid::now_v7()),
        causation_id: Some(Uuid::now_v7()),
    };
    let e = NewEvent::new(
        "OrderPlaced",
        3,
        json!({"total": {"amount": 1999, "currency": "EUR"}}),
    )
    .with_metadata(metadata.clone());
    store
        .append(&s, ExpectedVersion::NoStream, vec![e.clone()])
        .await
        .unwrap();
    let read = store.read_stream(&s, 1, 1).await.unwrap().remove(0);
    assert_eq!(read.event_id, e.event_id);
    assert_eq!(read.event_type, "OrderPlaced");
    assert_eq!(read.schema_version, 3);
    assert_eq!(read.metadata, metadata);
    assert_eq!(*read.payload, e.payload);
    assert!((chrono::Utc::now() - read.recorded_at).num_seconds().abs() < 300);
}

/// Payloads of a mebibyte are stored and read back intact.
pub async fn large_payload_round_trips(store: Arc<dyn EventStore>) {
    let s = stream("product");
    let big = "é€😀x".repeat(1024 * 1024 / 10);
    let e = NewEvent::new(
        "Large",
        1,
        json!({ "blob": big, "nested": { "list": (0..1000).collect::<Vec<_>>() } }),
    );
    store
        .append(&s, ExpectedVersion::NoStream, vec![e.clone()])
        .await
        .unwrap();
    let read = store.read_stream(&s, 1, 1).await.unwrap();
    assert_eq!(*read[0].payload, e.payload);
}

/// Stream names may be any Unicode text.
pub async fn unicode_stream_names(store: Arc<dyn EventStore>) {
    let names = [
        "product-čaj-☕",
        "unique-email-zoë@example.com",
        "stock-日本語-SKU",
        "order-emoji-🚀-✓",
    ];
    for name in names {
        let s = StreamId::new(format!("{name}-{}", Uuid::now_v7().simple())).unwrap();
        store
            .append(&s, ExpectedVersion::NoStream, vec![event(1)])
            .await
            .unwrap();
        let read = store.read_stream(&s, 1, 10).await.unwrap();
        assert_eq!(read.len(), 1);
        assert_eq!(read[0].stream, s);
        assert_eq!(store.stream_version(&s).await.unwrap(), 1);
    }
    assert!(StreamId::new("").is_err());
    assert!(StreamId::new("bad\nname").is_err());
}

/// Several streams in one call: atomic when the backend says so; otherwise in order.
pub async fn multi_stream_append(store: Arc<dyn EventStore>) {
    let (a, b, c) = (stream("stock"), stream("stock"), stream("order"));
    store
        .append(&b, ExpectedVersion::NoStream, vec![event(0)])
        .await
        .unwrap();
    let ok = store
        .append_multi(vec![
            StreamAppend {
                stream: a.clone(),
                expected: ExpectedVersion::NoStream,
                events: vec![event(1)],
            },
            StreamAppend {
                stream: b.clone(),
                expected: ExpectedVersion::Exact(1),
                events: vec![event(2)],
            },
        ])
        .await
        .unwrap();
    assert_eq!(ok.iter().map(|r| r.version).collect::<Vec<_>>(), vec![1, 2]);
    assert!(ok[0].position < ok[1].position);
    if store.capabilities().atomic_multi_stream {
        let failed = store
            .append_multi(vec![
                StreamAppend {
                    stream: c.clone(),
                    expected: ExpectedVersion::NoStream,
                    events: vec![event(3)],
                },
                StreamAppend {
                    stream: b.clone(),
                    expected: ExpectedVersion::Exact(1),
                    events: vec![event(4)],
                },
            ])
            .await;
        assert!(
            matches!(failed, Err(StoreError::Conflict { .. })),
            "{failed:?}"
        );
        assert_eq!(
            store.stream_version(&c).await.unwrap(),
            0,
            "a failed multi-stream append wrote a part"
        );
        assert_eq!(store.stream_version(&b).await.unwrap(), 2);
    }
}

/// A multi-stream call with several events per part, every kind of expectation, and a
/// stream named twice: versions continue per stream and positions follow the parts.
pub async fn multi_stream_append_keeps_part_order(store: Arc<dyn EventStore>) {
    let (fresh, existing, any, twice) = (
        stream("order"),
        stream("stock"),
        stream("stock"),
        stream("stock"),
    );
    for s in [&existing, &twice] {
        store
            .append(s, ExpectedVersion::NoStream, events(0..2))
            .await
            .unwrap();
    }
    let parts = vec![
        StreamAppend {
            stream: fresh.clone(),
            expected: ExpectedVersion::NoStream,
            events: events(10..13),
        },
        StreamAppend {
            stream: existing.clone(),
            expected: ExpectedVersion::Exact(2),
            events: events(20..22),
        },
        StreamAppend {
            stream: any.clone(),
            expected: ExpectedVersion::Any,
            events: events(30..31),
        },
        StreamAppend {
            stream: twice.clone(),
            expected: ExpectedVersion::StreamExists,
            events: events(40..42),
        },
    ];
    let ids: Vec<Uuid> = parts
        .iter()
        .flat_map(|p| p.events.iter().map(|e| e.event_id))
        .collect();
    let results = store.append_multi(parts).await.unwrap();
    assert_eq!(
        results.iter().map(|r| r.version).collect::<Vec<_>>(),
        vec![3, 4, 1, 4]
    );
    assert!(results.windows(2).all(|w| w[0].position < w[1].position));
    let written: Vec<RecordedEvent> = read_everything(store.as_ref())
        .await
        .into_iter()
        .filter(|e| ids.contains(&e.event_id))
        .collect();
    assert_eq!(
        written.iter().map(|e| e.event_id).collect::<Vec<_>>(),
        ids,
        "positions follow the parts and their events"
    );
    assert_eq!(written.last().unwrap().position, results[3].position);

    // The same stream twice in one call: the second part sees the first.
    let again = store
        .append_multi(vec![
            StreamAppend {
                stream: twice.clone(),
                expected: ExpectedVersion::Exact(4),
                events: vec![event(50)],
            },
            StreamAppend {
                stream: twice.clone(),
                expected: ExpectedVersion::Exact(5),
                events: vec![event(51)],
            },
        ])
        .await
        .unwrap();
    assert_eq!(
        again.iter().map(|r| r.version).collect::<Vec<_>>(),
        vec![5, 6]
    );
}

/// Multi-stream calls racing for the same version of a shared stream: one wins, the rest
/// are conflicts, and no loser leaves any of its parts behind.
pub async fn concurrent_multi_stream_appends_one_winner(store: Arc<dyn EventStore>) {
    if !store.capabilities().atomic_multi_stream {
        return;
    }
    let shared = stream("stock");
    store
        .append(&shared, ExpectedVersion::NoStream, vec![event(0)])
        .await
        .unwrap();
    let racers: Vec<_> = (0..8)
        .map(|i| {
            let (store, shared) = (store.clone(), shared.clone());
            tokio::spawn(async move {
                let own = stream("order");
                let outcome = store
                    .append_multi(vec![
                        StreamAppend {
                            stream: own.clone(),
                            expected: ExpectedVersion::NoStream,
                            events: events(i * 10..i * 10 + 2),
                        },
                        StreamAppend {
                            stream: shared,
                            expected: ExpectedVersion::Exact(1),
                            events: vec![event(i)],
                        },
                    ])
                    .await;
                (own, outcome)
            })
        })
        .collect();
    let mut winners = 0;
    for racer in racers {
        let (own, outcome) = racer.await.unwrap();
        match outcome {
            Ok(results) => {
                winners += 1;
                assert_eq!(results[1].version, 2);
                assert_eq!(store.stream_version(&own).await.unwrap(), 2);
            }
            Err(StoreError::Conflict { .. }) => {
                assert_eq!(
                    store.stream_version(&own).await.unwrap(),
                    0,
                    "a losing multi-stream append wrote a part"
                );
            }
            Err(err) => panic!("a racer failed otherwise: {err}"),
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(store.stream_version(&shared).await.unwrap(), 2);
}

/// A subscription replays history, then follows appends made while it waits.
pub async fn subscription_catches_up_then_follows_live(store: Arc<dyn EventStore>) {
    let s = stream("order");
    store
        .append(&s, ExpectedVersion::NoStream, events(0..5))
        .await
        .unwrap();
    let mut subscription = Subscription::new(store.clone(), 0).batch_size(2);
    let history = collect(&mut subscription, 5).await;
    assert_eq!(
        history.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5]
    );
    let writer = {
        let (store, s) = (store.clone(), s.clone());
        tokio::spawn(async move {
            for v in 5..15 {
                store
                    .append(&s, ExpectedVersion::Exact(v), vec![event(v)])
                    .await
                    .unwrap();
            }
        })
    };
    let live = collect(&mut subscription, 10).await;
    writer.await.unwrap();
    assert_eq!(
        live.iter().map(|e| e.version).collect::<Vec<_>>(),
        (6..=15).collect::<Vec<_>>()
    );
    assert_eq!(subscription.position(), live.last().unwrap().position);
}

/// Under many concurrent appenders (single and multi-stream), a subscriber sees every
/// committed event exactly once, in strictly increasing position order.
pub async fn subscription_exactly_once_in_order_under_concurrent_appends(
    store: Arc<dyn EventStore>,
) {
    let writers = 16_u64;
    let per_writer = 40_u64;
    let mut subscription = Subscription::new(store.clone(), 0).batch_size(37);
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            let own = stream("stock");
            for i in 0..per_writer {
                if i % 4 == 3 {
                    let parts = vec![
                        StreamAppend {
                            stream: stream("order"),
                            expected: ExpectedVersion::NoStream,
                            events: events(i..i + 2),
                        },
                        StreamAppend {
                            stream: stream("stock"),
                            expected: ExpectedVersion::Any,
                            events: vec![event(i)],
                        },
                    ];
                    ids.extend(
                        parts
                            .iter()
                            .flat_map(|p| p.events.iter().map(|e| e.event_id)),
                    );
                    store.append_multi(parts).await.unwrap();
                } else {
                    let e = event(w * 1000 + i);
                    ids.push(e.event_id);
                    store
                        .append(&own, ExpectedVersion::Any, vec![e])
                        .await
                        .unwrap();
                }
            }
            ids
        }));
    }
    let mut appended = HashSet::new();
    // Every fourth step of a writer is a multi-stream append of three events.
    let expected_count = (writers * (per_writer + per_writer / 4 * 2)) as usize;
    let seen = collect(&mut subscription, expected_count).await;
    for task in tasks {
        appended.extend(task.await.unwrap());
    }
    assert_eq!(appended.len(), expected_count);
    assert_strictly_increasing(&seen);
    let delivered: HashSet<Uuid> = seen.iter().map(|e| e.event_id).collect();
    assert_eq!(delivered.len(), seen.len(), "an event was delivered twice");
    assert_eq!(
        delivered, appended,
        "the subscription missed or invented events"
    );
    assert_eq!(read_everything(store.as_ref()).await, seen);
}

/// A subscription started from a saved position delivers exactly what followed it.
pub async fn subscription_resumes_from_saved_position(store: Arc<dyn EventStore>) {
    for i in 0..10 {
        store
            .append(&stream("order"), ExpectedVersion::NoStream, vec![event(i)])
            .await
            .unwrap();
    }
    let mut first = Subscription::new(store.clone(), 0).batch_size(4);
    let part = first.next_batch().await.unwrap();
    assert_eq!(part.len(), 4);
    let saved = first.position();
    drop(first);
    for i in 10..15 {
        store
            .append(&stream("order"), ExpectedVersion::NoStream, vec![event(i)])
            .await
            .unwrap();
    }
    let mut resumed = Subscription::new(store.clone(), saved);
    let rest = collect(&mut resumed, 11).await;
    let all = read_everything(store.as_ref()).await;
    assert_eq!([part, rest].concat(), all);
}

/// The server goes away and comes back: operations fail with `Unavailable` while it is
/// away, then work again; a retried append is not duplicated and a subscriber loses nothing.
pub async fn recovers_after_outage(store: Arc<dyn EventStore>, proxy: &TcpProxy) {
    let s = stream("order");
    store
        .append(&s, ExpectedVersion::NoStream, vec![event(1)])
        .await
        .unwrap();
    let mut subscription = Subscription::new(store.clone(), 0).idle_poll(Duration::from_millis(50));
    assert_eq!(collect(&mut subscription, 1).await.len(), 1);

    proxy.cut();
    let during = event(2);
    match store
        .append(&s, ExpectedVersion::Exact(1), vec![during.clone()])
        .await
    {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("an append during the outage must fail as unavailable, got {other:?}"),
    }
    assert!(matches!(
        store.ping().await,
        Err(StoreError::Unavailable(_))
    ));

    proxy.restore();
    // The first attempts after the outage may meet connections the pool has not yet
    // found dead; the same events are retried until the store answers.
    let retried = tokio::time::timeout(PATIENCE, async {
        loop {
            match store
                .append(&s, ExpectedVersion::Exact(1), vec![during.clone()])
                .await
            {
                Ok(result) => return result,
                Err(StoreError::Unavailable(_)) => tokio::task::yield_now().await,
                Err(err) => panic!("unexpected error after the outage: {err}"),
            }
        }
    })
    .await
    .expect("the store did not recover");
    assert_eq!(retried.version, 2);
    let again = store
        .append(&s, ExpectedVersion::Exact(1), vec![during])
        .await
        .unwrap();
    assert_eq!(again, retried, "a retried append was written twice");
    let after = collect(&mut subscription, 1).await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0].version, 2);
    assert_eq!(store.read_stream(&s, 1, 10).await.unwrap().len(), 2);
}

/// Expands to one `#[tokio::test]` per contract case for a backend. `$setup` is an async
/// fn returning `Option<(Arc<dyn EventStore>, guard)>`; `None` means skipped.
#[macro_export]
macro_rules! contract_suite {
    ($backend:ident, $setup:path) => {
        $crate::contract_suite!(@cases $backend, $setup,
            append_to_new_stream, versions_are_contiguous, expected_version_kinds,
            stale_expected_version_conflicts, batch_append_is_atomic,
            concurrent_appends_one_winner_per_version, duplicate_event_id_is_idempotent,
            read_stream_from_version, read_stream_tails_match_read_stream,
            read_all_from_any_position, metadata_round_trips,
            large_payload_round_trips, unicode_stream_names, multi_stream_append,
            multi_stream_append_keeps_part_order, concurrent_multi_stream_appends_one_winner,
            subscription_catches_up_then_follows_live,
            subscription_exactly_once_in_order_under_concurrent_appends,
            subscription_resumes_from_saved_position);
    };
    (@cases $backend:ident, $setup:path, $($case:ident),+) => {
        mod $backend {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let Some((store, _guard)) = $setup().await else { return };
                    $crate::contract::$case(store).await;
                }
            )+
        }
    };
}
