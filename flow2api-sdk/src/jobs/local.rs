//! The in-process [`JobRunner`]: one background task per running job over the host's
//! [`Spawn`], taking steps back to back with the waits they ask for, and telling watchers
//! about each visible change. Used when the host brings no runner of its own (natively); the
//! record stays in storage, so a restarted process picks its jobs up with `App::resume_jobs`.
//! A job scheduled again while its task runs keeps that task and its waits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::mpsc;

use crate::seams::{boxed, boxed_stream, BoxFuture, BoxStream, Clock, Spawn, StorageError};

use super::{JobRecord, JobRunner, JobSteps, Jobs};

/// Runs jobs as background tasks: the runner an `App` makes from a
/// [`spawner`](crate::AppBuilder::spawner) when the host brings no
/// [`job_runner`](crate::AppBuilder::job_runner). Public so that other steps (the job runner
/// conformance suite's scripted jobs) can run on it too.
#[derive(Clone)]
pub struct LocalRunner {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for LocalRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalRunner").finish_non_exhaustive()
    }
}

struct Inner {
    /// Replaced when the settings change (`use_jobs`); each step takes the newest.
    steps: Mutex<Arc<dyn JobSteps>>,
    spawner: Arc<dyn Spawn>,
    clock: Arc<dyn Clock>,
    /// Running jobs and their watchers, under one lock so that a watcher never registers on
    /// a job whose task has just ended.
    running: Mutex<HashMap<String, Watched>>,
}

/// A running job's newest published record and its watchers.
#[derive(Default)]
struct Watched {
    last: Option<JobRecord>,
    watchers: Vec<mpsc::UnboundedSender<JobRecord>>,
}

impl LocalRunner {
    /// A runner taking `steps` in tasks started with `spawner`, waiting on `clock`.
    // One type on both targets: on wasm32 nothing is `Send` and there is one thread.
    #[allow(clippy::arc_with_non_send_sync)]
    pub fn new(steps: Arc<dyn JobSteps>, spawner: Arc<dyn Spawn>, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Arc::new(Inner {
                steps: Mutex::new(steps),
                spawner,
                clock,
                running: Mutex::new(HashMap::new()),
            }),
        }
    }
}

impl LocalRunner {
    /// Runs the next steps of every job with `jobs` (built from newer settings).
    #[allow(clippy::arc_with_non_send_sync)] // as in `new`
    pub(crate) fn use_jobs(&self, jobs: Jobs) {
        if let Ok(mut steps) = self.inner.steps.lock() {
            *steps = Arc::new(jobs);
        }
    }
}

impl Inner {
    fn steps(&self) -> Arc<dyn JobSteps> {
        match self.steps.lock() {
            Ok(s) => s.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn publish(&self, id: &str, record: &JobRecord) {
        if let Ok(mut running) = self.running.lock() {
            if let Some(w) = running.get_mut(id) {
                w.watchers
                    .retain(|tx| tx.unbounded_send(record.clone()).is_ok());
                w.last = Some(record.clone());
            }
        }
    }

    async fn drive(&self, id: &str, delay: Duration) {
        if !delay.is_zero() {
            self.clock.sleep(delay).await;
        }
        let mut failures = 0;
        let mut revision = 0;
        loop {
            match self.steps().step(id).await {
                Ok(outcome) => {
                    failures = 0;
                    if let Some(record) = &outcome.record {
                        if record.revision > revision {
                            revision = record.revision;
                            self.publish(id, record);
                        }
                    }
                    match outcome.next {
                        Some(wait) if !wait.is_zero() => self.clock.sleep(wait).await,
                        Some(_) => {}
                        None => break,
                    }
                }
                Err(_) => {
                    failures += 1;
                    match super::retry_after_failures(failures) {
                        Some(wait) => self.clock.sleep(wait).await,
                        None => break,
                    }
                }
            }
        }
        // Dropping the watchers' senders ends their streams.
        if let Ok(mut running) = self.running.lock() {
            running.remove(id);
        }
    }
}

impl JobRunner for LocalRunner {
    fn schedule<'a>(
        &'a self,
        id: &'a str,
        delay: Duration,
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        boxed(async move {
            let fresh = self
                .inner
                .running
                .lock()
                .map(|mut r| {
                    if r.contains_key(id) {
                        false
                    } else {
                        r.insert(id.to_owned(), Watched::default());
                        true
                    }
                })
                .unwrap_or(false);
            if fresh {
                let inner = self.inner.clone();
                let id = id.to_owned();
                self.inner
                    .spawner
                    .spawn(boxed(async move { inner.drive(&id, delay).await }));
            }
            Ok(())
        })
    }

    fn watch<'a>(
        &'a self,
        id: &'a str,
        revision: u64,
    ) -> BoxFuture<'a, BoxStream<'static, JobRecord>> {
        let (tx, rx) = mpsc::unbounded();
        if let Ok(mut running) = self.inner.running.lock() {
            // Not running here: the stream ends at once and the follower reads storage.
            if let Some(w) = running.get_mut(id) {
                // A change the follower has not seen yet comes first.
                if let Some(last) = w.last.as_ref().filter(|l| l.revision > revision) {
                    let _ = tx.unbounded_send(last.clone());
                }
                w.watchers.push(tx);
            }
        }
        boxed(async move { boxed_stream(rx) })
    }
}
