//! The state file `setup` writes and `run` reads: the catalogue it made (product ids,
//! SKUs, names) and the customers with their passwords and latest access tokens.
//!
//! Customer passwords are the harness's own, made up for a test store, so keeping them in
//! the file is harmless; the admin's password is never written.
use std::{
    path::Path,
    time::{SystemTime, UNIX_EPOCH},
};

use anyhow::Context;
use serde::{Deserialize, Serialize};

/// Everything a run needs to know about the store.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct State {
    /// The command API the catalogue was created through.
    pub target: String,
    /// The query API it was read back from.
    pub query_target: String,
    /// The catalogue.
    pub products: Vec<ProductRef>,
    /// The customers.
    pub customers: Vec<Customer>,
}

/// One product of the load catalogue.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProductRef {
    /// Its id.
    pub id: String,
    /// Its name (search queries are taken from the words of names).
    pub name: String,
    /// Its category.
    pub category: String,
    /// Its variants' SKUs.
    pub skus: Vec<String>,
}

/// One customer and their current access token.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    /// Login name (e-mail).
    pub email: String,
    /// Password (the harness's own).
    pub password: String,
    /// The latest access token.
    pub access_token: String,
    /// When it expires, in Unix seconds.
    pub expires_at: u64,
}

impl Customer {
    /// Whether the token is still good `margin_secs` from `now` (Unix seconds).
    pub fn token_valid_until(&self, now: u64, margin_secs: u64) -> bool {
        self.expires_at > now.saturating_add(margin_secs)
    }
}

impl State {
    /// Every SKU, product by product.
    pub fn skus(&self) -> Vec<String> {
        self.products
            .iter()
            .flat_map(|p| p.skus.iter().cloned())
            .collect()
    }

    /// Reads a state file.
    ///
    /// # Errors
    /// When it cannot be read or is not a state file.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading {} (run `loadgen setup` first)", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
    }

    /// Writes the state file (through a temporary file, so a crash leaves the old one).
    ///
    /// # Errors
    /// When it cannot be written.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)
            .with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
    }
}

/// Now, in Unix seconds.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State {
            target: "http://127.0.0.1:1".into(),
            query_target: "http://127.0.0.1:2".into(),
            products: vec![
                ProductRef {
                    id: "a".into(),
                    name: "Loadgen linen shirt 00000".into(),
                    category: "lg-0".into(),
                    skus: vec!["LG00000-0".into(), "LG00000-1".into()],
                },
                ProductRef {
                    id: "b".into(),
                    name: "Loadgen oak shelf 00001".into(),
                    category: "lg-1".into(),
                    skus: vec!["LG00001-0".into()],
                },
            ],
            customers: vec![Customer {
                email: "c@loadgen.test".into(),
                password: "pw".into(),
                access_token: "t".into(),
                expires_at: 1_000,
            }],
        }
    }

    #[test]
    fn skus_are_listed_product_by_product() {
        assert_eq!(state().skus(), ["LG00000-0", "LG00000-1", "LG00001-0"]);
    }

    #[test]
    fn a_token_is_valid_only_with_the_margin_left() {
        let customer = &state().customers[0];
        assert!(customer.token_valid_until(900, 99));
        assert!(!customer.token_valid_until(900, 100));
        assert!(!customer.token_valid_until(1_000, 0));
    }

    #[test]
    fn the_file_round_trips() {
        let dir = std::env::temp_dir().join(format!("loadgen-state-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.json");
        state().save(&path).unwrap();
        assert_eq!(State::load(&path).unwrap(), state());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_file_says_to_run_setup() {
        let err = State::load(Path::new("/nonexistent/loadgen.json")).unwrap_err();
        assert!(format!("{err:#}").contains("loadgen setup"), "{err:#}");
    }
}
