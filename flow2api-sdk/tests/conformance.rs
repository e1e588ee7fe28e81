//! The seams' conformance suites (`flow2api_sdk::testing::conformance`) against the in-memory
//! implementations, the caching decorator and the in-process job runner. The worker's run
//! inside workerd (`tests/test_conformance_worker.py`).

use std::sync::Arc;
use std::time::Duration;

use flow2api_sdk::cache::{CachingStorage, StorageCache};
use flow2api_sdk::memory::{ManualClock, MemoryCoordinator, MemoryStorage};
use flow2api_sdk::seams::{BoxFuture, Bytes, Capabilities, ListPage, Storage, StorageError};
use flow2api_sdk::testing::conformance::{coordinator, storage, Outcome, Time};

fn memory() -> (Arc<ManualClock>, Arc<MemoryStorage>) {
    let clock = Arc::new(ManualClock::new(1_000_000));
    (clock.clone(), Arc::new(MemoryStorage::new(clock)))
}

#[tokio::test]
async fn memory_storage_passes_the_storage_suite() {
    let report = storage::suite(|| async {
        let (clock, store) = memory();
        storage::Subject::new(store, Time::Manual(clock))
    })
    .await;
    report.assert_passed();
    assert!(
        report
            .cases
            .iter()
            .all(|(n, o)| *o == Outcome::Passed || *n == "min_ttl"),
        "memory is strong with conditional writes: only min_ttl skips\n{report}"
    );
}

#[tokio::test]
async fn the_caching_decorator_passes_the_storage_suite() {
    let report = storage::suite(|| async {
        let (clock, store) = memory();
        let cache = Arc::new(StorageCache::new(clock.clone(), Duration::from_secs(2)));
        let cached = CachingStorage::new(store, cache);
        storage::Subject::new(Arc::new(cached), Time::Manual(clock))
    })
    .await;
    report.assert_passed();
}

#[tokio::test]
async fn the_caching_decorator_with_a_zero_ttl_is_its_backend() {
    let report = storage::suite(|| async {
        let (clock, store) = memory();
        let cache = Arc::new(StorageCache::new(clock.clone(), Duration::ZERO));
        let cached = CachingStorage::new(store, cache);
        assert_eq!(cached.capabilities(), Capabilities::strong());
        storage::Subject::new(Arc::new(cached), Time::Manual(clock))
    })
    .await;
    report.assert_passed();
}

#[tokio::test]
async fn memory_coordinator_passes_the_coordinator_suite() {
    let report = coordinator::suite(|| async {
        let clock = Arc::new(ManualClock::new(1_000_000));
        coordinator::Subject::new(
            Arc::new(MemoryCoordinator::new(clock.clone())),
            Time::Manual(clock),
        )
    })
    .await;
    report.assert_passed();
    assert!(
        report.cases.iter().all(|(_, o)| *o == Outcome::Passed),
        "{report}"
    );
}

#[tokio::test]
async fn memory_logs_pass_the_log_store_suite() {
    use flow2api_sdk::logs::MemoryLogStore;
    use flow2api_sdk::testing::conformance::logs;
    let report =
        logs::suite(|| async { logs::Subject::new(Arc::new(MemoryLogStore::new())) }).await;
    report.assert_passed();
    assert!(
        report.cases.iter().all(|(_, o)| *o == Outcome::Passed),
        "{report}"
    );
}

