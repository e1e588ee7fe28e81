//! Durable video jobs. A job is a record in storage, not a connection: the request that
//! creates it takes a video slot on an account, uploads the images and stores a [`JobRecord`];
//! from then on a driver — a Durable Object alarm at the edge, a background task natively —
//! calls [`Jobs::step`] once per step (submit, one poll, resolve…) until the record says it is
//! finished. Clients read the record (OpenAI Videos, Gemini operations) or follow it (a chat
//! completion stream), and a client that goes away loses nothing.

mod failure;
mod follow;
mod listing;
mod local;
mod record;
mod shards;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use crate::flow::Blame;
use crate::generate::video::{JobContext, PollSettings, VideoRequest};
use crate::generate::{Generator, Progress};
use crate::pool::{AccountCommand, AccountPool};
use crate::seams::{
    BoxFuture, BoxStream, Bytes, Clock, Consistency, Expect, MaybeSend, MaybeSync, SlotKind,
    Storage, StorageError,
};
use crate::tenants::{Admitted, Outcome, Tenants};
use crate::util;

pub use failure::{FailureKind, JobError, JobFailure};

/// Told when a job ends (the API layer writes its request log row). Best effort: it
/// swallows its own failures.
pub trait JobEnd: crate::seams::MaybeSend + crate::seams::MaybeSync {
    /// `job` has just completed or failed.
    fn ended<'a>(&'a self, job: &'a JobRecord) -> crate::seams::BoxFuture<'a, ()>;
}
pub use listing::{JobPage, Order};
pub use local::LocalRunner;
pub use record::{JobLease, JobRecord, JobStatus};

/// How long a driver waits before retrying a step that failed on storage.
pub const STEP_RETRY: Duration = Duration::from_secs(5);
/// Consecutive failed steps after which a driver stops; the next read of the job (which
/// finds it overdue) schedules it again.
pub const MAX_STEP_FAILURES: u32 = 10;

/// When a driver should retry after its `failures`-th failed step in a row; `None`: stop.
pub fn retry_after_failures(failures: u32) -> Option<Duration> {
    (failures < MAX_STEP_FAILURES).then_some(STEP_RETRY)
}

/// Most progress lines a record keeps (the newest).
const MAX_LOG_LINES: usize = 200;

/// Takes one step of a job: what a [`JobRunner`] calls, with the job's id, until the outcome's
/// `next` is `None`. [`Jobs`] is the one that steps video jobs; the job runner conformance
/// suite (`conformance::jobs`) brings scripted jobs of its own.
///
/// Stepping a job that is finished or gone must be harmless (an outcome with `next: None`),
/// since a runner may take an extra step when a job is scheduled again.
pub trait JobSteps: MaybeSend + MaybeSync {
    /// One step of the job `id`.
    ///
    /// # Errors
    /// A failure the runner retries after [`STEP_RETRY`].
    fn step<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<StepOutcome, StorageError>>;
}

impl JobSteps for Jobs {
    fn step<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<StepOutcome, StorageError>> {
        crate::seams::boxed(Jobs::step(self, id))
    }
}

/// Runs job steps beyond the request that created the job: the in-process [`LocalRunner`]
/// natively, one Durable Object per job with alarms at the edge.
///
/// What every runner guarantees (the job runner conformance suite, `conformance::jobs`, checks
/// each point on every implementation):
///
/// - After [`schedule`](JobRunner::schedule)`(id, delay)` the job's steps ([`JobSteps::step`])
///   run one after another: the first no sooner than `delay` later, each next one no sooner
///   than the wait the step before it asked for (`next: Some(ZERO)`: at once), until a step
///   answers `next: None` (the job finished, or is gone: a deleted job's next step says so).
///   Then no more steps.
/// - A step that fails is taken again [`STEP_RETRY`] later; after [`MAX_STEP_FAILURES`]
///   failures in a row the runner stops (a reader that finds the job overdue schedules it
///   again). A success resets the count.
/// - Two steps of one job never overlap, however often it is scheduled. Scheduling a job that
///   is already scheduled or running is harmless: its next step comes after the new delay or
///   after the wait its last step asked for (the runner's choice), it may cost one extra step
///   (of a finished job, a no-op), and a schedule that arrives during the job's last step may
///   be absorbed by it.
pub trait JobRunner: MaybeSend + MaybeSync {
    /// Arranges for the job's steps to run, the first after `delay` (see the trait's
    /// guarantees). Scheduling a job that is already scheduled or running is harmless.
    fn schedule<'a>(
        &'a self,
        id: &'a str,
        delay: Duration,
    ) -> BoxFuture<'a, Result<(), StorageError>>;

    /// The job's record each time a step changes what a client sees (its revision grows)
    /// past `revision`, in order, ending after the record that finishes the job. A watch that
    /// starts while the runner is stepping the job gets every such change from then on, the
    /// newest one first when the follower has not seen it. The stream ends at once, or early,
    /// when the runner is not stepping the job (never scheduled, finished, gone, given up, or
    /// lost track of it in a restart): the follower then reads the record from storage and
    /// watches again. At the edge this is one subrequest for the whole job, however long it
    /// runs.
    fn watch<'a>(
        &'a self,
        id: &'a str,
        revision: u64,
    ) -> BoxFuture<'a, BoxStream<'static, JobRecord>>;
}

