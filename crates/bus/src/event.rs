//! Integration events: what Emporium tells the world, mapped purely from the log.
//!
//! The mapping ([`map_event`]) is a pure function of one recorded event and the few facts
//! about its order that later order events do not repeat ([`OrderContext`]: the customer
//! and, for a shipped order, the parcel that shipped it). [`Mapper`] looks those facts up
//! in the log (or in the batch at hand), so the same event always maps to the same
//! integration event, however often it is mapped: a republished event is identical.
//!
//! Payloads are a published contract in camelCase JSON, independent of how domain events
//! are stored, and never carry password hashes or other secrets. Events nobody outside
//! needs (stock reservations, profile edits, password changes, staff accounts) map to
//! nothing.
use std::{
    collections::HashMap,
    fmt,
    str::FromStr,
    sync::{Arc, Mutex},
};

use chrono::{DateTime, Utc};
use domain::{
    account::{AccountEvent, Role},
    aggregate::{DomainEvent, decode_borrowed},
    catalog::ProductEvent,
    ids::{AccountId, OrderId, ProductId, ShipmentId},
    inventory::StockEvent,
    order::{OrderEvent, OrderStatus},
};
use eventstore::{EventStore, Position, RecordedEvent, StoreError, StreamId};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// The root every integration subject starts with.
pub const SUBJECT_ROOT: &str = "emporium";

/// One kind of integration event: its NATS subject and its webhook event type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// `emporium.order.placed`: an order was placed (stock reserved, awaiting payment).
    OrderPlaced,
    /// `emporium.order.paid`.
    OrderPaid,
    /// `emporium.order.packed`.
    OrderPacked,
    /// `emporium.order.shipped`: carries the parcel (carrier, tracking number) when known.
    OrderShipped,
    /// `emporium.order.delivered`.
    OrderDelivered,
    /// `emporium.order.cancelled`: its stock is released.
    OrderCancelled,
    /// `emporium.shipment.created`: a parcel of an order was handed to a carrier.
    ShipmentCreated,
    /// `emporium.product.created`.
    ProductCreated,
    /// `emporium.product.updated`: descriptive fields changed, or a variant was added.
    ProductUpdated,
    /// `emporium.product.archived`: withdrawn from sale.
    ProductArchived,
    /// `emporium.product.price_changed`: one variant's price changed.
    ProductPriceChanged,
    /// `emporium.stock.adjusted`: a restock or write-off of a SKU.
    StockAdjusted,
    /// `emporium.customer.registered`: a customer signed up.
    CustomerRegistered,
}

impl Subject {
    /// Every subject, in the order the README lists them.
    pub const ALL: [Subject; 13] = [
        Subject::OrderPlaced,
        Subject::OrderPaid,
        Subject::OrderPacked,
        Subject::OrderShipped,
        Subject::OrderDelivered,
        Subject::OrderCancelled,
        Subject::ShipmentCreated,
        Subject::ProductCreated,
        Subject::ProductUpdated,
        Subject::ProductArchived,
        Subject::ProductPriceChanged,
        Subject::StockAdjusted,
        Subject::CustomerRegistered,
    ];

    /// The NATS subject, e.g. `emporium.order.placed`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Subject::OrderPlaced => "emporium.order.placed",
            Subject::OrderPaid => "emporium.order.paid",
            Subject::OrderPacked => "emporium.order.packed",
            Subject::OrderShipped => "emporium.order.shipped",
            Subject::OrderDelivered => "emporium.order.delivered",
            Subject::OrderCancelled => "emporium.order.cancelled",
            Subject::ShipmentCreated => "emporium.shipment.created",
            Subject::ProductCreated => "emporium.product.created",
            Subject::ProductUpdated => "emporium.product.updated",
            Subject::ProductArchived => "emporium.product.archived",
            Subject::ProductPriceChanged => "emporium.product.price_changed",
            Subject::StockAdjusted => "emporium.stock.adjusted",
            Subject::CustomerRegistered => "emporium.customer.registered",
        }
    }

    /// The event type webhooks use: the subject without `emporium.`, e.g. `order.placed`.
    #[must_use]
    pub fn event_type(self) -> &'static str {
        &self.as_str()[SUBJECT_ROOT.len() + 1..]
    }

    /// The subject with this NATS subject or webhook event type.
    #[must_use]
    pub fn parse(text: &str) -> Option<Subject> {
        Subject::ALL
            .into_iter()
            .find(|s| s.as_str() == text || s.event_type() == text)
    }
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An event as published: the domain event's id (the dedupe key), where it is in the log,
/// and a self-contained payload.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationEvent {
    /// The domain event's UUID; published as `Nats-Msg-Id`, so JetStream drops duplicates.
    pub id: Uuid,
    /// The NATS subject, e.g. `emporium.order.placed`.
    pub subject: String,
    /// The subject without `emporium.`, e.g. `order.placed` (the webhook event type).
    #[serde(rename = "type")]
    pub event_type: String,
    /// The domain event's global position in the log (increasing in publication order).
    pub position: Position,
    /// When it happened, as the domain event says.
    pub occurred_at: DateTime<Utc>,
    /// The payload (camelCase JSON; see the README for each subject's fields).
    pub data: Value,
}

