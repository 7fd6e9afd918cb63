//! The search projection: follows the log and keeps this node's index current.
//!
//! For each batch of events it collects the products the batch touches, folds each one's
//! state with the domain's own `evolve` (the events of the batch, preceded by the older
//! events of its stream when the batch does not start at version 1 — so the state is
//! exactly the one at the end of the batch), replaces its document (or removes it when
//! archived) and commits, with the batch's last position as the commit payload: the
//! documents and the checkpoint are one tantivy commit, so a kill at any moment resumes
//! from a checkpoint the index contents match. The reader is reloaded before the new
//! position is published, so a query that waited for the position sees the documents.
//!
//! A batch without product events writes nothing: the position moves in memory at once,
//! and on disk with the next commit, at the latest [`SearchConfig::idle_commit_interval`]
//! later or when the projection stops (after a crash those events are simply read again).
//! A failed batch is rolled back, logged, and retried after a back-off until it succeeds:
//! like every projection, it never skips an event.
use std::{
    collections::BTreeMap,
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use domain::{
    aggregate::{Aggregate, decode_borrowed},
    catalog::{Product, ProductEvent, ProductState},
    ids::ProductId,
};
use eventstore::{EventStore, Position, RecordedEvent, Subscription};
use tantivy::{
    Index, IndexReader, IndexWriter, TantivyDocument, Term, indexer::IndexWriterOptions,
};
use tokio::sync::watch;

use super::{
    Checkpoint,
    schema::{Fields, document},
};

/// The indexing writer's memory budget: tantivy's minimum (it flushes a segment when the
/// budget is used up, so this bounds the writer's memory, not the index size).
const WRITER_HEAP_BYTES: usize = 15_000_000;

/// How the search projection reads, commits and retries.
#[derive(Clone, Debug)]
pub struct SearchConfig {
    /// Most events read and indexed in one commit.
    pub batch_size: usize,
    /// How often to look for new events when no wake-up arrives.
    pub idle_poll: Duration,
    /// How long a position reached without product changes may stay uncommitted.
    pub idle_commit_interval: Duration,
    /// First back-off after a failure; doubles on each further failure.
    pub backoff_initial: Duration,
    /// Longest back-off.
    pub backoff_max: Duration,
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self {
            batch_size: 1_000,
            idle_poll: Duration::from_millis(250),
            idle_commit_interval: Duration::from_secs(5),
            backoff_initial: Duration::from_millis(100),
            backoff_max: Duration::from_secs(5),
        }
    }
}

/// The writing half of a search index: run it with
/// [`SearchProjection::run_until_stopped`]. There is one per index folder (tantivy locks
/// the folder for its writer).
pub struct SearchProjection {
    pub(super) index: Index,
    pub(super) reader: IndexReader,
    pub(super) fields: Fields,
    pub(super) writer: Option<IndexWriter>,
    pub(super) position: watch::Sender<Position>,
    pub(super) failure: Arc<Mutex<Option<String>>>,
    /// The checkpoint in the last commit.
    pub(super) committed: Position,
    /// When a position past `committed` was first published without a commit.
    pub(super) uncommitted_since: Option<Instant>,
}

/// A product's document after a batch: `None` removes it.
type Change = (ProductId, Option<TantivyDocument>);

impl SearchProjection {
    /// The position the index reflects.
    pub fn position(&self) -> Position {
        *self.position.borrow()
    }

    /// Follows `store` from the index's checkpoint until `shutdown` resolves. A batch
    /// being indexed is finished first; a position not yet committed is committed.
    pub async fn run_until_stopped(
        mut self,
        store: Arc<dyn EventStore>,
        config: SearchConfig,
        shutdown: impl Future<Output = ()>,
    ) {
        tokio::pin!(shutdown);
        let mut subscription = Subscription::new(store.clone(), self.position())
            .batch_size(config.batch_size)
            .idle_poll(config.idle_poll);
        let mut backoff = config.backoff_initial;
        tracing::info!(position = self.position(), "search projection running");
        'batches: loop {
            let batch = tokio::select! {
                biased;
                () = &mut shutdown => break,
                batch = subscription.next_batch() => batch,
            };
            let batch = match batch {
                Ok(batch) => batch,
                Err(err) => {
                    tracing::warn!(error = %err, "search projection cannot read the log; retrying");
                    self.fail(format!("cannot read the log: {err}"));
                    tokio::select! {
                        biased;
                        () = &mut shutdown => break,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(config.backoff_max);
                    continue;
                }
            };
            loop {
                match self.apply(&*store, &batch, &config).await {
                    Ok(()) => {
                        backoff = config.backoff_initial;
                        self.recovered();
                        break;
                    }
                    Err(err) => {
                        tracing::error!(error = ?err, "search batch failed and was rolled back; retrying it after a back-off");
                        self.fail(format!("{err:#}"));
                        tokio::select! {
                            biased;
                            () = &mut shutdown => break 'batches,
                            () = tokio::time::sleep(backoff) => {}
                        }
                        backoff = (backoff * 2).min(config.backoff_max);
                    }
                }
            }
        }
        if let Err(err) = self.commit_position().await {
            tracing::warn!(error = ?err, "search projection could not commit its last position");
        }
        tracing::info!(position = self.position(), "search projection stopped");
    }

    fn fail(&self, message: String) {
        *self
            .failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(message);
    }

    fn recovered(&self) {
        self.failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
    }

