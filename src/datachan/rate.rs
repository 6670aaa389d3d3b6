//! Transfer rate limits: token buckets per session and for the whole server
//! (`limits.*_bytes_per_sec`). A transfer asks every bucket that applies before it moves
//! a chunk, and waits as long as the slowest one needs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// One token bucket: `rate` bytes per second, bursts of at most a quarter second's worth.
#[derive(Debug)]
pub struct Limiter {
    rate: AtomicU64,
    /// Bytes available now (negative: owed), as of the instant.
    state: Mutex<(f64, Instant)>,
}

impl Limiter {
    /// A bucket for `rate` bytes per second; 0 means unlimited.
    pub fn new(rate: u64) -> Arc<Limiter> {
        Arc::new(Limiter {
            rate: AtomicU64::new(rate),
            state: Mutex::new((0.0, Instant::now())),
        })
    }

    /// Change the rate (a configuration reload); 0 means unlimited.
    pub fn set_rate(&self, rate: u64) {
        self.rate.store(rate, Ordering::Relaxed);
    }

    /// The rate in bytes per second; 0 means unlimited.
    pub fn rate(&self) -> u64 {
        self.rate.load(Ordering::Relaxed)
    }

    /// Take `n` bytes from the bucket and say how long to wait before sending them.
    fn reserve(&self, n: usize, now: Instant) -> Duration {
        let rate = self.rate() as f64;
        if rate == 0.0 {
            return Duration::ZERO;
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (available, since) = *state;
        let refilled =
            (available + rate * now.saturating_duration_since(since).as_secs_f64()).min(rate / 4.0);
        let left = refilled - n as f64;
        *state = (left, now);
        if left >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-left / rate)
        }
    }
}

/// The buckets one transfer direction must respect (the session's and the server's).
#[derive(Debug, Clone, Default)]
pub struct Throttle(Vec<Arc<Limiter>>);

impl Throttle {
    /// A throttle over the given buckets (unlimited ones are skipped).
    pub fn new(limiters: impl IntoIterator<Item = Arc<Limiter>>) -> Throttle {
        Throttle(limiters.into_iter().filter(|l| l.rate() > 0).collect())
    }

    /// Whether no limit applies.
    pub fn is_unlimited(&self) -> bool {
        self.0.is_empty()
    }

    /// A chunk size that keeps waits short: at most an eighth of a second at the lowest rate.
    pub fn chunk(&self, default: usize) -> usize {
        let slowest = self.0.iter().map(|l| l.rate()).filter(|&r| r > 0).min();
        match slowest {
            Some(rate) => default.min((rate / 8).max(4096) as usize),
            None => default,
        }
    }

    fn delay(&self, n: usize) -> Duration {
        let now = Instant::now();
        self.0
            .iter()
            .map(|l| l.reserve(n, now))
            .max()
            .unwrap_or(Duration::ZERO)
    }

    /// Account for `n` bytes, sleeping the thread as needed (blocking transfers).
    pub fn wait_blocking(&self, n: usize) {
        let d = self.delay(n);
        if !d.is_zero() {
            std::thread::sleep(d);
        }
    }

    /// Account for `n` bytes, sleeping the task as needed (async transfers).
    pub async fn wait(&self, n: usize) {
        let d = self.delay(n);
        if !d.is_zero() {
            tokio::time::sleep(d).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_never_waits() {
        let t = Throttle::new([Limiter::new(0)]);
        assert!(t.is_unlimited());
        assert_eq!(t.delay(1 << 30), Duration::ZERO);
        assert_eq!(t.chunk(1 << 20), 1 << 20);
    }

    #[test]
    fn debt_turns_into_waiting_time() {
        let l = Limiter::new(1000);
        let start = Instant::now();
        assert_eq!(l.reserve(0, start), Duration::ZERO);
        // 2000 bytes at 1000 B/s with an empty bucket: two seconds of debt.
        let d = l.reserve(2000, start);
        assert!((1.9..=2.1).contains(&d.as_secs_f64()), "{d:?}");
        // A second later half of it is paid off.
        let d = l.reserve(0, start + Duration::from_secs(1));
        assert!((0.9..=1.1).contains(&d.as_secs_f64()), "{d:?}");
    }

    #[test]
    fn the_slowest_bucket_decides_and_sets_the_chunk() {
        let t = Throttle::new([Limiter::new(1_000_000), Limiter::new(64_000), Limiter::new(0)]);
        assert_eq!(t.chunk(1 << 20), 8000);
        let d = t.delay(64_000);
        assert!(d.as_secs_f64() > 0.9, "{d:?}");
    }
}
