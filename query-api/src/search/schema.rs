//! The index schema: one document per ACTIVE product, built from the product's folded
//! state, and the text analysis shared by indexing and querying.
//!
//! Text (name, description, attribute and option values) is split on anything that is
//! not a letter or digit, lower-cased and folded to ASCII (`Café` matches `cafe`); no
//! stemming — typo tolerance covers plurals. Categories are kept verbatim (a fast string
//! column, for filtering and counting), prices as fast `i64` columns in minor units.
use domain::{
    catalog::{ProductState, ProductStatus},
    ids::ProductId,
};
use serde_json::Value;
use tantivy::{
    Index, TantivyDocument,
    schema::{
        FAST, Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions,
    },
    tokenizer::{AsciiFoldingFilter, LowerCaser, RemoveLongFilter, SimpleTokenizer, TextAnalyzer},
};

/// The tokenizer name registered on the index for the full-text fields.
pub(crate) const TOKENIZER: &str = "emporium";

/// Bumped whenever the schema or the analysis changes: an index written with another
/// version is rebuilt from the log.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// Column names read by the collectors.
pub(crate) const ID: &str = "id";
pub(crate) const CATEGORY: &str = "category";
pub(crate) const PRICE: &str = "price";
pub(crate) const MIN_PRICE: &str = "min_price";
pub(crate) const CREATED: &str = "created";

/// The fields of the index.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Fields {
    /// Product id (UUID text): the key documents are replaced by.
    pub id: Field,
    /// Display name: the most heavily weighted text.
    pub name: Field,
    /// Description.
    pub description: Field,
    /// Attribute values and variant option values, as text.
    pub attributes: Field,
    /// Categories, verbatim (several values).
    pub category: Field,
    /// Every variant's price (several values): "some variant costs between…" filters.
    pub price: Field,
    /// Lowest variant price: the price facet and the answer's price range.
    pub min_price: Field,
    /// Highest variant price.
    pub max_price: Field,
    /// ISO 4217 code of the prices.
    pub currency: Field,
    /// Always `ACTIVE`: archived products are removed from the index.
    pub status: Field,
    /// The product stream's version the document was built from.
    pub version: Field,
    /// Creation time, microseconds since the epoch: the tie-break after relevance.
    pub created: Field,
}

fn text(stored: bool) -> TextOptions {
    let indexing = TextFieldIndexing::default()
        .set_tokenizer(TOKENIZER)
        .set_index_option(IndexRecordOption::WithFreqsAndPositions);
    let options = TextOptions::default().set_indexing_options(indexing);
    if stored {
        options.set_stored()
    } else {
        options
    }
}

impl Fields {
    /// The schema and its fields.
    pub(crate) fn schema() -> (Schema, Self) {
        let mut builder = Schema::builder();
        let fields = Self {
            id: builder.add_text_field(ID, STRING | STORED | FAST),
            name: builder.add_text_field("name", text(true)),
            description: builder.add_text_field("description", text(true)),
            attributes: builder.add_text_field("attributes", text(false)),
            category: builder.add_text_field(CATEGORY, STRING | STORED | FAST),
            price: builder.add_i64_field(PRICE, FAST),
            min_price: builder.add_i64_field(MIN_PRICE, FAST | STORED),
            max_price: builder.add_i64_field("max_price", FAST | STORED),
            currency: builder.add_text_field("currency", STRING | STORED),
            status: builder.add_text_field("status", STRING | STORED),
            version: builder.add_u64_field("version", STORED),
            created: builder.add_i64_field(CREATED, FAST | STORED),
        };
        (builder.build(), fields)
    }
}

/// The analysis of full-text fields and query text.
pub(crate) fn analyzer() -> TextAnalyzer {
    TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser)
        .filter(AsciiFoldingFilter)
        .build()
}

/// Registers [`analyzer`] on `index` (tokenizers are not persisted with the index).
pub(crate) fn register_tokenizer(index: &Index) {
    index.tokenizers().register(TOKENIZER, analyzer());
}

/// The words of `text` as the index holds them.
pub(crate) fn words(analyzer: &mut TextAnalyzer, text: &str) -> Vec<String> {
    let mut stream = analyzer.token_stream(text);
    let mut words = Vec::new();
    while stream.advance() {
        words.push(stream.token().text.clone());
    }
    words
}

/// Scalar texts of an attribute value, nested arrays and objects included.
fn attribute_texts(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::String(s) => out.push(s.clone()),
        Value::Number(n) => out.push(n.to_string()),
        Value::Bool(b) => out.push(b.to_string()),
        Value::Array(items) => items.iter().for_each(|v| attribute_texts(v, out)),
        Value::Object(map) => map.values().for_each(|v| attribute_texts(v, out)),
        Value::Null => {}
    }
}

/// The document of product `id` at `version`, or `None` when it must not be searchable
/// (not created, or archived).
pub(crate) fn document(
    fields: &Fields,
    id: ProductId,
    state: &ProductState,
    version: u64,
) -> Option<TantivyDocument> {
    if state.status != Some(ProductStatus::Active) {
        return None;
    }
    let mut doc = TantivyDocument::default();
    doc.add_text(fields.id, id.to_string());
    doc.add_text(fields.name, &state.name);
    doc.add_text(fields.description, &state.description);
    let mut texts = Vec::new();
    state
        .attributes
        .values()
        .for_each(|v| attribute_texts(v, &mut texts));
    for variant in &state.variants {
        texts.extend(variant.options.values().cloned());
    }
    for text in texts {
        doc.add_text(fields.attributes, text);
    }
    for category in &state.categories {
        doc.add_text(fields.category, category);
    }
    for variant in &state.variants {
        doc.add_i64(fields.price, variant.price.amount);
    }
    let prices = state.variants.iter().map(|v| v.price.amount);
    doc.add_i64(fields.min_price, prices.clone().min().unwrap_or(0));
    doc.add_i64(fields.max_price, prices.max().unwrap_or(0));
    doc.add_text(
        fields.currency,
        state.currency().map(|c| c.to_string()).unwrap_or_default(),
    );
    doc.add_text(fields.status, "ACTIVE");
    doc.add_u64(fields.version, version);
    doc.add_i64(
        fields.created,
        state.created_at.map_or(0, |t| t.timestamp_micros()),
    );
    Some(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_lower_cased_and_folded() {
        let mut analyzer = analyzer();
        assert_eq!(
            words(&mut analyzer, "Café-Table, 2 SEATS!"),
            ["cafe", "table", "2", "seats"]
        );
        assert!(words(&mut analyzer, " %% ").is_empty());
    }

    #[test]
    fn nested_attribute_values_are_text() {
        let mut out = Vec::new();
        attribute_texts(
            &serde_json::json!({"a": "oak", "b": [1, true, null], "c": {"d": "brass"}}),
            &mut out,
        );
        assert_eq!(out, ["oak", "1", "true", "brass"]);
    }
}
