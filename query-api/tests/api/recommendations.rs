//! `GET /api/v1/products/{id}/recommendations` and `GET /api/v1/customers/me/recommendations`
//! over a scripted catalogue and order history whose right answers are worked out by hand:
//! bought-together first by orders, then similar by score; archived, sold-out and already
//! bought products left out; a cancelled order counts for nothing; 400/401/403/404.
use domain::{
    account::Role,
    catalog::ProductEvent,
    ids::{AccountId, OrderId, ProductId},
    inventory::StockEvent,
    order::{Actor, OrderEvent, OrderStatus},
};
use eventstore::StreamId;
use reqwest::StatusCode;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::{
    helpers::{TestApp, assert_problem, at, object, product_stream, sku, variant},
    shop::{append_by, line, order_stream, placed},
};

crate::backend_tests!(
    product_recommendations_in_order_with_reasons,
    customer_recommendations_leave_out_their_purchases,
    recommendations_refuse_bad_requests,
);

/// The scripted shop. Categories and attributes:
/// - a Trail Boot: shoes, outdoor; brand north, colour brown
/// - b Wool Socks: socks, outdoor; brand north, colour grey
/// - c Gaiters: outdoor; brand south, colour brown
/// - d Boot Wax: care; brand north
/// - e Hiking Pole: outdoor; brand south — sold out (all of its stock reserved)
/// - f Old Boot: shoes, outdoor; brand north, colour brown — archived
/// - g Sandals: shoes; brand east, colour brown
/// - h Tent: camping; brand west
///
/// Orders: o1 (bob) a b d; o2 (cat) a b; o3 (cat) a d e f; o4 (dan) a b c;
/// o5 (cat) a g, cancelled.
struct Shop {
    products: Vec<ProductId>,
    bob: AccountId,
    cat: AccountId,
    dan: AccountId,
}

const NAMES: [&str; 8] = [
    "Trail Boot",
    "Wool Socks",
    "Gaiters",
    "Boot Wax",
    "Hiking Pole",
    "Old Boot",
    "Sandals",
    "Tent",
];

impl Shop {
    fn id(&self, name: &str) -> ProductId {
        self.products[NAMES.iter().position(|n| *n == name).expect("known name")]
    }
}

fn code(i: usize) -> String {
    format!("REC-{i}")
}

async fn seed(app: &TestApp) -> Shop {
    let attributes = [
        (
            vec!["shoes", "outdoor"],
            json!({"brand": "north", "colour": "brown"}),
        ),
        (
            vec!["socks", "outdoor"],
            json!({"brand": "north", "colour": "grey"}),
        ),
        (
            vec!["outdoor"],
            json!({"brand": "south", "colour": "brown"}),
        ),
        (vec!["care"], json!({"brand": "north"})),
        (vec!["outdoor"], json!({"brand": "south"})),
        (
            vec!["shoes", "outdoor"],
            json!({"brand": "north", "colour": "brown"}),
        ),
        (vec!["shoes"], json!({"brand": "east", "colour": "brown"})),
        (vec!["camping"], json!({"brand": "west"})),
    ];
    let mut products = Vec::new();
    for (i, (name, (categories, attrs))) in NAMES.iter().zip(attributes).enumerate() {
        // Ids in name order, so ties (broken by id) are known.
        let id = ProductId::new(Uuid::from_u128(
            0x0198_0000_0000_7000_8000_0000_0000_0000 + i as u128,
        ));
        products.push(id);
        app.append(
            &product_stream(id),
            &[ProductEvent::ProductCreated {
                id,
                name: (*name).into(),
                description: format!("About {name}"),
                categories: categories.into_iter().map(String::from).collect(),
                attributes: object(attrs),
                variants: vec![variant(&code(i), 1000 + i as i64, "one")],
                created_at: at(i as i64),
            }],
        )
        .await;
        let mut stock = vec![StockEvent::StockAdjusted {
            sku: sku(&code(i)),
            delta: 5,
            reason: "restock".into(),
            at: at(20),
            adjustment_id: None,
        }];
        if *name == "Hiking Pole" {
            stock.push(StockEvent::StockReserved {
                order_id: OrderId::new(Uuid::now_v7()),
                qty: 5,
                at: at(21),
            });
        }
        app.append(&StreamId::of("stock", code(i)), &stock).await;
    }
    let shop = Shop {
        products,
        bob: AccountId::new(Uuid::now_v7()),
        cat: AccountId::new(Uuid::now_v7()),
        dan: AccountId::new(Uuid::now_v7()),
    };
    app.append(
        &product_stream(shop.id("Old Boot")),
        &[ProductEvent::ProductArchived { at: at(30) }],
    )
    .await;
    let orders: [(AccountId, &[&str]); 5] = [
        (shop.bob, &["Trail Boot", "Wool Socks", "Boot Wax"]),
        (shop.cat, &["Trail Boot", "Wool Socks"]),
        (
            shop.cat,
            &["Trail Boot", "Boot Wax", "Hiking Pole", "Old Boot"],
        ),
        (shop.dan, &["Trail Boot", "Wool Socks", "Gaiters"]),
        (shop.cat, &["Trail Boot", "Sandals"]),
    ];
    let mut last = OrderId::new(Uuid::now_v7());
    for (n, (customer, names)) in orders.into_iter().enumerate() {
        last = OrderId::new(Uuid::now_v7());
        let lines = names
            .iter()
            .map(|name| {
                let i = NAMES.iter().position(|n| n == name).expect("known name");
                line(shop.products[i], &code(i), 1, 1000 + i as i64)
            })
            .collect();
        append_by(
            app,
            &order_stream(last),
            customer,
            &[placed(last, customer, lines, 100 + n as i64)],
        )
        .await;
    }
    append_by(
        app,
        &order_stream(last),
        shop.cat,
        &[OrderEvent::OrderCancelled {
            from: OrderStatus::Placed,
            by: Actor {
                id: shop.cat,
                role: Role::Customer,
            },
            reason: None,
            at: at(200),
        }],
    )
    .await;
    app.caught_up().await;
    shop
}

