//! Back-office accounts: [`create_back_office_account`] (shared by the admin route and the
//! CLI) and [`bootstrap_admin`], which creates the first admin on a store that has none.
//!
//! Whether a store has an admin is kept in the index stream `index-admins`: every admin
//! creation appends `AdminAccountRegistered` to it. Bootstrap appends its entry *first*,
//! expecting no stream, so of two processes bootstrapping at once exactly one goes on.
use std::convert::Infallible;

use domain::{
    account::{Account, AccountCommand, Role},
    aggregate::{Aggregate, DomainEvent},
    ids::AccountId,
    validation::Validator,
};
use eventstore::{AppendResult, ExpectedVersion, StoreError, StreamId};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use web::ApiError;

use crate::{auth::password, claims::KeyKind, service::CommandMeta, state::AppState};

/// The index of admin accounts.
pub const ADMIN_INDEX_STREAM: &str = "index-admins";

/// Events of `index-admins`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all_fields = "camelCase")]
pub enum AdminIndexEvent {
    /// An admin account was (or is being) created.
    #[serde(rename = "AdminAccountRegistered")]
    AdminAccountRegistered {
        /// The admin's account.
        account_id: AccountId,
    },
}

impl DomainEvent for AdminIndexEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::AdminAccountRegistered { .. } => "AdminAccountRegistered",
        }
    }

    fn schema_version(_event_type: &str) -> u32 {
        1
    }

    fn upcast(_event_type: &str, _schema_version: u32, payload: Value) -> Value {
        payload
    }
}

/// `index-admins` as an aggregate: its state is the admins registered in it.
#[derive(Debug, Clone, Copy)]
pub struct AdminIndex;

impl Aggregate for AdminIndex {
    const NAME: &'static str = "index";
    type State = Vec<AccountId>;
    type Command = AccountId;
    type Event = AdminIndexEvent;
    type Error = Infallible;

    fn decide(
        _state: &Vec<AccountId>,
        account_id: AccountId,
    ) -> Result<Vec<AdminIndexEvent>, Infallible> {
        Ok(vec![AdminIndexEvent::AdminAccountRegistered { account_id }])
    }

    fn evolve(mut state: Vec<AccountId>, event: &AdminIndexEvent) -> Vec<AccountId> {
        let AdminIndexEvent::AdminAccountRegistered { account_id } = event;
        state.push(*account_id);
        state
    }
}

fn admin_index() -> StreamId {
    StreamId::of("index", "admins")
}

/// A back-office login name, lower-cased: 3..=64 characters of `a-z 0-9 . _ -` starting
/// with a letter, so it can never be mistaken for an e-mail address or a mobile number.
pub fn normalise_username(v: &mut Validator, field: &str, raw: &str) -> String {
    let username = raw.trim().to_lowercase();
    let len = username.chars().count();
    if v.check((3..=64).contains(&len), field, "must be 3 to 64 characters") {
        v.check(
            username.starts_with(|c: char| c.is_ascii_lowercase())
                && username.chars().all(|c| {
                    c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-')
                }),
            field,
            "must start with a letter and contain only letters, digits, '.', '_' and '-'",
        );
    }
    username
}

fn check_back_office(
    role: Role,
    username: &str,
    name: &str,
    password: &str,
) -> Result<String, ApiError> {
    let mut v = Validator::new();
    v.check(role.is_back_office(), "role", "must be ADMIN or STAFF");
    let username = normalise_username(&mut v, "username", username);
    v.text("name", name, 1, 100);
    password::check(&mut v, "password", password);
    v.finish()?;
    Ok(username)
}

/// Creates an admin or staff account: validates, claims the username, hashes the
/// password and registers the account (releasing the claim if that fails). An admin is
/// first recorded in `index-admins`, so the store counts as having an admin from then on
/// and a bootstrap can never add a second one. Answers the account's id (`id`), its
/// stream version and the global position of its registration.
pub async fn create_back_office_account(
    state: &AppState,
    id: AccountId,
    role: Role,
    username: &str,
    name: &str,
    password: &str,
    meta: &CommandMeta,
) -> Result<(AccountId, AppendResult), ApiError> {
    let username = check_back_office(role, username, name, password)?;
    // A keyed request run again after a crash answers with the account its earlier run
    // opened, before the name (its own now) counts as taken.
    if let Some(done) = state
        .commands
        .appended_before::<Account>(&StreamId::of("account", id), meta)
        .await?
    {
        return Ok((id, done.appended()));
    }
    // Fail fast (and leave no index entry) when the name is obviously taken; the claim
    // in `register` is what settles races.
    if state
        .claims
        .owner(KeyKind::Username, &username)
        .await?
        .is_some()
    {
        return Err(username_taken(&username));
    }
    if role == Role::Admin {
        let entry = [AdminIndexEvent::AdminAccountRegistered { account_id: id }];
        state
            .commands
            .append::<AdminIndex>(&admin_index(), ExpectedVersion::Any, &entry, meta)
            .await?;
    }
    register(state, id, role, &username, name, password, meta).await
}

