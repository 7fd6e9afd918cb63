//! Full-text search (`GET /api/v1/search`): a tantivy index in a local folder that each
//! query node keeps up to date itself, as a projection of the log.
//!
//! [`SearchIndex::open`] opens the folder (creating it when missing) and returns the two
//! halves: the [`SearchIndex`] that queries it (cheap to clone, for the handlers) and the
//! [`SearchProjection`] that follows the log into it. The projection's checkpoint is
//! stored in the index itself (the tantivy commit payload), so documents and checkpoint
//! always commit together. A folder that cannot be read, or that was written with another
//! schema, is emptied and rebuilt from position 0; so is a folder that was deleted.
//!
//! Only ACTIVE products are in the index (archiving removes a product). Matching,
//! typo tolerance and scoring are described in [`query`]; the schema in `schema`.
//! The position the index has reached is a `tokio::sync::watch`, which read-your-writes
//! (`minPosition`) waits on like it waits on the in-process projector.
mod matching;
mod projection;
pub mod query;
mod schema;
mod threads;
pub mod views;

use std::{
    path::Path,
    sync::{Arc, Mutex},
};

use anyhow::{Context, bail};
use eventstore::Position;
use serde::{Deserialize, Serialize};
use tantivy::{
    DocAddress, Index, IndexReader, ReloadPolicy, Score, Searcher, TantivyDocument,
    collector::{Count, TopDocs},
    schema::Value,
    tokenizer::TextAnalyzer,
};
use tokio::sync::watch;
use web::{ApiError, health};

pub use projection::{SearchConfig, SearchProjection};
pub use query::SearchQuery;
use query::{FacetCounter, FacetTally, Filter, Filtered, MAX_CATEGORY_FACETS, PRICE_BUCKETS};
use schema::{Fields, SCHEMA_VERSION};
use threads::SearchThreads;
use views::{CategoryCount, PriceBucket, SearchFacets, SearchHit, SearchPage};

use crate::views::PriceRange;

/// Most bytes of search pages one node keeps (estimated from their text).
const RESULTS_CACHED_BYTES: u64 = 2 * 1024 * 1024;

/// The name the search index goes by in read-your-writes (its position is this node's
/// own, never in `projection_checkpoints`).
pub const SEARCH_PROJECTION: &str = "search";

/// The checkpoint stored as the payload of every commit.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Checkpoint {
    schema_version: u32,
    position: Position,
}

impl Checkpoint {
    fn new(position: Position) -> Self {
        Self {
            schema_version: SCHEMA_VERSION,
            position,
        }
    }

    fn to_payload(&self) -> anyhow::Result<String> {
        Ok(serde_json::to_string(self)?)
    }
}

/// The querying half of a search index: cheap to clone.
#[derive(Clone)]
pub struct SearchIndex {
    reader: IndexReader,
    fields: Fields,
    analyzer: TextAnalyzer,
    position: watch::Receiver<Position>,
    failure: Arc<Mutex<Option<String>>>,
    /// Where searches run: one thread per CPU (see [`threads`]).
    threads: SearchThreads,
    /// Pages already answered, by the reader generation they were read from: a page is
    /// answered again only while the reader is still at that generation, so it is the
    /// page a new search would give (any commit or merge starts a new generation).
    results: moka::sync::Cache<(u64, SearchQuery), Arc<SearchPage>>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex")
            .field("position", &*self.position.borrow())
            .finish_non_exhaustive()
    }
}

