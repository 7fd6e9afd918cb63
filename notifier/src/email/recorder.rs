//! From the bus to the outbox: the consumer `notifier-email` turns each order event a
//! customer should hear about into one `email_outbox` row, keyed by the event id, then
//! acks. The row is the durable work queue, so a crash or an SMTP outage delays the
//! e-mail and loses none, and a redelivered event adds nothing.
//!
//! The recipient is read from the customer's account stream, the one authority on their
//! address (a read model may lag behind the order that names them).
use std::sync::Arc;

use bus::{Bus, IntegrationEvent, Subject};
use domain::{
    account::{Account, AccountEvent},
    aggregate::{Aggregate, decode_borrowed},
    money::Money,
    order::{OrderLine, ShippingAddress},
};
use eventstore::{EventStore, StreamId};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::AnyPool;
use tokio::sync::Notify;
use uuid::Uuid;

use super::{now_ms, outbox, templates::Template};

/// The durable consumer name of the e-mail recorder.
pub const CONSUMER: &str = "notifier-email";

/// The subjects that become e-mails.
pub const SUBJECTS: [&str; 4] = [
    "emporium.order.placed",
    "emporium.order.shipped",
    "emporium.order.delivered",
    "emporium.order.cancelled",
];

/// An e-mail an event calls for, before its recipient is known.
#[derive(Debug, PartialEq)]
pub struct Planned {
    /// Which message.
    pub template: Template,
    /// Whom it is for.
    pub customer_id: Uuid,
    /// The template's data, but the customer's name.
    pub data: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Placed {
    order_id: Uuid,
    customer_id: Uuid,
    lines: Vec<OrderLine>,
    total: Money,
    shipping_address: ShippingAddress,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Changed {
    order_id: Uuid,
    customer_id: Option<Uuid>,
    #[serde(default)]
    shipment: Option<Shipment>,
    #[serde(default)]
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Shipment {
    carrier: String,
    tracking_number: String,
}

/// The e-mail `event` calls for, if any. Pure.
///
/// # Errors
/// When the payload does not have the shape its subject promises.
pub fn plan(event: &IntegrationEvent) -> Result<Option<Planned>, serde_json::Error> {
    let Some(subject) = event.kind() else {
        return Ok(None);
    };
    let template = match subject {
        Subject::OrderPlaced => return plan_placed(&event.data).map(Some),
        Subject::OrderShipped => Template::OrderShipped,
        Subject::OrderDelivered => Template::OrderDelivered,
        Subject::OrderCancelled => Template::OrderCancelled,
        _ => return Ok(None),
    };
    let changed: Changed = serde_json::from_value(event.data.clone())?;
    let Some(customer_id) = changed.customer_id else {
        return Ok(None);
    };
    let mut data = json!({ "order_number": changed.order_id.to_string() });
    if let Some(shipment) = changed.shipment {
        data["carrier"] = json!(shipment.carrier);
        data["tracking_number"] = json!(shipment.tracking_number);
    }
    if let Some(reason) = changed.reason.filter(|r| !r.trim().is_empty()) {
        data["reason"] = json!(reason);
    }
    Ok(Some(Planned {
        template,
        customer_id,
        data,
    }))
}

fn plan_placed(data: &Value) -> Result<Planned, serde_json::Error> {
    let placed: Placed = serde_json::from_value(data.clone())?;
    let lines: Vec<Value> = placed
        .lines
        .iter()
        .map(|line| {
            json!({
                "name": line.name,
                "sku": line.sku.to_string(),
                "quantity": line.quantity,
                "unit_price": line.unit_price.to_string(),
                "line_total": line.line_total.to_string(),
            })
        })
        .collect();
    let address = &placed.shipping_address;
    let address_lines: Vec<String> = [
        Some(address.name.clone()),
        Some(address.line1.clone()),
        address.line2.clone(),
        Some(format!("{} {}", address.postal_code, address.city)),
        address.region.clone(),
        Some(address.country.clone()),
    ]
    .into_iter()
    .flatten()
    .filter(|line| !line.trim().is_empty())
    .collect();
    Ok(Planned {
        template: Template::OrderPlaced,
        customer_id: placed.customer_id,
        data: json!({
            "order_number": placed.order_id.to_string(),
            "lines": lines,
            "total": placed.total.to_string(),
            "address_lines": address_lines,
        }),
    })
}

/// Someone an e-mail goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// Display name.
    pub name: String,
    /// Address.
    pub email: String,
}

/// The customer's current name and address, from their account stream; `None` for an
/// unknown account or one without an address.
///
/// # Errors
/// The store failed, or holds an event that does not decode.
pub async fn recipient(
    store: &dyn EventStore,
    customer_id: Uuid,
) -> anyhow::Result<Option<Recipient>> {
    let stream = StreamId::of("account", customer_id);
    let mut state = <Account as Aggregate>::State::default();
    let mut from = 1;
    loop {
        let events = store.read_stream(&stream, from, 256).await?;
        let Some(last) = events.last() else { break };
        from = last.version + 1;
        for recorded in &events {
            let event: AccountEvent = decode_borrowed(
                &recorded.event_type,
                recorded.schema_version,
                &recorded.payload,
            )?;
            state = Account::evolve(state, &event);
        }
    }
    Ok(state.email.map(|email| Recipient {
        name: state.name,
        email: email.to_string(),
    }))
}

/// Records the e-mail `event` calls for. Returns whether a row was added.
///
/// # Errors
/// The store or the database failed; the event is not acked and comes again.
pub async fn record(
    store: &dyn EventStore,
    sql: &AnyPool,
    event: &IntegrationEvent,
) -> anyhow::Result<bool> {
    let planned = match plan(event) {
        Ok(Some(planned)) => planned,
        Ok(None) => return Ok(false),
        Err(err) => {
            // A payload of the wrong shape will not change on redelivery.
            tracing::error!(%err, event = %event.id, subject = %event.subject, "cannot plan an e-mail; skipped");
            return Ok(false);
        }
    };
    let Some(to) = recipient(store, planned.customer_id).await? else {
        tracing::warn!(customer = %planned.customer_id, event = %event.id, "no e-mail address for the customer; nothing sent");
        return Ok(false);
    };
    let mut data = planned.data;
    data["customer_name"] = json!(to.name);
    let added = outbox::enqueue(
        sql,
        &outbox::NewEmail {
            id: event.id.to_string(),
            template: planned.template,
            recipient: to.email,
            data,
        },
        now_ms(),
    )
    .await?;
    Ok(added)
}

/// Consumes the order events into outbox rows until `stop`, waking `wake` when a row was
/// added. Outages are waited out with a back-off.
pub async fn run(
    bus: Arc<dyn Bus>,
    store: Arc<dyn EventStore>,
    sql: AnyPool,
    wake: Arc<Notify>,
    stop: impl std::future::Future<Output = ()> + Send,
) {
    tokio::select! {
        () = stop => {}
        () = crate::consume(bus, CONSUMER, &SUBJECTS, |event| {
            let (store, sql, wake) = (store.clone(), sql.clone(), wake.clone());
            async move {
                let added = record(store.as_ref(), &sql, &event).await?;
                if added {
                    wake.notify_one();
                }
                Ok(())
            }
        }) => {}
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;

    fn event(subject: Subject, data: Value) -> IntegrationEvent {
        IntegrationEvent {
            id: Uuid::now_v7(),
            subject: subject.as_str().into(),
            event_type: subject.event_type().into(),
            position: 1,
            occurred_at: Utc::now(),
            data,
        }
    }

    #[test]
    fn a_placed_order_plans_its_confirmation() {
        let (order, customer) = (Uuid::now_v7(), Uuid::now_v7());
        let planned = plan(&event(
            Subject::OrderPlaced,
            json!({
                "orderId": order, "customerId": customer, "status": "PLACED",
                "lines": [{"sku": "SHIRT-M", "productId": Uuid::now_v7(), "name": "Shirt", "quantity": 2,
                           "unitPrice": {"amount": 1999, "currency": "EUR"},
                           "lineTotal": {"amount": 3998, "currency": "EUR"}}],
                "total": {"amount": 3998, "currency": "EUR"},
                "shippingAddress": {"name": "Ada", "line1": "1 Main St", "city": "Berlin", "postalCode": "10115", "country": "DE"},
                "placedAt": Utc::now(),
            }),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(planned.template, Template::OrderPlaced);
        assert_eq!(planned.customer_id, customer);
        assert_eq!(planned.data["total"], "39.98 EUR");
        assert_eq!(planned.data["lines"][0]["unit_price"], "19.99 EUR");
        assert_eq!(
            planned.data["address_lines"],
            json!(["Ada", "1 Main St", "10115 Berlin", "DE"])
        );
    }

    #[test]
    fn status_changes_plan_their_mails() {
        let (order, customer) = (Uuid::now_v7(), Uuid::now_v7());
        let shipped = plan(&event(
            Subject::OrderShipped,
            json!({"orderId": order, "customerId": customer, "status": "SHIPPED",
                   "shipment": {"shipmentId": Uuid::now_v7(), "carrier": "DHL", "trackingNumber": "JD1"}}),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(shipped.template, Template::OrderShipped);
        assert_eq!(shipped.data["tracking_number"], "JD1");
        let cancelled = plan(&event(
            Subject::OrderCancelled,
            json!({"orderId": order, "customerId": customer, "reason": "out of budget"}),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(cancelled.data["reason"], "out of budget");
        let delivered = plan(&event(
            Subject::OrderDelivered,
            json!({"orderId": order, "customerId": customer}),
        ))
        .unwrap()
        .unwrap();
        assert_eq!(delivered.template, Template::OrderDelivered);
    }

    #[test]
    fn other_events_plan_nothing() {
        let order = Uuid::now_v7();
        for subject in [
            Subject::OrderPaid,
            Subject::OrderPacked,
            Subject::ProductCreated,
        ] {
            assert_eq!(
                plan(&event(subject, json!({"orderId": order}))).unwrap(),
                None
            );
        }
        // An order whose customer is unknown (no OrderPlaced in the log) is not mailed.
        assert_eq!(
            plan(&event(
                Subject::OrderDelivered,
                json!({"orderId": order, "customerId": null})
            ))
            .unwrap(),
            None
        );
    }
}
