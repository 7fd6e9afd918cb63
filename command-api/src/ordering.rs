//! The order flow (DESIGN.md, "Placing an order"), and the stock work that follows
//! cancellations and shipments.
//!
//! 1. Validate the lines and price them from the product streams (never from the client).
//! 2. Reserve each SKU in SKU order (two orders cannot deadlock each other), each
//!    reservation a separate append with its expected version, retried on conflict.
//!    On a shortage, release what this order reserved and answer 409 with every short SKU.
//! 3. Append `OrderPlaced`.
//!
//! That path runs on every backend, including those without multi-stream transactions. A
//! process that dies between 2 and 3 leaves reservations without an order; the
//! reservation sweeper releases them after a timeout. Where the store appends to several
//! streams in one transaction (SQLite, PostgreSQL), 2 and 3 are one append instead, shared
//! with the other orders waiting at that moment ([`crate::placements`]): no reservation
//! is ever written without its order.
use chrono::Utc;
use domain::{
    aggregate::Aggregate,
    catalog::Product,
    ids::{AccountId, OrderId, ProductId, Sku},
    inventory::{Stock, StockCommand, StockError},
    money::Money,
    order::{Order, OrderCommand, OrderState, PricedLine, ShippingAddress, StockEffect},
    validation::{FieldError, Invalid},
};
use eventstore::StreamId;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use web::{ApiError, Authorized, Customers};

use crate::{
    claims::{KeyKind, UniqueKey},
    idempotency::KeyedRequest,
    placements::Placement,
    routes::{CommandAnswer, inventory::stock_stream},
    service::{CommandMeta, Executed},
    state::AppState,
};

/// One requested line, as parsed from the request.
#[derive(Clone, Debug)]
pub struct RequestedLine {
    /// The variant.
    pub sku: Sku,
    /// Units wanted (1–1000).
    pub quantity: u32,
}

/// A SKU the order could not get enough of.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Shortage {
    /// The SKU.
    pub sku: String,
    /// Units requested.
    pub requested: u32,
    /// Units available when the order was tried.
    pub available: i64,
}

/// The order stream of `id`.
pub fn order_stream(id: OrderId) -> StreamId {
    StreamId::of(Order::NAME, id)
}

/// A variant as the catalogue lists it now.
#[derive(Clone, Debug)]
pub struct Listing {
    /// Its product.
    pub product_id: ProductId,
    /// The product's name.
    pub name: String,
    /// The variant's current price.
    pub unit_price: Money,
}

/// What the catalogue says about a SKU now, read from its product stream.
#[derive(Clone, Debug)]
pub enum Offer {
    /// On sale.
    OnSale(Listing),
    /// Its product is archived: no longer sold.
    Archived(Listing),
    /// No product has this SKU.
    Unknown,
}

/// The current offer for `sku`: the SKU's claim names its product, whose stream is
/// authoritative for name, price and status.
///
/// The claim is taken from the aggregate cache when it is there, without reading the log:
/// a product keeps the claims of its SKUs for good (they are released only when the
/// command that would have given the product the SKU failed), so a cached owner whose
/// product, read fresh, has the variant still owns it. Otherwise the claim is read anew.
pub async fn offer(state: &AppState, sku: &Sku) -> Result<Offer, ApiError> {
    let claim = KeyKind::Sku.stream(sku.as_str());
    if let Some(owner) = state
        .commands
        .cached::<UniqueKey>(&claim)
        .and_then(|loaded| loaded.state)
    {
        let offer = offer_of(state, &owner, sku).await?;
        if !matches!(offer, Offer::Unknown) {
            return Ok(offer);
        }
    }
    match state.claims.owner(KeyKind::Sku, sku.as_str()).await? {
        Some(owner) => offer_of(state, &owner, sku).await,
        None => Ok(Offer::Unknown),
    }
}

/// What the product stream `owner` says about its variant `sku` now.
async fn offer_of(state: &AppState, owner: &str, sku: &Sku) -> Result<Offer, ApiError> {
    let product_stream = StreamId::new(owner).map_err(ApiError::from)?;
    let product = state.commands.load::<Product>(&product_stream).await?.state;
    Ok(match (product.id, product.variant(sku)) {
        (Some(product_id), Some(variant)) => {
            let listing = Listing {
                product_id,
                name: product.name.clone(),
                unit_price: variant.price,
            };
            if product.is_archived() {
                Offer::Archived(listing)
            } else {
                Offer::OnSale(listing)
            }
        }
        _ => Offer::Unknown,
    })
}