impl IntegrationEvent {
    fn new(
        recorded: &RecordedEvent,
        subject: Subject,
        occurred_at: DateTime<Utc>,
        data: Value,
    ) -> Self {
        Self {
            id: recorded.event_id,
            subject: subject.as_str().to_owned(),
            event_type: subject.event_type().to_owned(),
            position: recorded.position,
            occurred_at,
            data,
        }
    }

    /// The subject as a [`Subject`] (`None` for a subject this build does not know).
    #[must_use]
    pub fn kind(&self) -> Option<Subject> {
        Subject::parse(&self.subject)
    }
}

/// Why an event could not be mapped: a payload that does not decode (a bug or a corrupt
/// log), or a failed look-up of its order's facts.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    /// The stored payload does not fit its type, or the stream name its kind.
    #[error("cannot map {event_type} {event_id} of {stream} at position {position}: {reason}")]
    Undecodable {
        /// The event's id.
        event_id: Uuid,
        /// Its stored type.
        event_type: String,
        /// Its stream.
        stream: StreamId,
        /// Its position.
        position: Position,
        /// What is wrong.
        reason: String,
    },
    /// The log could not be read for the order's facts.
    #[error("reading the order's earlier events: {0}")]
    Store(#[from] StoreError),
}

fn undecodable(event: &RecordedEvent, reason: impl fmt::Display) -> MappingError {
    MappingError::Undecodable {
        event_id: event.event_id,
        event_type: event.event_type.clone(),
        stream: event.stream.clone(),
        position: event.position,
        reason: reason.to_string(),
    }
}

fn decode_as<E: DomainEvent>(event: &RecordedEvent) -> Result<E, MappingError> {
    decode_borrowed(&event.event_type, event.schema_version, &event.payload)
        .map_err(|err| undecodable(event, err))
}

fn stream_id<T: FromStr>(event: &RecordedEvent) -> Result<T, MappingError> {
    event
        .stream
        .as_str()
        .split_once('-')
        .and_then(|(_, id)| id.parse().ok())
        .ok_or_else(|| undecodable(event, "the stream name does not hold an id"))
}

/// The parcel that shipped an order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShipmentFacts {
    /// The shipment's id.
    pub shipment_id: ShipmentId,
    /// The carrier.
    pub carrier: String,
    /// The carrier's tracking number.
    pub tracking_number: String,
}

/// What an order's later events do not repeat but their integration events carry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OrderContext {
    /// The customer who placed the order (from its `OrderPlaced`).
    pub customer_id: Option<AccountId>,
    /// For a move to `SHIPPED`: the shipment recorded with it, if any.
    pub shipment: Option<ShipmentFacts>,
}

/// Maps one recorded event to its integration event, or to `None` when nothing outside
/// needs it. Pure: `order` carries the facts of the event's order that [`Mapper`] looked up
/// (ignored for events of other streams).
///
/// # Errors
/// When the payload does not decode as its stored type.
pub fn map_event(
    event: &RecordedEvent,
    order: &OrderContext,
) -> Result<Option<IntegrationEvent>, MappingError> {
    match event.stream.category() {
        "order" => map_order(event, order),
        "product" => map_product(event),
        "stock" => map_stock(event),
        "account" => map_account(event),
        _ => Ok(None),
    }
}