/// Opens the index in `dir`: `Ok(None)` when there is none, an error when it cannot be
/// used as it is.
fn open_existing(
    dir: &Path,
    schema: &tantivy::schema::Schema,
) -> anyhow::Result<Option<(Index, Position)>> {
    if !dir.join("meta.json").exists() {
        return Ok(None);
    }
    let index = Index::open_in_dir(dir)?;
    if index.schema() != *schema {
        bail!("the index was written with another schema");
    }
    let metas = index.load_metas()?;
    let position = match metas.payload.as_deref() {
        Some(payload) => {
            let checkpoint: Checkpoint =
                serde_json::from_str(payload).context("unreadable checkpoint")?;
            if checkpoint.schema_version != SCHEMA_VERSION {
                bail!(
                    "the index has schema version {}, this build writes {SCHEMA_VERSION}",
                    checkpoint.schema_version
                );
            }
            checkpoint.position
        }
        None if metas.segments.is_empty() => 0,
        None => bail!("the index has documents but no checkpoint"),
    };
    Ok(Some((index, position)))
}

/// Removes the files of an unusable index (only files directly in `dir`: tantivy keeps
/// nothing else there).
fn clear(dir: &Path) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            std::fs::remove_file(entry.path())
                .with_context(|| format!("removing {}", entry.path().display()))?;
        }
    }
    Ok(())
}

