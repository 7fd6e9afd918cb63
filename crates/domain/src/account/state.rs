//! Account state and `evolve`.

use chrono::{DateTime, Utc};

use super::event::AccountEvent;
use super::values::{Email, Gender, MobileNumber, Role};
use crate::ids::AccountId;

/// An account as its events left it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountState {
    /// Set once registered.
    pub id: Option<AccountId>,
    /// Set once registered.
    pub role: Option<Role>,
    /// Login name.
    pub username: String,
    /// Display name.
    pub name: String,
    /// E-mail address.
    pub email: Option<Email>,
    /// Mobile number.
    pub mobile_number: Option<MobileNumber>,
    /// Gender.
    pub gender: Option<Gender>,
    /// Current password hash.
    pub password_hash: String,
    /// Whether sign-in is refused.
    pub locked: bool,
    /// Registration time.
    pub registered_at: Option<DateTime<Utc>>,
}

impl AccountState {
    /// Whether the account has been registered.
    #[must_use]
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }
}

pub(super) fn evolve(mut state: AccountState, event: &AccountEvent) -> AccountState {
    match event {
        AccountEvent::AccountRegistered {
            id,
            role,
            username,
            name,
            email,
            mobile_number,
            gender,
            password_hash,
            registered_at,
        } => {
            state = AccountState {
                id: Some(*id),
                role: Some(*role),
                username: username.clone(),
                name: name.clone(),
                email: email.clone(),
                mobile_number: mobile_number.clone(),
                gender: *gender,
                password_hash: password_hash.clone(),
                locked: false,
                registered_at: Some(*registered_at),
            };
        }
        AccountEvent::CustomerProfileUpdated { name, gender, .. } => {
            if let Some(name) = name {
                state.name.clone_from(name);
            }
            if gender.is_some() {
                state.gender = *gender;
            }
        }
        AccountEvent::PasswordChanged { password_hash, .. } => {
            state.password_hash.clone_from(password_hash);
        }
        AccountEvent::AccountLocked { .. } => state.locked = true,
        AccountEvent::AccountUnlocked { .. } => state.locked = false,
    }
    state
}
