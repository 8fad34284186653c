//! Client-side rate budgets: wait for room instead of drawing a 429.
//!
//! A sliding window (not a token bucket): "at most N calls in any window of length T" is
//! what GHL enforces and what its simulator counts, and a refilling bucket would allow
//! up to 2N in some windows. The upstream's own headers correct the window: they reveal
//! the real limit and any calls other processes (replicas) made with the same credentials.
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

/// "N calls per T", e.g. `100/10s`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimit {
    pub calls: u32,
    pub per: Duration,
}

impl RateLimit {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let (calls, per) = raw
            .split_once('/')
            .ok_or_else(|| "must look like 100/10s (calls/duration)".to_owned())?;
        let calls: u32 = calls
            .trim()
            .parse()
            .ok()
            .filter(|c| *c > 0)
            .ok_or_else(|| "the call count must be a whole number above zero".to_owned())?;
        let per = humantime::parse_duration(per.trim())
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| "the window must be a duration such as 10s or 1m".to_owned())?;
        Ok(RateLimit { calls, per })
    }
}

/// What an upstream answer said about the budget.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    pub max: Option<u32>,
    pub interval: Option<Duration>,
    pub remaining: Option<u32>,
    pub daily_remaining: Option<u32>,
    /// The upstream refused (429): nothing more until this has passed.
    pub retry_after: Option<Duration>,
}

/// How long to stop when the daily quota is spent; its reset time is not documented.
const DAILY_PAUSE: Duration = Duration::from_secs(3600);

struct Window {
    limit: RateLimit,
    daily: Option<u32>,
    recent: VecDeque<Instant>,
    day_started: Instant,
    day_used: u32,
    /// The upstream's `remaining` at a moment: calls since then count against it.
    reported: Option<(u32, Instant)>,
    paused_until: Option<Instant>,
}

impl Window {
    /// Takes a slot now, or says how long to wait for one.
    fn try_take(&mut self, now: Instant) -> Result<(), Duration> {
        let interval = self.limit.per;
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= interval)
        {
            self.recent.pop_front();
        }
        if now.duration_since(self.day_started) >= Duration::from_secs(86_400) {
            self.day_started = now;
            self.day_used = 0;
        }
        if let Some(until) = self.paused_until.filter(|u| *u > now) {
            return Err(until - now);
        }
        if self.recent.len() >= self.limit.calls as usize {
            let oldest = self.recent[self.recent.len() - self.limit.calls as usize];
            return Err(interval
                .saturating_sub(now.duration_since(oldest))
                .max(Duration::from_millis(1)));
        }
        if let Some((remaining, at)) = self.reported {
            if now.duration_since(at) < interval {
                let since = self.recent.iter().filter(|t| **t > at).count() as u32;
                if since >= remaining {
                    return Err(interval - now.duration_since(at));
                }
            } else {
                self.reported = None;
            }
        }
        if self.daily.is_some_and(|d| self.day_used >= d) {
            self.paused_until = Some(now + DAILY_PAUSE);
            return Err(DAILY_PAUSE);
        }
        self.recent.push_back(now);
        self.day_used += 1;
        Ok(())
    }

    fn observe(&mut self, seen: Observed, now: Instant) {
        if let Some(max) = seen.max.filter(|m| *m > 0) {
            self.limit.calls = max;
        }
        if let Some(interval) = seen.interval.filter(|i| !i.is_zero()) {
            self.limit.per = interval;
        }
        if let Some(remaining) = seen.remaining {
            self.reported = Some((remaining, now));
        }
        if seen.daily_remaining == Some(0) {
            self.paused_until = Some(now + DAILY_PAUSE);
        }
        if let Some(pause) = seen.retry_after {
            let until = now + pause;
            self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
        }
    }
}

/// One budget per key (a GHL location, a Holded API key).
pub struct RateBudgets<K> {
    default: RateLimit,
    daily: Option<u32>,
    windows: Mutex<HashMap<K, Arc<Mutex<Window>>>>,
}

