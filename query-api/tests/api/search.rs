//! Full-text search: the search projection following a real store (SQLite always,
//! PostgreSQL when reachable) into a tantivy index in a temporary folder, queried over
//! HTTP: relevance, typo tolerance, filters, facets, pagination, archiving and price
//! changes, read-your-writes, and the index's own checkpoint across restarts and rebuilds.
use std::{path::PathBuf, sync::Arc, time::Duration};

use domain::{
    catalog::{ProductEvent, VariantSpec},
    ids::ProductId,
};
use ed25519_dalek::{
    SigningKey,
    pkcs8::{EncodePublicKey, spki::der::pem::LineEnding},
};
use eventstore::{EventStore, ExpectedVersion, NewEvent, Position, testsupport::TestBackend};
use query_api::{
    QueryConfig, QueryState,
    search::{SearchConfig, SearchIndex, SearchQuery, views::SearchPage},
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::AnyPool;
use tokio::{sync::oneshot, task::JoinHandle};
use uuid::Uuid;

use crate::helpers::{
    Backend, assert_problem, at, eur, object, product_stream, query_config, sku, spawn_app,
};

macro_rules! search_tests {
    ($($name:ident),+ $(,)?) => {
        eventstore::backend_tests!(super::SearchApp::spawn; $($name),+);
    };
}

search_tests!(
    the_exact_name_match_ranks_first,
    typos_still_find_products,
    descriptions_attributes_and_options_match,
    filters_narrow_and_facets_count_every_match,
    pages_split_the_matches_and_say_the_total,
    archived_products_disappear_and_price_changes_show,
    a_repeated_search_follows_every_change,
    writes_are_read_with_min_position,
    the_checkpoint_survives_a_restart,
    a_deleted_folder_is_rebuilt_from_the_log,
    an_unreadable_index_is_rebuilt_from_the_log,
);

/// The search projection and the query API over one store, with the index in a folder
/// that outlives restarts of the projection.
struct SearchApp {
    address: String,
    client: reqwest::Client,
    store: Arc<dyn EventStore>,
    pool: AnyPool,
    folder: tempfile::TempDir,
    index: SearchIndex,
    running: Option<(oneshot::Sender<()>, JoinHandle<()>)>,
    stop_server: Option<oneshot::Sender<()>>,
    catalogue: Catalogue,
    _db: TestBackend,
}

fn search_config() -> SearchConfig {
    SearchConfig {
        idle_poll: Duration::from_millis(50),
        backoff_initial: Duration::from_millis(10),
        backoff_max: Duration::from_millis(200),
        ..SearchConfig::default()
    }
}

fn verifier() -> Arc<web::JwtVerifier> {
    let signing = SigningKey::generate(&mut rand::rngs::OsRng);
    let public = signing
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("public pem");
    Arc::new(web::JwtVerifier::from_public_pem(public.as_bytes()).expect("verifier"))
}

impl SearchApp {
    /// A store with the known catalogue, the projection caught up with it, and the API.
    async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, query_config()).await
    }

    async fn spawn_with(backend: Backend, config: QueryConfig) -> Option<Self> {
        let db = TestBackend::open(backend).await?;
        let (store, pool) = (db.store.clone(), db.pool(4).await);
        let folder = tempfile::tempdir().expect("search folder");
        let (index, projection) = SearchIndex::open(&folder.path().join("search")).expect("open");
        let mut app = Self {
            address: String::new(),
            client: reqwest::Client::new(),
            store,
            pool,
            folder,
            index: index.clone(),
            running: None,
            stop_server: None,
            catalogue: Catalogue::default(),
            _db: db,
        };
        app.run(projection);
        let state = QueryState::new(app.pool.clone(), verifier(), None, &config).with_search(index);
        let server = web::server::Application::bind("127.0.0.1:0", query_api::router(state))
            .await
            .expect("bind");
        app.address = format!("http://{}", server.local_addr().expect("address"));
        let (stop, stopped) = oneshot::channel();
        tokio::spawn(server.run_until_stopped(async {
            let _ = stopped.await;
        }));
        app.stop_server = Some(stop);
        app.seed().await;
        Some(app)
    }

    fn dir(&self) -> PathBuf {
        self.folder.path().join("search")
    }

    fn run(&mut self, projection: query_api::search::SearchProjection) {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(projection.run_until_stopped(
            self.store.clone(),
            search_config(),
            async {
                let _ = stopped.await;
            },
        ));
        self.running = Some((stop, task));
    }

    /// Stops the projection and waits for it (it commits its position on the way out).
    async fn stop(&mut self) {
        let (stop, task) = self.running.take().expect("running");
        let _ = stop.send(());
        task.await.expect("projection task");
    }

    /// Opens the folder again and runs a new projection on it; returns the position the
    /// reopened index starts from.
    fn reopen(&mut self) -> Position {
        let (index, projection) = SearchIndex::open(&self.dir()).expect("reopen");
        let position = index.position();
        self.index = index;
        self.run(projection);
        position
    }

    /// Waits (on the index's watch, no polling) until it reflects the head of the log.
    async fn caught_up(&self) -> Position {
        let head = self.store.head_position().await.expect("head");
        let reached = tokio::time::timeout(Duration::from_secs(30), self.index.wait_for(head))
            .await
            .expect("the index caught up in time");
        assert!(reached, "the projection stopped before reaching {head}");
        head
    }

    async fn append(&self, id: ProductId, events: &[ProductEvent]) -> Position {
        let events = events
            .iter()
            .map(|e| {
                let (event_type, data) = domain::aggregate::encode(e);
                NewEvent::new(event_type, 1, data)
            })
            .collect();
        self.store
            .append(&product_stream(id), ExpectedVersion::Any, events)
            .await
            .expect("append")
            .position
    }

    /// The floor lamp's price cut from 79.00 to 45.00 EUR.
    async fn floor_lamp_down_to_4500(&self) -> Position {
        self.append(
            self.id("Floor Lamp"),
            &[ProductEvent::VariantPriceChanged {
                sku: sku("FLAMP"),
                old_price: eur(7_900),
                price: eur(4_500),
                at: at(101),
            }],
        )
        .await
    }

    async fn seed(&self) {
        for (i, product) in self.catalogue.products.iter().enumerate() {
            self.append(product.id, &[product.created(i)]).await;
        }
        // Events of other streams move the checkpoint without touching the index.
        self.store
            .append(
                &eventstore::StreamId::of("stock", "CHAIR-OAK"),
                ExpectedVersion::Any,
                vec![NewEvent::new(
                    "StockAdjusted",
                    1,
                    json!({"sku": "CHAIR-OAK", "delta": 5, "reason": "restock", "at": at(50)}),
                )],
            )
            .await
            .expect("append stock");
        self.caught_up().await;
    }

    async fn search(&self, query: &str) -> Value {
        let response = self
            .client
            .get(format!("{}/api/v1/search?{query}", self.address))
            .send()
            .await
            .expect("request");
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "GET /api/v1/search?{query}"
        );
        response.json().await.expect("json")
    }

    async fn names(&self, query: &str) -> Vec<String> {
        names(&self.search(query).await)
    }

    fn id(&self, name: &str) -> ProductId {
        self.catalogue
            .products
            .iter()
            .find(|p| p.name == name)
            .expect("a known product")
            .id
    }
}

