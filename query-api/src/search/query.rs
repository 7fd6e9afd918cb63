//! What a search asks for ([`SearchQuery`], validated), the tantivy query its text
//! becomes, and the collectors that count facets and apply the filters in the same pass
//! over the matches.
//!
//! Matching: every word of `q` must match (in the name, the description, or the attribute
//! and option values), exactly or within its typo allowance ([`typo_allowance`]); the last
//! word (from 2 characters) also matches as the exact prefix of a longer word (search as
//! you type). Scoring: an exact match earns a fixed bonus plus its BM25 relevance, a
//! typo or prefix match of another word a smaller fixed score ([`super::matching`]), each
//! multiplied by the field's weight (name 3, attributes 1.5, description 1), so exact hits
//! rank above typo-only hits; the whole of `q` as a phrase in the name earns a bonus.
//! Ties are broken by creation time (newest first), then by id.
use std::{collections::HashMap, sync::Arc};

use tantivy::{
    DocId, Order, Score, SegmentOrdinal, SegmentReader, Term,
    collector::{
        Collector, SegmentCollector,
        sort_key::{SortBySimilarityScore, SortByStaticFastValue, SortByString},
    },
    columnar::Column,
    query::{BooleanQuery, BoostQuery, Occur, PhraseQuery, Query},
    schema::Field,
};
use web::ApiError;

use super::{
    matching::{ExactQuery, VariantsQuery},
    schema::{CATEGORY, CREATED, Fields, ID, MIN_PRICE, PRICE},
};
use crate::read::{DEFAULT_PAGE_SIZE, MAX_FILTER_LEN, MAX_PAGE_SIZE};

/// Most words in `q`.
pub const MAX_WORDS: usize = 10;
/// The deepest result a search pages to: `page × pageSize` at most.
pub const MAX_RESULT_WINDOW: u32 = 10_000;
/// Most category facet values answered (the most frequent first).
pub const MAX_CATEGORY_FACETS: usize = 100;
/// The price facet's fixed buckets over a product's lowest variant price, in minor units:
/// `[from, to)`, the last one open-ended.
pub const PRICE_BUCKETS: [(i64, Option<i64>); 7] = [
    (0, Some(1_000)),
    (1_000, Some(2_500)),
    (2_500, Some(5_000)),
    (5_000, Some(10_000)),
    (10_000, Some(25_000)),
    (25_000, Some(50_000)),
    (50_000, None),
];

/// A last word shorter than this is not expanded as a prefix (it would match too much).
const MIN_PREFIX_LEN: usize = 2;
const NAME_WEIGHT: Score = 3.0;
const ATTRIBUTES_WEIGHT: Score = 1.5;
const DESCRIPTION_WEIGHT: Score = 1.0;
/// Fixed score of an exact match (times the field weight), on top of its BM25 score.
const EXACT_BONUS: Score = 4.0;
/// Fixed score of a typo or prefix match (times the field weight).
const FUZZY_SCORE: Score = 1.0;
/// Weight of the whole query as a phrase in the name.
const PHRASE_WEIGHT: Score = 2.0;

/// A validated search.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SearchQuery {
    /// The text searched for, 1 to 200 characters, not blank.
    pub q: String,
    /// Only products listed under this category.
    pub category: Option<String>,
    /// Only products with a variant costing at least this much (minor units).
    pub min_price: Option<i64>,
    /// Only products with a variant costing at most this much (minor units); with
    /// `min_price`, the same variant.
    pub max_price: Option<i64>,
    /// Page number, from 1.
    pub page: u32,
    /// Products per page, 1 to [`MAX_PAGE_SIZE`].
    pub page_size: u32,
}

impl SearchQuery {
    /// A search for `q`, first page, no filters.
    pub fn new(q: impl Into<String>) -> Self {
        Self {
            q: q.into(),
            category: None,
            min_price: None,
            max_price: None,
            page: 1,
            page_size: DEFAULT_PAGE_SIZE,
        }
    }

