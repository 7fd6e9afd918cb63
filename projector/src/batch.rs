//! Batched SQL for projections that fold many events at once: multi-row `INSERT`s and
//! `IN (…)` look-ups, chunked so that one statement stays well under every backend's limit
//! on bind parameters (SQLite 32,766, PostgreSQL 65,535), in one SQL text for both.
//!
//! Chunks of the full size (and single rows, the live runner's usual case) are prepared
//! once and cached by the connection; a chunk of any other size is prepared for one use
//! only, so that batches of varying sizes do not churn the statement cache.
use anyhow::Context;
use domain::aggregate::{DomainEvent, decode_borrowed};
use eventstore::RecordedEvent;
use sqlx::{
    Any, AnyConnection, AssertSqlSafe,
    any::{AnyArguments, AnyRow},
    query::Query,
};

/// Most bind parameters in one statement.
const MAX_PARAMS: usize = 8_000;

/// How an error names the event at fault.
pub fn describe(event: &RecordedEvent) -> String {
    format!(
        "applying {} {} of {} at position {}",
        event.event_type, event.event_id, event.stream, event.position
    )
}

/// Decodes a domain event as `domain::aggregate::decode` does, without copying its
/// payload when it is already at the current schema
/// ([`domain::aggregate::decode_borrowed`]).
///
/// # Errors
/// When the type is unknown or the payload does not fit it.
pub fn decode_event<E: DomainEvent>(recorded: &RecordedEvent) -> anyhow::Result<E> {
    Ok(decode_borrowed(
        &recorded.event_type,
        recorded.schema_version,
        &recorded.payload,
    )?)
}

/// One value of a row to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Arg {
    /// A `TEXT` value.
    Text(String),
    /// A `TEXT` `NULL`.
    NullText,
    /// A `BIGINT` value.
    Int(i64),
}

impl From<String> for Arg {
    fn from(value: String) -> Self {
        Self::Text(value)
    }
}

impl From<&str> for Arg {
    fn from(value: &str) -> Self {
        Self::Text(value.to_owned())
    }
}

impl From<i64> for Arg {
    fn from(value: i64) -> Self {
        Self::Int(value)
    }
}

impl From<Option<String>> for Arg {
    fn from(value: Option<String>) -> Self {
        value.map_or(Self::NullText, Self::Text)
    }
}