impl Drop for SearchApp {
    fn drop(&mut self) {
        if let Some((stop, _)) = self.running.take() {
            let _ = stop.send(());
        }
        if let Some(stop) = self.stop_server.take() {
            let _ = stop.send(());
        }
    }
}

fn names(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_owned())
        .collect()
}

fn sorted(mut names: Vec<String>) -> Vec<String> {
    names.sort();
    names
}

struct Product {
    id: ProductId,
    name: &'static str,
    description: &'static str,
    categories: &'static [&'static str],
    attributes: Value,
    variants: Vec<(&'static str, i64, &'static str, &'static str)>,
}

impl Product {
    fn created(&self, i: usize) -> ProductEvent {
        ProductEvent::ProductCreated {
            id: self.id,
            name: self.name.into(),
            description: self.description.into(),
            categories: self.categories.iter().map(|c| (*c).to_owned()).collect(),
            attributes: object(self.attributes.clone()),
            variants: self
                .variants
                .iter()
                .map(|&(code, amount, option, value)| VariantSpec {
                    sku: sku(code),
                    price: eur(amount),
                    options: [(option.to_owned(), value.to_owned())].into(),
                })
                .collect(),
            created_at: at(i as i64),
        }
    }
}

/// Ten products across categories and prices.
struct Catalogue {
    products: Vec<Product>,
}

