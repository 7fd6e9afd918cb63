//! `emporium admin create`: a back-office account from the command line. The password
//! comes from a prompt that does not echo it (typed twice), or from standard input when
//! that is not a terminal; never from a flag (flags end up in shell history and `ps`).
use std::io::{BufRead, IsTerminal};

use anyhow::{Context, bail};
use command_api::service::CommandMeta;
use domain::{account::Role, ids::AccountId};

use crate::{backends::Backends, serve::command_config, settings::Settings};

fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    let password = if stdin.is_terminal() {
        let first = rpassword::prompt_password("Password for the new account: ")
            .context("reading the password")?;
        let again = rpassword::prompt_password("The same password again: ")
            .context("reading the password")?;
        if first != again {
            bail!("the two passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        stdin
            .lock()
            .read_line(&mut line)
            .context("reading the password from standard input")?;
        line.trim_end_matches(['\r', '\n']).to_owned()
    };
    if password.chars().count() < 8 {
        bail!("the password must have at least 8 characters");
    }
    Ok(password)
}

/// Creates an ADMIN or STAFF account.
pub async fn create(
    settings: &Settings,
    username: &str,
    name: &str,
    role: &str,
) -> anyhow::Result<()> {
    let role = match role.to_ascii_uppercase().as_str() {
        "ADMIN" => Role::Admin,
        "STAFF" => Role::Staff,
        other => bail!("--role must be ADMIN or STAFF, not {other}"),
    };
    let password = read_password()?;
    let backends = Backends::open(settings).await?;
    let mut config = command_config(settings);
    config.bootstrap_admin = None;
    let state = command_api::build_state(backends.store, backends.sql, &config).await?;
    let meta = CommandMeta::by("cli");
    let (id, _) = command_api::bootstrap::create_back_office_account(
        &state,
        AccountId::new(uuid::Uuid::now_v7()),
        role,
        username,
        name,
        &password,
        &meta,
    )
    .await
    .map_err(|err| anyhow::anyhow!("{}", err.problem().detail))?;
    println!("created {role:?} account {username} ({id})");
    Ok(())
}
