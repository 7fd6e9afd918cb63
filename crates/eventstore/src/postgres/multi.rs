//! A multi-stream append in one statement.
//!
//! Appending part by part costs a round trip and a statement per stream: an order
//! committer's batch of 64 two-line orders was some 190 statements, one after another,
//! inside its transaction. Here every part goes in one statement that reads each stream's
//! version, checks every expectation, and inserts all the events or none, with positions
//! in the order of the parts and of their events, as the part-by-part path gives them.
//!
//! It only answers the common case. When an expectation fails it writes nothing and says
//! so, and when a concurrent append wins a race it fails with a unique violation; the
//! caller then takes the part-by-part path, which names the conflicting stream and
//! recognises a retried append (see [`super::append_with_retry`]).
use std::collections::HashSet;

use sqlx::{PgConnection, Row};

use super::{EventColumns, expectation_code};
use crate::{AppendResult, StoreError, StreamAppend, sqlite::from_i64};

const APPEND_ALL_SQL: &str = "\
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::int4[], $3::int8[], $4::uuid[], $5::text[], $6::int4[], $7::jsonb[], $8::jsonb[])
        WITH ORDINALITY AS t(stream_id, kind, exact, event_id, event_type, schema_version, payload, metadata, n)
), current AS (
    SELECT s.stream_id, s.kind, s.exact,
           coalesce((SELECT max(version) FROM events e WHERE e.stream_id = s.stream_id), 0) AS v
    FROM (SELECT DISTINCT stream_id, kind, exact FROM input) s
), expectations AS (
    SELECT coalesce(bool_and(CASE kind WHEN 0 THEN true WHEN 1 THEN v = 0 WHEN 2 THEN v > 0 ELSE v = exact END), false) AS met
    FROM current
), numbered AS (
    SELECT i.*, c.v + row_number() OVER (PARTITION BY i.stream_id ORDER BY i.n) AS version
    FROM input i JOIN current c USING (stream_id)
), inserted AS (
    INSERT INTO events (stream_id, version, event_id, event_type, schema_version, payload, metadata)
    SELECT stream_id, version, event_id, event_type, schema_version, payload, metadata
    FROM numbered, expectations
    WHERE expectations.met
    ORDER BY n
    RETURNING stream_id, version, position
)
SELECT stream_id, max(version) AS version, max(position) AS position FROM inserted GROUP BY stream_id";

/// Whether [`append_all`] can take these parts: each stream at most once (a second part
/// on a stream must see the first one's events, which one statement cannot).
pub(super) fn applies(parts: &[StreamAppend]) -> bool {
    let mut streams = HashSet::with_capacity(parts.len());
    parts.len() > 1
        && parts
            .iter()
            .all(|part| streams.insert(part.stream.as_str()))
}

/// What [`append_all`] did.
pub(super) enum AtOnce {
    /// Every part is written: each one's result, in the order of the parts.
    Appended(Vec<AppendResult>),
    /// An expectation failed; nothing is written and the transaction is still usable.
    NotMet,
    /// A unique violation: a concurrent append took a version, or an event id is already
    /// stored. The transaction is aborted.
    Collided,
}

/// Appends every part in one statement on `conn`, inside the caller's transaction.
///
/// # Errors
/// When the database fails otherwise.
pub(super) async fn append_all(
    conn: &mut PgConnection,
    parts: &[StreamAppend],
) -> Result<AtOnce, StoreError> {
    let events: usize = parts.iter().map(|part| part.events.len()).sum();
    let mut streams = Vec::with_capacity(events);
    let mut kinds = Vec::with_capacity(events);
    let mut exacts = Vec::with_capacity(events);
    let mut columns = EventColumns::default();
    for part in parts {
        let (kind, exact) = expectation_code(part.expected)?;
        for _ in &part.events {
            streams.push(part.stream.as_str());
            kinds.push(kind);
            exacts.push(exact);
        }
        columns.push_all(&part.events)?;
    }
    let rows = sqlx::query(APPEND_ALL_SQL)
        .bind(&streams)
        .bind(&kinds)
        .bind(&exacts)
        .bind(&columns.ids)
        .bind(&columns.types)
        .bind(&columns.schema_versions)
        .bind(&columns.payloads)
        .bind(&columns.metadata)
        .fetch_all(&mut *conn)
        .await;
    let rows = match rows {
        Ok(rows) if rows.is_empty() => return Ok(AtOnce::NotMet),
        Ok(rows) => rows,
        Err(sqlx::Error::Database(db)) if db.is_unique_violation() => return Ok(AtOnce::Collided),
        Err(err) => return Err(err.into()),
    };
    let mut results = std::collections::HashMap::with_capacity(rows.len());
    for row in rows {
        let stream: String = row.try_get("stream_id")?;
        let result = AppendResult {
            version: from_i64(row.try_get("version")?)?,
            position: from_i64(row.try_get("position")?)?,
        };
        results.insert(stream, result);
    }
    parts
        .iter()
        .map(|part| {
            results.get(part.stream.as_str()).copied().ok_or_else(|| {
                StoreError::Corrupt(format!("no result for {} from the append", part.stream))
            })
        })
        .collect::<Result<_, _>>()
        .map(AtOnce::Appended)
}
