//! In-process fixed-window rate limits keyed by a string (a client IP, a username).
//!
//! **The limits are per process.** With several command-api nodes behind a load balancer
//! each node counts on its own, so a client may get up to N times the limit; a
//! distributed deployment should put the same limits in its load balancer (or, later,
//! keep the counters in Redis).
//!
//! Memory is bounded: windows that have ended are pruned once per window, and at most
//! [`MAX_KEYS`] keys are tracked at once. Past that, new keys are let through untracked
//! (and a warning is logged) rather than refusing everyone: the other limits — per IP
//! for logins — still apply.
use std::{
    collections::HashMap,
    net::IpAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use web::ApiError;

/// Most keys one limiter tracks.
pub const MAX_KEYS: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    started: Instant,
    count: u32,
}

#[derive(Debug)]
struct Counters {
    windows: HashMap<String, Window>,
    last_prune: Instant,
}

/// Counts events per key in fixed windows and refuses once a key reaches its limit.
#[derive(Debug)]
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    max_keys: usize,
    counters: Mutex<Counters>,
}

impl RateLimiter {
    /// At most `limit` events per key in each `window`. A limit of 0 disables the limiter.
    pub fn new(limit: u32, window: Duration) -> Self {
        Self::with_capacity(limit, window, MAX_KEYS)
    }

    /// Like [`RateLimiter::new`], tracking at most `max_keys` keys.
    pub fn with_capacity(limit: u32, window: Duration, max_keys: usize) -> Self {
        Self {
            limit,
            window,
            max_keys,
            counters: Mutex::new(Counters {
                windows: HashMap::new(),
                last_prune: Instant::now(),
            }),
        }
    }

    /// Fails with 429 if `key` has used up its window, without counting anything.
    pub fn check(&self, key: &str) -> Result<(), ApiError> {
        self.at(key, Instant::now(), false)
    }

    /// Counts one event for `key`, failing with 429 (and not counting) when the key has
    /// already used up its window.
    pub fn hit(&self, key: &str) -> Result<(), ApiError> {
        self.at(key, Instant::now(), true)
    }

    /// How many keys are tracked right now.
    pub fn tracked_keys(&self) -> usize {
        self.lock().windows.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Counters> {
        // A panic while holding this lock cannot leave the counters inconsistent.
        self.counters
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn at(&self, key: &str, now: Instant, count: bool) -> Result<(), ApiError> {
        if self.limit == 0 {
            return Ok(());
        }
        let mut counters = self.lock();
        if now.duration_since(counters.last_prune) >= self.window {
            let window = self.window;
            counters
                .windows
                .retain(|_, w| now.duration_since(w.started) < window);
            counters.last_prune = now;
        }
        if !counters.windows.contains_key(key) {
            if !count {
                return Ok(());
            }
            if counters.windows.len() >= self.max_keys {
                tracing::warn!(
                    limit = self.limit,
                    "rate limiter is full; a new key is not limited"
                );
                return Ok(());
            }
            counters.windows.insert(
                key.to_owned(),
                Window {
                    started: now,
                    count: 0,
                },
            );
        }
        let Some(window) = counters.windows.get_mut(key) else {
            return Ok(());
        };
        let elapsed = now.duration_since(window.started);
        if elapsed >= self.window {
            *window = Window {
                started: now,
                count: 0,
            };
        }
        if window.count >= self.limit {
            let left = self
                .window
                .saturating_sub(now.duration_since(window.started));
            let retry_after_secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
            return Err(ApiError::TooManyRequests {
                retry_after_secs: retry_after_secs.max(1),
            });
        }
        if count {
            window.count += 1;
        }
        Ok(())
    }
}

/// The rate-limit key of a client address: IPv4 as is, IPv6 by its /64 prefix (one
/// customer network typically owns a whole /64).
pub fn ip_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry_after(err: ApiError) -> u64 {
        match err {
            ApiError::TooManyRequests { retry_after_secs } => retry_after_secs,
            other => panic!("expected 429, got {other:?}"),
        }
    }

    #[test]
    fn refuses_past_the_limit_until_the_window_ends() {
        let limiter = RateLimiter::new(3, Duration::from_secs(60));
        let start = Instant::now();
        for _ in 0..3 {
            limiter.at("a", start, true).unwrap();
        }
        let wait = retry_after(
            limiter
                .at("a", start + Duration::from_secs(10), true)
                .unwrap_err(),
        );
        assert_eq!(wait, 50);
        assert!(
            limiter
                .at("a", start + Duration::from_secs(10), false)
                .is_err(),
            "check sees the limit too"
        );
        limiter.at("b", start, true).expect("keys are independent");
        limiter
            .at("a", start + Duration::from_secs(60), true)
            .expect("a new window");
    }

    #[test]
    fn check_does_not_count() {
        let limiter = RateLimiter::new(1, Duration::from_secs(60));
        for _ in 0..5 {
            limiter.check("a").unwrap();
        }
        assert_eq!(limiter.tracked_keys(), 0);
        limiter.hit("a").unwrap();
        assert!(limiter.check("a").is_err());
    }

    #[test]
    fn retry_after_is_at_least_one_second() {
        let limiter = RateLimiter::new(1, Duration::from_millis(100));
        let start = Instant::now();
        limiter.at("a", start, true).unwrap();
        assert_eq!(
            retry_after(
                limiter
                    .at("a", start + Duration::from_millis(99), true)
                    .unwrap_err()
            ),
            1
        );
    }

    #[test]
    fn memory_is_bounded() {
        let limiter = RateLimiter::with_capacity(1, Duration::from_secs(60), 10);
        let start = Instant::now();
        for i in 0..100 {
            limiter.at(&format!("k{i}"), start, true).unwrap();
        }
        assert_eq!(limiter.tracked_keys(), 10);
        // Ended windows are pruned, making room again.
        limiter
            .at("new", start + Duration::from_secs(61), true)
            .unwrap();
        assert_eq!(limiter.tracked_keys(), 1);
    }

    #[test]
    fn zero_disables() {
        let limiter = RateLimiter::new(0, Duration::from_secs(60));
        for _ in 0..100 {
            limiter.hit("a").unwrap();
        }
    }

    #[test]
    fn ipv6_clients_are_keyed_by_prefix() {
        let a: IpAddr = "2001:db8:1:2:3:4:5:6".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::1".parse().unwrap();
        assert_eq!(ip_key(a), ip_key(b));
        assert_eq!(ip_key("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1");
        assert_eq!(ip_key("10.0.0.1".parse().unwrap()), "10.0.0.1");
    }
}
