//! The [`JobRunner`] suite: a scheduled job is stepped until a step says it is finished, the
//! first step after its delay and each next one after the wait the step before asked for; a
//! failed step is retried after [`STEP_RETRY`] and the runner gives up after
//! [`MAX_STEP_FAILURES`] in a row; scheduling a job again never runs two of its steps at once;
//! a deleted job stops at its next step; and watching a job follows it to its end, or ends at
//! once where the runner is not stepping it. What each case pins is written in
//! [`JobRunner`]'s docs.
//!
//! The suite drives jobs whose steps it controls: [`ScriptedJobs`], a [`JobSteps`] that keeps
//! a script per job in a [`Storage`] (what each step does: hold for a while or until the suite
//! says so, then ask for a wait, fail, or finish) and logs every step taken into it (start,
//! end, whether another step of the job was running). The runner under test steps them like
//! any job; the suite reads the log. Because all of it is in storage, the runner may step the
//! jobs somewhere else (a Durable Object's alarm), as long as its `ScriptedJobs` reads the
//! same store as the subject's:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::sync::Arc;
//! use flow2api_sdk::conformance::{jobs, Time};
//! use flow2api_sdk::jobs::LocalRunner;
//! use flow2api_sdk::memory::{ManualClock, MemoryStorage};
//! use flow2api_sdk::seams::{BoxFuture, Spawn};
//!
//! /// Runs each task on the test's runtime.
//! struct Tasks;
//! impl Spawn for Tasks {
//!     fn spawn(&self, future: BoxFuture<'static, ()>) {
//!         tokio::spawn(future);
//!     }
//! }
//!
//! let report = jobs::suite(|| async {
//!     let clock = Arc::new(ManualClock::new(1_000_000));
//!     let store = Arc::new(MemoryStorage::new(clock.clone()));
//!     let scripted = jobs::ScriptedJobs::new(store, clock.clone());
//!     let runner = LocalRunner::new(Arc::new(scripted.clone()), Arc::new(Tasks), clock.clone());
//!     jobs::Subject::new(Arc::new(runner), scripted, Time::Manual(clock))
//! })
//! .await;
//! report.assert_passed();
//! # }
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::future::{join_all, select, Either};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::{check, check_eq, yield_now, CaseResult, Report, Time};
use crate::flow::video::VideoInput;
use crate::generate::video::{JobPhase, VideoJob};
use crate::jobs::{
    JobLease, JobRecord, JobRunner, JobStatus, JobSteps, StepOutcome, MAX_STEP_FAILURES, STEP_RETRY,
};
use crate::seams::{boxed, BoxFuture, BoxStream, Bytes, Clock, Expect, Storage, StorageError};

/// The prefix of every scripted job's id (`conformance-job-<16 hex>`).
pub const JOB_ID_PREFIX: &str = "conformance-job-";

/// How long a script is kept in its store.
const SCRIPT_TTL: Duration = Duration::from_secs(3600);
/// How often a step held by the suite looks whether it may go on.
const GATE_POLL: Duration = Duration::from_millis(20);
/// The longest a step waits for the suite to let it go on (a suite that failed never does).
const GATE_MAX: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// Scripted jobs
// ---------------------------------------------------------------------------------------------

/// What a step does before it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Hold {
    /// Nothing.
    No,
    /// Sleeps this many ms.
    Ms(u64),
    /// Waits until the suite releases the job (or for [`GATE_MAX`]).
    Gate,
}

/// How a step answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Then {
    /// A visible change (the revision grows), and the next step after this many ms.
    Wait(u64),
    /// No visible change, and the next step after this many ms.
    Quiet(u64),
    /// A failed step (`Err`).
    Fail,
    /// The job is finished (the revision grows).
    Finish,
}

/// One step of a script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
struct Step {
    hold: Hold,
    then: Then,
}

const fn step(then: Then) -> Step {
    Step {
        hold: Hold::No,
        then,
    }
}

const fn held(hold: Hold, then: Then) -> Step {
    Step { hold, then }
}

