//! What the auth and account routes do: customer sign-up, login, refresh, logout, and
//! locking accounts. Each takes the [`AppState`] and answers with a value or an
//! [`ApiError`]; the handlers only extract and respond.
use std::net::IpAddr;

use domain::{
    account::{Account, AccountCommand, AccountState, Email, Gender, MobileNumber, Role},
    aggregate::Aggregate,
    ids::AccountId,
    validation::Validator,
};
use eventstore::{AppendResult, StreamId};
use web::{ApiError, AuthUser};

use super::{
    IssuedTokens, password,
    password_reset::{ResetRecipient, invalid_token},
    refresh::Presented,
};
use crate::{
    claims::KeyKind,
    idempotency::KeyedRequest,
    service::{CommandMeta, Executed},
    state::AppState,
};

/// A customer's sign-up, as sent.
#[derive(Clone)]
pub struct SignUp {
    /// Display name.
    pub name: String,
    /// E-mail address (also the username).
    pub email: String,
    /// Mobile number.
    pub mobile_number: String,
    /// Gender, if given.
    pub gender: Option<Gender>,
    /// The password, in clear (never logged).
    pub password: String,
}

impl std::fmt::Debug for SignUp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignUp")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// The one answer to every wrong login, whatever was wrong.
fn invalid_credentials() -> ApiError {
    ApiError::Unauthorized("invalid username or password".into())
}

fn account_locked() -> ApiError {
    ApiError::Forbidden {
        code: "account_locked",
        detail: "this account is locked".into(),
    }
}

fn account_stream(id: AccountId) -> StreamId {
    StreamId::of("account", id)
}

/// Opens a customer account: validates every field, claims the e-mail address and the
/// mobile number (409 `email_taken` / `mobile_taken`), hashes the password and registers
/// the account, its username being the normalised e-mail address. Rate limited per `ip`.
///
/// Keyed, the account is named by its request, and a run after a crash answers with the
/// account its earlier run opened.
pub async fn register_customer(
    state: &AppState,
    ip: Option<IpAddr>,
    keyed: Option<KeyedRequest>,
    sign_up: SignUp,
) -> Result<(AccountId, AppendResult), ApiError> {
    state.auth.limit_signup(ip).await?;
    let mut v = Validator::new();
    v.text("name", &sign_up.name, 1, 100);
    let email = v.parse("email", Email::parse(&sign_up.email));
    let mobile = v.parse("mobileNumber", MobileNumber::parse(&sign_up.mobile_number));
    password::check(&mut v, "password", &sign_up.password);
    v.finish()?;
    let (Some(email), Some(mobile)) = (email, mobile) else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "validated fields are missing"
        )));
    };

    let id = AccountId::new(KeyedRequest::id_or_new(keyed));
    let owner = format!("account-{id}");
    let meta = CommandMeta::for_request(owner.clone(), keyed);
    if let Some(done) = state
        .commands
        .appended_before::<Account>(&account_stream(id), &meta)
        .await?
    {
        return Ok((id, done.appended()));
    }
    let password_hash = state.auth.passwords().hash(&sign_up.password).await?;
    let keys = [
        (KeyKind::Email, email.to_string()),
        (KeyKind::Mobile, mobile.to_string()),
    ];
    if let Err((kind, _)) = state.claims.claim_all(&keys, &owner, &meta).await? {
        return Err(taken(kind));
    }
    let command = AccountCommand::Register {
        id,
        role: Role::Customer,
        username: email.to_string(),
        name: sign_up.name,
        email: Some(email),
        mobile_number: Some(mobile),
        gender: sign_up.gender,
        password_hash,
        now: chrono::Utc::now(),
    };
    let registered = state
        .commands
        .execute::<Account, _>(&account_stream(id), &meta, |account| {
            Account::decide(account, command.clone()).map_err(ApiError::from)
        })
        .await;
    match registered {
        Ok(done) => Ok((id, done.appended())),
        Err(err) => {
            if let Err(release) = state.claims.release_all(&keys, &owner, &meta).await {
                tracing::warn!(error = %release, "could not release the claims of a failed sign-up");
            }
            Err(err)
        }
    }
}

fn taken(kind: KeyKind) -> ApiError {
    let (code, field, detail) = match kind {
        KeyKind::Mobile => (
            "mobile_taken",
            "mobileNumber",
            "an account with this mobile number already exists",
        ),
        _ => (
            "email_taken",
            "email",
            "an account with this e-mail address already exists",
        ),
    };
    let extra = serde_json::Map::from_iter([("field".to_owned(), serde_json::Value::from(field))]);
    ApiError::Conflict {
        code,
        detail: detail.into(),
        extra: Some(extra),
    }
}

