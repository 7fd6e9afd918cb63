//! Product rules: `decide` for every [`ProductCommand`].

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::command::ProductCommand;
use super::error::ProductError;
use super::event::ProductEvent;
use super::state::{ProductState, VariantSpec};
use crate::ids::{ProductId, Sku};
use crate::money::Money;
use crate::validation::Validator;

/// Most variants one product may have.
pub const MAX_VARIANTS: usize = 100;
/// Highest price accepted, in minor units (10^12).
pub const MAX_PRICE: i64 = 1_000_000_000_000;
const MAX_NAME: usize = 200;
const MAX_DESCRIPTION: usize = 5000;
const MAX_CATEGORIES: usize = 20;
const MAX_CATEGORY_LEN: usize = 64;
const MAX_OPTIONS: usize = 10;
const MAX_OPTION_LEN: usize = 64;
const MAX_ATTRIBUTES_BYTES: usize = 16 * 1024;
const MAX_ATTRIBUTE_KEYS: usize = 50;
const MAX_ATTRIBUTE_DEPTH: usize = 4;

pub(super) fn decide(
    state: &ProductState,
    command: ProductCommand,
) -> Result<Vec<ProductEvent>, ProductError> {
    match command {
        ProductCommand::Create {
            id,
            name,
            description,
            categories,
            attributes,
            variants,
            now,
        } => create(
            state,
            NewProduct {
                id,
                name,
                description,
                categories,
                attributes,
                variants,
            },
            now,
        ),
        ProductCommand::Update {
            name,
            description,
            categories,
            attributes,
            now,
        } => update(state, name, description, categories, attributes, now),
        ProductCommand::AddVariant { variant, now } => add_variant(state, variant, now),
        ProductCommand::ChangeVariantPrice { sku, price, now } => {
            change_price(state, sku, price, now)
        }
        ProductCommand::Archive { now } => archive(state, now),
    }
}

struct NewProduct {
    id: ProductId,
    name: String,
    description: String,
    categories: Vec<String>,
    attributes: Map<String, Value>,
    variants: Vec<VariantSpec>,
}

fn create(
    state: &ProductState,
    p: NewProduct,
    now: DateTime<Utc>,
) -> Result<Vec<ProductEvent>, ProductError> {
    if state.exists() {
        return Err(ProductError::AlreadyExists);
    }
    let mut v = Validator::new();
    v.text("name", &p.name, 1, MAX_NAME);
    check_description(&mut v, &p.description);
    check_categories(&mut v, &p.categories);
    check_attributes(&mut v, &p.attributes);
    v.check(
        !p.variants.is_empty(),
        "variants",
        "must list at least one variant",
    );
    v.check(
        p.variants.len() <= MAX_VARIANTS,
        "variants",
        format!("must list at most {MAX_VARIANTS} variants"),
    );
    for (i, variant) in p.variants.iter().enumerate() {
        check_variant(&mut v, &format!("variants[{i}]"), variant);
    }
    v.finish()?;

    let mut seen = BTreeSet::new();
    if let Some(dup) = p.variants.iter().find(|x| !seen.insert(&x.sku)) {
        return Err(ProductError::DuplicateSku(dup.sku.clone()));
    }
    let currency = p.variants[0].price.currency;
    if p.variants.iter().any(|x| x.price.currency != currency) {
        return Err(ProductError::MixedCurrencies);
    }
    Ok(vec![ProductEvent::ProductCreated {
        id: p.id,
        name: p.name.trim().to_owned(),
        description: p.description,
        categories: trim_all(p.categories),
        attributes: p.attributes,
        variants: p.variants,
        created_at: now,
    }])
}

