//! Projector processes as an operator runs them (`emporium serve --role projector` on
//! PostgreSQL), killed with SIGKILL:
//! - killed again and again at random points while orders keep coming, then restarted,
//!   the read models equal those of one uninterrupted run over the same log (invariant 4);
//! - with two projector processes, killing the one that owns the projections hands them
//!   to the other within seconds;
//! - a projection that cannot apply an event shows in `/health/ready` and `/metrics`
//!   while the others carry on, and moves again once it can.
mod support;

use std::{collections::BTreeMap, process::Command, time::Duration};

use eventstore::testsupport::TestPostgres;
use rand::{Rng, SeedableRng, rngs::StdRng};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::PgPool;
use support::{Process, emporium, eventually, get, login, post, spawn_ready};

const ADMIN_PASSWORD: &str = "projector-e2e-password";
const PRODUCTS: usize = 12;
const CUSTOMERS: usize = 4;

fn node(role: &str, db: &TestPostgres, data: &std::path::Path) -> Command {
    let mut command = emporium(data);
    command
        .args(["serve", "--role", role])
        .env("EMPORIUM_DATABASE_URL", &db.url)
        .env("EMPORIUM_DATABASE_MAX_CONNECTIONS", "4")
        .env("EMPORIUM_JWT_PRIVATE_KEY_FILE", data.join("jwt.pem"))
        .env("EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD);
    command
}

/// The read-model projections and their tables.
fn read_models() -> Vec<(&'static str, &'static [&'static str])> {
    projector::default_projections()
        .iter()
        .map(|p| (p.name(), p.tables()))
        .collect()
}

/// Every read-model row as JSON text, sorted, per table.
async fn dump(pool: &PgPool) -> BTreeMap<String, Vec<String>> {
    let mut tables = BTreeMap::new();
    for (_, names) in read_models() {
        for table in names {
            let mut rows: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT row_to_json(t)::text FROM {table} t"
            )))
            .fetch_all(pool)
            .await
            .unwrap();
            rows.sort();
            tables.insert((*table).to_owned(), rows);
        }
    }
    tables
}

/// The sum of the read-model projections' checkpoints (grows with any progress).
async fn progress(pool: &PgPool) -> i64 {
    let names: Vec<&str> = read_models().iter().map(|(name, _)| *name).collect();
    sqlx::query_scalar(
        "SELECT coalesce(sum(position), 0)::bigint FROM projection_checkpoints WHERE name = ANY($1)",
    )
    .bind(names)
    .fetch_one(pool)
    .await
    .unwrap()
}

/// The log's last position.
async fn head(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT coalesce(max(position), 0) FROM events")
        .fetch_one(pool)
        .await
        .unwrap()
}

/// Waits until every read-model projection has reached the log's head.
async fn caught_up(pool: &PgPool) {
    let names: Vec<&str> = read_models().iter().map(|(name, _)| *name).collect();
    let head = head(pool).await;
    eventually(
        "the projections to reach the head",
        Duration::from_secs(120),
        || async {
            let at_head: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM projection_checkpoints WHERE name = ANY($1) AND position >= $2",
            )
            .bind(&names)
            .bind(head)
            .fetch_one(pool)
            .await
            .unwrap();
            (at_head == i64::try_from(names.len()).unwrap()).then_some(())
        },
    )
    .await;
}

/// A shop to write to: its command node, the admin's and customers' tokens.
struct Shop {
    command: Process,
    client: reqwest::Client,
    admin: String,
    customers: Vec<String>,
}

impl Shop {
    async fn open(db: &TestPostgres, data: &std::path::Path) -> Self {
        let command = spawn_ready(node("command", db, data)).await;
        let client = reqwest::Client::new();
        let admin = login(&client, &command.base, "admin", ADMIN_PASSWORD).await;
        let mut shop = Self {
            command,
            client,
            admin,
            customers: Vec::new(),
        };
        for i in 0..PRODUCTS {
            let sku = format!("KILL-{i}");
            shop.admin_post(
                "/api/v1/products",
                json!({"name": format!("Product {i}"), "categories": [format!("c{}", i % 3)],
                "variants": [{"sku": sku, "price": {"amount": 500 + 100 * i, "currency": "EUR"}}]}),
            )
            .await;
            shop.admin_post(
                &format!("/api/v1/inventory/{sku}/adjustments"),
                json!({"delta": 10_000, "reason": "stock"}),
            )
            .await;
        }
        for i in 0..CUSTOMERS {
            let email = format!("buyer{i}@example.com");
            let (status, body) = post(&shop.client, format!("{}/api/v1/auth/register", shop.command.base), None,
                json!({"name": format!("Buyer {i}"), "email": email, "mobileNumber": format!("+4917000000{i}"), "password": "buyer-password"})).await;
            assert_eq!(status, StatusCode::CREATED, "{body}");
            let token = login(&shop.client, &shop.command.base, &email, "buyer-password").await;
            shop.customers.push(token);
        }
        shop
    }

