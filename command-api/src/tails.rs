//! Stream tails read together: the loads that arrive while one read is in flight share
//! the next round trip.
//!
//! Every command loads its aggregates from the cache and reads the events newer than the
//! cached version: a read that almost always finds nothing, but still a statement. An
//! order reads the tails of its lines' products (the prices must be current) and, when
//! they are not cached, of its stock. Under load that was two statements per order,
//! PostgreSQL's most frequent. Here one task reads the tails waiting, all in one
//! statement ([`EventStore::read_stream_tails`]); while it does, the next ones gather. A
//! load alone still costs one statement, as before, and one task hop.
//!
//! Used only where the store reads many tails in one round trip
//! ([`StoreCapabilities::batched_tail_reads`](eventstore::StoreCapabilities)); elsewhere
//! each load reads its own tail, concurrently with the others.
use std::sync::{Arc, OnceLock};

use eventstore::{EventStore, RecordedEvent, StoreError, StreamId};
use tokio::sync::{mpsc, oneshot};

/// Most tails in one read.
const MAX_TAILS: usize = 256;

type Reply = Result<Vec<RecordedEvent>, StoreError>;

struct Request {
    stream: StreamId,
    from_version: u64,
    reply: oneshot::Sender<Reply>,
}

/// Reads stream tails, batching concurrent reads when the store can. Cheap to clone.
#[derive(Clone)]
pub struct TailReader {
    store: Arc<dyn EventStore>,
    limit: usize,
    /// The reading task's queue; started at the first read (it needs a runtime).
    queue: Arc<OnceLock<mpsc::Sender<Request>>>,
}

impl TailReader {
    /// A reader over `store` of up to `limit` events per tail.
    pub fn new(store: Arc<dyn EventStore>, limit: usize) -> Self {
        Self {
            store,
            limit,
            queue: Arc::default(),
        }
    }

    /// What `read_stream(stream, from_version, limit)` answers.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn read(&self, stream: &StreamId, from_version: u64) -> Reply {
        if !self.store.capabilities().batched_tail_reads {
            return self
                .store
                .read_stream(stream, from_version, self.limit)
                .await;
        }
        let queue = self.queue.get_or_init(|| {
            let (queue, requests) = mpsc::channel(MAX_TAILS);
            tokio::spawn(run(self.store.clone(), requests, self.limit));
            queue
        });
        let (reply, answer) = oneshot::channel();
        let request = Request {
            stream: stream.clone(),
            from_version,
            reply,
        };
        let stopped = || StoreError::Corrupt("the tail reader stopped".into());
        queue.send(request).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run(store: Arc<dyn EventStore>, mut requests: mpsc::Receiver<Request>, limit: usize) {
    let mut waiting = Vec::with_capacity(MAX_TAILS);
    while requests.recv_many(&mut waiting, MAX_TAILS).await > 0 {
        let tails: Vec<(StreamId, u64)> = waiting
            .iter()
            .map(|r: &Request| (r.stream.clone(), r.from_version))
            .collect();
        match store.read_stream_tails(&tails, limit).await {
            Ok(read) => {
                for (request, events) in waiting.drain(..).zip(read) {
                    let _ = request.reply.send(Ok(events));
                }
            }
            Err(err) => {
                for request in waiting.drain(..) {
                    let _ = request.reply.send(Err(copy(&err)));
                }
            }
        }
    }
}

/// The same failure for each reader of the batch (store errors are not `Clone`).
fn copy(err: &StoreError) -> StoreError {
    match err {
        StoreError::Conflict {
            stream,
            expected,
            actual,
        } => StoreError::Conflict {
            stream: stream.clone(),
            expected: *expected,
            actual: *actual,
        },
        StoreError::Unavailable(source) => StoreError::unavailable(source.to_string()),
        StoreError::Corrupt(detail) => StoreError::Corrupt(detail.clone()),
        StoreError::Invalid(detail) => StoreError::Invalid(detail.clone()),
    }
}
