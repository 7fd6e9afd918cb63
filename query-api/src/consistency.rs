//! Read-your-writes: a query that sends `X-Emporium-Min-Position: N` (or `?minPosition=N`)
//! is answered only once the projections it reads have reached position N, or with a 504
//! problem (`code: "timeout"`) after [`QueryConfig::min_position_wait`](crate::QueryConfig).
//! A position past the end of the log, which no write has answered with, is refused (400
//! `invalid_min_position`) after a quarter of a second instead of held for the whole wait.
//!
//! In one process the projector's position watch wakes the waiting request the moment the
//! batch commits. Without it, on PostgreSQL, the [`CheckpointFeed`] wakes it when its
//! reading (refreshed on every checkpoint notification) reaches N; otherwise, and while the
//! feed is down, the `projection_checkpoints` table is polled. Projections kept by this
//! node alone (the search index) are only ever waited on through their watch.
use std::{collections::BTreeMap, fmt, marker::PhantomData, sync::Arc, time::Duration};

use axum::{
    extract::{FromRef, FromRequestParts, Query},
    http::request::Parts,
};
use eventstore::EventStore;
use projector::{CatalogProjection, InventoryProjection, Positions};
use sqlx::AnyPool;
use tokio::{sync::watch, time::Instant};
use web::ApiError;

use crate::{
    checkpoint_feed::CheckpointFeed,
    checkpoint_reads::{CheckpointReads, Snapshot},
};

/// The header a client sends with the position a command answered with.
pub const MIN_POSITION_HEADER: &str = "x-emporium-min-position";

/// The query parameter equivalent of [`MIN_POSITION_HEADER`].
pub const MIN_POSITION_PARAM: &str = "minPosition";

/// Knows where the projections stand and waits for them.
#[derive(Clone, Debug)]
pub struct Consistency {
    pool: AnyPool,
    positions: Option<Positions>,
    /// Node-local projections: their position exists only here.
    local: Arc<BTreeMap<&'static str, watch::Receiver<u64>>>,
    /// The table's readings pushed to this node (PostgreSQL, no in-process projector).
    feed: Option<CheckpointFeed>,
    /// The table's readings, shared by concurrent requests (while there is no live feed).
    table: Arc<CheckpointReads>,
    wait: Duration,
    /// The event log, whose head bounds the positions there can be to wait for.
    log: Option<Log>,
}

/// The event log, for its head.
#[derive(Clone)]
struct Log(Arc<dyn EventStore>);

impl fmt::Debug for Log {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Log")
    }
}

impl Consistency {
    /// Waits at most `wait`, on `positions` when given, else on the checkpoint feed of
    /// `pool` (PostgreSQL) or by polling `pool`.
    pub fn new(pool: AnyPool, positions: Option<Positions>, wait: Duration) -> Self {
        Self {
            feed: positions
                .is_none()
                .then(|| CheckpointFeed::start(&pool))
                .flatten(),
            pool,
            positions,
            local: Arc::default(),
            table: Arc::default(),
            wait,
            log: None,
        }
    }

    /// The same, refusing positions past the head of the event log `store` (asked once a
    /// read has waited 250 ms).
    #[must_use]
    pub fn with_log(mut self, store: Arc<dyn EventStore>) -> Self {
        self.log = Some(Log(store));
        self
    }

    /// The same, also knowing the node-local projection `name` through its watch.
    #[must_use]
    pub fn with_local(mut self, name: &'static str, position: watch::Receiver<u64>) -> Self {
        Arc::make_mut(&mut self.local).insert(name, position);
        self
    }

    /// The checkpoint of projection `name`: the in-process watch when there is one, else
    /// the committed row.
    ///
    /// # Errors
    /// When the read models cannot be reached.
    pub async fn position(&self, name: &str) -> Result<u64, ApiError> {
        match self.held(name) {
            Some(position) => Ok(position),
            None => self.committed(name).await,
        }
    }

    /// The checkpoints of the two projections a view is read from, as [`Self::position`]
    /// gives them, reading the table at most once.
    ///
    /// # Errors
    /// When the read models cannot be reached.
    pub async fn position_pair(&self, names: [&str; 2]) -> Result<(u64, u64), ApiError> {
        let held = names.map(|name| self.held(name));
        if let [Some(first), Some(second)] = held {
            return Ok((first, second));
        }
        let snapshot = self.snapshot().await?;
        let [first, second] =
            [0, 1].map(|i| held[i].unwrap_or_else(|| snapshot.get(names[i]).copied().unwrap_or(0)));
        Ok((first, second))
    }

