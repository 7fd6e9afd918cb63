//! The product list (filters, sorting, pagination, validation) and the product view
//! (shape, ETag, archived visibility).
use domain::{account::Role, catalog::ProductEvent};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{
    TestApp, assert_problem, at, etag, eur, names, product_stream, sku, tag_version, variant,
};

crate::backend_tests!(
    lists_filter_sort_and_paginate,
    category_lists_follow_every_change_of_their_products,
    bad_list_parameters_are_400_problems,
    archived_products_are_for_the_back_office,
    the_product_view_has_its_shape_and_etag,
    product_views_are_cached_until_the_product_changes,
    list_pages_are_cached_until_the_catalogue_or_the_stock_moves,
    list_pages_carry_an_etag_and_answer_304_while_unchanged,
    every_page_and_sort_of_a_filter_shares_one_count_until_the_read_models_move,
);

async fn lists_filter_sort_and_paginate(app: TestApp) {
    app.seed().await;
    let list = app.get_json("/api/v1/products").await;
    assert_eq!(
        names(&list),
        [
            "Cotton Tee",
            "Linen Shirt",
            "Silk Scarf 100%",
            "Wool Jumper"
        ]
    );
    assert_eq!(
        (
            list["total"].clone(),
            list["page"].clone(),
            list["pageSize"].clone()
        ),
        (json!(4), json!(1), json!(20))
    );

    let cases: &[(&str, &[&str])] = &[
        ("category=shirts", &["Cotton Tee", "Linen Shirt"]),
        ("category=kitchen", &[]),
        (
            "minPrice=5000",
            &["Linen Shirt", "Silk Scarf 100%", "Wool Jumper"],
        ),
        ("maxPrice=2000", &["Cotton Tee"]),
        ("minPrice=1600&maxPrice=1800", &["Cotton Tee"]),
        ("minPrice=1501&maxPrice=1699", &[]),
        ("attr.colour=red", &["Cotton Tee", "Wool Jumper"]),
        ("attr.colour=red&attr.material=wool", &["Wool Jumper"]),
        ("attr.organic=true", &["Cotton Tee"]),
        ("attr.size=100", &[]),
        ("category=shirts&attr.colour=white", &["Linen Shirt"]),
        ("q=SHIRT", &["Linen Shirt"]),
        ("q=o", &["Cotton Tee", "Wool Jumper"]),
        ("q=%25", &["Silk Scarf 100%"]),
        ("q=_", &[]),
        (
            "sort=-name",
            &[
                "Wool Jumper",
                "Silk Scarf 100%",
                "Linen Shirt",
                "Cotton Tee",
            ],
        ),
        (
            "sort=price",
            &[
                "Cotton Tee",
                "Linen Shirt",
                "Wool Jumper",
                "Silk Scarf 100%",
            ],
        ),
        (
            "sort=-price",
            &[
                "Silk Scarf 100%",
                "Wool Jumper",
                "Linen Shirt",
                "Cotton Tee",
            ],
        ),
        (
            "sort=newest",
            &[
                "Silk Scarf 100%",
                "Cotton Tee",
                "Wool Jumper",
                "Linen Shirt",
            ],
        ),
    ];
    for (query, expected) in cases {
        let list = app.get_json(&format!("/api/v1/products?{query}")).await;
        assert_eq!(names(&list), *expected, "{query}");
        assert_eq!(list["total"], expected.len(), "{query}");
    }

    let mut seen = Vec::new();
    for page in 1..=3 {
        let list = app
            .get_json(&format!(
                "/api/v1/products?sort=price&pageSize=3&page={page}"
            ))
            .await;
        assert_eq!(list["total"], 4, "the total counts every page");
        assert_eq!(list["page"], page);
        assert_eq!(list["pageSize"], 3);
        seen.extend(names(&list));
    }
    assert_eq!(
        seen,
        [
            "Cotton Tee",
            "Linen Shirt",
            "Wool Jumper",
            "Silk Scarf 100%"
        ],
        "pages neither overlap nor skip"
    );
    let list = app
        .get_json("/api/v1/products?pageSize=100&category=shirts")
        .await;
    assert_eq!(
        list["items"][1]["variants"].as_array().unwrap().len(),
        2,
        "every variant of a listed product"
    );
}

