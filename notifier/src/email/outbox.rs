//! The `email_outbox` table: the durable queue of e-mails to send.
//!
//! Writers add rows (the recorder, keyed by event id; the command side, for password
//! resets, in the transaction that stores the reset token). The sender claims due rows
//! with a lease, one conditional `UPDATE` per row, so two senders never send one row at
//! once and no transaction stays open during the SMTP conversation; a sender that dies
//! leaves a lease that expires, and the row is tried again. Settling an attempt is
//! conditional on the lease still being the one taken, so a late sender cannot overwrite
//! a newer attempt.
//!
//! Statuses: `pending` (waiting or leased), `sent`, `dead` (gave up after the last
//! attempt). The data of a secret message (a reset token) is wiped once it is settled.
use serde_json::Value;
use sqlx::{AnyPool, Row};

use super::templates::Template;

/// A message to queue.
#[derive(Clone, Debug)]
pub struct NewEmail {
    /// Unique: the event id for event e-mails, so a redelivered event adds nothing.
    pub id: String,
    /// Which message.
    pub template: Template,
    /// The address it goes to.
    pub recipient: String,
    /// The template's data.
    pub data: Value,
}

/// Queues `email` to be sent at once. Returns `false` when a row with its id exists.
///
/// # Errors
/// The database failed.
pub async fn enqueue(sql: &AnyPool, email: &NewEmail, now_ms: i64) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO email_outbox (id, template, recipient, data, status, attempts, \
         next_attempt_at, created_at) VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5) \
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(&email.id)
    .bind(email.template.name())
    .bind(&email.recipient)
    .bind(email.data.to_string())
    .bind(now_ms)
    .execute(sql)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}

/// A row claimed for one attempt.
#[derive(Clone, Debug)]
pub struct Claimed {
    /// Its id.
    pub id: String,
    /// Its template's stored name.
    pub template: String,
    /// Its recipient.
    pub recipient: String,
    /// Its data (JSON text).
    pub data: String,
    /// Attempts made before this one.
    pub attempts: i64,
    /// The lease taken: settling needs it.
    pub lease_until: i64,
}

/// Claims up to `limit` rows due at `now_ms`, leasing each until `lease_until`.
///
/// # Errors
/// The database failed.
pub async fn claim_due(
    sql: &AnyPool,
    now_ms: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<Claimed>, sqlx::Error> {
    let candidates: Vec<String> = sqlx::query_scalar(
        "SELECT id FROM email_outbox WHERE status = 'pending' AND next_attempt_at <= $1 \
         AND (lease_until IS NULL OR lease_until < $1) ORDER BY next_attempt_at LIMIT $2",
    )
    .bind(now_ms)
    .bind(limit)
    .fetch_all(sql)
    .await?;
    let mut claimed = Vec::with_capacity(candidates.len());
    for id in candidates {
        let row = sqlx::query(
            "UPDATE email_outbox SET lease_until = $1 WHERE id = $2 AND status = 'pending' \
             AND (lease_until IS NULL OR lease_until < $3) \
             RETURNING id, template, recipient, data, attempts",
        )
        .bind(lease_until)
        .bind(&id)
        .bind(now_ms)
        .fetch_optional(sql)
        .await?;
        if let Some(row) = row {
            claimed.push(Claimed {
                id: row.get(0),
                template: row.get(1),
                recipient: row.get(2),
                data: row.get(3),
                attempts: row.get(4),
                lease_until,
            });
        }
    }
    Ok(claimed)
}

/// What became of an attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Settled {
    /// Handed to the SMTP server (or written to the outbox folder).
    Sent,
    /// Failed; tried again at this time (ms).
    RetryAt(i64, String),
    /// Failed for the last time.
    Dead(String),
}

/// Records the outcome of the attempt on `claimed`. Returns `false` when the lease was
/// lost meanwhile (another sender took the row): nothing is changed then.
///
/// # Errors
/// The database failed.
pub async fn settle(
    sql: &AnyPool,
    claimed: &Claimed,
    outcome: &Settled,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    let (status, next, error, sent_at) = match outcome {
        Settled::Sent => ("sent", claimed.lease_until, None, Some(now_ms)),
        Settled::RetryAt(at, error) => ("pending", *at, Some(error.clone()), None),
        Settled::Dead(error) => ("dead", claimed.lease_until, Some(error.clone()), None),
    };
    let wipe =
        status != "pending" && Template::parse(&claimed.template).is_some_and(Template::is_secret);
    let updated = sqlx::query(
        "UPDATE email_outbox SET status = $1, attempts = attempts + 1, next_attempt_at = $2, \
         last_error = $3, sent_at = $4, lease_until = NULL, \
         data = CASE WHEN $5 = 1 THEN '{}' ELSE data END \
         WHERE id = $6 AND lease_until = $7",
    )
    .bind(status)
    .bind(next)
    .bind(error)
    .bind(sent_at)
    .bind(i64::from(wipe))
    .bind(&claimed.id)
    .bind(claimed.lease_until)
    .execute(sql)
    .await?
    .rows_affected();
    Ok(updated == 1)
}