/// `(name, reason, score)` of each item, in order.
fn summary(list: &Value) -> Vec<(String, String, i64)> {
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            (
                item["product"]["name"].as_str().expect("name").to_owned(),
                item["reason"].as_str().expect("reason").to_owned(),
                item["score"].as_i64().expect("score"),
            )
        })
        .collect()
}

fn expect(items: &[(&str, &str, i64)]) -> Vec<(String, String, i64)> {
    items
        .iter()
        .map(|(name, reason, score)| ((*name).to_owned(), (*reason).to_owned(), *score))
        .collect()
}

async fn product_recommendations_in_order_with_reasons(app: TestApp) {
    let shop = seed(&app).await;
    let boot = shop.id("Trail Boot");
    let path = format!("/api/v1/products/{boot}/recommendations");
    // Bought together with the boot: socks 3 orders, wax 2, gaiters 1 (the pole is sold
    // out, the old boot archived, the sandals' only order cancelled). Similar: socks, gaiters
    // and sandals 3 (a shared category 2 + a shared attribute 1), wax 1; the tent shares
    // nothing. Only the sandals are not listed yet.
    let list = app.get_json(&path).await;
    assert_eq!(
        summary(&list),
        expect(&[
            ("Wool Socks", "boughtTogether", 3),
            ("Boot Wax", "boughtTogether", 2),
            ("Gaiters", "boughtTogether", 1),
            ("Sandals", "similar", 3),
        ])
    );
    // Each item is a product as the list shows it, with live availability.
    let socks = &list["items"][0]["product"];
    assert_eq!(socks["id"], shop.id("Wool Socks").to_string());
    assert_eq!(socks["status"], "ACTIVE");
    assert_eq!(socks["variants"][0]["available"], 5);
    assert_eq!(
        summary(&app.get_json(&format!("{path}?limit=2")).await),
        expect(&[
            ("Wool Socks", "boughtTogether", 3),
            ("Boot Wax", "boughtTogether", 2),
        ])
    );

    // The socks: bought with the boot 3 times, with the gaiters and the wax once each (ties
    // in product id order). Similar: the boot (outdoor, north) 3, the gaiters (outdoor) 2,
    // the wax (north) 1: all listed already.
    let socks = shop.id("Wool Socks");
    assert_eq!(
        summary(
            &app.get_json(&format!("/api/v1/products/{socks}/recommendations"))
                .await
        ),
        expect(&[
            ("Trail Boot", "boughtTogether", 3),
            ("Gaiters", "boughtTogether", 1),
            ("Boot Wax", "boughtTogether", 1),
        ])
    );

    // A product nobody shares anything with has no recommendations.
    let tent = shop.id("Tent");
    assert_eq!(
        app.get_json(&format!("/api/v1/products/{tent}/recommendations"))
            .await,
        json!({"items": []})
    );

    // Read-your-writes: a new order of the tent with the gaiters, read at its position.
    let eve = AccountId::new(Uuid::now_v7());
    let order = OrderId::new(Uuid::now_v7());
    let (gaiters, tent_code) = (shop.id("Gaiters"), code(7));
    let position = append_by(
        &app,
        &order_stream(order),
        eve,
        &[placed(
            order,
            eve,
            vec![
                line(tent, &tent_code, 1, 1007),
                line(gaiters, &code(2), 1, 1002),
            ],
            300,
        )],
    )
    .await;
    let list = app
        .get_json(&format!(
            "/api/v1/products/{tent}/recommendations?minPosition={position}"
        ))
        .await;
    assert_eq!(summary(&list), expect(&[("Gaiters", "boughtTogether", 1)]));
}

