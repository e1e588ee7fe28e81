//! The SDK's [`JobRunner`] at the edge: scheduling sets the job's `JobObject` alarm; watching
//! is one streamed request to that object, which sends each visible change of the job.

use std::time::Duration;

use flow2api_sdk::jobs::{JobRecord, JobRunner};
use flow2api_sdk::seams::{boxed, boxed_stream, BoxFuture, BoxStream, StorageError};
use futures::StreamExt;
use worker::wasm_bindgen::JsValue;
use worker::{Method, ObjectNamespace, Request, RequestInit, Stub};

use crate::do_client::{call, Object};
use crate::fetch_http::Subrequests;
use crate::protocol::{JobCommand, JobReply, LineSplitter, JOB_URL};

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

    /// One streamed request to the job's object; its JSON lines as records.
    async fn follow(
        &self,
        id: &str,
        revision: u64,
    ) -> Result<BoxStream<'static, JobRecord>, StorageError> {
        let fail = |e: &dyn std::fmt::Display| StorageError(format!("job object: {e}"));
        let body = serde_json::to_string(&JobCommand::Follow { revision }).map_err(|e| fail(&e))?;
        let mut init = RequestInit::new();
        init.with_method(Method::Post)
            .with_body(Some(JsValue::from_str(&body)));
        let request = Request::new_with_init(JOB_URL, &init).map_err(|e| fail(&e))?;
        self.subrequests.add();
        let mut response = self
            .stub(id)?
            .fetch_with_request(request)
            .await
            .map_err(|e| fail(&e))?;
        if response.status_code() != 200 {
            return Err(StorageError(format!(
                "job object answered {}",
                response.status_code()
            )));
        }
        let chunks = response.stream().map_err(|e| fail(&e))?;
        let mut lines = LineSplitter::default();
        let records = chunks
            .take_while(|c| futures::future::ready(c.is_ok()))
            .flat_map(move |chunk| {
                let records: Vec<JobRecord> = lines
                    .push(&chunk.unwrap_or_default())
                    .iter()
                    .filter_map(|l| serde_json::from_slice(l).ok())
                    .collect();
                futures::stream::iter(records)
            });
        Ok(boxed_stream(records))
    }

    fn stub(&self, id: &str) -> Result<Stub, StorageError> {
        self.jobs
            .id_from_name(id)
            .and_then(|id| id.get_stub())
            .map_err(|e| StorageError(format!("job object: {e}")))
    }

    fn object(&self, id: &str) -> Result<Object, StorageError> {
        self.stub(id).map(Object::from)
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
            let _: JobReply = call(&self.object(id)?, JOB_URL, &command, &self.subrequests).await?;
            Ok(())
        })
    }

    fn watch<'a>(
        &'a self,
        id: &'a str,
        revision: u64,
    ) -> BoxFuture<'a, BoxStream<'static, JobRecord>> {
        boxed(async move {
            match self.follow(id, revision).await {
                Ok(records) => records,
                // The follower falls back to reading the record.
                Err(_) => boxed_stream(futures::stream::empty()),
            }
        })
    }
}