/// A category's list is read from the category's own rows (each carrying its product's
/// name, prices, status and age): every change of a product must reach them.
async fn category_lists_follow_every_change_of_their_products(app: TestApp) {
    let catalogue = app.seed().await;
    let tee = product_stream(catalogue.tee);
    app.append(
        &tee,
        &[
            ProductEvent::ProductUpdated {
                name: Some("Zebra Tee".into()),
                description: None,
                categories: None,
                attributes: None,
                updated_at: at(20),
            },
            ProductEvent::VariantPriceChanged {
                sku: sku("TEE-M"),
                old_price: eur(1500),
                price: eur(9000),
                at: at(21),
            },
            ProductEvent::VariantPriceChanged {
                sku: sku("TEE-L"),
                old_price: eur(1700),
                price: eur(9500),
                at: at(22),
            },
        ],
    )
    .await;
    app.append(
        &product_stream(catalogue.shirt),
        &[
            ProductEvent::ProductUpdated {
                name: None,
                description: None,
                categories: Some(vec!["shirts".into(), "sale".into()]),
                attributes: None,
                updated_at: at(23),
            },
            ProductEvent::VariantAdded {
                variant: variant("SHIRT-XL", 6000, "XL"),
                at: at(23),
            },
        ],
    )
    .await;
    app.caught_up().await;
    let cases: &[(&str, &[&str])] = &[
        ("category=shirts", &["Linen Shirt", "Zebra Tee"]),
        ("category=shirts&sort=-name", &["Zebra Tee", "Linen Shirt"]),
        ("category=shirts&sort=price", &["Linen Shirt", "Zebra Tee"]),
        ("category=shirts&sort=-price", &["Zebra Tee", "Linen Shirt"]),
        ("category=shirts&minPrice=8000", &["Zebra Tee"]),
        // The shirt's prices run from 4,900 to 6,000: a band inside that range holds the
        // shirt only when one of its variants costs within it (5,200).
        (
            "category=shirts&minPrice=5000&maxPrice=5500",
            &["Linen Shirt"],
        ),
        ("minPrice=5000&maxPrice=5500", &["Linen Shirt"]),
        ("category=shirts&minPrice=5300&maxPrice=5900", &[]),
        ("minPrice=5300&maxPrice=5900", &[]),
        ("category=shirts&q=zebra", &["Zebra Tee"]),
        ("category=sale", &["Linen Shirt"]),
        ("category=summer", &[]),
    ];
    for (query, expected) in cases {
        let list = app.get_json(&format!("/api/v1/products?{query}")).await;
        assert_eq!(names(&list), *expected, "{query}");
        assert_eq!(list["total"], expected.len(), "{query}");
    }

    app.append(&tee, &[ProductEvent::ProductArchived { at: at(24) }])
        .await;
    app.caught_up().await;
    let list = app.get_json("/api/v1/products?category=shirts").await;
    assert_eq!(names(&list), ["Linen Shirt"]);
    assert_eq!(list["total"], 1);
}

async fn bad_list_parameters_are_400_problems(app: TestApp) {
    for query in [
        "pageSize=101",
        "pageSize=0",
        "page=0",
        "page=x",
        "sort=cheapest",
        "status=DELETED",
        "minPrice=-1",
        "minPrice=10&maxPrice=5",
        "maxPrice=1.5",
        "colour=red",
        "page=1&page=2",
        "attr.=x",
        "q=",
    ] {
        let body = assert_problem(
            app.get(&format!("/api/v1/products?{query}")).await,
            StatusCode::BAD_REQUEST,
            "invalid_query",
        )
        .await;
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{query}"
        );
    }
    let body = assert_problem(
        app.get("/api/v1/products?pageSize=101").await,
        StatusCode::BAD_REQUEST,
        "invalid_query",
    )
    .await;
    assert!(body["detail"].as_str().unwrap().contains("pageSize"));
    assert_problem(
        app.get("/api/v1/products?minPosition=soon").await,
        StatusCode::BAD_REQUEST,
        "invalid_min_position",
    )
    .await;
    let response = app
        .client
        .get(app.url("/api/v1/products"))
        .header("x-emporium-min-position", "-3")
        .send()
        .await
        .unwrap();
    assert_problem(response, StatusCode::BAD_REQUEST, "invalid_min_position").await;
}

