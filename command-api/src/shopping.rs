//! Carts and wishlists as customers see and change them. The [`CartStore`](crate::carts::CartStore)
//! keeps SKUs and quantities; everything else is read from the command side's aggregates
//! when the cart is read, so names, prices and availability are always current: the
//! product stream (via the SKU's claim) for name, price and status, the stock stream for
//! what is available.
//!
//! Only SKUs on sale can be added; a line whose product was archived since (or whose SKU
//! no product has any more) stays in the cart, flagged, outside the total, instead of
//! making the whole cart unreadable. Checkout places an ordinary order through
//! [`ordering::place_customer_order`] and then takes what was ordered out of the cart.
use domain::{
    ids::{AccountId, Sku},
    inventory::Stock,
    money::Money,
    order::{MAX_QUANTITY, ShippingAddress},
    validation::FieldError,
};
use futures::{StreamExt, TryStreamExt, stream};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;
use web::{ApiError, Authorized, Customers};

use crate::{
    carts::CartLine,
    idempotency::KeyedRequest,
    ordering::{self, Listing, Offer, RequestedLine},
    routes::{CommandAnswer, MoneyDto, inventory::stock_stream},
    state::AppState,
};

/// How many SKUs are looked up at once while a cart is read.
const LOOKUPS_IN_FLIGHT: usize = 8;

/// Why a line cannot be bought.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum UnavailableReason {
    /// The product was archived.
    Archived,
    /// No product has this SKU.
    UnknownSku,
}

/// One cart line with the catalogue's current values.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CartLineView {
    /// The variant.
    pub sku: String,
    /// Its product (absent for an unknown SKU).
    pub product_id: Option<Uuid>,
    /// The product's current name (absent for an unknown SKU).
    pub name: Option<String>,
    /// The current price (absent for an unknown SKU).
    pub unit_price: Option<MoneyDto>,
    /// Units in the cart.
    pub quantity: u32,
    /// `unitPrice` × `quantity` (absent for an unknown SKU).
    pub line_total: Option<MoneyDto>,
    /// Units available now (on hand minus reserved).
    pub available: i64,
    /// Whether `available` covers `quantity`: checkout would get them now.
    pub in_stock: bool,
    /// Whether the SKU is on sale; lines that are not are left out of the total.
    pub purchasable: bool,
    /// Why the line cannot be bought, when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable_reason: Option<UnavailableReason>,
}

/// The caller's cart.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CartView {
    /// The lines, sorted by SKU. Checkout names a bad line as `lines[i]` in this order.
    pub lines: Vec<CartLineView>,
    /// Units over all lines.
    pub item_count: u64,
    /// The sum of the purchasable lines' totals; null when there are none, or when they
    /// are priced in more than one currency.
    pub total: Option<MoneyDto>,
    /// The purchasable lines are priced in more than one currency: one order cannot hold
    /// them all, so checkout answers 422 `mixed_currencies`.
    pub mixed_currencies: bool,
}

/// One wishlist item with the catalogue's current values.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WishlistItemView {
    /// The variant.
    pub sku: String,
    /// Its product (absent for an unknown SKU).
    pub product_id: Option<Uuid>,
    /// The product's current name (absent for an unknown SKU).
    pub name: Option<String>,
    /// The current price (absent for an unknown SKU).
    pub unit_price: Option<MoneyDto>,
    /// Units available now.
    pub available: i64,
    /// Whether the SKU is on sale.
    pub purchasable: bool,
    /// Why it cannot be bought, when it cannot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unavailable_reason: Option<UnavailableReason>,
}

/// The caller's wishlist.
#[derive(Clone, Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WishlistView {
    /// The items, sorted by SKU.
    pub items: Vec<WishlistItemView>,
}

/// A SKU as the catalogue and the stock show it now.
struct Current {
    offer: Offer,
    available: i64,
}

impl Current {
    fn listing(&self) -> Option<&Listing> {
        match &self.offer {
            Offer::OnSale(listing) | Offer::Archived(listing) => Some(listing),
            Offer::Unknown => None,
        }
    }

    fn unavailable_reason(&self) -> Option<UnavailableReason> {
        match self.offer {
            Offer::OnSale(_) => None,
            Offer::Archived(_) => Some(UnavailableReason::Archived),
            Offer::Unknown => Some(UnavailableReason::UnknownSku),
        }
    }
}

