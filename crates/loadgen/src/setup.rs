//! `loadgen setup`: the load catalogue and customers, made through the public API as an
//! admin and customers would, `--concurrency` requests at a time. Rerunning it keeps what
//! exists (products found by name, customers by e-mail), tops up SKUs whose available
//! stock fell below `--stock`, and logs every customer in again.
use std::{collections::HashMap, time::Duration};

use anyhow::Context;
use futures::{StreamExt, TryStreamExt, stream};
use serde::Deserialize;
use tokio::time::Instant;

use crate::{
    api::{self, CommandAnswer},
    cli::SetupArgs,
    http::{Call, HttpClient},
    state::{ProductRef, State},
    workload::{NAME_PREFIX, product_spec},
};

#[derive(Deserialize)]
struct Page {
    items: Vec<ListedProduct>,
    total: u64,
}

#[derive(Deserialize)]
struct ListedProduct {
    id: String,
    name: String,
    #[serde(default)]
    categories: Vec<String>,
    variants: Vec<ListedVariant>,
}

#[derive(Deserialize)]
struct ListedVariant {
    sku: String,
}

/// The load products already in the store, by name.
async fn existing_products(
    client: &HttpClient,
    query: &str,
) -> anyhow::Result<HashMap<String, ProductRef>> {
    let mut found = HashMap::new();
    for page in 1.. {
        let url = format!("{query}/api/v1/products?q={NAME_PREFIX}&pageSize=100&page={page}");
        let listed: Page = client
            .expect("listing the load catalogue", Call::get(&url))
            .await?
            .json()?;
        let done = listed.items.is_empty() || page * 100 >= listed.total;
        for p in listed.items {
            found.insert(
                p.name.clone(),
                ProductRef {
                    id: p.id,
                    name: p.name,
                    category: p.categories.into_iter().next().unwrap_or_default(),
                    skus: p.variants.into_iter().map(|v| v.sku).collect(),
                },
            );
        }
        if done {
            break;
        }
    }
    Ok(found)
}

/// A product of the catalogue, found or just created.
struct Placed {
    product: ProductRef,
    created: bool,
    position: u64,
}

async fn ensure_product(
    client: &HttpClient,
    command: &str,
    admin: &str,
    existing: &HashMap<String, ProductRef>,
    p: usize,
    skus_per_product: usize,
) -> anyhow::Result<Placed> {
    let spec = product_spec(p, skus_per_product);
    if let Some(product) = existing.get(&spec.name) {
        return Ok(Placed {
            product: product.clone(),
            created: false,
            position: 0,
        });
    }
    let url = format!("{command}/api/v1/products");
    let answer: CommandAnswer = client
        .expect(
            &format!("creating {}", spec.name),
            Call::post(&url, spec.body.to_string()).bearer(Some(admin)),
        )
        .await?
        .json()?;
    Ok(Placed {
        product: ProductRef {
            id: answer.id,
            name: spec.name,
            category: spec.category,
            skus: spec.skus,
        },
        created: true,
        position: answer.position,
    })
}

/// Brings `sku` to at least `stock` available units; answers the adjustment's position
/// (0 when none was needed).
async fn ensure_stock(
    client: &HttpClient,
    (command, query): (&str, &str),
    admin: &str,
    sku: &str,
    fresh: bool,
    stock: i64,
) -> anyhow::Result<u64> {
    let available = if fresh {
        0
    } else {
        api::inventory(client, query, admin, sku, 0)
            .await?
            .available
    };
    if available >= stock {
        return Ok(0);
    }
    api::adjust_stock(client, command, admin, sku, stock - available).await
}

/// Runs `loadgen setup`.
///
/// # Errors
/// When the API refuses something; what was made so far stays.
pub async fn run(args: &SetupArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let client = HttpClient::new(args.concurrency, args.timeout);
    let (command, query) = (args.targets.command(), args.targets.query());
    let admin = api::admin_token(&client, &command, &args.admin).await?;
    let concurrency = args.concurrency.max(1);

    let existing = existing_products(&client, &query).await?;
    let placed: Vec<Placed> = stream::iter(0..args.products)
        .map(|p| {
            ensure_product(
                &client,
                &command,
                &admin,
                &existing,
                p,
                args.skus_per_product,
            )
        })
        .buffered(concurrency)
        .try_collect()
        .await?;
    let created = placed.iter().filter(|p| p.created).count();
    println!(
        "products: {created} created, {} already there ({:.1} s)",
        placed.len() - created,
        started.elapsed().as_secs_f64()
    );

    let stock_work: Vec<(String, bool)> = placed
        .iter()
        .flat_map(|p| p.product.skus.iter().map(|sku| (sku.clone(), p.created)))
        .collect();
    let positions: Vec<u64> =
        stream::iter(stock_work)
            .map(|(sku, fresh)| {
                let (client, admin) = (&client, &admin);
                let (command, query) = (command.as_str(), query.as_str());
                async move {
                    ensure_stock(client, (command, query), admin, &sku, fresh, args.stock).await
                }
            })
            .buffer_unordered(concurrency)
            .try_collect()
            .await?;
    println!(
        "stock: {} SKUs brought to {} available units ({:.1} s)",
        positions.iter().filter(|p| **p > 0).count(),
        args.stock,
        started.elapsed().as_secs_f64()
    );

    let customers: Vec<_> = stream::iter(0..args.customers)
        .map(|i| api::register_customer(&client, &command, i))
        .buffered(concurrency)
        .try_collect()
        .await?;
    println!(
        "customers: {} registered or found and logged in ({:.1} s)",
        customers.len(),
        started.elapsed().as_secs_f64()
    );

    let last = placed
        .iter()
        .map(|p| p.position)
        .chain(positions)
        .max()
        .unwrap_or(0);
    api::wait_for_position(&client, &query, last, Duration::from_secs(120))
        .await
        .context("the read models did not catch up with the setup")?;

    let state = State {
        target: command,
        query_target: query,
        products: placed.into_iter().map(|p| p.product).collect(),
        customers,
    };
    state.save(&args.state)?;
    println!(
        "setup done in {:.1} s: {} products, {} SKUs, {} customers; state in {}",
        started.elapsed().as_secs_f64(),
        state.products.len(),
        state.skus().len(),
        state.customers.len(),
        args.state.display()
    );
    Ok(())
}
