//! Demo data, so a newcomer can try the whole API at once: a catalogue of a few hundred
//! products in ten categories (apparel with sizes and colours), stock for every variant,
//! an admin (the configured first admin, else a demo admin whose password is generated
//! and printed once), customers, and orders in every state. Everything goes through the
//! real command routes, in process, so every rule (validation, unique SKUs, catalogue
//! prices, reservations) applies to it too.
use anyhow::{Context, bail};
use axum::{
    Router,
    body::Body,
    http::{Method, Request, StatusCode},
};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::{backends::Backends, serve::command_config, settings::Settings};

const DEMO_ADMIN: &str = "demo-admin";
const CUSTOMER_PASSWORD: &str = "demo-customer-password";

const CATEGORIES: [(&str, &[&str], &[&str]); 10] = [
    (
        "shirts",
        &["Oxford", "Linen", "Flannel", "Denim", "Poplin"],
        &["shirt", "overshirt", "camp shirt"],
    ),
    (
        "trousers",
        &["Chino", "Cargo", "Wool", "Corduroy", "Linen"],
        &["trousers", "shorts", "joggers"],
    ),
    (
        "shoes",
        &["Leather", "Canvas", "Suede", "Trail", "Court"],
        &["sneaker", "boot", "loafer"],
    ),
    (
        "kitchen",
        &["Cast-iron", "Copper", "Ceramic", "Bamboo", "Steel"],
        &["pan", "kettle", "knife", "bowl"],
    ),
    (
        "home",
        &["Wool", "Cotton", "Oak", "Walnut", "Rattan"],
        &["throw", "cushion", "lamp", "shelf"],
    ),
    (
        "books",
        &[
            "Illustrated",
            "Pocket",
            "Collected",
            "Annotated",
            "Complete",
        ],
        &["atlas", "cookbook", "field guide"],
    ),
    (
        "garden",
        &[
            "Galvanised",
            "Terracotta",
            "Cedar",
            "Folding",
            "Hand-forged",
        ],
        &["planter", "trowel", "bench"],
    ),
    (
        "toys",
        &["Wooden", "Felt", "Magnetic", "Stacking", "Pull-along"],
        &["train", "puzzle", "blocks"],
    ),
    (
        "sports",
        &["Merino", "Carbon", "Grip", "Insulated", "Ultralight"],
        &["bottle", "jacket", "mat"],
    ),
    (
        "electronics",
        &["Braided", "Wireless", "Compact", "Travel", "Desk"],
        &["charger", "speaker", "cable"],
    ),
];
const SIZES: [&str; 4] = ["S", "M", "L", "XL"];
/// Products that demo customers buy together, so recommendations have pairs to show.
const BUNDLES: [&[&str]; 3] = [
    &["Oxford shirt", "Chino trousers", "Leather loafer"],
    &["Cast-iron pan", "Steel knife", "Ceramic bowl"],
    &["Merino jacket", "Trail boot", "Insulated bottle"],
];
const COLOURS: [&str; 3] = ["navy", "sand", "forest"];