/// What creating a job needs besides the account.
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The generation.
    pub request: VideoRequest,
    /// The model name the client asked for (echoed back).
    pub requested_model: String,
    /// Base URL for `/media/{id}` links (fallback video bytes).
    pub media_base: String,
    /// The client's `Idempotency-Key` and a digest of its request body.
    pub idempotency: Option<(String, String)>,
    /// The tenant's admission, for a job a tenant's key asks for (`None`: the root key). The
    /// job then belongs to that tenant, and its idempotency keys are the tenant's own.
    pub tenant: Option<Admitted>,
}

/// The outcome of one [`Jobs::step`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepOutcome {
    /// When to take the next step; `None` when the job is finished (or gone).
    pub next: Option<Duration>,
    /// The record as the step left it; `None` when the job is gone.
    pub record: Option<JobRecord>,
}

impl StepOutcome {
    fn gone() -> Self {
        Self {
            next: None,
            record: None,
        }
    }

    /// The record's revision after the step (0 when the job is gone).
    pub fn revision(&self) -> u64 {
        self.record.as_ref().map_or(0, |r| r.revision)
    }
}

/// The job store and the step function.
#[derive(Clone)]
pub struct Jobs {
    store: Arc<dyn Storage>,
    pool: AccountPool,
    generator: Generator,
    clock: Arc<dyn Clock>,
    poll: PollSettings,
    lease: Duration,
    ttl: Duration,
    tenants: Option<Tenants>,
    /// Told of every job's end (the request log).
    on_end: Option<Arc<dyn JobEnd>>,
    /// Where the records are ([`shards`]).
    records: shards::RecordStores,
    /// The listing index was seen built ([`listing`]).
    listing_built: Arc<AtomicBool>,
}

impl std::fmt::Debug for Jobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Jobs")
            .field("poll", &self.poll)
            .finish_non_exhaustive()
    }
}

fn encode<T: serde::Serialize>(value: &T) -> Result<Bytes, StorageError> {
    serde_json::to_vec(value)
        .map(Bytes::from)
        .map_err(|e| StorageError(format!("encoding a job: {e}")))
}

/// Where records are, under their id.
const RECORD_PREFIX: &str = "video/";

fn key(id: &str) -> String {
    format!("{RECORD_PREFIX}{id}")
}

/// An `Idempotency-Key`'s entry: the root key's as before tenants, a tenant's hashed with its
/// id, so that one tenant's keys never meet another's.
fn idempotency_key(owner: Option<&str>, k: &str) -> String {
    match owner {
        None => format!("idem/{}", util::hex(&sha256(k.as_bytes()))),
        Some(o) => format!(
            "idem/{}",
            util::hex(&sha256(format!("{o}\n{k}").as_bytes()))
        ),
    }
}

/// Whether `key` is one the jobs write to their store (a job record, an idempotency entry or
/// a listing key), for a host that sorts keys of a store shared in the past.
pub fn is_job_key(key: &str) -> bool {
    ["video/", "idem/", "own/", "ownd/", "list/", "list:"]
        .iter()
        .any(|p| key.starts_with(p))
}

/// SHA-256 of `bytes` (request digests for `Idempotency-Key`).
pub(crate) fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