/// What a step taken found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum RunKind {
    /// The script's step of this index.
    Scripted(usize),
    /// The job was already finished (a no-op).
    AfterFinish,
    /// The job was deleted.
    Gone,
}

/// One step the runner took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Run {
    start_ms: u64,
    /// `None` while the step runs.
    end_ms: Option<u64>,
    /// Another step of the job was running when this one started.
    overlapped: bool,
    kind: RunKind,
    /// The step answered that the job is gone.
    gone: bool,
}

/// A scripted job as stored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Script {
    steps: Vec<Step>,
    runs: Vec<Run>,
    /// The index of the next scripted step.
    next: usize,
    /// Grows with every visible change; 1 when created.
    revision: u64,
    finished: bool,
    deleted: bool,
    /// Held steps go on.
    released: bool,
}

impl Script {
    fn scripted_runs(&self) -> usize {
        self.runs
            .iter()
            .filter(|r| matches!(r.kind, RunKind::Scripted(_)))
            .count()
    }

    fn running(&self) -> bool {
        self.runs.iter().any(|r| r.end_ms.is_none())
    }

    fn settled(&self) -> bool {
        !self.runs.is_empty() && !self.running()
    }

    fn overlaps(&self) -> usize {
        self.runs.iter().filter(|r| r.overlapped).count()
    }

    /// The log in a line, for failure messages.
    fn summary(&self) -> String {
        let runs: Vec<String> = self
            .runs
            .iter()
            .map(|r| {
                let kind = match r.kind {
                    RunKind::Scripted(i) => format!("#{i}"),
                    RunKind::AfterFinish => "after-finish".to_owned(),
                    RunKind::Gone => "deleted".to_owned(),
                };
                let end = r.end_ms.map_or("running".to_owned(), |e| format!("{e}"));
                let overlapped = if r.overlapped { " OVERLAPPED" } else { "" };
                format!("{kind} {}..{end}{overlapped}", r.start_ms)
            })
            .collect();
        format!(
            "finished={} revision={} runs=[{}]",
            self.finished,
            self.revision,
            runs.join(", ")
        )
    }
}

/// Jobs whose steps a script decides, for the job runner suite: a [`JobSteps`] to give the
/// runner under test. Each job's script and the log of the steps taken live in `store` (one
/// key per job, written with conditional writes), so the runner may step them in another
/// process or invocation over the same store.
#[derive(Clone)]
pub struct ScriptedJobs {
    store: Arc<dyn Storage>,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for ScriptedJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptedJobs").finish_non_exhaustive()
    }
}

fn key(id: &str) -> String {
    format!("conformance-jobs/{id}")
}

fn encode(script: &Script) -> Result<Bytes, StorageError> {
    serde_json::to_vec(script)
        .map(Bytes::from)
        .map_err(|e| StorageError(format!("encoding a script: {e}")))
}

fn decode(bytes: &[u8]) -> Result<Script, StorageError> {
    serde_json::from_slice(bytes).map_err(|e| StorageError(format!("reading a script: {e}")))
}

/// The record a scripted step answers with (a video job's shape, nothing in it).
fn record(id: &str, revision: u64, status: JobStatus) -> JobRecord {
    let done = status.is_terminal();
    JobRecord {
        id: id.to_owned(),
        model: "conformance".to_owned(),
        model_id: "conformance".to_owned(),
        prompt: String::new(),
        seconds: 0,
        portrait: false,
        created_at_ms: 0,
        completed_at_ms: None,
        status,
        progress: if done { 100 } else { 0 },
        failure: None,
        url: None,
        log: Vec::new(),
        log_dropped: 0,
        revision,
        lease: JobLease {
            account_id: String::new(),
            lease_id: None,
            project_id: String::new(),
        },
        media_base: String::new(),
        next_at_ms: 0,
        video: VideoJob {
            model: "conformance".to_owned(),
            prompt: String::new(),
            key: String::new(),
            aspect: String::new(),
            input: VideoInput::Text,
            upsample: None,
            url: None,
            progress: 0,
            phase: JobPhase::Submit { upscaling: false },
            media_id: None,
        },
        deleted_at_ms: None,
        owner: None,
        tenant_lease: None,
    }
}

