//! The `customers` projection: one row per account (every role), as the profile reads it.
//!
//! Table `rm_customers` (see `migrations/*/0004_order_read_models.sql`). The password hash
//! is never stored: the row holds what a profile shows, the role and the lock status.
//!
//! Each event is applied by rebuilding the account's state from its row, folding the event
//! with the domain's own `evolve` and writing the row back.
use anyhow::{Context, bail};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    account::{Account, AccountEvent, AccountState, Email, Gender, MobileNumber, Role},
    aggregate::{Aggregate, decode},
    ids::AccountId,
};
use eventstore::RecordedEvent;
use serde_json::Value;
use sqlx::{Any, Row, Transaction};

use crate::runtime::{Projection, parse_timestamp, stream_id, timestamp};

/// The customers read model.
#[derive(Clone, Copy, Debug, Default)]
pub struct CustomersProjection;

impl CustomersProjection {
    /// Its name (checkpoint key).
    pub const NAME: &'static str = "customers";
}

/// The stored text of a role (`ADMIN`, `STAFF`, `CUSTOMER`).
pub fn role_text(role: Role) -> &'static str {
    match role {
        Role::Admin => "ADMIN",
        Role::Staff => "STAFF",
        Role::Customer => "CUSTOMER",
    }
}

/// The stored text of a gender (`FEMALE`, `MALE`, `OTHER`, `UNSPECIFIED`).
pub fn gender_text(gender: Gender) -> &'static str {
    match gender {
        Gender::Female => "FEMALE",
        Gender::Male => "MALE",
        Gender::Other => "OTHER",
        Gender::Unspecified => "UNSPECIFIED",
    }
}

/// Parses a stored value with the domain's own serde (which validates it).
fn parse<T: serde::de::DeserializeOwned>(what: &str, text: String) -> anyhow::Result<T> {
    serde_json::from_value(Value::String(text)).with_context(|| format!("bad stored {what}"))
}

/// The account's state as the read model holds it (`None`: not registered yet). The
/// password hash is not held, so it is empty.
async fn load(
    tx: &mut Transaction<'_, Any>,
    id: AccountId,
) -> anyhow::Result<Option<AccountState>> {
    let Some(row) = sqlx::query(
        "SELECT role, username, name, email, mobile_number, gender, locked, registered_at \
         FROM rm_customers WHERE id = $1",
    )
    .bind(id.to_string())
    .fetch_optional(&mut **tx)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(AccountState {
        id: Some(id),
        role: Some(parse::<Role>("role", row.try_get("role")?)?),
        username: row.try_get("username")?,
        name: row.try_get("name")?,
        email: row
            .try_get::<Option<String>, _>("email")?
            .map(|e| parse::<Email>("e-mail", e))
            .transpose()?,
        mobile_number: row
            .try_get::<Option<String>, _>("mobile_number")?
            .map(|m| parse::<MobileNumber>("mobile number", m))
            .transpose()?,
        gender: row
            .try_get::<Option<String>, _>("gender")?
            .map(|g| parse::<Gender>("gender", g))
            .transpose()?,
        password_hash: String::new(),
        locked: row.try_get::<i64, _>("locked")? != 0,
        registered_at: Some(parse_timestamp(
            &row.try_get::<String, _>("registered_at")?,
        )?),
    }))
}

/// When the event happened.
fn event_time(event: &AccountEvent) -> DateTime<Utc> {
    match event {
        AccountEvent::AccountRegistered { registered_at, .. } => *registered_at,
        AccountEvent::CustomerProfileUpdated { at, .. }
        | AccountEvent::PasswordChanged { at, .. }
        | AccountEvent::AccountLocked { at, .. }
        | AccountEvent::AccountUnlocked { at } => *at,
    }
}

fn check(state: Option<&AccountState>, id: AccountId, event: &AccountEvent) -> anyhow::Result<()> {
    match (state, event) {
        (Some(_), AccountEvent::AccountRegistered { .. }) => bail!("account registered twice"),
        (None, AccountEvent::AccountRegistered { id: registered, .. }) if *registered != id => {
            bail!("AccountRegistered of {registered} in the stream of {id}")
        }
        (None, AccountEvent::AccountRegistered { .. }) | (Some(_), _) => Ok(()),
        (None, _) => bail!("event for an account that was never registered"),
    }
}

async fn save(
    tx: &mut Transaction<'_, Any>,
    id: AccountId,
    state: &AccountState,
    updated_at: DateTime<Utc>,
) -> anyhow::Result<()> {
    let role = state.role.context("account without role")?;
    let registered_at = state
        .registered_at
        .context("account without registration time")?;
    sqlx::query(
        "INSERT INTO rm_customers (id, role, username, name, email, mobile_number, gender, \
             locked, registered_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (id) DO UPDATE SET role = excluded.role, username = excluded.username, \
             name = excluded.name, email = excluded.email, \
             mobile_number = excluded.mobile_number, gender = excluded.gender, \
             locked = excluded.locked, registered_at = excluded.registered_at, \
             updated_at = excluded.updated_at",
    )
    .bind(id.to_string())
    .bind(role_text(role))
    .bind(&state.username)
    .bind(&state.name)
    .bind(state.email.as_ref().map(|e| e.as_str().to_owned()))
    .bind(state.mobile_number.as_ref().map(|m| m.as_str().to_owned()))
    .bind(state.gender.map(|g| gender_text(g).to_owned()))
    .bind(i64::from(state.locked))
    .bind(timestamp(registered_at))
    .bind(timestamp(updated_at))
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[async_trait]
impl Projection for CustomersProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        event.stream.category() == Account::NAME
    }

    async fn apply(
        &self,
        tx: &mut Transaction<'_, Any>,
        recorded: &RecordedEvent,
    ) -> anyhow::Result<()> {
        let event: AccountEvent = decode(
            &recorded.event_type,
            recorded.schema_version,
            recorded.payload.clone(),
        )
        .context("undecodable account event")?;
        let id = stream_id(&recorded.stream, Account::NAME)?;
        let before = load(tx, id).await?;
        check(before.as_ref(), id, &event)?;
        let state = Account::evolve(before.unwrap_or_default(), &event);
        save(tx, id, &state, event_time(&event)).await
    }
}
