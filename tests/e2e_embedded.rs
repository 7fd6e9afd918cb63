//! The real `emporium` binary, run as a user runs it: embedded, on a free port, with a
//! data folder of its own. The prototype's flow end to end, a restart that keeps every
//! piece of data, and the admin CLI.
mod support;

use std::{
    io::Write,
    path::Path,
    process::Stdio,
    time::{Duration, Instant},
};

use reqwest::StatusCode;
use serde_json::{Value, json};
use support::{Process, emporium, free_port, get, login, post, spawn_ready};

const ADMIN_PASSWORD: &str = "e2e-bootstrap-password";

async fn start(data: &Path) -> Process {
    let mut command = emporium(data);
    command.env("EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD);
    spawn_ready(command).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_flow_survives_a_restart() {
    let data = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let server = start(data.path()).await;
    let base = server.base.clone();

    let docs = client.get(format!("{base}/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(
        docs.text().await.unwrap().contains("swagger"),
        "Swagger UI is served"
    );
    let spec: Value = client
        .get(format!("{base}/api-docs/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(spec["paths"]["/api/v1/orders"].is_object());
    // Paths served by both sides keep both sides' operations in the one document.
    for (path, methods) in [
        ("/api/v1/products/{id}", ["get", "patch"]),
        ("/api/v1/customers/me", ["get", "patch"]),
        ("/api/v1/admin/accounts", ["get", "post"]),
    ] {
        for method in methods {
            assert!(spec["paths"][path][method].is_object(), "{method} {path}");
        }
    }

    let admin = login(&client, &base, "admin", ADMIN_PASSWORD).await;
    let product = json!({"name": "Walnut desk", "categories": ["furniture"], "attributes": {"wood": "walnut"},
        "variants": [{"sku": "DESK-W", "price": {"amount": 89_900, "currency": "EUR"}, "options": {"size": "140cm"}}]});
    let (status, _) = post(
        &client,
        format!("{base}/api/v1/products"),
        Some(&admin),
        product,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, restocked) = post(
        &client,
        format!("{base}/api/v1/inventory/DESK-W/adjustments"),
        Some(&admin),
        json!({"delta": 3, "reason": "first delivery"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // The customer's view of the catalogue, read-your-writes on the restock's position.
    let listed: Value = client
        .get(format!("{base}/api/v1/products?category=furniture"))
        .header("x-emporium-min-position", restocked["position"].to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["total"], 1, "{listed}");
    assert_eq!(
        listed["items"][0]["variants"][0]["available"], 3,
        "{listed}"
    );
    // Full-text search, from this node's own index, with a typo.
    let searched: Value = client
        .get(format!("{base}/api/v1/search?q=walnot"))
        .header("x-emporium-min-position", restocked["position"].to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(searched["items"][0]["name"], "Walnut desk", "{searched}");
    let (status, _) = post(&client, format!("{base}/api/v1/auth/register"), None,
        json!({"name": "Grace Hopper", "email": "grace@example.com", "mobileNumber": "+15550100", "password": "cobol-rules-1959"})).await;
    assert_eq!(status, StatusCode::CREATED);
    let grace = login(&client, &base, "grace@example.com", "cobol-rules-1959").await;
    // Her profile: changed through the command side, read back from the read model.
    let renamed: Value = client
        .patch(format!("{base}/api/v1/customers/me"))
        .bearer_auth(&grace)
        .json(&json!({"name": "Grace Brewster Hopper"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let profile: Value = client
        .get(format!("{base}/api/v1/customers/me"))
        .bearer_auth(&grace)
        .header("x-emporium-min-position", renamed["position"].to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(profile["name"], "Grace Brewster Hopper", "{profile}");
    let address = json!({"name": "Grace Hopper", "line1": "1 Navy Yard", "city": "Arlington", "postalCode": "22202", "country": "US"});
    let (status, order) = post(
        &client,
        format!("{base}/api/v1/orders"),
        Some(&grace),
        json!({"lines": [{"sku": "DESK-W", "quantity": 2}], "shippingAddress": address}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{order}");
    let order_id = order["id"].as_str().unwrap().to_owned();
    for next in ["PAID", "PACKED"] {
        let (status, _) = post(
            &client,
            format!("{base}/api/v1/orders/{order_id}/status"),
            Some(&admin),
            json!({"status": next}),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
    }
    drop(server);

    // Everything is still there after a restart: accounts, the SKU claim, the order's
    // state (it can ship, and only once), and the stock it holds.
    let server = start(data.path()).await;
    let base = server.base.clone();
    let searched: Value = client
        .get(format!("{base}/api/v1/search?q=desk"))
        .header("x-emporium-min-position", restocked["position"].to_string())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(searched["total"], 1, "{searched}");
    let admin = login(&client, &base, "admin", ADMIN_PASSWORD).await;
    let grace = login(&client, &base, "+15550100", "cobol-rules-1959").await;
    let (status, _) = post(
        &client,
        format!("{base}/api/v1/orders/{order_id}/shipments"),
        Some(&admin),
        json!({"carrier": "UPS", "trackingNumber": "1Z999"}),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = post(
        &client,
        format!("{base}/api/v1/orders/{order_id}/status"),
        Some(&admin),
        json!({"status": "DELIVERED"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    // The audit trail comes from the log itself.
    let history: Value = client
        .get(format!("{base}/api/v1/orders/{order_id}/history"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let types: Vec<&str> = history
        .as_array()
        .unwrap_or_else(|| panic!("a history: {history}"))
        .iter()
        .filter_map(|e| e["type"].as_str())
        .collect();
    assert_eq!(types.first(), Some(&"OrderPlaced"), "{history}");
    assert!(types.contains(&"ShipmentCreated"), "{history}");
    let (status, body) = post(
        &client,
        format!("{base}/api/v1/orders"),
        Some(&grace),
        json!({"lines": [{"sku": "DESK-W", "quantity": 2}], "shippingAddress": address}),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "only one desk is left: {body}"
    );
    assert_eq!(body["shortSkus"][0]["available"], 1);
    let (status, _) = post(&client, format!("{base}/api/v1/products"), Some(&admin),
        json!({"name": "Copy", "variants": [{"sku": "DESK-W", "price": {"amount": 1, "currency": "EUR"}}]})).await;
    assert_eq!(status, StatusCode::CONFLICT, "the SKU is still taken");
    // The read models survived too, and caught up with what happened since.
    let (_, restock) = post(
        &client,
        format!("{base}/api/v1/inventory/DESK-W/adjustments"),
        Some(&admin),
        json!({"delta": 1, "reason": "return"}),
    )
    .await;
    let listed: Value = client
        .get(format!(
            "{base}/api/v1/products?minPosition={}",
            restock["position"]
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        listed["items"][0]["variants"][0]["available"], 2,
        "3 delivered - 2 shipped + 1 returned: {listed}"
    );
    let inventory: Value = client
        .get(format!("{base}/api/v1/inventory/DESK-W"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        inventory,
        json!({"sku": "DESK-W", "onHand": 2, "reserved": 0, "committed": 2, "available": 2})
    );
    // The sales view counts the delivered order; the customer sees it delivered.
    let sales: Value = client
        .get(format!(
            "{base}/api/v1/analytics/sales?minPosition={}",
            restock["position"]
        ))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sales["totals"]["orders"], 1, "{sales}");
    assert_eq!(sales["totals"]["units"], 2, "{sales}");
    assert_eq!(
        sales["totals"]["revenue"],
        json!([{"amount": 179_800, "currency": "EUR"}]),
        "{sales}"
    );
    let mine: Value = client
        .get(format!(
            "{base}/api/v1/orders?minPosition={}",
            restock["position"]
        ))
        .bearer_auth(&grace)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(mine["total"], 1, "{mine}");
    assert_eq!(mine["items"][0]["status"], "DELIVERED", "{mine}");
    // Without SMTP the notifier writes Grace's e-mails to the outbox folder: placed (before
    // the restart), shipped and delivered (after it).
    let outbox = data.path().join("outbox");
    let subjects = eventually_files(&outbox, 3).await;
    for expected in [
        format!("Subject: Your order {order_id} is confirmed"),
        format!("Subject: Your order {order_id} is on its way"),
        format!("Subject: Your order {order_id} was delivered"),
    ] {
        assert!(
            subjects.iter().any(|s| s.contains(&expected)),
            "{expected} in {subjects:?}"
        );
    }
}

/// Waits until `dir` holds `n` `.eml` files; returns their texts.
async fn eventually_files(dir: &Path, n: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let texts: Vec<String> = std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .filter_map(|p| std::fs::read_to_string(p).ok())
                    .collect()
            })
            .unwrap_or_default();
        if texts.len() >= n {
            return texts;
        }
        assert!(
            Instant::now() < deadline,
            "{n} e-mails in {}: {}",
            dir.display(),
            texts.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_create_reads_the_password_from_stdin_and_check_config_masks_secrets() {
    let data = tempfile::tempdir().unwrap();
    let mut child = emporium(data.path())
        .args([
            "admin",
            "create",
            "--username",
            "ops-lead",
            "--role",
            "STAFF",
            "--name",
            "Ops Lead",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"staff-password-42\n")
        .unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(String::from_utf8_lossy(&output.stdout).contains("ops-lead"));

    let server = start(data.path()).await;
    login(
        &reqwest::Client::new(),
        &server.base,
        "ops-lead",
        "staff-password-42",
    )
    .await;

    let output = emporium(data.path())
        .arg("check-config")
        .env("EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD", "do-not-print-me")
        .env(
            "EMPORIUM_DATABASE_URL",
            "postgres://app:hunter2@db:5432/shop",
        )
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success());
    assert!(
        !printed.contains("do-not-print-me") && !printed.contains("hunter2"),
        "{printed}"
    );
    assert!(
        printed.contains("postgres://app:***@db:5432/shop"),
        "{printed}"
    );

    let short = emporium(data.path())
        .args(["admin", "create"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut short = short;
    short.stdin.take().unwrap().write_all(b"short\n").unwrap();
    assert!(
        !short.wait().unwrap().success(),
        "a short password is refused"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_front_end_on_a_listed_origin_may_call_the_api_from_a_browser() {
    let data = tempfile::tempdir().unwrap();
    let mut command = emporium(data.path());
    command.env("EMPORIUM_CORS_ORIGINS", "https://shop.example");
    let server = spawn_ready(command).await;
    let client = reqwest::Client::new();
    let preflight = |origin: &'static str| {
        client
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/api/v1/orders", server.base),
            )
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,idempotency-key",
            )
            .send()
    };
    let allowed = preflight("https://shop.example").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let refused = preflight("https://elsewhere.example").await.unwrap();
    assert!(
        refused
            .headers()
            .get("access-control-allow-origin")
            .is_none()
    );
    let listed = client
        .get(format!("{}/api/v1/products", server.base))
        .header("origin", "https://shop.example")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    assert_eq!(
        listed.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let bad = emporium(data.path())
        .env("EMPORIUM_CORS_ORIGINS", "shop.example")
        .arg("check-config")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("EMPORIUM_CORS_ORIGINS"));
}

/// Signs up customer `n` through `base` with `X-Forwarded-For: forwarded_for`.
async fn sign_up_forwarded(
    client: &reqwest::Client,
    base: &str,
    n: u32,
    forwarded_for: &str,
) -> StatusCode {
    client
        .post(format!("{base}/api/v1/auth/register"))
        .header("x-forwarded-for", forwarded_for)
        .json(
            &json!({"name": "Forwarded", "email": format!("forwarded{n}@example.com"),
            "mobileNumber": format!("+1555020{n:04}"), "password": "behind-the-balancer"}),
        )
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_trusted_proxy_sign_ups_are_limited_per_forwarded_client() {
    let data = tempfile::tempdir().unwrap();
    let mut command = emporium(data.path());
    command
        .env("EMPORIUM_TRUSTED_PROXIES", "127.0.0.1")
        .env("EMPORIUM_RATE_LIMIT_SIGNUP_PER_MINUTE", "1");
    let server = spawn_ready(command).await;
    let client = reqwest::Client::new();
    // Through the local proxy, each forwarded client has its own allowance.
    assert_eq!(
        sign_up_forwarded(&client, &server.base, 1, "203.0.113.1").await,
        StatusCode::CREATED
    );
    assert_eq!(
        sign_up_forwarded(&client, &server.base, 2, "203.0.113.2").await,
        StatusCode::CREATED
    );
    // A client forging addresses left of the proxy's entry is still itself.
    let forged = sign_up_forwarded(&client, &server.base, 3, "198.51.100.1, 203.0.113.1").await;
    assert_eq!(forged, StatusCode::TOO_MANY_REQUESTS);
    drop(server);

    // Nobody trusted: the header changes nothing, the connection is the client.
    let mut command = emporium(data.path());
    command.env("EMPORIUM_RATE_LIMIT_SIGNUP_PER_MINUTE", "1");
    let server = spawn_ready(command).await;
    let mut statuses = Vec::new();
    for (n, forwarded_for) in [(4, "203.0.113.4"), (5, "203.0.113.5")] {
        statuses.push(sign_up_forwarded(&client, &server.base, n, forwarded_for).await);
    }
    assert_eq!(
        statuses,
        [StatusCode::CREATED, StatusCode::TOO_MANY_REQUESTS],
        "one client, whatever it forwards"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_is_loaded_by_the_configured_first_admin() {
    let data = tempfile::tempdir().unwrap();
    let output = emporium(data.path())
        .arg("demo")
        .env("EMPORIUM_BOOTSTRAP_ADMIN_USERNAME", "owner")
        .env("EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .output()
        .unwrap();
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(output.status.success(), "{printed}");
    assert!(
        printed.contains("username owner, password from EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD"),
        "{printed}"
    );
    assert!(
        !printed.contains(ADMIN_PASSWORD),
        "never printed: {printed}"
    );
    assert!(
        !printed.contains("demo-admin"),
        "no second admin: {printed}"
    );
    let server = start(data.path()).await;
    let client = reqwest::Client::new();
    login(&client, &server.base, "owner", ADMIN_PASSWORD).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_data_loads_once_and_can_be_browsed() {
    let data = tempfile::tempdir().unwrap();
    let output = emporium(data.path()).arg("demo").output().unwrap();
    let printed = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(printed.contains("320 products"), "{printed}");
    let password = printed
        .split("username demo-admin, password ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the demo admin's password is printed")
        .to_owned();
    let again = emporium(data.path()).arg("demo").output().unwrap();
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("not loaded"),
        "demo data is loaded only into an empty store"
    );

    let server = start(data.path()).await;
    let client = reqwest::Client::new();
    let admin = login(&client, &server.base, "demo-admin", &password).await;
    login(
        &client,
        &server.base,
        "ada@example.com",
        "demo-customer-password",
    )
    .await;
    // The projector catches up with the demo data in the background.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let all: Value = client
            .get(format!("{}/api/v1/products?pageSize=1", server.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if all["total"] == 320 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the projector did not catch up with the demo data: {all}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let shirts: Value = client
        .get(format!(
            "{}/api/v1/products?category=shirts&pageSize=100",
            server.base
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(shirts["total"], 30);
    assert_eq!(
        shirts["items"][0]["variants"].as_array().unwrap().len(),
        6,
        "apparel has sizes and colours"
    );
    let sku = shirts["items"][0]["variants"][0]["sku"]
        .as_str()
        .unwrap()
        .to_owned();
    // The inventory projection may still be catching up with the demo's stock.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let inventory: Value = client
            .get(format!("{}/api/v1/inventory/{sku}", server.base))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if inventory["onHand"].as_i64().unwrap() > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the demo stocks {sku}: {inventory}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Demo orders combine related products: the Oxford shirt's recommendations show both
    // reasons once the projections have caught up (its recommendations path is printed).
    let showcase = printed
        .split("Recommended: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("a product with recommendations is printed")
        .to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    let recommended = loop {
        let list: Value = client
            .get(format!("{}{showcase}", server.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        // Both pairs, and both products' stock, projected (projections run independently).
        if list["items"][1]["reason"] == "boughtTogether" {
            break list;
        }
        assert!(
            Instant::now() < deadline,
            "no bought-together recommendations: {list}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let items: Vec<(&str, &str)> = recommended["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["product"]["name"].as_str().unwrap(),
                i["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        items[..2],
        [
            ("Chino trousers", "boughtTogether"),
            ("Leather loafer", "boughtTogether")
        ],
        "{recommended}"
    );
    assert_eq!(items.len(), 10, "{recommended}");
    assert!(items[2..].iter().all(|(_, reason)| *reason == "similar"));
}

/// A server started with `args` whose standard output is collected as it comes.
struct Talking {
    server: Process,
    printed: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Talking {
    fn start(data: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let mut command = emporium(data);
        command
            .args(args)
            .env("EMPORIUM_ADDR", format!("127.0.0.1:{port}"))
            .stdout(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("start emporium");
        let printed = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let stdout = child.stdout.take().unwrap();
        let sink = printed.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let mut printed = sink.lock().unwrap();
                printed.push_str(&line);
                printed.push('\n');
            }
        });
        Self {
            server: Process {
                child,
                base: format!("http://127.0.0.1:{port}"),
            },
            printed,
        }
    }

    /// Waits until the output holds `text`; returns all of it.
    async fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let printed = self.printed.lock().unwrap().clone();
            if printed.contains(text) {
                return printed;
            }
            assert!(
                Instant::now() < deadline,
                "{text:?} never printed: {printed}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_start_shows_the_way_and_the_demo_flag_fills_the_shop() {
    // An empty store, no admin configured: where Swagger UI is, how to get an admin.
    let empty = tempfile::tempdir().unwrap();
    let first = Talking::start(empty.path(), &[], &[]);
    let printed = first.wait_for("First admin").await;
    assert!(
        printed.contains(&format!("Swagger UI:   {}/docs", first.server.base)),
        "{printed}"
    );
    assert!(printed.contains("emporium admin create"), "{printed}");
    drop(first);

    // `--demo` with no command: serve, after loading the demo into the empty store.
    let data = tempfile::tempdir().unwrap();
    let demo = Talking::start(data.path(), &["--demo"], &[]);
    let printed = demo.wait_for("Swagger UI").await;
    let password = printed
        .split("username demo-admin, password ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .expect("the demo admin's password is printed")
        .to_owned();
    let client = reqwest::Client::new();
    login(&client, &demo.server.base, "demo-admin", &password).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let all: Value = client
            .get(format!("{}/api/v1/products?pageSize=1", demo.server.base))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if all["total"] == 320 {
            break;
        }
        assert!(Instant::now() < deadline, "demo products: {all}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(demo);

    // EMPORIUM_ROLE applies with no command too: a projector serves probes, not the API.
    let projector = Talking::start(data.path(), &[], &[("EMPORIUM_ROLE", "projector")]);
    let printed = projector.wait_for("is listening").await;
    assert!(printed.contains("(Projector)"), "{printed}");
    let docs = client
        .get(format!("{}/docs/", projector.server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(docs.status(), StatusCode::NOT_FOUND);
    let bad = emporium(data.path())
        .env("EMPORIUM_ROLE", "cashier")
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("EMPORIUM_ROLE"));
}

/// The environment and THP state of the running process `pid`.
#[cfg(target_os = "linux")]
fn environment_and_thp(pid: u32) -> (Vec<String>, String) {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
    let variables = environ
        .split(|byte| *byte == 0)
        .map(|entry| String::from_utf8_lossy(entry).into_owned())
        .collect();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    let thp = status
        .lines()
        .find(|line| line.starts_with("THP_enabled:"))
        .unwrap_or("THP_enabled: (not reported)")
        .to_owned();
    (variables, thp)
}

/// The process restarts itself once (same pid) with the allocator's options it lacks,
/// and keeps the ones the operator set.
#[cfg(target_os = "linux")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_process_runs_with_the_allocator_options_it_was_not_given() {
    let data = tempfile::tempdir().unwrap();
    let server = start(data.path()).await;
    let (variables, thp) = environment_and_thp(server.child.id());
    for expected in ["MIMALLOC_PURGE_DELAY=0", "MIMALLOC_ALLOW_THP=0"] {
        assert!(
            variables.iter().any(|v| v == expected),
            "{expected} missing from {variables:?}"
        );
    }
    assert_eq!(thp, "THP_enabled:\t0", "no transparent huge pages");
    drop(server);

    let mut command = emporium(data.path());
    command.env("MIMALLOC_PURGE_DELAY", "250");
    let server = spawn_ready(command).await;
    let (variables, _) = environment_and_thp(server.child.id());
    assert!(variables.iter().any(|v| v == "MIMALLOC_PURGE_DELAY=250"));
    assert!(variables.iter().any(|v| v == "MIMALLOC_ALLOW_THP=0"));
}

/// The roles each secured operation names in the OpenAPI document's `bearer` requirement
/// (none named: any signed-in account). Every role is tried on every such operation, with
/// ids that name nothing and an empty body, so nothing changes: a role named is judged
/// past its token and role (any answer but 401 and 403), a role not named is a 403.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_secured_operation_admits_the_roles_its_document_names() {
    let data = tempfile::tempdir().unwrap();
    let client = reqwest::Client::new();
    let server = start(data.path()).await;
    let base = server.base.clone();
    let admin = login(&client, &base, "admin", ADMIN_PASSWORD).await;
    let (status, body) = post(&client, format!("{base}/api/v1/admin/accounts"), Some(&admin),
        json!({"role": "STAFF", "username": "stocker", "name": "Stocker", "password": "a-long-staff-password"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let staff = login(&client, &base, "stocker", "a-long-staff-password").await;
    let (status, body) = post(&client, format!("{base}/api/v1/auth/register"), None,
        json!({"name": "Ada", "email": "ada@example.com", "mobileNumber": "+15550101", "password": "a-long-customer-password"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let customer = login(
        &client,
        &base,
        "ada@example.com",
        "a-long-customer-password",
    )
    .await;
    let tokens = [
        ("ADMIN", &admin),
        ("STAFF", &staff),
        ("CUSTOMER", &customer),
    ];
    let (status, spec) = get(&client, format!("{base}/api-docs/openapi.json"), None).await;
    assert_eq!(status, StatusCode::OK);

    let mut checked = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        let url = format!(
            "{base}{}",
            path.replace("{id}", &uuid::Uuid::now_v7().to_string())
                .replace("{sku}", "NO-SUCH-SKU")
        );
        for (method, operation) in item.as_object().unwrap() {
            let Some(named) = operation["security"]
                .as_array()
                .and_then(|requirements| requirements.iter().find_map(|r| r["bearer"].as_array()))
            else {
                continue;
            };
            let named: Vec<&str> = named.iter().map(|name| name.as_str().unwrap()).collect();
            for (role, token) in tokens {
                let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let mut request = client.request(method.clone(), &url).bearer_auth(token);
                if operation["requestBody"].is_object() {
                    request = request.json(&json!({}));
                }
                let status = request.send().await.unwrap().status();
                let admitted = named.is_empty() || named.contains(&role);
                if admitted {
                    assert!(
                        status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
                        "{role} may {method} {path} (the document names {named:?}), answered {status}"
                    );
                } else {
                    assert_eq!(
                        status,
                        StatusCode::FORBIDDEN,
                        "{role} may not {method} {path} (the document names {named:?})"
                    );
                }
            }
            checked.push(format!("{method} {path}"));
        }
    }
    assert!(
        checked.len() >= 35,
        "every secured operation of the three services is in the document: {checked:?}"
    );
    for expected in [
        "post /api/v1/orders",
        "get /api/v1/cart",
        "get /api/v1/admin/webhooks",
    ] {
        assert!(
            checked.iter().any(|c| c == expected),
            "{expected}: {checked:?}"
        );
    }
}
