//! The pure, synchronous aggregate contract (`decide` / `evolve`) and the event codec shape.
//!
//! An aggregate's state is nothing but the left fold of `evolve` over its events; `decide`
//! checks business rules against that state and answers with new events or an error, never
//! with side effects. Events are stored as `(event_type, schema_version, data)`: the type is
//! an explicit stable name, and older schemas are upcast on read, never rewritten.

use std::fmt::Display;

use serde::Serialize;
use serde::de::{
    DeserializeOwned, DeserializeSeed, Deserializer, SeqAccess, Visitor,
    value::BorrowedStrDeserializer,
};
use serde_json::{Map, Value};

/// An event enum whose variants have stable stored names and versioned schemas.
///
/// Implementations serialize adjacently tagged (`{"type": "...", "data": {...}}`) with an
/// explicit `#[serde(rename = "...")]` on every variant, so a Rust rename never changes
/// what is stored.
pub trait DomainEvent: Serialize + DeserializeOwned + Clone + std::fmt::Debug + PartialEq {
    /// Stable stored name, e.g. `"StockReserved"`; equal to the serde `type` tag.
    fn event_type(&self) -> &'static str;

    /// Current schema version of the given event type (1 for every type today).
    fn schema_version(event_type: &str) -> u32;

    /// Brings a payload written at `schema_version` up to the current schema of
    /// `event_type`; the identity for payloads already current.
    fn upcast(event_type: &str, schema_version: u32, payload: Value) -> Value;
}

/// A consistency boundary: one event stream, its state, and the rules that guard it.
pub trait Aggregate {
    /// Aggregate name and stream prefix: streams are named `{NAME}-{id}`.
    const NAME: &'static str;
    /// State rebuilt from events; `Default` is the state of an empty stream.
    type State: Default + Clone + std::fmt::Debug;
    /// What a caller asks for; carries every input `decide` needs (ids, `now`, prices).
    type Command;
    /// What happened.
    type Event: DomainEvent;
    /// Why a command was refused.
    type Error: std::error::Error + PartialEq;

    /// Checks the command against the state. Pure and deterministic; `Ok(vec![])` means
    /// "nothing to do" (an idempotent retry or a no-op change).
    ///
    /// # Errors
    /// The rule the command would break; nothing is to be appended then.
    fn decide(state: &Self::State, command: Self::Command)
    -> Result<Vec<Self::Event>, Self::Error>;

    /// Applies one event. Total over events `decide` can produce; it panics only on input
    /// that no valid history contains (a bug), and never checks business rules.
    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;

    /// The state after `events`, starting from the empty stream.
    fn fold<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self::State
    where
        Self::Event: 'a,
    {
        events
            .into_iter()
            .fold(Self::State::default(), |state, event| {
                Self::evolve(state, event)
            })
    }
}

/// The stream name of aggregate `A` with id `id`, e.g. `order-0192…` or `stock-TSHIRT-L`.
pub fn stream_name<A: Aggregate>(id: impl Display) -> String {
    format!("{}-{}", A::NAME, id)
}

/// Splits an event into its stored type name and its `data` payload.
///
/// A variant without fields has payload `Value::Null`.
///
/// # Panics
/// Only on an event type that does not serialize adjacently tagged (a bug in that type).
pub fn encode<E: DomainEvent>(event: &E) -> (String, Value) {
    // Domain events hold only strings, integers, maps with string keys and JSON values, so
    // serialization cannot fail; a failure is a bug in an event type.
    let value = serde_json::to_value(event).expect("domain events always serialize to JSON");
    let Value::Object(mut envelope) = value else {
        panic!("domain events must serialize adjacently tagged as an object, got {value}");
    };
    let data = envelope.remove("data").unwrap_or(Value::Null);
    debug_assert_eq!(
        envelope.get("type").and_then(Value::as_str),
        Some(event.event_type()),
        "serde tag and event_type() disagree"
    );
    (event.event_type().to_owned(), data)
}

/// Rebuilds an event from its stored type name, schema version and payload, upcasting old
/// schemas first.
///
/// # Errors
/// When the type is unknown or the (upcast) payload does not fit it.
pub fn decode<E: DomainEvent>(
    event_type: &str,
    schema_version: u32,
    data: Value,
) -> Result<E, serde_json::Error> {
    let data = E::upcast(event_type, schema_version, data);
    let mut envelope = Map::with_capacity(2);
    envelope.insert("type".to_owned(), Value::String(event_type.to_owned()));
    // A fieldless variant is stored without payload; serde then expects no `data` key.
    if !data.is_null() {
        envelope.insert("data".to_owned(), data);
    }
    serde_json::from_value(Value::Object(envelope))
}