/// A log store that drops every third row: the suite must notice.
#[tokio::test]
async fn the_log_store_suite_catches_a_lossy_store() {
    use flow2api_sdk::logs::{
        AccountCounts, HourCounts, LogFilter, LogRecord, LogStore, MemoryLogStore, Retention,
        Totals,
    };
    use flow2api_sdk::testing::conformance::logs;
    struct Dropping {
        inner: MemoryLogStore,
        n: std::sync::atomic::AtomicU64,
    }
    impl LogStore for Dropping {
        fn append(&self, r: LogRecord, k: Retention) -> BoxFuture<'_, Result<u64, StorageError>> {
            let n = self.n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if n % 3 == 2 {
                return Box::pin(async move { Ok(1_000_000 + n) });
            }
            self.inner.append(r, k)
        }
        fn list<'a>(
            &'a self,
            f: &'a LogFilter,
            b: Option<u64>,
            l: usize,
        ) -> BoxFuture<'a, Result<Vec<LogRecord>, StorageError>> {
            self.inner.list(f, b, l)
        }
        fn get(&self, id: u64) -> BoxFuture<'_, Result<Option<LogRecord>, StorageError>> {
            self.inner.get(id)
        }
        fn clear(&self) -> BoxFuture<'_, Result<u64, StorageError>> {
            self.inner.clear()
        }
        fn stats(&self, d: u64) -> BoxFuture<'_, Result<Totals, StorageError>> {
            self.inner.stats(d)
        }
        fn series(&self, s: u64) -> BoxFuture<'_, Result<Vec<HourCounts>, StorageError>> {
            self.inner.series(s)
        }
        fn per_account(&self, d: u64) -> BoxFuture<'_, Result<Vec<AccountCounts>, StorageError>> {
            self.inner.per_account(d)
        }
    }
    let report = logs::suite(|| async {
        logs::Subject::new(Arc::new(Dropping {
            inner: MemoryLogStore::new(),
            n: std::sync::atomic::AtomicU64::new(0),
        }))
    })
    .await;
    assert!(!report.passed(), "{report}");
    assert!(report.failures().len() >= 4, "{report}");
}

/// A backend that forgets every other write: the suite must notice.
struct Lossy {
    inner: MemoryStorage,
    n: std::sync::atomic::AtomicUsize,
}

impl Storage for Lossy {
    fn capabilities(&self) -> Capabilities {
        Capabilities::strong()
    }
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, StorageError>> {
        self.inner.get(key)
    }
    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        if self.n.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % 2 == 1 {
            return Box::pin(async { Ok(()) });
        }
        self.inner.put(key, value, ttl)
    }
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StorageError>> {
        self.inner.delete(key)
    }
    fn list<'a>(
        &'a self,
        prefix: &'a str,
        limit: usize,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ListPage, StorageError>> {
        self.inner.list(prefix, limit, cursor)
    }
}

#[tokio::test]
async fn the_suite_fails_a_broken_backend_and_names_the_cases() {
    let report = storage::suite(|| async {
        let clock = Arc::new(ManualClock::new(0));
        let lossy = Lossy {
            inner: MemoryStorage::new(clock.clone()),
            n: 0.into(),
        };
        storage::Subject::new(Arc::new(lossy), Time::Manual(clock))
    })
    .await;
    let failed: Vec<&str> = report.failures().iter().map(|(n, _)| *n).collect();
    assert!(failed.contains(&"get_put_delete"), "{report}");
    assert!(failed.contains(&"list_past_1000_keys"), "{report}");
    // It claims conditional writes it does not have.
    assert!(failed.contains(&"conditional_write"), "{report}");
    let panic = std::panic::catch_unwind(|| report.assert_passed()).unwrap_err();
    let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(text.contains("get_put_delete:"), "{text}");
}

#[tokio::test]
async fn storage_media_stores_pass_the_media_suite() {
    use flow2api_sdk::memory::StorageMediaStore;
    use flow2api_sdk::testing::conformance::media;
    // The default piece size, and a small one so that reads and ranges cross pieces.
    for chunk in [flow2api_sdk::memory::DEFAULT_MEDIA_CHUNK, 65_536, 4_096] {
        let report = media::suite(|| async {
            let (clock, store) = memory();
            let media =
                StorageMediaStore::new(store, Some(Duration::from_secs(60))).with_chunk_size(chunk);
            media::Subject::new(Arc::new(media), Time::Manual(clock))
        })
        .await;
        report.assert_passed();
    }
}