fn username_taken(username: &str) -> ApiError {
    ApiError::conflict(
        "username_taken",
        format!("the username {username} is already taken"),
    )
}

/// Claims `username`, hashes `password` and registers account `id`; the claim is released
/// when the registration fails.
async fn register(
    state: &AppState,
    id: AccountId,
    role: Role,
    username: &str,
    name: &str,
    password: &str,
    meta: &CommandMeta,
) -> Result<(AccountId, AppendResult), ApiError> {
    let password_hash = state.auth.passwords().hash(password).await?;
    let owner = format!("account-{id}");
    let keys = [(KeyKind::Username, username.to_owned())];
    if let Err((_, key)) = state.claims.claim_all(&keys, &owner, meta).await? {
        return Err(username_taken(&key));
    }
    let command = AccountCommand::Register {
        id,
        role,
        username: username.to_owned(),
        name: name.to_owned(),
        email: None,
        mobile_number: None,
        gender: None,
        password_hash,
        now: chrono::Utc::now(),
    };
    let stream = StreamId::of("account", id);
    let registered = state
        .commands
        .execute::<Account, _>(&stream, meta, |account| {
            Account::decide(account, command.clone()).map_err(ApiError::from)
        })
        .await;
    match registered {
        Ok(done) => Ok((id, done.appended())),
        Err(err) => {
            if let Err(release) = state.claims.release_all(&keys, &owner, meta).await {
                tracing::warn!(error = %release, "could not release a username claim");
            }
            Err(err)
        }
    }
}

/// An error for a log line: the problem's detail, or every field error.
fn describe(err: &ApiError) -> String {
    match err {
        ApiError::Validation(errors) => errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
        other => other.problem().detail,
    }
}

/// Creates the first admin, `username` with `password`, if the store has no admin yet.
/// Safe to run from several processes at once: exactly one of them creates it.
pub async fn bootstrap_admin(
    state: &AppState,
    username: &str,
    password: &str,
) -> anyhow::Result<()> {
    let index = admin_index();
    if state.commands.store().stream_version(&index).await? > 0 {
        tracing::debug!("an admin exists; no bootstrap admin is created");
        return Ok(());
    }
    let username = check_back_office(Role::Admin, username, "Administrator", password)
        .map_err(|err| anyhow::anyhow!("the bootstrap admin is invalid: {}", describe(&err)))?;
    if state
        .claims
        .owner(KeyKind::Username, &username)
        .await?
        .is_some()
    {
        anyhow::bail!("cannot bootstrap admin {username}: the username belongs to another account");
    }
    let id = AccountId::new(uuid::Uuid::now_v7());
    let meta = CommandMeta::by("bootstrap");
    let entry = [AdminIndexEvent::AdminAccountRegistered { account_id: id }];
    match state
        .commands
        .append::<AdminIndex>(&index, ExpectedVersion::NoStream, &entry, &meta)
        .await
    {
        Ok(_) => {}
        Err(StoreError::Conflict { .. }) => {
            tracing::debug!("another process is bootstrapping the admin");
            return Ok(());
        }
        Err(err) => return Err(err.into()),
    }
    // From here on no other bootstrap runs: if this fails, `emporium admin create` is the way.
    register(state, id, Role::Admin, &username, "Administrator", password, &meta).await.map_err(|err| {
        anyhow::anyhow!(
            "the bootstrap admin {username} was reserved but could not be created ({}); create an admin with \
             `emporium admin create`",
            describe(&err)
        )
    })?;
    tracing::info!(%username, account = %id, "created the bootstrap admin");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_office_usernames() {
        let mut v = Validator::new();
        assert_eq!(
            normalise_username(&mut v, "username", " Ops.Lead_1 "),
            "ops.lead_1"
        );
        assert!(v.is_ok());
        for bad in [
            "ab",
            "1admin",
            "ann@example.com",
            "+447700900123",
            "a b c",
            &"a".repeat(65),
        ] {
            let mut v = Validator::new();
            normalise_username(&mut v, "username", bad);
            assert!(!v.is_ok(), "{bad:?}");
        }
    }

    #[test]
    fn customers_are_not_back_office() {
        let err = check_back_office(Role::Customer, "ann", "", "short").unwrap_err();
        let ApiError::Validation(errors) = err else {
            panic!("expected 422")
        };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["role", "name", "password"]);
    }

    #[test]
    fn index_events_round_trip() {
        let event = AdminIndexEvent::AdminAccountRegistered {
            account_id: AccountId::new(uuid::Uuid::from_u128(7)),
        };
        let (event_type, data) = domain::aggregate::encode(&event);
        assert_eq!(event_type, "AdminAccountRegistered");
        assert_eq!(data["accountId"], "00000000-0000-0000-0000-000000000007");
        assert_eq!(admin_index().as_str(), ADMIN_INDEX_STREAM);
    }
}