/// Prices every line from the catalogue; unknown or archived SKUs are field errors.
async fn price_lines(
    state: &AppState,
    lines: &[RequestedLine],
) -> Result<Vec<PricedLine>, ApiError> {
    // All lines at once: their product tails then go to the store in one batched read
    // (`crate::tails`) instead of one read after another.
    let offers =
        futures::future::try_join_all(lines.iter().map(|line| offer(state, &line.sku))).await?;
    let mut priced = Vec::with_capacity(lines.len());
    let mut errors = Vec::new();
    for (i, (line, offer)) in lines.iter().zip(offers).enumerate() {
        let field = format!("lines[{i}].sku");
        match offer {
            Offer::OnSale(listing) => priced.push(PricedLine {
                sku: line.sku.clone(),
                product_id: listing.product_id,
                name: listing.name,
                quantity: line.quantity,
                unit_price: listing.unit_price,
            }),
            Offer::Archived(_) => errors.push(FieldError::new(
                field,
                format!("{} is no longer sold", line.sku),
            )),
            Offer::Unknown => errors.push(FieldError::new(
                field,
                format!("no product has SKU {}", line.sku),
            )),
        }
    }
    if errors.is_empty() {
        Ok(priced)
    } else {
        Err(Invalid(errors).into())
    }
}

/// The id a new order gets: its request's, when it came with an `Idempotency-Key` (so
/// every run of the request names the same order), else a fresh one.
pub fn new_order_id(keyed: Option<KeyedRequest>) -> OrderId {
    OrderId::new(KeyedRequest::id_or_new(keyed))
}

/// The answer of the order a keyed request placed on an earlier run that died before its
/// answer was stored, if it placed one: the run after the crash answers with that order
/// instead of placing another. Only such runs read the order stream.
pub async fn placed_before(
    state: &AppState,
    user: &Authorized<Customers>,
    keyed: Option<KeyedRequest>,
) -> Result<Option<CommandAnswer>, ApiError> {
    let Some(keyed) = keyed.filter(|keyed| keyed.retaken) else {
        return Ok(None);
    };
    let id = new_order_id(Some(keyed));
    let order = state.commands.load::<Order>(&order_stream(id)).await?;
    // The id came from this caller's own key, so the order is theirs; checked anyway.
    Ok((order.state.customer_id == Some(user.id))
        .then(|| CommandAnswer::new(id, order.version, order.position)))
}

/// Places an order for the calling customer (the type says the role was checked), named
/// by [`new_order_id`]: the one path behind both `POST /api/v1/orders` and
/// `POST /api/v1/cart/checkout`.
pub async fn place_customer_order(
    state: &AppState,
    user: &Authorized<Customers>,
    keyed: Option<KeyedRequest>,
    lines: &[RequestedLine],
    shipping_address: ShippingAddress,
) -> Result<CommandAnswer, ApiError> {
    if let Some(answer) = placed_before(state, user, keyed).await? {
        return Ok(answer);
    }
    let id = new_order_id(keyed);
    let meta = CommandMeta::for_request(format!("account-{}", user.id), keyed);
    let placed = place_order(state, id, user.id, lines, shipping_address, &meta).await?;
    Ok(CommandAnswer::new(id, placed.version, placed.position))
}

/// Places an order for `customer`: prices, reservations in SKU order, then `OrderPlaced`.
pub async fn place_order(
    state: &AppState,
    id: OrderId,
    customer: AccountId,
    lines: &[RequestedLine],
    shipping_address: ShippingAddress,
    meta: &CommandMeta,
) -> Result<Executed<Order>, ApiError> {
    let priced = price_lines(state, lines).await?;
    let place = OrderCommand::Place {
        id,
        customer_id: customer,
        lines: priced,
        shipping_address,
        now: Utc::now(),
    };
    // Every order rule is checked before any stock is touched.
    let placed_events = Order::decide(&OrderState::default(), place.clone())?;

    let mut by_sku: Vec<&RequestedLine> = lines.iter().collect();
    by_sku.sort_by(|a, b| a.sku.cmp(&b.sku));
    if let Some(placements) = &state.placements {
        let placement = Placement {
            id,
            lines: by_sku.iter().map(|l| (l.sku.clone(), l.quantity)).collect(),
            events: placed_events,
            meta: meta.clone(),
        };
        let events = placement.events.clone();
        let appended = placements.place(placement).await?;
        return Ok(Executed {
            state: events.iter().fold(OrderState::default(), Order::evolve),
            events,
            version: appended.version,
            position: appended.position,
        });
    }
    let mut reserved: Vec<Sku> = Vec::new();
    let mut shortages = Vec::new();
    for line in &by_sku {
        if !shortages.is_empty() {
            // Already failing: only find out which other SKUs are short too.
            let stock = state
                .commands
                .load::<Stock>(&stock_stream(&line.sku))
                .await?
                .state;
            if stock.available() < i64::from(line.quantity) {
                shortages.push(Shortage {
                    sku: line.sku.to_string(),
                    requested: line.quantity,
                    available: stock.available(),
                });
            }
            continue;
        }
        let reserve = StockCommand::Reserve {
            order_id: id,
            qty: line.quantity,
            now: Utc::now(),
        };
        let outcome = state
            .commands
            .execute::<Stock, _>(&stock_stream(&line.sku), meta, |s| {
                match Stock::decide(s, reserve.clone()) {
                    Err(StockError::InsufficientStock { available, .. }) => {
                        Err(short(&line.sku, line.quantity, available))
                    }
                    other => Ok(other?),
                }
            })
            .await;
        match outcome {
            Ok(_) => reserved.push(line.sku.clone()),
            Err(ApiError::Conflict {
                code: "insufficient_stock",
                extra: Some(extra),
                ..
            }) => {
                shortages.push(
                    serde_json::from_value(Value::Object(extra))
                        .map_err(|e| ApiError::Internal(e.into()))?,
                );
            }
            Err(err) => {
                release(state, id, &reserved, meta).await?;
                return Err(err);
            }
        }
    }
    if !shortages.is_empty() {
        release(state, id, &reserved, meta).await?;
        return Err(insufficient(&shortages)?);
    }
    let placed = state
        .commands
        .execute::<Order, _>(&order_stream(id), meta, |s| {
            Ok(Order::decide(s, place.clone())?)
        })
        .await;
    if placed.is_err() {
        release(state, id, &reserved, meta).await?;
    }
    placed
}