async fn current(state: &AppState, sku: &Sku) -> Result<Current, ApiError> {
    let offer = ordering::offer(state, sku).await?;
    let available = match offer {
        Offer::Unknown => 0,
        _ => state
            .commands
            .load::<Stock>(&stock_stream(sku))
            .await?
            .state
            .available(),
    };
    Ok(Current { offer, available })
}

/// Looks every SKU up, a few at a time, keeping their order.
async fn current_all(state: &AppState, skus: Vec<Sku>) -> Result<Vec<(Sku, Current)>, ApiError> {
    stream::iter(skus)
        .map(|sku| async move { current(state, &sku).await.map(|c| (sku, c)) })
        .buffered(LOOKUPS_IN_FLIGHT)
        .try_collect()
        .await
}

fn unknown_or_not_sold(sku: &Sku, offer: &Offer) -> Result<(), ApiError> {
    match offer {
        Offer::OnSale(_) => Ok(()),
        Offer::Archived(_) => Err(ApiError::rule(
            "sku_not_for_sale",
            format!("{sku} is no longer sold"),
        )),
        Offer::Unknown => Err(ApiError::rule(
            "unknown_sku",
            format!("no product has SKU {sku}"),
        )),
    }
}

/// Fails with 422 `unknown_sku` or `sku_not_for_sale` unless `sku` is on sale.
async fn require_on_sale(state: &AppState, sku: &Sku) -> Result<(), ApiError> {
    unknown_or_not_sold(sku, &ordering::offer(state, sku).await?)
}

/// A quantity from a request: 1 to the order limit, else a field error at `quantity`.
fn parse_quantity(quantity: i64) -> Result<u32, FieldError> {
    u32::try_from(quantity)
        .ok()
        .filter(|q| (1..=MAX_QUANTITY).contains(q))
        .ok_or_else(|| {
            FieldError::new(
                "quantity",
                format!("must be between 1 and {MAX_QUANTITY} (DELETE removes a line)"),
            )
        })
}

/// The customer's cart with current names, prices and availability.
pub async fn view_cart(state: &AppState, customer: AccountId) -> Result<CartView, ApiError> {
    let lines = state.carts.store().lines(customer).await?;
    let quantities: Vec<u32> = lines.iter().map(|l| l.quantity).collect();
    let looked_up = current_all(state, lines.into_iter().map(|l| l.sku).collect()).await?;
    let mut views = Vec::with_capacity(looked_up.len());
    let mut totals: Vec<Money> = Vec::new();
    for ((sku, now), quantity) in looked_up.into_iter().zip(quantities) {
        let listing = now.listing();
        let line_total = listing.and_then(|l| l.unit_price.checked_mul(quantity));
        let purchasable = matches!(now.offer, Offer::OnSale(_));
        if purchasable && let Some(line_total) = line_total {
            totals.push(line_total);
        }
        views.push(CartLineView {
            sku: sku.to_string(),
            product_id: listing.map(|l| l.product_id.as_uuid()),
            name: listing.map(|l| l.name.clone()),
            unit_price: listing.map(|l| l.unit_price.into()),
            quantity,
            line_total: line_total.map(MoneyDto::from),
            available: now.available,
            in_stock: now.available >= i64::from(quantity),
            purchasable,
            unavailable_reason: now.unavailable_reason(),
        });
    }
    let mixed_currencies = totals.windows(2).any(|w| w[0].currency != w[1].currency);
    let total = match totals.split_first() {
        Some((first, rest)) if !mixed_currencies => rest
            .iter()
            .try_fold(*first, |sum, t| sum.checked_add(*t))
            .map(MoneyDto::from),
        _ => None,
    };
    Ok(CartView {
        item_count: views.iter().map(|l| u64::from(l.quantity)).sum(),
        lines: views,
        total,
        mixed_currencies,
    })
}

/// Adds units of an on-sale SKU to the cart (a new line, or more of one it has).
pub async fn add_item(
    state: &AppState,
    customer: AccountId,
    sku: &str,
    quantity: i64,
) -> Result<CartView, ApiError> {
    let sku = Sku::parse(sku);
    let quantity = parse_quantity(quantity);
    let (sku, quantity) = match (sku, quantity) {
        (Ok(sku), Ok(quantity)) => (sku, quantity),
        (sku, quantity) => {
            return Err(ApiError::Validation(
                [sku.err(), quantity.err()].into_iter().flatten().collect(),
            ));
        }
    };
    require_on_sale(state, &sku).await?;
    state.carts.store().add(customer, &sku, quantity).await?;
    view_cart(state, customer).await
}

