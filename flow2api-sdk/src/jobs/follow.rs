//! Jobs seen from outside their driver: starting one, reading one (and scheduling it again when
//! its driver seems to have stopped), following one to its end while reporting its progress,
//! and resuming every unfinished one after a restart. The API layer calls these and only
//! parses requests and formats answers.

use std::time::Duration;

use futures::future::{select, Either};
use futures::StreamExt;

use crate::generate::{Output, Progress};
use crate::seams::StorageError;

use super::{FailureKind, JobError, JobFailure, JobRecord, JobRunner, JobStatus, Jobs, NewJob};

/// How long a follower listens to a silent watch before reading the record itself.
const FOLLOW_RECHECK: Duration = Duration::from_secs(120);
/// Pause before that read when the watch ended early.
const FOLLOW_PAUSE: Duration = Duration::from_millis(500);

/// Reports the record's progress lines after the first `seen`; `Some` with the result once the
/// job has finished.
fn absorb(
    record: &JobRecord,
    seen: &mut u64,
    progress: &Progress,
) -> Option<Result<Output, JobError>> {
    for line in record.log_since(*seen) {
        progress.line(line.clone());
    }
    *seen = record.log_total();
    if record.is_deleted() {
        return Some(Err(JobError::Gone));
    }
    match record.status {
        JobStatus::Completed => Some(Ok(Output {
            url: record.url.clone().unwrap_or_default(),
            kind: "video",
            media_id: record.video.media_id.clone(),
        })),
        JobStatus::Failed => Some(Err(JobError::Failed(
            record.failure.clone().unwrap_or_else(|| {
                JobFailure::new(FailureKind::Other, "The video job failed without a reason.")
            }),
        ))),
        JobStatus::Queued | JobStatus::InProgress => None,
    }
}

impl Jobs {
    /// Creates a job ([`Jobs::create`]) and asks `runner` to take its first step now. A job
    /// that an `Idempotency-Key` had already created is returned as it is.
    ///
    /// # Errors
    /// As [`Jobs::create`].
    pub async fn start(&self, runner: &dyn JobRunner, new: NewJob) -> Result<JobRecord, JobError> {
        let (record, created) = self.create(new).await?;
        if created {
            // If this fails the job is stalled, and the next read schedules it again.
            let _ = runner.schedule(&record.id, Duration::ZERO).await;
        }
        Ok(record)
    }

    /// Reads a job, and asks `runner` to schedule it again when its driver seems to have
    /// stopped ([`Jobs::is_stalled`]): every client read doubles as stall recovery.
    ///
    /// # Errors
    /// Storage failures; an unknown or unreadable job is `Ok(None)`.
    pub async fn get_and_recover(
        &self,
        runner: &dyn JobRunner,
        id: &str,
    ) -> Result<Option<JobRecord>, StorageError> {
        // Tombstones too: a deleted job still running upstream must reach its end.
        let record = self.get_stored(id).await?;
        if let Some(r) = &record {
            if self.is_stalled(r) {
                let _ = runner.schedule(&r.id, Duration::ZERO).await;
            }
        }
        Ok(record.filter(|r| !r.is_deleted()))
    }

    /// Follows a job to its end, reporting its progress lines to `progress` as they are
    /// written: watches `runner` for changes, and reads storage only when the watch ends early
    /// or stays silent for long (recovering a stalled job on the way).
    ///
    /// # Errors
    /// [`JobError::Failed`] with the job's failure; [`JobError::Gone`] when the job was deleted
    /// meanwhile. A passing storage failure is not an error: following goes on.
    pub async fn follow(
        &self,
        runner: &dyn JobRunner,
        record: JobRecord,
        progress: &Progress,
    ) -> Result<Output, JobError> {
        let mut seen = 0u64;
        let mut record = record;
        loop {
            if let Some(done) = absorb(&record, &mut seen, progress) {
                return done;
            }
            let mut updates = runner.watch(&record.id, record.revision).await;
            loop {
                let silence = self.clock.sleep(FOLLOW_RECHECK);
                match select(updates.next(), silence).await {
                    Either::Left((Some(update), _)) => {
                        if update.revision > record.revision {
                            record = update;
                            if let Some(done) = absorb(&record, &mut seen, progress) {
                                return done;
                            }
                        }
                    }
                    Either::Left((None, _)) | Either::Right(_) => break,
                }
            }
            // Not watched (or silent): pause so a job nothing runs is not read in a spin.
            self.clock.sleep(FOLLOW_PAUSE).await;
            record = match self.get_and_recover(runner, &record.id).await {
                Ok(Some(r)) => r,
                Ok(None) => return Err(JobError::Gone),
                // A passing storage failure: keep following.
                Err(_) => record,
            };
        }
    }

    /// Asks `runner` to schedule every unfinished job and account import again (a restarted
    /// process calls this once); how many were scheduled.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn resume(&self, runner: &dyn JobRunner) -> Result<usize, StorageError> {
        let mut n = 0;
        for id in self.pool.unfinished_imports().await? {
            runner.schedule(&id, Duration::ZERO).await?;
            n += 1;
        }
        for id in self.ids().await? {
            if let Some(r) = self.get_stored(&id).await? {
                if !r.status.is_terminal() {
                    runner.schedule(&id, Duration::ZERO).await?;
                    n += 1;
                }
            }
        }
        Ok(n)
    }
}
