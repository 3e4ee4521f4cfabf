//! When to try a failed attempt again: exponential backoff with ±20 %
//! jitter (so a burst of failures does not retry in lock-step), never sooner
//! than the provider's `Retry-After`, and never later than the cap.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    pub base: Duration,
    pub max: Duration,
    /// Attempts in all, the first included.
    pub max_attempts: u32,
}

impl RetryPolicy {
    /// The delay before attempt `attempts + 1`, given `attempts` made.
    pub fn delay(&self, attempts: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .base
            .saturating_mul(1u32 << attempts.saturating_sub(1).min(20));
        let capped = exp.min(self.max);
        let jitter = 0.8 + 0.4 * rand::random::<f64>();
        let delay = capped.mul_f64(jitter).min(self.max);
        match retry_after {
            Some(ra) => delay.max(ra),
            None => delay,
        }
    }

    pub fn exhausted(&self, attempts: u32) -> bool {
        attempts >= self.max_attempts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            base: Duration::from_secs(5),
            max: Duration::from_secs(3600),
            max_attempts: 5,
        }
    }

    #[test]
    fn grows_exponentially_within_jitter() {
        let p = policy();
        for (attempts, nominal) in [(1, 5.0), (2, 10.0), (3, 20.0), (4, 40.0)] {
            for _ in 0..100 {
                let d = p.delay(attempts, None).as_secs_f64();
                assert!(
                    d >= nominal * 0.8 - 1e-9 && d <= nominal * 1.2 + 1e-9,
                    "{attempts}: {d}"
                );
            }
        }
    }

    #[test]
    fn honours_retry_after_and_the_cap() {
        let p = policy();
        assert!(p.delay(1, Some(Duration::from_secs(60))) >= Duration::from_secs(60));
        assert!(p.delay(30, None) <= Duration::from_secs(3600));
    }

    #[test]
    fn knows_when_to_stop() {
        assert!(!policy().exhausted(4));
        assert!(policy().exhausted(5));
    }
}