/// The 409 that names every short SKU.
pub(crate) fn insufficient(shortages: &[Shortage]) -> Result<ApiError, ApiError> {
    let skus: Vec<&str> = shortages.iter().map(|s| s.sku.as_str()).collect();
    let mut extra = Map::new();
    extra.insert(
        "shortSkus".into(),
        serde_json::to_value(shortages).map_err(|e| ApiError::Internal(e.into()))?,
    );
    Ok(ApiError::Conflict {
        code: "insufficient_stock",
        detail: format!("not enough stock for {}", skus.join(", ")),
        extra: Some(extra),
    })
}

fn short(sku: &Sku, requested: u32, available: i64) -> ApiError {
    let mut extra = Map::new();
    extra.insert("sku".into(), Value::from(sku.as_str()));
    extra.insert("requested".into(), Value::from(requested));
    extra.insert("available".into(), Value::from(available));
    ApiError::Conflict {
        code: "insufficient_stock",
        detail: format!("not enough stock for {sku}"),
        extra: Some(extra),
    }
}

async fn release(
    state: &AppState,
    order: OrderId,
    skus: &[Sku],
    meta: &CommandMeta,
) -> Result<(), ApiError> {
    for sku in skus {
        state
            .commands
            .execute::<Stock, _>(&stock_stream(sku), meta, |s| {
                Ok(Stock::decide(
                    s,
                    StockCommand::Release {
                        order_id: order,
                        now: Utc::now(),
                    },
                )?)
            })
            .await?;
    }
    Ok(())
}

/// Releases or commits (`effect`) what order `id` holds of `sku`. Nothing held is
/// nothing to do: already committed (a retried shipment), or released meanwhile.
pub async fn settle_stock(
    state: &AppState,
    sku: &Sku,
    id: OrderId,
    effect: StockEffect,
    meta: &CommandMeta,
) -> Result<Executed<Stock>, ApiError> {
    state
        .commands
        .execute::<Stock, _>(&stock_stream(sku), meta, |s| {
            let command = match effect {
                StockEffect::Release => StockCommand::Release {
                    order_id: id,
                    now: Utc::now(),
                },
                _ => StockCommand::Commit {
                    order_id: id,
                    now: Utc::now(),
                },
            };
            match Stock::decide(s, command) {
                Err(StockError::NoReservation(_)) => Ok(Vec::new()),
                other => Ok(other?),
            }
        })
        .await
}

/// Runs an order command, then the stock work its events imply: a cancellation releases
/// every line's reservation, a shipment commits it. Returns the order's outcome and the
/// global position of the last event appended (stock events included).
///
/// A keyed request run again after a crash answers with what its earlier run appended to
/// the order, and settles the stock again (which does nothing where it was settled).
pub async fn change_order(
    state: &AppState,
    id: OrderId,
    meta: &CommandMeta,
    command: OrderCommand,
) -> Result<(Executed<Order>, u64), ApiError> {
    let done = state
        .commands
        .execute_request::<Order, _>(&order_stream(id), None, meta, |s| {
            Ok(Order::decide(s, command.clone())?)
        })
        .await?;
    let mut position = done.position;
    for event in &done.events {
        let effect = event.stock_effect();
        if effect == StockEffect::None {
            continue;
        }
        for line in &done.state.lines {
            let stock = settle_stock(state, &line.sku, id, effect, meta).await?;
            position = position.max(stock.position);
        }
    }
    Ok((done, position))
}
