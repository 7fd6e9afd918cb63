//! The view cache with Redis: the projector side writes product and order views through to
//! Redis, a fresh query node serves them from there, stale entries are never served,
//! invalidations evict other nodes' L1, and a Redis outage costs reads nothing (a private
//! `redis-server`, killed mid-test) while the writer loses nothing.
//!
//! Each test has its own Redis namespace (`cache::testsupport`), so tests run in parallel.
use std::time::Duration;

use cache::{
    RedisConfig, SharedViews, Stored,
    testsupport::{RedisServer, config_for, raw_connection, test_redis},
};
use domain::{
    account::Role,
    catalog::ProductEvent,
    order::{Actor, OrderEvent, OrderStatus},
};
use query_api::{QueryConfig, QueryState, ViewCacheWriter, replays::ReplayWatch};
use reqwest::{Response, StatusCode};
use serde_json::Value;
use tokio::{sync::oneshot, time::Instant};

use crate::{
    helpers::{
        TestApp, at, etag, eur, product_stream, query_config, runner_config, sku, tag_version,
    },
    shop::{Shop, append_by, order_stream, seed_orders},
};

crate::backend_tests!(
    write_through_fills_redis_and_a_fresh_node_serves_from_it,
    stale_entries_in_redis_are_never_served,
    the_writers_invalidation_evicts_other_nodes_l1,
    a_redis_outage_costs_reads_nothing_and_the_writer_loses_nothing,
    a_replay_drops_the_views_cached_from_the_read_model_it_repaired,
);

/// A query node of its own (its own L1) on the app's database.
struct Node {
    address: String,
    state: QueryState,
    client: reqwest::Client,
    _stop: oneshot::Sender<()>,
}

impl Node {
    async fn start(app: &TestApp, shared: Option<SharedViews>) -> Self {
        Self::start_with(app, shared, &query_config()).await
    }

    async fn start_with(app: &TestApp, shared: Option<SharedViews>, config: &QueryConfig) -> Self {
        let mut state = QueryState::new(
            app.pool.clone(),
            app.verifier.clone(),
            Some(app.positions.clone()),
            config,
        )
        .with_event_store(app.store.clone());
        if let Some(shared) = shared {
            state = state.with_shared_cache(shared);
        }
        let server =
            web::server::Application::bind("127.0.0.1:0", query_api::router(state.clone()))
                .await
                .expect("bind");
        let address = format!("http://{}", server.local_addr().expect("address"));
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(server.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Self {
            address,
            state,
            client: reqwest::Client::new(),
            _stop: stop,
        }
    }

    async fn get(&self, path: &str, token: Option<&str>) -> Response {
        let mut request = self.client.get(format!("{}{path}", self.address));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }

    async fn json(&self, path: &str, token: Option<&str>) -> Value {
        let response = self.get(path, token).await;
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.expect("json")
    }

    async fn ready(&self) -> Value {
        let response = self.get("/health/ready", None).await;
        // The cache is a degrading check: the node stays ready (200) without it.
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.expect("json")
    }

    fn shared(&self) -> &SharedViews {
        self.state.shared_cache.as_ref().expect("a node with Redis")
    }
}

/// Runs the view cache writer until the returned sender is dropped.
fn start_writer(app: &TestApp, shared: SharedViews) -> oneshot::Sender<()> {
    let writer = ViewCacheWriter::new(
        app.store.clone(),
        app.pool.clone(),
        shared,
        Some(app.positions.clone()),
        runner_config(),
    );
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        writer
            .run_until_stopped(async {
                let _ = stopped.await;
            })
            .await;
    });
    stop
}