fn map_order(
    event: &RecordedEvent,
    order: &OrderContext,
) -> Result<Option<IntegrationEvent>, MappingError> {
    let order_id: OrderId = stream_id(event)?;
    let customer_id = order.customer_id;
    let mapped = match decode_as::<OrderEvent>(event)? {
        OrderEvent::OrderPlaced {
            id,
            customer_id,
            lines,
            total,
            shipping_address,
            placed_at,
        } => IntegrationEvent::new(
            event,
            Subject::OrderPlaced,
            placed_at,
            json!({
                "orderId": id,
                "customerId": customer_id,
                "status": OrderStatus::Placed,
                "lines": lines,
                "total": total,
                "shippingAddress": shipping_address,
                "placedAt": placed_at,
            }),
        ),
        OrderEvent::OrderStatusChanged { from, to, by, at } => {
            let subject = match to {
                OrderStatus::Paid => Subject::OrderPaid,
                OrderStatus::Packed => Subject::OrderPacked,
                OrderStatus::Shipped => Subject::OrderShipped,
                OrderStatus::Delivered => Subject::OrderDelivered,
                OrderStatus::Cancelled => Subject::OrderCancelled,
                // No edge of the state machine leads back to PLACED.
                OrderStatus::Placed => return Ok(None),
            };
            let mut data = json!({
                "orderId": order_id,
                "customerId": customer_id,
                "from": from,
                "status": to,
                "changedBy": by,
                "at": at,
            });
            if to == OrderStatus::Shipped {
                data["shipment"] = json!(order.shipment);
            }
            IntegrationEvent::new(event, subject, at, data)
        }
        OrderEvent::OrderCancelled {
            from,
            by,
            reason,
            at,
        } => IntegrationEvent::new(
            event,
            Subject::OrderCancelled,
            at,
            json!({
                "orderId": order_id,
                "customerId": customer_id,
                "from": from,
                "status": OrderStatus::Cancelled,
                "changedBy": by,
                "reason": reason,
                "at": at,
            }),
        ),
        OrderEvent::ShipmentCreated {
            shipment_id,
            carrier,
            tracking_number,
            by: _,
            at,
        } => IntegrationEvent::new(
            event,
            Subject::ShipmentCreated,
            at,
            json!({
                "orderId": order_id,
                "customerId": customer_id,
                "shipmentId": shipment_id,
                "carrier": carrier,
                "trackingNumber": tracking_number,
                "at": at,
            }),
        ),
    };
    Ok(Some(mapped))
}

fn map_product(event: &RecordedEvent) -> Result<Option<IntegrationEvent>, MappingError> {
    let product_id: ProductId = stream_id(event)?;
    let mapped = match decode_as::<ProductEvent>(event)? {
        ProductEvent::ProductCreated {
            id,
            name,
            description,
            categories,
            attributes,
            variants,
            created_at,
        } => IntegrationEvent::new(
            event,
            Subject::ProductCreated,
            created_at,
            json!({
                "productId": id,
                "name": name,
                "description": description,
                "categories": categories,
                "attributes": attributes,
                "variants": variants,
                "createdAt": created_at,
            }),
        ),
        ProductEvent::ProductUpdated {
            name,
            description,
            categories,
            attributes,
            updated_at,
        } => {
            let mut changes = Map::new();
            if let Some(name) = name {
                changes.insert("name".into(), json!(name));
            }
            if let Some(description) = description {
                changes.insert("description".into(), json!(description));
            }
            if let Some(categories) = categories {
                changes.insert("categories".into(), json!(categories));
            }
            if let Some(attributes) = attributes {
                changes.insert("attributes".into(), Value::Object(attributes));
            }
            IntegrationEvent::new(
                event,
                Subject::ProductUpdated,
                updated_at,
                json!({ "productId": product_id, "changes": changes, "at": updated_at }),
            )
        }
        ProductEvent::VariantAdded { variant, at } => IntegrationEvent::new(
            event,
            Subject::ProductUpdated,
            at,
            json!({
                "productId": product_id,
                "changes": { "addedVariant": variant },
                "at": at,
            }),
        ),
        ProductEvent::VariantPriceChanged {
            sku,
            old_price,
            price,
            at,
        } => IntegrationEvent::new(
            event,
            Subject::ProductPriceChanged,
            at,
            json!({
                "productId": product_id,
                "sku": sku,
                "oldPrice": old_price,
                "price": price,
                "at": at,
            }),
        ),
        ProductEvent::ProductArchived { at } => IntegrationEvent::new(
            event,
            Subject::ProductArchived,
            at,
            json!({ "productId": product_id, "at": at }),
        ),
    };
    Ok(Some(mapped))
}

fn map_stock(event: &RecordedEvent) -> Result<Option<IntegrationEvent>, MappingError> {
    Ok(match decode_as::<StockEvent>(event)? {
        StockEvent::StockAdjusted {
            sku,
            delta,
            reason,
            at,
            ..
        } => Some(IntegrationEvent::new(
            event,
            Subject::StockAdjusted,
            at,
            json!({ "sku": sku, "delta": delta, "reason": reason, "at": at }),
        )),
        // Reservations are the order's business; their outcome is told by order events.
        StockEvent::StockReserved { .. }
        | StockEvent::StockReleased { .. }
        | StockEvent::StockCommitted { .. } => None,
    })
}