/// Which unique key a login name is: an e-mail address (has an `@`), a back-office
/// username (starts with a letter) or a mobile number.
fn login_key(username: &str) -> Option<(KeyKind, String)> {
    let username = username.trim();
    if username.contains('@') {
        Email::parse(username)
            .ok()
            .map(|email| (KeyKind::Email, email.to_string()))
    } else if username.starts_with(|c: char| c.is_ascii_alphabetic()) {
        Some((KeyKind::Username, username.to_lowercase()))
    } else {
        MobileNumber::parse(username)
            .ok()
            .map(|mobile| (KeyKind::Mobile, mobile.to_string()))
    }
}

/// Who a login name belongs to (its claim's owner, `account-…`), if anyone.
async fn owner_of(
    state: &AppState,
    key: Option<&(KeyKind, String)>,
) -> Result<Option<String>, ApiError> {
    match key {
        Some((kind, key)) => state.claims.owner(*kind, key).await,
        None => Ok(None),
    }
}

/// The account in stream `owner`, if it exists.
async fn load_account(
    state: &AppState,
    owner: Option<&str>,
) -> Result<Option<AccountState>, ApiError> {
    let Some(owner) = owner else { return Ok(None) };
    let stream = StreamId::new(owner).map_err(|err| ApiError::Internal(err.into()))?;
    let account = state.commands.load::<Account>(&stream).await?.state;
    Ok(account.exists().then_some(account))
}

/// Signs in with a login name (e-mail address, mobile number or back-office username)
/// and a password. Wrong credentials are one 401 whatever was wrong, answered in the same
/// time (unknown accounts verify a dummy hash); a locked account is a 403, told only to
/// someone who knows its password. Failures are rate limited per `ip` and per account
/// (all its login names together), or per normalised name when it names no account.
pub async fn login(
    state: &AppState,
    ip: Option<IpAddr>,
    username: &str,
    password: &str,
) -> Result<IssuedTokens, ApiError> {
    let key = login_key(username);
    let owner = owner_of(state, key.as_ref()).await?;
    let limit_key = match (&owner, &key) {
        (Some(owner), _) => owner.clone(),
        (None, Some((kind, key))) => kind.stream(key).to_string(),
        (None, None) => username.to_owned(),
    };
    state.auth.check_login(ip, &limit_key).await?;
    let account = load_account(state, owner.as_deref()).await?;
    let hash = account.as_ref().map(|a| a.password_hash.as_str());
    let verified = state.auth.passwords().verify(password, hash).await?;
    let (Some(account), true) = (account, verified) else {
        state.auth.record_login_failure(ip, &limit_key).await;
        return Err(invalid_credentials());
    };
    let (Some(id), Some(role)) = (account.id, account.role) else {
        return Err(invalid_credentials());
    };
    if account.locked {
        return Err(account_locked());
    }
    if !password::is_current(&account.password_hash) {
        rehash(state, id, password, &account.password_hash).await;
    }
    state.auth.issue_tokens(id, role).await
}

/// Hashes `password` anew and makes it account `id`'s, on behalf of the account; with
/// `replacing`, only while the account's hash is still the one whose password the caller
/// proved (409 `password_changed` once another change has come first).
async fn set_password(
    state: &AppState,
    id: AccountId,
    password: &str,
    replacing: Option<&str>,
) -> Result<Executed<Account>, ApiError> {
    let password_hash = state.auth.passwords().hash(password).await?;
    let meta = CommandMeta::by(format!("account-{id}"));
    let now = chrono::Utc::now();
    state
        .commands
        .execute::<Account, _>(&account_stream(id), &meta, |account| {
            Account::decide(
                account,
                AccountCommand::ChangePassword {
                    password_hash: password_hash.clone(),
                    replacing: replacing.map(str::to_owned),
                    now,
                },
            )
            .map_err(ApiError::from)
        })
        .await
}

/// Replaces a hash made with older parameters (Argon2's 19 MiB default, before the
/// current 7 MiB and 5 passes) now that the password is known to be right. Best effort:
/// the login succeeds anyway, and the next one tries again. A password changed since
/// `proven` was read stays: the rehash is then refused.
async fn rehash(state: &AppState, id: AccountId, password: &str, proven: &str) {
    match set_password(state, id, password, Some(proven)).await {
        Ok(_) => tracing::info!(account = %id, "password hash upgraded to the current parameters"),
        Err(err) => {
            tracing::warn!(account = %id, error = %err, "could not upgrade a password hash")
        }
    }
}