    /// The position this process holds for `name` without asking the table.
    fn held(&self, name: &str) -> Option<u64> {
        if let Some(local) = self.local.get(name) {
            return Some(*local.borrow());
        }
        self.positions.as_ref().and_then(|p| p.current(name))
    }

    /// The committed checkpoint of `name`, as of no earlier than this call.
    async fn committed(&self, name: &str) -> Result<u64, ApiError> {
        Ok(self.snapshot().await?.get(name).copied().unwrap_or(0))
    }

    /// Every committed checkpoint: the feed's latest reading while it is live, else a
    /// reading of the table begun no earlier than this call.
    async fn snapshot(&self) -> Result<Snapshot, ApiError> {
        if let Some(reading) = self.feed.as_ref().and_then(CheckpointFeed::current) {
            return Ok(reading);
        }
        self.table
            .fresh(&self.pool)
            .await
            .map_err(ApiError::Internal)
    }

    /// Returns once every projection in `names` has reached `min`.
    ///
    /// # Errors
    /// 400 (`invalid_min_position`) when `min` is past the head of the log; 504 (`timeout`)
    /// when they have not reached it within the configured wait.
    pub async fn wait_for(&self, names: &[&str], min: u64) -> Result<(), ApiError> {
        let now = Instant::now();
        let deadline = now + self.wait;
        // Reads that wait for a write just made are answered within this, without the
        // cost of asking the log for its head (on PostgreSQL, a look at the appends in
        // flight) on every one of them.
        let grace = (now + ASK_THE_LOG_AFTER).min(deadline);
        let mut behind = Vec::with_capacity(names.len());
        for name in names {
            if !self.wait_one(name, min, grace).await? {
                behind.push(*name);
            }
        }
        if behind.is_empty() {
            return Ok(());
        }
        self.refuse_past_the_log(min).await?;
        for name in behind {
            if !self.wait_one(name, min, deadline).await? {
                return Err(ApiError::GatewayTimeout(format!(
                    "the read models have not reached position {min} yet; retry later"
                )));
            }
        }
        Ok(())
    }

    /// 400 when `min` is past the log's head: the read models will never reach it, since no
    /// write has answered with it (the command's event is in the log before its answer). A
    /// log that cannot be read now refuses nothing: the wait decides.
    async fn refuse_past_the_log(&self, min: u64) -> Result<(), ApiError> {
        let Some(Log(store)) = &self.log else {
            return Ok(());
        };
        match store.head_position().await {
            Ok(head) if min > head => Err(ApiError::BadRequest {
                code: "invalid_min_position",
                detail: format!(
                    "position {min} is past the end of the event log ({head}): no write has answered with it"
                ),
            }),
            _ => Ok(()),
        }
    }

    async fn wait_one(&self, name: &str, min: u64, deadline: Instant) -> Result<bool, ApiError> {
        if let Some(local) = self.local.get(name) {
            let mut local = local.clone();
            // A stopped projection never gets there: same as too late.
            return Ok(tokio::time::timeout_at(
                deadline,
                local.wait_for(|position| *position >= min),
            )
            .await
            .is_ok_and(|reached| reached.is_ok()));
        }
        if let Some(positions) = self
            .positions
            .as_ref()
            .filter(|p| p.current(name).is_some())
        {
            match tokio::time::timeout_at(deadline, positions.wait_for(name, min)).await {
                Ok(true) => return Ok(true),
                Err(_) => return Ok(false),
                // The runner is gone: fall back to the table.
                Ok(false) => {}
            }
        }
        if let Some(feed) = &self.feed {
            let mut readings = feed.subscribe();
            let reached_or_down = readings.wait_for(|reading| {
                reading
                    .as_ref()
                    .is_none_or(|reading| reading.get(name).copied().unwrap_or(0) >= min)
            });
            match tokio::time::timeout_at(deadline, reached_or_down).await {
                Err(_) => return Ok(false),
                Ok(Ok(reading)) if reading.is_some() => return Ok(true),
                // The feed is down: poll the table.
                Ok(_) => {}
            }
        }
        // Waiters polling at once share reads (`CheckpointReads`), so the polls can be
        // short: each pause is time a reader waits past the commit.
        let mut pause = Duration::from_millis(5);
        loop {
            if self.committed(name).await? >= min {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            tokio::time::sleep(pause.min(deadline - now)).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }
}

/// How long a read waits for a position before it asks the log whether the position
/// exists at all (the projections' lag under load is well below this).
const ASK_THE_LOG_AFTER: Duration = Duration::from_millis(250);

/// Which projections a resource is read from.
pub trait ReadSide: Send + Sync + 'static {
    /// Their names.
    const PROJECTIONS: &'static [&'static str];
}