impl<K: Eq + Hash + Clone> RateBudgets<K> {
    pub fn new(default: RateLimit, daily: Option<u32>) -> Self {
        RateBudgets {
            default,
            daily,
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn window(&self, key: &K) -> Arc<Mutex<Window>> {
        let mut windows = self.windows.lock().expect("budget lock");
        windows
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Mutex::new(Window {
                    limit: self.default,
                    daily: self.daily,
                    recent: VecDeque::new(),
                    day_started: Instant::now(),
                    day_used: 0,
                    reported: None,
                    paused_until: None,
                }))
            })
            .clone()
    }

    /// Waits until a call for `key` fits the budget, takes it, and returns how long it waited.
    pub async fn acquire(&self, key: &K) -> Duration {
        let window = self.window(key);
        let started = Instant::now();
        loop {
            let verdict = window.lock().expect("budget lock").try_take(Instant::now());
            match verdict {
                Ok(()) => return started.elapsed(),
                Err(wait) => tokio::time::sleep(wait).await,
            }
        }
    }

    pub fn observe(&self, key: &K, seen: Observed) {
        self.window(key)
            .lock()
            .expect("budget lock")
            .observe(seen, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(calls: u32, secs: u64) -> RateLimit {
        RateLimit {
            calls,
            per: Duration::from_secs(secs),
        }
    }

    #[test]
    fn parses_calls_per_window() {
        assert_eq!(RateLimit::parse("100/10s"), Ok(limit(100, 10)));
        assert_eq!(RateLimit::parse(" 5 / 1s "), Ok(limit(5, 1)));
        for bad in ["100", "0/10s", "x/10s", "10/0s", "10/soon"] {
            assert!(RateLimit::parse(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn never_more_than_the_limit_in_any_window() {
        let budgets = RateBudgets::new(limit(3, 10), None);
        let mut taken = Vec::new();
        for _ in 0..7 {
            budgets.acquire(&"loc").await;
            taken.push(Instant::now());
        }
        for (i, t) in taken.iter().enumerate() {
            let in_window = taken[i..]
                .iter()
                .filter(|u| u.duration_since(*t) < Duration::from_secs(10))
                .count();
            assert!(in_window <= 3, "{in_window} calls in one window");
        }
        assert!(taken[6].duration_since(taken[0]) >= Duration::from_secs(20));
    }

    #[tokio::test(start_paused = true)]
    async fn headers_correct_the_window() {
        let budgets = RateBudgets::new(limit(100, 10), None);
        budgets.acquire(&"loc").await;
        // Another replica spent the budget: the upstream says none is left.
        budgets.observe(
            &"loc",
            Observed {
                remaining: Some(0),
                ..Default::default()
            },
        );
        let waited = budgets.acquire(&"loc").await;
        assert!(waited >= Duration::from_secs(9), "{waited:?}");
        // A smaller limit learned from headers applies at once.
        budgets.observe(
            &"other",
            Observed {
                max: Some(1),
                interval: Some(Duration::from_secs(2)),
                ..Default::default()
            },
        );
        budgets.acquire(&"other").await;
        assert!(budgets.acquire(&"other").await >= Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_and_daily_quota_pause() {
        let budgets = RateBudgets::new(limit(100, 10), Some(2));
        budgets.observe(
            &"loc",
            Observed {
                retry_after: Some(Duration::from_secs(30)),
                ..Default::default()
            },
        );
        assert!(budgets.acquire(&"loc").await >= Duration::from_secs(30));
        budgets.acquire(&"loc").await;
        assert!(
            budgets.acquire(&"loc").await >= DAILY_PAUSE,
            "third call of a 2-per-day quota waits"
        );
        // Budgets are per key.
        assert_eq!(budgets.acquire(&"elsewhere").await, Duration::ZERO);
    }
}
