//! The simulators' monotonic clock, which tests may move forward instead of sleeping.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Default)]
pub(crate) struct Clock {
    offset: Arc<Mutex<Duration>>,
}

impl Clock {
    pub(crate) fn now(&self) -> Instant {
        Instant::now() + *self.offset.lock().unwrap()
    }

    pub(crate) fn advance(&self, by: Duration) {
        *self.offset.lock().unwrap() += by;
    }
}