fn map_account(event: &RecordedEvent) -> Result<Option<IntegrationEvent>, MappingError> {
    Ok(match decode_as::<AccountEvent>(event)? {
        // Only what a shop system needs to greet a customer: never the password hash, and
        // nothing about back-office accounts.
        AccountEvent::AccountRegistered {
            id,
            role: Role::Customer,
            username: _,
            name,
            email,
            mobile_number,
            gender,
            password_hash: _,
            registered_at,
        } => Some(IntegrationEvent::new(
            event,
            Subject::CustomerRegistered,
            registered_at,
            json!({
                "customerId": id,
                "name": name,
                "email": email,
                "mobileNumber": mobile_number,
                "gender": gender,
                "registeredAt": registered_at,
            }),
        )),
        _ => None,
    })
}

/// Whether `event` is an order event after `OrderPlaced` (its customer is looked up).
fn needs_customer(event: &RecordedEvent) -> bool {
    event.stream.category() == "order" && event.event_type != "OrderPlaced"
}

/// Whether `event` moves an order to `SHIPPED` (the shipment before it is looked up).
fn needs_shipment(event: &RecordedEvent) -> bool {
    event.stream.category() == "order"
        && event.event_type == "OrderStatusChanged"
        && event.payload.get("to").and_then(Value::as_str) == Some(OrderStatus::Shipped.as_str())
}

/// Most orders whose customer a [`Mapper`] remembers before it forgets them all.
const CUSTOMER_CACHE_LIMIT: usize = 10_000;

/// Maps batches of the log with [`map_event`], looking up each order's facts first: in the
/// batch itself, in a small cache, else in the log (`OrderPlaced` is the order stream's
/// first event; a shipment is recorded in the same append just before the move to
/// `SHIPPED`).
pub struct Mapper {
    store: Arc<dyn EventStore>,
    customers: Mutex<HashMap<StreamId, AccountId>>,
}

impl Mapper {
    /// A mapper reading order facts from `store`.
    pub fn new(store: Arc<dyn EventStore>) -> Self {
        Self {
            store,
            customers: Mutex::new(HashMap::new()),
        }
    }

    /// The integration events of `events` (consecutive events of the log), in order.
    ///
    /// # Errors
    /// When an event does not decode, or the log cannot be read.
    pub async fn map_batch(
        &self,
        events: &[RecordedEvent],
    ) -> Result<Vec<IntegrationEvent>, MappingError> {
        let mut mapped = Vec::new();
        for (index, event) in events.iter().enumerate() {
            let mut order = OrderContext::default();
            if event.stream.category() == "order" {
                if event.event_type == "OrderPlaced" {
                    if let OrderEvent::OrderPlaced { customer_id, .. } = decode_as(event)? {
                        self.remember(&event.stream, customer_id);
                    }
                } else if needs_customer(event) {
                    order.customer_id = self.customer(&event.stream).await?;
                }
                if needs_shipment(event) {
                    order.shipment = self.shipment(&events[..index], event).await?;
                }
            }
            if let Some(integration) = map_event(event, &order)? {
                mapped.push(integration);
            }
        }
        Ok(mapped)
    }

    fn remember(&self, stream: &StreamId, customer: AccountId) {
        let mut customers = self.customers.lock().unwrap_or_else(|e| e.into_inner());
        if customers.len() >= CUSTOMER_CACHE_LIMIT {
            customers.clear();
        }
        customers.insert(stream.clone(), customer);
    }

    async fn customer(&self, stream: &StreamId) -> Result<Option<AccountId>, MappingError> {
        let cached = self
            .customers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(stream)
            .copied();
        if cached.is_some() {
            return Ok(cached);
        }
        let first = self.store.read_stream(stream, 1, 1).await?;
        let Some(placed) = first.first() else {
            tracing::warn!(%stream, "order stream without events; its customer is unknown");
            return Ok(None);
        };
        match decode_as::<OrderEvent>(placed)? {
            OrderEvent::OrderPlaced { customer_id, .. } => {
                self.remember(stream, customer_id);
                Ok(Some(customer_id))
            }
            _ => {
                tracing::warn!(%stream, "order stream does not start with OrderPlaced");
                Ok(None)
            }
        }
    }

