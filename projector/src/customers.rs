//! The `customers` projection: one row per account (every role), as the profile reads it.
//!
//! Table `rm_customers` (see `migrations/*/0004_order_read_models.sql`). The password hash
//! is never stored: the row holds what a profile shows, the role and the lock status.
//!
//! Events are applied by rebuilding each account's state from its row, folding the events
//! with the domain's own `evolve` and writing the row back: a batch loads every account it
//! touches in one statement and writes each changed account once.
use std::collections::{BTreeMap, HashMap};

use anyhow::{Context, bail};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use domain::{
    account::{Account, AccountEvent, AccountState, Email, Gender, MobileNumber, Role},
    aggregate::Aggregate,
    ids::AccountId,
};
use eventstore::RecordedEvent;
use serde_json::Value;
use sqlx::{Any, AnyConnection, Row, Transaction, any::AnyRow};

use crate::{
    batch::{self, Arg},
    runtime::{Projection, parse_timestamp, stream_id, timestamp},
};

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

/// The states of these accounts as the read model holds them (absent: not registered yet).
/// The password hash is not held, so it is empty.
async fn load(
    conn: &mut AnyConnection,
    ids: &[AccountId],
) -> anyhow::Result<HashMap<AccountId, AccountState>> {
    let keys: Vec<String> = ids.iter().map(ToString::to_string).collect();
    let rows = batch::fetch_in(
        conn,
        "SELECT id, role, username, name, email, mobile_number, gender, locked, registered_at \
         FROM rm_customers WHERE id IN",
        "",
        &keys,
    )
    .await?;
    let mut states = HashMap::with_capacity(rows.len());
    for row in rows {
        let id: AccountId = parse("account id", row.try_get("id")?)?;
        states.insert(id, state_of(id, &row)?);
    }
    Ok(states)
}

fn state_of(id: AccountId, row: &AnyRow) -> anyhow::Result<AccountState> {
    Ok(AccountState {
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
    })
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

fn row(id: AccountId, state: &AccountState, updated_at: DateTime<Utc>) -> anyhow::Result<Vec<Arg>> {
    let role = state.role.context("account without role")?;
    let registered_at = state
        .registered_at
        .context("account without registration time")?;
    Ok(vec![
        id.to_string().into(),
        role_text(role).into(),
        state.username.as_str().into(),
        state.name.as_str().into(),
        state.email.as_ref().map(|e| e.as_str().to_owned()).into(),
        state
            .mobile_number
            .as_ref()
            .map(|m| m.as_str().to_owned())
            .into(),
        state.gender.map(|g| gender_text(g).to_owned()).into(),
        i64::from(state.locked).into(),
        timestamp(registered_at).into(),
        timestamp(updated_at).into(),
    ])
}

async fn save(conn: &mut AnyConnection, rows: Vec<Vec<Arg>>) -> anyhow::Result<()> {
    batch::insert_rows(
        conn,
        "INSERT INTO rm_customers (id, role, username, name, email, mobile_number, gender, \
             locked, registered_at, updated_at)",
        "ON CONFLICT (id) DO UPDATE SET role = excluded.role, username = excluded.username, \
             name = excluded.name, email = excluded.email, \
             mobile_number = excluded.mobile_number, gender = excluded.gender, \
             locked = excluded.locked, registered_at = excluded.registered_at, \
             updated_at = excluded.updated_at",
        rows,
    )
    .await
}

fn decode_one(recorded: &RecordedEvent) -> anyhow::Result<(AccountId, AccountEvent)> {
    let event: AccountEvent =
        batch::decode_event::<AccountEvent>(recorded).context("undecodable account event")?;
    Ok((stream_id(&recorded.stream, Account::NAME)?, event))
}

#[async_trait]
impl Projection for CustomersProjection {
    fn name(&self) -> &'static str {
        Self::NAME
    }

    fn handles(&self, event: &RecordedEvent) -> bool {
        event.stream.category() == Account::NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["rm_customers"]
    }

    /// Loads every account the batch touches in one go, folds the events in memory and
    /// writes each changed account once.
    async fn apply_many(
        &self,
        tx: &mut Transaction<'_, Any>,
        events: &[&RecordedEvent],
    ) -> anyhow::Result<()> {
        let decoded = events
            .iter()
            .map(|recorded| decode_one(recorded).with_context(|| batch::describe(recorded)))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut ids: Vec<AccountId> = decoded.iter().map(|(id, _)| *id).collect();
        ids.sort_unstable();
        ids.dedup();
        let mut states = load(tx, &ids).await?;
        let mut changed: BTreeMap<AccountId, DateTime<Utc>> = BTreeMap::new();
        for ((id, event), recorded) in decoded.iter().zip(events) {
            let before = states.remove(id);
            check(before.as_ref(), *id, event).with_context(|| batch::describe(recorded))?;
            states.insert(*id, Account::evolve(before.unwrap_or_default(), event));
            changed.insert(*id, event_time(event));
        }
        let rows = changed
            .iter()
            .map(|(id, updated_at)| {
                row(
                    *id,
                    states.get(id).context("folded account missing")?,
                    *updated_at,
                )
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        save(tx, rows).await
    }
}