impl Default for Catalogue {
    fn default() -> Self {
        let id = || ProductId::new(Uuid::now_v7());
        let product = |name, description, categories, attributes, variants| Product {
            id: id(),
            name,
            description,
            categories,
            attributes,
            variants,
        };
        Self {
            products: vec![
                product(
                    "Oak Chair",
                    "A solid wooden chair for the dining room",
                    &["chairs", "furniture"],
                    json!({"material": "oak", "colour": "natural"}),
                    vec![("CHAIR-OAK", 12_900, "finish", "oiled")],
                ),
                product(
                    "Wooden Table",
                    "Seats six and matches the oak chair",
                    &["tables", "furniture"],
                    json!({"material": "pine"}),
                    vec![("TABLE", 45_900, "size", "large")],
                ),
                product(
                    "Armchair Deluxe",
                    "Deep seat with a velvet cover",
                    &["chairs", "furniture"],
                    json!({"material": "velvet", "colour": "green"}),
                    vec![
                        ("ARM-GRN", 89_900, "colour", "green"),
                        ("ARM-BLU", 92_900, "colour", "blue"),
                    ],
                ),
                product(
                    "Desk Lamp",
                    "Adjustable arm and warm light",
                    &["lighting"],
                    json!({"material": "brass"}),
                    vec![("LAMP", 3_900, "bulb", "included")],
                ),
                product(
                    "Floor Lamp",
                    "Tall reading light for the corner",
                    &["lighting"],
                    json!({"material": "steel"}),
                    vec![("FLAMP", 7_900, "bulb", "included")],
                ),
                product(
                    "Linen Cushion",
                    "Soft cushion for any chair",
                    &["textiles", "decor"],
                    json!({"material": "linen", "colour": "white"}),
                    vec![
                        ("CUSH-S", 1_900, "size", "S"),
                        ("CUSH-L", 2_900, "size", "L"),
                    ],
                ),
                product(
                    "Wool Rug",
                    "Hand woven in the mountains",
                    &["textiles"],
                    json!({"material": "wool", "colour": "red"}),
                    vec![("RUG", 15_900, "size", "2x3")],
                ),
                product(
                    "Ceramic Vase",
                    "Glazed stoneware for fresh flowers",
                    &["decor"],
                    json!({"colour": "blue", "dimensions": {"height": "30cm"}}),
                    vec![("VASE", 2_500, "size", "one")],
                ),
                product(
                    "Bookshelf",
                    "Five wooden shelves",
                    &["storage", "furniture"],
                    json!({"material": "walnut"}),
                    vec![("SHELF", 24_900, "size", "tall")],
                ),
                product(
                    "Coffee Mug",
                    "Holds a large coffee",
                    &["kitchen"],
                    json!({"material": "porcelain"}),
                    vec![("MUG", 900, "colour", "teal")],
                ),
            ],
        }
    }
}

async fn the_exact_name_match_ranks_first(app: SearchApp) {
    let page = app.search("q=oak%20chair").await;
    assert_eq!(names(&page), ["Oak Chair", "Wooden Table"], "{page}");
    let scores: Vec<f64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["score"].as_f64().unwrap())
        .collect();
    assert!(scores[0] > scores[1], "{scores:?}");
    // Equal relevance: the newest first.
    assert_eq!(app.names("q=lamp").await, ["Floor Lamp", "Desk Lamp"]);
    // An exact word outranks a typo or a prefix ("seats").
    assert_eq!(
        app.names("q=seat").await,
        ["Armchair Deluxe", "Wooden Table"]
    );
    assert_eq!(
        app.names("q=Chair").await,
        ["Oak Chair", "Linen Cushion", "Wooden Table"]
    );
}

