//! What the auth module's SQL-backed stores (refresh tokens, password resets, rate
//! limits, revocations) share: the clock they store and the answer when SQL fails.
use web::ApiError;

/// Now, as the stores keep time: milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A 503 naming the store that failed, with the cause logged (not shown to the client).
pub(crate) fn unavailable(store: &'static str, err: &sqlx::Error) -> ApiError {
    tracing::warn!(%err, store, "auth store unavailable");
    ApiError::Unavailable(format!("the {store} is unavailable; retry later"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_names_the_store_and_hides_the_cause() {
        let answer = unavailable("token store", &sqlx::Error::PoolTimedOut);
        let ApiError::Unavailable(message) = answer else {
            panic!("not a 503: {answer:?}");
        };
        assert_eq!(message, "the token store is unavailable; retry later");
    }

    #[test]
    fn the_clock_is_in_milliseconds() {
        let before = chrono::Utc::now().timestamp_millis();
        let now = now_ms();
        assert!(now >= before && now - before < 60_000);
    }
}
