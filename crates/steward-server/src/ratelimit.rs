//! Per-user request rate limits (OWASP API4 and API6): a token bucket per user, refilled at
//! `user_requests_per_second_max` and holding twice that, so one user cannot starve the
//! others, or flood the audit trail with denied attempts that each take the write lock.
//!
//! Invariant: bounded memory. At most `USERS_TRACKED_MAX` buckets; when full, idle buckets
//! (which are full again anyway) are dropped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

pub const USERS_TRACKED_MAX: usize = 100_000;

pub struct RateLimiter {
    rate_per_second: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(rate_per_second: u32) -> RateLimiter {
        let rate = f64::from(rate_per_second.max(1));
        RateLimiter {
            rate_per_second: rate,
            burst: 2.0 * rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request from `user`'s bucket at `now`; false when it is empty.
    pub fn allow(&self, user: &str, now: Instant) -> bool {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if buckets.len() >= USERS_TRACKED_MAX && !buckets.contains_key(user) {
            let (rate, burst) = (self.rate_per_second, self.burst);
            buckets.retain(|_, (tokens, at)| {
                *tokens + now.saturating_duration_since(*at).as_secs_f64() * rate < burst
            });
        }
        let (tokens, at) = buckets.entry(user.to_owned()).or_insert((self.burst, now));
        *tokens = (*tokens
            + now.saturating_duration_since(*at).as_secs_f64() * self.rate_per_second)
            .min(self.burst);
        *at = now;
        if 1.0 <= *tokens {
            *tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_burst_then_the_steady_rate_per_user() {
        let limiter = RateLimiter::new(10);
        let start = Instant::now();
        let allowed = (0..30).filter(|_| limiter.allow("alice", start)).count();
        assert_eq!(allowed, 20, "a burst of twice the rate");
        assert!(limiter.allow("bob", start), "users have their own buckets");
        assert!(!limiter.allow("alice", start + Duration::from_millis(50)));
        assert!(
            limiter.allow("alice", start + Duration::from_millis(100)),
            "one token per 100 ms at 10/s"
        );
        assert!(!limiter.allow("alice", start + Duration::from_millis(100)));
    }
}