async fn typos_still_find_products(app: SearchApp) {
    assert_eq!(app.names("q=chiar").await[0], "Oak Chair");
    assert_eq!(app.names("q=wodden").await[0], "Wooden Table");
    assert_eq!(
        sorted(app.names("q=wodden").await),
        ["Bookshelf", "Oak Chair", "Wooden Table"]
    );
    // Two typos in a long word; a transposition counts as one.
    assert_eq!(app.names("q=bookshlef").await, ["Bookshelf"]);
    assert_eq!(app.names("q=armchiar%20delux").await, ["Armchair Deluxe"]);
    // Short words must be exact, except the last one, which is a prefix too.
    assert!(app.names("q=oek").await.is_empty());
    assert_eq!(app.names("q=cof").await, ["Coffee Mug"]);
    assert_eq!(app.names("q=desk%20la").await, ["Desk Lamp"]);
    // Every word must match somewhere.
    assert!(app.names("q=oak%20lamp").await.is_empty());
    // Accents and case are folded.
    assert_eq!(app.names("q=C%C3%89RAMIC").await, ["Ceramic Vase"]);
}

async fn descriptions_attributes_and_options_match(app: SearchApp) {
    assert_eq!(app.names("q=reading").await, ["Floor Lamp"]);
    assert_eq!(app.names("q=walnut").await, ["Bookshelf"]);
    assert_eq!(app.names("q=teal").await, ["Coffee Mug"]);
    // Nested attribute values are searchable too.
    assert_eq!(app.names("q=30cm").await, ["Ceramic Vase"]);
    let hit = &app.search("q=velvet").await["items"][0];
    assert_eq!(
        *hit,
        json!({
            "id": app.id("Armchair Deluxe").to_string(),
            "name": "Armchair Deluxe",
            "description": "Deep seat with a velvet cover",
            "categories": ["chairs", "furniture"],
            "priceRange": {"min": 89_900, "max": 92_900, "currency": "EUR"},
            "version": 1,
            "score": hit["score"],
        })
    );
    assert!(hit["score"].as_f64().unwrap() > 0.0);
}

