//! Conformance suites for the seams: what every implementation of [`Storage`](crate::Storage),
//! [`MediaStore`](crate::MediaStore), [`Coordinator`](crate::Coordinator),
//! [`LogStore`](crate::seams::LogStore) and [`JobRunner`](crate::jobs::JobRunner) must do, written once and run against each of them —
//! the in-process ones in `cargo test`, the worker's inside workerd (a test-only build of the
//! worker, driven by `tests/test_conformance_worker.py`).
//!
//! Each suite is a list of named cases. [`storage::suite`] (and the others) run them all
//! against subjects made by a factory, one fresh subject per case, and return a [`Report`]
//! naming every case that failed; [`storage::case`] runs one case by name, for hosts that can
//! afford only one case per invocation. Cases keep their keys (and account ids) under a random
//! namespace, so a shared backend (one KV namespace) needs no cleaning between runs.
//!
//! Time: a subject comes with a [`Time`], either a [`ManualClock`] the suite advances (TTLs
//! and leases are checked to the millisecond, instantly) or a real [`Clock`] the suite sleeps
//! on (the waits are kept to about a second, and expiries longer than that, such as KV's 60 s
//! minimum TTL, are only checked from the early side).
//!
//! ```
//! # futures::executor::block_on(async {
//! use std::sync::Arc;
//! use flow2api_sdk::memory::{ManualClock, MemoryStorage};
//! use flow2api_sdk::conformance::{storage, Time};
//!
//! let report = storage::suite(|| async {
//!     let clock = Arc::new(ManualClock::new(1_000));
//!     storage::Subject::new(Arc::new(MemoryStorage::new(clock.clone())), Time::Manual(clock))
//! })
//! .await;
//! report.assert_passed();
//! # });
//! ```

pub mod coordinator;
pub mod jobs;
pub mod logs;
pub mod media;
pub mod storage;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::memory::ManualClock;
use crate::seams::Clock;

/// Longest real-time wait a case makes.
pub(crate) const REAL_WAIT_BUDGET: Duration = Duration::from_secs(2);

/// How a suite makes time pass for a subject.
#[derive(Clone)]
pub enum Time {
    /// The subject's clock: advanced by the suite, sleeps are instant.
    Manual(Arc<ManualClock>),
    /// Real time (the backend reads its own clock): the suite sleeps on this one.
    Real(Arc<dyn Clock>),
}

impl fmt::Debug for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Manual(_) => "Time::Manual",
            Self::Real(_) => "Time::Real",
        })
    }
}

impl Time {
    /// Lets `d` pass.
    pub async fn pass(&self, d: Duration) {
        match self {
            Self::Manual(c) => c.advance(d),
            Self::Real(c) => c.sleep(d).await,
        }
    }

    /// Now, in Unix ms.
    pub fn now_ms(&self) -> u64 {
        match self {
            Self::Manual(c) => c.now_ms(),
            Self::Real(c) => c.now_ms(),
        }
    }

    /// Whether time is the suite's to move (so long waits cost nothing).
    pub fn is_manual(&self) -> bool {
        matches!(self, Self::Manual(_))
    }
}

/// How one case ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every check held.
    Passed,
    /// The subject does not claim what the case checks (e.g. read-your-writes on an
    /// eventually consistent store); the reason says what.
    Skipped(String),
    /// A check failed: what was expected and what came.
    Failed(String),
}

/// A case's result: `Ok(None)` passed, `Ok(Some(reason))` skipped, `Err(message)` failed.
pub type CaseResult = Result<Option<String>, String>;

impl From<CaseResult> for Outcome {
    fn from(r: CaseResult) -> Self {
        match r {
            Ok(None) => Self::Passed,
            Ok(Some(why)) => Self::Skipped(why),
            Err(e) => Self::Failed(e),
        }
    }
}

/// The outcome of every case of a suite run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Case names and outcomes, in the order run.
    pub cases: Vec<(&'static str, Outcome)>,
}

impl Report {
    /// The cases that failed, with their messages.
    pub fn failures(&self) -> Vec<(&'static str, &str)> {
        self.cases
            .iter()
            .filter_map(|(name, o)| match o {
                Outcome::Failed(m) => Some((*name, m.as_str())),
                _ => None,
            })
            .collect()
    }

    /// Whether no case failed.
    pub fn passed(&self) -> bool {
        self.failures().is_empty()
    }

    /// Panics, naming every failed case and why, when any failed.
    ///
    /// # Panics
    /// When a case failed.
    pub fn assert_passed(&self) {
        let failures = self.failures();
        assert!(
            failures.is_empty(),
            "{} of {} conformance cases failed:\n{}",
            failures.len(),
            self.cases.len(),
            failures
                .iter()
                .map(|(n, m)| format!("  {n}: {m}"))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, outcome) in &self.cases {
            match outcome {
                Outcome::Passed => writeln!(f, "ok      {name}")?,
                Outcome::Skipped(why) => writeln!(f, "skipped {name}: {why}")?,
                Outcome::Failed(why) => writeln!(f, "FAILED  {name}: {why}")?,
            }
        }
        Ok(())
    }
}

/// Runs each of `cases` through `run_case` (which builds a fresh subject and runs the case on
/// it) and reports each outcome: the loop every suite's `suite` shares.
pub(crate) async fn run<F, Fut>(cases: &'static [&'static str], run_case: F) -> Report
where
    F: Fn(&'static str) -> Fut,
    Fut: std::future::Future<Output = CaseResult>,
{
    let mut report = Report::default();
    for name in cases {
        report
            .cases
            .push((name, Outcome::from(run_case(name).await)));
    }
    report
}

/// Fails the case with `msg` unless `cond`.
pub(crate) fn check(cond: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(msg())
    }
}

/// Fails the case unless `left == right`, showing both.
pub(crate) fn check_eq<T: PartialEq + fmt::Debug>(
    left: T,
    right: T,
    what: &str,
) -> Result<(), String> {
    check(left == right, || {
        format!("{what}: got {left:?}, expected {right:?}")
    })
}

/// Lets the executor run other tasks once: a single-threaded one, whose tasks would
/// otherwise never get a turn while a case polls a subject whose futures are all ready at
/// once (memory backends, a manual clock).
pub(crate) async fn yield_now() {
    struct YieldNow(bool);
    impl std::future::Future for YieldNow {
        type Output = ();
        fn poll(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<()> {
            if self.0 {
                return std::task::Poll::Ready(());
            }
            self.0 = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    }
    YieldNow(false).await;
}

/// A fresh namespace for one case's keys or ids: `conformance/<16 hex>/`.
pub(crate) fn namespace() -> String {
    format!("conformance/{}/", crate::util::random_hex(8))
}
