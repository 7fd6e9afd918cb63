//! The two ways a word of `q` matches in a field, each one scorer.
//!
//! - [`ExactQuery`]: the word itself, scored `weight × (bonus + BM25)`.
//! - [`VariantsQuery`]: every other indexed word within the typo allowance, or (for the
//!   last word of `q`) starting with it; a constant score. The word itself is left out:
//!   its documents are the exact scorer's already.
//!
//! Written as a term query plus a constant-score copy of it, a fuzzy query and a prefix
//! query (the obvious tantivy composition), each matching word walked the same postings
//! four times per field: with 100,000 products, where a common word matches thousands
//! of them, that union was most of a search's time (README, Load results).
use std::sync::{Arc, LazyLock};

use levenshtein_automata::{DFA, Distance, LevenshteinAutomatonBuilder, SINK_STATE};
use tantivy::{
    DocId, DocSet, Score, SeekDangerResult, SegmentReader, Term,
    query::{AutomatonWeight, EnableScoring, Explanation, Query, Scorer, TermQuery, Weight},
    schema::{Field, IndexRecordOption},
};
use tantivy_fst::Automaton;

/// Typo automata builders for one and two edits (a transposition counts as one); costly
/// to build, so built once.
static TYPOS: LazyLock<[LevenshteinAutomatonBuilder; 2]> = LazyLock::new(|| {
    [
        LevenshteinAutomatonBuilder::new(1, true),
        LevenshteinAutomatonBuilder::new(2, true),
    ]
});

/// The word exactly: `weight × (bonus + BM25)`.
#[derive(Clone, Debug)]
pub(crate) struct ExactQuery {
    term: Term,
    weight: Score,
    bonus: Score,
}

impl ExactQuery {
    pub(crate) fn new(term: Term, weight: Score, bonus: Score) -> Self {
        Self {
            term,
            weight,
            bonus,
        }
    }
}

impl Query for ExactQuery {
    fn weight(&self, enable_scoring: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let inner = TermQuery::new(self.term.clone(), IndexRecordOption::WithFreqs)
            .weight(enable_scoring)?;
        Ok(Box::new(ExactWeight {
            inner,
            weight: self.weight,
            bonus: self.bonus,
        }))
    }

    fn query_terms<'a>(&'a self, visitor: &mut dyn FnMut(&'a Term, bool)) {
        visitor(&self.term, false);
    }
}

struct ExactWeight {
    inner: Box<dyn Weight>,
    weight: Score,
    bonus: Score,
}

impl Weight for ExactWeight {
    fn scorer(&self, reader: &SegmentReader, boost: Score) -> tantivy::Result<Box<dyn Scorer>> {
        Ok(Box::new(Bonus {
            inner: self.inner.scorer(reader, boost * self.weight)?,
            bonus: boost * self.weight * self.bonus,
        }))
    }

    fn explain(&self, reader: &SegmentReader, doc: DocId) -> tantivy::Result<Explanation> {
        let relevance = self.inner.explain(reader, doc)?;
        let mut explanation = Explanation::new(
            "exact match: weight × (bonus + relevance)",
            self.weight * (self.bonus + relevance.value()),
        );
        explanation.add_const("weight", self.weight);
        explanation.add_const("bonus", self.bonus);
        explanation.add_detail(relevance);
        Ok(explanation)
    }

    fn count(&self, reader: &SegmentReader) -> tantivy::Result<u32> {
        self.inner.count(reader)
    }
}

/// A scorer plus a constant.
struct Bonus {
    inner: Box<dyn Scorer>,
    bonus: Score,
}

impl DocSet for Bonus {
    fn advance(&mut self) -> DocId {
        self.inner.advance()
    }

    fn seek(&mut self, target: DocId) -> DocId {
        self.inner.seek(target)
    }

    fn seek_danger(&mut self, target: DocId) -> SeekDangerResult {
        self.inner.seek_danger(target)
    }

    fn doc(&self) -> DocId {
        self.inner.doc()
    }

    fn size_hint(&self) -> u32 {
        self.inner.size_hint()
    }

    fn cost(&self) -> u64 {
        self.inner.cost()
    }
}

impl Scorer for Bonus {
    fn score(&mut self) -> Score {
        self.inner.score() + self.bonus
    }
}

/// Every indexed word other than `word` itself that is within `typos` edits of it, or,
/// with `prefix`, that starts with it. Scores `1 × boost`.
#[derive(Clone, Debug)]
pub(crate) struct VariantsQuery {
    field: Field,
    word: String,
    typos: u8,
    prefix: bool,
}

impl VariantsQuery {
    /// `None` when nothing but the word itself could match (no typos, no prefix).
    pub(crate) fn new(field: Field, word: &str, typos: u8, prefix: bool) -> Option<Self> {
        (typos > 0 || prefix).then(|| Self {
            field,
            word: word.to_owned(),
            typos,
            prefix,
        })
    }
}

