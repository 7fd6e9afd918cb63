//! Given/when/then harness for any [`Aggregate`]: given past events, when a command, then
//! exactly these events (or this error).
//!
//! Usable from other crates' tests. Failures panic with the expected and actual values side
//! by side and the first differing event, at the caller's line.

use std::fmt::{Debug, Write as _};

use crate::aggregate::Aggregate;

/// Starts a scenario from a history of events (folded with `evolve`).
#[must_use]
#[allow(
    clippy::needless_pass_by_value,
    reason = "an owned Vec keeps call sites short: given(vec![..])"
)]
pub fn given<A: Aggregate>(events: Vec<A::Event>) -> Given<A> {
    Given {
        state: A::fold(&events),
    }
}

/// Starts a scenario from an empty stream.
#[must_use]
pub fn given_no_events<A: Aggregate>() -> Given<A> {
    given::<A>(Vec::new())
}

/// A scenario's starting state.
pub struct Given<A: Aggregate> {
    state: A::State,
}

impl<A: Aggregate> Given<A> {
    /// The state the history folds to, for assertions on `evolve`.
    pub fn state(&self) -> &A::State {
        &self.state
    }

    /// Runs `decide` on the starting state.
    pub fn when(self, command: A::Command) -> When<A> {
        let result = A::decide(&self.state, command);
        When {
            state: self.state,
            result,
        }
    }
}

/// The outcome of one command, ready to be checked.
pub struct When<A: Aggregate> {
    state: A::State,
    result: Result<Vec<A::Event>, A::Error>,
}

impl<A: Aggregate> When<A> {
    /// Asserts that the command produced exactly `expected` (in order) and returns the state
    /// after applying them, which also proves `evolve` accepts them.
    ///
    /// # Panics
    /// When the command was refused or produced other events; the message shows both lists.
    #[track_caller]
    #[allow(
        clippy::needless_pass_by_value,
        reason = "an owned Vec keeps call sites short"
    )]
    pub fn then_events(self, expected: Vec<A::Event>) -> A::State {
        match self.result {
            Ok(actual) => {
                assert!(actual == expected, "{}", events_diff(&expected, &actual));
                actual.iter().fold(self.state, A::evolve)
            }
            Err(err) => panic!(
                "expected events:\n{expected:#?}\nbut the command was refused with:\n{err:#?}\n({err})"
            ),
        }
    }

    /// Asserts that the command was accepted but had nothing to do (`Ok(vec![])`).
    ///
    /// # Panics
    /// When the command was refused or produced events.
    #[track_caller]
    pub fn then_no_events(self) -> A::State {
        self.then_events(Vec::new())
    }

    /// Asserts that the command was refused with exactly `expected`.
    ///
    /// # Panics
    /// When the command was accepted or refused with another error.
    #[track_caller]
    #[allow(clippy::needless_pass_by_value, reason = "mirrors then_events")]
    pub fn then_error(self, expected: A::Error) {
        match self.result {
            Err(actual) if actual == expected => {}
            Err(actual) => {
                panic!("expected error:\n{expected:#?}\nbut got error:\n{actual:#?}\n({actual})")
            }
            Ok(events) => {
                panic!(
                    "expected error:\n{expected:#?}\nbut the command produced events:\n{events:#?}"
                )
            }
        }
    }

    /// Hands the raw result to `check` for assertions the other forms cannot express.
    pub fn then<R>(self, check: impl FnOnce(Result<Vec<A::Event>, A::Error>) -> R) -> R {
        check(self.result)
    }
}

fn events_diff<E: Debug + PartialEq>(expected: &[E], actual: &[E]) -> String {
    let mut out = format!(
        "events differ (expected {}, got {})\n",
        expected.len(),
        actual.len()
    );
    match expected.iter().zip(actual).position(|(e, a)| e != a) {
        Some(i) => {
            let _ = writeln!(
                out,
                "first difference at index {i}:\n  expected: {:#?}\n  actual:   {:#?}",
                expected[i], actual[i]
            );
        }
        None => out.push_str("the shorter list is a prefix of the longer one\n"),
    }
    let _ = write!(out, "expected:\n{expected:#?}\nactual:\n{actual:#?}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::DomainEvent;
    use serde::{Deserialize, Serialize};
    use serde_json::Value;

    struct Counter;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "type", content = "data")]
    enum Counted {
        #[serde(rename = "Incremented")]
        Incremented { by: u32 },
    }

    impl DomainEvent for Counted {
        fn event_type(&self) -> &'static str {
            "Incremented"
        }
        fn schema_version(_: &str) -> u32 {
            1
        }
        fn upcast(_: &str, _: u32, payload: Value) -> Value {
            payload
        }
    }

    #[derive(Debug, Clone, PartialEq, thiserror::Error)]
    #[error("too big")]
    struct TooBig;

    impl Aggregate for Counter {
        const NAME: &'static str = "counter";
        type State = u32;
        type Command = u32;
        type Event = Counted;
        type Error = TooBig;
        fn decide(state: &u32, by: u32) -> Result<Vec<Counted>, TooBig> {
            match by {
                0 => Ok(vec![]),
                _ if state + by > 10 => Err(TooBig),
                _ => Ok(vec![Counted::Incremented { by }]),
            }
        }
        fn evolve(state: u32, event: &Counted) -> u32 {
            match event {
                Counted::Incremented { by } => state + by,
            }
        }
    }

    #[test]
    fn harness_passes_on_match() {
        let state = given::<Counter>(vec![Counted::Incremented { by: 4 }])
            .when(3)
            .then_events(vec![Counted::Incremented { by: 3 }]);
        assert_eq!(state, 7);
        given::<Counter>(vec![Counted::Incremented { by: 9 }])
            .when(2)
            .then_error(TooBig);
        given_no_events::<Counter>().when(0).then_no_events();
        let n = given_no_events::<Counter>()
            .when(1)
            .then(|r| r.unwrap().len());
        assert_eq!(n, 1);
        assert_eq!(*given_no_events::<Counter>().state(), 0);
    }

    #[test]
    #[should_panic(expected = "first difference at index 0")]
    fn harness_reports_event_diff() {
        given_no_events::<Counter>()
            .when(1)
            .then_events(vec![Counted::Incremented { by: 2 }]);
    }

    #[test]
    #[should_panic(expected = "but the command produced events")]
    fn harness_reports_missing_error() {
        given_no_events::<Counter>().when(1).then_error(TooBig);
    }
}
