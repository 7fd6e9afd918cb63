//! Account rules: `decide` for every [`AccountCommand`].

use chrono::{DateTime, Utc};

use super::command::AccountCommand;
use super::error::AccountError;
use super::event::AccountEvent;
use super::state::AccountState;
use super::values::{Gender, Role};
use crate::validation::Validator;

const MAX_USERNAME: usize = 254;
const MAX_NAME: usize = 100;
const MAX_LOCK_REASON: usize = 200;

pub(super) fn decide(
    state: &AccountState,
    command: AccountCommand,
) -> Result<Vec<AccountEvent>, AccountError> {
    match command {
        AccountCommand::Register {
            id,
            role,
            username,
            name,
            email,
            mobile_number,
            gender,
            password_hash,
            now,
        } => {
            if state.exists() {
                return Err(AccountError::AlreadyExists);
            }
            let mut v = Validator::new();
            if v.text("username", &username, 1, MAX_USERNAME) {
                v.check(
                    !username.trim().contains(char::is_whitespace),
                    "username",
                    "must not contain whitespace",
                );
            }
            v.text("name", &name, 1, MAX_NAME);
            if role == Role::Customer {
                v.check(email.is_some(), "email", "is required for customers");
                v.check(
                    mobile_number.is_some(),
                    "mobileNumber",
                    "is required for customers",
                );
            }
            check_password_hash(&mut v, &password_hash);
            v.finish()?;
            Ok(vec![AccountEvent::AccountRegistered {
                id,
                role,
                username: username.trim().to_owned(),
                name: name.trim().to_owned(),
                email,
                mobile_number,
                gender,
                password_hash,
                registered_at: now,
            }])
        }
        AccountCommand::UpdateProfile { name, gender, now } => {
            update_profile(state, name, gender, now)
        }
        AccountCommand::ChangePassword {
            password_hash,
            replacing,
            now,
        } => {
            ensure_exists(state)?;
            if replacing.is_some_and(|proven| proven != state.password_hash) {
                return Err(AccountError::PasswordChangedMeanwhile);
            }
            let mut v = Validator::new();
            check_password_hash(&mut v, &password_hash);
            v.finish()?;
            if password_hash == state.password_hash {
                return Ok(vec![]);
            }
            Ok(vec![AccountEvent::PasswordChanged {
                password_hash,
                at: now,
            }])
        }
        AccountCommand::Lock { reason, now } => {
            ensure_exists(state)?;
            if state.locked {
                return Err(AccountError::AlreadyLocked);
            }
            let mut v = Validator::new();
            v.text("reason", &reason, 1, MAX_LOCK_REASON);
            v.finish()?;
            Ok(vec![AccountEvent::AccountLocked {
                reason: reason.trim().to_owned(),
                at: now,
            }])
        }
        AccountCommand::Unlock { now } => {
            ensure_exists(state)?;
            if !state.locked {
                return Err(AccountError::NotLocked);
            }
            Ok(vec![AccountEvent::AccountUnlocked { at: now }])
        }
    }
}

fn update_profile(
    state: &AccountState,
    name: Option<String>,
    gender: Option<Gender>,
    now: DateTime<Utc>,
) -> Result<Vec<AccountEvent>, AccountError> {
    ensure_exists(state)?;
    if state.role != Some(Role::Customer) {
        return Err(AccountError::NotACustomer);
    }
    let mut v = Validator::new();
    if let Some(name) = &name {
        v.text("name", name, 1, MAX_NAME);
    }
    v.finish()?;
    let name = name
        .map(|n| n.trim().to_owned())
        .filter(|n| *n != state.name);
    let gender = gender.filter(|g| Some(*g) != state.gender);
    if name.is_none() && gender.is_none() {
        return Ok(vec![]);
    }
    Ok(vec![AccountEvent::CustomerProfileUpdated {
        name,
        gender,
        at: now,
    }])
}

fn ensure_exists(state: &AccountState) -> Result<(), AccountError> {
    if state.exists() {
        Ok(())
    } else {
        Err(AccountError::NotFound)
    }
}

