//! Per-client rate limiting of login attempts: a token bucket per key (the client address),
//! shared by login, recovery and realtime authentication, which apply it themselves (the wire
//! layer only names the client). A refusal is `CoreError::RateLimited`, with the wait.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jxp_model::sync as locks;

use crate::error::CoreError;

/// Limits: `burst` attempts at once, refilled at `per_minute`.
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimitSettings {
    pub enabled: bool,
    pub burst: u32,
    pub per_minute: u32,
}

impl Default for RateLimitSettings {
    fn default() -> Self {
        RateLimitSettings {
            enabled: true,
            burst: 8,
            per_minute: 12,
        }
    }
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Buckets per key. Idle buckets are dropped once they would be full again.
pub(crate) struct RateLimiter {
    settings: RateLimitSettings,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    pub(crate) fn new(settings: RateLimitSettings) -> Self {
        RateLimiter {
            settings,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one attempt for `key`; `RateLimited` says how long until the next is allowed.
    pub(crate) fn check(&self, key: &str) -> Result<(), CoreError> {
        self.take_at(key, Instant::now(), true).map_err(limited)
    }

    /// Whether `key` has an attempt left, without taking it: for credentials that only cost an
    /// attempt when they turn out wrong.
    pub(crate) fn peek(&self, key: &str) -> Result<(), CoreError> {
        self.take_at(key, Instant::now(), false).map_err(limited)
    }

    /// Takes one attempt for a failed authentication.
    pub(crate) fn charge(&self, key: &str) {
        let _ = self.check(key);
    }

    #[cfg(test)]
    fn check_at(&self, key: &str, now: Instant) -> Result<(), Duration> {
        self.take_at(key, now, true)
    }

    fn take_at(&self, key: &str, now: Instant, take: bool) -> Result<(), Duration> {
        let s = &self.settings;
        if !s.enabled {
            return Ok(());
        }
        let burst = f64::from(s.burst.max(1));
        let per_sec = f64::from(s.per_minute.max(1)) / 60.0;
        let mut buckets = locks::lock(&self.buckets);
        if buckets.len() > 10_000 {
            let full_after = Duration::from_secs_f64(burst / per_sec);
            buckets.retain(|_, b| now.duration_since(b.at) < full_after);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: burst,
            at: now,
        });
        let elapsed = now.duration_since(bucket.at).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * per_sec).min(burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            if take {
                bucket.tokens -= 1.0;
            }
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / per_sec))
        }
    }
}

fn limited(retry_after: Duration) -> CoreError {
    CoreError::RateLimited { retry_after }
}

// Tests only: an unwrap or expect here is an assertion; failing is how the test reports.
#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(enabled: bool, burst: u32, per_minute: u32) -> RateLimiter {
        RateLimiter::new(RateLimitSettings {
            enabled,
            burst,
            per_minute,
        })
    }

    #[test]
    fn burst_then_refill_per_key() {
        let limiter = limiter(true, 3, 60);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at("a", t0).is_ok());
        }
        let wait = limiter.check_at("a", t0).unwrap_err();
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::from_millis(900),
            "{wait:?}"
        );
        assert!(limiter.check_at("b", t0).is_ok(), "keys are independent");
        assert!(
            limiter
                .check_at("a", t0 + Duration::from_millis(1100))
                .is_ok(),
            "refilled"
        );
        assert!(
            limiter
                .check_at("a", t0 + Duration::from_millis(1100))
                .is_err()
        );
    }

    #[test]
    fn peek_does_not_take() {
        let limiter = limiter(true, 1, 1);
        for _ in 0..5 {
            assert!(limiter.peek("a").is_ok());
        }
        limiter.charge("a");
        assert!(matches!(
            limiter.peek("a"),
            Err(CoreError::RateLimited { retry_after }) if retry_after > Duration::from_secs(1)
        ));
    }

    #[test]
    fn disabled_never_limits() {
        let limiter = limiter(false, 1, 1);
        for _ in 0..100 {
            assert!(limiter.check("a").is_ok());
        }
    }
}
