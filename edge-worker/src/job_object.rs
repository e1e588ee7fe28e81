//! `JobObject`: one Durable Object per video job (addressed by `id_from_name(job_id)`). Its
//! alarm takes one step of the job through the SDK ([`App::step_job`]) per invocation — so
//! each step gets a fresh subrequest budget — and re-arms for the step after. Followers (a chat
//! completion streaming the job) hold one streamed request to it and receive each visible
//! change as a JSON line: one subrequest for the whole job instead of one per poll.
//!
//! [`App::step_job`]: flow2api_sdk::App::step_job

use std::cell::RefCell;
use std::time::Duration;

use flow2api_sdk::jobs::{self, JobRecord, StepOutcome};
use futures::channel::mpsc;
use futures::StreamExt;
// `#[durable_object]` expands to code that names `wasm_bindgen` unqualified.
use worker::wasm_bindgen;
use worker::{
    console_error, console_log, durable_object, DurableObject, Env, Request, Response, Result,
    State,
};

use crate::fetch_http::Subrequests;
use crate::protocol::{JobCommand, JobReply, JOB_FAILURES_KEY, JOB_ID_KEY};

/// The Durable Object class bound as `JOBS`.
#[durable_object]
pub struct JobObject {
    state: State,
    env: Env,
    /// The newest record a step of this instance produced, as a JSON line (none after a
    /// restart), with its revision and whether it finished the job.
    last: RefCell<Option<(u64, String, bool)>>,
    /// Open follow streams.
    followers: RefCell<Vec<mpsc::UnboundedSender<String>>>,
}

impl std::fmt::Debug for JobObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobObject").finish_non_exhaustive()
    }
}

impl JobObject {
    /// Sends a changed record to the followers; a finished job closes their streams.
    fn publish(&self, record: &JobRecord) {
        if matches!(&*self.last.borrow(), Some((rev, ..)) if record.revision <= *rev) {
            return;
        }
        let Ok(mut line) = serde_json::to_string(record) else {
            return;
        };
        line.push('\n');
        let finished = record.status.is_terminal();
        let mut followers = self.followers.borrow_mut();
        followers.retain(|tx| tx.unbounded_send(line.clone()).is_ok());
        if finished {
            followers.clear();
        }
        *self.last.borrow_mut() = Some((record.revision, line, finished));
    }

    /// A follow stream: the newest record first if the follower has not seen it, then each
    /// change, ending with the job. It ends at once when this object is not stepping the job
    /// (never scheduled, finished, gone or given up): nothing would come.
    async fn follow(&self, revision: u64) -> Result<Response> {
        let (tx, rx) = mpsc::unbounded::<String>();
        let mut finished = false;
        if let Some((rev, line, done)) = &*self.last.borrow() {
            if *rev > revision {
                let _ = tx.unbounded_send(line.clone());
            }
            finished = *done;
        }
        let stepping = self
            .state
            .storage()
            .get::<String>(JOB_ID_KEY)
            .await?
            .is_some();
        if !finished && stepping {
            self.followers.borrow_mut().push(tx);
        }
        Response::from_stream(rx.map(Ok::<String, worker::Error>))
    }

    /// One step of the job `id`: a video job through the SDK's [`App::step_job`], or (in the
    /// test-only `conformance` build) one of the job runner suite's scripted jobs.
    ///
    /// [`App::step_job`]: flow2api_sdk::App::step_job
    async fn step_job(
        &self,
        id: &str,
        subrequests: &Subrequests,
    ) -> std::result::Result<StepOutcome, String> {
        #[cfg(feature = "conformance")]
        if flow2api_sdk::conformance::jobs::ScriptedJobs::owns(id) {
            let scripted = crate::conformance::scripted_jobs(&self.env, subrequests)
                .map_err(|e| format!("cannot start: {e}"))?;
            return flow2api_sdk::jobs::JobSteps::step(&scripted, id)
                .await
                .map_err(|e| e.to_string());
        }
        let app = crate::entry::app(&self.env, subrequests, None)
            .map_err(|e| format!("cannot start: {e}"))?;
        app.step_job(id).await.map_err(|e| e.to_string())
    }

    /// One step; returns when to take the next.
    async fn step(&self, id: &str) -> Option<Duration> {
        let subrequests = Subrequests::default();
        let storage = self.state.storage();
        match self.step_job(id, &subrequests).await {
            Ok(outcome) => {
                if let Some(record) = &outcome.record {
                    self.publish(record);
                }
                let _ = storage.delete(JOB_FAILURES_KEY).await;
                // The runner also steps account imports (`import_…` ids), which have no record.
                let what = if id.starts_with("import_") {
                    "import"
                } else {
                    "video-job"
                };
                console_log!(
                    "{what} step id={id} revision={} subrequests={} next_ms={}",
                    outcome.revision(),
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
                jobs::retry_after_failures(failures)
            }
        }
    }
}

impl DurableObject for JobObject {
    fn new(state: State, env: Env) -> Self {
        Self {
            state,
            env,
            last: RefCell::new(None),
            followers: RefCell::new(Vec::new()),
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
            JobCommand::Follow { revision } => return self.follow(revision).await,
        };
        Response::from_json(&reply)
    }

    async fn alarm(&self) -> Result<Response> {
        let Some(id) = self.state.storage().get::<String>(JOB_ID_KEY).await? else {
            return Response::empty();
        };
        match self.step(&id).await {
            Some(next) => {
                self.state
                    .storage()
                    .set_alarm(next.max(Duration::from_millis(1)))
                    .await?
            }
            // Finished, gone, or given up until a reader schedules it again (which stores the
            // id anew): nothing more will come to the followers, and the object keeps nothing.
            None => {
                self.followers.borrow_mut().clear();
                self.state.storage().delete_all().await?
            }
        }
        Response::empty()
    }
}
