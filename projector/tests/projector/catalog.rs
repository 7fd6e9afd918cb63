//! The catalogue projection's rows after a known history.
use std::sync::Arc;

use domain::catalog::ProductEvent;
use projector::CatalogProjection;
use serde_json::json;

use crate::support::{Db, at, attributes, product, product_stream, run_to_head, variant};

crate::backend_tests!(
    catalogue_rows_after_a_known_history,
    catalogue_rows_after_a_known_history_one_event_at_a_time,
    an_attribute_too_long_to_filter_by_is_kept_but_not_indexed,
);

/// `len` letters and digits that do not compress (a PostgreSQL index row holds about
/// 2.7 kB after compression).
fn noise(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(ALPHABET[(state % ALPHABET.len() as u64) as usize])
        })
        .collect()
}

/// A value or name longer than any filter may ask for stays in the product but gets no
/// filter row; it used to fail the batch on PostgreSQL (the index's row size), and so
/// stop the catalogue projection for good.
async fn an_attribute_too_long_to_filter_by_is_kept_but_not_indexed(db: Db) {
    let lamp = product(3);
    let story = noise(12_000);
    let long_name = noise(201);
    db.append(
        &product_stream(lamp),
        &[ProductEvent::ProductCreated {
            id: lamp,
            name: "Lamp".into(),
            description: String::new(),
            categories: vec!["lighting".into()],
            attributes: attributes(json!({"colour": "red", "story": story, long_name.clone(): "x", "sku-ish": noise(200)})),
            variants: vec![variant("LAMP", 3900, &[])],
            created_at: at(0),
        }],
    )
    .await;
    run_to_head(&db, Arc::new(CatalogProjection), 500).await;
    let dump = db.dump("catalog").await;
    let id = lamp.to_string();
    let mut filterable = vec![
        vec![id.clone(), "colour".to_owned(), "red".to_owned()],
        vec![id.clone(), "sku-ish".to_owned(), noise(200)],
    ];
    filterable.sort();
    assert_eq!(dump["rm_product_attributes"], filterable);
    let stored = &dump["rm_products"][0];
    assert_eq!(stored[0], id);
    assert!(
        stored
            .iter()
            .any(|cell| cell.contains(&story) && cell.contains(&long_name))
    );
}

async fn catalogue_rows_after_a_known_history(db: Db) {
    rows_after_a_known_history(db, 500).await;
}

/// Each event in a batch of its own: a later change of a product (its name, a price, its
/// archiving) must still reach the rows written by an earlier batch, its category rows
/// included.
async fn catalogue_rows_after_a_known_history_one_event_at_a_time(db: Db) {
    rows_after_a_known_history(db, 1).await;
}

async fn rows_after_a_known_history(db: Db, batch_size: usize) {
    let shirt = product(1);
    let mug = product(2);
    db.append(
        &product_stream(shirt),
        &[
            ProductEvent::ProductCreated {
                id: shirt,
                name: "Linen Shirt".into(),
                description: "Breathes.".into(),
                categories: vec!["shirts".into(), "summer".into()],
                attributes: attributes(json!({"material": "linen", "organic": true, "weight": 180, "care": {"wash": 30}})),
                variants: vec![
                    variant("SHIRT-M", 4900, &[("size", "M")]),
                    variant("SHIRT-L", 5200, &[("size", "L")]),
                ],
                created_at: at(0),
            },
            ProductEvent::ProductUpdated {
                name: Some("Linen shirt".into()),
                description: None,
                categories: Some(vec!["shirts".into()]),
                attributes: None,
                updated_at: at(10),
            },
        ],
    )
    .await;
    db.append(
        &product_stream(mug),
        &[ProductEvent::ProductCreated {
            id: mug,
            name: "Mug".into(),
            description: String::new(),
            categories: vec!["kitchen".into()],
            attributes: attributes(json!({})),
            variants: vec![variant("MUG", 900, &[])],
            created_at: at(5),
        }],
    )
    .await;
    db.append(
        &product_stream(shirt),
        &[
            ProductEvent::VariantAdded {
                variant: variant("SHIRT-XL", 5500, &[("size", "XL")]),
                at: at(20),
            },
            ProductEvent::VariantPriceChanged {
                sku: crate::support::sku("SHIRT-M"),
                old_price: crate::support::eur(4900),
                price: crate::support::eur(4500),
                at: at(30),
            },
        ],
    )
    .await;
    db.append(
        &product_stream(mug),
        &[ProductEvent::ProductArchived { at: at(40) }],
    )
    .await;

    run_to_head(&db, Arc::new(CatalogProjection), batch_size).await;
    let dump = db.dump("catalog").await;
    let (s, m) = (shirt.to_string(), mug.to_string());
    let row = |cells: &[&str]| cells.iter().map(|c| (*c).to_owned()).collect::<Vec<_>>();
    let mut products = vec![
        row(&[
            &s,
            "Linen shirt",
            "linen shirt",
            "Breathes.",
            "ACTIVE",
            r#"["shirts"]"#,
            r#"{"care":{"wash":30},"material":"linen","organic":true,"weight":180}"#,
            "EUR",
            "4500",
            "5500",
            "4",
            "2025-06-15T15:06:40.123456Z",
            "2025-06-15T15:07:10.123456Z",
        ]),
        row(&[
            &m,
            "Mug",
            "mug",
            "",
            "ARCHIVED",
            r#"["kitchen"]"#,
            "{}",
            "EUR",
            "900",
            "900",
            "2",
            "2025-06-15T15:06:45.123456Z",
            "2025-06-15T15:07:20.123456Z",
        ]),
    ];
    products.sort();
    assert_eq!(dump["rm_products"], products);
    // Each category row carries what its product is listed by.
    let mut categories = vec![
        row(&[
            &s,
            "shirts",
            "ACTIVE",
            "linen shirt",
            "4500",
            "5500",
            "2025-06-15T15:06:40.123456Z",
        ]),
        row(&[
            &m,
            "kitchen",
            "ARCHIVED",
            "mug",
            "900",
            "900",
            "2025-06-15T15:06:45.123456Z",
        ]),
    ];
    categories.sort();
    assert_eq!(dump["rm_product_categories"], categories);
    let mut attrs = vec![
        row(&[&s, "material", "linen"]),
        row(&[&s, "organic", "true"]),
        row(&[&s, "weight", "180"]),
    ];
    attrs.sort();
    assert_eq!(
        dump["rm_product_attributes"], attrs,
        "nested attributes are not filterable"
    );
    let mut variants = vec![
        row(&["SHIRT-M", &s, "4500", "EUR", r#"{"size":"M"}"#, "0"]),
        row(&["SHIRT-L", &s, "5200", "EUR", r#"{"size":"L"}"#, "1"]),
        row(&["SHIRT-XL", &s, "5500", "EUR", r#"{"size":"XL"}"#, "2"]),
        row(&["MUG", &m, "900", "EUR", "{}", "0"]),
    ];
    variants.sort();
    assert_eq!(dump["rm_variants"], variants);
    assert_eq!(
        projector::checkpoint(&db.pool, "catalog").await.unwrap(),
        db.head().await
    );
}
