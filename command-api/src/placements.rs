//! Group commit of order placements, on a store that appends to several streams in one
//! transaction.
//!
//! Every order placed in this process goes to one committer task. It takes the orders
//! waiting (up to [`MAX_BATCH`]), decides their reservations one after another on the
//! stock state the batch has reached so far, and appends the whole batch in one
//! transaction: each touched stock stream's reservations at the version the batch started
//! from, and each order's `OrderPlaced`. While one batch commits the next fills up, so
//! under load a transaction carries many orders, and orders for one hot SKU no longer
//! wait for each other's commits one at a time. Either every part of a batch is written
//! or none: an order is never left with reservations and no `OrderPlaced`.
//!
//! Stock state comes from the command service's cache without a read. A stream that moved
//! in another process (or through another command here) makes the append a conflict;
//! the batch is then decided again on fresh state after a short random pause, so two
//! command nodes contending for the same stock take turns. A shortage seen on cached
//! state is confirmed on fresh state before it is answered.
use std::collections::{BTreeMap, HashMap};

use chrono::Utc;
use domain::{
    aggregate::Aggregate,
    ids::{OrderId, Sku},
    inventory::{Stock, StockCommand, StockError, StockState},
    order::{Order, OrderEvent},
};
use eventstore::{AppendResult, ExpectedVersion, NewEvent, StoreError, StreamAppend, StreamId};
use tokio::sync::{mpsc, oneshot};
use web::ApiError;

use crate::{
    ordering::{Shortage, insufficient, order_stream},
    routes::inventory::stock_stream,
    service::{CommandMeta, CommandService, Loaded},
};

/// Most orders in one transaction.
pub const MAX_BATCH: usize = 64;

/// Attempts of one batch before its orders are answered 409.
const MAX_ATTEMPTS: usize = 20;

/// Orders that may wait for the committer before senders wait too.
const QUEUE: usize = 4 * MAX_BATCH;

/// One order to place: its reservations and its already decided `OrderPlaced`.
#[derive(Debug)]
pub struct Placement {
    /// The new order.
    pub id: OrderId,
    /// Units per SKU, each SKU once.
    pub lines: Vec<(Sku, u32)>,
    /// The order's events (`OrderPlaced`).
    pub events: Vec<OrderEvent>,
    /// Who placed it, and the request's correlation id.
    pub meta: CommandMeta,
}

type Reply = Result<AppendResult, ApiError>;

struct Waiting {
    placement: Placement,
    reply: oneshot::Sender<Reply>,
}

/// The handle to this process's order committer: cheap to clone.
#[derive(Clone, Debug)]
pub struct Placements {
    queue: mpsc::Sender<Waiting>,
}

impl std::fmt::Debug for Waiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.placement.fmt(f)
    }
}

impl Placements {
    /// Starts the committer task over `commands` (call inside a tokio runtime). It ends
    /// when the last handle is dropped.
    pub fn start(commands: CommandService) -> Self {
        let (queue, waiting) = mpsc::channel(QUEUE);
        tokio::spawn(run(commands, waiting));
        Self { queue }
    }

    /// Places the order: every reservation and `OrderPlaced` in one transaction.
    ///
    /// # Errors
    /// 409 `insufficient_stock` naming every short SKU; 409 `concurrency_conflict` when
    /// the stock kept changing elsewhere; 500 when the store fails.
    pub async fn place(&self, placement: Placement) -> Reply {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Waiting { placement, reply })
            .await
            .map_err(|_| ApiError::Internal(anyhow::anyhow!("the order committer stopped")))?;
        answer
            .await
            .map_err(|_| ApiError::Internal(anyhow::anyhow!("the order committer stopped")))?
    }
}

async fn run(commands: CommandService, mut waiting: mpsc::Receiver<Waiting>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while waiting.recv_many(&mut batch, MAX_BATCH).await > 0 {
        commit(&commands, std::mem::take(&mut batch)).await;
    }
}