    async fn shipment(
        &self,
        earlier: &[RecordedEvent],
        event: &RecordedEvent,
    ) -> Result<Option<ShipmentFacts>, MappingError> {
        let Some(version) = event.version.checked_sub(1).filter(|v| *v > 0) else {
            return Ok(None);
        };
        let in_batch = earlier
            .iter()
            .rev()
            .find(|e| e.stream == event.stream && e.version == version)
            .cloned();
        let previous = match in_batch {
            Some(previous) => Some(previous),
            None => self
                .store
                .read_stream(&event.stream, version, 1)
                .await?
                .into_iter()
                .next(),
        };
        let Some(previous) = previous.filter(|p| p.event_type == "ShipmentCreated") else {
            return Ok(None);
        };
        Ok(match decode_as::<OrderEvent>(&previous)? {
            OrderEvent::ShipmentCreated {
                shipment_id,
                carrier,
                tracking_number,
                ..
            } => Some(ShipmentFacts {
                shipment_id,
                carrier,
                tracking_number,
            }),
            _ => None,
        })
    }
}

/// Whether NATS subject `subject` matches `filter` (`*` matches one token, a final `>`
/// one or more).
#[must_use]
pub fn subject_matches(filter: &str, subject: &str) -> bool {
    let mut subject_tokens = subject.split('.');
    let mut filter_tokens = filter.split('.').peekable();
    while let Some(token) = filter_tokens.next() {
        if token == ">" && filter_tokens.peek().is_none() {
            return subject_tokens.next().is_some();
        }
        match subject_tokens.next() {
            Some(s) if token == "*" || token == s => {}
            _ => return false,
        }
    }
    subject_tokens.next().is_none()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::TimeZone;
    use domain::{
        account::{Email, Gender, MobileNumber},
        aggregate::encode,
        catalog::VariantSpec,
        ids::Sku,
        money::{Currency, Money},
        order::{Actor, OrderLine, ShippingAddress},
    };
    use eventstore::EventMetadata;

    use super::*;

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 4, 5, 6, 7).unwrap()
    }

    fn recorded<E: DomainEvent>(stream: &str, version: u64, event: &E) -> RecordedEvent {
        let (event_type, payload) = encode(event);
        RecordedEvent {
            event_id: Uuid::from_u128(u128::from(version) + 1000),
            stream: StreamId::new(stream).unwrap(),
            version,
            position: version + 40,
            event_type,
            schema_version: E::schema_version(event.event_type()),
            payload: payload.into(),
            metadata: EventMetadata::default(),
            recorded_at: at() + chrono::Duration::seconds(1),
        }
    }

    const ORDER: u128 = 0x0190_0000_0000_7000_8000_0000_0000_0001;
    const CUSTOMER: u128 = 0x0193_0000_0000_7000_8000_0000_0000_0002;
    const PRODUCT: u128 = 0x0191_0000_0000_7000_8000_0000_0000_0003;

    fn order_stream() -> String {
        format!("order-{}", Uuid::from_u128(ORDER))
    }

    fn product_stream() -> String {
        format!("product-{}", Uuid::from_u128(PRODUCT))
    }

    fn eur(amount: i64) -> Money {
        Money::new(amount, Currency::EUR)
    }

    fn admin() -> Actor {
        Actor {
            id: AccountId::new(Uuid::from_u128(9)),
            role: Role::Admin,
        }
    }

    fn context() -> OrderContext {
        OrderContext {
            customer_id: Some(AccountId::new(Uuid::from_u128(CUSTOMER))),
            shipment: None,
        }
    }

    fn map(event: &RecordedEvent, order: &OrderContext) -> IntegrationEvent {
        map_event(event, order)
            .unwrap()
            .expect("an integration event")
    }

    fn placed() -> OrderEvent {
        OrderEvent::OrderPlaced {
            id: OrderId::new(Uuid::from_u128(ORDER)),
            customer_id: AccountId::new(Uuid::from_u128(CUSTOMER)),
            lines: vec![OrderLine {
                sku: Sku::parse("TEE-M").unwrap(),
                product_id: ProductId::new(Uuid::from_u128(PRODUCT)),
                name: "Tee".into(),
                quantity: 2,
                unit_price: eur(1500),
                line_total: eur(3000),
            }],
            total: eur(3000),
            shipping_address: ShippingAddress {
                name: "Ada".into(),
                line1: "1 Way".into(),
                line2: None,
                city: "London".into(),
                region: None,
                postal_code: "N1".into(),
                country: "GB".into(),
            },
            placed_at: at(),
        }
    }

    fn moved(from: OrderStatus, to: OrderStatus) -> OrderEvent {
        OrderEvent::OrderStatusChanged {
            from,
            to,
            by: admin(),
            at: at(),
        }
    }

    #[test]
    fn subjects_and_event_types() {
        assert_eq!(Subject::ALL.len(), 13);
        for subject in Subject::ALL {
            assert_eq!(
                subject.as_str(),
                format!("emporium.{}", subject.event_type())
            );
            assert_eq!(Subject::parse(subject.as_str()), Some(subject));
            assert_eq!(Subject::parse(subject.event_type()), Some(subject));
        }
        assert_eq!(Subject::OrderPlaced.event_type(), "order.placed");
        assert_eq!(
            Subject::ProductPriceChanged.as_str(),
            "emporium.product.price_changed"
        );
        assert_eq!(Subject::parse("order.refunded"), None);
    }

    #[test]
    fn order_placed_is_self_contained() {
        let event = recorded(&order_stream(), 1, &placed());
        let mapped = map(&event, &OrderContext::default());
        assert_eq!(mapped.id, event.event_id);
        assert_eq!(mapped.subject, "emporium.order.placed");
        assert_eq!(mapped.event_type, "order.placed");
        assert_eq!(mapped.position, event.position);
        assert_eq!(mapped.occurred_at, at());
        assert_eq!(mapped.kind(), Some(Subject::OrderPlaced));
        assert_eq!(
            mapped.data,
            json!({
                "orderId": Uuid::from_u128(ORDER),
                "customerId": Uuid::from_u128(CUSTOMER),
                "status": "PLACED",
                "lines": [{
                    "sku": "TEE-M",
                    "productId": Uuid::from_u128(PRODUCT),
                    "name": "Tee",
                    "quantity": 2,
                    "unitPrice": {"amount": 1500, "currency": "EUR"},
                    "lineTotal": {"amount": 3000, "currency": "EUR"},
                }],
                "total": {"amount": 3000, "currency": "EUR"},
                "shippingAddress": {
                    "name": "Ada", "line1": "1 Way", "city": "London",
                    "postalCode": "N1", "country": "GB",
                },
                "placedAt": "2025-03-04T05:06:07Z",
            })
        );
        let wire = serde_json::to_value(&mapped).unwrap();
        assert_eq!(wire["type"], "order.placed");
        assert_eq!(wire["occurredAt"], "2025-03-04T05:06:07Z");
        let back: IntegrationEvent = serde_json::from_value(wire).unwrap();
        assert_eq!(back, mapped);
    }

    #[test]
    fn status_changes_map_by_target_status() {
        use OrderStatus::{Delivered, Packed, Paid, Placed, Shipped};
        for (from, to, subject) in [
            (Placed, Paid, Subject::OrderPaid),
            (Paid, Packed, Subject::OrderPacked),
            (Packed, Shipped, Subject::OrderShipped),
            (Shipped, Delivered, Subject::OrderDelivered),
        ] {
            let event = recorded(&order_stream(), 3, &moved(from, to));
            let mapped = map(&event, &context());
            assert_eq!(mapped.kind(), Some(subject), "{from} -> {to}");
            assert_eq!(mapped.data["orderId"], json!(Uuid::from_u128(ORDER)));
            assert_eq!(mapped.data["customerId"], json!(Uuid::from_u128(CUSTOMER)));
            assert_eq!(mapped.data["from"], from.as_str());
            assert_eq!(mapped.data["status"], to.as_str());
            assert_eq!(mapped.data["changedBy"]["role"], "ADMIN");
            assert_eq!(mapped.data.get("shipment").is_some(), to == Shipped);
        }
    }

    #[test]
    fn shipped_carries_the_parcel_when_known() {
        let event = recorded(
            &order_stream(),
            5,
            &moved(OrderStatus::Packed, OrderStatus::Shipped),
        );
        assert_eq!(map(&event, &context()).data["shipment"], Value::Null);
        let shipment = ShipmentFacts {
            shipment_id: ShipmentId::new(Uuid::from_u128(77)),
            carrier: "DHL".into(),
            tracking_number: "JJD01".into(),
        };
        let with = OrderContext {
            shipment: Some(shipment),
            ..context()
        };
        assert_eq!(
            map(&event, &with).data["shipment"],
            json!({"shipmentId": Uuid::from_u128(77), "carrier": "DHL", "trackingNumber": "JJD01"})
        );
    }

    #[test]
    fn cancelled_and_shipment_created() {
        let cancelled = OrderEvent::OrderCancelled {
            from: OrderStatus::Paid,
            by: admin(),
            reason: Some("changed my mind".into()),
            at: at(),
        };
        let mapped = map(&recorded(&order_stream(), 3, &cancelled), &context());
        assert_eq!(mapped.subject, "emporium.order.cancelled");
        assert_eq!(mapped.data["status"], "CANCELLED");
        assert_eq!(mapped.data["from"], "PAID");
        assert_eq!(mapped.data["reason"], "changed my mind");
        assert_eq!(mapped.data["customerId"], json!(Uuid::from_u128(CUSTOMER)));

        // A status change to CANCELLED (not emitted today) would still say cancelled.
        let moved_to_cancelled = recorded(
            &order_stream(),
            3,
            &moved(OrderStatus::Placed, OrderStatus::Cancelled),
        );
        assert_eq!(
            map(&moved_to_cancelled, &context()).kind(),
            Some(Subject::OrderCancelled)
        );

        let created = OrderEvent::ShipmentCreated {
            shipment_id: ShipmentId::new(Uuid::from_u128(77)),
            carrier: "UPS".into(),
            tracking_number: "1Z".into(),
            by: admin(),
            at: at(),
        };
        let mapped = map(&recorded(&order_stream(), 4, &created), &context());
        assert_eq!(mapped.subject, "emporium.shipment.created");
        assert_eq!(
            mapped.data,
            json!({
                "orderId": Uuid::from_u128(ORDER),
                "customerId": Uuid::from_u128(CUSTOMER),
                "shipmentId": Uuid::from_u128(77),
                "carrier": "UPS",
                "trackingNumber": "1Z",
                "at": "2025-03-04T05:06:07Z",
            })
        );
    }

    fn variant() -> VariantSpec {
        VariantSpec {
            sku: Sku::parse("TEE-L").unwrap(),
            price: eur(1999),
            options: BTreeMap::from([("size".to_owned(), "L".to_owned())]),
        }
    }

    #[test]
    fn product_events() {
        let product_id = Uuid::from_u128(PRODUCT);
        let created = ProductEvent::ProductCreated {
            id: ProductId::new(product_id),
            name: "Tee".into(),
            description: "Soft".into(),
            categories: vec!["shirts".into()],
            attributes: json!({"brand": "acme"}).as_object().unwrap().clone(),
            variants: vec![variant()],
            created_at: at(),
        };
        let mapped = map(&recorded(&product_stream(), 1, &created), &context());
        assert_eq!(mapped.subject, "emporium.product.created");
        assert_eq!(mapped.data["productId"], json!(product_id));
        assert_eq!(mapped.data["attributes"]["brand"], "acme");
        assert_eq!(
            mapped.data["variants"],
            json!([{"sku": "TEE-L", "price": {"amount": 1999, "currency": "EUR"}, "options": {"size": "L"}}])
        );

        let updated = ProductEvent::ProductUpdated {
            name: Some("Shirt".into()),
            description: None,
            categories: None,
            attributes: None,
            updated_at: at(),
        };
        let mapped = map(&recorded(&product_stream(), 2, &updated), &context());
        assert_eq!(mapped.subject, "emporium.product.updated");
        assert_eq!(
            mapped.data,
            json!({"productId": product_id, "changes": {"name": "Shirt"}, "at": "2025-03-04T05:06:07Z"})
        );

        let added = ProductEvent::VariantAdded {
            variant: variant(),
            at: at(),
        };
        let mapped = map(&recorded(&product_stream(), 3, &added), &context());
        assert_eq!(mapped.subject, "emporium.product.updated");
        assert_eq!(mapped.data["changes"]["addedVariant"]["sku"], "TEE-L");

        let repriced = ProductEvent::VariantPriceChanged {
            sku: Sku::parse("TEE-L").unwrap(),
            old_price: eur(1999),
            price: eur(1499),
            at: at(),
        };
        let mapped = map(&recorded(&product_stream(), 4, &repriced), &context());
        assert_eq!(mapped.subject, "emporium.product.price_changed");
        assert_eq!(
            mapped.data,
            json!({
                "productId": product_id,
                "sku": "TEE-L",
                "oldPrice": {"amount": 1999, "currency": "EUR"},
                "price": {"amount": 1499, "currency": "EUR"},
                "at": "2025-03-04T05:06:07Z",
            })
        );

        let archived = ProductEvent::ProductArchived { at: at() };
        let mapped = map(&recorded(&product_stream(), 5, &archived), &context());
        assert_eq!(mapped.subject, "emporium.product.archived");
        assert_eq!(
            mapped.data,
            json!({"productId": product_id, "at": "2025-03-04T05:06:07Z"})
        );
    }

    #[test]
    fn stock_adjustments_only() {
        let sku = Sku::parse("TEE-L").unwrap();
        let adjusted = StockEvent::StockAdjusted {
            sku: sku.clone(),
            delta: -2,
            reason: "damaged".into(),
            at: at(),
            adjustment_id: None,
        };
        let mapped = map(&recorded("stock-TEE-L", 1, &adjusted), &context());
        assert_eq!(mapped.subject, "emporium.stock.adjusted");
        assert_eq!(
            mapped.data,
            json!({"sku": "TEE-L", "delta": -2, "reason": "damaged", "at": "2025-03-04T05:06:07Z"})
        );
        let order_id = OrderId::new(Uuid::from_u128(ORDER));
        for internal in [
            StockEvent::StockReserved {
                order_id,
                qty: 1,
                at: at(),
            },
            StockEvent::StockReleased {
                order_id,
                qty: 1,
                at: at(),
            },
            StockEvent::StockCommitted {
                order_id,
                qty: 1,
                at: at(),
            },
        ] {
            let event = recorded("stock-TEE-L", 2, &internal);
            assert_eq!(map_event(&event, &context()).unwrap(), None);
        }
    }

    fn registered(role: Role) -> AccountEvent {
        AccountEvent::AccountRegistered {
            id: AccountId::new(Uuid::from_u128(CUSTOMER)),
            role,
            username: "ada@example.com".into(),
            name: "Ada".into(),
            email: Some(Email::parse("ada@example.com").unwrap()),
            mobile_number: Some(MobileNumber::parse("+491511234567").unwrap()),
            gender: Some(Gender::Female),
            password_hash: "$argon2id$v=19$secret".into(),
            registered_at: at(),
        }
    }

    #[test]
    fn customers_register_without_secrets() {
        let stream = format!("account-{}", Uuid::from_u128(CUSTOMER));
        let mapped = map(
            &recorded(&stream, 1, &registered(Role::Customer)),
            &context(),
        );
        assert_eq!(mapped.subject, "emporium.customer.registered");
        assert_eq!(
            mapped.data,
            json!({
                "customerId": Uuid::from_u128(CUSTOMER),
                "name": "Ada",
                "email": "ada@example.com",
                "mobileNumber": "+491511234567",
                "gender": "FEMALE",
                "registeredAt": "2025-03-04T05:06:07Z",
            })
        );
        let wire = serde_json::to_string(&mapped).unwrap();
        assert!(
            !wire.contains("argon2") && !wire.contains("secret"),
            "{wire}"
        );

        // Back-office accounts and later account events are nobody else's business.
        for role in [Role::Admin, Role::Staff] {
            let event = recorded(&stream, 1, &registered(role));
            assert_eq!(map_event(&event, &context()).unwrap(), None, "{role:?}");
        }
        let changed = AccountEvent::PasswordChanged {
            password_hash: "$argon2id$new".into(),
            at: at(),
        };
        assert_eq!(
            map_event(&recorded(&stream, 2, &changed), &context()).unwrap(),
            None
        );
    }

    #[test]
    fn other_streams_and_broken_payloads() {
        let claim = RecordedEvent {
            stream: StreamId::new("unique-email-ada@example.com").unwrap(),
            ..recorded(&order_stream(), 1, &placed())
        };
        assert_eq!(map_event(&claim, &context()).unwrap(), None);
        let broken = RecordedEvent {
            payload: json!({"nonsense": true}).into(),
            ..recorded(&order_stream(), 1, &placed())
        };
        assert!(matches!(
            map_event(&broken, &context()),
            Err(MappingError::Undecodable { .. })
        ));
    }

    #[test]
    fn wildcards_match_like_nats() {
        for (filter, subject, matches) in [
            ("emporium.>", "emporium.order.placed", true),
            ("emporium.order.>", "emporium.order.placed", true),
            ("emporium.order.>", "emporium.order", false),
            ("emporium.*.created", "emporium.product.created", true),
            ("emporium.*.created", "emporium.order.placed", false),
            ("emporium.order.placed", "emporium.order.placed", true),
            ("emporium.order.placed", "emporium.order.placed.x", false),
            ("emporium.order", "emporium.order.placed", false),
            ("emporium.*", "emporium.order.placed", false),
        ] {
            assert_eq!(
                subject_matches(filter, subject),
                matches,
                "{filter} {subject}"
            );
        }
    }
}