#[cfg(feature = "tokio")]
#[tokio::test]
async fn the_media_directory_passes_the_media_suite() {
    use flow2api_sdk::native::{DirMediaStore, TokioClock};
    use flow2api_sdk::testing::conformance::media;
    let dir = std::env::temp_dir().join(format!("flow2api-media-suite-{}", std::process::id()));
    let report = media::suite(|| async {
        let store = DirMediaStore::open(&dir, Duration::from_secs(60)).unwrap();
        media::Subject::new(Arc::new(store), Time::Real(Arc::new(TokioClock)))
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    report.assert_passed();
}

/// The test runtime as a spawner: the in-process runner's tasks run beside the suite.
struct Tasks;

impl flow2api_sdk::seams::Spawn for Tasks {
    fn spawn(&self, future: BoxFuture<'static, ()>) {
        tokio::spawn(future);
    }
}

/// The in-process runner with a manual clock: every wait is instant, so the whole suite runs
/// (including giving up after ten failures in a row, 50 s of waits) in milliseconds.
#[tokio::test]
async fn the_local_runner_passes_the_job_runner_suite() {
    use flow2api_sdk::jobs::LocalRunner;
    use flow2api_sdk::testing::conformance::jobs;
    let report = jobs::suite(|| async {
        let (clock, store) = memory();
        let scripted = jobs::ScriptedJobs::new(store, clock.clone());
        let runner = LocalRunner::new(Arc::new(scripted.clone()), Arc::new(Tasks), clock.clone());
        jobs::Subject::new(Arc::new(runner), scripted, Time::Manual(clock))
    })
    .await;
    report.assert_passed();
    assert!(
        report.cases.iter().all(|(_, o)| *o == Outcome::Passed),
        "{report}"
    );
}

/// The native host's runner: the in-process runner on tokio tasks and the system clock.
#[cfg(feature = "tokio")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_runner_on_tokio_passes_the_job_runner_suite() {
    use flow2api_sdk::jobs::LocalRunner;
    use flow2api_sdk::native::{TokioClock, TokioSpawn};
    use flow2api_sdk::testing::conformance::jobs;
    let report = jobs::suite(|| async {
        let clock = Arc::new(TokioClock);
        let store = Arc::new(MemoryStorage::new(clock.clone()));
        let scripted = jobs::ScriptedJobs::new(store, clock.clone());
        let runner = LocalRunner::new(
            Arc::new(scripted.clone()),
            Arc::new(TokioSpawn),
            clock.clone(),
        );
        jobs::Subject::new(Arc::new(runner), scripted, Time::Real(clock))
    })
    .await;
    report.assert_passed();
    let skipped: Vec<&str> = report
        .cases
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Skipped(_)))
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(skipped, ["gives_up_after_repeated_errors"], "{report}");
}

/// A runner that starts a task on every schedule, ignores the delay and stops at the first
/// failed step: the suite must notice each.
struct Naive {
    steps: Arc<dyn flow2api_sdk::jobs::JobSteps>,
}

impl flow2api_sdk::jobs::JobRunner for Naive {
    fn schedule<'a>(
        &'a self,
        id: &'a str,
        _delay: Duration,
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        let steps = self.steps.clone();
        let id = id.to_owned();
        tokio::spawn(async move {
            while let Ok(outcome) = steps.step(&id).await {
                if outcome.next.is_none() {
                    break;
                }
            }
        });
        Box::pin(async { Ok(()) })
    }

    fn watch<'a>(
        &'a self,
        _id: &'a str,
        _revision: u64,
    ) -> BoxFuture<'a, flow2api_sdk::seams::BoxStream<'static, flow2api_sdk::jobs::JobRecord>> {
        Box::pin(async { Box::pin(futures::stream::empty()) as _ })
    }
}

#[tokio::test]
async fn the_job_runner_suite_fails_a_naive_runner() {
    use flow2api_sdk::testing::conformance::jobs;
    let report = jobs::suite(|| async {
        let (clock, store) = memory();
        let scripted = jobs::ScriptedJobs::new(store, clock.clone());
        let runner = Naive {
            steps: Arc::new(scripted.clone()),
        };
        jobs::Subject::new(Arc::new(runner), scripted, Time::Manual(clock))
    })
    .await;
    let failed: Vec<&str> = report.failures().iter().map(|(n, _)| *n).collect();
    for case in [
        "first_step_after_its_delay",
        "waits_between_steps",
        "step_errors_are_retried",
        "scheduling_again_never_overlaps",
        "watch_follows_to_the_end",
    ] {
        assert!(failed.contains(&case), "{case} should fail:\n{report}");
    }
}
