//! Accounts: customers, staff and admins, with their credentials and lock status.
//!
//! Stream `account-{id}`. Invariants: a customer always has both an e-mail address and a
//! mobile number (they are its login names); e-mail and mobile number are stored
//! normalised; only a password hash is ever held, never a password. Uniqueness of
//! usernames, e-mails and mobile numbers across accounts is claimed by the command layer
//! in `unique-{kind}-{key}` streams, not here.

mod command;
mod decide;
mod error;
mod event;
mod state;
mod values;

pub use command::AccountCommand;
pub use error::AccountError;
pub use event::AccountEvent;
pub use state::AccountState;
pub use values::{Email, Gender, MobileNumber, Role};

use crate::aggregate::Aggregate;

/// The account aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account;

impl Aggregate for Account {
    const NAME: &'static str = "account";
    type State = AccountState;
    type Command = AccountCommand;
    type Event = AccountEvent;
    type Error = AccountError;

    fn decide(
        state: &AccountState,
        command: AccountCommand,
    ) -> Result<Vec<AccountEvent>, AccountError> {
        decide::decide(state, command)
    }

    fn evolve(state: AccountState, event: &AccountEvent) -> AccountState {
        state::evolve(state, event)
    }
}