async fn customer_recommendations_leave_out_their_purchases(app: TestApp) {
    let shop = seed(&app).await;
    // Cat bought the boot, socks, wax, pole and old boot (the sandals' order is cancelled).
    // Bought together with those and not bought by her: the gaiters (with the boot once, with
    // the socks once). Similar to her purchases: the gaiters 11, the sandals 6 (shoes and
    // brown, like the boot and the old boot); the tent shares nothing.
    let cat = app.token_for(shop.cat, Role::Customer);
    let list = app
        .get_as("/api/v1/customers/me/recommendations", &cat)
        .await;
    assert_eq!(list.status(), StatusCode::OK);
    let list: Value = list.json().await.unwrap();
    assert_eq!(
        summary(&list),
        expect(&[("Gaiters", "boughtTogether", 2), ("Sandals", "similar", 6)])
    );

    // Dan bought the boot, socks and gaiters: the wax was bought with the boot twice and the
    // socks once; similar (and not bought): the sandals (3 from the boot), the pole is sold
    // out, the old boot archived.
    let dan = app.token_for(shop.dan, Role::Customer);
    let list: Value = app
        .get_as("/api/v1/customers/me/recommendations?limit=1", &dan)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(summary(&list), expect(&[("Boot Wax", "boughtTogether", 3)]));

    // Once the gaiters are bought, they are no longer recommended to her, and the sandals
    // gain a point from them (brown).
    let order = OrderId::new(Uuid::now_v7());
    let position = append_by(
        &app,
        &order_stream(order),
        shop.cat,
        &[placed(
            order,
            shop.cat,
            vec![line(shop.id("Gaiters"), &code(2), 1, 1002)],
            400,
        )],
    )
    .await;
    let list: Value = app
        .get_as(
            &format!("/api/v1/customers/me/recommendations?minPosition={position}"),
            &cat,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(summary(&list), expect(&[("Sandals", "similar", 7)]));

    // A customer who has bought nothing gets nothing.
    let new = app.token(Role::Customer);
    let list: Value = app
        .get_as("/api/v1/customers/me/recommendations", &new)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list, json!({"items": []}));
}

async fn recommendations_refuse_bad_requests(app: TestApp) {
    let shop = seed(&app).await;
    let boot = shop.id("Trail Boot");
    for path in [
        format!("/api/v1/products/{}/recommendations", Uuid::now_v7()),
        format!("/api/v1/products/{}/recommendations", shop.id("Old Boot")),
        "/api/v1/products/not-a-uuid/recommendations".to_owned(),
    ] {
        assert_problem(app.get(&path).await, StatusCode::NOT_FOUND, "not_found").await;
    }
    for query in [
        "limit=0",
        "limit=51",
        "limit=ten",
        "sort=name",
        "limit=1&limit=2",
    ] {
        let path = format!("/api/v1/products/{boot}/recommendations?{query}");
        assert_problem(
            app.get(&path).await,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        )
        .await;
    }
    assert_problem(
        app.get(&format!(
            "/api/v1/products/{boot}/recommendations?minPosition=-1"
        ))
        .await,
        StatusCode::BAD_REQUEST,
        "invalid_min_position",
    )
    .await;

    let me = "/api/v1/customers/me/recommendations";
    assert_problem(app.get(me).await, StatusCode::UNAUTHORIZED, "unauthorized").await;
    assert_problem(
        app.get_as(me, "not-a-token").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    for role in [Role::Admin, Role::Staff] {
        assert_problem(
            app.get_as(me, &app.token(role)).await,
            StatusCode::FORBIDDEN,
            "forbidden",
        )
        .await;
    }
    let customer = app.token_for(shop.bob, Role::Customer);
    assert_problem(
        app.get_as(&format!("{me}?limit=100"), &customer).await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
}