/// Whether `id` can be a job id (so that a route never builds a storage key from junk).
pub(crate) fn is_job_id(id: &str) -> bool {
    id.strip_prefix("video_").is_some_and(|rest| {
        !rest.is_empty() && rest.len() <= 64 && rest.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

impl Jobs {
    /// The jobs over `store`, stepping with `generator` on accounts of `pool`. `lease` is the
    /// video slot's lease, renewed at every step; records live `ttl` after their last change.
    ///
    /// `store` must be strongly consistent ([`Consistency::Strong`]): a step reads what the
    /// last one wrote. Conditional writes, where it has them, make a step's write-back and
    /// `Idempotency-Key` claims atomic.
    ///
    /// # Panics
    /// In debug builds, when `store` says it is only eventually consistent.
    pub fn new(
        store: Arc<dyn Storage>,
        pool: AccountPool,
        generator: Generator,
        clock: Arc<dyn Clock>,
        poll: PollSettings,
        ttl: Duration,
    ) -> Self {
        debug_assert_eq!(
            store.capabilities().consistency,
            Consistency::Strong,
            "the job store must be strongly consistent"
        );
        let lease = pool.settings().video_lease;
        Self {
            records: shards::RecordStores::new(store.clone()),
            store,
            pool,
            generator,
            clock,
            poll,
            lease,
            ttl,
            tenants: None,
            on_end: None,
            listing_built: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The same jobs with their records spread over `shards` (each strongly consistent, like
    /// the job store) by a hash of the job id, so that no single store takes every job's
    /// steps; the job store keeps the listing keys and `Idempotency-Key` entries. Records
    /// from before are moved into their shards once. The shards must stay the same, in the
    /// same order, for as long as records live (`JOB_TTL`).
    #[must_use]
    pub fn with_record_shards(mut self, shards: Vec<Arc<dyn Storage>>) -> Self {
        debug_assert!(shards
            .iter()
            .all(|s| s.capabilities().consistency == Consistency::Strong));
        self.records = self.records.with_shards(shards);
        self
    }

    /// The same jobs, reporting the start and end of tenants' jobs to `tenants` (their
    /// concurrency leases and usage counts).
    #[must_use]
    pub fn with_tenants(mut self, tenants: Tenants) -> Self {
        self.tenants = Some(tenants);
        self
    }

    /// The same jobs, telling `hook` of each job's end (completed or failed), once, from the
    /// step that ends it.
    #[must_use]
    pub fn with_end_hook(mut self, hook: Arc<dyn JobEnd>) -> Self {
        self.on_end = Some(hook);
        self
    }

    /// Ends a tenant's admission (none for the root key's jobs). A failure only leaves the
    /// lease to lapse.
    async fn end_tenant(&self, admitted: Option<&Admitted>, outcome: Outcome) {
        if let (Some(t), Some(a)) = (&self.tenants, admitted) {
            let _ = t.finish(a, outcome).await;
        }
    }

    /// Reads a job; a deleted one (a tombstone still running upstream) reads as absent.
    ///
    /// # Errors
    /// Storage failures; an unreadable record reads as absent.
    pub async fn get(&self, id: &str) -> Result<Option<JobRecord>, StorageError> {
        Ok(self.get_stored(id).await?.filter(|r| !r.is_deleted()))
    }

    /// Reads a job as stored, tombstones included.
    pub(crate) async fn get_stored(&self, id: &str) -> Result<Option<JobRecord>, StorageError> {
        Ok(self.get_raw(id).await?.map(|(record, _)| record))
    }

    /// A job with the bytes it was read from (for a conditional write back).
    async fn get_raw(&self, id: &str) -> Result<Option<(JobRecord, Bytes)>, StorageError> {
        if !is_job_id(id) {
            return Ok(None);
        }
        let k = key(id);
        let mut found = self.records.of(id).get(&k).await?;
        let mut moved = false;
        if found.is_none() && self.records.is_sharded() && !self.listing_ready().await? {
            // Perhaps a record from before the shards, not moved (nor listed) yet.
            found = self.records.move_to_shard(id, &k, Some(self.ttl)).await?;
            moved = found.is_some();
        }
        let Some(bytes) = found else {
            return Ok(None);
        };
        let record: Option<JobRecord> = serde_json::from_slice(&bytes).ok();
        if let Some(r) = record.as_ref().filter(|r| moved && !r.is_deleted()) {
            self.index(r).await?;
        }
        Ok(record.map(|r| (r, bytes)))
    }

    async fn put(&self, record: &JobRecord) -> Result<(), StorageError> {
        self.records
            .of(&record.id)
            .put(&key(&record.id), encode(record)?, Some(self.ttl))
            .await
    }

    /// Writes a record back only if it still holds `read` (what the step started from), so
    /// that a job deleted (or stepped by another driver) meanwhile is not overwritten.
    /// Without conditional writes, a plain read first (not atomic, but the store is strongly
    /// consistent: [`Jobs::new`] asks for that).
    async fn put_back(&self, record: &JobRecord, read: Bytes) -> Result<bool, StorageError> {
        let k = key(&record.id);
        let store = self.records.of(&record.id);
        if store.capabilities().conditional_writes {
            let json = encode(record)?;
            return store
                .put_if(&k, json, Some(self.ttl), Expect::Value(read))
                .await;
        }
        if store.get(&k).await?.is_none() {
            return Ok(false);
        }
        self.put(record).await?;
        Ok(true)
    }

    /// Reads several jobs in one storage call; missing or unreadable ones are left out.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn get_many(&self, ids: &[String]) -> Result<Vec<JobRecord>, StorageError> {
        let keys: Vec<String> = ids.iter().map(|id| key(id)).collect();
        Ok(self
            .records
            .get_many(ids, &keys)
            .await?
            .into_iter()
            .flatten()
            .filter_map(|bytes| serde_json::from_slice::<JobRecord>(&bytes).ok())
            .filter(|r| !r.is_deleted())
            .collect())
    }

    /// Every job id (tombstones included), oldest first (ids sort by creation time).
    ///
    /// # Errors
    /// Storage failures.
    pub async fn ids(&self) -> Result<Vec<String>, StorageError> {
        self.records.ids().await
    }

    /// The ids of the records the job store itself holds: every job's when unsharded, those
    /// from before the shards otherwise.
    async fn ids_in_store(&self) -> Result<Vec<String>, StorageError> {
        let keys = crate::seams::list_all(&*self.store, RECORD_PREFIX).await?;
        Ok(keys
            .into_iter()
            .filter_map(|k| k.strip_prefix(RECORD_PREFIX).map(str::to_owned))
            .collect())
    }

    /// Creates a job: takes a video slot on an account, uploads the images, stores the record.
    /// With an idempotency key already used for the same body, returns that job instead; for a
    /// different body, a 409.
    ///
    /// # Errors
    /// [`JobError`]: no account could take the job, starting it failed (an upload), the
    /// idempotency key was used for another body, or storage failed.
    pub async fn create(&self, new: NewJob) -> Result<(JobRecord, bool), JobError> {
        let admitted = new.tenant.clone();
        let created = self.create_admitted(new).await;
        // The tenant's lease goes with the job when one was made; else it is given back.
        match &created {
            Ok((_, true)) => {}
            Ok((_, false)) | Err(JobError::NoAccount(_) | JobError::IdempotencyConflict) => {
                self.end_tenant(admitted.as_ref(), Outcome::Released).await;
            }
            Err(_) => self.end_tenant(admitted.as_ref(), Outcome::Failed).await,
        }
        created
    }

    async fn create_admitted(&self, new: NewJob) -> Result<(JobRecord, bool), JobError> {
        // Jobs from an earlier version are indexed (and moved into shards) before the first
        // new one: after that, a read that misses its shard needs no second look.
        self.ensure_listing().await?;
        let owner = new.tenant.as_ref().map(|a| a.tenant_id.clone());
        if let Some((k, digest)) = &new.idempotency {
            if let Some(bytes) = self
                .store
                .get(&idempotency_key(owner.as_deref(), k))
                .await?
            {
                let seen: record::IdempotencyEntry = serde_json::from_slice(&bytes)
                    .map_err(|e| StorageError(format!("reading an idempotency entry: {e}")))?;
                if &seen.digest != digest {
                    return Err(JobError::IdempotencyConflict);
                }
                if let Some(existing) = self.get(&seen.job_id).await? {
                    return Ok((existing, false));
                }
            }
        }
        let model = new.request.model;
        let lease = self
            .pool
            .acquire(SlotKind::Video, model.min_tier(), model.id, &[])
            .await
            .map_err(JobError::NoAccount)?;
        let (progress, mut lines) = Progress::channel();
        let started = self
            .generator
            .start_video_job(JobContext::from(&lease), &new.request, &progress)
            .await;
        let video = match started {
            Ok(v) => v,
            Err(e) => {
                let reason = e.to_string();
                let blame = e.blame();
                self.pool.finish(lease, Some((blame, reason))).await;
                return Err(JobError::Start(e));
            }
        };
        let now = self.clock.now_ms();
        let mut lease = lease;
        let slot = lease.slot.disarm();
        let id = format!("video_{now:012x}{}", util::random_hex(8));
        let mut record = JobRecord {
            id,
            model: new.requested_model,
            model_id: model.id.to_owned(),
            prompt: new.request.prompt.clone(),
            seconds: model.duration_secs(),
            portrait: model.aspect == crate::models::VideoAspect::Portrait,
            created_at_ms: now,
            completed_at_ms: None,
            status: JobStatus::Queued,
            progress: 0,
            failure: None,
            url: None,
            log: vec![format!(
                "Video job started on account {}.",
                crate::util::mask_email(&lease.account.email)
            )],
            log_dropped: 0,
            revision: 1,
            lease: JobLease {
                account_id: lease.account.id.clone(),
                lease_id: slot.map(|s| s.lease_id),
                project_id: lease.project_id.clone(),
            },
            media_base: new.media_base,
            next_at_ms: now,
            video,
            deleted_at_ms: None,
            owner: owner.clone(),
            tenant_lease: new.tenant,
        };
        record.log.extend(drain(&mut lines));
        self.index(&record).await?;
        self.put(&record).await?;
        if let Some((k, digest)) = new.idempotency {
            let entry = record::IdempotencyEntry {
                job_id: record.id.clone(),
                digest,
            };
            if let Some(winner) = self
                .claim_idempotency_key(owner.as_deref(), &k, &entry)
                .await
            {
                // A concurrent request with the same key won: this job has not been stepped
                // (nothing was submitted), so drop it and answer with that one.
                let _ = self.remove(&record).await;
                return match winner {
                    Ok(existing) => Ok((existing, false)),
                    Err(e) => Err(e),
                };
            }
        }
        Ok((record, true))
    }

    /// Records `entry` under the idempotency key `k` unless a concurrent request got there
    /// first (conditional write, where the store has them); then the winner's job, or the
    /// conflict. Best effort otherwise: without the entry a retry makes a second job, as
    /// without the header.
    async fn claim_idempotency_key(
        &self,
        owner: Option<&str>,
        k: &str,
        entry: &record::IdempotencyEntry,
    ) -> Option<Result<JobRecord, JobError>> {
        let json = encode(entry).ok()?;
        let ikey = idempotency_key(owner, k);
        if !self.store.capabilities().conditional_writes {
            let _ = self.store.put(&ikey, json, Some(self.ttl)).await;
            return None;
        }
        match self
            .store
            .put_if(&ikey, json, Some(self.ttl), Expect::Absent)
            .await
        {
            Ok(true) | Err(_) => None,
            Ok(false) => {
                let seen = self.store.get(&ikey).await.ok().flatten()?;
                let seen: record::IdempotencyEntry = serde_json::from_slice(&seen).ok()?;
                if seen.digest != entry.digest {
                    return Some(Err(JobError::IdempotencyConflict));
                }
                let existing = self.get(&seen.job_id).await.ok().flatten()?;
                Some(Ok(existing))
            }
        }
    }

    /// Takes one step of a job: renews its slot, refreshes the account's token if due, and
    /// advances the generation by one bounded step (a submit, one poll, or resolving the
    /// result). A finished job reports to the pool and frees its slot.
    ///
    /// # Errors
    /// Storage failures (the driver retries later); everything else ends up in the record.
    pub async fn step(&self, id: &str) -> Result<StepOutcome, StorageError> {
        // The runner also carries the pool's background imports, one batch per step.
        if crate::pool::import::is_import_id(id) {
            let next = self.pool.import_step(id).await?;
            return Ok(StepOutcome { next, record: None });
        }
        let Some((mut record, read)) = self.get_raw(id).await? else {
            return Ok(StepOutcome::gone());
        };
        if record.status.is_terminal() {
            return Ok(StepOutcome {
                next: None,
                record: Some(record),
            });
        }
        if record.is_deleted() && record.status == JobStatus::Queued {
            // Deleted before anything was sent upstream: nothing to wait for.
            self.remove(&record).await?;
            return Ok(StepOutcome::gone());
        }
        let before = (record.log.len(), record.status, record.progress);
        let (progress, mut lines) = Progress::channel();
        let result = self.step_record(&mut record, &progress).await;
        let new_lines = drain(&mut lines);
        record.push_log(new_lines, MAX_LOG_LINES);
        let now = self.clock.now_ms();
        let next = match result {
            Ok(Some(wait)) => {
                record.status = JobStatus::InProgress;
                record.progress = record.video.progress.min(99);
                record.next_at_ms = now + wait.as_millis() as u64;
                Some(wait)
            }
            Ok(None) => {
                record.status = JobStatus::Completed;
                record.progress = 100;
                record.url = record.video.result().map(str::to_owned);
                record.completed_at_ms = Some(now);
                None
            }
            Err((failure, blame)) => {
                record.push_log(vec![format!("Error: {}", failure.message)], MAX_LOG_LINES);
                record.status = JobStatus::Failed;
                record.completed_at_ms = Some(now);
                record.failure = Some(failure);
                self.finish_slot(&record, blame).await;
                self.end_tenant(record.tenant_lease.as_ref(), Outcome::Failed)
                    .await;
                None
            }
        };
        if record.status == JobStatus::Completed {
            self.finish_slot(&record, None).await;
            self.end_tenant(record.tenant_lease.as_ref(), Outcome::Succeeded)
                .await;
        } else if !record.status.is_terminal() {
            self.renew_tenant(&mut record, now).await;
        }
        if record.status.is_terminal() {
            if let Some(hook) = &self.on_end {
                hook.ended(&record).await;
            }
        }
        if record.is_deleted() && record.status.is_terminal() {
            // The upstream generation of a deleted job is over: its slot is back (above),
            // and so is the tombstone's storage.
            self.records.of(&record.id).delete(&key(&record.id)).await?;
            self.unindex(&record).await;
            return Ok(StepOutcome::gone());
        }
        if (record.log.len(), record.status, record.progress) != before {
            record.revision += 1;
        }
        if !self.put_back(&record, read).await? {
            // Deleted by a client while the step ran: what this step did upstream (a submit)
            // goes into the tombstone, so the generation is still followed to its end and its
            // slot held until then.
            if let Some((stored, read)) = self.get_raw(id).await? {
                if stored.is_deleted()
                    && !stored.status.is_terminal()
                    && !record.status.is_terminal()
                {
                    record.deleted_at_ms = stored.deleted_at_ms;
                    record.revision = stored.revision + 1;
                    if self.put_back(&record, read).await? {
                        return Ok(StepOutcome {
                            next,
                            record: Some(record),
                        });
                    }
                }
            }
            // Removed meanwhile (its slot is already released): writing the record back would
            // resurrect it and keep its driver going. Or another driver stepped it: its record
            // stands, and this driver looks again later.
            return Ok(match self.get_stored(id).await? {
                None => StepOutcome::gone(),
                Some(r) if r.status.is_terminal() => StepOutcome {
                    next: None,
                    record: Some(r),
                },
                Some(r) => StepOutcome {
                    next: Some(self.poll.interval.max(Duration::from_secs(1))),
                    record: Some(r),
                },
            });
        }
        Ok(StepOutcome {
            next,
            record: Some(record),
        })
    }

    /// One step on the record's account.
    async fn step_record(
        &self,
        record: &mut JobRecord,
        progress: &Progress,
    ) -> Result<Option<Duration>, (JobFailure, Option<(Blame, String)>)> {
        let account = match self.pool.get(&record.lease.account_id).await {
            Ok(a) => a,
            Err(e) => return Err((JobFailure::account_lost(&e), None)),
        };
        // Renewing the slot also reads the account's state (its token) in the same call.
        let command = match &record.lease.lease_id {
            Some(lease_id) => AccountCommand::Renew {
                lease_id: lease_id.clone(),
                lease_ms: self.lease.as_millis() as u64,
            },
            None => AccountCommand::Status,
        };
        let status = match self.pool.coordinator.apply(&account.id, command).await {
            Ok(reply) => reply.status,
            Err(e) => {
                // Transient: try again next step.
                progress.line(format!("Account state unavailable ({e}); retrying."));
                return Ok(Some(self.poll.interval.max(Duration::from_secs(1))));
            }
        };
        let token = match self.pool.ensure_token(&account, &status).await {
            Ok(t) => t,
            Err(e) => {
                let failure = JobFailure::token_refresh(&e);
                let reason = failure.message.clone();
                return Err((failure, Some((Blame::Auth, reason))));
            }
        };
        let ctx = JobContext {
            account: &account,
            token: &token,
            project_id: &record.lease.project_id,
        };
        let media_base = record.media_base.clone();
        match self
            .generator
            .advance_video_job(ctx, &mut record.video, &media_base, self.poll, progress)
            .await
        {
            Ok(next) => Ok(next),
            Err(e) => {
                let blame = e.blame();
                let reason = e.to_string();
                Err((JobFailure::from(&e), Some((blame, reason))))
            }
        }
    }

    /// Reports a finished job to its account and frees its slot.
    async fn finish_slot(&self, record: &JobRecord, failure: Option<(Blame, String)>) {
        self.pool
            .finish_held(
                &record.lease.account_id,
                record.lease.lease_id.clone(),
                failure,
            )
            .await;
    }

    /// Deletes a job for its client: from now on it reads as absent (404). A finished job goes
    /// at once. An unfinished one becomes a tombstone: Flow has no cancel, so it keeps its slot
    /// and is stepped to its end upstream, then removed (at its next step already when nothing
    /// was sent upstream yet), so that deleting jobs cannot get round an account's
    /// concurrency limit. `false` when there was no such job (or it was deleted already).
    ///
    /// # Errors
    /// Storage failures, or a record that kept changing under the conditional write.
    pub async fn delete(&self, id: &str) -> Result<bool, StorageError> {
        for _ in 0..8 {
            let Some((mut record, read)) = self.get_raw(id).await? else {
                return Ok(false);
            };
            if record.is_deleted() {
                return Ok(false);
            }
            if record.status.is_terminal() {
                self.remove(&record).await?;
                return Ok(true);
            }
            record.deleted_at_ms = Some(self.clock.now_ms());
            record.revision += 1;
            if self.put_back(&record, read).await? {
                // Out of listings at once; the tombstone runs on unlisted.
                self.unindex(&record).await;
                return Ok(true);
            }
            // A step wrote the record meanwhile: look again.
        }
        Err(StorageError(format!(
            "job {id} kept changing while being deleted"
        )))
    }

    /// Renews the tenant's lease on a running job when half its lapse has gone by (the lapse
    /// is the video slot's lease: a job whose driver died frees both alike).
    async fn renew_tenant(&self, record: &mut JobRecord, now_ms: u64) {
        let lapse = self.lease;
        let (Some(t), Some(a)) = (&self.tenants, &mut record.tenant_lease) else {
            return;
        };
        if now_ms + (lapse.as_millis() as u64) / 2 >= a.until_ms {
            // A failure is retried at the next step; the lease lasts until then.
            let _ = t.renew(a, lapse).await;
        }
    }

    /// Removes a record that holds no upstream work, giving back the slot of one that had not
    /// finished (not an outcome for the account).
    async fn remove(&self, record: &JobRecord) -> Result<(), StorageError> {
        if !record.status.is_terminal() {
            self.end_tenant(record.tenant_lease.as_ref(), Outcome::Released)
                .await;
        }
        self.unindex(record).await;
        if let (false, Some(lease_id)) = (record.status.is_terminal(), &record.lease.lease_id) {
            let release = AccountCommand::Release {
                lease_id: lease_id.clone(),
            };
            let _ = self
                .pool
                .coordinator
                .apply(&record.lease.account_id, release)
                .await;
        }
        self.records.of(&record.id).delete(&key(&record.id)).await
    }

    /// Whether a running job's driver seems to have stopped (its next step is long overdue),
    /// so a reader should schedule it again.
    pub fn is_stalled(&self, record: &JobRecord) -> bool {
        let grace = (self.poll.interval * 10).max(Duration::from_secs(60));
        !record.status.is_terminal()
            && self.clock.now_ms() > record.next_at_ms + grace.as_millis() as u64
    }
}

fn drain(lines: &mut futures::channel::mpsc::UnboundedReceiver<String>) -> Vec<String> {
    let mut out = Vec::new();
    while let Ok(line) = lines.try_recv() {
        out.push(line.trim_end().to_owned());
    }
    out
}