fn check_password_hash(v: &mut Validator, hash: &str) {
    v.check(!hash.is_empty(), "passwordHash", "must not be empty");
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use uuid::Uuid;

    use super::*;
    use crate::account::{Account, Email, MobileNumber};
    use crate::ids::AccountId;
    use crate::testing::{given, given_no_events};
    use crate::validation::Invalid;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap()
    }
    fn id() -> AccountId {
        AccountId::new(Uuid::from_u128(42))
    }
    fn email() -> Email {
        Email::parse("ann@example.com").unwrap()
    }
    fn mobile() -> MobileNumber {
        MobileNumber::parse("+447700900123").unwrap()
    }
    fn register(role: Role, email: Option<Email>, mobile: Option<MobileNumber>) -> AccountCommand {
        AccountCommand::Register {
            id: id(),
            role,
            username: " ann@example.com ".into(),
            name: " Ann ".into(),
            email,
            mobile_number: mobile,
            gender: Some(Gender::Female),
            password_hash: "$argon2id$hash".into(),
            now: now(),
        }
    }
    fn registered(role: Role) -> AccountEvent {
        AccountEvent::AccountRegistered {
            id: id(),
            role,
            username: "ann@example.com".into(),
            name: "Ann".into(),
            email: Some(email()),
            mobile_number: Some(mobile()),
            gender: Some(Gender::Female),
            password_hash: "$argon2id$hash".into(),
            registered_at: now(),
        }
    }
    fn locked() -> AccountEvent {
        AccountEvent::AccountLocked {
            reason: "fraud".into(),
            at: now(),
        }
    }
    fn invalid_fields(result: Result<Vec<AccountEvent>, AccountError>) -> Vec<String> {
        match result {
            Err(AccountError::Invalid(Invalid(errors))) => {
                errors.into_iter().map(|e| e.field).collect()
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }
    fn update(name: Option<&str>, gender: Option<Gender>) -> AccountCommand {
        AccountCommand::UpdateProfile {
            name: name.map(str::to_owned),
            gender,
            now: now(),
        }
    }

    #[test]
    fn register_customer() {
        let state = given_no_events::<Account>()
            .when(register(Role::Customer, Some(email()), Some(mobile())))
            .then_events(vec![registered(Role::Customer)]);
        assert!(state.exists());
        assert_eq!(state.role, Some(Role::Customer));
        assert!(!state.locked);
    }

    #[test]
    fn register_twice_is_refused() {
        given::<Account>(vec![registered(Role::Customer)])
            .when(register(Role::Customer, Some(email()), Some(mobile())))
            .then_error(AccountError::AlreadyExists);
    }

    #[test]
    fn customers_need_email_and_mobile() {
        let fields = given_no_events::<Account>()
            .when(register(Role::Customer, None, None))
            .then(invalid_fields);
        assert_eq!(fields, ["email", "mobileNumber"]);
    }

    #[test]
    fn staff_need_neither_email_nor_mobile() {
        given_no_events::<Account>()
            .when(register(Role::Staff, None, None))
            .then(|r| assert!(r.is_ok(), "{r:?}"));
    }

    #[test]
    fn register_validates_every_field() {
        let cmd = AccountCommand::Register {
            id: id(),
            role: Role::Admin,
            username: "a b".into(),
            name: "n".repeat(101),
            email: None,
            mobile_number: None,
            gender: None,
            password_hash: String::new(),
            now: now(),
        };
        let fields = given_no_events::<Account>().when(cmd).then(invalid_fields);
        assert_eq!(fields, ["username", "name", "passwordHash"]);
    }

    #[test]
    fn update_profile_records_changes_only() {
        let state = given::<Account>(vec![registered(Role::Customer)])
            .when(update(Some(" Anna "), Some(Gender::Female)))
            .then_events(vec![AccountEvent::CustomerProfileUpdated {
                name: Some("Anna".into()),
                gender: None,
                at: now(),
            }]);
        assert_eq!(state.name, "Anna");
    }

    #[test]
    fn no_op_profile_update_emits_nothing() {
        given::<Account>(vec![registered(Role::Customer)])
            .when(update(Some("Ann"), Some(Gender::Female)))
            .then_no_events();
        given::<Account>(vec![registered(Role::Customer)])
            .when(update(None, None))
            .then_no_events();
    }

    #[test]
    fn update_profile_rules() {
        given_no_events::<Account>()
            .when(update(Some("x"), None))
            .then_error(AccountError::NotFound);
        given::<Account>(vec![registered(Role::Staff)])
            .when(update(Some("x"), None))
            .then_error(AccountError::NotACustomer);
        let fields = given::<Account>(vec![registered(Role::Customer)])
            .when(update(Some(" "), None))
            .then(invalid_fields);
        assert_eq!(fields, ["name"]);
    }

    #[test]
    fn change_password() {
        let change = |hash: &str, replacing: Option<&str>| AccountCommand::ChangePassword {
            password_hash: hash.into(),
            replacing: replacing.map(str::to_owned),
            now: now(),
        };
        let state = given::<Account>(vec![registered(Role::Customer)])
            .when(change("new", None))
            .then_events(vec![AccountEvent::PasswordChanged {
                password_hash: "new".into(),
                at: now(),
            }]);
        assert_eq!(state.password_hash, "new");
        given_no_events::<Account>()
            .when(change("new", None))
            .then_error(AccountError::NotFound);
        let fields = given::<Account>(vec![registered(Role::Customer)])
            .when(change("", None))
            .then(invalid_fields);
        assert_eq!(fields, ["passwordHash"]);
    }

    #[test]
    fn a_change_resting_on_a_proven_password_needs_that_password_still() {
        let proven = "$argon2id$hash".to_owned(); // the hash `registered` gives
        given::<Account>(vec![registered(Role::Customer)])
            .when(AccountCommand::ChangePassword {
                password_hash: "new".into(),
                replacing: Some(proven.clone()),
                now: now(),
            })
            .then_events(vec![AccountEvent::PasswordChanged {
                password_hash: "new".into(),
                at: now(),
            }]);
        // Another change came first: the second, proven against the old hash, is refused.
        let changed = AccountEvent::PasswordChanged {
            password_hash: "theirs".into(),
            at: now(),
        };
        given::<Account>(vec![registered(Role::Customer), changed])
            .when(AccountCommand::ChangePassword {
                password_hash: "mine".into(),
                replacing: Some(proven),
                now: now(),
            })
            .then_error(AccountError::PasswordChangedMeanwhile);
    }

    #[test]
    fn lock_and_unlock() {
        let state = given::<Account>(vec![registered(Role::Customer)])
            .when(AccountCommand::Lock {
                reason: " fraud ".into(),
                now: now(),
            })
            .then_events(vec![locked()]);
        assert!(state.locked);
        let state = given::<Account>(vec![registered(Role::Customer), locked()])
            .when(AccountCommand::Unlock { now: now() })
            .then_events(vec![AccountEvent::AccountUnlocked { at: now() }]);
        assert!(!state.locked);
    }

    #[test]
    fn lock_rules() {
        given::<Account>(vec![registered(Role::Customer), locked()])
            .when(AccountCommand::Lock {
                reason: "again".into(),
                now: now(),
            })
            .then_error(AccountError::AlreadyLocked);
        given::<Account>(vec![registered(Role::Customer)])
            .when(AccountCommand::Unlock { now: now() })
            .then_error(AccountError::NotLocked);
        given_no_events::<Account>()
            .when(AccountCommand::Lock {
                reason: "r".into(),
                now: now(),
            })
            .then_error(AccountError::NotFound);
        given_no_events::<Account>()
            .when(AccountCommand::Unlock { now: now() })
            .then_error(AccountError::NotFound);
        let fields = given::<Account>(vec![registered(Role::Customer)])
            .when(AccountCommand::Lock {
                reason: String::new(),
                now: now(),
            })
            .then(invalid_fields);
        assert_eq!(fields, ["reason"]);
    }

    #[test]
    fn events_round_trip() {
        for e in [
            registered(Role::Admin),
            AccountEvent::CustomerProfileUpdated {
                name: None,
                gender: Some(Gender::Other),
                at: now(),
            },
            locked(),
            AccountEvent::AccountUnlocked { at: now() },
        ] {
            let (t, data) = crate::aggregate::encode(&e);
            assert_eq!(
                crate::aggregate::decode::<AccountEvent>(&t, 1, data).unwrap(),
                e
            );
        }
        let (_, data) = crate::aggregate::encode(&registered(Role::Customer));
        assert_eq!(data["mobileNumber"], "+447700900123");
        assert_eq!(data["role"], "CUSTOMER");
        assert_eq!(data["passwordHash"], "$argon2id$hash");
    }
}