    /// Validates the query string's pairs. Unknown or repeated parameters are refused.
    ///
    /// # Errors
    /// 400 (`invalid_query`) naming the parameter at fault.
    pub fn parse(pairs: &[(String, String)]) -> Result<Self, ApiError> {
        let mut query = Self::new(String::new());
        let mut seen: Vec<&str> = Vec::new();
        for (key, value) in pairs {
            if seen.contains(&key.as_str()) {
                return Err(ApiError::invalid_query(format!("{key} is given twice")));
            }
            seen.push(key);
            match key.as_str() {
                "q" => {
                    if value.trim().is_empty() || value.chars().count() > MAX_FILTER_LEN {
                        return Err(ApiError::invalid_query(format!(
                            "q must be 1 to {MAX_FILTER_LEN} characters and not blank"
                        )));
                    }
                    query.q.clone_from(value);
                }
                "category" => {
                    if value.is_empty() || value.chars().count() > MAX_FILTER_LEN {
                        return Err(ApiError::invalid_query(format!(
                            "category must be 1 to {MAX_FILTER_LEN} characters"
                        )));
                    }
                    query.category = Some(value.clone());
                }
                "minPrice" => query.min_price = Some(number(key, value, 0..=i64::MAX)?),
                "maxPrice" => query.max_price = Some(number(key, value, 0..=i64::MAX)?),
                "page" => query.page = number(key, value, 1..=MAX_RESULT_WINDOW)?,
                "pageSize" => {
                    query.page_size = number(key, value, 1..=MAX_PAGE_SIZE).map_err(|_| {
                        ApiError::invalid_query(format!(
                            "pageSize must be between 1 and {MAX_PAGE_SIZE}"
                        ))
                    })?;
                }
                // Read by the read-your-writes extractor.
                "minPosition" => {}
                other => {
                    return Err(ApiError::invalid_query(format!(
                        "unknown parameter {other}"
                    )));
                }
            }
        }
        if query.q.is_empty() {
            return Err(ApiError::invalid_query("q is required"));
        }
        if let (Some(min), Some(max)) = (query.min_price, query.max_price)
            && min > max
        {
            return Err(ApiError::invalid_query("minPrice must not exceed maxPrice"));
        }
        if u64::from(query.page) * u64::from(query.page_size) > u64::from(MAX_RESULT_WINDOW) {
            return Err(ApiError::invalid_query(format!(
                "page × pageSize must not exceed {MAX_RESULT_WINDOW}; narrow the search instead"
            )));
        }
        Ok(query)
    }

    /// How many matches precede this page.
    pub(crate) fn offset(&self) -> usize {
        (self.page as usize - 1) * self.page_size as usize
    }
}

fn number<T: std::str::FromStr + PartialOrd>(
    name: &str,
    value: &str,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ApiError> {
    value
        .parse::<T>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| ApiError::invalid_query(format!("{name} is out of range or not an integer")))
}

/// How many edits a word may be away from an indexed word and still match: none below 4
/// characters, 1 for 4 to 7, 2 from 8 (a transposition counts as one edit).
pub fn typo_allowance(word: &str) -> u8 {
    match word.chars().count() {
        0..=3 => 0,
        4..=7 => 1,
        _ => 2,
    }
}

/// The query matching every word of `words` (analysed already; at least one).
pub(crate) fn text_query(fields: &Fields, words: &[String]) -> Box<dyn Query> {
    let weighted = [
        (fields.name, NAME_WEIGHT),
        (fields.attributes, ATTRIBUTES_WEIGHT),
        (fields.description, DESCRIPTION_WEIGHT),
    ];
    let mut clauses: Vec<(Occur, Box<dyn Query>)> = words
        .iter()
        .enumerate()
        .map(|(i, word)| {
            let last = i + 1 == words.len();
            let alternatives = weighted
                .iter()
                .flat_map(|&(field, weight)| word_in_field(field, weight, word, last))
                .map(|q| (Occur::Should, q))
                .collect();
            (
                Occur::Must,
                Box::new(BooleanQuery::new(alternatives)) as Box<dyn Query>,
            )
        })
        .collect();
    if words.len() > 1 {
        let phrase = PhraseQuery::new(
            words
                .iter()
                .map(|w| Term::from_field_text(fields.name, w))
                .collect(),
        );
        clauses.push((
            Occur::Should,
            Box::new(BoostQuery::new(
                Box::new(phrase),
                NAME_WEIGHT * PHRASE_WEIGHT,
            )),
        ));
    }
    Box::new(BooleanQuery::new(clauses))
}

/// The ways `word` matches in `field`: exactly (a fixed bonus and BM25), and otherwise
/// within its typo allowance or, for the last word, as a prefix. Typos are allowed on
/// whole words only: a typo-tolerant prefix matches far too much (`teal` would find `tall`).
fn word_in_field(field: Field, weight: Score, word: &str, last: bool) -> Vec<Box<dyn Query>> {
    let exact = ExactQuery::new(Term::from_field_text(field, word), weight, EXACT_BONUS);
    let prefix = last && word.chars().count() >= MIN_PREFIX_LEN;
    let mut queries: Vec<Box<dyn Query>> = vec![Box::new(exact)];
    if let Some(variants) = VariantsQuery::new(field, word, typo_allowance(word), prefix) {
        queries.push(Box::new(BoostQuery::new(
            Box::new(variants),
            weight * FUZZY_SCORE,
        )));
    }
    queries
}