struct Api {
    router: Router,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> anyhow::Result<(StatusCode, Value)> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json");
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let response = self
            .router
            .clone()
            .oneshot(request.body(Body::from(body.to_string()))?)
            .await?;
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    async fn expect(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> anyhow::Result<Value> {
        let (status, answer) = self.call(method, path, token, body).await?;
        if !status.is_success() {
            bail!("demo data: {path} answered {status}: {answer}");
        }
        Ok(answer)
    }

    async fn login(&self, username: &str, password: &str) -> anyhow::Result<String> {
        let answer = self
            .expect(
                Method::POST,
                "/api/v1/auth/login",
                None,
                &json!({"username": username, "password": password}),
            )
            .await?;
        answer["accessToken"]
            .as_str()
            .map(str::to_owned)
            .context("login answered no token")
    }
}

/// A demo variant: SKU, price in cents, option values.
type DemoVariant = (String, i64, Value);

/// The demo catalogue: (category, name, variants).
fn catalogue() -> Vec<(&'static str, String, Vec<DemoVariant>)> {
    let mut products = Vec::new();
    for (c, (category, adjectives, nouns)) in CATEGORIES.iter().enumerate() {
        for (a, adjective) in adjectives.iter().enumerate() {
            for (n, noun) in nouns.iter().enumerate() {
                for edition in 0..2 {
                    let name = if edition == 0 {
                        format!("{adjective} {noun}")
                    } else {
                        format!("{adjective} {noun}, second edition")
                    };
                    let code = format!("{}-{a}{n}{edition}", category[..3].to_uppercase());
                    let base = 900
                        + i64::try_from((c * 37 + a * 11 + n * 7 + edition * 5) % 60).unwrap_or(0)
                            * 250;
                    let apparel = c < 3;
                    let variants = if apparel {
                        SIZES
                            .iter()
                            .flat_map(|size| COLOURS.iter().map(move |colour| (size, colour)))
                            .take(6)
                            .map(|(size, colour)| {
                                (
                                    format!("{code}-{size}-{}", colour[..1].to_uppercase()),
                                    base,
                                    json!({"size": size, "colour": colour}),
                                )
                            })
                            .collect()
                    } else {
                        vec![
                            (format!("{code}-STD"), base, json!({})),
                            (
                                format!("{code}-GIFT"),
                                base + 400,
                                json!({"edition": "gift box"}),
                            ),
                        ]
                    };
                    products.push((*category, name, variants));
                }
            }
        }
    }
    products
}

/// Order lines of a bundle: each product once, in a variant that changes from order to
/// order (so no variant runs out); every other order leaves the bundle's last product out.
fn bundle_lines(
    products: &[(&'static str, String, Vec<DemoVariant>)],
    bundle: &[&str],
    order: usize,
) -> anyhow::Result<Vec<Value>> {
    let size = if order.is_multiple_of(2) {
        bundle.len()
    } else {
        bundle.len() - 1
    };
    bundle[..size]
        .iter()
        .map(|name| {
            let (_, _, variants) = products
                .iter()
                .find(|(_, n, _)| n == name)
                .with_context(|| format!("no demo product {name}"))?;
            let (sku, _, _) = &variants[(order / BUNDLES.len()) % variants.len()];
            Ok(json!({"sku": sku, "quantity": 1}))
        })
        .collect()
}

/// The store's first admin, who loads the demo: the one configured with
/// `EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD` (and `EMPORIUM_BOOTSTRAP_ADMIN_USERNAME`) when it is
/// set, as on any empty store; else `demo-admin` with a generated password. Also returns
/// what to print about the password (a configured one is never printed).
fn demo_admin(settings: &Settings) -> (command_api::BootstrapAdmin, String) {
    match &settings.bootstrap_admin_password {
        Some(password) => (
            command_api::BootstrapAdmin {
                username: settings.bootstrap_admin_username.clone(),
                password: password.clone(),
            },
            "password from EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD".into(),
        ),
        None => {
            let password = uuid::Uuid::new_v4().simple().to_string()[..20].to_owned();
            let shown = format!("password {password}   (shown once: note it now)");
            (
                command_api::BootstrapAdmin {
                    username: DEMO_ADMIN.into(),
                    password,
                },
                shown,
            )
        }
    }
}

/// Loads the demo data into an empty store; says so and does nothing on a store with data.
pub async fn load(settings: &Settings) -> anyhow::Result<()> {
    let backends = Backends::open(settings).await?;
    if backends.store.head_position().await? > 0 {
        println!("The store already holds data: demo data not loaded.");
        return Ok(());
    }
    let (demo_admin, shown) = demo_admin(settings);
    let mut config = command_config(settings);
    config.bootstrap_admin = Some(demo_admin.clone());
    let state =
        command_api::build_state(backends.store.clone(), backends.sql.clone(), &config).await?;
    let api = Api {
        router: command_api::router(state),
    };
    let admin = api
        .login(&demo_admin.username, &demo_admin.password)
        .await?;

    let products = catalogue();
    let mut showcase = String::new();
    for (i, (category, name, variants)) in products.iter().enumerate() {
        let brand = ["Northwind", "Contoso", "Fabrikam"][i % 3];
        let body = json!({
            "name": name,
            "description": format!("{name}: part of the Emporium demo catalogue."),
            "categories": [category],
            "attributes": {"brand": brand, "demo": true},
            "variants": variants.iter().map(|(sku, amount, options)| json!({"sku": sku, "price": {"amount": amount, "currency": "EUR"}, "options": options})).collect::<Vec<_>>(),
        });
        let created = api
            .expect(Method::POST, "/api/v1/products", Some(&admin), &body)
            .await?;
        if name == BUNDLES[0][0] {
            showcase = created["id"].as_str().unwrap_or_default().to_owned();
        }
        for (v, (sku, _, _)) in variants.iter().enumerate() {
            let units = 5 + (i * 7 + v * 3) % 60;
            api.expect(
                Method::POST,
                &format!("/api/v1/inventory/{sku}/adjustments"),
                Some(&admin),
                &json!({"delta": units, "reason": "demo delivery"}),
            )
            .await?;
        }
    }

    let names = [
        "Ada Lovelace",
        "Grace Hopper",
        "Alan Turing",
        "Katherine Johnson",
        "Edsger Dijkstra",
    ];
    let mut customers = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let email = format!(
            "{}@example.com",
            name.split(' ').next().unwrap_or("customer").to_lowercase()
        );
        let body = json!({"name": name, "email": email, "mobileNumber": format!("+4915100000{i:02}"), "password": CUSTOMER_PASSWORD});
        api.expect(Method::POST, "/api/v1/auth/register", None, &body)
            .await?;
        customers.push((email.clone(), api.login(&email, CUSTOMER_PASSWORD).await?));
    }
    let address = json!({"name": "Demo Customer", "line1": "1 Example Street", "city": "Berlin", "postalCode": "10115", "country": "DE"});
    let moves: [&[&str]; 5] = [
        &[],
        &["PAID"],
        &["PAID", "PACKED"],
        &["PAID", "PACKED", "SHIP"],
        &["PAID", "PACKED", "SHIP", "DELIVERED"],
    ];
    for o in 0..20 {
        let (_, token) = &customers[o % customers.len()];
        let lines = if o % 4 == 3 {
            let first = &products[(o * 13) % products.len()].2[0].0;
            let second = &products[(o * 29 + 7) % products.len()].2[0].0;
            vec![
                json!({"sku": first, "quantity": 1 + o % 2}),
                json!({"sku": second, "quantity": 1}),
            ]
        } else {
            bundle_lines(&products, BUNDLES[o % BUNDLES.len()], o)?
        };
        let body = json!({"lines": lines, "shippingAddress": address});
        let order = api
            .expect(Method::POST, "/api/v1/orders", Some(token), &body)
            .await?;
        let id = order["id"].as_str().context("order id")?;
        for step in moves[o % moves.len()] {
            if *step == "SHIP" {
                let shipment = json!({"carrier": "DHL", "trackingNumber": format!("JJD00{o:04}")});
                api.expect(
                    Method::POST,
                    &format!("/api/v1/orders/{id}/shipments"),
                    Some(&admin),
                    &shipment,
                )
                .await?;
            } else {
                api.expect(
                    Method::POST,
                    &format!("/api/v1/orders/{id}/status"),
                    Some(&admin),
                    &json!({"status": step}),
                )
                .await?;
            }
        }
        // Some paid orders are cancelled by their customers (allowed until packed).
        if o % 5 == 1 && o % 2 == 0 {
            api.expect(
                Method::POST,
                &format!("/api/v1/orders/{id}/cancel"),
                Some(token),
                &json!({"reason": "demo"}),
            )
            .await?;
        }
    }

    let variants: usize = products.iter().map(|p| p.2.len()).sum();
    println!(
        "Demo data loaded: {} products ({variants} variants) in {} categories, {} customers, 20 orders.",
        products.len(),
        CATEGORIES.len(),
        customers.len()
    );
    println!("  Demo admin:  username {}, {shown}", demo_admin.username);
    println!(
        "  Recommended: /api/v1/products/{showcase}/recommendations ({}: bought together, then similar)",
        BUNDLES[0][0]
    );
    println!(
        "  Customers:   {} (password {CUSTOMER_PASSWORD})",
        customers
            .iter()
            .map(|c| c.0.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
