//! Why an account command is refused.

use thiserror::Error;

use crate::validation::Invalid;

/// An account rule that a command would break.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AccountError {
    /// Some fields are malformed; all of them are listed.
    #[error(transparent)]
    Invalid(#[from] Invalid),
    /// `Register` on an account that already exists.
    #[error("the account already exists")]
    AlreadyExists,
    /// Any command but `Register` on an account that does not exist.
    #[error("no such account")]
    NotFound,
    /// `Lock` on a locked account.
    #[error("the account is already locked")]
    AlreadyLocked,
    /// `Unlock` on an account that is not locked.
    #[error("the account is not locked")]
    NotLocked,
    /// `ChangePassword` resting on a password the account no longer has.
    #[error("the password was changed meanwhile")]
    PasswordChangedMeanwhile,
    /// Only customers have a profile to update.
    #[error("only a customer account has a profile to update")]
    NotACustomer,
}