impl ScriptedJobs {
    /// Scripted jobs kept in `store`, which must be strongly consistent with conditional
    /// writes (memory, SQLite, the Durable Object store); step times are read from `clock`,
    /// and held steps sleep on it.
    pub fn new(store: Arc<dyn Storage>, clock: Arc<dyn Clock>) -> Self {
        Self { store, clock }
    }

    /// Whether `id` names a scripted job (for a host that steps other jobs too).
    pub fn owns(id: &str) -> bool {
        id.starts_with(JOB_ID_PREFIX)
    }

    async fn read(&self, id: &str) -> Result<Option<Script>, StorageError> {
        match self.store.get(&key(id)).await? {
            Some(bytes) => decode(&bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Changes a job's script atomically; `None` when there is no such job.
    async fn update(
        &self,
        id: &str,
        mut change: impl FnMut(&mut Script),
    ) -> Result<Option<Script>, StorageError> {
        let k = key(id);
        for _ in 0..100 {
            let Some(read) = self.store.get(&k).await? else {
                return Ok(None);
            };
            let mut script = decode(&read)?;
            change(&mut script);
            let written = self
                .store
                .put_if(&k, encode(&script)?, Some(SCRIPT_TTL), Expect::Value(read))
                .await?;
            if written {
                return Ok(Some(script));
            }
        }
        Err(StorageError(format!(
            "scripted job {id}: 100 conflicting updates in a row"
        )))
    }

    async fn create(&self, steps: Vec<Step>) -> Result<String, StorageError> {
        let id = format!("{JOB_ID_PREFIX}{}", crate::util::random_hex(8));
        let script = Script {
            steps,
            revision: 1,
            ..Script::default()
        };
        self.store
            .put(&key(&id), encode(&script)?, Some(SCRIPT_TTL))
            .await?;
        Ok(id)
    }

    /// Holds a step until the job is released (or deleted, or [`GATE_MAX`] has passed).
    async fn gate(&self, id: &str) -> Result<(), StorageError> {
        let give_up = self.clock.now_ms() + GATE_MAX.as_millis() as u64;
        loop {
            match self.read(id).await? {
                Some(s) if !s.released && self.clock.now_ms() < give_up => {}
                _ => return Ok(()),
            }
            self.clock.sleep(GATE_POLL).await;
            yield_now().await;
        }
    }

    async fn take_step(&self, id: &str) -> Result<StepOutcome, StorageError> {
        // A real step awaits I/O before anything else: so does this one, so that on a
        // single-threaded executor with instant sleeps other tasks still get to run.
        yield_now().await;
        let start_ms = self.clock.now_ms();
        let started = self
            .update(id, |s| {
                let kind = if s.deleted {
                    RunKind::Gone
                } else if s.finished {
                    RunKind::AfterFinish
                } else {
                    RunKind::Scripted(s.next)
                };
                let overlapped = s.running();
                s.runs.push(Run {
                    start_ms,
                    end_ms: None,
                    overlapped,
                    kind,
                    gone: kind == RunKind::Gone,
                });
                if let RunKind::Scripted(_) = kind {
                    s.next += 1;
                }
            })
            .await?;
        let gone = StepOutcome {
            next: None,
            record: None,
        };
        let Some(started) = started else {
            return Ok(gone);
        };
        // This step's entry is the last one of the log it wrote.
        let run = started.runs.len() - 1;
        let kind = started.runs[run].kind;
        let plan = match kind {
            RunKind::Scripted(i) => started.steps.get(i).copied().unwrap_or(step(Then::Finish)),
            RunKind::AfterFinish | RunKind::Gone => step(Then::Quiet(0)),
        };
        match plan.hold {
            Hold::No => {}
            Hold::Ms(ms) => self.clock.sleep(Duration::from_millis(ms)).await,
            Hold::Gate => self.gate(id).await?,
        }
        let end_ms = self.clock.now_ms();
        let ended = self
            .update(id, |s| {
                let deleted = s.deleted;
                let scripted = matches!(kind, RunKind::Scripted(_));
                if scripted && !deleted {
                    match plan.then {
                        Then::Wait(_) => s.revision += 1,
                        Then::Finish => {
                            s.revision += 1;
                            s.finished = true;
                        }
                        Then::Quiet(_) | Then::Fail => {}
                    }
                }
                if let Some(r) = s.runs.get_mut(run) {
                    r.end_ms = Some(end_ms);
                    r.gone = kind == RunKind::Gone || (scripted && deleted);
                }
            })
            .await?;
        let Some(ended) = ended else {
            return Ok(gone);
        };
        if ended.runs.get(run).is_some_and(|r| r.gone) {
            return Ok(gone);
        }
        let ms = Duration::from_millis;
        match (kind, plan.then) {
            (RunKind::AfterFinish, _) | (_, Then::Finish) => Ok(StepOutcome {
                next: None,
                record: Some(record(id, ended.revision, JobStatus::Completed)),
            }),
            (_, Then::Wait(wait) | Then::Quiet(wait)) => Ok(StepOutcome {
                next: Some(ms(wait)),
                record: Some(record(id, ended.revision, JobStatus::InProgress)),
            }),
            (_, Then::Fail) => Err(StorageError(format!(
                "scripted failure of step {run} of {id}"
            ))),
        }
    }
}

impl JobSteps for ScriptedJobs {
    fn step<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<StepOutcome, StorageError>> {
        boxed(self.take_step(id))
    }
}

// ---------------------------------------------------------------------------------------------
// The suite
// ---------------------------------------------------------------------------------------------

/// A runner under test, the scripted jobs it steps, and how time passes for it.
#[derive(Clone)]
pub struct Subject {
    /// The runner, stepping `jobs` (every id of [`ScriptedJobs::owns`]).
    pub runner: Arc<dyn JobRunner>,
    /// The scripted jobs, over the store the runner's steps use.
    pub jobs: ScriptedJobs,
    /// Its time: the clock the runner waits on and the scripted jobs read.
    pub time: Time,
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subject")
            .field("time", &self.time)
            .finish_non_exhaustive()
    }
}

impl Subject {
    /// `runner`, stepping `jobs`, with `time`.
    pub fn new(runner: Arc<dyn JobRunner>, jobs: ScriptedJobs, time: Time) -> Self {
        Self { runner, jobs, time }
    }

    async fn create(&self, steps: Vec<Step>) -> Result<String, String> {
        self.jobs
            .create(steps)
            .await
            .map_err(|e| format!("creating a scripted job: {e}"))
    }

    async fn script(&self, id: &str) -> Result<Script, String> {
        match self.jobs.read(id).await {
            Ok(Some(s)) => Ok(s),
            Ok(None) => Err(format!("the script of {id} is gone")),
            Err(e) => Err(format!("reading the script of {id}: {e}")),
        }
    }

    async fn change(&self, id: &str, change: impl FnMut(&mut Script)) -> Result<(), String> {
        match self.jobs.update(id, change).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(format!("the script of {id} is gone")),
            Err(e) => Err(format!("changing the script of {id}: {e}")),
        }
    }

    async fn schedule(&self, id: &str, delay: Duration) -> Result<(), String> {
        self.runner
            .schedule(id, delay)
            .await
            .map_err(|e| format!("schedule: {e}"))
    }

    /// Runs `body`, then lets the job's held steps go on whatever `body` did (a held step of a
    /// failed case would otherwise wait for [`GATE_MAX`]).
    async fn releasing<T>(
        &self,
        id: &str,
        body: impl Future<Output = Result<T, String>>,
    ) -> Result<T, String> {
        let result = body.await;
        let released = self.change(id, |s| s.released = true).await;
        let value = result?;
        released.map(|()| value)
    }

    /// Schedules the job `n` times at once.
    async fn schedule_many(&self, id: &str, n: usize) -> Result<(), String> {
        join_all((0..n).map(|_| self.schedule(id, Duration::ZERO)))
            .await
            .into_iter()
            .collect()
    }

    /// How often the suite looks: often with a manual clock (looking is free), every 50 ms
    /// otherwise (each look may be a round trip).
    fn poll(&self) -> Duration {
        Duration::from_millis(if self.time.is_manual() { 10 } else { 50 })
    }

    /// Tolerance for times read in two places (a real clock's milliseconds).
    fn slack_ms(&self) -> u64 {
        if self.time.is_manual() {
            0
        } else {
            5
        }
    }

    /// Lets about `d` pass, looking away (with a manual clock, other tasks get to run).
    async fn pass(&self, d: Duration) {
        let poll = self.poll();
        for _ in 0..(d.as_millis() / poll.as_millis()).max(1) {
            self.time.pass(poll).await;
            yield_now().await;
        }
    }

    /// Reads the job's log until `done` holds, for about `within` of the subject's time.
    async fn wait_until(
        &self,
        id: &str,
        within: Duration,
        what: &str,
        done: impl Fn(&Script) -> bool,
    ) -> Result<Script, String> {
        let poll = self.poll();
        let mut script = self.script(id).await?;
        for _ in 0..(within.as_millis() / poll.as_millis()).max(1) {
            if done(&script) {
                return Ok(script);
            }
            self.time.pass(poll).await;
            yield_now().await;
            script = self.script(id).await?;
        }
        if done(&script) {
            return Ok(script);
        }
        Err(format!(
            "{what}: not within {within:?}; {}",
            script.summary()
        ))
    }

    /// Every record of `stream` until it ends, which it must within `within`.
    async fn collect(
        &self,
        mut stream: BoxStream<'static, JobRecord>,
        within: Duration,
        what: &str,
    ) -> Result<Vec<JobRecord>, String> {
        let mut records = Vec::new();
        let deadline = self.pass(within);
        futures::pin_mut!(deadline);
        loop {
            match select(stream.next(), deadline.as_mut()).await {
                Either::Left((Some(record), _)) => records.push(record),
                Either::Left((None, _)) => return Ok(records),
                Either::Right(((), _)) => {
                    let revisions: Vec<u64> = records.iter().map(|r| r.revision).collect();
                    return Err(format!(
                        "{what}: the stream did not end within {within:?} \
                         (records of revisions {revisions:?})"
                    ));
                }
            }
        }
    }
}

/// Every case, by name, in the order [`suite`] runs them.
pub const CASES: &[&str] = &[
    "steps_until_finished",
    "first_step_after_its_delay",
    "waits_between_steps",
    "step_errors_are_retried",
    "gives_up_after_repeated_errors",
    "scheduling_again_never_overlaps",
    "deleted_job_stops",
    "watch_follows_to_the_end",
    "watch_ends_when_not_running",
];

/// How long the suite waits for something a runner should do soon (generous: a loaded
/// machine, real time).
const DEADLINE: Duration = Duration::from_secs(20);
/// How long the suite watches for steps that should not come.
const SETTLE: Duration = Duration::from_millis(500);
/// The delay and waits whose lower bounds the suite checks.
const DELAY_MS: u64 = 400;

/// Runs every case against a fresh subject from `factory` and reports each.
pub async fn suite<F, Fut>(factory: F) -> Report
where
    F: Fn() -> Fut,
    Fut: Future<Output = Subject>,
{
    super::run(CASES, |name| {
        let subject = factory();
        async move { case(name, &subject.await).await }
    })
    .await
}

/// Runs the case `name` of [`CASES`] on fresh scripted jobs (an unknown name fails).
///
/// # Errors
/// The failed check's message.
pub async fn case(name: &str, s: &Subject) -> CaseResult {
    match name {
        "steps_until_finished" => steps_until_finished(s).await.map(|()| None),
        "first_step_after_its_delay" => first_step_after_its_delay(s).await.map(|()| None),
        "waits_between_steps" => waits_between_steps(s).await.map(|()| None),
        "step_errors_are_retried" => step_errors_are_retried(s).await.map(|()| None),
        "gives_up_after_repeated_errors" => gives_up_after_repeated_errors(s).await,
        "scheduling_again_never_overlaps" => {
            scheduling_again_never_overlaps(s).await.map(|()| None)
        }
        "deleted_job_stops" => deleted_job_stops(s).await.map(|()| None),
        "watch_follows_to_the_end" => watch_follows_to_the_end(s).await.map(|()| None),
        "watch_ends_when_not_running" => watch_ends_when_not_running(s).await.map(|()| None),
        other => Err(format!("no job runner case named {other:?}")),
    }
}

fn finished(s: &Script) -> bool {
    s.finished && s.settled()
}

fn no_overlap(script: &Script) -> Result<(), String> {
    check(script.overlaps() == 0, || {
        format!("two steps of one job ran at once: {}", script.summary())
    })
}

/// A job of visible, quiet and immediate steps runs to its end, and no step comes after it.
async fn steps_until_finished(s: &Subject) -> Result<(), String> {
    let steps = vec![
        step(Then::Wait(0)),
        step(Then::Wait(20)),
        step(Then::Quiet(20)),
        step(Then::Wait(0)),
        step(Then::Finish),
    ];
    let n = steps.len();
    let id = s.create(steps).await?;
    s.schedule(&id, Duration::ZERO).await?;
    s.wait_until(&id, DEADLINE, "the job finishing", finished)
        .await?;
    s.pass(SETTLE).await;
    let script = s.script(&id).await?;
    check_eq(script.runs.len(), n, "steps taken (none after the last)")?;
    check_eq(script.scripted_runs(), n, "scripted steps taken")?;
    check_eq(
        script.revision,
        5,
        "the revision after four visible changes",
    )?;
    no_overlap(&script)
}

/// The first step comes no sooner than the delay it was scheduled with.
async fn first_step_after_its_delay(s: &Subject) -> Result<(), String> {
    let id = s.create(vec![step(Then::Finish)]).await?;
    let scheduled_at = s.time.now_ms();
    s.schedule(&id, Duration::from_millis(DELAY_MS)).await?;
    let script = s
        .wait_until(&id, DEADLINE, "the first step", |s| !s.runs.is_empty())
        .await?;
    let start = script.runs[0].start_ms;
    check(start + s.slack_ms() >= scheduled_at + DELAY_MS, || {
        format!(
            "the first step started {} ms after schedule(delay = {DELAY_MS} ms)",
            start.saturating_sub(scheduled_at)
        )
    })?;
    s.wait_until(&id, DEADLINE, "the job finishing", finished)
        .await
        .map(|_| ())
}

/// Each step comes no sooner than the wait the step before asked for, visible or not.
async fn waits_between_steps(s: &Subject) -> Result<(), String> {
    let steps = vec![
        step(Then::Wait(DELAY_MS)),
        step(Then::Quiet(DELAY_MS)),
        step(Then::Finish),
    ];
    let id = s.create(steps).await?;
    s.schedule(&id, Duration::ZERO).await?;
    let script = s
        .wait_until(&id, DEADLINE, "the job finishing", finished)
        .await?;
    check_eq(script.runs.len(), 3, "steps taken")?;
    for pair in script.runs.windows(2) {
        let (before, after) = (&pair[0], &pair[1]);
        let end = before.end_ms.unwrap_or(u64::MAX);
        check(after.start_ms + s.slack_ms() >= end + DELAY_MS, || {
            format!(
                "a step started {} ms after the one before ended, which asked for {DELAY_MS} ms: {}",
                after.start_ms as i64 - end as i64,
                script.summary()
            )
        })?;
    }
    no_overlap(&script)
}

/// A failed step is taken again, [`STEP_RETRY`] later.
async fn step_errors_are_retried(s: &Subject) -> Result<(), String> {
    let id = s.create(vec![step(Then::Fail), step(Then::Finish)]).await?;
    s.schedule(&id, Duration::ZERO).await?;
    let script = s
        .wait_until(&id, STEP_RETRY + DEADLINE, "the retried step", finished)
        .await?;
    check_eq(script.runs.len(), 2, "steps taken")?;
    let end = script.runs[0].end_ms.unwrap_or(u64::MAX);
    let retry = STEP_RETRY.as_millis() as u64;
    check(
        script.runs[1].start_ms + s.slack_ms() >= end + retry,
        || {
            format!(
                "the failed step was retried after {} ms, not {retry} ms",
                script.runs[1].start_ms as i64 - end as i64
            )
        },
    )
}

/// After [`MAX_STEP_FAILURES`] failed steps in a row the runner stops, until the job is
/// scheduled again; a success in between resets the count.
async fn gives_up_after_repeated_errors(s: &Subject) -> CaseResult {
    if !s.time.is_manual() {
        return Ok(Some(format!(
            "waits {MAX_STEP_FAILURES} × {STEP_RETRY:?} of real time; checked with a manual clock"
        )));
    }
    let max = MAX_STEP_FAILURES as usize;
    let long = STEP_RETRY * (2 * MAX_STEP_FAILURES + 2) + DEADLINE;
    // One short of the limit, a success, one short again: the job finishes.
    let mut steps = vec![step(Then::Fail); max - 1];
    steps.push(step(Then::Wait(0)));
    steps.extend(vec![step(Then::Fail); max - 1]);
    steps.push(step(Then::Finish));
    let id = s.create(steps).await?;
    s.schedule(&id, Duration::ZERO).await?;
    let script = s
        .wait_until(
            &id,
            long,
            "a job whose failures are never 10 in a row",
            finished,
        )
        .await?;
    check_eq(script.runs.len(), 2 * max, "steps taken")?;
    // The limit: the runner stops, and a new schedule resumes the job.
    let mut steps = vec![step(Then::Fail); max];
    steps.push(step(Then::Finish));
    let id = s.create(steps).await?;
    s.schedule(&id, Duration::ZERO).await?;
    s.wait_until(&id, long, "the failing steps", |s| {
        s.runs.len() >= max && s.settled()
    })
    .await?;
    s.pass(STEP_RETRY * 3).await;
    let script = s.script(&id).await?;
    check_eq(
        script.runs.len(),
        max,
        "steps taken after the runner should have given up",
    )?;
    s.schedule(&id, Duration::ZERO).await?;
    let script = s
        .wait_until(&id, DEADLINE, "the job scheduled again", finished)
        .await?;
    check_eq(script.runs.len(), max + 1, "steps taken")?;
    no_overlap(&script).map(|()| None)
}

/// Scheduling a job again and again, before and while a step runs, never runs two of its
/// steps at once, and the job still runs to its end.
async fn scheduling_again_never_overlaps(s: &Subject) -> Result<(), String> {
    let steps = vec![
        held(Hold::Gate, Then::Wait(50)),
        held(Hold::Ms(200), Then::Wait(50)),
        step(Then::Finish),
    ];
    let id = s.create(steps).await?;
    s.releasing(&id, async {
        s.schedule_many(&id, 3).await?;
        s.wait_until(&id, DEADLINE, "the first step", Script::running)
            .await?;
        // The first step is held: schedule while it runs.
        s.schedule_many(&id, 3).await
    })
    .await?;
    s.wait_until(&id, DEADLINE, "the second step", |s| s.runs.len() >= 2)
        .await?;
    s.schedule_many(&id, 2).await?;
    s.wait_until(&id, DEADLINE, "the job finishing", finished)
        .await?;
    s.pass(SETTLE).await;
    let script = s
        .wait_until(&id, DEADLINE, "extra steps ending", Script::settled)
        .await?;
    check_eq(script.scripted_runs(), 3, "scripted steps taken")?;
    check(
        script
            .runs
            .iter()
            .all(|r| matches!(r.kind, RunKind::Scripted(_) | RunKind::AfterFinish)),
        || format!("unexpected steps: {}", script.summary()),
    )?;
    no_overlap(&script)
}

/// A job deleted while it runs stops at its next step (the one that finds it gone), and a
/// watch of it ends.
async fn deleted_job_stops(s: &Subject) -> Result<(), String> {
    let mut steps = vec![held(Hold::Gate, Then::Wait(20))];
    steps.extend(vec![step(Then::Wait(20)); 200]);
    let id = s.create(steps).await?;
    let watch = s
        .releasing(&id, async {
            s.schedule(&id, Duration::ZERO).await?;
            s.wait_until(&id, DEADLINE, "the first step", Script::running)
                .await?;
            // The first step is held: watch, and delete the job while it runs.
            let watch = s.runner.watch(&id, 0).await;
            s.change(&id, |s| s.deleted = true).await?;
            Ok(watch)
        })
        .await?;
    let script = s
        .wait_until(&id, DEADLINE, "a step finding the job gone", |s| {
            s.runs.iter().any(|r| r.gone) && s.settled()
        })
        .await?;
    s.pass(SETTLE).await;
    let records = s
        .collect(watch, DEADLINE, "a watch of the deleted job")
        .await?;
    let after = s.script(&id).await?;
    check_eq(
        after.runs.len(),
        script.runs.len(),
        "steps taken after one found the job gone",
    )?;
    check(records.iter().all(|r| !r.status.is_terminal()), || {
        "a watch of a deleted job said it finished".to_owned()
    })?;
    no_overlap(&after)
}

/// A watch that starts while the job runs gets every visible change from then on, in order,
/// and ends after the one that finishes the job.
async fn watch_follows_to_the_end(s: &Subject) -> Result<(), String> {
    let steps = vec![
        held(Hold::Gate, Then::Wait(20)),
        step(Then::Quiet(20)),
        step(Then::Wait(20)),
        step(Then::Wait(20)),
        step(Then::Finish),
    ];
    let id = s.create(steps).await?;
    let watch = s
        .releasing(&id, async {
            s.schedule(&id, Duration::ZERO).await?;
            s.wait_until(&id, DEADLINE, "the first step", Script::running)
                .await?;
            // The first step is held: watch while it runs.
            Ok(s.runner.watch(&id, 0).await)
        })
        .await?;
    let records = s
        .collect(watch, DEADLINE, "a watch of a running job")
        .await?;
    let revisions: Vec<u64> = records.iter().map(|r| r.revision).collect();
    // Created at 1; the held step was running when the watch started, so nothing was
    // published yet: its change (2) is the first, the quiet step sends nothing.
    check_eq(revisions, vec![2, 3, 4, 5], "revisions watched")?;
    let last = records.last().map(|r| r.status);
    check_eq(last, Some(JobStatus::Completed), "the last record's status")?;
    check(
        records[..records.len() - 1]
            .iter()
            .all(|r| !r.status.is_terminal()),
        || "a record before the last one is terminal".to_owned(),
    )
}

/// Watching a job the runner is not stepping ends at once: one never scheduled, one finished.
async fn watch_ends_when_not_running(s: &Subject) -> Result<(), String> {
    let never = s.create(vec![step(Then::Finish)]).await?;
    let records = s
        .collect(
            s.runner.watch(&never, 0).await,
            DEADLINE,
            "a watch of a job never scheduled",
        )
        .await?;
    check_eq(records.len(), 0, "records of a job never scheduled")?;
    let id = s
        .create(vec![step(Then::Wait(0)), step(Then::Finish)])
        .await?;
    s.schedule(&id, Duration::ZERO).await?;
    let script = s
        .wait_until(&id, DEADLINE, "the job finishing", finished)
        .await?;
    // Let the runner finish its own work after the last step.
    s.pass(SETTLE).await;
    let records = s
        .collect(
            s.runner.watch(&id, script.revision).await,
            DEADLINE,
            "a watch of a finished job, up to date",
        )
        .await?;
    check_eq(records.len(), 0, "records past the last revision")?;
    let records = s
        .collect(
            s.runner.watch(&id, 0).await,
            DEADLINE,
            "a watch of a finished job, from the start",
        )
        .await?;
    // The runner may still know the last record, or not at all.
    check(
        records.len() <= 1
            && records
                .iter()
                .all(|r| r.revision == script.revision && r.status.is_terminal()),
        || {
            let revisions: Vec<u64> = records.iter().map(|r| r.revision).collect();
            format!("a watch of a finished job sent the revisions {revisions:?}")
        },
    )
}
