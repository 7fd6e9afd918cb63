//! The load loop: C workers, a warm-up, a measured window, closed or open loop.
//!
//! Closed loop (the default): each worker sends its next request as soon as the previous
//! one is answered, so C workers keep C requests in flight. Open loop (`--rate R`):
//! request k is due at `start + k / R`; a free worker takes the next due slot, waits for
//! it, and its latency is measured *from when it was due*, so a stalled server is charged
//! for the requests it kept waiting (no coordinated omission). With too few workers for
//! the rate, latencies grow: that is the honest answer.
//!
//! A request is measured when it was due inside the window `[warm-up end, end)`, whenever
//! it finishes; the one in flight at the end is awaited (at most the request timeout).
use std::{
    future::Future,
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use tokio::time::Instant;

use crate::stats::{Outcome, Recorder};

/// When warm-up ends and measuring stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    /// Start of the run.
    pub start: Instant,
    /// End of the warm-up: measuring starts.
    pub warm_end: Instant,
    /// Nothing is started from here on.
    pub end: Instant,
}

impl Window {
    /// A window starting at `start`.
    pub fn new(start: Instant, warmup: Duration, duration: Duration) -> Self {
        let warm_end = start + warmup;
        Self {
            start,
            warm_end,
            end: warm_end + duration,
        }
    }

    /// Whether something that began at `at` is measured.
    pub fn measures(&self, at: Instant) -> bool {
        at >= self.warm_end && at < self.end
    }

    /// The measured length in seconds.
    pub fn seconds(&self) -> f64 {
        (self.end - self.warm_end).as_secs_f64()
    }
}

/// Hands out the due times of an open-loop run.
#[derive(Debug)]
pub struct Pacer {
    start: Instant,
    rate: f64,
    issued: AtomicU64,
}

impl Pacer {
    /// `rate` requests per second in total, from `start`.
    pub fn new(start: Instant, rate: f64) -> Self {
        Self {
            start,
            rate: rate.max(f64::MIN_POSITIVE),
            issued: AtomicU64::new(0),
        }
    }

    /// When request `k` is due.
    pub fn slot(&self, k: u64) -> Instant {
        self.start + Duration::from_secs_f64(k as f64 / self.rate)
    }

    /// The next due time not yet handed out.
    pub fn next(&self) -> Instant {
        self.slot(self.issued.fetch_add(1, Ordering::Relaxed))
    }
}

/// One worker's requests: `step(due)` sends one and says what it was and how it ended.
pub trait Step: Send {
    /// Sends the next request, due at `due`.
    fn step(&mut self, due: Instant) -> impl Future<Output = (&'static str, Outcome)> + Send;
}

/// Runs one worker until the window ends and returns what it measured.
pub async fn run_worker<S: Step>(mut worker: S, window: Window, pacer: Option<&Pacer>) -> Recorder {
    let mut recorder = Recorder::default();
    loop {
        let due = match pacer {
            Some(pacer) => {
                let due = pacer.next();
                if due >= window.end {
                    break;
                }
                tokio::time::sleep_until(due).await;
                due
            }
            None => Instant::now(),
        };
        if due >= window.end {
            break;
        }
        let (op, outcome) = worker.step(due).await;
        if window.measures(due) {
            recorder.record(op, due.elapsed(), outcome);
        }
    }
    recorder
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::TransportError;

    #[test]
    fn the_window_measures_from_warm_up_end_to_end() {
        let start = Instant::now();
        let window = Window::new(start, Duration::from_secs(2), Duration::from_secs(10));
        assert!(!window.measures(start));
        assert!(!window.measures(start + Duration::from_millis(1999)));
        assert!(window.measures(start + Duration::from_secs(2)));
        assert!(window.measures(start + Duration::from_millis(11_999)));
        assert!(!window.measures(start + Duration::from_secs(12)));
        assert_eq!(window.seconds(), 10.0);
    }

    #[test]
    fn the_pacer_spaces_requests_evenly_and_hands_each_out_once() {
        let start = Instant::now();
        let pacer = Pacer::new(start, 200.0);
        assert_eq!(pacer.slot(0), start);
        assert_eq!(pacer.slot(200) - start, Duration::from_secs(1));
        assert_eq!(pacer.slot(1) - start, Duration::from_millis(5));
        let first = pacer.next();
        let second = pacer.next();
        assert_eq!(second - first, Duration::from_millis(5));
    }

    /// Answers after `delay`, failing every `fail_every`th request.
    struct Fake {
        delay: Duration,
        sent: u64,
        fail_every: u64,
    }

    impl Step for Fake {
        async fn step(&mut self, _due: Instant) -> (&'static str, Outcome) {
            tokio::time::sleep(self.delay).await;
            self.sent += 1;
            if self.sent.is_multiple_of(self.fail_every) {
                ("op", Outcome::Transport(TransportError::Timeout))
            } else {
                ("op", Outcome::Success)
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_closed_loop_worker_measures_only_the_window() {
        // Paused clock: 10 ms per request, 1 s warm-up, 2 s measured: 200 measured.
        let window = Window::new(
            Instant::now(),
            Duration::from_secs(1),
            Duration::from_secs(2),
        );
        let fake = Fake {
            delay: Duration::from_millis(10),
            sent: 0,
            fail_every: 50,
        };
        let recorder = run_worker(fake, window, None).await;
        let (_, total) = recorder.summaries(window.seconds());
        assert_eq!(total.requests, 200);
        assert_eq!(total.errors, 4);
        assert_eq!(total.throughput, 98.0);
        assert!(
            (total.latency.p50_ms - 10.0).abs() < 0.1,
            "{:?}",
            total.latency
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_open_loop_worker_charges_waiting_to_the_server() {
        // 100 requests/s due, but each takes 20 ms and there is one worker: it falls
        // further behind with every request, and latency (from due time) grows with it.
        let window = Window::new(Instant::now(), Duration::ZERO, Duration::from_secs(1));
        let pacer = Pacer::new(window.start, 100.0);
        let fake = Fake {
            delay: Duration::from_millis(20),
            sent: 0,
            fail_every: u64::MAX,
        };
        let recorder = run_worker(fake, window, Some(&pacer)).await;
        let (_, total) = recorder.summaries(window.seconds());
        // Every due slot in the window is sent (late), and the last waited about 1 s.
        assert_eq!(total.requests, 100);
        assert!(total.latency.max_ms > 900.0, "{:?}", total.latency);
        assert!(total.latency.p50_ms > 400.0, "{:?}", total.latency);

        // Fast enough for the rate: latency is the service time only.
        let window = Window::new(Instant::now(), Duration::ZERO, Duration::from_secs(1));
        let pacer = Pacer::new(window.start, 100.0);
        let fake = Fake {
            delay: Duration::from_millis(2),
            sent: 0,
            fail_every: u64::MAX,
        };
        let recorder = run_worker(fake, window, Some(&pacer)).await;
        let (_, total) = recorder.summaries(window.seconds());
        assert_eq!(total.requests, 100);
        assert!(total.latency.max_ms < 2.1, "{:?}", total.latency);
    }
}
