//! [`TokioClock`]: wall-clock time from the system, sleeps from tokio.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::seams::{boxed, BoxFuture};
use crate::Clock;

/// The [`Clock`] of a tokio host. Must be used inside a tokio runtime (with timers enabled).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        boxed(tokio::time::sleep(duration))
    }
}