/// What deciding a batch on some stock state came to.
#[derive(Default)]
struct Decided {
    /// Each touched stock stream: its version before the batch, its state after, and the
    /// reservations that lead there (encoded with each order's metadata).
    stocks: BTreeMap<StreamId, (u64, Loaded<StockState>, Vec<NewEvent>)>,
    /// Indexes of the orders whose reservations all fit.
    accepted: Vec<usize>,
    /// Indexes of the orders refused, with why.
    refused: Vec<(usize, Refusal)>,
}

enum Refusal {
    Short(Vec<Shortage>),
    Invalid(StockError),
}

async fn commit(commands: &CommandService, mut batch: Vec<Waiting>) {
    let mut fresh = false;
    for attempt in 0..MAX_ATTEMPTS {
        let decided = match decide(commands, &batch, fresh).await {
            Ok(decided) => decided,
            Err(err) => return answer_all(batch, |_| Err(copy(&err))),
        };
        let short = decided
            .refused
            .iter()
            .any(|(_, why)| matches!(why, Refusal::Short(_)));
        if short && !fresh {
            fresh = true;
            continue;
        }
        match append(commands, &batch, &decided).await {
            Ok(results) => return answer(commands, batch, decided, &results),
            Err(StoreError::Conflict { stream, .. }) if stream.category() == Order::NAME => {
                // Only a duplicate order id: that order fails alone, the rest go again.
                batch.retain_mut(|w| {
                    if order_stream(w.placement.id) != stream {
                        return true;
                    }
                    let (reply, _) = oneshot::channel();
                    let _ = std::mem::replace(&mut w.reply, reply).send(Err(ApiError::conflict(
                        "order_exists",
                        "an order with this id exists".to_owned(),
                    )));
                    false
                });
            }
            Err(StoreError::Conflict { .. }) => {
                fresh = true;
                let pause_ms = rand::random::<u64>() % (2 << attempt.min(5));
                tokio::time::sleep(std::time::Duration::from_millis(pause_ms)).await;
            }
            Err(err) => {
                let err = ApiError::from(err);
                return answer_all(batch, |_| Err(copy(&err)));
            }
        }
    }
    answer_all(batch, |_| {
        Err(ApiError::conflict(
            "concurrency_conflict",
            "the stock kept changing; retry the order".to_owned(),
        ))
    });
}

/// Decides every order of `batch` in turn on the stock state (cached, or `fresh` from the
/// store), each on what the orders before it left.
async fn decide(
    commands: &CommandService,
    batch: &[Waiting],
    fresh: bool,
) -> Result<Decided, ApiError> {
    let mut decided = Decided::default();
    for (index, waiting) in batch.iter().enumerate() {
        let placement = &waiting.placement;
        let mut reservations = Vec::with_capacity(placement.lines.len());
        let mut shortages = Vec::new();
        let mut invalid = None;
        for (sku, qty) in &placement.lines {
            let stream = stock_stream(sku);
            if !decided.stocks.contains_key(&stream) {
                let loaded = match commands.cached::<Stock>(&stream).filter(|_| !fresh) {
                    Some(loaded) => loaded,
                    None => commands.load::<Stock>(&stream).await?,
                };
                decided
                    .stocks
                    .insert(stream.clone(), (loaded.version, loaded, Vec::new()));
            }
            let state = &decided.stocks[&stream].1.state;
            let reserve = StockCommand::Reserve {
                order_id: placement.id,
                qty: *qty,
                now: Utc::now(),
            };
            match Stock::decide(state, reserve) {
                Ok(events) => reservations.push((stream, events)),
                Err(StockError::InsufficientStock { available, .. }) => shortages.push(Shortage {
                    sku: sku.to_string(),
                    requested: *qty,
                    available,
                }),
                Err(other) => invalid = Some(other),
            }
        }
        if let Some(err) = invalid {
            decided.refused.push((index, Refusal::Invalid(err)));
        } else if !shortages.is_empty() {
            decided.refused.push((index, Refusal::Short(shortages)));
        } else {
            for (stream, events) in reservations {
                let (_, loaded, encoded) = decided
                    .stocks
                    .get_mut(&stream)
                    .expect("loaded above for this order");
                loaded.state = events
                    .iter()
                    .fold(std::mem::take(&mut loaded.state), Stock::evolve);
                encoded.extend(
                    CommandService::part::<Stock>(
                        &stream,
                        ExpectedVersion::Any,
                        &events,
                        &placement.meta,
                    )
                    .events,
                );
            }
            decided.accepted.push(index);
        }
    }
    Ok(decided)
}

