//! Uniqueness across aggregates (an e-mail, a mobile number, a username, a SKU): a claim
//! is the first event of a `unique-{kind}-{key}` stream, appended only if the stream is
//! unclaimed, so two concurrent claims of one key cannot both succeed. A claim names its
//! owner (`account-…`, `product-…`) and can be released when the owning command fails.
use domain::aggregate::{Aggregate, DomainEvent};
use eventstore::StreamId;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use web::ApiError;

use crate::service::{CommandMeta, CommandService};

/// The kinds of unique keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    /// A customer's e-mail address (lower-cased).
    Email,
    /// A customer's mobile number (normalised).
    Mobile,
    /// A back-office username.
    Username,
    /// A variant's SKU.
    Sku,
}

impl KeyKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::Mobile => "mobile",
            Self::Username => "username",
            Self::Sku => "sku",
        }
    }

    /// The claim stream for `key`.
    pub fn stream(self, key: &str) -> StreamId {
        StreamId::of("unique", format_args!("{}-{key}", self.as_str()))
    }
}

/// Events of a claim stream.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all_fields = "camelCase")]
pub enum ClaimEvent {
    /// The key now belongs to `owner`.
    #[serde(rename = "UniqueKeyClaimed")]
    Claimed {
        /// Owning stream, e.g. `product-…`.
        owner: String,
    },
    /// The key is free again.
    #[serde(rename = "UniqueKeyReleased")]
    Released {
        /// Who held it.
        owner: String,
    },
}

impl DomainEvent for ClaimEvent {
    fn event_type(&self) -> &'static str {
        match self {
            Self::Claimed { .. } => "UniqueKeyClaimed",
            Self::Released { .. } => "UniqueKeyReleased",
        }
    }

    fn schema_version(_event_type: &str) -> u32 {
        1
    }

    fn upcast(_event_type: &str, _schema_version: u32, payload: Value) -> Value {
        payload
    }
}

/// A claim stream as an aggregate: its state is the current owner.
pub struct UniqueKey;

/// Claim commands.
pub enum ClaimCommand {
    /// Take the key for `owner` (idempotent for the same owner).
    Claim(String),
    /// Give the key up, if `owner` holds it.
    Release(String),
}

/// The key is held by someone else.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("already taken")]
pub struct Taken;

impl Aggregate for UniqueKey {
    const NAME: &'static str = "unique";
    type State = Option<String>;
    type Command = ClaimCommand;
    type Event = ClaimEvent;
    type Error = Taken;

    fn decide(owner: &Option<String>, command: ClaimCommand) -> Result<Vec<ClaimEvent>, Taken> {
        match (owner, command) {
            (None, ClaimCommand::Claim(new)) => Ok(vec![ClaimEvent::Claimed { owner: new }]),
            (Some(current), ClaimCommand::Claim(new)) if *current == new => Ok(vec![]),
            (Some(_), ClaimCommand::Claim(_)) => Err(Taken),
            (Some(current), ClaimCommand::Release(who)) if *current == who => {
                Ok(vec![ClaimEvent::Released { owner: who }])
            }
            (_, ClaimCommand::Release(_)) => Ok(vec![]),
        }
    }

    fn evolve(_owner: Option<String>, event: &ClaimEvent) -> Option<String> {
        match event {
            ClaimEvent::Claimed { owner } => Some(owner.clone()),
            ClaimEvent::Released { .. } => None,
        }
    }
}

/// Claims and looks up unique keys.
#[derive(Clone)]
pub struct Claims {
    commands: CommandService,
}

impl Claims {
    /// Claims over `commands`.
    pub fn new(commands: CommandService) -> Self {
        Self { commands }
    }

    /// Who owns `key`, if anyone.
    pub async fn owner(&self, kind: KeyKind, key: &str) -> Result<Option<String>, ApiError> {
        Ok(self
            .commands
            .load::<UniqueKey>(&kind.stream(key))
            .await?
            .state)
    }

    /// Claims every key for `owner`, in order; on the first one taken, releases those
    /// already claimed and returns which key was taken.
    pub async fn claim_all(
        &self,
        keys: &[(KeyKind, String)],
        owner: &str,
        meta: &CommandMeta,
    ) -> Result<Result<(), (KeyKind, String)>, ApiError> {
        for (i, (kind, key)) in keys.iter().enumerate() {
            let claimed = self
                .commands
                .execute::<UniqueKey, _>(&kind.stream(key), meta, |state| {
                    UniqueKey::decide(state, ClaimCommand::Claim(owner.to_owned())).map_err(
                        |Taken| {
                            ApiError::conflict(
                                "taken",
                                format!("{} {key} is already taken", kind.as_str()),
                            )
                        },
                    )
                })
                .await;
            match claimed {
                Ok(_) => {}
                Err(ApiError::Conflict { code: "taken", .. }) => {
                    self.release_all(&keys[..i], owner, meta).await?;
                    return Ok(Err((*kind, key.clone())));
                }
                Err(err) => {
                    self.release_all(&keys[..i], owner, meta).await?;
                    return Err(err);
                }
            }
        }
        Ok(Ok(()))
    }

    /// Releases every key `owner` holds among `keys`.
    pub async fn release_all(
        &self,
        keys: &[(KeyKind, String)],
        owner: &str,
        meta: &CommandMeta,
    ) -> Result<(), ApiError> {
        for (kind, key) in keys {
            self.commands
                .execute::<UniqueKey, _>(&kind.stream(key), meta, |state| {
                    UniqueKey::decide(state, ClaimCommand::Release(owner.to_owned()))
                        .map_err(|Taken| unreachable_taken())
                })
                .await?;
        }
        Ok(())
    }
}

fn unreachable_taken() -> ApiError {
    ApiError::Internal(anyhow::anyhow!("releasing a claim cannot be refused"))
}