fn price_counts(page: &Value) -> Vec<u64> {
    page["facets"]["price"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .collect()
}

async fn filters_narrow_and_facets_count_every_match(app: SearchApp) {
    let all = app.search("q=wooden").await;
    assert_eq!(all["total"], 3);
    assert_eq!(
        all["facets"]["categories"],
        json!([
            {"value": "furniture", "count": 3},
            {"value": "chairs", "count": 1},
            {"value": "storage", "count": 1},
            {"value": "tables", "count": 1},
        ])
    );
    assert_eq!(
        all["facets"]["price"],
        json!([
            {"from": 0, "to": 1_000, "count": 0},
            {"from": 1_000, "to": 2_500, "count": 0},
            {"from": 2_500, "to": 5_000, "count": 0},
            {"from": 5_000, "to": 10_000, "count": 0},
            {"from": 10_000, "to": 25_000, "count": 2},
            {"from": 25_000, "to": 50_000, "count": 1},
            {"from": 50_000, "to": null, "count": 0},
        ])
    );
    // Filters narrow the items and the total, never the facets.
    let chairs = app.search("q=wooden&category=chairs").await;
    assert_eq!(names(&chairs), ["Oak Chair"]);
    assert_eq!(chairs["total"], 1);
    assert_eq!(chairs["facets"], all["facets"]);
    let cheap = app.search("q=wooden&maxPrice=25000").await;
    assert_eq!(sorted(names(&cheap)), ["Bookshelf", "Oak Chair"]);
    assert_eq!(cheap["facets"], all["facets"]);
    assert_eq!(
        app.names("q=wooden&minPrice=20000&maxPrice=30000&category=furniture")
            .await,
        ["Bookshelf"]
    );
    assert!(app.names("q=wooden&category=lighting").await.is_empty());
    assert!(app.names("q=wooden&category=Furniture").await.is_empty());
    // Prices filter per variant: some variant must lie in the range.
    assert!(
        app.names("q=cushion&minPrice=2000&maxPrice=2500")
            .await
            .is_empty()
    );
    assert_eq!(
        app.names("q=cushion&minPrice=2500&maxPrice=3000").await,
        ["Linen Cushion"]
    );
    assert_eq!(app.names("q=lamp&maxPrice=5000").await, ["Desk Lamp"]);
    assert_eq!(app.names("q=lamp&minPrice=5000").await, ["Floor Lamp"]);
    // The price facet counts each product once, by its lowest price.
    let textiles = app.search("q=cushion").await;
    assert_eq!(price_counts(&textiles), [0, 1, 0, 0, 0, 0, 0]);
    // Nothing matches: empty page, zero facets.
    let none = app.search("q=zebra").await;
    assert_eq!(none["total"], 0);
    assert_eq!(none["facets"]["categories"], json!([]));
    assert_eq!(price_counts(&none), [0; 7]);
}

async fn pages_split_the_matches_and_say_the_total(app: SearchApp) {
    let all = app.names("q=wooden").await;
    assert_eq!(all.len(), 3);
    let first = app.search("q=wooden&pageSize=2").await;
    assert_eq!(
        (&first["page"], &first["pageSize"], &first["total"]),
        (&json!(1), &json!(2), &json!(3))
    );
    let second = app.search("q=wooden&pageSize=2&page=2").await;
    assert_eq!(second["total"], 3);
    let mut paged = names(&first);
    paged.extend(names(&second));
    assert_eq!(paged, all);
    assert!(
        app.names("q=wooden&pageSize=2&page=3").await.is_empty(),
        "past the last page"
    );
    let defaults = app.search("q=wooden").await;
    assert_eq!(
        (&defaults["page"], &defaults["pageSize"]),
        (&json!(1), &json!(20))
    );
}

async fn archived_products_disappear_and_price_changes_show(app: SearchApp) {
    let position = app
        .append(
            app.id("Desk Lamp"),
            &[ProductEvent::ProductArchived { at: at(100) }],
        )
        .await;
    app.floor_lamp_down_to_4500().await;
    let changed = app
        .append(
            app.id("Wool Rug"),
            &[ProductEvent::ProductUpdated {
                name: Some("Wool Runner".into()),
                description: None,
                categories: None,
                attributes: None,
                updated_at: at(102),
            }],
        )
        .await;
    assert!(changed > position);
    let lamps = app.search(&format!("q=lamp&minPosition={changed}")).await;
    assert_eq!(names(&lamps), ["Floor Lamp"]);
    assert_eq!(
        lamps["items"][0]["priceRange"],
        json!({"min": 4_500, "max": 4_500, "currency": "EUR"})
    );
    assert_eq!(lamps["items"][0]["version"], 2);
    assert_eq!(price_counts(&lamps), [0, 0, 1, 0, 0, 0, 0]);
    assert_eq!(app.names("q=lamp&maxPrice=5000").await, ["Floor Lamp"]);
    assert!(app.names("q=desk").await.is_empty());
    assert_eq!(app.names("q=runner").await, ["Wool Runner"]);
    assert!(app.names("q=rug").await.is_empty());
    assert_eq!(app.index.len(), 9);
}

async fn a_repeated_search_follows_every_change(app: SearchApp) {
    // The same search, asked again, may be answered from the page already found; a
    // change must still show in the very next answer.
    let before = app.search("q=lamp").await;
    assert_eq!(app.search("q=lamp").await, before);
    assert_eq!(names(&before), ["Floor Lamp", "Desk Lamp"]);
    let changed = app.floor_lamp_down_to_4500().await;
    let after = app.search(&format!("q=lamp&minPosition={changed}")).await;
    assert_eq!(after["items"][0]["priceRange"]["min"], 4_500);
    let archived = app
        .append(
            app.id("Desk Lamp"),
            &[ProductEvent::ProductArchived { at: at(102) }],
        )
        .await;
    let after = app.search(&format!("q=lamp&minPosition={archived}")).await;
    assert_eq!(names(&after), ["Floor Lamp"]);
    assert_eq!(after["total"], 1);
}

async fn writes_are_read_with_min_position(app: SearchApp) {
    let id = ProductId::new(Uuid::now_v7());
    let sofa = Product {
        id,
        name: "Velvet Sofa",
        description: "Three seats",
        categories: &["sofas"],
        attributes: json!({}),
        variants: vec![("SOFA", 99_900, "colour", "plum")],
    };
    let position = app.append(id, &[sofa.created(20)]).await;
    // The header: answered only once the index holds the write.
    let response = app
        .client
        .get(format!("{}/api/v1/search?q=sofa", app.address))
        .header("x-emporium-min-position", position)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let page: Value = response.json().await.unwrap();
    // ("soft" is one typo away from "sofa": the linen cushion follows.)
    assert_eq!(names(&page)[0], "Velvet Sofa");
    assert!(app.index.position() >= position);
    // Bad positions are 400s.
    assert_problem(
        app.client
            .get(format!(
                "{}/api/v1/search?q=sofa&minPosition=x",
                app.address
            ))
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "invalid_min_position",
    )
    .await;
}

/// A position the index never reaches times out with 504 (this state has no event log to
/// tell that it is past the log's end); one reached answers at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreached_positions_time_out() {
    let config = QueryConfig {
        min_position_wait: Duration::from_millis(300),
        ..query_config()
    };
    let Some(app) = SearchApp::spawn_with(Backend::Sqlite, config).await else {
        return;
    };
    let head = app.caught_up().await;
    let far = head + 1_000_000;
    let body = assert_problem(
        app.client
            .get(format!(
                "{}/api/v1/search?q=oak&minPosition={far}",
                app.address
            ))
            .send()
            .await
            .unwrap(),
        StatusCode::GATEWAY_TIMEOUT,
        "timeout",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains(&far.to_string()));
    assert_eq!(
        app.names(&format!("q=oak&minPosition={head}")).await,
        ["Oak Chair", "Wooden Table"]
    );
}