impl SearchIndex {
    /// Opens (or creates) the index in `dir` and returns its querying and writing halves.
    /// An unusable index is logged, emptied and rebuilt from position 0 by the projection.
    ///
    /// # Errors
    /// When the folder cannot be created or written, or another process holds its writer
    /// lock.
    pub fn open(dir: &Path) -> anyhow::Result<(Self, SearchProjection)> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the search folder {}", dir.display()))?;
        let (schema, fields) = Fields::schema();
        let existing = match open_existing(dir, &schema) {
            Ok(existing) => existing,
            Err(err) => {
                tracing::warn!(folder = %dir.display(), error = %format!("{err:#}"),
                    "the search index cannot be used; rebuilding it from the log");
                clear(dir)?;
                None
            }
        };
        let (index, position) = match existing {
            Some(existing) => existing,
            None => (
                Index::create_in_dir(dir, schema)
                    .with_context(|| format!("creating a search index in {}", dir.display()))?,
                0,
            ),
        };
        schema::register_tokenizer(&index);
        // The projection reloads the reader itself after each commit, before it publishes
        // the position; the reload on a change of the folder's meta file also picks up
        // the segments merged in the background, which no commit may follow for a long
        // time (after a bulk import, searches went on visiting every small segment).
        let reader = index
            .reader_builder()
            .reload_policy(ReloadPolicy::OnCommitWithDelay)
            .try_into()?;
        let (sender, receiver) = watch::channel(position);
        let failure = Arc::new(Mutex::new(None));
        let mut projection = SearchProjection {
            index,
            reader: reader.clone(),
            fields,
            writer: None,
            position: sender,
            failure: failure.clone(),
            committed: position,
            uncommitted_since: None,
        };
        // Take the folder's writer lock now: a second node on the same folder fails here.
        projection.writer = Some(projection.take_writer()?);
        tracing::info!(folder = %dir.display(), position, "search index opened");
        Ok((
            Self {
                reader,
                fields,
                analyzer: schema::analyzer(),
                position: receiver,
                failure,
                threads: SearchThreads::start(
                    std::thread::available_parallelism().map_or(2, usize::from),
                )
                .context("starting the search threads")?,
                results: moka::sync::Cache::builder()
                    .max_capacity(RESULTS_CACHED_BYTES)
                    .weigher(|(_, query): &(u64, SearchQuery), page: &Arc<SearchPage>| {
                        // The query counts too: up to 400 characters a client chooses.
                        let asked = query.q.len() + query.category.as_ref().map_or(0, String::len);
                        estimated_bytes(page)
                            .saturating_add(u32::try_from(asked).unwrap_or(u32::MAX))
                    })
                    .build(),
            },
            projection,
        ))
    }

    /// The log position the index reflects.
    pub fn position(&self) -> Position {
        *self.position.borrow()
    }

    /// The position as a watch, updated after every indexed batch.
    pub fn subscribe(&self) -> watch::Receiver<Position> {
        self.position.clone()
    }

    /// Waits until the index reflects `min`; `false` when its projection has stopped
    /// first. Add a timeout around it.
    pub async fn wait_for(&self, min: Position) -> bool {
        let mut position = self.position.clone();
        position.wait_for(|p| *p >= min).await.is_ok()
    }

    /// How many products the index holds.
    pub fn len(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// How many segments the index is in (each search visits every one).
    pub fn segments(&self) -> usize {
        self.reader.searcher().segment_readers().len()
    }

    /// Whether the index holds no product.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `Err` when the projection has stopped or its last batch failed (with why).
    ///
    /// # Errors
    /// The reason, with the position reached.
    pub fn health(&self) -> Result<(), String> {
        let position = self.position();
        if self.position.has_changed().is_err() {
            return Err(format!(
                "the search projection is not running (position {position})"
            ));
        }
        match self
            .failure
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
        {
            Some(failure) => Err(format!(
                "indexing is failing at position {position}: {failure}"
            )),
            None => Ok(()),
        }
    }

    /// A readiness check that degrades (never fails) the node when search is unhealthy.
    pub fn readiness_check(&self) -> health::Check {
        let index = self.clone();
        health::Check::degrading("searchIndex", move || {
            let index = index.clone();
            async move { index.health() }
        })
    }

    /// Answers `query`: the page already answered from the reader's current generation,
    /// or a search on one of the search threads.
    ///
    /// # Errors
    /// As [`Self::search`].
    pub async fn run(&self, query: SearchQuery) -> Result<Arc<SearchPage>, ApiError> {
        let searcher = self.reader.searcher();
        let key = (searcher.generation().generation_id(), query);
        if let Some(page) = self.results.get(&key) {
            metrics::counter!("emporium_search_results_cached_total", "outcome" => "hit")
                .increment(1);
            return Ok(page);
        }
        metrics::counter!("emporium_search_results_cached_total", "outcome" => "miss").increment(1);
        let index = self.clone();
        let (generation, query) = key;
        let (query, page) = self
            .threads
            .run(move || {
                let page = index.search_on(&searcher, &query);
                (query, page)
            })
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
        let page = Arc::new(page?);
        self.results.insert((generation, query), page.clone());
        Ok(page)
    }

    /// Runs `query` (blocking: call it off the async threads, or use [`Self::run`]).
    ///
    /// # Errors
    /// 400 when `q` has more than [`query::MAX_WORDS`] words; 500 when the index cannot be
    /// read.
    pub fn search(&self, query: &SearchQuery) -> Result<SearchPage, ApiError> {
        self.search_on(&self.reader.searcher(), query)
    }

    fn search_on(&self, searcher: &Searcher, query: &SearchQuery) -> Result<SearchPage, ApiError> {
        let words = schema::words(&mut self.analyzer.clone(), &query.q);
        if words.len() > query::MAX_WORDS {
            return Err(ApiError::invalid_query(format!(
                "q has more than {} words",
                query::MAX_WORDS
            )));
        }
        let mut page = SearchPage {
            items: Vec::new(),
            page: query.page,
            page_size: query.page_size,
            total: 0,
            facets: facets(FacetTally::default()),
        };
        if words.is_empty() {
            return Ok(page);
        }
        let text = query::text_query(&self.fields, &words);
        let top = TopDocs::with_limit(query.page_size as usize)
            .and_offset(query.offset())
            .order_by(query::ranking());
        let filtered = Filtered {
            filter: Arc::new(Filter {
                category: query.category.clone(),
                min_price: query.min_price,
                max_price: query.max_price,
            }),
            inner: (top, Count),
        };
        let (tally, (hits, total)) = searcher
            .search(&*text, &(FacetCounter, filtered))
            .map_err(|e| ApiError::Internal(e.into()))?;
        page.items = hits
            .into_iter()
            .map(|((score, _, _), address)| self.hit(searcher, address, score))
            .collect::<anyhow::Result<_>>()
            .map_err(ApiError::Internal)?;
        page.total = total as u64;
        page.facets = facets(tally);
        Ok(page)
    }

    fn hit(
        &self,
        searcher: &Searcher,
        address: DocAddress,
        score: Score,
    ) -> anyhow::Result<SearchHit> {
        let doc: TantivyDocument = searcher.doc(address)?;
        let f = &self.fields;
        let text = |field| {
            doc.get_first(field)
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default()
        };
        let int = |field| doc.get_first(field).and_then(|v| v.as_i64()).unwrap_or(0);
        Ok(SearchHit {
            id: text(f.id),
            name: text(f.name),
            description: text(f.description),
            categories: doc
                .get_all(f.category)
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            price_range: PriceRange {
                min: int(f.min_price),
                max: int(f.max_price),
                currency: text(f.currency),
            },
            version: doc
                .get_first(f.version)
                .and_then(|v| v.as_u64())
                .unwrap_or(0),
            score,
        })
    }
}