fn bind(query: Query<'_, Any, AnyArguments>, arg: Arg) -> Query<'_, Any, AnyArguments> {
    match arg {
        Arg::Text(text) => query.bind(text),
        Arg::NullText => query.bind(None::<String>),
        Arg::Int(value) => query.bind(value),
    }
}

/// `($first, $first+1, …)` groups: `rows` groups of `width` placeholders.
fn placeholders(rows: usize, width: usize, first: usize) -> String {
    let mut text = String::with_capacity(rows * width * 6);
    for row in 0..rows {
        if row > 0 {
            text.push_str(", ");
        }
        text.push('(');
        for column in 0..width {
            if column > 0 {
                text.push_str(", ");
            }
            text.push('$');
            text.push_str(&(first + row * width + column).to_string());
        }
        text.push(')');
    }
    text
}

/// `$first, $first+1, …`: `count` placeholders, for an `IN (…)` list.
pub(crate) fn placeholder_list(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rows per statement for rows of `width` values.
fn chunk_rows(width: usize) -> usize {
    (MAX_PARAMS / width.max(1)).clamp(1, 1_000)
}

/// `{head} VALUES (…), (…) {tail}` for every row, in chunks: a multi-row `INSERT` (with an
/// `ON CONFLICT` clause in `tail` for an upsert). Every row must have the same width, and
/// a chunk must not name one key twice when `tail` updates on conflict.
///
/// # Errors
/// When the database refuses a statement.
pub async fn insert_rows(
    conn: &mut AnyConnection,
    head: &str,
    tail: &str,
    rows: Vec<Vec<Arg>>,
) -> anyhow::Result<()> {
    let Some(width) = rows.first().map(Vec::len) else {
        return Ok(());
    };
    let per_chunk = chunk_rows(width);
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<Vec<Arg>> = rows.by_ref().take(per_chunk).collect();
        let sql = format!(
            "{head} VALUES {} {tail}",
            placeholders(chunk.len(), width, 1)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .persistent(chunk.len() == 1 || chunk.len() == per_chunk);
        for row in chunk {
            anyhow::ensure!(row.len() == width, "rows of different widths");
            for arg in row {
                query = bind(query, arg);
            }
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// `{head} ($1, $2, …) {tail}` for the keys, in chunks: the rows of a `SELECT … WHERE key
/// IN` (`head` ends with `IN`). Rows come chunk by chunk, in each chunk in the order the
/// statement gives them.
///
/// # Errors
/// When the database refuses a statement.
pub async fn fetch_in(
    conn: &mut AnyConnection,
    head: &str,
    tail: &str,
    keys: &[String],
) -> anyhow::Result<Vec<AnyRow>> {
    let mut rows = Vec::new();
    let per_chunk = chunk_rows(1);
    for chunk in keys.chunks(per_chunk) {
        let list = placeholder_list(1, chunk.len());
        let sql = format!("{head} ({list}) {tail}");
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .persistent(chunk.len() == 1 || chunk.len() == per_chunk);
        for key in chunk {
            query = query.bind(key.clone());
        }
        rows.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(rows)
}

/// `{head} ($1, $2, …)` for the keys, in chunks: a `DELETE … WHERE key IN`.
///
/// # Errors
/// When the database refuses a statement.
pub async fn delete_in(
    conn: &mut AnyConnection,
    head: &str,
    keys: &[String],
) -> anyhow::Result<()> {
    let per_chunk = chunk_rows(1);
    for chunk in keys.chunks(per_chunk) {
        let list = placeholder_list(1, chunk.len());
        let mut query = sqlx::query(AssertSqlSafe(format!("{head} ({list})")))
            .persistent(chunk.len() == 1 || chunk.len() == per_chunk);
        for key in chunk {
            query = query.bind(key.clone());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Sums kept per key in `table`: adds each row's `amounts` to the row of its `keys`
/// (inserting it when absent), then deletes the rows whose first amount fell to zero or
/// below, looking only at the keys whose first amount this call did not raise (only they
/// can fall), so a row never rests at zero and any split of the same events into batches
/// leaves the same rows. Each row is its key's values (text), then its amounts.
///
/// # Errors
/// When a key is not text, or the database refuses a statement.
pub async fn add_to_sums(
    conn: &mut AnyConnection,
    table: &str,
    keys: &[&str],
    amounts: &[&str],
    rows: Vec<Vec<Arg>>,
) -> anyhow::Result<()> {
    let first = amounts.first().context("sums without amounts")?;
    let shrunk = rows
        .iter()
        .filter(|row| matches!(row.get(keys.len()), Some(Arg::Int(added)) if *added <= 0))
        .map(|row| {
            row[..keys.len()]
                .iter()
                .map(|key| match key {
                    Arg::Text(text) => Ok(text.clone()),
                    Arg::NullText | Arg::Int(_) => anyhow::bail!("a key of {table} is not text"),
                })
                .collect::<anyhow::Result<Vec<String>>>()
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let columns = keys.iter().chain(amounts).copied().collect::<Vec<_>>();
    let sums = amounts
        .iter()
        .map(|amount| format!("{amount} = {table}.{amount} + excluded.{amount}"))
        .collect::<Vec<_>>();
    insert_rows(
        conn,
        &format!("INSERT INTO {table} ({})", columns.join(", ")),
        &format!(
            "ON CONFLICT ({}) DO UPDATE SET {}",
            keys.join(", "),
            sums.join(", ")
        ),
        rows,
    )
    .await?;
    execute_for_keys(
        conn,
        &format!("DELETE FROM {table} WHERE {first} <= 0 AND"),
        keys,
        &shrunk,
    )
    .await
}

/// `{head} ((c1 = $1 AND c2 = $2 …) OR (…))` for composite keys, in chunks: a statement on
/// the rows with these keys that uses the key's index on SQLite and PostgreSQL alike
/// (SQLite scans the table for a row-value `IN`). `head` ends where the condition starts,
/// e.g. `DELETE FROM t WHERE orders <= 0 AND`.
///
/// # Errors
/// When the database refuses a statement.
pub async fn execute_for_keys(
    conn: &mut AnyConnection,
    head: &str,
    columns: &[&str],
    keys: &[Vec<String>],
) -> anyhow::Result<()> {
    let per_chunk = chunk_rows(columns.len()).min(500);
    for chunk in keys.chunks(per_chunk) {
        let mut condition = String::new();
        for (row, key) in chunk.iter().enumerate() {
            anyhow::ensure!(key.len() == columns.len(), "key of the wrong width");
            if row > 0 {
                condition.push_str(" OR ");
            }
            condition.push('(');
            for (i, column) in columns.iter().enumerate() {
                if i > 0 {
                    condition.push_str(" AND ");
                }
                condition.push_str(&format!("{column} = ${}", row * columns.len() + i + 1));
            }
            condition.push(')');
        }
        let mut query = sqlx::query(AssertSqlSafe(format!("{head} ({condition})")))
            .persistent(chunk.len() == 1 || chunk.len() == per_chunk);
        for value in chunk.iter().flatten() {
            query = query.bind(value.clone());
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// The rows with these composite keys: `SELECT {columns} FROM (VALUES …) AS k JOIN {table}
/// t ON t.{key columns} = k.column1, …` in chunks (a join on `VALUES`, which both backends
/// answer with index look-ups). `columns` are qualified with `t.`.
///
/// # Errors
/// When the database refuses a statement.
pub async fn fetch_keys(
    conn: &mut AnyConnection,
    table: &str,
    key_columns: &[&str],
    columns: &str,
    keys: &[Vec<String>],
) -> anyhow::Result<Vec<AnyRow>> {
    let width = key_columns.len();
    let per_chunk = chunk_rows(width);
    let on = key_columns
        .iter()
        .enumerate()
        .map(|(i, column)| format!("t.{column} = k.column{}", i + 1))
        .collect::<Vec<_>>()
        .join(" AND ");
    let mut rows = Vec::new();
    for chunk in keys.chunks(per_chunk) {
        let sql = format!(
            "SELECT {columns} FROM (VALUES {}) AS k JOIN {table} t ON {on}",
            placeholders(chunk.len(), width, 1)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .persistent(chunk.len() == 1 || chunk.len() == per_chunk);
        for key in chunk {
            anyhow::ensure!(key.len() == width, "key of the wrong width");
            for value in key {
                query = query.bind(value.clone());
            }
        }
        rows.extend(query.fetch_all(&mut *conn).await?);
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    use chrono::{TimeZone, Utc};
    use domain::{
        aggregate::{decode, encode},
        catalog::ProductEvent,
        ids::{AccountId, OrderId, Sku},
        inventory::StockEvent,
        order::{Actor, OrderEvent, OrderStatus},
    };
    use eventstore::StreamId;

    fn recorded<E: DomainEvent>(event: &E) -> RecordedEvent {
        let (event_type, payload) = encode(event);
        RecordedEvent {
            event_id: uuid::Uuid::now_v7(),
            stream: StreamId::of("x", 1),
            version: 1,
            position: 1,
            event_type,
            schema_version: E::schema_version(event.event_type()),
            payload: payload.into(),
            metadata: eventstore::EventMetadata::default(),
            recorded_at: Utc::now(),
        }
    }

    fn same_as_the_domain<E: DomainEvent>(event: &E) {
        let stored = recorded(event);
        let fast: E = decode_event(&stored).unwrap();
        let slow: E = decode(
            &stored.event_type,
            stored.schema_version,
            std::sync::Arc::unwrap_or_clone(stored.payload),
        )
        .unwrap();
        assert_eq!(&fast, event);
        assert_eq!(fast, slow);
    }

    #[test]
    fn events_decode_as_the_domain_decodes_them() {
        let at = Utc.timestamp_opt(1_750_000_000, 123_456_789).unwrap();
        let order = OrderId::new(uuid::Uuid::from_u128(7));
        let admin = Actor {
            id: AccountId::new(uuid::Uuid::from_u128(1)),
            role: domain::account::Role::Admin,
        };
        same_as_the_domain(&ProductEvent::ProductArchived { at });
        same_as_the_domain(&StockEvent::StockAdjusted {
            sku: Sku::parse("SKU-1").unwrap(),
            delta: -3,
            reason: "broken".into(),
            at,
            adjustment_id: None,
        });
        same_as_the_domain(&StockEvent::StockReserved {
            order_id: order,
            qty: 2,
            at,
        });
        same_as_the_domain(&OrderEvent::OrderStatusChanged {
            from: OrderStatus::Placed,
            to: OrderStatus::Paid,
            by: admin,
            at,
        });
        same_as_the_domain(&OrderEvent::OrderCancelled {
            from: OrderStatus::Paid,
            by: admin,
            reason: None,
            at,
        });
    }

    #[test]
    fn undecodable_events_are_errors() {
        let mut stored = recorded(&ProductEvent::ProductArchived { at: Utc::now() });
        stored.event_type = "ProductVanished".into();
        assert!(decode_event::<ProductEvent>(&stored).is_err());
        stored.event_type = "ProductArchived".into();
        stored.payload = serde_json::json!({"at": 5}).into();
        assert!(decode_event::<ProductEvent>(&stored).is_err());
        stored.payload = serde_json::json!([1, 2]).into();
        assert!(decode_event::<ProductEvent>(&stored).is_err());
    }

    #[test]
    fn placeholders_number_rows_in_order() {
        assert_eq!(placeholders(2, 3, 1), "($1, $2, $3), ($4, $5, $6)");
        assert_eq!(placeholders(1, 1, 1), "($1)");
        assert_eq!(placeholder_list(3, 2), "$3, $4");
    }

    #[test]
    fn chunks_stay_under_the_parameter_limit() {
        assert!(chunk_rows(13) * 13 <= MAX_PARAMS);
        assert_eq!(chunk_rows(1), 1_000);
        assert_eq!(chunk_rows(0), 1_000);
    }
}