/// Trades a refresh token for a new pair. The token is used up (rotation); an unknown,
/// expired, used or revoked token is a 401, and a used or revoked one also revokes its
/// whole family. A locked or missing account's family is revoked too.
pub async fn refresh(state: &AppState, refresh_token: &str) -> Result<IssuedTokens, ApiError> {
    let tokens = state.auth.refresh_tokens();
    let Presented::Live {
        account: id,
        family,
    } = tokens.inspect(refresh_token).await?
    else {
        return Err(ApiError::Unauthorized(
            "the refresh token is invalid, expired or revoked".into(),
        ));
    };
    let account = state
        .commands
        .load::<Account>(&account_stream(id))
        .await?
        .state;
    let role = match account.role {
        Some(role) if !account.locked => role,
        _ => {
            tokens.revoke_family(&family).await?;
            return Err(ApiError::Unauthorized(
                "the refresh token is invalid, expired or revoked".into(),
            ));
        }
    };
    let rotated = tokens.rotate(refresh_token, id, &family).await?;
    state.auth.with_access_token(id, role, rotated.token)
}

/// Revokes the family of `refresh_token` (the session it belongs to). Unknown tokens are
/// ignored, so logging out twice is fine.
pub async fn logout(state: &AppState, refresh_token: &str) -> Result<(), ApiError> {
    state
        .auth
        .refresh_tokens()
        .revoke_family_of(refresh_token)
        .await
}

/// Asks for a password-reset e-mail to `email`. Answers the same whether or not an account
/// has that address, and in the same time: the lookup and the e-mail happen after the
/// answer. Rate limited per `ip` (429); an account gets a few reset e-mails per quarter
/// hour at most, more requests are dropped silently. Locked accounts get none.
pub async fn request_password_reset(
    state: &AppState,
    ip: Option<IpAddr>,
    email: &str,
) -> Result<(), ApiError> {
    state.auth.limit_password_reset(ip).await?;
    let mut v = Validator::new();
    let email = v.parse("email", Email::parse(email));
    v.finish()?;
    let Some(email) = email else {
        return Err(ApiError::Internal(anyhow::anyhow!(
            "validated fields are missing"
        )));
    };
    let state = state.clone();
    tokio::spawn(async move {
        if let Err(err) = send_password_reset(&state, &email).await {
            tracing::warn!(error = %err, "could not start a password reset");
        }
    });
    Ok(())
}

async fn send_password_reset(state: &AppState, email: &Email) -> Result<(), ApiError> {
    let key = (KeyKind::Email, email.to_string());
    let owner = owner_of(state, Some(&key)).await?;
    let Some(account) = load_account(state, owner.as_deref()).await? else {
        return Ok(());
    };
    let Some(id) = account.id else { return Ok(()) };
    if account.locked {
        tracing::info!(account = %id, "no password reset for a locked account");
        return Ok(());
    }
    if !state.auth.may_send_reset(id).await? {
        tracing::info!(account = %id, "password reset e-mails for this account are rate limited");
        return Ok(());
    }
    state
        .auth
        .password_resets()
        .issue(&ResetRecipient {
            account: id,
            name: account.name,
            email: email.to_string(),
        })
        .await?;
    tracing::info!(account = %id, "password reset e-mail queued");
    Ok(())
}

/// Sets a new password with a reset token: the token is used up, the password changed
/// (`PasswordChanged`) and every refresh and access token of the account revoked, so
/// sessions that may belong to whoever knew the old password end. An unknown, expired or used token is
/// a 400 `invalid_reset_token`; if the change itself fails, the token stays usable.
pub async fn confirm_password_reset(
    state: &AppState,
    token: &str,
    new_password: &str,
) -> Result<(AccountId, AppendResult), ApiError> {
    let mut v = Validator::new();
    password::check(&mut v, "newPassword", new_password);
    v.finish()?;
    if token.is_empty() || token.len() > 128 {
        return Err(invalid_token());
    }
    let resets = state.auth.password_resets();
    let Some(id) = resets.redeem(token).await? else {
        return Err(invalid_token());
    };
    let changed = set_password(state, id, new_password, None).await;
    let done = match changed {
        Ok(done) => done,
        Err(err) => {
            if let Err(restore) = resets.restore(token).await {
                tracing::warn!(error = %restore, "could not restore a reset token after a failed change");
            }
            return Err(err);
        }
    };
    let revoked = state.auth.refresh_tokens().revoke_account(id).await?;
    state.auth.revoke_access(id).await?;
    tracing::info!(account = %id, revoked, "password reset");
    Ok((id, done.appended()))
}

