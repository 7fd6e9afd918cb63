//! What the harness sends, as pure functions: the load catalogue (products, SKUs,
//! customers), order bodies, and the requests a browsing visitor makes. Deterministic for
//! a given index or random generator, so setup can be rerun and runs can be reproduced.
use std::fmt::Write as _;

use rand::{Rng, seq::SliceRandom};
use serde_json::{Value, json};

use crate::state::{ProductRef, State};

/// The password of every load customer (a made-up account on a test store).
pub const CUSTOMER_PASSWORD: &str = "loadgen-customer-password";

/// The prefix of every load product's name (setup finds existing ones by it).
pub const NAME_PREFIX: &str = "Loadgen";

/// Categories of the load catalogue: `lg-0` … `lg-9`.
pub const CATEGORIES: usize = 10;

const ADJECTIVES: [&str; 8] = [
    "Linen", "Oak", "Copper", "Wool", "Canvas", "Ceramic", "Merino", "Walnut",
];
const NOUNS: [&str; 8] = [
    "shirt", "shelf", "kettle", "throw", "sneaker", "bowl", "jacket", "lamp",
];
const COLOURS: [&str; 4] = ["navy", "sand", "forest", "rust"];
const SIZES: [&str; 5] = ["S", "M", "L", "XL", "XXL"];
const SORTS: [&str; 5] = ["name", "-name", "price", "-price", "newest"];

/// Product number `p` of the load catalogue.
#[derive(Clone, Debug, PartialEq)]
pub struct ProductSpec {
    /// Its name: `Loadgen <adjective> <noun> <p>`.
    pub name: String,
    /// Its category.
    pub category: String,
    /// Its SKUs, `LG<p>-<k>`.
    pub skus: Vec<String>,
    /// The `POST /api/v1/products` body.
    pub body: Value,
}

/// The unit price of product `p`, in cents: spread from 5.00 to 104.50.
pub fn price_of(p: usize) -> i64 {
    500 + i64::try_from((p * 37) % 200).unwrap_or(0) * 50
}

/// Product `p` with `skus_per_product` variants.
pub fn product_spec(p: usize, skus_per_product: usize) -> ProductSpec {
    let adjective = ADJECTIVES[p % ADJECTIVES.len()];
    let noun = NOUNS[(p / ADJECTIVES.len()) % NOUNS.len()];
    let name = format!("{NAME_PREFIX} {adjective} {noun} {p:05}");
    let category = format!("lg-{}", p % CATEGORIES);
    let skus: Vec<String> = (0..skus_per_product.max(1))
        .map(|k| format!("LG{p:05}-{k}"))
        .collect();
    let variants: Vec<Value> = skus
        .iter()
        .enumerate()
        .map(|(k, sku)| {
            let size = SIZES
                .get(k)
                .map_or_else(|| format!("V{k}"), |s| (*s).to_owned());
            let amount = price_of(p) + i64::try_from(k).unwrap_or(0) * 100;
            json!({"sku": sku, "price": {"amount": amount, "currency": "EUR"}, "options": {"size": size}})
        })
        .collect();
    let body = json!({
        "name": name,
        "description": format!("A {} {noun} made for load tests.", adjective.to_lowercase()),
        "categories": [category],
        "attributes": {"colour": COLOURS[p % COLOURS.len()], "material": adjective.to_lowercase()},
        "variants": variants,
    });
    ProductSpec {
        name,
        category,
        skus,
        body,
    }
}

/// Customer number `i`: (e-mail, `POST /api/v1/auth/register` body).
pub fn customer_spec(i: usize) -> (String, Value) {
    let email = format!("customer-{i:05}@loadgen.test");
    let body = json!({
        "name": format!("Load Customer {i}"),
        "email": email,
        "mobileNumber": format!("+1555{:07}", i % 10_000_000),
        "password": CUSTOMER_PASSWORD,
    });
    (email, body)
}

