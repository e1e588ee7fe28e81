//! The stored shape of a job.

use serde::{Deserialize, Serialize};

use crate::generate::video::VideoJob;
use crate::tenants::Admitted;

use super::failure::JobFailure;

/// Where a job is, in the OpenAI Videos vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Created, no step taken yet.
    Queued,
    /// Submitted or polling.
    InProgress,
    /// Finished with a video.
    Completed,
    /// Finished without one.
    Failed,
}

impl JobStatus {
    /// Completed or failed.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Completed | Self::Failed)
    }

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::InProgress => "in_progress",
            Self::Completed => "completed",
            Self::Failed => "failed",
        }
    }
}

/// The account slot a job holds for its whole life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobLease {
    /// The account.
    pub account_id: String,
    /// Its video slot's lease, renewed at each step (`None`: the slot was never held).
    pub lease_id: Option<String>,
    /// The Flow project the job runs in.
    pub project_id: String,
}

/// A video job as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobRecord {
    /// `video_<hex>`; sorts by creation time.
    pub id: String,
    /// The model name the client asked for.
    pub model: String,
    /// The resolved model id.
    pub model_id: String,
    /// The prompt.
    pub prompt: String,
    /// Length of the video in seconds.
    pub seconds: u8,
    /// Portrait (9:16) rather than landscape.
    pub portrait: bool,
    /// Creation time (ms since the epoch).
    pub created_at_ms: u64,
    /// When it finished.
    pub completed_at_ms: Option<u64>,
    /// Status.
    pub status: JobStatus,
    /// 0–100.
    pub progress: u8,
    /// Why it failed.
    pub failure: Option<JobFailure>,
    /// The video's URL once completed.
    pub url: Option<String>,
    /// Progress lines so far (the newest few hundred).
    pub log: Vec<String>,
    /// Lines dropped from the front of `log` to keep it short.
    #[serde(default)]
    pub log_dropped: u64,
    /// Bumped whenever the log, status or progress changes; followers wait on it.
    pub revision: u64,
    /// The account slot.
    pub lease: JobLease,
    /// Base URL for `/media/{id}` links.
    pub media_base: String,
    /// When the next step is due (ms since the epoch).
    pub next_at_ms: u64,
    /// The generation's own state.
    pub video: VideoJob,
    /// When a client deleted it (ms since the epoch) while it still ran upstream: a
    /// tombstone. Flow has no cancel, so the job keeps its slot and is stepped to its end
    /// upstream, then removed; to clients it is gone from the moment of the delete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at_ms: Option<u64>,
    /// The tenant that made it (`None`: the root key); only it (and the root key) sees it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// The tenant's lease on it (see [`crate::tenants::Tenants::admit`]), given back and
    /// counted when the job ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_lease: Option<Admitted>,
}

impl JobRecord {
    /// Deleted by a client (see [`JobRecord::deleted_at_ms`]).
    pub fn is_deleted(&self) -> bool {
        self.deleted_at_ms.is_some()
    }

    /// `1280x720` or `720x1280`.
    pub fn size(&self) -> &'static str {
        if self.portrait {
            "720x1280"
        } else {
            "1280x720"
        }
    }

    /// Progress lines after the first `seen` ever written (dropped ones are skipped).
    pub fn log_since(&self, seen: u64) -> &[String] {
        let start = seen.saturating_sub(self.log_dropped) as usize;
        self.log.get(start..).unwrap_or(&[])
    }

    /// How many progress lines were ever written.
    pub fn log_total(&self) -> u64 {
        self.log_dropped + self.log.len() as u64
    }

    /// Appends progress lines, keeping the newest `max`.
    pub(crate) fn push_log(&mut self, lines: Vec<String>, max: usize) {
        self.log.extend(lines);
        if self.log.len() > max {
            let cut = self.log.len() - max;
            self.log.drain(..cut);
            self.log_dropped += cut as u64;
        }
    }
}

/// What an `Idempotency-Key` was first used for.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct IdempotencyEntry {
    pub(crate) job_id: String,
    pub(crate) digest: String,
}