    async fn admin_post(&self, path: &str, body: Value) -> Value {
        let (status, answer) = post(
            &self.client,
            format!("{}{path}", self.command.base),
            Some(&self.admin),
            body,
        )
        .await;
        assert!(status.is_success(), "{path}: {status} {answer}");
        answer
    }

    /// One random step of a shop's life: an order, then maybe its way to delivery or a
    /// cancellation.
    async fn step(&self, rng: &mut StdRng) {
        let customer = &self.customers[rng.gen_range(0..CUSTOMERS)];
        let lines: Vec<Value> = (0..rng.gen_range(1..=3))
            .map(|_| json!({"sku": format!("KILL-{}", rng.gen_range(0..PRODUCTS)), "quantity": rng.gen_range(1..=3)}))
            .collect();
        let (status, order) = post(&self.client, format!("{}/api/v1/orders", self.command.base), Some(customer),
            json!({"lines": lines, "shippingAddress": {"name": "B", "line1": "1 Way", "city": "Berlin", "postalCode": "10115", "country": "DE"}})).await;
        // Two lines of one SKU are refused as a duplicate; that is history too.
        if status != StatusCode::CREATED {
            assert!(status.is_client_error(), "{status} {order}");
            return;
        }
        let id = order["id"].as_str().unwrap().to_owned();
        match rng.gen_range(0..4) {
            0 => {
                let (status, _) = post(
                    &self.client,
                    format!("{}/api/v1/orders/{id}/cancel", self.command.base),
                    Some(customer),
                    json!({}),
                )
                .await;
                assert!(status.is_success());
            }
            1 => {
                for status in ["PAID", "PACKED"] {
                    self.admin_post(
                        &format!("/api/v1/orders/{id}/status"),
                        json!({"status": status}),
                    )
                    .await;
                }
                self.admin_post(
                    &format!("/api/v1/orders/{id}/shipments"),
                    json!({"carrier": "DHL", "trackingNumber": format!("T{id}")}),
                )
                .await;
                self.admin_post(
                    &format!("/api/v1/orders/{id}/status"),
                    json!({"status": "DELIVERED"}),
                )
                .await;
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn projectors_killed_at_random_points_build_what_an_uninterrupted_run_builds() {
    let Some(db) = TestPostgres::new().await else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let pool = PgPool::connect(&db.url).await.unwrap();
    let shop = Shop::open(&db, data.path()).await;

    // Orders keep coming (three buyers at a time) while a projector is started and
    // SIGKILLed, again and again; the first one starts with a backlog to work through.
    let shop = std::sync::Arc::new(shop);
    let (stop_writers, stopped) = tokio::sync::watch::channel(false);
    let writers: Vec<_> = (0..3)
        .map(|seed| {
            let (shop, stopped) = (shop.clone(), stopped.clone());
            tokio::spawn(async move {
                let mut rng = StdRng::seed_from_u64(seed);
                let mut steps = 0;
                while !*stopped.borrow() {
                    shop.step(&mut rng).await;
                    steps += 1;
                }
                steps
            })
        })
        .collect();
    eventually("a backlog of events", Duration::from_secs(120), || async {
        (head(&pool).await >= 400).then_some(())
    })
    .await;
    let mut rng = StdRng::seed_from_u64(7);
    for _ in 0..10 {
        let projector = spawn_ready(node("projector", &db, data.path())).await;
        let before = progress(&pool).await;
        eventually(
            "the projector to make progress",
            Duration::from_secs(60),
            || async { (progress(&pool).await > before).then_some(()) },
        )
        .await;
        // The kill point: somewhere in the middle of its work (the test's input, not a wait).
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..150))).await;
        projector.kill();
    }
    let _ = stop_writers.send(true);
    let mut steps = 0;
    for writer in writers {
        steps += writer.await.unwrap();
    }
    drop(shop);

    let projector = spawn_ready(node("projector", &db, data.path())).await;
    caught_up(&pool).await;
    projector.kill();
    let interrupted = dump(&pool).await;
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    eprintln!("{steps} shop steps, {events} events, 10 projector processes killed");
    assert!(events >= 400, "a long history");

    // The same log, projected by one process that is never interrupted.
    for (name, tables) in read_models() {
        for table in tables {
            sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM {table}")))
                .execute(&pool)
                .await
                .unwrap();
        }
        sqlx::query("DELETE FROM projection_checkpoints WHERE name = $1")
            .bind(name)
            .execute(&pool)
            .await
            .unwrap();
    }
    let projector = spawn_ready(node("projector", &db, data.path())).await;
    caught_up(&pool).await;
    projector.kill();
    let uninterrupted = dump(&pool).await;
    for (table, rows) in &uninterrupted {
        assert_eq!(
            interrupted[table].len(),
            rows.len(),
            "{table} has as many rows"
        );
        assert_eq!(&interrupted[table], rows, "{table} is the same");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_projector_takes_over_when_the_owner_is_killed() {
    let Some(db) = TestPostgres::new().await else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let pool = PgPool::connect(&db.url).await.unwrap();
    let shop = Shop::open(&db, data.path()).await;
    let owner = spawn_ready(node("projector", &db, data.path())).await;
    caught_up(&pool).await;
    // The second process finds every projection owned and stands by.
    let standby = spawn_ready(node("projector", &db, data.path())).await;

    owner.kill();
    let killed = std::time::Instant::now();
    let restock = shop
        .admin_post(
            "/api/v1/inventory/KILL-0/adjustments",
            json!({"delta": 5, "reason": "after the crash"}),
        )
        .await;
    let position = restock["position"].as_i64().unwrap();
    eventually(
        "the standby to project the new event",
        Duration::from_secs(30),
        || async {
            let at: Option<i64> = sqlx::query_scalar(
                "SELECT position FROM projection_checkpoints WHERE name = 'inventory'",
            )
            .fetch_optional(&pool)
            .await
            .unwrap();
            at.filter(|at| *at >= position).map(|_| ())
        },
    )
    .await;
    eprintln!(
        "the standby took over {:?} after the kill",
        killed.elapsed()
    );
    let on_hand: i64 = sqlx::query_scalar("SELECT on_hand FROM rm_inventory WHERE sku = 'KILL-0'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(on_hand, 10_005);
    caught_up(&pool).await;
    drop(standby);
}

/// The checkpoint of projection `name`.
async fn checkpoint(pool: &PgPool, name: &str) -> i64 {
    sqlx::query_scalar("SELECT position FROM projection_checkpoints WHERE name = $1")
        .bind(name)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_projection_degrades_readiness_until_it_can_apply_its_events() {
    let Some(db) = TestPostgres::new().await else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let pool = PgPool::connect(&db.url).await.unwrap();
    let shop = Shop::open(&db, data.path()).await;
    let projector = spawn_ready(node("projector", &db, data.path())).await;
    caught_up(&pool).await;
    let (_, report) = get(
        &shop.client,
        format!("{}/health/ready", projector.base),
        None,
    )
    .await;
    assert_eq!(report["status"], "ready", "{report}");
    assert_eq!(report["checks"]["projections"], "ok", "{report}");

    // An operator's slip: one read model's table renamed away under the running projector.
    sqlx::query("ALTER TABLE rm_sales_daily RENAME TO rm_sales_daily_away")
        .execute(&pool)
        .await
        .unwrap();
    let (status, order) = post(&shop.client, format!("{}/api/v1/orders", shop.command.base), Some(&shop.customers[0]),
        json!({"lines": [{"sku": "KILL-1", "quantity": 2}], "shippingAddress": {"name": "B", "line1": "1 Way", "city": "Berlin", "postalCode": "10115", "country": "DE"}})).await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let placed = order["position"].as_i64().unwrap();

    let report = eventually(
        "readiness to name the stalled projection",
        Duration::from_secs(60),
        || async {
            let (status, report) = get(
                &shop.client,
                format!("{}/health/ready", projector.base),
                None,
            )
            .await;
            // Degraded, not down: the node still does the rest of its work.
            assert_eq!(status, StatusCode::OK, "{report}");
            (report["status"] == "degraded").then_some(report)
        },
    )
    .await;
    let stalled = report["checks"]["projections"].as_str().unwrap();
    assert!(stalled.starts_with("sales: failing since "), "{stalled}");
    assert!(stalled.contains("rm_sales_daily"), "{stalled}");
    assert_eq!(report["checks"]["database"], "ok", "{report}");
    // Only the projection at fault stops: the order's own read model has it.
    eventually(
        "the orders projection to pass the order",
        Duration::from_secs(30),
        || async { (checkpoint(&pool, "orders").await >= placed).then_some(()) },
    )
    .await;
    assert!(checkpoint(&pool, "sales").await < placed);
    let metrics = shop
        .client
        .get(format!("{}/metrics", projector.base))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("emporium_projection_failing{projection=\"sales\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("emporium_projection_failing{projection=\"orders\"} 0"));
    assert!(metrics.contains("emporium_projection_failures_total{projection=\"sales\"}"));

    sqlx::query("ALTER TABLE rm_sales_daily_away RENAME TO rm_sales_daily")
        .execute(&pool)
        .await
        .unwrap();
    eventually(
        "readiness to be whole again",
        Duration::from_secs(60),
        || async {
            let (_, report) = get(
                &shop.client,
                format!("{}/health/ready", projector.base),
                None,
            )
            .await;
            (report["status"] == "ready" && report["checks"]["projections"] == "ok").then_some(())
        },
    )
    .await;
    caught_up(&pool).await;
    let units: i64 =
        sqlx::query_scalar("SELECT coalesce(sum(units), 0)::bigint FROM rm_sales_daily")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(units, 2, "the order counted once it could be");
}
