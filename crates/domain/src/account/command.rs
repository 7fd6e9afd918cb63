//! Commands on an account.

use chrono::{DateTime, Utc};

use super::values::{Email, Gender, MobileNumber, Role};
use crate::ids::AccountId;

/// What a caller may ask of an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountCommand {
    /// Open the account. Customers must give both an e-mail address and a mobile number.
    Register {
        /// New id, chosen by the caller.
        id: AccountId,
        /// The account's role; who may create which role is the command layer's call.
        role: Role,
        /// Login name, 1..=254 characters without whitespace.
        username: String,
        /// Display name, 1..=100 characters.
        name: String,
        /// E-mail address (required for customers).
        email: Option<Email>,
        /// Mobile number (required for customers).
        mobile_number: Option<MobileNumber>,
        /// Gender, if given.
        gender: Option<Gender>,
        /// Password hash (PHC string); the domain never sees a password.
        password_hash: String,
        /// When the command was issued.
        now: DateTime<Utc>,
    },
    /// Change a customer's profile; `None` leaves a field as it is.
    UpdateProfile {
        /// New display name.
        name: Option<String>,
        /// New gender.
        gender: Option<Gender>,
        /// When the command was issued.
        now: DateTime<Utc>,
    },
    /// Replace the password hash.
    ChangePassword {
        /// The new hash.
        password_hash: String,
        /// The hash whose password the caller proved, if the change rests on that proof (a
        /// change by the current password, a login's rehash): refused when the account's
        /// hash is no longer it, so a change made meanwhile is never undone. `None` (a
        /// reset by e-mailed token) replaces whatever hash there is.
        replacing: Option<String>,
        /// When the command was issued.
        now: DateTime<Utc>,
    },
    /// Stop the account from signing in.
    Lock {
        /// Why, 1..=200 characters.
        reason: String,
        /// When the command was issued.
        now: DateTime<Utc>,
    },
    /// Let a locked account sign in again.
    Unlock {
        /// When the command was issued.
        now: DateTime<Utc>,
    },
}
