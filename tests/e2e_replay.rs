//! `emporium replay`, run as an operator runs it: against the embedded data folder of an
//! `emporium serve` that keeps serving (and projecting) throughout.
mod support;

use std::{
    collections::BTreeMap,
    path::Path,
    process::Output,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use sqlx::{Row, SqlitePool};
use support::{Process, emporium, eventually, spawn_ready};

const READ_MODEL_TABLES: [&str; 12] = [
    "rm_products",
    "rm_product_categories",
    "rm_product_attributes",
    "rm_variants",
    "rm_inventory",
    "rm_reservations",
    "rm_orders",
    "rm_order_counts",
    "rm_customers",
    "rm_sales_daily",
    "rm_sales_days",
    "rm_sales_orders",
];

fn run(data: &Path, args: &[&str]) -> (Output, String) {
    let output = emporium(data).args(args).output().expect("run emporium");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output, printed)
}

async fn start(data: &Path) -> Process {
    let mut command = emporium(data);
    // Cached views outlive the whole test: only the replay watch can drop them.
    command.env("EMPORIUM_CACHE_LOCAL_TTL_SECONDS", "3600");
    spawn_ready(command).await
}

/// Every read-model row, as sorted text.
async fn read_models(db: &SqlitePool) -> BTreeMap<&'static str, Vec<String>> {
    let mut dump = BTreeMap::new();
    for table in READ_MODEL_TABLES {
        let mut rows: Vec<String> =
            sqlx::query(sqlx::AssertSqlSafe(format!("SELECT * FROM {table}")))
                .fetch_all(db)
                .await
                .unwrap()
                .iter()
                .map(|row| {
                    (0..row.len())
                        .map(|i| {
                            row.try_get::<Option<String>, _>(i)
                                .map(|v| v.unwrap_or_default())
                                .or_else(|_| row.try_get::<i64, _>(i).map(|v| v.to_string()))
                                .unwrap()
                        })
                        .collect::<Vec<_>>()
                        .join("|")
                })
                .collect();
        rows.sort();
        dump.insert(table, rows);
    }
    dump
}

/// Waits until every projection has caught up with the log.
async fn caught_up(db: &SqlitePool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let head: i64 = sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
            .fetch_one(db)
            .await
            .unwrap();
        let (projections, behind): (i64, i64) = sqlx::query_as(
            "SELECT count(*), coalesce(sum(position < $1), 0) FROM projection_checkpoints \
             WHERE name IN ('catalog', 'inventory', 'orders', 'customers', 'sales', 'bought_together')",
        )
        .bind(head)
        .fetch_one(db)
        .await
        .unwrap();
        if projections == 6 && behind == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the projector did not catch up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn first_product_names(base: &str) -> Vec<String> {
    let page: Value = reqwest::get(format!("{base}/api/v1/products?pageSize=5&sort=name"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a product page: {page}"))
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_repairs_the_read_models_while_the_server_keeps_serving() {
    let data = tempfile::tempdir().unwrap();
    let (output, printed) = run(data.path(), &["demo"]);
    assert!(output.status.success(), "{printed}");
    let password = printed
        .split("username demo-admin, password ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the demo admin's password is printed")
        .to_owned();
    let server = start(data.path()).await;
    let db = SqlitePool::connect(&format!(
        "sqlite://{}",
        data.path().join("emporium.db").display()
    ))
    .await
    .unwrap();
    caught_up(&db).await;
    let healthy = read_models(&db).await;
    let names = first_product_names(&server.base).await;

    // A bug wrecks the catalogue read model; the next server serves (and caches) the wreck.
    drop(server);
    sqlx::query("UPDATE rm_products SET name = 'Wrecked', name_key = 'wrecked'")
        .execute(&db)
        .await
        .unwrap();
    sqlx::query("DELETE FROM rm_sales_days")
        .execute(&db)
        .await
        .unwrap();
    let server = start(data.path()).await;
    assert!(
        first_product_names(&server.base)
            .await
            .iter()
            .all(|n| n == "Wrecked")
    );

    // Rebuilt while the server runs; its cached pages go with the swap, though the
    // checkpoints they were validated against did not move.
    let (output, printed) = run(data.path(), &["replay", "catalog"]);
    assert!(output.status.success(), "{printed}");
    assert!(
        printed.contains("catalog: swapped in at position"),
        "{printed}"
    );
    assert!(printed.contains("events/s"), "{printed}");
    eventually(
        "the repaired catalogue",
        Duration::from_secs(10),
        || async { (first_product_names(&server.base).await == names).then_some(()) },
    )
    .await;
    assert_ne!(read_models(&db).await, healthy, "sales is still wrecked");

    let (output, printed) = run(data.path(), &["replay"]);
    assert!(output.status.success(), "{printed}");
    for name in ["catalog", "inventory", "orders", "customers", "sales"] {
        assert!(
            printed.contains(&format!("{name}: swapped in")),
            "{name}: {printed}"
        );
    }
    assert_eq!(read_models(&db).await, healthy);

    // The server's projector carries on from the swapped-in checkpoints.
    let client = reqwest::Client::new();
    let login: Value = client
        .post(format!("{}/api/v1/auth/login", server.base))
        .json(&json!({"username": "demo-admin", "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["accessToken"].as_str().expect("a token").to_owned();
    let sku = sqlx::query_scalar::<_, String>("SELECT sku FROM rm_inventory ORDER BY sku LIMIT 1")
        .fetch_one(&db)
        .await
        .unwrap();
    let before: i64 = sqlx::query_scalar("SELECT on_hand FROM rm_inventory WHERE sku = $1")
        .bind(&sku)
        .fetch_one(&db)
        .await
        .unwrap();
    let restock: Value = client
        .post(format!(
            "{}/api/v1/inventory/{sku}/adjustments",
            server.base
        ))
        .bearer_auth(&token)
        .json(&json!({"delta": 7, "reason": "after the replay"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let level: Value = client
        .get(format!(
            "{}/api/v1/inventory/{sku}?minPosition={}",
            server.base, restock["position"]
        ))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(level["onHand"], before + 7, "{level}");

    // Mistakes are explained.
    let (output, printed) = run(data.path(), &["replay", "nope"]);
    assert!(!output.status.success());
    assert!(
        printed.contains("unknown projection \"nope\"")
            && printed
                .contains("catalog, inventory, orders, customers, sales, bought_together, or all"),
        "{printed}"
    );
    let (output, printed) = run(data.path(), &["replay", "--help"]);
    assert!(output.status.success(), "{printed}");
    assert!(printed.contains("keep serving"), "{printed}");
    drop(server);
}