/// [`decode`] from a borrowed payload, without copying it when it is already at the
/// current schema: the event enum reads its `[type, data]` pair straight from the stored
/// JSON. (Copying the payload and reading a `{"type", "data"}` object, whose keys come in
/// the wrong order for the tag to be read first, were a fifth of a projection replay's
/// work.) Older schemas and fieldless variants go through [`decode`].
///
/// # Errors
/// When the type is unknown or the payload does not fit it.
pub fn decode_borrowed<E: DomainEvent>(
    event_type: &str,
    schema_version: u32,
    data: &Value,
) -> Result<E, serde_json::Error> {
    if data.is_null() || schema_version != E::schema_version(event_type) {
        return decode(event_type, schema_version, data.clone());
    }
    E::deserialize(Envelope {
        tag: Some(event_type),
        content: Some(data),
    })
}

/// A stored event as the `[type, data]` sequence that adjacently tagged enums accept.
struct Envelope<'a> {
    tag: Option<&'a str>,
    content: Option<&'a Value>,
}

impl<'de> Deserializer<'de> for Envelope<'de> {
    type Error = serde_json::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
        visitor.visit_seq(self)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map struct enum
        identifier ignored_any
    }
}

impl<'de> SeqAccess<'de> for Envelope<'de> {
    type Error = serde_json::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        if let Some(tag) = self.tag.take() {
            return seed
                .deserialize(BorrowedStrDeserializer::new(tag))
                .map(Some);
        }
        match self.content.take() {
            Some(content) => seed.deserialize(content).map(Some),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "type", content = "data", rename_all_fields = "camelCase")]
    enum Ping {
        #[serde(rename = "Pinged")]
        Pinged,
        #[serde(rename = "Ponged")]
        Ponged {},
        #[serde(rename = "Echoed")]
        Echoed { said_text: String },
    }

    impl DomainEvent for Ping {
        fn event_type(&self) -> &'static str {
            match self {
                Ping::Pinged => "Pinged",
                Ping::Ponged {} => "Ponged",
                Ping::Echoed { .. } => "Echoed",
            }
        }
        fn schema_version(_: &str) -> u32 {
            1
        }
        fn upcast(_: &str, _: u32, payload: Value) -> Value {
            payload
        }
    }

    #[test]
    fn fieldless_events_round_trip() {
        for e in [Ping::Pinged, Ping::Ponged {}] {
            let (t, data) = encode(&e);
            assert_eq!(t, e.event_type());
            assert_eq!(
                decode::<Ping>(&t, 1, data.clone()).unwrap(),
                e,
                "{t} {data}"
            );
        }
        assert_eq!(encode(&Ping::Pinged).1, Value::Null);
        assert_eq!(encode(&Ping::Ponged {}).1, json!({}));
    }

    #[test]
    fn fields_are_camel_case() {
        let e = Ping::Echoed {
            said_text: "hi".into(),
        };
        let (t, data) = encode(&e);
        assert_eq!(t, "Echoed");
        assert_eq!(data, json!({ "saidText": "hi" }));
        assert_eq!(decode::<Ping>("Echoed", 1, data).unwrap(), e);
    }

    #[test]
    fn unknown_type_is_an_error() {
        assert!(decode::<Ping>("Nope", 1, json!({})).is_err());
    }

    #[test]
    fn borrowed_decoding_agrees_with_decoding() {
        let events = [
            Ping::Pinged,
            Ping::Ponged {},
            Ping::Echoed {
                said_text: "hi".into(),
            },
        ];
        for e in events {
            let (t, data) = encode(&e);
            assert_eq!(decode_borrowed::<Ping>(&t, 1, &data).unwrap(), e, "{t}");
        }
        assert!(decode_borrowed::<Ping>("Nope", 1, &json!({})).is_err());
        assert!(decode_borrowed::<Ping>("Echoed", 1, &json!({ "said": 1 })).is_err());
        assert!(decode_borrowed::<Ping>("Echoed", 1, &json!([1, 2])).is_err());
    }
}
