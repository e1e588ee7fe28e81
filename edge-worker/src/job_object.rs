//! `JobObject`: one Durable Object per video job (addressed by `id_from_name(job_id)`). Its
//! alarm takes one step of the job through the SDK ([`App::step_job`]) per invocation — so
//! each step gets a fresh subrequest budget — and re-arms for the step after. Followers wait
//! on it for the job's next visible change instead of polling the record.
//!
//! [`App::step_job`]: flow2api_sdk::App::step_job

use std::cell::{Cell, RefCell};
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::{select, Either};
// `#[durable_object]` expands to code that names `wasm_bindgen` unqualified.
use worker::wasm_bindgen;
use worker::{
    console_error, console_log, durable_object, Delay, DurableObject, Env, Request, Response,
    Result, State,
};

use crate::fetch_http::Subrequests;
use crate::protocol::{JobCommand, JobReply, JOB_FAILURES_KEY, JOB_ID_KEY, JOB_MAX_FAILURES};

/// Delay before a step that failed on storage is tried again.
const RETRY_AFTER: Duration = Duration::from_secs(5);

/// The Durable Object class bound as `JOBS`.
#[durable_object]
pub struct JobObject {
    state: State,
    env: Env,
    /// The newest revision a step of this instance produced (0 after a restart).
    revision: Cell<u64>,
    /// Followers waiting for the next change.
    waiters: RefCell<Vec<oneshot::Sender<()>>>,
}

impl std::fmt::Debug for JobObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobObject").finish_non_exhaustive()
    }
}

impl JobObject {
    fn changed(&self, revision: u64) {
        if revision > self.revision.get() {
            self.revision.set(revision);
            for tx in self.waiters.borrow_mut().drain(..) {
                let _ = tx.send(());
            }
        }
    }

    async fn wait(&self, revision: u64, timeout: Duration) -> u64 {
        if self.revision.get() > revision {
            return self.revision.get();
        }
        let (tx, rx) = oneshot::channel();
        self.waiters.borrow_mut().push(tx);
        let delay = Delay::from(timeout);
        match select(rx, delay).await {
            Either::Left(_) | Either::Right(_) => self.revision.get(),
        }
    }

    /// One step; returns when to take the next.
    async fn step(&self, id: &str) -> Option<Duration> {
        let subrequests = Subrequests::default();
        let app = match crate::entry::app(&self.env, &subrequests, None) {
            Ok(app) => app,
            Err(e) => {
                console_error!("video-job step id={id}: cannot start: {e}");
                return Some(RETRY_AFTER);
            }
        };
        let storage = self.state.storage();
        match app.step_job(id).await {
            Ok(outcome) => {
                self.changed(outcome.revision);
                let _ = storage.delete(JOB_FAILURES_KEY).await;
                console_log!(
                    "video-job step id={id} revision={} subrequests={} next_ms={}",
                    outcome.revision,
                    subrequests.get(),
                    outcome.next.map_or(-1, |d| d.as_millis() as i64)
                );
                outcome.next
            }
            Err(e) => {
                let failures = storage.get::<u32>(JOB_FAILURES_KEY).await.ok().flatten();
                let failures = failures.unwrap_or(0) + 1;
                let _ = storage.put(JOB_FAILURES_KEY, failures).await;
                console_error!(
                    "video-job step id={id} failed ({failures} in a row): {e} subrequests={}",
                    subrequests.get()
                );
                (failures < JOB_MAX_FAILURES).then_some(RETRY_AFTER)
            }
        }
    }
}

impl DurableObject for JobObject {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            revision: Cell::new(0),
            waiters: RefCell::new(Vec::new()),
        }
    }

    async fn fetch(&self, mut req: Request) -> Result<Response> {
        let command: JobCommand = match serde_json::from_str(&req.text().await?) {
            Ok(c) => c,
            Err(e) => return Response::error(format!("bad command: {e}"), 400),
        };
        let reply = match command {
            JobCommand::Schedule { id, delay_ms } => {
                let storage = self.state.storage();
                storage.put(JOB_ID_KEY, id).await?;
                storage
                    .set_alarm(Duration::from_millis(delay_ms.max(1)))
                    .await?;
                JobReply::Scheduled
            }
            JobCommand::Wait {
                revision,
                timeout_ms,
            } => JobReply::Waited {
                revision: self
                    .wait(revision, Duration::from_millis(timeout_ms.min(60_000)))
                    .await,
            },
        };
        Response::from_json(&reply)
    }

    async fn alarm(&self) -> Result<Response> {
        let Some(id) = self.state.storage().get::<String>(JOB_ID_KEY).await? else {
            return Response::empty();
        };
        if let Some(next) = self.step(&id).await {
            self.state
                .storage()
                .set_alarm(next.max(Duration::from_millis(1)))
                .await?;
        }
        Response::empty()
    }
}