/// Changes the caller's own password, proven by the current one, and ends every other
/// session: the account's refresh tokens and the access tokens issued so far are revoked
/// (whoever learnt the old password may hold some), and the caller gets a new pair. A
/// wrong current password is a 422 at `currentPassword`, counted as a failed login of the
/// account (so a stolen access token cannot be used to guess the password faster than a
/// login could: 429 past the limit).
pub async fn change_password(
    state: &AppState,
    ip: Option<IpAddr>,
    by: AuthUser,
    current_password: &str,
    new_password: &str,
) -> Result<IssuedTokens, ApiError> {
    let mut v = Validator::new();
    password::check(&mut v, "newPassword", new_password);
    v.finish()?;
    let owner = account_stream(by.id).to_string();
    state.auth.check_login(ip, &owner).await?;
    let Some(account) = load_account(state, Some(&owner)).await? else {
        return Err(ApiError::Unauthorized(
            "the account no longer exists".into(),
        ));
    };
    if account.locked {
        return Err(account_locked());
    }
    let verified = state
        .auth
        .passwords()
        .verify(current_password, Some(&account.password_hash))
        .await?;
    if !verified {
        state.auth.record_login_failure(ip, &owner).await;
        let mut v = Validator::new();
        v.check(false, "currentPassword", "is not this account's password");
        v.finish()?;
    }
    let role = account.role.unwrap_or(by.role);
    set_password(state, by.id, new_password, Some(&account.password_hash)).await?;
    let revoked = state.auth.refresh_tokens().revoke_account(by.id).await?;
    state.auth.revoke_access(by.id).await?;
    tracing::info!(account = %by.id, revoked, "password changed");
    state.auth.issue_tokens(by.id, role).await
}

/// Updates the caller's own profile: a customer's name and gender (`None` keeps a field).
/// With `expected` (the client's `If-Match`), only while the account is at that version.
pub async fn update_profile(
    state: &AppState,
    by: AuthUser,
    keyed: Option<KeyedRequest>,
    expected: Option<u64>,
    name: Option<String>,
    gender: Option<Gender>,
) -> Result<AppendResult, ApiError> {
    let meta = CommandMeta::for_request(format!("account-{}", by.id), keyed);
    let now = chrono::Utc::now();
    let done = state
        .commands
        .execute_request::<Account, _>(&account_stream(by.id), expected, &meta, |account| {
            Account::decide(
                account,
                AccountCommand::UpdateProfile {
                    name: name.clone(),
                    gender,
                    now,
                },
            )
            .map_err(ApiError::from)
        })
        .await?;
    Ok(done.appended())
}

/// Locks account `id` (by an admin, who may not lock themselves) and revokes its refresh
/// tokens and the access tokens it was issued so far (at once here, within a second on
/// the other nodes).
pub async fn lock_account(
    state: &AppState,
    by: AuthUser,
    keyed: Option<KeyedRequest>,
    id: AccountId,
    reason: String,
) -> Result<AppendResult, ApiError> {
    if by.id == id {
        return Err(ApiError::rule(
            "cannot_lock_self",
            "an admin cannot lock their own account",
        ));
    }
    let meta = CommandMeta::for_request(format!("account-{}", by.id), keyed);
    let now = chrono::Utc::now();
    let done = state
        .commands
        .execute_request::<Account, _>(&account_stream(id), None, &meta, |account| {
            Account::decide(
                account,
                AccountCommand::Lock {
                    reason: reason.clone(),
                    now,
                },
            )
            .map_err(ApiError::from)
        })
        .await?;
    let revoked = state.auth.refresh_tokens().revoke_account(id).await?;
    state.auth.revoke_access(id).await?;
    tracing::info!(account = %id, by = %by.id, revoked, "account locked");
    Ok(done.appended())
}

/// Unlocks account `id`.
pub async fn unlock_account(
    state: &AppState,
    by: AuthUser,
    keyed: Option<KeyedRequest>,
    id: AccountId,
) -> Result<AppendResult, ApiError> {
    let meta = CommandMeta::for_request(format!("account-{}", by.id), keyed);
    let now = chrono::Utc::now();
    let done = state
        .commands
        .execute_request::<Account, _>(&account_stream(id), None, &meta, |account| {
            Account::decide(account, AccountCommand::Unlock { now }).map_err(ApiError::from)
        })
        .await?;
    Ok(done.appended())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_names() {
        assert_eq!(
            login_key(" Ann@Example.com "),
            Some((KeyKind::Email, "ann@example.com".into()))
        );
        assert_eq!(
            login_key("+44 7700-900123"),
            Some((KeyKind::Mobile, "+447700900123".into()))
        );
        assert_eq!(
            login_key("Admin"),
            Some((KeyKind::Username, "admin".into()))
        );
        assert_eq!(login_key("@"), None);
        assert_eq!(login_key("12"), None);
        assert_eq!(login_key(""), None);
    }

    #[test]
    fn taken_names_the_field() {
        let problem = taken(KeyKind::Mobile).problem();
        assert_eq!(problem.code, "mobile_taken");
        assert_eq!(problem.extra.unwrap()["field"], "mobileNumber");
        assert_eq!(taken(KeyKind::Email).problem().code, "email_taken");
    }
}