fn no_line() -> ApiError {
    ApiError::not_found("the cart has no line for this SKU")
}

/// Changes the quantity of a line the cart has; its SKU must still be on sale.
pub async fn change_quantity(
    state: &AppState,
    customer: AccountId,
    sku: &str,
    quantity: i64,
) -> Result<CartView, ApiError> {
    let sku = Sku::parse(sku).map_err(|_| no_line())?;
    let quantity = parse_quantity(quantity).map_err(|e| ApiError::Validation(vec![e]))?;
    require_on_sale(state, &sku).await?;
    if !state.carts.store().set(customer, &sku, quantity).await? {
        return Err(no_line());
    }
    view_cart(state, customer).await
}

/// Removes a line; removing one the cart does not have changes nothing and is no error.
pub async fn remove_item(
    state: &AppState,
    customer: AccountId,
    sku: &str,
) -> Result<CartView, ApiError> {
    if let Ok(sku) = Sku::parse(sku) {
        state.carts.store().remove(customer, &sku).await?;
    }
    view_cart(state, customer).await
}

/// Places an order for the cart's lines through the same path as `POST /api/v1/orders`,
/// then takes what was ordered out of the cart. Nothing leaves the cart unless the order
/// is placed.
pub async fn checkout(
    state: &AppState,
    user: &Authorized<Customers>,
    keyed: Option<KeyedRequest>,
    shipping_address: ShippingAddress,
) -> Result<CommandAnswer, ApiError> {
    let _one_at_a_time = state.carts.checkout_lock(user.id).await;
    // Before the cart is read: a run that died after the order may have emptied it.
    if let Some(answer) = ordering::placed_before(state, user, keyed).await? {
        return Ok(answer);
    }
    let lines = state.carts.store().lines(user.id).await?;
    if lines.is_empty() {
        return Err(ApiError::rule("cart_empty", "the cart is empty"));
    }
    let requested: Vec<RequestedLine> = lines
        .iter()
        .map(|CartLine { sku, quantity }| RequestedLine {
            sku: sku.clone(),
            quantity: *quantity,
        })
        .collect();
    let answer =
        ordering::place_customer_order(state, user, keyed, &requested, shipping_address).await?;
    // The order stands whatever happens to the cart now. Failing the request here would
    // invite a retry that orders the same lines again, so a cart that could not be
    // emptied keeps its lines and the customer is answered with the order.
    if let Err(err) = state.carts.store().remove_ordered(user.id, &lines).await {
        tracing::warn!(%err, order = %answer.id, "the order was placed but its lines stay in the cart");
    }
    Ok(answer)
}

/// The customer's wishlist with current names, prices and availability.
pub async fn view_wishlist(
    state: &AppState,
    customer: AccountId,
) -> Result<WishlistView, ApiError> {
    let skus = state.carts.store().wishlist(customer).await?;
    let items = current_all(state, skus)
        .await?
        .into_iter()
        .map(|(sku, now)| {
            let listing = now.listing();
            WishlistItemView {
                sku: sku.to_string(),
                product_id: listing.map(|l| l.product_id.as_uuid()),
                name: listing.map(|l| l.name.clone()),
                unit_price: listing.map(|l| l.unit_price.into()),
                available: now.available,
                purchasable: matches!(now.offer, Offer::OnSale(_)),
                unavailable_reason: now.unavailable_reason(),
            }
        })
        .collect();
    Ok(WishlistView { items })
}

/// Puts an on-sale SKU on the wishlist; putting it there again changes nothing.
pub async fn wish(state: &AppState, customer: AccountId, sku: &str) -> Result<(), ApiError> {
    let sku =
        Sku::parse(sku).map_err(|_| ApiError::rule("unknown_sku", "no product has this SKU"))?;
    require_on_sale(state, &sku).await?;
    state.carts.store().wish(customer, &sku).await?;
    Ok(())
}

/// Takes a SKU off the wishlist; one that is not on it changes nothing and is no error.
pub async fn unwish(state: &AppState, customer: AccountId, sku: &str) -> Result<(), ApiError> {
    if let Ok(sku) = Sku::parse(sku) {
        state.carts.store().unwish(customer, &sku).await?;
    }
    Ok(())
}