/// Polls `condition` until it holds, or panics after 20 s.
async fn eventually(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !condition().await {
        assert!(Instant::now() < deadline, "{what}: not within 20 s");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until the writer has handled the whole log.
async fn writer_caught_up(app: &TestApp) {
    let head = app.store.head_position().await.expect("head");
    eventually("the writer catches up", async || {
        projector::checkpoint(&app.pool, ViewCacheWriter::NAME)
            .await
            .expect("checkpoint")
            >= head
    })
    .await;
}

/// The version and JSON view Redis holds for `kind` `id`.
async fn in_redis(shared: &SharedViews, kind: &str, id: &str) -> Option<(u64, Value)> {
    let stored = shared.get(kind, id).await.ok()??;
    Some((
        stored.version,
        serde_json::from_str(&stored.view).expect("json view"),
    ))
}

async fn change_price(app: &TestApp, product: domain::ids::ProductId, amount: i64) -> u64 {
    app.append(
        &product_stream(product),
        &[ProductEvent::VariantPriceChanged {
            sku: sku("SHIRT-L"),
            old_price: eur(5200),
            price: eur(amount),
            at: at(40),
        }],
    )
    .await
}

async fn pay(app: &TestApp, shop: &Shop, order: domain::ids::OrderId) -> u64 {
    let admin = Actor {
        id: shop.admin,
        role: Role::Admin,
    };
    append_by(
        app,
        &order_stream(order),
        shop.admin,
        &[OrderEvent::OrderStatusChanged {
            from: OrderStatus::Placed,
            to: OrderStatus::Paid,
            by: admin,
            at: at(50),
        }],
    )
    .await
}

async fn write_through_fills_redis_and_a_fresh_node_serves_from_it(app: TestApp) {
    let Some(config) = test_redis().await else {
        return;
    };
    let catalogue = app.seed().await;
    let shop = seed_orders(&app).await;
    let shared = SharedViews::connect(config.clone()).unwrap();
    let _writer = start_writer(&app, shared.clone());
    writer_caught_up(&app).await;
    let (shirt, a1) = (catalogue.shirt.to_string(), shop.a1.to_string());

    // Every view of the log is in Redis, as the read model renders it.
    let (version, view) = in_redis(&shared, "product", &shirt).await.expect("shirt");
    assert_eq!((version, view["name"].clone()), (1, "Linen Shirt".into()));
    let (version, view) = in_redis(&shared, "order", &a1).await.expect("a1");
    assert_eq!((version, view["status"].clone()), (1, "PLACED".into()));
    let (version, _) = in_redis(&shared, "order", &shop.a2.to_string())
        .await
        .expect("a2");
    assert_eq!(version, 5);

    // A change is written through.
    change_price(&app, catalogue.shirt, 5900).await;
    eventually("the changed shirt reaches Redis", async || {
        in_redis(&shared, "product", &shirt)
            .await
            .is_some_and(|(version, view)| {
                version == 2 && view["variants"][1]["price"]["amount"] == 5900
            })
    })
    .await;

    // Rows changed behind the projector's back (same versions): a node without Redis
    // shows them, a fresh node with Redis serves the views from Redis.
    sqlx::query("UPDATE rm_products SET name = 'Tampered' WHERE id = $1")
        .bind(&shirt)
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query("UPDATE rm_orders SET view = REPLACE(view, 'London', 'Tampered') WHERE id = $1")
        .bind(&a1)
        .execute(&app.pool)
        .await
        .unwrap();
    let plain = Node::start(&app, None).await;
    let fresh = Node::start(&app, Some(SharedViews::connect(config.clone()).unwrap())).await;
    let path = format!("/api/v1/products/{shirt}");
    assert_eq!(plain.json(&path, None).await["name"], "Tampered");
    let response = fresh.get(&path, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    let tag = etag(&response);
    assert_eq!(tag_version(&tag), Some(2));
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["name"], "Linen Shirt");
    assert_eq!(view["variants"][1]["price"]["amount"], 5900);
    // Availability is read live, never cached.
    assert_eq!(view["variants"][0]["available"], 7);
    let not_modified = fresh
        .client
        .get(format!("{}{path}", fresh.address))
        .header("if-none-match", &tag)
        .send()
        .await
        .unwrap();
    assert_eq!(not_modified.status(), StatusCode::NOT_MODIFIED);

    // Orders too, with their owner check: the owner and the back office see it, nobody
    // else does.
    let path = format!("/api/v1/orders/{a1}");
    let ann = app.token_for(shop.ann, Role::Customer);
    let bob = app.token_for(shop.bob, Role::Customer);
    let admin = app.token(Role::Admin);
    assert_eq!(
        plain.json(&path, Some(&ann)).await["shippingAddress"]["city"],
        "Tampered"
    );
    assert_eq!(
        fresh.json(&path, Some(&ann)).await["shippingAddress"]["city"],
        "London"
    );
    assert_eq!(
        fresh.json(&path, Some(&admin)).await["shippingAddress"]["city"],
        "London"
    );
    assert_eq!(
        fresh.get(&path, Some(&bob)).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        fresh.get(&path, None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    eventually("the fresh node reports its cache ready", async || {
        fresh.ready().await["checks"]["cache"] == "ok"
    })
    .await;
}

async fn stale_entries_in_redis_are_never_served(app: TestApp) {
    let Some(config) = test_redis().await else {
        return;
    };
    let catalogue = app.seed().await;
    let shop = seed_orders(&app).await;
    let node = Node::start(&app, Some(SharedViews::connect(config.clone()).unwrap())).await;
    let (shirt, a1) = (catalogue.shirt.to_string(), shop.a1.to_string());
    let ann = app.token_for(shop.ann, Role::Customer);
    let product_path = format!("/api/v1/products/{shirt}");
    let order_path = format!("/api/v1/orders/{a1}");
    // The views as they were (version 1), with the checkpoints they were valid at.
    let old_product = node.json(&product_path, None).await;
    let old_order = node.json(&order_path, Some(&ann)).await;
    let product_as_of = projector::checkpoint(&app.pool, "catalog").await.unwrap();
    let order_as_of = projector::checkpoint(&app.pool, "orders").await.unwrap();

    // Both change; no writer runs, so nothing tells Redis.
    change_price(&app, catalogue.shirt, 5900).await;
    pay(&app, &shop, shop.a1).await;
    app.caught_up().await;

    // A slow writer now plants the old views (older versions, older checkpoints): a fresh
    // node must not serve them.
    let mut raw = raw_connection(&config.url).await;
    let shared = node.shared();
    let mut stale_product = old_product.clone();
    stale_product["name"] = "Stale Shirt".into();
    let mut stale_order = old_order.clone();
    stale_order["shippingAddress"]["city"] = "Stale".into();
    for (kind, id, version, as_of, view) in [
        ("product", &shirt, 1, product_as_of, &stale_product),
        ("order", &a1, 1, order_as_of, &stale_order),
    ] {
        let _: () = redis::cmd("HSET")
            .arg(shared.key(kind, id))
            .arg("version")
            .arg(version)
            .arg("asOf")
            .arg(as_of)
            .arg("view")
            .arg(view.to_string())
            .query_async(&mut raw)
            .await
            .unwrap();
    }
    let fresh = Node::start(&app, Some(SharedViews::connect(config.clone()).unwrap())).await;
    for node in [&node, &fresh] {
        let response = node.get(&product_path, None).await;
        let tag = etag(&response);
        assert_eq!(tag_version(&tag), Some(2));
        let view: Value = response.json().await.unwrap();
        assert_eq!(
            (view["name"].clone(), view["version"].clone()),
            ("Linen Shirt".into(), 2.into())
        );
        // The tag version 1 had with the same stock.
        let version_1 = tag.replacen("\"2.", "\"1.", 1);
        let stale_tag = node
            .client
            .get(format!("{}{product_path}", node.address))
            .header("if-none-match", version_1)
            .send()
            .await
            .unwrap();
        assert_eq!(stale_tag.status(), StatusCode::OK);
        let order = node.json(&order_path, Some(&ann)).await;
        assert_eq!(
            (
                order["status"].clone(),
                order["shippingAddress"]["city"].clone()
            ),
            ("PAID".into(), "London".into())
        );
    }
    // The fresh views replaced the stale entries (compare-and-set: a newer version).
    assert_eq!(in_redis(shared, "product", &shirt).await.unwrap().0, 2);
    assert_eq!(in_redis(shared, "order", &a1).await.unwrap().0, 2);
    // And a planted older version cannot overwrite them.
    let refused = shared
        .put(
            "product",
            &shirt,
            Stored {
                version: 1,
                as_of: u64::MAX,
                view: stale_product.to_string(),
            },
        )
        .await
        .unwrap();
    assert!(!refused);
}

async fn the_writers_invalidation_evicts_other_nodes_l1(app: TestApp) {
    let Some(config) = test_redis().await else {
        return;
    };
    let catalogue = app.seed().await;
    let tee = catalogue.tee.to_string();
    let node = Node::start(&app, Some(SharedViews::connect(config.clone()).unwrap())).await;
    assert!(node.shared().wait_listening(Duration::from_secs(20)).await);
    let _writer = start_writer(&app, SharedViews::connect(config.clone()).unwrap());
    writer_caught_up(&app).await;
    node.json(&format!("/api/v1/products/{tee}"), None).await;
    node.json(&format!("/api/v1/products/{}", catalogue.shirt), None)
        .await;
    let views = node.state.products.views();
    assert!(views.contains_local(&tee));

    app.append(
        &product_stream(catalogue.tee),
        &[ProductEvent::ProductArchived { at: at(60) }],
    )
    .await;
    eventually("the node's L1 drops the tee", async || {
        !views.contains_local(&tee)
    })
    .await;
    // Only the changed product is evicted.
    assert!(views.contains_local(&catalogue.shirt.to_string()));
    let admin = app.token(Role::Admin);
    let view = node
        .json(&format!("/api/v1/products/{tee}"), Some(&admin))
        .await;
    assert_eq!(view["status"], "ARCHIVED");
}

async fn a_redis_outage_costs_reads_nothing_and_the_writer_loses_nothing(app: TestApp) {
    let Some(mut server) = RedisServer::start().await else {
        return;
    };
    let config = RedisConfig {
        command_timeout: Duration::from_millis(100),
        ..config_for(&server.url())
    };
    let catalogue = app.seed().await;
    let shop = seed_orders(&app).await;
    let (shirt, tee, scarf, a1) = (
        catalogue.shirt.to_string(),
        catalogue.tee.to_string(),
        catalogue.scarf.to_string(),
        shop.a1.to_string(),
    );
    let ann = app.token_for(shop.ann, Role::Customer);
    let writer_cache = SharedViews::connect(config.clone()).unwrap();
    let _writer = start_writer(&app, writer_cache.clone());
    let node = Node::start(&app, Some(SharedViews::connect(config.clone()).unwrap())).await;
    writer_caught_up(&app).await;
    node.json(&format!("/api/v1/products/{shirt}"), None).await;
    eventually("the node is ready with its cache", async || {
        node.ready().await["status"] == "ready"
    })
    .await;

    server.stop();
    // Reads keep answering from the read model, changes included...
    let changed = change_price(&app, catalogue.shirt, 6100).await;
    let paid = pay(&app, &shop, shop.a1).await;
    let view = node
        .json(
            &format!("/api/v1/products/{shirt}?minPosition={changed}"),
            None,
        )
        .await;
    assert_eq!(
        (
            view["version"].clone(),
            view["variants"][1]["price"]["amount"].clone()
        ),
        (2.into(), 6100.into())
    );
    let order = node
        .json(
            &format!("/api/v1/orders/{a1}?minPosition={paid}"),
            Some(&ann),
        )
        .await;
    assert_eq!(order["status"], "PAID");
    node.json(&format!("/api/v1/products/{tee}"), None).await;
    // ...on a node started during the outage too...
    let late = Node::start(&app, Some(SharedViews::connect(config.clone()).unwrap())).await;
    assert_eq!(
        late.json(&format!("/api/v1/products/{shirt}"), None).await["version"],
        2
    );
    // ...and readiness says the cache is degraded (still 200: a degrading check).
    for node in [&node, &late] {
        let ready = node.ready().await;
        assert_eq!(ready["status"], "degraded", "{ready}");
        assert!(
            ready["checks"]["cache"]
                .as_str()
                .unwrap()
                .starts_with("degraded"),
            "{ready}"
        );
        assert_eq!(ready["checks"]["readModels"], "ok");
    }
    // The writer holds its place: the changes are not confirmed while Redis is away.
    let head = app.store.head_position().await.unwrap();
    assert!(
        projector::checkpoint(&app.pool, ViewCacheWriter::NAME)
            .await
            .unwrap()
            < head
    );

    // Redis comes back, empty.
    server.restart().await;
    eventually("the node is ready again", async || {
        node.ready().await["status"] == "ready"
    })
    .await;
    // The writer resumes where it stopped: what changed during the outage reaches Redis.
    writer_caught_up(&app).await;
    let (version, view) = in_redis(&writer_cache, "product", &shirt)
        .await
        .expect("the shirt changed during the outage");
    assert_eq!(
        (version, view["variants"][1]["price"]["amount"].clone()),
        (2, 6100.into())
    );
    let (version, view) = in_redis(&writer_cache, "order", &a1)
        .await
        .expect("the order paid during the outage");
    assert_eq!((version, view["status"].clone()), (2, "PAID".into()));
    // And reads use the cache again: a view read now is filled into Redis.
    eventually("a read fills Redis again", async || {
        node.json(&format!("/api/v1/products/{scarf}"), None).await;
        in_redis(&writer_cache, "product", &scarf).await.is_some()
    })
    .await;
}

/// A replay swaps rebuilt rows in under the checkpoint that cached views were validated
/// against; the replay watch drops what was cached from the old rows, in this node's L1,
/// its list pages and Redis, so the repaired read model is what readers get.
async fn a_replay_drops_the_views_cached_from_the_read_model_it_repaired(app: TestApp) {
    let Some(config) = test_redis().await else {
        return;
    };
    let catalogue = app.seed().await;
    let shirt = catalogue.shirt.to_string();
    let detail = format!("/api/v1/products/{shirt}");
    // A bug wrecked the catalogue read model; a node caches the wreck everywhere, with
    // TTLs far beyond the test, so only the watch can drop it.
    sqlx::query("UPDATE rm_products SET name = 'Wrecked'")
        .execute(&app.pool)
        .await
        .unwrap();
    let shared = SharedViews::connect(config).unwrap();
    let long_lived = QueryConfig {
        product_cache_ttl: Duration::from_secs(3600),
        ..query_config()
    };
    let node = Node::start_with(&app, Some(shared.clone()), &long_lived).await;
    let watch = ReplayWatch::new(node.state.clone()).await;
    let (_stop_watch, watch_stopped) = oneshot::channel::<()>();
    tokio::spawn(watch.run(Duration::from_millis(20), async {
        let _ = watch_stopped.await;
    }));
    assert_eq!(node.json(&detail, None).await["name"], "Wrecked");
    let names = async || -> Vec<Value> {
        node.json("/api/v1/products", None).await["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|p| p["name"].clone())
            .collect()
    };
    assert!(names().await.iter().all(|n| n == "Wrecked"));
    let cached = in_redis(&shared, "product", &shirt)
        .await
        .expect("in Redis");
    assert_eq!(cached.1["name"], "Wrecked");

    projector::Replayer::new(
        app.store.clone(),
        app.pool.clone(),
        projector::ReplayConfig::default(),
    )
    .run(&[std::sync::Arc::new(projector::CatalogProjection)], |_| {})
    .await
    .expect("replay");

    eventually("the repaired views are served", async || {
        node.json(&detail, None).await["name"] == "Linen Shirt"
            && names().await.iter().all(|n| n != "Wrecked")
            && in_redis(&shared, "product", &shirt)
                .await
                .is_none_or(|(_, view)| view["name"] != "Wrecked")
    })
    .await;
}
