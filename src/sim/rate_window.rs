//! Fixed-window request counter shared by both simulators' rate limits.

use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub(crate) struct RateWindow {
    started: Instant,
    used: u32,
}

impl RateWindow {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            started: now,
            used: 0,
        }
    }

    /// Starts a new window once `interval` has passed since the current one began.
    pub(crate) fn roll(&mut self, now: Instant, interval: Duration) {
        if now.duration_since(self.started) >= interval {
            *self = Self::new(now);
        }
    }

    pub(crate) fn used(&self) -> u32 {
        self.used
    }

    pub(crate) fn record(&mut self) {
        self.used += 1;
    }

    pub(crate) fn remaining(&self, max: u32) -> u32 {
        max.saturating_sub(self.used)
    }

    /// Time until the window resets, rounded up to whole seconds (the unit of `Retry-After`).
    pub(crate) fn retry_after_secs(&self, now: Instant, interval: Duration) -> u64 {
        let left = (self.started + interval).saturating_duration_since(now);
        left.as_millis().div_ceil(1000).max(1) as u64
    }
}
