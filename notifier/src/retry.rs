//! When to try again after a failed delivery: exponential backoff with "equal jitter", so
//! retries of many messages to one recovering peer spread out instead of arriving at once.
use std::time::Duration;

/// The delay after failed attempt number `attempt` (1-based): `base * 2^(attempt-1)`,
/// capped at `max`, then a random point in its upper half.
#[must_use]
pub fn delay(base: Duration, max: Duration, attempt: u32) -> Duration {
    let exponent = attempt.saturating_sub(1).min(30);
    let full = base.saturating_mul(1u32 << exponent).min(max);
    let half = full / 2;
    let half_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
    let jitter = rand::Rng::gen_range(&mut rand::thread_rng(), 0..=half_ms);
    half + Duration::from_millis(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_with_jitter_and_a_cap() {
        let (base, max) = (Duration::from_secs(4), Duration::from_secs(60));
        for _ in 0..50 {
            let first = delay(base, max, 1);
            assert!((Duration::from_secs(2)..=Duration::from_secs(4)).contains(&first));
            let third = delay(base, max, 3);
            assert!((Duration::from_secs(8)..=Duration::from_secs(16)).contains(&third));
            let late = delay(base, max, 40);
            assert!((Duration::from_secs(30)..=Duration::from_secs(60)).contains(&late));
        }
        let distinct: std::collections::HashSet<Duration> =
            (0..20).map(|_| delay(base, max, 5)).collect();
        assert!(distinct.len() > 1, "jitter varies the delay");
    }
}
