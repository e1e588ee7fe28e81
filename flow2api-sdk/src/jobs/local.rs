//! The in-process [`JobRunner`]: one background task per running job over the host's
//! [`Spawn`], taking steps back to back with the waits they ask for. Used when the host brings
//! no runner of its own (natively); the record stays in storage, so a restarted process picks
//! its jobs up again with `App::resume_jobs`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::select;

use crate::seams::{boxed, BoxFuture, Clock, Spawn, StorageError};

use super::{JobRunner, Jobs};

/// Consecutive storage failures after which a task gives up (a later read reschedules it).
const MAX_STORE_FAILURES: u32 = 10;

/// Runs jobs as background tasks.
#[derive(Clone)]
pub(crate) struct LocalRunner {
    inner: Arc<Inner>,
}

struct Inner {
    jobs: Jobs,
    spawner: Arc<dyn Spawn>,
    clock: Arc<dyn Clock>,
    running: Mutex<HashSet<String>>,
    waiters: Mutex<HashMap<String, Vec<oneshot::Sender<()>>>>,
}

impl LocalRunner {
    // One type on both targets: on wasm32 nothing is `Send` and there is one thread.
    #[allow(clippy::arc_with_non_send_sync)]
    pub(crate) fn new(jobs: Jobs, spawner: Arc<dyn Spawn>, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Arc::new(Inner {
                jobs,
                spawner,
                clock,
                running: Mutex::new(HashSet::new()),
                waiters: Mutex::new(HashMap::new()),
            }),
        }
    }
}

impl Inner {
    fn notify(&self, id: &str) {
        let senders = self
            .waiters
            .lock()
            .map(|mut w| w.remove(id).unwrap_or_default())
            .unwrap_or_default();
        for tx in senders {
            let _ = tx.send(());
        }
    }

    async fn drive(&self, id: &str, delay: Duration) {
        if !delay.is_zero() {
            self.clock.sleep(delay).await;
        }
        let mut failures = 0;
        loop {
            match self.jobs.step(id).await {
                Ok(outcome) => {
                    failures = 0;
                    self.notify(id);
                    match outcome.next {
                        Some(wait) if !wait.is_zero() => self.clock.sleep(wait).await,
                        Some(_) => {}
                        None => break,
                    }
                }
                Err(_) if failures < MAX_STORE_FAILURES => {
                    failures += 1;
                    self.clock.sleep(Duration::from_secs(5)).await;
                }
                Err(_) => break,
            }
        }
        if let Ok(mut running) = self.running.lock() {
            running.remove(id);
        }
        self.notify(id);
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
                .map(|mut r| r.insert(id.to_owned()))
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

    fn wait<'a>(&'a self, id: &'a str, _revision: u64, timeout: Duration) -> BoxFuture<'a, ()> {
        let (tx, rx) = oneshot::channel();
        if let Ok(mut w) = self.inner.waiters.lock() {
            w.entry(id.to_owned()).or_default().push(tx);
        }
        let sleep = self.inner.clock.sleep(timeout);
        boxed(async move {
            let _ = select(rx, sleep).await;
        })
    }
}