/// Every query the rebuild tests compare.
const PROBES: &[&str] = &[
    "oak chair",
    "chiar",
    "wodden",
    "lamp",
    "cushion",
    "blue",
    "furniture",
    "wooden",
];

fn probe(index: &SearchIndex) -> Vec<SearchPage> {
    PROBES
        .iter()
        .map(|q| {
            let mut page = index.search(&SearchQuery::new(*q)).expect("search");
            // Relevance scores depend on the segments (deleted documents count in term
            // statistics until merged), so only what is found, in which order, is compared.
            page.items.iter_mut().for_each(|item| item.score = 0.0);
            page
        })
        .collect()
}

/// Changes after the seed, so the index holds replaced and deleted documents.
async fn churn(app: &SearchApp) {
    app.append(
        app.id("Coffee Mug"),
        &[ProductEvent::ProductArchived { at: at(200) }],
    )
    .await;
    app.append(
        app.id("Ceramic Vase"),
        &[ProductEvent::VariantPriceChanged {
            sku: sku("VASE"),
            old_price: eur(2_500),
            price: eur(3_100),
            at: at(201),
        }],
    )
    .await;
    app.caught_up().await;
}

async fn the_checkpoint_survives_a_restart(mut app: SearchApp) {
    churn(&app).await;
    let head = app.caught_up().await;
    let before = probe(&app.index);
    app.stop().await;
    let resumed = app.reopen();
    assert_eq!(
        resumed, head,
        "the position resumes from the index's checkpoint"
    );
    assert_eq!(app.index.len(), 9, "nothing was indexed again");
    assert_eq!(probe(&app.index), before);
    // And the projection carries on from there (read through the reopened index: the
    // HTTP server still holds the first one).
    let position = app
        .append(
            app.id("Oak Chair"),
            &[ProductEvent::ProductArchived { at: at(300) }],
        )
        .await;
    tokio::time::timeout(Duration::from_secs(30), app.index.wait_for(position))
        .await
        .expect("caught up");
    let page = app.index.search(&SearchQuery::new("oak chair")).unwrap();
    assert_eq!(
        page.items
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>(),
        ["Wooden Table"]
    );
}

