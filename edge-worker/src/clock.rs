//! [`Clock`] on the Workers runtime: `Date.now()` and `setTimeout`.

use std::time::Duration;

use flow2api_sdk::seams::{boxed, BoxFuture, Clock};
use worker::{Date, Delay};

/// Wall-clock time from `Date.now()`, sleeping with [`Delay`].
///
/// Inside a Worker `Date.now()` only advances across I/O (a Spectre mitigation), which is what
/// the SDK's timeouts and TTLs need.
#[derive(Debug, Clone, Copy, Default)]
pub struct WorkerClock;

impl Clock for WorkerClock {
    fn now_ms(&self) -> u64 {
        Date::now().as_millis()
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        boxed(Delay::from(duration))
    }
}
