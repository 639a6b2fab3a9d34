//! A token bucket over bytes: how the log push APIs hold ingestion to a rate with a burst
//! (Loki's `ingestion_rate_mb` and `ingestion_burst_size_mb`), answering 429 beyond it so that
//! senders back off and retry.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Bytes per second with a burst; a rate of 0 lets everything through.
#[derive(Debug)]
pub struct RateLimiter {
    bucket: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    rate: f64,
    burst: f64,
    /// May go below zero: a request larger than the burst passes when the bucket is full,
    /// and the ones after it wait for the debt.
    tokens: f64,
    last: Instant,
}

impl RateLimiter {
    /// A full bucket of `burst` bytes refilling at `rate` bytes a second.
    pub fn new(rate: u64, burst: u64) -> RateLimiter {
        RateLimiter {
            bucket: Mutex::new(Bucket {
                rate: rate as f64,
                burst: burst as f64,
                tokens: burst as f64,
                last: Instant::now(),
            }),
        }
    }

    /// Changes the rate and burst (on reload), keeping what the bucket holds within the burst.
    pub fn set(&self, rate: u64, burst: u64) {
        let mut b = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        b.rate = rate as f64;
        b.burst = burst as f64;
        b.tokens = b.tokens.min(b.burst);
    }

    /// The rate in bytes a second (0: unlimited).
    pub fn rate(&self) -> u64 {
        self.bucket.lock().unwrap_or_else(|p| p.into_inner()).rate as u64
    }

    /// Takes `bytes` at `now`: `Err` with how long until they would pass.
    pub fn take_at(&self, bytes: u64, now: Instant) -> Result<(), Duration> {
        let mut b = self.bucket.lock().unwrap_or_else(|p| p.into_inner());
        if b.rate <= 0.0 {
            return Ok(());
        }
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * b.rate).min(b.burst);
        b.last = now;
        let needed = (bytes as f64).min(b.burst);
        if b.tokens >= needed {
            b.tokens -= bytes as f64;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((needed - b.tokens) / b.rate))
        }
    }

    /// Takes `bytes` now.
    pub fn take(&self, bytes: u64) -> Result<(), Duration> {
        self.take_at(bytes, Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_passes_its_burst_then_its_rate() {
        let limiter = RateLimiter::new(1_000, 2_000);
        let t0 = Instant::now();
        assert!(limiter.take_at(1_500, t0).is_ok());
        let wait = limiter.take_at(1_000, t0).unwrap_err();
        assert_eq!(
            wait,
            Duration::from_millis(500),
            "500 bytes short at 1,000 a second"
        );
        assert!(
            limiter
                .take_at(1_000, t0 + Duration::from_millis(500))
                .is_ok()
        );
        // Larger than the burst: passes on a full bucket and leaves a debt.
        let t1 = t0 + Duration::from_secs(10);
        assert!(limiter.take_at(5_000, t1).is_ok());
        assert!(limiter.take_at(1, t1 + Duration::from_secs(2)).is_err());
        assert!(
            limiter
                .take_at(1, t1 + Duration::from_millis(3_010))
                .is_ok()
        );
        // Rate 0: unlimited.
        limiter.set(0, 0);
        assert!(limiter.take_at(u64::MAX, t1).is_ok());
    }
}