/// Appends the accepted orders of a decided batch: the stock parts first (in stream order),
/// then each accepted order's `OrderPlaced`, results in the same order.
async fn append(
    commands: &CommandService,
    batch: &[Waiting],
    decided: &Decided,
) -> Result<Vec<AppendResult>, StoreError> {
    if decided.accepted.is_empty() {
        return Ok(Vec::new());
    }
    let mut parts: Vec<StreamAppend> = decided
        .stocks
        .iter()
        .filter(|(_, (_, _, events))| !events.is_empty())
        .map(|(stream, (version, _, events))| StreamAppend {
            stream: stream.clone(),
            expected: ExpectedVersion::Exact(*version),
            events: events.clone(),
        })
        .collect();
    parts.extend(decided.accepted.iter().map(|&index| {
        let placement = &batch[index].placement;
        CommandService::part::<Order>(
            &order_stream(placement.id),
            ExpectedVersion::NoStream,
            &placement.events,
            &placement.meta,
        )
    }));
    commands.append_all(parts).await
}

/// Remembers the stock states the batch reached and answers every order.
fn answer(
    commands: &CommandService,
    batch: Vec<Waiting>,
    decided: Decided,
    results: &[AppendResult],
) {
    let Decided {
        stocks,
        accepted,
        refused,
    } = decided;
    let written: Vec<_> = stocks
        .into_iter()
        .filter(|(_, (_, _, events))| !events.is_empty())
        .collect();
    let (stock_results, order_results) = results.split_at(written.len().min(results.len()));
    for ((stream, (_, mut loaded, _)), result) in written.into_iter().zip(stock_results) {
        loaded.version = result.version;
        loaded.position = result.position;
        commands.remember::<Stock>(&stream, loaded);
    }
    // New orders are not remembered: an order's next command reads its stream's tail
    // anyway, one event, and thousands of fresh orders would crowd the stock and product
    // states every order needs out of the aggregate cache (and its memory).
    let mut outcomes: HashMap<usize, Reply> = HashMap::with_capacity(batch.len());
    for (&index, result) in accepted.iter().zip(order_results) {
        outcomes.insert(index, Ok(*result));
    }
    for (index, why) in refused {
        let refusal = match why {
            Refusal::Short(shortages) => insufficient(&shortages).unwrap_or_else(|err| err),
            Refusal::Invalid(err) => err.into(),
        };
        outcomes.insert(index, Err(refusal));
    }
    answer_all(batch, |index| {
        outcomes.remove(&index).unwrap_or_else(|| {
            Err(ApiError::Internal(anyhow::anyhow!(
                "order {index} of the batch got no outcome"
            )))
        })
    });
}

fn answer_all(batch: Vec<Waiting>, mut outcome: impl FnMut(usize) -> Reply) {
    for (index, waiting) in batch.into_iter().enumerate() {
        // The caller may have gone (a dropped request): its order stands all the same.
        let _ = waiting.reply.send(outcome(index));
    }
}

/// The same failure, for each order of the batch (errors are not `Clone`).
fn copy(err: &ApiError) -> ApiError {
    match err {
        ApiError::Unavailable(detail) => ApiError::Unavailable(detail.clone()),
        ApiError::Conflict { code, detail, .. } => ApiError::conflict(code, detail.clone()),
        other => ApiError::Internal(anyhow::anyhow!("{other:#}")),
    }
}
