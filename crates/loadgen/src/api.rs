//! The few Emporium API calls setup and the checks make, with their answer shapes.
use std::time::Duration;

use anyhow::Context;
use serde::Deserialize;
use serde_json::json;

use crate::{
    hot::Inventory,
    http::{Call, HttpClient},
    state::{Customer, unix_now},
    workload::CUSTOMER_PASSWORD,
};

/// The answer to every command.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CommandAnswer {
    /// The resource.
    pub id: String,
    /// The global position of its last event.
    pub position: u64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Tokens {
    access_token: String,
    expires_in: u64,
}

/// Logs in; answers the access token and when it expires (Unix seconds).
///
/// # Errors
/// When the login is refused.
pub async fn login(
    client: &HttpClient,
    command: &str,
    username: &str,
    password: &str,
) -> anyhow::Result<(String, u64)> {
    let url = format!("{command}/api/v1/auth/login");
    let body = json!({"username": username, "password": password}).to_string();
    let tokens: Tokens = client
        .expect(&format!("login as {username}"), Call::post(&url, body))
        .await?
        .json()?;
    Ok((tokens.access_token, unix_now() + tokens.expires_in))
}

/// Logs a customer in again; keeps their password.
///
/// # Errors
/// When the login is refused.
pub async fn relogin(
    client: &HttpClient,
    command: &str,
    customer: &Customer,
) -> anyhow::Result<Customer> {
    let (access_token, expires_at) =
        login(client, command, &customer.email, &customer.password).await?;
    Ok(Customer {
        access_token,
        expires_at,
        ..customer.clone()
    })
}

/// Registers load customer `i` unless they exist, then logs them in.
///
/// # Errors
/// When sign-up is refused for another reason than an existing account (a 429 says which
/// setting to raise).
pub async fn register_customer(
    client: &HttpClient,
    command: &str,
    i: usize,
) -> anyhow::Result<Customer> {
    let (email, body) = crate::workload::customer_spec(i);
    let url = format!("{command}/api/v1/auth/register");
    let answer = client
        .send(Call::post(&url, body.to_string()))
        .await
        .map_err(|err| anyhow::anyhow!("registering {email}: {err}"))?;
    match answer.status.as_u16() {
        200..=299 | 409 => {}
        429 => anyhow::bail!(
            "sign-up is rate limited (429): start the server with EMPORIUM_RATE_LIMIT_SIGNUP_PER_MINUTE=0 (no limit) for load runs"
        ),
        status => anyhow::bail!("registering {email} answered {status}: {}", answer.text()),
    }
    let (access_token, expires_at) = login(client, command, &email, CUSTOMER_PASSWORD).await?;
    Ok(Customer {
        email,
        password: CUSTOMER_PASSWORD.to_owned(),
        access_token,
        expires_at,
    })
}

/// `GET /api/v1/inventory/{sku}` as an admin, once the read models reached `min_position`.
///
/// # Errors
/// When it does not answer 200.
pub async fn inventory(
    client: &HttpClient,
    query: &str,
    admin: &str,
    sku: &str,
    min_position: u64,
) -> anyhow::Result<Inventory> {
    let url = format!("{query}/api/v1/inventory/{sku}");
    client
        .expect(
            &format!("stock of {sku}"),
            Call::get(&url)
                .bearer(Some(admin))
                .header("x-emporium-min-position", min_position),
        )
        .await?
        .json()
}

/// [`inventory`], once the read models have reached `min_position`: a query node answers
/// 504 after its own wait, and after a heavy scenario the projections may need longer to
/// catch up, so this asks again for up to `patience`.
///
/// # Errors
/// When the read fails otherwise, or the read models stay behind for `patience`.
pub async fn inventory_caught_up(
    client: &HttpClient,
    query: &str,
    admin: &str,
    sku: &str,
    min_position: u64,
    patience: std::time::Duration,
) -> anyhow::Result<Inventory> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match inventory(client, query, admin, sku, min_position).await {
            Err(err)
                if err.to_string().contains("504") && tokio::time::Instant::now() < deadline => {}
            answer => return answer,
        }
    }
}

/// Adds `delta` units of `sku`; answers the position of the adjustment.
///
/// # Errors
/// When the adjustment is refused.
pub async fn adjust_stock(
    client: &HttpClient,
    command: &str,
    admin: &str,
    sku: &str,
    delta: i64,
) -> anyhow::Result<u64> {
    let url = format!("{command}/api/v1/inventory/{sku}/adjustments");
    let body = json!({"delta": delta, "reason": "loadgen"}).to_string();
    let answer: CommandAnswer = client
        .expect(
            &format!("stock adjustment of {sku}"),
            Call::post(&url, body).bearer(Some(admin)),
        )
        .await?
        .json()?;
    Ok(answer.position)
}

/// Waits until the query API's read models have reached `position` (each try waits as
/// long as the server's `EMPORIUM_MIN_POSITION_WAIT_MS`; 504s are retried up to `limit`).
///
/// # Errors
/// When they do not within `limit`.
pub async fn wait_for_position(
    client: &HttpClient,
    query: &str,
    position: u64,
    limit: Duration,
) -> anyhow::Result<()> {
    let url = format!("{query}/api/v1/products?pageSize=1");
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let answer = client
            .send(Call::get(&url).header("x-emporium-min-position", position))
            .await;
        match answer {
            Ok(a) if a.status.is_success() => return Ok(()),
            Ok(a) if a.status.as_u16() == 504 && tokio::time::Instant::now() < deadline => {
                // The server waited already; a short pause keeps a zero wait from spinning.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok(a) => anyhow::bail!(
                "waiting for the read models to reach {position}: {}",
                a.status
            ),
            Err(err) => anyhow::bail!("waiting for the read models to reach {position}: {err}"),
        }
    }
}

/// The admin's token, from `--admin-password`.
///
/// # Errors
/// When no password was given or the login is refused.
pub async fn admin_token(
    client: &HttpClient,
    command: &str,
    admin: &crate::cli::AdminCredentials,
) -> anyhow::Result<String> {
    let password = admin
        .admin_password
        .as_deref()
        .context("an admin password is needed: --admin-password or LOADGEN_ADMIN_PASSWORD")?;
    Ok(login(client, command, &admin.admin_user, password).await?.0)
}
