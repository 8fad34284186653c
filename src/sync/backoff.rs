//! Exponential backoff with full jitter, never sooner than the upstream asked.
use std::time::Duration;

use rand::Rng;

/// Delay before attempt `attempts + 1`: uniform in [0, min(cap, base·2^attempts)], at least
/// `retry_after` (itself at most `cap`). Full jitter spreads a thundering herd after an outage.
pub fn delay(
    base: Duration,
    cap: Duration,
    attempts: i64,
    retry_after: Option<Duration>,
) -> Duration {
    let exponent = attempts.clamp(0, 30) as u32;
    let ceiling = base.saturating_mul(1u32 << exponent).min(cap);
    let jittered =
        Duration::from_millis(rand::thread_rng().gen_range(0..=ceiling.as_millis() as u64));
    jittered.max(retry_after.unwrap_or_default().min(cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_caps_and_honours_retry_after() {
        let base = Duration::from_secs(1);
        let cap = Duration::from_secs(3600);
        for _ in 0..200 {
            assert!(delay(base, cap, 0, None) <= Duration::from_secs(1));
            assert!(delay(base, cap, 3, None) <= Duration::from_secs(8));
            assert!(delay(base, cap, 40, None) <= cap);
            assert!(delay(base, Duration::from_secs(2), 40, None) <= Duration::from_secs(2));
            assert!(delay(base, cap, 0, Some(Duration::from_secs(30))) >= Duration::from_secs(30));
        }
        let spread: std::collections::HashSet<Duration> =
            (0..50).map(|_| delay(base, cap, 5, None)).collect();
        assert!(spread.len() > 10, "jittered, not fixed");
    }
}