async fn a_deleted_folder_is_rebuilt_from_the_log(mut app: SearchApp) {
    churn(&app).await;
    let head = app.caught_up().await;
    let before = probe(&app.index);
    app.stop().await;
    std::fs::remove_dir_all(app.dir()).expect("delete the folder");
    assert_eq!(app.reopen(), 0, "a missing folder starts from position 0");
    assert_eq!(app.caught_up().await, head);
    assert_eq!(app.index.len(), 9);
    assert_eq!(probe(&app.index), before);
}

async fn an_unreadable_index_is_rebuilt_from_the_log(mut app: SearchApp) {
    let head = app.caught_up().await;
    let before = probe(&app.index);
    app.stop().await;
    std::fs::write(app.dir().join("meta.json"), b"{ not json").expect("corrupt meta.json");
    assert_eq!(
        app.reopen(),
        0,
        "an unreadable index starts from position 0"
    );
    assert_eq!(app.caught_up().await, head);
    assert_eq!(probe(&app.index), before);
}

/// Bad parameters are 400 problems, before any search.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_parameters_are_400_problems() {
    let Some(app) = SearchApp::spawn(Backend::Sqlite).await else {
        return;
    };
    for bad in [
        "",
        "q=",
        "q=%20%20",
        "q=oak&q=chair",
        "q=oak&pageSize=0",
        "q=oak&pageSize=101",
        "q=oak&page=0",
        "q=oak&page=600",
        "q=oak&minPrice=-1",
        "q=oak&maxPrice=cheap",
        "q=oak&minPrice=10&maxPrice=9",
        "q=oak&category=",
        "q=oak&sort=price",
        "q=a%20b%20c%20d%20e%20f%20g%20h%20i%20j%20k",
    ] {
        let response = app
            .client
            .get(format!("{}/api/v1/search?{bad}", app.address))
            .send()
            .await
            .unwrap();
        assert_problem(response, StatusCode::BAD_REQUEST, "invalid_query").await;
    }
    let long = "x".repeat(201);
    let response = app
        .client
        .get(format!("{}/api/v1/search?q={long}", app.address))
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::BAD_REQUEST, "invalid_query").await;
    // Text without any word finds nothing, and is no error.
    assert_eq!(app.search("q=%25%25").await["total"], 0);
}

/// The route is in the OpenAPI document, and readiness reports the index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_route_is_documented_and_the_index_is_probed() {
    let Some(app) = SearchApp::spawn(Backend::Sqlite).await else {
        return;
    };
    let doc: Value = app
        .client
        .get(format!("{}/api-docs/openapi.json", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let search = &doc["paths"]["/api/v1/search"]["get"];
    let params: Vec<&str> = search["parameters"]
        .as_array()
        .expect("parameters")
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        params,
        [
            "q",
            "category",
            "minPrice",
            "maxPrice",
            "page",
            "pageSize",
            "minPosition"
        ]
    );
    assert!(doc["components"]["schemas"]["SearchPage"].is_object());
    let ready: Value = app
        .client
        .get(format!("{}/health/ready", app.address))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["checks"]["searchIndex"], "ok", "{ready}");
}

/// Without a search index the route answers 503, whatever minPosition says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_index_search_is_unavailable() {
    let Some(app) = spawn_app(Backend::Sqlite).await else {
        return;
    };
    assert_problem(
        app.get("/api/v1/search?q=oak&minPosition=5").await,
        StatusCode::SERVICE_UNAVAILABLE,
        "unavailable",
    )
    .await;
}
