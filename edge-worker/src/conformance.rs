//! The seams' conformance suites (`flow2api_sdk::conformance`) run inside workerd
//! against this worker's own implementations: `POST /__conformance/{seam}/{backend}/{case}`
//! (media: `kv` and `r2`; logs: `do`, a fresh `LogObject` per case).
//!
//! Test-only: compiled into the `conformance` build alone (cargo feature `conformance`,
//! `bash scripts/build.sh --conformance`, into `build-conformance/`), which
//! `tests/test_conformance_worker.py` serves with `wrangler dev`. The normal build, the one
//! `wrangler deploy` ships, has neither this route nor the suites.
//!
//! One case per request keeps each invocation within its subrequest budget; the 1,000-key
//! listing case is split into `seed` requests (`{"prefix","from","to"}`) and one
//! `check_listing` (`{"prefix","count"}`). The answer is
//! `{"outcome":"passed"|"skipped"|"failed","message":…}`.
//!
//! The job runner cases (`jobs/do/{case}`) schedule the suite's scripted jobs on the real
//! `DoJobRunner`: their `JobObject`s step them ([`scripted_jobs`]) as they step video jobs.

use std::sync::Arc;
use std::time::Duration;

use flow2api_sdk::conformance::jobs::ScriptedJobs;
use flow2api_sdk::conformance::{coordinator, jobs, logs, media, storage, Outcome, Time};
use flow2api_sdk::memory::StorageMediaStore;
use flow2api_sdk::seams::Storage as _;
use serde::{Deserialize, Serialize};
use worker::{Env, Response, Result};

use crate::clock::WorkerClock;
use crate::coordinator::DoCoordinator;
use crate::do_storage::DoStorage;
use crate::fetch_http::Subrequests;
use crate::job_runner::DoJobRunner;
use crate::kv_storage::KvStorage;
use crate::r2_media::R2MediaStore;

/// The path prefix of the route.
pub const PREFIX: &str = "/__conformance/";

/// The `StoreObject` instance that holds the scripted jobs' scripts and logs.
const SCRIPTS_INSTANCE: &str = "conformance-jobs";

/// The job runner suite's scripted jobs, as the suite and the `JobObject`s both see them.
#[allow(clippy::arc_with_non_send_sync)] // one thread on wasm32
pub fn scripted_jobs(env: &Env, subrequests: &Subrequests) -> Result<ScriptedJobs> {
    let store = DoStorage::new(
        env.durable_object("STORE")?,
        SCRIPTS_INSTANCE,
        subrequests.clone(),
    );
    Ok(ScriptedJobs::new(Arc::new(store), Arc::new(WorkerClock)))
}

/// Arguments of the split listing case.
#[derive(Debug, Default, Deserialize)]
struct Args {
    #[serde(default)]
    prefix: String,
    #[serde(default)]
    from: usize,
    #[serde(default)]
    to: usize,
    #[serde(default)]
    count: usize,
}

#[derive(Debug, Serialize)]
struct Answer {
    outcome: &'static str,
    message: Option<String>,
}

/// The `StoreObject` instance the storage cases use.
const STORE_INSTANCE: &str = "conformance";

/// Runs one case: `rest` is `{seam}/{backend}/{case}`, `body` the JSON arguments.
#[allow(clippy::arc_with_non_send_sync)] // one thread on wasm32
pub async fn handle(env: &Env, rest: &str, body: &str) -> Result<Response> {
    let parts: Vec<&str> = rest.split('/').collect();
    let [seam, backend, case] = parts.as_slice() else {
        return Response::error("expected /__conformance/{seam}/{backend}/{case}", 404);
    };
    let args: Args = if body.trim().is_empty() {
        Args::default()
    } else {
        match serde_json::from_str(body) {
            Ok(a) => a,
            Err(e) => return Response::error(format!("bad arguments: {e}"), 400),
        }
    };
    let time = Time::Real(Arc::new(WorkerClock));
    let subrequests = Subrequests::default();
    let result = match *seam {
        "storage" => {
            let store: Arc<dyn flow2api_sdk::Storage> = match *backend {
                "kv" => Arc::new(KvStorage::new(env.kv("KV")?)),
                "do" => Arc::new(DoStorage::new(
                    env.durable_object("STORE")?,
                    STORE_INSTANCE,
                    subrequests.clone(),
                )),
                other => return Response::error(format!("no storage backend {other}"), 404),
            };
            let subject = storage::Subject::new(store, time);
            match *case {
                "seed" => storage::seed_keys(&subject, &args.prefix, args.from..args.to)
                    .await
                    .map(|()| None),
                "check_listing" => storage::check_listing(&subject, &args.prefix, args.count)
                    .await
                    .map(|()| None),
                name => storage::case(name, &subject).await,
            }
        }
        // The worker's media store: the SDK's StorageMediaStore over KV, as `lib.rs` builds it.
        "media" if *backend == "kv" => {
            let kv = KvStorage::new(env.kv("KV")?);
            let min_ttl = kv.capabilities().min_ttl.unwrap_or_default();
            let store = StorageMediaStore::new(Arc::new(kv), None);
            let subject = media::Subject::new(Arc::new(store), time).with_min_ttl(min_ttl);
            media::case(case, &subject).await
        }
        // The worker's media store with the `MEDIA` binding, as `lib.rs` builds it.
        "media" if *backend == "r2" => {
            let store = R2MediaStore::new(env.bucket("MEDIA")?, Duration::from_secs(3600));
            media::case(case, &media::Subject::new(Arc::new(store), time)).await
        }
        // A fresh `LogObject` per case: the suite's cases expect an empty log.
        "logs" if *backend == "do" => {
            let name = format!(
                "conformance-logs-{case}-{}",
                worker::Date::now().as_millis()
            );
            let store = crate::log_object::store(
                env.durable_object(crate::log_object::BINDING)?,
                name,
                subrequests.clone(),
            );
            logs::case(case, &logs::Subject::new(Arc::new(store))).await
        }
        "coordinator" if *backend == "do" => {
            let c = DoCoordinator::new(env.durable_object("ACCOUNTS")?, subrequests.clone());
            coordinator::case(case, &coordinator::Subject::new(Arc::new(c), time)).await
        }
        "jobs" if *backend == "do" => {
            let runner = DoJobRunner::new(env.durable_object("JOBS")?, subrequests.clone());
            let scripted = scripted_jobs(env, &subrequests)?;
            jobs::case(case, &jobs::Subject::new(Arc::new(runner), scripted, time)).await
        }
        _ => return Response::error(format!("no suite {seam}/{backend}"), 404),
    };
    let answer = match Outcome::from(result) {
        Outcome::Passed => Answer {
            outcome: "passed",
            message: None,
        },
        Outcome::Skipped(why) => Answer {
            outcome: "skipped",
            message: Some(why),
        },
        Outcome::Failed(why) => Answer {
            outcome: "failed",
            message: Some(why),
        },
    };
    Response::from_json(&answer)
}
