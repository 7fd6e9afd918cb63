//! `emporium export`, run as a user runs it, next to a running `emporium serve`: orders
//! of several days (back-dated ones written to the log before the server starts, today's
//! placed and cancelled through the API) exported to a folder and to an S3-compatible
//! server (moto), read back with DuckDB, and checked against `GET /api/v1/analytics/sales`;
//! re-runs replace files, never duplicate rows. Embedded (SQLite) and distributed
//! (PostgreSQL) alike.
//!
//! DuckDB (and moto, boto3 for S3) come from Python: `python3 -m pip install duckdb
//! 'moto[server]'`. Without them these tests print "skipped", unless
//! `EMPORIUM_REQUIRE_SERVICES=1`, where they fail.
use std::{
    net::{TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use chrono::{DateTime, Days, Utc};
use domain::{
    account::Role,
    aggregate::{DomainEvent, encode},
    ids::{AccountId, OrderId, ProductId, Sku},
    money::{Currency, Money},
    order::{Actor, OrderEvent, OrderLine, OrderStatus, ShippingAddress},
};
use eventstore::{
    EventStore, ExpectedVersion, NewEvent, StreamId,
    postgres::PostgresConfig,
    sqlite::SqliteEventStore,
    testsupport::{TestPostgres, skip_or_fail},
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

const ADMIN_PASSWORD: &str = "export-bootstrap-password";
/// The first back-dated day; the range exported runs from here to tomorrow.
const FIRST_DAY: &str = "2024-05-01";

// --- the binary ---------------------------------------------------------------------------

/// Kills its process when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where the binary keeps its data: a folder, and PostgreSQL when distributed.
struct Env {
    data: PathBuf,
    database_url: Option<String>,
}

impl Env {
    fn emporium(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_emporium"));
        command
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("EMPORIUM_DATA_DIR", &self.data)
            .env("EMPORIUM_LOG", "warn");
        if let Some(url) = &self.database_url {
            command.env("EMPORIUM_DATABASE_URL", url);
        }
        command
    }

    /// `emporium export` with `args` (and `extra` environment), to completion.
    fn export(&self, args: &[&str], extra: &[(&str, String)]) -> Output {
        let mut command = self.emporium();
        command.arg("export").args(args);
        for (key, value) in extra {
            command.env(key, value);
        }
        command.output().expect("run emporium export")
    }
}

fn export_ok(env: &Env, args: &[&str], extra: &[(&str, String)]) -> String {
    let output = env.export(args, extra);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "emporium export {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

async fn wait_for(what: &str, mut ready: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !ready().await {
        assert!(Instant::now() < deadline, "{what} did not happen in time");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Server {
    _process: Running,
    base: String,
    client: reqwest::Client,
}

impl Server {
    async fn start(env: &Env) -> Self {
        let port = free_port();
        let child = env
            .emporium()
            .env("EMPORIUM_ADDR", format!("127.0.0.1:{port}"))
            .env("EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stdout(Stdio::null())
            .spawn()
            .expect("start emporium");
        let server = Self {
            _process: Running(child),
            base: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::new(),
        };
        let url = format!("{}/health/ready", server.base);
        wait_for("emporium ready", async || {
            let ready = server.client.get(&url).send().await;
            ready.is_ok_and(|r| r.status() == StatusCode::OK)
        })
        .await;
        server
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Value) -> (StatusCode, Value) {
        let mut request = self.client.post(format!("{}{path}", self.base)).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("request");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str, token: &str, min_position: u64) -> Value {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("x-emporium-min-position", min_position.to_string())
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.unwrap()
    }

    async fn login(&self, username: &str, password: &str) -> String {
        let (status, body) = self
            .post(
                "/api/v1/auth/login",
                None,
                json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "login {username}: {body}");
        body["accessToken"].as_str().unwrap().to_owned()
    }
}

// --- the orders -------------------------------------------------------------------------

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn money(amount: i64, currency: &str) -> Money {
    Money {
        amount,
        currency: Currency::parse(currency).unwrap(),
    }
}

fn line(sku: &str, product: u128, quantity: u32, unit: i64, currency: &str) -> OrderLine {
    OrderLine {
        sku: Sku::parse(sku).unwrap(),
        product_id: ProductId::new(Uuid::from_u128(product)),
        name: format!("Archived product {product}"),
        quantity,
        unit_price: money(unit, currency),
        line_total: money(unit * i64::from(quantity), currency),
    }
}

/// Orders placed on earlier days, as the command side would have recorded them then: 05-01
/// (two, one at its last microsecond), 05-02 (one cancelled later, one at its first
/// microsecond), 05-04 (EUR and USD).
async fn write_back_dated_orders(store: &dyn EventStore) {
    let customer = AccountId::new(Uuid::from_u128(0xC0FFEE));
    let orders = [
        (
            vec![
                line("MUG-B", 11, 1, 1_250, "EUR"),
                line("TEA-G", 12, 3, 800, "EUR"),
            ],
            "2024-05-01T08:30:00Z",
        ),
        (
            vec![line("TEA-G", 12, 1, 800, "EUR")],
            "2024-05-01T23:59:59.999999Z",
        ),
        (
            vec![line("MUG-B", 11, 5, 1_250, "EUR")],
            "2024-05-02T09:00:00Z",
        ),
        (
            vec![line("TEA-G", 12, 2, 800, "EUR")],
            "2024-05-02T00:00:00Z",
        ),
        (
            vec![line("MUG-B", 11, 1, 1_250, "EUR")],
            "2024-05-04T10:00:00Z",
        ),
        (
            vec![line("MUG-US", 13, 2, 1_500, "USD")],
            "2024-05-04T11:00:00Z",
        ),
    ];
    let mut ids = Vec::new();
    for (lines, placed_at) in orders {
        let id = OrderId::new(Uuid::now_v7());
        let total = money(
            lines.iter().map(|l| l.line_total.amount).sum(),
            lines[0].line_total.currency.as_str(),
        );
        let placed = OrderEvent::OrderPlaced {
            id,
            customer_id: customer,
            lines,
            total,
            shipping_address: ShippingAddress {
                name: "Ada Lovelace".into(),
                line1: "1 Analytical Way".into(),
                line2: None,
                city: "London".into(),
                region: None,
                postal_code: "N1 9GU".into(),
                country: "GB".into(),
            },
            placed_at: at(placed_at),
        };
        append(store, id, &placed).await;
        ids.push(id);
    }
    let cancelled = OrderEvent::OrderCancelled {
        from: OrderStatus::Placed,
        by: Actor {
            id: customer,
            role: Role::Customer,
        },
        reason: None,
        at: at("2024-05-03T10:00:00Z"),
    };
    append(store, ids[2], &cancelled).await;
}

async fn append(store: &dyn EventStore, id: OrderId, event: &OrderEvent) {
    let (event_type, data) = encode(event);
    let new = NewEvent::new(
        event_type,
        OrderEvent::schema_version(event.event_type()),
        data,
    );
    store
        .append(&StreamId::of("order", id), ExpectedVersion::Any, vec![new])
        .await
        .expect("append");
}

/// Today's orders through the API: one kept, one cancelled by its customer. Returns the
/// admin's token and the log position of the last command.
async fn orders_of_today(server: &Server) -> (String, u64) {
    let admin = server.login("admin", ADMIN_PASSWORD).await;
    let product = json!({"name": "Stoneware mug", "categories": ["kitchen"], "attributes": {},
        "variants": [{"sku": "MUG-S", "price": {"amount": 1_499, "currency": "EUR"}, "options": {}}]});
    let (status, body) = server.post("/api/v1/products", Some(&admin), product).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = server
        .post(
            "/api/v1/inventory/MUG-S/adjustments",
            Some(&admin),
            json!({"delta": 10, "reason": "delivery"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = server.post("/api/v1/auth/register", None,
        json!({"name": "Grace Hopper", "email": "grace@example.com", "mobileNumber": "+15550100", "password": "cobol-rules-1959"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let grace = server.login("grace@example.com", "cobol-rules-1959").await;
    let address = json!({"name": "Grace Hopper", "line1": "1 Navy Yard", "city": "Arlington", "postalCode": "22202", "country": "US"});
    let mut placed = Vec::new();
    for quantity in [3, 1] {
        let (status, order) = server
            .post(
                "/api/v1/orders",
                Some(&grace),
                json!({"lines": [{"sku": "MUG-S", "quantity": quantity}], "shippingAddress": address}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{order}");
        placed.push(order["id"].as_str().unwrap().to_owned());
    }
    let (status, answer) = server
        .post(
            &format!("/api/v1/orders/{}/cancel", placed[1]),
            Some(&grace),
            json!({}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    (admin, answer["position"].as_u64().unwrap())
}

/// The exported range: the first back-dated day to tomorrow (today's orders are in it
/// even if the test runs across midnight).
fn range() -> (String, String) {
    let tomorrow = Utc::now().date_naive() + Days::new(1);
    (FIRST_DAY.to_owned(), tomorrow.to_string())
}

/// Sales by day as the API reports them, once both read models reflect `position`:
/// sorted `[day, currency, orders, units, revenue]`.
async fn sales_report(server: &Server, admin: &str, position: u64) -> Vec<Value> {
    let (from, to) = range();
    // The export reads the orders read model: wait for it too.
    server
        .get("/api/v1/orders?pageSize=1", admin, position)
        .await;
    let report = server
        .get(
            &format!("/api/v1/analytics/sales?from={from}&to={to}"),
            admin,
            position,
        )
        .await;
    let mut rows: Vec<Value> = report["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            json!([
                item["day"],
                item["revenue"]["currency"],
                item["orders"],
                item["units"],
                item["revenue"]["amount"]
            ])
        })
        .collect();
    rows.sort_by_key(|row| row.to_string());
    rows
}

// --- DuckDB ------------------------------------------------------------------------------

/// Reads an exported lake with DuckDB: `local DIR`, or `s3 ENDPOINT BUCKET PREFIX` (the
/// objects are listed and fetched with boto3, then read from a local copy: DuckDB's own
/// S3 support is an extension it would download). Prints JSON.
const READ_LAKE: &str = r#"
import json, os, sys, tempfile
import duckdb

if sys.argv[1] == "s3":
    import boto3
    endpoint, bucket, prefix = sys.argv[2:5]
    s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
        keys += [o["Key"] for o in page.get("Contents", [])]
    root = tempfile.mkdtemp()
    files = [key[len(prefix) + 1:] for key in keys]
    for key, name in zip(keys, files):
        path = os.path.join(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        s3.download_file(bucket, key, path)
else:
    root = sys.argv[2]
    files = [os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs]

con = duckdb.connect()
lines = f"read_parquet('{root}/order_lines/*/*.parquet', hive_partitioning = true)"
orders = f"read_parquet('{root}/orders/*/*.parquet', hive_partitioning = true)"
days = con.execute(f"""
    SELECT CAST(date AS VARCHAR) AS day, currency, count(DISTINCT order_id) AS orders,
           CAST(sum(quantity) AS BIGINT) AS units, CAST(sum(line_total_minor) AS BIGINT) AS revenue
    FROM {lines} WHERE status <> 'CANCELLED' GROUP BY ALL ORDER BY ALL""").fetchall()
order_rows, distinct_orders, cancelled = con.execute(
    f"SELECT count(*), count(DISTINCT order_id), count(*) FILTER (WHERE status = 'CANCELLED') FROM {orders}").fetchone()
line_rows, distinct_lines = con.execute(
    f"SELECT count(*), count(DISTINCT (order_id, line_number)) FROM {lines}").fetchone()
# Each row lies in the partition of its UTC placement day.
misplaced = con.execute(f"""
    SELECT count(*) FROM (SELECT placed_at, date FROM {orders} UNION ALL SELECT placed_at, date FROM {lines})
    WHERE epoch_us(placed_at) // 86400000000 <> date - DATE '1970-01-01'""").fetchone()[0]
unmatched = con.execute(f"""
    SELECT count(*) FROM {orders} o
    WHERE total_minor <> (SELECT sum(line_total_minor) FROM {lines} l WHERE l.order_id = o.order_id)""").fetchone()[0]
print(json.dumps({
    "files": sorted(files),
    "days": [list(row) for row in days],
    "orders": [order_rows, distinct_orders, cancelled],
    "lines": [line_rows, distinct_lines],
    "misplaced": misplaced,
    "unmatched": unmatched,
}))
"#;

/// Whether `python3` can import `modules`; if not, skipped (or failed when required).
fn python_has(modules: &str) -> bool {
    let checked = Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output();
    match checked {
        Ok(output) if output.status.success() => true,
        Ok(output) => {
            skip_or_fail(
                &format!(
                    "python3 module(s) {modules} (python3 -m pip install duckdb 'moto[server]')"
                ),
                "python3",
                // The error, not the traceback before it.
                &String::from_utf8_lossy(&output.stderr)
                    .lines()
                    .last()
                    .unwrap_or_default(),
            );
            false
        }
        Err(err) => {
            skip_or_fail("python3", "PATH", &err);
            false
        }
    }
}

fn read_lake(args: &[&str]) -> Value {
    let output = Command::new("python3")
        .arg("-c")
        .arg(READ_LAKE)
        .args(args)
        .output()
        .expect("run python3");
    assert!(
        output.status.success(),
        "DuckDB read failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON from the DuckDB script")
}

/// What every export of the scenario must read back as.
fn check_lake(lake: &Value, sales: &[Value]) {
    assert_eq!(
        lake["days"].as_array().unwrap(),
        sales,
        "DuckDB's figures per day are the sales report's"
    );
    // 6 back-dated orders and 2 of today's, 2 of them cancelled, each exactly once.
    assert_eq!(lake["orders"], json!([8, 8, 2]), "{lake}");
    assert_eq!(lake["lines"], json!([9, 9]), "{lake}");
    assert_eq!(lake["misplaced"], 0, "{lake}");
    assert_eq!(lake["unmatched"], 0, "{lake}");
    let files = lake["files"].as_array().unwrap();
    let days = 4; // 05-01, 05-02, 05-04 and today
    assert_eq!(files.len(), 2 * days, "{files:?}");
    assert!(files.iter().all(|f| {
        let f = f.as_str().unwrap();
        (f.starts_with("orders/date=") || f.starts_with("order_lines/date="))
            && f.ends_with("/part-0.parquet")
    }));
}

// --- the scenarios --------------------------------------------------------------------------

/// Runs the server over `env` (back-dated orders written first), places today's orders and
/// returns the server, the admin's token and the sales report by day.
async fn scenario(env: &Env, store: &dyn EventStore) -> (Server, Vec<Value>) {
    write_back_dated_orders(store).await;
    let server = Server::start(env).await;
    let (admin, position) = orders_of_today(&server).await;
    let sales = sales_report(&server, &admin, position).await;
    // Four days, and a currency of its own for the USD order.
    assert_eq!(sales.len(), 5, "{sales:?}");
    (server, sales)
}

/// Exports to a folder twice (the second run replaces, and removes an extra file), reading
/// back with DuckDB each time.
async fn exports_to_a_folder(env: &Env, store: &dyn EventStore) {
    if !python_has("duckdb") {
        return;
    }
    let (_server, sales) = scenario(env, store).await;
    let lake = env.data.join("lake");
    let out = lake.to_str().unwrap();
    let (from, to) = range();
    let printed = export_ok(env, &["--from", &from, "--to", &to, "--out", out], &[]);
    assert!(
        printed.contains("2024-05-01  2 orders, 3 lines"),
        "{printed}"
    );
    assert!(
        printed.contains("exported 8 orders and 9 lines"),
        "{printed}"
    );
    check_lake(&read_lake(&["local", out]), &sales);

    // A file that is not the export's own, in a day partition: the re-run removes it.
    let stray = lake.join("orders/date=2024-05-02/part-1.parquet");
    std::fs::copy(lake.join("orders/date=2024-05-02/part-0.parquet"), &stray).unwrap();
    let printed = export_ok(env, &["--from", &from, "--to", &to, "--out", out], &[]);
    assert!(
        printed.contains("2024-05-02  2 orders, 2 lines, 1 old file(s) removed"),
        "{printed}"
    );
    check_lake(&read_lake(&["local", out]), &sales);

    // A narrower range rewrites only its own days.
    let printed = export_ok(
        env,
        &["--from", "2024-05-04", "--to", "2024-05-04", "--out", out],
        &[],
    );
    assert!(
        printed.contains("exported 2 orders and 2 lines"),
        "{printed}"
    );
    check_lake(&read_lake(&["local", out]), &sales);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_export_reads_back_as_the_sales_report() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env {
        data: dir.path().to_path_buf(),
        database_url: None,
    };
    let store = SqliteEventStore::open(&env.data.join("emporium.db"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    exports_to_a_folder(&env, &store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_export_reads_back_as_the_sales_report() {
    let Some(db) = TestPostgres::new().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let env = Env {
        data: dir.path().to_path_buf(),
        database_url: Some(db.url.clone()),
    };
    exports_to_a_folder(&env, &db.store(&PostgresConfig::default())).await;
}

/// A moto S3 server on a free port, stopped when dropped.
struct Moto {
    _process: Running,
    endpoint: String,
}

impl Moto {
    async fn start() -> Self {
        let port = free_port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        let moto = Self {
            _process: Running(child),
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        wait_for("moto listening", async || {
            TcpStream::connect(("127.0.0.1", port)).is_ok()
        })
        .await;
        moto
    }

    /// The `AWS_*` environment `object_store` reads.
    fn aws_env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", "test".into()),
            ("AWS_SECRET_ACCESS_KEY", "test".into()),
            ("AWS_REGION", "us-east-1".into()),
            ("AWS_ENDPOINT", self.endpoint.clone()),
            ("AWS_ALLOW_HTTP", "true".into()),
        ]
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_export_replaces_objects_and_reads_back_as_the_sales_report() {
    if !python_has("duckdb, boto3, moto.server") {
        return;
    }
    let moto = Moto::start().await;
    let client = reqwest::Client::new();
    // moto takes an unsigned bucket creation.
    let created = client
        .put(format!("{}/lake", moto.endpoint))
        .send()
        .await
        .unwrap();
    assert!(created.status().is_success(), "create bucket: {created:?}");

    let dir = tempfile::tempdir().unwrap();
    let env = Env {
        data: dir.path().to_path_buf(),
        database_url: None,
    };
    let store = SqliteEventStore::open(&env.data.join("emporium.db"))
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let (_server, sales) = scenario(&env, &store).await;
    let (from, to) = range();
    let args = [
        "--from",
        from.as_str(),
        "--to",
        to.as_str(),
        "--out",
        "s3://lake/shop/v1",
    ];
    let printed = export_ok(&env, &args, &moto.aws_env());
    assert!(printed.contains("to s3://lake/shop/v1"), "{printed}");
    let read = ["s3", moto.endpoint.as_str(), "lake", "shop/v1"];
    let first = read_lake(&read);
    check_lake(&first, &sales);

    // An object that is not the export's own, in a day partition: the re-run removes it,
    // and the day's object is overwritten in place, not duplicated.
    let stray = client
        .put(format!(
            "{}/lake/shop/v1/order_lines/date=2024-05-01/part-9.parquet",
            moto.endpoint
        ))
        .body("stray")
        .send()
        .await
        .unwrap();
    assert!(stray.status().is_success());
    let printed = export_ok(&env, &args, &moto.aws_env());
    assert!(
        printed.contains("2024-05-01  2 orders, 3 lines, 1 old file(s) removed"),
        "{printed}"
    );
    let second = read_lake(&read);
    check_lake(&second, &sales);
    assert_eq!(first["files"], second["files"]);
}

#[test]
fn bad_arguments_are_refused_before_anything_is_touched() {
    let dir = tempfile::tempdir().unwrap();
    let env = Env {
        data: dir.path().join("data"),
        database_url: None,
    };
    let out = dir.path().join("lake");
    let out = out.to_str().unwrap();
    let refused = |args: &[&str], why: &str| {
        let output = env.export(args, &[]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} was accepted");
        assert!(stderr.contains(why), "{args:?}: {stderr}");
    };
    refused(
        &["--from", "2024-05-02", "--to", "2024-05-01", "--out", out],
        "--from 2024-05-02 is after --to 2024-05-01",
    );
    refused(
        &["--from", "2024-5-1", "--to", "2024-05-01", "--out", out],
        "not a date written YYYY-MM-DD",
    );
    refused(
        &["--from", "2024-02-30", "--to", "2024-05-01", "--out", out],
        "not a date written YYYY-MM-DD",
    );
    refused(&["--from", "2024-05-01", "--out", out], "--to <YYYY-MM-DD>");
    refused(
        &["--from", "2024-05-01", "--to", "2024-05-01"],
        "--out <DIR|s3://BUCKET/PREFIX>",
    );
    refused(
        &[
            "--from",
            "2024-05-01",
            "--to",
            "2024-05-01",
            "--out",
            "gs://bucket/x",
        ],
        "unsupported destination gs://",
    );
    refused(
        &[
            "--from",
            "2024-05-01",
            "--to",
            "2024-05-01",
            "--out",
            "s3://",
        ],
        "needs a bucket",
    );
    assert!(!env.data.exists(), "no database was created");
    assert!(!Path::new(out).exists(), "no folder was created");

    let help = env.emporium().args(["export", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for expected in [
        "--from <YYYY-MM-DD>",
        "--to <YYYY-MM-DD>",
        "--out <DIR|s3://BUCKET/PREFIX>",
        "date=YYYY-MM-DD",
    ] {
        assert!(help.contains(expected), "{expected} missing from:\n{help}");
    }
}