fn update(
    state: &ProductState,
    name: Option<String>,
    description: Option<String>,
    categories: Option<Vec<String>>,
    attributes: Option<Map<String, Value>>,
    now: DateTime<Utc>,
) -> Result<Vec<ProductEvent>, ProductError> {
    ensure_changeable(state)?;
    let mut v = Validator::new();
    if let Some(name) = &name {
        v.text("name", name, 1, MAX_NAME);
    }
    if let Some(description) = &description {
        check_description(&mut v, description);
    }
    if let Some(categories) = &categories {
        check_categories(&mut v, categories);
    }
    if let Some(attributes) = &attributes {
        check_attributes(&mut v, attributes);
    }
    v.finish()?;

    // Only what differs is recorded, so a resubmitted form appends nothing.
    let name = name
        .map(|n| n.trim().to_owned())
        .filter(|n| *n != state.name);
    let description = description.filter(|d| *d != state.description);
    let categories = categories.map(trim_all).filter(|c| *c != state.categories);
    let attributes = attributes.filter(|a| *a != state.attributes);
    if name.is_none() && description.is_none() && categories.is_none() && attributes.is_none() {
        return Ok(vec![]);
    }
    Ok(vec![ProductEvent::ProductUpdated {
        name,
        description,
        categories,
        attributes,
        updated_at: now,
    }])
}

fn add_variant(
    state: &ProductState,
    variant: VariantSpec,
    now: DateTime<Utc>,
) -> Result<Vec<ProductEvent>, ProductError> {
    ensure_changeable(state)?;
    let mut v = Validator::new();
    check_variant(&mut v, "variant", &variant);
    v.finish()?;
    if state.variant(&variant.sku).is_some() {
        return Err(ProductError::DuplicateSku(variant.sku));
    }
    if state
        .currency()
        .is_some_and(|c| c != variant.price.currency)
    {
        return Err(ProductError::MixedCurrencies);
    }
    if state.variants.len() >= MAX_VARIANTS {
        return Err(ProductError::TooManyVariants { max: MAX_VARIANTS });
    }
    Ok(vec![ProductEvent::VariantAdded { variant, at: now }])
}

fn change_price(
    state: &ProductState,
    sku: Sku,
    price: Money,
    now: DateTime<Utc>,
) -> Result<Vec<ProductEvent>, ProductError> {
    ensure_changeable(state)?;
    let mut v = Validator::new();
    check_price(&mut v, "price.amount", price);
    v.finish()?;
    let Some(variant) = state.variant(&sku) else {
        return Err(ProductError::UnknownVariant(sku));
    };
    let others_differ = state
        .variants
        .iter()
        .any(|x| x.sku != sku && x.price.currency != price.currency);
    if others_differ {
        return Err(ProductError::MixedCurrencies);
    }
    if variant.price == price {
        return Ok(vec![]);
    }
    Ok(vec![ProductEvent::VariantPriceChanged {
        old_price: variant.price,
        sku,
        price,
        at: now,
    }])
}

fn archive(state: &ProductState, now: DateTime<Utc>) -> Result<Vec<ProductEvent>, ProductError> {
    if !state.exists() {
        return Err(ProductError::NotFound);
    }
    if state.is_archived() {
        return Err(ProductError::AlreadyArchived);
    }
    Ok(vec![ProductEvent::ProductArchived { at: now }])
}

fn ensure_changeable(state: &ProductState) -> Result<(), ProductError> {
    if !state.exists() {
        Err(ProductError::NotFound)
    } else if state.is_archived() {
        Err(ProductError::Archived)
    } else {
        Ok(())
    }
}

fn trim_all(items: Vec<String>) -> Vec<String> {
    items.into_iter().map(|s| s.trim().to_owned()).collect()
}

fn check_description(v: &mut Validator, description: &str) {
    v.check(
        description.chars().count() <= MAX_DESCRIPTION,
        "description",
        format!("must be at most {MAX_DESCRIPTION} characters"),
    );
}

fn check_categories(v: &mut Validator, categories: &[String]) {
    v.check(
        categories.len() <= MAX_CATEGORIES,
        "categories",
        format!("must list at most {MAX_CATEGORIES} categories"),
    );
    for (i, c) in categories.iter().enumerate() {
        v.text(format!("categories[{i}]"), c, 1, MAX_CATEGORY_LEN);
    }
}

fn check_attributes(v: &mut Validator, attributes: &Map<String, Value>) {
    v.check(
        attributes.len() <= MAX_ATTRIBUTE_KEYS,
        "attributes",
        format!("must have at most {MAX_ATTRIBUTE_KEYS} keys"),
    );
    let bytes = serde_json::to_vec(attributes).map_or(usize::MAX, |b| b.len());
    v.check(
        bytes <= MAX_ATTRIBUTES_BYTES,
        "attributes",
        format!("must be at most {MAX_ATTRIBUTES_BYTES} bytes of JSON"),
    );
    let depth = 1 + attributes.values().map(json_depth).max().unwrap_or(0);
    v.check(
        depth <= MAX_ATTRIBUTE_DEPTH,
        "attributes",
        format!("must nest at most {MAX_ATTRIBUTE_DEPTH} levels deep"),
    );
}