async fn archived_products_are_for_the_back_office(app: TestApp) {
    let catalogue = app.seed().await;
    let path = "/api/v1/products?status=ARCHIVED";
    assert_problem(
        app.get(path).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    assert_problem(
        app.get_as(path, &app.token(Role::Customer)).await,
        StatusCode::FORBIDDEN,
        "forbidden",
    )
    .await;
    assert_problem(
        app.get_as(path, "not-a-token").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    )
    .await;
    for role in [Role::Staff, Role::Admin] {
        let response = app.get_as(path, &app.token(role)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let list: Value = response.json().await.unwrap();
        assert_eq!(names(&list), ["Old Mug"]);
        assert_eq!(list["items"][0]["status"], "ARCHIVED");
    }
    // Active products stay public, with or without a token.
    let list: Value = app
        .get_as("/api/v1/products", &app.token(Role::Customer))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["total"], 4);

    let mug = format!("/api/v1/products/{}", catalogue.mug);
    assert_problem(app.get(&mug).await, StatusCode::NOT_FOUND, "not_found").await;
    assert_problem(
        app.get_as(&mug, &app.token(Role::Customer)).await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    let response = app.get_as(&mug, &app.token(Role::Staff)).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.json::<Value>().await.unwrap()["status"],
        "ARCHIVED"
    );
}

async fn the_product_view_has_its_shape_and_etag(app: TestApp) {
    let catalogue = app.seed().await;
    let path = format!("/api/v1/products/{}", catalogue.shirt);
    let response = app.get(&path).await;
    assert_eq!(response.status(), StatusCode::OK);
    let tag = etag(&response);
    assert_eq!(tag_version(&tag), Some(1));
    let view: Value = response.json().await.unwrap();
    assert_eq!(
        view,
        json!({
            "id": catalogue.shirt.to_string(),
            "name": "Linen Shirt",
            "description": "About Linen Shirt",
            "categories": ["shirts", "summer"],
            "attributes": {"colour": "white", "material": "linen"},
            "status": "ACTIVE",
            "variants": [
                {"sku": "SHIRT-M", "price": {"amount": 4900, "currency": "EUR"}, "options": {"size": "M"}, "available": 7},
                {"sku": "SHIRT-L", "price": {"amount": 5200, "currency": "EUR"}, "options": {"size": "L"}, "available": 0},
            ],
            "priceRange": {"min": 4900, "max": 5200, "currency": "EUR"},
            "version": 1,
            "createdAt": "2025-06-15T15:06:40.000000Z",
            "updatedAt": "2025-06-15T15:06:40.000000Z",
        })
    );
    // The list shows the same view.
    let list = app.get_json("/api/v1/products?q=linen").await;
    assert_eq!(list["items"][0], view);

    for (sent, status) in [
        (tag.clone(), StatusCode::NOT_MODIFIED),
        (format!("W/{tag}"), StatusCode::NOT_MODIFIED),
        (format!("\"0\", {tag}"), StatusCode::NOT_MODIFIED),
        ("*".to_owned(), StatusCode::NOT_MODIFIED),
        // The bare version is not the tag: it says nothing of the stock shown.
        ("\"1\"".to_owned(), StatusCode::OK),
    ] {
        let response = app
            .client
            .get(app.url(&path))
            .header("if-none-match", &sent)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "If-None-Match: {sent}");
        assert_eq!(etag(&response), tag);
        if status == StatusCode::NOT_MODIFIED {
            assert!(response.bytes().await.unwrap().is_empty());
        }
    }

    // A stock movement leaves the version but changes what the view shows, so the tag.
    let position = app
        .append(
            &eventstore::StreamId::of("stock", "SHIRT-M"),
            &[domain::inventory::StockEvent::StockAdjusted {
                sku: sku("SHIRT-M"),
                delta: 2,
                reason: "restock".into(),
                at: at(19),
                adjustment_id: None,
            }],
        )
        .await;
    let response = app
        .client
        .get(app.url(&path))
        .header("if-none-match", &tag)
        .header("x-emporium-min-position", position)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let restocked = etag(&response);
    assert_eq!(tag_version(&restocked), Some(1));
    assert_ne!(restocked, tag);
    assert_eq!(
        response.json::<Value>().await.unwrap()["variants"][0]["available"],
        9
    );

    // A change moves the version: the cached view is replaced, the old ETag no longer matches.
    let position = app
        .append(
            &product_stream(catalogue.shirt),
            &[ProductEvent::VariantPriceChanged {
                sku: sku("SHIRT-L"),
                old_price: eur(5200),
                price: eur(5900),
                at: at(20),
            }],
        )
        .await;
    let response = app
        .client
        .get(app.url(&path))
        .header("if-none-match", &restocked)
        .header("x-emporium-min-position", position)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(tag_version(&etag(&response)), Some(2));
    let view: Value = response.json().await.unwrap();
    assert_eq!(view["variants"][1]["price"]["amount"], 5900);
    assert_eq!(
        view["priceRange"],
        json!({"min": 4900, "max": 5900, "currency": "EUR"})
    );
    assert_eq!(view["updatedAt"], "2025-06-15T15:07:00.000000Z");

    assert_problem(
        app.get(&format!("/api/v1/products/{}", uuid::Uuid::now_v7()))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
    assert_problem(
        app.get("/api/v1/products/not-a-uuid").await,
        StatusCode::NOT_FOUND,
        "not_found",
    )
    .await;
}

async fn product_views_are_cached_until_the_product_changes(app: TestApp) {
    let catalogue = app.seed().await;
    let path = format!("/api/v1/products/{}", catalogue.tee);
    assert_eq!(app.get_json(&path).await["name"], "Cotton Tee");
    // Rows changed behind the projector's back are not seen while the view is cached...
    sqlx::query("UPDATE rm_products SET name = 'Tampered' WHERE id = $1")
        .bind(catalogue.tee.to_string())
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(app.get_json(&path).await["name"], "Cotton Tee");
    // ...nor after other products change (the checkpoint moves, this product's version does not)...
    let other = app
        .append(
            &product_stream(catalogue.jumper),
            &[ProductEvent::ProductArchived { at: at(30) }],
        )
        .await;
    assert_eq!(
        app.get_json(&format!("{path}?minPosition={other}")).await["name"],
        "Cotton Tee"
    );
    // ...while availability is always read afresh...
    let stocked = restock_tee(&app).await;
    let view = app.get_json(&format!("{path}?minPosition={stocked}")).await;
    assert_eq!(
        (
            view["name"].clone(),
            view["variants"][1]["available"].clone()
        ),
        (json!("Cotton Tee"), json!(4))
    );
    // ...and a change of the product itself replaces the view.
    let renamed = app
        .append(
            &product_stream(catalogue.tee),
            &[ProductEvent::ProductUpdated {
                name: Some("Organic Tee".into()),
                description: None,
                categories: None,
                attributes: None,
                updated_at: at(32),
            }],
        )
        .await;
    let view = app.get_json(&format!("{path}?minPosition={renamed}")).await;
    assert_eq!(
        (view["name"].clone(), view["version"].clone()),
        (json!("Organic Tee"), json!(2))
    );
}

async fn list_pages_are_cached_until_the_catalogue_or_the_stock_moves(app: TestApp) {
    let catalogue = app.seed().await;
    let path = "/api/v1/products?category=shirts";
    let first = app.get_json(path).await;
    assert_eq!(names(&first), ["Cotton Tee", "Linen Shirt"]);
    // A row changed behind the projector's back is not seen while the page is cached: the
    // second answer comes from the cache, not from the read model.
    sqlx::query("UPDATE rm_products SET name = 'Tampered' WHERE id = $1")
        .bind(catalogue.tee.to_string())
        .execute(&app.pool)
        .await
        .unwrap();
    assert_eq!(app.get_json(path).await, first);
    // Any stock movement moves the inventory checkpoint: the page is read anew, with the
    // new availability (and, here, the tampered name, proving it was re-read).
    let stocked = restock_tee(&app).await;
    let after = app.get_json(&format!("{path}&minPosition={stocked}")).await;
    // (Sorted by the stored sort key, which the tampering left alone.)
    assert_eq!(names(&after), ["Tampered", "Linen Shirt"]);
    let tee = after["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Tampered")
        .unwrap();
    assert_eq!(tee["variants"][1]["available"], 4, "{after}");
    // A catalogue change (another product archived) moves the catalogue checkpoint.
    let archived = app
        .append(
            &product_stream(catalogue.shirt),
            &[ProductEvent::ProductArchived { at: at(32) }],
        )
        .await;
    let after = app
        .get_json(&format!("{path}&minPosition={archived}"))
        .await;
    assert_eq!(names(&after), ["Tampered"]);
    assert_eq!(after["total"], 1);
}

async fn list_pages_carry_an_etag_and_answer_304_while_unchanged(app: TestApp) {
    let catalogue = app.seed().await;
    let path = "/api/v1/products?category=shirts";
    let etag_of = |response: &reqwest::Response| {
        response.headers()["etag"]
            .to_str()
            .expect("an ETag")
            .to_owned()
    };
    let first = app.get(path).await;
    assert_eq!(first.status(), StatusCode::OK);
    let etag = etag_of(&first);
    let conditional = |tag: String| {
        app.client
            .get(app.url(path))
            .header("if-none-match", tag)
            .send()
    };
    let unchanged = conditional(etag.clone()).await.unwrap();
    assert_eq!(unchanged.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(etag_of(&unchanged), etag);
    assert_eq!(unchanged.text().await.unwrap(), "");
    // Another page, another tag.
    let other = app.get("/api/v1/products?category=shirts&sort=-name").await;
    assert_ne!(etag_of(&other), etag);
    // The page changes (a product archived): a new tag; the old one no longer matches.
    let changed = app
        .append(
            &product_stream(catalogue.shirt),
            &[ProductEvent::ProductArchived { at: at(32) }],
        )
        .await;
    let after = app.get(&format!("{path}&minPosition={changed}")).await;
    assert_eq!(after.status(), StatusCode::OK);
    assert_ne!(etag_of(&after), etag);
    let stale = conditional(etag).await.unwrap();
    assert_eq!(stale.status(), StatusCode::OK);
}

async fn every_page_and_sort_of_a_filter_shares_one_count_until_the_read_models_move(app: TestApp) {
    app.seed().await;
    let first = app.get_json("/api/v1/products?category=shirts").await;
    assert_eq!(first["total"], 2);
    // A product slipped in behind the projector's back: a page not read before shows it,
    // but its total is the count already taken for this filter at these checkpoints.
    for statement in [
        "INSERT INTO rm_products (id, name, name_key, description, status, categories, \
         attributes, currency, min_price, max_price, version, created_at, updated_at) VALUES \
         ('slipped-in', 'Slipped In', 'slipped in', '', 'ACTIVE', '[\"shirts\"]', '{}', 'EUR', \
         100, 100, 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')",
        "INSERT INTO rm_product_categories (product_id, category, status, name_key, min_price, \
         max_price, created_at) VALUES ('slipped-in', 'shirts', 'ACTIVE', 'slipped in', 100, \
         100, '2026-01-01T00:00:00Z')",
    ] {
        sqlx::query(statement).execute(&app.pool).await.unwrap();
    }
    let resorted = app
        .get_json("/api/v1/products?category=shirts&sort=-name")
        .await;
    assert_eq!(
        names(&resorted),
        ["Slipped In", "Linen Shirt", "Cotton Tee"]
    );
    assert_eq!(resorted["total"], 2, "the shared count");
    // Once the inventory moves, the filter is counted anew.
    let stocked = restock_tee(&app).await;
    let recounted = app
        .get_json(&format!(
            "/api/v1/products?category=shirts&sort=-name&minPosition={stocked}"
        ))
        .await;
    assert_eq!(recounted["total"], 3);
}

/// Four more units of TEE-L, appended to the log; returns the event's position.
async fn restock_tee(app: &TestApp) -> u64 {
    app.append(
        &eventstore::StreamId::of("stock", "TEE-L"),
        &[domain::inventory::StockEvent::StockAdjusted {
            sku: sku("TEE-L"),
            delta: 4,
            reason: "restock".into(),
            at: at(31),
            adjustment_id: None,
        }],
    )
    .await
}