/// Relevance, then creation time, then id.
pub(crate) type Ranking = (
    (SortBySimilarityScore, Order),
    (SortByStaticFastValue<i64>, Order),
    (SortByString, Order),
);

/// The sort of the result: relevance, then newest, then id (a total order, so pages never
/// overlap).
pub(crate) fn ranking() -> Ranking {
    (
        (SortBySimilarityScore, Order::Desc),
        (SortByStaticFastValue::for_field(CREATED), Order::Desc),
        (SortByString::for_field(ID), Order::Asc),
    )
}

/// Facet counts over the matches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct FacetTally {
    /// Matches per category.
    pub categories: HashMap<String, u64>,
    /// Matches per [`PRICE_BUCKETS`] bucket of their lowest price.
    pub price: [u64; PRICE_BUCKETS.len()],
}

/// The bucket a lowest price falls in.
pub(crate) fn price_bucket(price: i64) -> Option<usize> {
    PRICE_BUCKETS
        .iter()
        .position(|&(from, to)| price >= from && to.is_none_or(|to| price < to))
}

/// Counts categories and price buckets of every match.
pub(crate) struct FacetCounter;

pub(crate) struct SegmentFacetCounter {
    categories: Option<tantivy::columnar::StrColumn>,
    per_ord: Vec<u64>,
    min_price: Option<Column<i64>>,
    price: [u64; PRICE_BUCKETS.len()],
}

impl Collector for FacetCounter {
    type Fruit = FacetTally;
    type Child = SegmentFacetCounter;

    fn for_segment(
        &self,
        _: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<SegmentFacetCounter> {
        let categories = segment.fast_fields().str(CATEGORY)?;
        let per_ord = vec![0; categories.as_ref().map_or(0, |c| c.num_terms())];
        Ok(SegmentFacetCounter {
            categories,
            per_ord,
            min_price: segment.fast_fields().column_opt(MIN_PRICE)?,
            price: [0; PRICE_BUCKETS.len()],
        })
    }

    fn requires_scoring(&self) -> bool {
        false
    }

    fn merge_fruits(&self, fruits: Vec<FacetTally>) -> tantivy::Result<FacetTally> {
        let mut total = FacetTally::default();
        for fruit in fruits {
            for (category, count) in fruit.categories {
                *total.categories.entry(category).or_default() += count;
            }
            for (sum, count) in total.price.iter_mut().zip(fruit.price) {
                *sum += count;
            }
        }
        Ok(total)
    }
}

impl SegmentCollector for SegmentFacetCounter {
    type Fruit = FacetTally;

    fn collect(&mut self, doc: DocId, _: Score) {
        if let Some(categories) = &self.categories {
            for ord in categories.term_ords(doc) {
                if let Some(count) = usize::try_from(ord)
                    .ok()
                    .and_then(|ord| self.per_ord.get_mut(ord))
                {
                    *count += 1;
                }
            }
        }
        if let Some(bucket) = self
            .min_price
            .as_ref()
            .and_then(|c| c.first(doc))
            .and_then(price_bucket)
        {
            self.price[bucket] += 1;
        }
    }

    fn harvest(self) -> FacetTally {
        let mut categories = HashMap::new();
        if let Some(column) = &self.categories {
            let mut text = String::new();
            for (ord, &count) in self.per_ord.iter().enumerate() {
                if count > 0 && column.ord_to_str(ord as u64, &mut text).unwrap_or(false) {
                    categories.insert(text.clone(), count);
                }
            }
        }
        FacetTally {
            categories,
            price: self.price,
        }
    }
}

/// The category and price filters, applied to matches from fast fields.
#[derive(Clone, Debug, Default)]
pub(crate) struct Filter {
    pub category: Option<String>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
}

/// Passes only the matches that satisfy the filter on to `inner`.
pub(crate) struct Filtered<C> {
    pub filter: Arc<Filter>,
    pub inner: C,
}

/// Where the category filter stands in one segment.
enum CategoryFilter {
    /// No category asked for.
    Any,
    /// The category does not occur in this segment.
    Never,
    /// Documents whose category ordinals include this one.
    Ord(Column<u64>, u64),
}

pub(crate) struct SegmentFiltered<S> {
    category: CategoryFilter,
    prices: Option<(Column<i64>, i64, i64)>,
    inner: S,
}

impl<C: Collector> Collector for Filtered<C> {
    type Fruit = C::Fruit;
    type Child = SegmentFiltered<C::Child>;