    fn publish(&self, position: Position) {
        self.position.send_if_modified(|current| {
            let changed = *current != position;
            *current = position;
            changed
        });
        #[allow(clippy::cast_precision_loss)] // a gauge; positions stay far below 2^52
        metrics::gauge!("emporium_search_index_position").set(position as f64);
    }

    /// Indexes one batch (consecutive events of the log, in order).
    async fn apply(
        &mut self,
        store: &dyn EventStore,
        batch: &[RecordedEvent],
        config: &SearchConfig,
    ) -> anyhow::Result<()> {
        let Some(last) = batch.last().map(|e| e.position) else {
            return Ok(());
        };
        let changes = self.changes(store, batch).await?;
        if changes.is_empty() {
            self.publish(last);
            let since = *self.uncommitted_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= config.idle_commit_interval {
                self.commit_position().await?;
            }
            return Ok(());
        }
        self.commit(changes, last).await
    }

    /// The new document of every product `batch` touches.
    async fn changes(
        &self,
        store: &dyn EventStore,
        batch: &[RecordedEvent],
    ) -> anyhow::Result<Vec<Change>> {
        let mut touched: BTreeMap<ProductId, Vec<&RecordedEvent>> = BTreeMap::new();
        for event in batch
            .iter()
            .filter(|e| e.stream.category() == Product::NAME)
        {
            let id = projector::runtime::stream_id(&event.stream, Product::NAME)?;
            touched.entry(id).or_default().push(event);
        }
        let mut changes = Vec::with_capacity(touched.len());
        for (id, events) in touched {
            let (state, version) = fold(store, &events)
                .await
                .with_context(|| format!("folding product {id}"))?;
            changes.push((id, document(&self.fields, id, &state, version)));
        }
        Ok(changes)
    }

    pub(super) fn take_writer(&mut self) -> anyhow::Result<IndexWriter> {
        if let Some(writer) = self.writer.take() {
            return Ok(writer);
        }
        let options = IndexWriterOptions::builder()
            .memory_budget_per_thread(WRITER_HEAP_BYTES)
            .num_worker_threads(1)
            .num_merge_threads(1)
            .build();
        Ok(self.index.writer_with_options(options)?)
    }

    /// Replaces the documents of `changes` and commits them with checkpoint `position`,
    /// then reloads the reader and publishes the position. On failure nothing is kept.
    pub(super) async fn commit(
        &mut self,
        changes: Vec<Change>,
        position: Position,
    ) -> anyhow::Result<()> {
        let mut writer = self.take_writer()?;
        let (reader, id_field) = (self.reader.clone(), self.fields.id);
        let payload = Checkpoint::new(position).to_payload()?;
        let (writer, outcome) = tokio::task::spawn_blocking(move || {
            let outcome = (|| -> anyhow::Result<()> {
                for (id, doc) in changes {
                    writer.delete_term(Term::from_field_text(id_field, &id.to_string()));
                    if let Some(doc) = doc {
                        writer.add_document(doc)?;
                    }
                }
                let mut prepared = writer.prepare_commit()?;
                prepared.set_payload(&payload);
                prepared.commit()?;
                reader.reload()?;
                Ok(())
            })();
            if outcome.is_err() {
                // Drops the operations of the failed batch; the retry starts clean.
                let _ = writer.rollback();
            }
            (writer, outcome)
        })
        .await
        .context("the indexing task panicked")?;
        self.writer = Some(writer);
        outcome?;
        self.committed = position;
        self.uncommitted_since = None;
        self.publish(position);
        Ok(())
    }

    /// Commits the published position if it is ahead of the last commit.
    async fn commit_position(&mut self) -> anyhow::Result<()> {
        let position = self.position();
        if position > self.committed {
            self.commit(Vec::new(), position).await?;
        }
        Ok(())
    }
}

/// The state of the product whose events in the batch are `events` (at least one, in
/// version order), as of the last of them, and that version.
async fn fold(
    store: &dyn EventStore,
    events: &[&RecordedEvent],
) -> anyhow::Result<(ProductState, u64)> {
    let first = events.first().context("no events")?;
    let older = if first.version > 1 {
        let count = first.version - 1;
        let older = store
            .read_stream(&first.stream, 1, usize::try_from(count)?)
            .await?;
        if older.len() as u64 != count {
            bail!(
                "{} has {} events before version {}, expected {count}",
                first.stream,
                older.len(),
                first.version
            );
        }
        older
    } else {
        Vec::new()
    };
    let mut state = ProductState::default();
    let mut expected = 1;
    for recorded in older.iter().chain(events.iter().copied()) {
        if recorded.version != expected {
            bail!(
                "{} skips from version {} to {}",
                recorded.stream,
                expected - 1,
                recorded.version
            );
        }
        expected += 1;
        let event: ProductEvent = decode_borrowed(
            &recorded.event_type,
            recorded.schema_version,
            &recorded.payload,
        )
        .with_context(|| {
            format!(
                "undecodable product event at position {}",
                recorded.position
            )
        })?;
        check(&state, &event)?;
        state = Product::evolve(state, &event);
    }
    Ok((state, expected - 1))
}

/// Refuses what no valid history holds, before `evolve` (which would panic on it).
fn check(state: &ProductState, event: &ProductEvent) -> anyhow::Result<()> {
    match event {
        ProductEvent::ProductCreated { .. } if state.exists() => bail!("product created twice"),
        ProductEvent::ProductCreated { .. } => Ok(()),
        _ if !state.exists() => bail!("event for a product that was never created"),
        ProductEvent::VariantPriceChanged { sku, .. } if state.variant(sku).is_none() => {
            bail!("price change of unknown variant {sku}")
        }
        _ => Ok(()),
    }
}