/// A `POST /api/v1/orders` body: one unit of each SKU.
pub fn order_body(skus: &[&str]) -> String {
    let lines: Vec<Value> = skus
        .iter()
        .map(|sku| json!({"sku": sku, "quantity": 1}))
        .collect();
    json!({
        "lines": lines,
        "shippingAddress": {
            "name": "Load Customer", "line1": "1 Benchmark Road", "city": "Leeds",
            "postalCode": "LS1 1AA", "country": "GB"
        }
    })
    .to_string()
}

/// `n` distinct SKUs drawn from `all` (fewer when there are fewer).
pub fn pick_skus<'a, R: Rng + ?Sized>(rng: &mut R, all: &'a [String], n: usize) -> Vec<&'a str> {
    all.choose_multiple(rng, n).map(String::as_str).collect()
}

/// One request a browsing visitor makes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BrowseRequest {
    /// `GET /api/v1/products?…`: a list page.
    List(String),
    /// `GET /api/v1/products/{id}`.
    Detail(String),
    /// `GET /api/v1/search?q=…`.
    Search(String),
}

impl BrowseRequest {
    /// The operation name in reports.
    pub fn op(&self) -> &'static str {
        match self {
            Self::List(_) => "list",
            Self::Detail(_) => "detail",
            Self::Search(_) => "search",
        }
    }

    /// The path and query.
    pub fn path(&self) -> &str {
        match self {
            Self::List(p) | Self::Detail(p) | Self::Search(p) => p,
        }
    }
}

/// Picks browse requests: half list pages, a third product details, the rest searches.
#[derive(Clone, Debug)]
pub struct Browser {
    product_ids: Vec<String>,
    words: Vec<String>,
}

impl Browser {
    /// A browser over the load catalogue in `state`.
    pub fn new(state: &State) -> Self {
        let mut words: Vec<String> = state
            .products
            .iter()
            .flat_map(|p: &ProductRef| p.name.split_whitespace().skip(1).take(2))
            .map(str::to_lowercase)
            .collect();
        words.sort();
        words.dedup();
        if words.is_empty() {
            words.push("shirt".into());
        }
        Self {
            product_ids: state.products.iter().map(|p| p.id.clone()).collect(),
            words,
        }
    }

    /// The next request.
    pub fn next<R: Rng + ?Sized>(&self, rng: &mut R) -> BrowseRequest {
        let roll = rng.gen_range(0..100);
        if roll < 50 || self.product_ids.is_empty() {
            BrowseRequest::List(list_path(rng))
        } else if roll < 85 {
            let id = &self.product_ids[rng.gen_range(0..self.product_ids.len())];
            BrowseRequest::Detail(format!("/api/v1/products/{id}"))
        } else {
            let word = &self.words[rng.gen_range(0..self.words.len())];
            BrowseRequest::Search(format!("/api/v1/search?q={word}"))
        }
    }
}

/// A list page: page 1 to 5, sometimes a category, a sort, a price band.
fn list_path<R: Rng + ?Sized>(rng: &mut R) -> String {
    let mut path = format!("/api/v1/products?pageSize=20&page={}", rng.gen_range(1..=5));
    if rng.gen_bool(0.5) {
        let _ = write!(path, "&category=lg-{}", rng.gen_range(0..CATEGORIES));
    }
    if rng.gen_bool(0.5) {
        let _ = write!(path, "&sort={}", SORTS[rng.gen_range(0..SORTS.len())]);
    }
    if rng.gen_bool(0.2) {
        let low = rng.gen_range(5..50) * 100;
        let _ = write!(path, "&minPrice={low}&maxPrice={}", low + 3000);
    }
    path
}