/// Product views: the catalogue, with availability from the inventory.
#[derive(Debug)]
pub struct ProductsRead;

impl ReadSide for ProductsRead {
    const PROJECTIONS: &'static [&'static str] =
        &[CatalogProjection::NAME, InventoryProjection::NAME];
}

/// Stock levels (and the catalogue, which knows SKUs that were never stocked).
#[derive(Debug)]
pub struct InventoryRead;

impl ReadSide for InventoryRead {
    const PROJECTIONS: &'static [&'static str] =
        &[InventoryProjection::NAME, CatalogProjection::NAME];
}

/// Search results: this node's own search index.
#[derive(Debug)]
pub struct SearchRead;

impl ReadSide for SearchRead {
    const PROJECTIONS: &'static [&'static str] = &[crate::search::SEARCH_PROJECTION];
}

/// Extractor that waits until the read side `R` has reached the position the request asks
/// for (header or query parameter; the larger wins). Holds that position, if any.
#[derive(Debug)]
pub struct MinPosition<R: ReadSide>(pub Option<u64>, PhantomData<R>);

fn bad_position() -> ApiError {
    ApiError::BadRequest {
        code: "invalid_min_position",
        detail: format!(
            "{MIN_POSITION_HEADER} and {MIN_POSITION_PARAM} must be an integer from 0 to {MAX_POSITION}"
        ),
    }
}

/// `text` as a position, if it is one there can be.
fn position(text: &str) -> Result<u64, ApiError> {
    text.trim()
        .parse::<u64>()
        .ok()
        .filter(|position| *position <= MAX_POSITION)
        .ok_or_else(bad_position)
}

/// The minimum position a request asks for, like [`MinPosition`], but waited for only when
/// the handler says so ([`AskedPosition::reached`]): after it has checked the rest of the
/// request, so bad input is refused at once rather than after the wait.
#[derive(Debug)]
pub struct AskedPosition<R: ReadSide>(pub Option<u64>, PhantomData<R>);

impl<R: ReadSide> AskedPosition<R> {
    /// Waits until the read side has reached the position asked for, if any.
    ///
    /// # Errors
    /// 504 when it does not in time.
    pub async fn reached(self, consistency: &Consistency) -> Result<(), ApiError> {
        match self.0 {
            Some(min) => consistency.wait_for(R::PROJECTIONS, min).await,
            None => Ok(()),
        }
    }
}

impl<S: Send + Sync, R: ReadSide> FromRequestParts<S> for AskedPosition<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Self(requested(parts)?, PhantomData))
    }
}

/// The largest position there can be: positions are PostgreSQL `BIGINT`s.
const MAX_POSITION: u64 = i64::MAX as u64;

/// The minimum position a request asks for.
///
/// # Errors
/// 400 when the header or parameter is not an integer from 0 to `i64::MAX`.
pub fn requested(parts: &Parts) -> Result<Option<u64>, ApiError> {
    let header = parts
        .headers
        .get(MIN_POSITION_HEADER)
        .map(|v| v.to_str().map_err(|_| bad_position()).and_then(position))
        .transpose()?;
    let pairs = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
        .map(|Query(pairs)| pairs)
        .unwrap_or_default();
    let query = pairs
        .iter()
        .filter(|(key, _)| key == MIN_POSITION_PARAM)
        .map(|(_, v)| position(v))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(header.into_iter().chain(query).max())
}

impl<S, R> FromRequestParts<S> for MinPosition<R>
where
    Consistency: FromRef<S>,
    S: Send + Sync,
    R: ReadSide,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let asked = AskedPosition::<R>(requested(parts)?, PhantomData);
        let min = asked.0;
        asked.reached(&Consistency::from_ref(state)).await?;
        Ok(Self(min, PhantomData))
    }
}