/// Levels of objects and arrays: a scalar is 0, `{}` and `[1]` are 1, `{"a": {}}` is 2.
fn json_depth(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(json_depth).max().unwrap_or(0),
        Value::Object(map) => 1 + map.values().map(json_depth).max().unwrap_or(0),
        _ => 0,
    }
}

fn check_price(v: &mut Validator, field: &str, price: Money) {
    v.check(
        (0..=MAX_PRICE).contains(&price.amount),
        field,
        format!("must be between 0 and {MAX_PRICE} minor units"),
    );
}

fn check_variant(v: &mut Validator, prefix: &str, variant: &VariantSpec) {
    check_price(v, &format!("{prefix}.price.amount"), variant.price);
    v.check(
        variant.options.len() <= MAX_OPTIONS,
        format!("{prefix}.options"),
        format!("must have at most {MAX_OPTIONS} options"),
    );
    for (key, value) in &variant.options {
        let field = format!("{prefix}.options.{key}");
        if v.text(field.clone(), key, 1, MAX_OPTION_LEN) {
            v.check(
                value.chars().count() <= MAX_OPTION_LEN,
                field,
                format!("value must be at most {MAX_OPTION_LEN} characters"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use chrono::TimeZone;
    use serde_json::json;
    use uuid::Uuid;

    use super::*;
    use crate::catalog::Product;
    use crate::money::Currency;
    use crate::testing::{given, given_no_events};
    use crate::validation::Invalid;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap()
    }
    fn later() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 1, 3, 0, 0, 0).unwrap()
    }
    fn pid() -> ProductId {
        ProductId::new(Uuid::from_u128(1))
    }
    fn sku(s: &str) -> Sku {
        Sku::parse(s).unwrap()
    }
    fn eur(amount: i64) -> Money {
        Money::new(amount, Currency::EUR)
    }
    fn variant(s: &str, amount: i64) -> VariantSpec {
        VariantSpec {
            sku: sku(s),
            price: eur(amount),
            options: BTreeMap::from([("size".to_owned(), "L".to_owned())]),
        }
    }
    fn attrs(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn create_cmd(variants: Vec<VariantSpec>) -> ProductCommand {
        ProductCommand::Create {
            id: pid(),
            name: "  T-shirt ".into(),
            description: "Cotton".into(),
            categories: vec![" tops ".into()],
            attributes: attrs(json!({ "material": "cotton" })),
            variants,
            now: now(),
        }
    }

    fn created() -> ProductEvent {
        ProductEvent::ProductCreated {
            id: pid(),
            name: "T-shirt".into(),
            description: "Cotton".into(),
            categories: vec!["tops".into()],
            attributes: attrs(json!({ "material": "cotton" })),
            variants: vec![variant("TS-L", 1999), variant("TS-M", 1999)],
            created_at: now(),
        }
    }

    fn archived() -> ProductEvent {
        ProductEvent::ProductArchived { at: later() }
    }

    fn invalid_fields(result: Result<Vec<ProductEvent>, ProductError>) -> Vec<String> {
        match result {
            Err(ProductError::Invalid(Invalid(errors))) => {
                errors.into_iter().map(|e| e.field).collect()
            }
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    fn update(name: Option<&str>) -> ProductCommand {
        ProductCommand::Update {
            name: name.map(str::to_owned),
            description: None,
            categories: None,
            attributes: None,
            now: later(),
        }
    }

    #[test]
    fn create_normalises_and_emits_created() {
        let state = given_no_events::<Product>()
            .when(create_cmd(vec![
                variant("TS-L", 1999),
                variant("TS-M", 1999),
            ]))
            .then_events(vec![created()]);
        assert!(state.exists());
        assert_eq!(state.variant(&sku("TS-M")).unwrap().price, eur(1999));
        assert_eq!(state.currency(), Some(Currency::EUR));
    }

    #[test]
    fn create_twice_is_refused() {
        given::<Product>(vec![created()])
            .when(create_cmd(vec![variant("X", 1)]))
            .then_error(ProductError::AlreadyExists);
    }

    #[test]
    fn create_reports_every_bad_field() {
        let mut big = variant("TS-X", -1);
        big.options = (0..11).map(|i| (format!("k{i}"), "v".into())).collect();
        let mut long_opt = variant("TS-Y", MAX_PRICE + 1);
        long_opt.options = BTreeMap::from([("colour".into(), "x".repeat(65))]);
        let cmd = ProductCommand::Create {
            id: pid(),
            name: "   ".into(),
            description: "d".repeat(5001),
            categories: vec!["ok".into(), String::new(), "c".repeat(65)],
            attributes: attrs(json!({ "a": { "b": { "c": { "d": {} } } } })),
            variants: vec![big, long_opt],
            now: now(),
        };
        let fields = given_no_events::<Product>().when(cmd).then(invalid_fields);
        assert_eq!(
            fields,
            [
                "name",
                "description",
                "categories[1]",
                "categories[2]",
                "attributes",
                "variants[0].price.amount",
                "variants[0].options",
                "variants[1].price.amount",
                "variants[1].options.colour",
            ]
        );
    }

    #[test]
    fn name_and_description_limits_are_inclusive() {
        let ok = ProductCommand::Create {
            id: pid(),
            name: "n".repeat(200),
            description: "d".repeat(5000),
            categories: (0..20).map(|i| format!("{i}{}", "c".repeat(62))).collect(),
            attributes: attrs(json!({ "a": { "b": { "c": [1] } } })),
            variants: vec![variant("A", 0), variant("B", MAX_PRICE)],
            now: now(),
        };
        given_no_events::<Product>()
            .when(ok)
            .then(|r| assert!(r.is_ok(), "{r:?}"));
        let too_long = ProductCommand::Create {
            id: pid(),
            name: "n".repeat(201),
            description: String::new(),
            categories: vec!["c".into()],
            attributes: Map::new(),
            variants: vec![variant("A", 0)],
            now: now(),
        };
        let fields = given_no_events::<Product>()
            .when(too_long)
            .then(invalid_fields);
        assert_eq!(fields, ["name"]);
    }

    #[test]
    fn categories_count_is_0_to_20() {
        let create = |categories| ProductCommand::Create {
            id: pid(),
            name: "n".into(),
            description: String::new(),
            categories,
            attributes: Map::new(),
            variants: vec![variant("A", 1)],
            now: now(),
        };
        let too_many = create((0..21).map(|i| i.to_string()).collect());
        let fields = given_no_events::<Product>()
            .when(too_many)
            .then(invalid_fields);
        assert_eq!(fields, ["categories"]);
        // An uncategorised product is allowed.
        given_no_events::<Product>()
            .when(create(vec![]))
            .then(|r| assert!(r.is_ok(), "{r:?}"));
    }

    #[test]
    fn variants_count_is_1_to_100() {
        let fields = given_no_events::<Product>()
            .when(create_cmd(vec![]))
            .then(invalid_fields);
        assert_eq!(fields, ["variants"]);
        let many = (0..101).map(|i| variant(&format!("S{i}"), 1)).collect();
        let fields = given_no_events::<Product>()
            .when(create_cmd(many))
            .then(invalid_fields);
        assert_eq!(fields, ["variants"]);
        let hundred = (0..100).map(|i| variant(&format!("S{i}"), 1)).collect();
        given_no_events::<Product>()
            .when(create_cmd(hundred))
            .then(|r| assert!(r.is_ok()));
    }

    #[test]
    fn attributes_limits() {
        let many_keys: Map<String, Value> = (0..51).map(|i| (format!("k{i}"), json!(i))).collect();
        let huge = attrs(json!({ "blob": "x".repeat(16 * 1024) }));
        for attributes in [many_keys, huge] {
            let cmd = ProductCommand::Update {
                name: None,
                description: None,
                categories: None,
                attributes: Some(attributes),
                now: later(),
            };
            let fields = given::<Product>(vec![created()])
                .when(cmd)
                .then(invalid_fields);
            assert_eq!(fields, ["attributes"]);
        }
    }

    #[test]
    fn json_depth_counts_containers() {
        assert_eq!(json_depth(&json!(1)), 0);
        assert_eq!(json_depth(&json!([])), 1);
        assert_eq!(json_depth(&json!({ "a": [ { "b": 1 } ] })), 3);
    }

    #[test]
    fn duplicate_sku_on_create() {
        given_no_events::<Product>()
            .when(create_cmd(vec![
                variant("A", 1),
                variant("B", 1),
                variant("A", 2),
            ]))
            .then_error(ProductError::DuplicateSku(sku("A")));
    }

    #[test]
    fn mixed_currencies_on_create() {
        let mut usd = variant("B", 1);
        usd.price.currency = Currency::USD;
        given_no_events::<Product>()
            .when(create_cmd(vec![variant("A", 1), usd]))
            .then_error(ProductError::MixedCurrencies);
    }

    #[test]
    fn anything_on_missing_product_is_not_found() {
        let commands = vec![
            update(Some("x")),
            ProductCommand::AddVariant {
                variant: variant("A", 1),
                now: now(),
            },
            ProductCommand::ChangeVariantPrice {
                sku: sku("A"),
                price: eur(1),
                now: now(),
            },
            ProductCommand::Archive { now: now() },
        ];
        for cmd in commands {
            given_no_events::<Product>()
                .when(cmd)
                .then_error(ProductError::NotFound);
        }
    }

    #[test]
    fn changes_to_archived_product_are_refused() {
        let commands = vec![
            update(Some("x")),
            ProductCommand::AddVariant {
                variant: variant("A", 1),
                now: now(),
            },
            ProductCommand::ChangeVariantPrice {
                sku: sku("TS-L"),
                price: eur(1),
                now: now(),
            },
        ];
        for cmd in commands {
            given::<Product>(vec![created(), archived()])
                .when(cmd)
                .then_error(ProductError::Archived);
        }
    }

    #[test]
    fn archive_once() {
        let state = given::<Product>(vec![created()])
            .when(ProductCommand::Archive { now: later() })
            .then_events(vec![archived()]);
        assert!(state.is_archived());
        assert_eq!(state.updated_at, Some(later()));
        given::<Product>(vec![created(), archived()])
            .when(ProductCommand::Archive { now: later() })
            .then_error(ProductError::AlreadyArchived);
    }

    #[test]
    fn update_records_only_changes() {
        let cmd = ProductCommand::Update {
            name: Some(" Shirt ".into()),
            description: Some("Cotton".into()),
            categories: Some(vec!["tops".into()]),
            attributes: Some(attrs(json!({ "material": "linen" }))),
            now: later(),
        };
        let state = given::<Product>(vec![created()])
            .when(cmd)
            .then_events(vec![ProductEvent::ProductUpdated {
                name: Some("Shirt".into()),
                description: None,
                categories: None,
                attributes: Some(attrs(json!({ "material": "linen" }))),
                updated_at: later(),
            }]);
        assert_eq!(state.name, "Shirt");
        assert_eq!(state.attributes["material"], "linen");
        assert_eq!(state.description, "Cotton");
    }

    #[test]
    fn update_without_changes_emits_nothing() {
        given::<Product>(vec![created()])
            .when(update(None))
            .then_no_events();
        given::<Product>(vec![created()])
            .when(update(Some("T-shirt ")))
            .then_no_events();
    }

    #[test]
    fn update_validates_given_fields() {
        let cmd = ProductCommand::Update {
            name: Some(String::new()),
            description: None,
            categories: Some(vec![String::new()]),
            attributes: None,
            now: later(),
        };
        let fields = given::<Product>(vec![created()])
            .when(cmd)
            .then(invalid_fields);
        assert_eq!(fields, ["name", "categories[0]"]);
    }

    #[test]
    fn add_variant() {
        let state = given::<Product>(vec![created()])
            .when(ProductCommand::AddVariant {
                variant: variant("TS-S", 1799),
                now: later(),
            })
            .then_events(vec![ProductEvent::VariantAdded {
                variant: variant("TS-S", 1799),
                at: later(),
            }]);
        assert_eq!(state.variants.len(), 3);
    }

    #[test]
    fn add_variant_rules() {
        given::<Product>(vec![created()])
            .when(ProductCommand::AddVariant {
                variant: variant("TS-L", 1),
                now: later(),
            })
            .then_error(ProductError::DuplicateSku(sku("TS-L")));
        let mut usd = variant("TS-S", 1);
        usd.price.currency = Currency::USD;
        given::<Product>(vec![created()])
            .when(ProductCommand::AddVariant {
                variant: usd,
                now: later(),
            })
            .then_error(ProductError::MixedCurrencies);
        let fields = given::<Product>(vec![created()])
            .when(ProductCommand::AddVariant {
                variant: variant("TS-S", -5),
                now: later(),
            })
            .then(invalid_fields);
        assert_eq!(fields, ["variant.price.amount"]);
    }

    #[test]
    fn at_most_100_variants() {
        let ProductEvent::ProductCreated { variants, .. } = created() else {
            unreachable!()
        };
        let mut history = vec![created()];
        history.extend(
            (variants.len()..MAX_VARIANTS).map(|i| ProductEvent::VariantAdded {
                variant: variant(&format!("V{i}"), 1),
                at: later(),
            }),
        );
        given::<Product>(history)
            .when(ProductCommand::AddVariant {
                variant: variant("ONE-MORE", 1),
                now: later(),
            })
            .then_error(ProductError::TooManyVariants { max: MAX_VARIANTS });
    }

    #[test]
    fn change_price() {
        let state = given::<Product>(vec![created()])
            .when(ProductCommand::ChangeVariantPrice {
                sku: sku("TS-M"),
                price: eur(1499),
                now: later(),
            })
            .then_events(vec![ProductEvent::VariantPriceChanged {
                sku: sku("TS-M"),
                old_price: eur(1999),
                price: eur(1499),
                at: later(),
            }]);
        assert_eq!(state.variant(&sku("TS-M")).unwrap().price, eur(1499));
        assert_eq!(state.variant(&sku("TS-L")).unwrap().price, eur(1999));
    }

    #[test]
    fn change_to_same_price_emits_nothing() {
        given::<Product>(vec![created()])
            .when(ProductCommand::ChangeVariantPrice {
                sku: sku("TS-M"),
                price: eur(1999),
                now: later(),
            })
            .then_no_events();
    }

    #[test]
    fn change_price_rules() {
        given::<Product>(vec![created()])
            .when(ProductCommand::ChangeVariantPrice {
                sku: sku("NOPE"),
                price: eur(1),
                now: later(),
            })
            .then_error(ProductError::UnknownVariant(sku("NOPE")));
        given::<Product>(vec![created()])
            .when(ProductCommand::ChangeVariantPrice {
                sku: sku("TS-M"),
                price: Money::new(1, Currency::USD),
                now: later(),
            })
            .then_error(ProductError::MixedCurrencies);
        let fields = given::<Product>(vec![created()])
            .when(ProductCommand::ChangeVariantPrice {
                sku: sku("TS-M"),
                price: eur(MAX_PRICE + 1),
                now: later(),
            })
            .then(invalid_fields);
        assert_eq!(fields, ["price.amount"]);
    }

    #[test]
    fn events_round_trip_and_skip_absent_fields() {
        let update = ProductEvent::ProductUpdated {
            name: Some("n".into()),
            description: None,
            categories: None,
            attributes: None,
            updated_at: later(),
        };
        let (t, data) = crate::aggregate::encode(&update);
        assert_eq!(t, "ProductUpdated");
        assert_eq!(
            data,
            json!({ "name": "n", "updatedAt": "2025-01-03T00:00:00Z" })
        );
        for e in [created(), update, archived()] {
            let (t, data) = crate::aggregate::encode(&e);
            assert_eq!(
                crate::aggregate::decode::<ProductEvent>(&t, 1, data).unwrap(),
                e
            );
        }
        let (_, data) = crate::aggregate::encode(&created());
        assert_eq!(
            data["variants"][0]["price"],
            json!({ "amount": 1999, "currency": "EUR" })
        );
        assert_eq!(data["createdAt"], json!("2025-01-02T03:04:05Z"));
    }
}