    fn for_segment(
        &self,
        ordinal: SegmentOrdinal,
        segment: &SegmentReader,
    ) -> tantivy::Result<Self::Child> {
        let category = match &self.filter.category {
            None => CategoryFilter::Any,
            Some(category) => match segment.fast_fields().str(CATEGORY)? {
                None => CategoryFilter::Never,
                Some(column) => match column.dictionary().term_ord(category)? {
                    None => CategoryFilter::Never,
                    Some(ord) => CategoryFilter::Ord(column.into_parts().1, ord),
                },
            },
        };
        let prices = if self.filter.min_price.is_some() || self.filter.max_price.is_some() {
            let min = self.filter.min_price.unwrap_or(i64::MIN);
            let max = self.filter.max_price.unwrap_or(i64::MAX);
            // A segment without any price column has no product that can pass.
            Some((
                segment
                    .fast_fields()
                    .column_opt(PRICE)?
                    .unwrap_or_else(|| Column::build_empty_column(segment.max_doc())),
                min,
                max,
            ))
        } else {
            None
        };
        Ok(SegmentFiltered {
            category,
            prices,
            inner: self.inner.for_segment(ordinal, segment)?,
        })
    }

    fn requires_scoring(&self) -> bool {
        self.inner.requires_scoring()
    }

    fn merge_fruits(
        &self,
        fruits: Vec<<C::Child as SegmentCollector>::Fruit>,
    ) -> tantivy::Result<C::Fruit> {
        self.inner.merge_fruits(fruits)
    }
}

impl<S: SegmentCollector> SegmentFiltered<S> {
    fn accepts(&self, doc: DocId) -> bool {
        let category = match &self.category {
            CategoryFilter::Any => true,
            CategoryFilter::Never => false,
            CategoryFilter::Ord(ords, wanted) => ords.values_for_doc(doc).any(|o| o == *wanted),
        };
        category
            && self.prices.as_ref().is_none_or(|(prices, min, max)| {
                prices
                    .values_for_doc(doc)
                    .any(|p| (*min..=*max).contains(&p))
            })
    }
}

impl<S: SegmentCollector> SegmentCollector for SegmentFiltered<S> {
    type Fruit = S::Fruit;

    fn collect(&mut self, doc: DocId, score: Score) {
        if self.accepts(doc) {
            self.inner.collect(doc, score);
        }
    }

    fn harvest(self) -> S::Fruit {
        self.inner.harvest()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(query: &str) -> Vec<(String, String)> {
        query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (k.to_owned(), v.to_owned())
            })
            .collect()
    }

    #[test]
    fn typo_allowance_grows_with_the_word() {
        assert_eq!(typo_allowance("oak"), 0);
        assert_eq!(typo_allowance("chair"), 1);
        assert_eq!(typo_allowance("wooden"), 1);
        assert_eq!(typo_allowance("armchair"), 2);
    }

    #[test]
    fn price_buckets_cover_every_price_once() {
        assert_eq!(price_bucket(0), Some(0));
        assert_eq!(price_bucket(999), Some(0));
        assert_eq!(price_bucket(1_000), Some(1));
        assert_eq!(price_bucket(49_999), Some(5));
        assert_eq!(price_bucket(i64::MAX), Some(6));
        assert_eq!(price_bucket(-1), None);
    }

    #[test]
    fn parses_a_full_query() {
        let query = SearchQuery::parse(&pairs(
            "q=oak chair&category=chairs&minPrice=100&maxPrice=900&page=2&pageSize=5&minPosition=7",
        ))
        .unwrap();
        assert_eq!(
            query,
            SearchQuery {
                q: "oak chair".into(),
                category: Some("chairs".into()),
                min_price: Some(100),
                max_price: Some(900),
                page: 2,
                page_size: 5,
            }
        );
        assert_eq!(query.offset(), 5);
    }

    #[test]
    fn refuses_bad_queries() {
        for bad in [
            "",
            "q=",
            "q=%20",
            "q=a&q=b",
            "q=a&pageSize=0",
            "q=a&pageSize=101",
            "q=a&page=0",
            "q=a&page=501&pageSize=20",
            "q=a&minPrice=-1",
            "q=a&minPrice=x",
            "q=a&minPrice=5&maxPrice=4",
            "q=a&category=",
            "q=a&sort=name",
        ] {
            let mut pairs = pairs(bad);
            if let Some(p) = pairs.iter_mut().find(|(k, _)| k == "q") {
                p.1 = p.1.replace("%20", " ");
            }
            assert!(SearchQuery::parse(&pairs).is_err(), "{bad} was accepted");
        }
        let long = vec![("q".to_owned(), "x".repeat(201))];
        assert!(SearchQuery::parse(&long).is_err());
    }
}