/// Whether the next `mixed` step is an order: 5 % of them.
pub fn mixed_is_order<R: Rng + ?Sized>(rng: &mut R) -> bool {
    rng.gen_bool(0.05)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use rand::{SeedableRng, rngs::StdRng};

    use super::*;
    use crate::state::ProductRef;

    #[test]
    fn products_are_deterministic_and_valid_looking() {
        let spec = product_spec(12, 3);
        assert_eq!(spec, product_spec(12, 3));
        assert_eq!(spec.name, "Loadgen Canvas shelf 00012");
        assert_eq!(spec.category, "lg-2");
        assert_eq!(spec.skus, ["LG00012-0", "LG00012-1", "LG00012-2"]);
        let variants = spec.body["variants"].as_array().unwrap();
        assert_eq!(variants.len(), 3);
        assert_eq!(variants[0]["price"]["amount"], price_of(12));
        assert_eq!(variants[2]["options"]["size"], "L");
        assert_eq!(spec.body["categories"][0], "lg-2");
        // SKUs are unique across the catalogue.
        let all: BTreeSet<String> = (0..2000).flat_map(|p| product_spec(p, 2).skus).collect();
        assert_eq!(all.len(), 4000);
    }

    #[test]
    fn prices_stay_positive_and_in_range() {
        for p in 0..1000 {
            assert!((500..=10_450).contains(&price_of(p)), "{p}");
        }
    }

    #[test]
    fn customers_have_distinct_emails_and_mobiles() {
        let (email, body) = customer_spec(7);
        assert_eq!(email, "customer-00007@loadgen.test");
        assert_eq!(body["mobileNumber"], "+15550000007");
        let mobiles: BTreeSet<String> = (0..5000)
            .map(|i| {
                customer_spec(i).1["mobileNumber"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        assert_eq!(mobiles.len(), 5000);
    }

    #[test]
    fn an_order_has_one_unit_per_sku() {
        let body: Value = serde_json::from_str(&order_body(&["A", "B"])).unwrap();
        assert_eq!(body["lines"][0], json!({"sku": "A", "quantity": 1}));
        assert_eq!(body["lines"][1], json!({"sku": "B", "quantity": 1}));
        assert_eq!(body["shippingAddress"]["country"], "GB");
    }

    #[test]
    fn picked_skus_are_distinct() {
        let all: Vec<String> = (0..5).map(|i| format!("S{i}")).collect();
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..100 {
            let picked = pick_skus(&mut rng, &all, 2);
            assert_eq!(picked.len(), 2);
            assert_ne!(picked[0], picked[1]);
        }
        assert_eq!(pick_skus(&mut rng, &all, 9).len(), 5);
    }

    fn browser() -> Browser {
        let state = State {
            products: (0..20)
                .map(|p| {
                    let spec = product_spec(p, 1);
                    ProductRef {
                        id: format!("id-{p}"),
                        name: spec.name,
                        category: spec.category,
                        skus: spec.skus,
                    }
                })
                .collect(),
            ..State::default()
        };
        Browser::new(&state)
    }

    #[test]
    fn browsing_mixes_lists_details_and_searches() {
        let browser = browser();
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = BTreeMap::new();
        for _ in 0..10_000 {
            let request = browser.next(&mut rng);
            match &request {
                BrowseRequest::List(p) => assert!(p.starts_with("/api/v1/products?pageSize=20")),
                BrowseRequest::Detail(p) => assert!(p.starts_with("/api/v1/products/id-")),
                BrowseRequest::Search(p) => {
                    let word = p.strip_prefix("/api/v1/search?q=").unwrap();
                    assert!(word.chars().all(|c| c.is_ascii_lowercase()), "{word}");
                }
            }
            *counts.entry(request.op()).or_insert(0) += 1;
        }
        // 50 / 35 / 15 %, within sampling noise.
        assert!((4700..5300).contains(&counts["list"]), "{counts:?}");
        assert!((3200..3800).contains(&counts["detail"]), "{counts:?}");
        assert!((1300..1700).contains(&counts["search"]), "{counts:?}");
    }

    #[test]
    fn an_empty_catalogue_still_browses_lists() {
        let browser = Browser::new(&State::default());
        let mut rng = StdRng::seed_from_u64(3);
        for _ in 0..100 {
            assert_ne!(browser.next(&mut rng).op(), "detail");
        }
    }

    #[test]
    fn mixed_orders_about_one_step_in_twenty() {
        let mut rng = StdRng::seed_from_u64(11);
        let orders = (0..20_000).filter(|_| mixed_is_order(&mut rng)).count();
        assert!((850..1150).contains(&orders), "{orders}");
    }
}
