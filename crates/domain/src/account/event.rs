//! Account events: stable stored names, schema version 1.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::values::{Email, Gender, MobileNumber, Role};
use crate::aggregate::DomainEvent;
use crate::ids::AccountId;

/// What happened to an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all_fields = "camelCase")]
pub enum AccountEvent {
    /// The account was opened.
    #[serde(rename = "AccountRegistered")]
    AccountRegistered {
        /// Account id.
        id: AccountId,
        /// Role.
        role: Role,
        /// Trimmed login name.
        username: String,
        /// Trimmed display name.
        name: String,
        /// Normalised e-mail address.
        email: Option<Email>,
        /// Normalised mobile number.
        mobile_number: Option<MobileNumber>,
        /// Gender.
        gender: Option<Gender>,
        /// Password hash.
        password_hash: String,
        /// When.
        registered_at: DateTime<Utc>,
    },
    /// A customer's profile changed; only the changed fields are present.
    #[serde(rename = "CustomerProfileUpdated")]
    CustomerProfileUpdated {
        /// New display name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// New gender.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gender: Option<Gender>,
        /// When.
        at: DateTime<Utc>,
    },
    /// The password hash was replaced.
    #[serde(rename = "PasswordChanged")]
    PasswordChanged {
        /// The new hash.
        password_hash: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The account may no longer sign in.
    #[serde(rename = "AccountLocked")]
    AccountLocked {
        /// Why.
        reason: String,
        /// When.
        at: DateTime<Utc>,
    },
    /// The account may sign in again.
    #[serde(rename = "AccountUnlocked")]
    AccountUnlocked {
        /// When.
        at: DateTime<Utc>,
    },
}

impl DomainEvent for AccountEvent {
    fn event_type(&self) -> &'static str {
        match self {
            AccountEvent::AccountRegistered { .. } => "AccountRegistered",
            AccountEvent::CustomerProfileUpdated { .. } => "CustomerProfileUpdated",
            AccountEvent::PasswordChanged { .. } => "PasswordChanged",
            AccountEvent::AccountLocked { .. } => "AccountLocked",
            AccountEvent::AccountUnlocked { .. } => "AccountUnlocked",
        }
    }

    fn schema_version(_event_type: &str) -> u32 {
        1
    }

    fn upcast(_event_type: &str, _schema_version: u32, payload: Value) -> Value {
        payload
    }
}