/// About how many bytes `page` holds: its text and a little per hit and facet.
fn estimated_bytes(page: &SearchPage) -> u32 {
    let hits: usize = page
        .items
        .iter()
        .map(|hit| {
            128 + hit.id.len()
                + hit.name.len()
                + hit.description.len()
                + hit.categories.iter().map(|c| 32 + c.len()).sum::<usize>()
        })
        .sum();
    let facets: usize = page
        .facets
        .categories
        .iter()
        .map(|c| 48 + c.value.len())
        .sum();
    u32::try_from(256 + hits + facets).unwrap_or(u32::MAX)
}

fn facets(tally: FacetTally) -> SearchFacets {
    let mut categories: Vec<CategoryCount> = tally
        .categories
        .into_iter()
        .map(|(value, count)| CategoryCount { value, count })
        .collect();
    categories.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
    categories.truncate(MAX_CATEGORY_FACETS);
    SearchFacets {
        categories,
        price: PRICE_BUCKETS
            .iter()
            .zip(tally.price)
            .map(|(&(from, to), count)| PriceBucket { from, to, count })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_folder_has_one_writer() {
        let folder = tempfile::tempdir().unwrap();
        let (index, _projection) = SearchIndex::open(folder.path()).unwrap();
        assert_eq!(index.position(), 0);
        assert!(index.is_empty());
        let second = SearchIndex::open(folder.path());
        assert!(
            second.is_err(),
            "a second writer on the same folder is refused"
        );
    }

    #[tokio::test]
    async fn a_page_is_answered_again_only_from_the_same_generation() {
        let folder = tempfile::tempdir().unwrap();
        let (index, mut projection) = SearchIndex::open(folder.path()).unwrap();
        let query = SearchQuery::new("lamp");
        let generation = || index.reader.searcher().generation().generation_id();
        // The reader's watcher may reload it once more after the index was created (a new
        // generation, so a miss): the pair that ran within one generation is the one to judge.
        let mut within_one = None;
        for _ in 0..100 {
            let before = generation();
            let first = index.run(query.clone()).await.unwrap();
            let again = index.run(query.clone()).await.unwrap();
            if generation() == before {
                assert!(Arc::ptr_eq(&first, &again), "answered from the cache");
                within_one = Some(first);
                break;
            }
        }
        let first = within_one.expect("the reader kept reloading with no commit");
        // A commit reloads the reader: a new generation, searched anew.
        projection.commit(Vec::new(), 1).await.unwrap();
        let after = index.run(query).await.unwrap();
        assert!(!Arc::ptr_eq(&first, &after), "searched again");
        assert_eq!(*first, *after);
    }

    #[test]
    fn the_checkpoint_payload_round_trips() {
        let payload = Checkpoint::new(42).to_payload().unwrap();
        assert_eq!(payload, r#"{"schemaVersion":1,"position":42}"#);
        let back: Checkpoint = serde_json::from_str(&payload).unwrap();
        assert_eq!(back.position, 42);
    }
}