impl Query for VariantsQuery {
    fn weight(&self, _: EnableScoring<'_>) -> tantivy::Result<Box<dyn Weight>> {
        let automaton = Variants::new(&self.word, self.typos, self.prefix);
        Ok(Box::new(AutomatonWeight::<Variants>::new(
            self.field,
            Arc::new(automaton),
        )))
    }
}

/// The automaton behind [`VariantsQuery`], over a term's bytes.
pub(crate) struct Variants {
    /// Within the typo allowance; `None` when no typo is allowed.
    typos: Option<DFA>,
    word: Vec<u8>,
    prefix: bool,
}

/// How a term read so far relates to the word.
#[derive(Clone, Copy, Debug)]
enum Progress {
    /// It equals the word's first `n` bytes.
    Equal(usize),
    /// It starts with the whole word and has more.
    Longer,
    /// It differs from the word.
    Diverged,
}

/// Where [`Variants`] stands after some bytes of a term.
#[derive(Clone, Debug)]
pub(crate) struct VariantsState {
    typos: u32,
    progress: Progress,
}

impl Variants {
    pub(crate) fn new(word: &str, typos: u8, prefix: bool) -> Self {
        let typos = match typos {
            0 => None,
            1 => Some(TYPOS[0].build_dfa(word)),
            _ => Some(TYPOS[1].build_dfa(word)),
        };
        Self {
            typos,
            word: word.as_bytes().to_vec(),
            prefix,
        }
    }

    fn within_typos(&self, state: u32) -> bool {
        self.typos
            .as_ref()
            .is_some_and(|dfa| matches!(dfa.distance(state), Distance::Exact(_)))
    }
}

impl Automaton for Variants {
    type State = VariantsState;

    fn start(&self) -> VariantsState {
        VariantsState {
            typos: self.typos.as_ref().map_or(SINK_STATE, DFA::initial_state),
            progress: Progress::Equal(0),
        }
    }

    fn is_match(&self, state: &VariantsState) -> bool {
        match state.progress {
            Progress::Equal(n) if n == self.word.len() => false,
            Progress::Longer if self.prefix => true,
            _ => self.within_typos(state.typos),
        }
    }

    fn can_match(&self, state: &VariantsState) -> bool {
        state.typos != SINK_STATE || (self.prefix && !matches!(state.progress, Progress::Diverged))
    }

    fn accept(&self, state: &VariantsState, byte: u8) -> VariantsState {
        let word = &self.word;
        VariantsState {
            typos: match &self.typos {
                Some(dfa) if state.typos != SINK_STATE => dfa.transition(state.typos, byte),
                _ => SINK_STATE,
            },
            progress: match state.progress {
                Progress::Equal(n) if n < word.len() && word[n] == byte => Progress::Equal(n + 1),
                Progress::Equal(n) if n == word.len() => Progress::Longer,
                Progress::Longer => Progress::Longer,
                _ => Progress::Diverged,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(automaton: &Variants, term: &str) -> bool {
        let mut state = automaton.start();
        for &byte in term.as_bytes() {
            if !automaton.can_match(&state) {
                return false;
            }
            state = automaton.accept(&state, byte);
        }
        automaton.is_match(&state)
    }

    #[test]
    fn typos_match_other_words_within_the_allowance() {
        let walnut = Variants::new("walnut", 1, false);
        assert!(matches(&walnut, "walnot"));
        assert!(matches(&walnut, "wlanut"), "a transposition is one edit");
        assert!(matches(&walnut, "walnuts"));
        assert!(
            !matches(&walnut, "walnut"),
            "the word itself is the exact query's"
        );
        assert!(!matches(&walnut, "wolnot"));
        assert!(
            !matches(&walnut, "walnutsss"),
            "no prefix without the last word"
        );
        let two = Variants::new("bookshelf", 2, false);
        assert!(matches(&two, "bookshlef"));
        assert!(matches(&two, "bokshelv"));
        assert!(!matches(&two, "bookshelf"));
    }

    #[test]
    fn the_last_word_matches_longer_words_that_start_with_it() {
        let la = Variants::new("la", 0, true);
        assert!(matches(&la, "lamp"));
        assert!(matches(&la, "lab"));
        assert!(!matches(&la, "la"));
        assert!(!matches(&la, "l"));
        assert!(!matches(&la, "ola"));
        let chair = Variants::new("chair", 1, true);
        assert!(matches(&chair, "chairs"));
        assert!(matches(&chair, "chairmanship"));
        assert!(matches(&chair, "chiar"));
        assert!(!matches(&chair, "chair"));
    }

    #[test]
    fn nothing_to_vary_is_no_query() {
        assert!(VariantsQuery::new(Field::from_field_id(0), "oak", 0, false).is_none());
        assert!(VariantsQuery::new(Field::from_field_id(0), "oak", 0, true).is_some());
    }

    #[test]
    fn non_ascii_words_vary_by_character() {
        let cafe = Variants::new("café", 1, false);
        assert!(matches(&cafe, "cafe"));
        assert!(matches(&cafe, "cafés"));
        assert!(!matches(&cafe, "café"));
    }
}
