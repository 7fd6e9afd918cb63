//! Days: the `YYYY-MM-DD` text the command line takes, the inclusive range it asks for,
//! and the stored-time bounds of one UTC day.
use anyhow::bail;
use chrono::{Days, NaiveDate, NaiveTime};

/// The only day format the export reads and writes.
const FORMAT: &str = "%Y-%m-%d";

/// Parses a day written `YYYY-MM-DD` (for clap's `value_parser`).
///
/// # Errors
/// A message naming the expected format.
pub fn parse_day(text: &str) -> Result<NaiveDate, String> {
    // chrono accepts unpadded fields ("2024-5-1"); a partition name must be exact.
    NaiveDate::parse_from_str(text, FORMAT)
        .ok()
        .filter(|day| day.format(FORMAT).to_string() == text)
        .ok_or_else(|| format!("{text:?} is not a date written YYYY-MM-DD"))
}

/// The name of a day in partitions and in stored times (`YYYY-MM-DD`).
pub fn day_name(day: NaiveDate) -> String {
    day.format(FORMAT).to_string()
}

/// An inclusive range of UTC days, first ≤ last.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DayRange {
    first: NaiveDate,
    last: NaiveDate,
}

impl DayRange {
    /// The days from `first` to `last`, both included.
    ///
    /// # Errors
    /// When `first` is after `last`.
    pub fn new(first: NaiveDate, last: NaiveDate) -> anyhow::Result<Self> {
        if first > last {
            bail!(
                "--from {} is after --to {}: the range is inclusive and must not be empty",
                day_name(first),
                day_name(last)
            );
        }
        Ok(Self { first, last })
    }

    /// The first day.
    pub fn first(&self) -> NaiveDate {
        self.first
    }

    /// The last day.
    pub fn last(&self) -> NaiveDate {
        self.last
    }

    /// Whether `day` is in the range.
    pub fn contains(&self, day: NaiveDate) -> bool {
        (self.first..=self.last).contains(&day)
    }

    /// The stored-time bounds of the whole range: `[start, end)` (see [`bounds`]).
    pub fn bounds(&self) -> (String, String) {
        (bounds(self.first).0, bounds(self.last).1)
    }
}

/// The read models' time text (RFC 3339, UTC, microseconds) of a day's first instant and
/// of the next day's first instant: a time `t` is on `day` when `start <= t < end`.
/// Comparing the texts is correct because every stored time has this same fixed format.
pub fn bounds(day: NaiveDate) -> (String, String) {
    let start = |d: NaiveDate| projector::runtime::timestamp(d.and_time(NaiveTime::MIN).and_utc());
    let end = day.checked_add_days(Days::new(1)).map_or_else(
        // Past chrono's last day: every stored time sorts below this.
        || "~".to_owned(),
        start,
    );
    (start(day), end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        parse_day(text).unwrap()
    }

    #[test]
    fn days_are_read_exactly_as_yyyy_mm_dd() {
        assert_eq!(
            day("2024-02-29"),
            NaiveDate::from_ymd_opt(2024, 2, 29).unwrap()
        );
        for bad in [
            "2023-02-29",
            "2024-5-01",
            "2024-05-1",
            "24-05-01",
            "2024/05/01",
            "2024-05-01T00:00:00Z",
            "",
            " 2024-05-01",
        ] {
            let err = parse_day(bad).unwrap_err();
            assert!(err.contains("YYYY-MM-DD"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_range_is_inclusive_and_never_reversed() {
        let range = DayRange::new(day("2024-05-01"), day("2024-05-03")).unwrap();
        assert!(range.contains(day("2024-05-01")));
        assert!(range.contains(day("2024-05-03")));
        assert!(!range.contains(day("2024-04-30")));
        assert!(!range.contains(day("2024-05-04")));
        assert!(DayRange::new(day("2024-05-01"), day("2024-05-01")).is_ok());
        let err = DayRange::new(day("2024-05-02"), day("2024-05-01")).unwrap_err();
        assert!(err.to_string().contains("after --to 2024-05-01"), "{err}");
    }

    #[test]
    fn a_day_holds_exactly_its_own_stored_times() {
        let (start, end) = bounds(day("2024-12-31"));
        assert_eq!(start, "2024-12-31T00:00:00.000000Z");
        assert_eq!(end, "2025-01-01T00:00:00.000000Z");
        let on_day = |t: &str| start.as_str() <= t && t < end.as_str();
        assert!(on_day("2024-12-31T00:00:00.000000Z"));
        assert!(on_day("2024-12-31T23:59:59.999999Z"));
        assert!(!on_day("2024-12-30T23:59:59.999999Z"));
        assert!(!on_day("2025-01-01T00:00:00.000000Z"));
        let range = DayRange::new(day("2024-05-01"), day("2024-05-03")).unwrap();
        assert_eq!(
            range.bounds(),
            (
                "2024-05-01T00:00:00.000000Z".to_owned(),
                "2024-05-04T00:00:00.000000Z".to_owned()
            )
        );
        assert!(bounds(NaiveDate::MAX).1.as_str() > "9999-12-31T23:59:59.999999Z");
    }
}
