//! The SDK's [`JobRunner`] at the edge: scheduling sets the job's `JobObject` alarm; waiting
//! asks that object to answer at the job's next change. One subrequest each.

use std::time::Duration;

use flow2api_sdk::jobs::JobRunner;
use flow2api_sdk::seams::{boxed, BoxFuture, StorageError};
use worker::{ObjectNamespace, Stub};

use crate::do_client::call;
use crate::fetch_http::Subrequests;
use crate::protocol::{JobCommand, JobReply, JOB_URL};

/// Video jobs driven by one `JobObject` each.
#[derive(Debug)]
pub struct DoJobRunner {
    jobs: ObjectNamespace,
    subrequests: Subrequests,
}

impl DoJobRunner {
    /// A runner over the `JOBS` namespace, counting into `subrequests`.
    pub fn new(jobs: ObjectNamespace, subrequests: Subrequests) -> Self {
        Self { jobs, subrequests }
    }

    fn stub(&self, id: &str) -> Result<Stub, StorageError> {
        self.jobs
            .id_from_name(id)
            .and_then(|id| id.get_stub())
            .map_err(|e| StorageError(format!("job object: {e}")))
    }
}

impl JobRunner for DoJobRunner {
    fn schedule<'a>(
        &'a self,
        id: &'a str,
        delay: Duration,
    ) -> BoxFuture<'a, Result<(), StorageError>> {
        boxed(async move {
            let command = JobCommand::Schedule {
                id: id.to_owned(),
                delay_ms: delay.as_millis() as u64,
            };
            let _: JobReply = call(&self.stub(id)?, JOB_URL, &command, &self.subrequests).await?;
            Ok(())
        })
    }

    fn wait<'a>(&'a self, id: &'a str, revision: u64, timeout: Duration) -> BoxFuture<'a, ()> {
        boxed(async move {
            let command = JobCommand::Wait {
                revision,
                timeout_ms: timeout.as_millis() as u64,
            };
            if let Ok(stub) = self.stub(id) {
                let waited: Result<JobReply, _> =
                    call(&stub, JOB_URL, &command, &self.subrequests).await;
                if waited.is_err() {
                    // Do not spin on a failing object: wait out the timeout here instead.
                    worker::Delay::from(timeout.min(Duration::from_secs(5))).await;
                }
            }
        })
    }
}
