//! One image generation for an API request, whatever the dialect: the tenant's admission
//! (quota, concurrency, model patterns), the request's deadline (`IMAGE_TIMEOUT`), an
//! account's slot, and the pipeline with failover. Chat completions, the Images API and
//! Gemini `generateContent` all run their images through [`ImageRun`].

use std::sync::Arc;

use http::{HeaderMap, StatusCode};

use crate::generate::{ImageRequest, Output, Progress};
use crate::models::ImageModel;
use crate::pool::Lease;
use crate::seams::{boxed, Bytes, SlotKind, Spawn};
use crate::tenants::{Admitted, Outcome, TenantError, Tenants, Work};
use crate::transport::{get_following_redirects, read_capped};
use crate::util;

use super::caller::Caller;
use super::error::ApiError;
use super::recording::LogDraft;
use super::AppInner;

/// An image generation admitted and holding an account's slot: [`ImageRun::finish`] runs it.
pub(crate) struct ImageRun {
    inner: Arc<AppInner>,
    ticket: TenantTicket,
    lease: Lease,
    deadline: Deadline,
    log: Option<LogDraft>,
}

impl ImageRun {
    /// Admits the caller's image of `model` and takes an account's slot, within the deadline
    /// counted from `started_ms` (the request's arrival).
    ///
    /// # Errors
    /// The tenant's refusals (model, quota, concurrency), no account (with its reason), or
    /// the deadline.
    pub(crate) async fn start(
        inner: &Arc<AppInner>,
        caller: &Caller,
        model: &'static ImageModel,
        started_ms: u64,
    ) -> Result<Self, ApiError> {
        let deadline = Deadline {
            at_ms: started_ms + inner.config.image_timeout.as_millis() as u64,
            secs: inner.config.image_timeout.as_secs(),
        };
        let log = caller.log().cloned();
        if let Some(d) = &log {
            d.operation(crate::logs::LogKind::Image);
        }
        let ticket = admit_image(inner, caller, model.id).await?;
        let acquire = inner
            .pool
            .acquire(SlotKind::Image, model.min_tier(), model.id, &[]);
        match deadline.bound(&*inner.deps.clock, acquire).await {
            Ok(Ok(lease)) => {
                if let Some(d) = &log {
                    d.account(&lease.account.id, &lease.account.email);
                }
                Ok(Self {
                    inner: inner.clone(),
                    ticket,
                    lease,
                    deadline,
                    log,
                })
            }
            Ok(Err(e)) => {
                ticket.end(Outcome::Released).await;
                Err(e.into())
            }
            Err(e) => {
                ticket.end(Outcome::Released).await;
                Err(e)
            }
        }
    }

    /// Runs the pipeline to its output within the deadline, reporting to `progress`, and
    /// ends the tenant's admission with the outcome.
    ///
    /// # Errors
    /// The generation's failure, or the deadline (504).
    pub(crate) async fn finish(
        self,
        job: ImageRequest,
        media_base: String,
        progress: Progress,
    ) -> Result<Output, ApiError> {
        let Self {
            inner,
            ticket,
            lease,
            deadline,
            log,
        } = self;
        if let Some(d) = &log {
            d.request(&job.prompt, !job.images.is_empty());
        }
        let clock = inner.deps.clock.clone();
        let work = run(inner.clone(), lease, job, media_base, progress);
        let output = deadline.bound(&*clock, work).await.and_then(|r| r);
        if let Some(d) = &log {
            match &output {
                Ok(o) => d.succeeded(&o.url),
                Err(e) => d.failed(e),
            }
        }
        ticket.end(outcome_of(&output)).await;
        inner.flush_captcha_stats().await;
        output
    }
}

/// A tenant's admitted image generation (nothing for the root key): ended with its outcome,
/// or, when the request is dropped before its end (the client went away), given back in the
/// background where the host can run work beyond a request (else it lapses).
struct TenantTicket {
    held: Option<(Tenants, Admitted)>,
    spawner: Option<Arc<dyn Spawn>>,
}

impl TenantTicket {
    async fn end(mut self, outcome: Outcome) {
        if let Some((tenants, admitted)) = self.held.take() {
            let _ = tenants.finish(&admitted, outcome).await;
        }
    }
}

impl Drop for TenantTicket {
    fn drop(&mut self) {
        if let (Some((tenants, admitted)), Some(spawner)) = (self.held.take(), &self.spawner) {
            spawner.spawn(boxed(async move {
                let _ = tenants.finish(&admitted, Outcome::Released).await;
            }));
        }
    }
}

/// Admits one image of `model_id` for a tenant's key (its model patterns, quotas and
/// concurrency); the root key needs nothing.
async fn admit_image(
    inner: &AppInner,
    caller: &Caller,
    model_id: &str,
) -> Result<TenantTicket, ApiError> {
    let held = match caller.tenant() {
        None => None,
        Some(t) => {
            if !t.allows_model(model_id) {
                return Err(TenantError::ModelNotAllowed(model_id.to_owned()).into());
            }
            // The lease outlives the request's own deadline, so a crash cannot keep it.
            let lapse = inner.config.image_timeout + std::time::Duration::from_secs(60);
            let admitted = inner.tenants.admit(t, Work::Image, lapse).await?;
            Some((inner.tenants.clone(), admitted))
        }
    };
    Ok(TenantTicket {
        held,
        spawner: inner.deps.spawner.clone(),
    })
}

fn outcome_of<T>(r: &Result<T, ApiError>) -> Outcome {
    if r.is_ok() {
        Outcome::Succeeded
    } else {
        Outcome::Failed
    }
}

/// The end of an image generation request's time (`IMAGE_TIMEOUT`, counted from its arrival).
#[derive(Clone, Copy)]
struct Deadline {
    at_ms: u64,
    secs: u64,
}

impl Deadline {
    /// `work`'s output, or a 504 once the deadline passes (`work` is dropped then, which
    /// gives its slot back).
    async fn bound<T>(
        self,
        clock: &dyn crate::seams::Clock,
        work: impl std::future::Future<Output = T>,
    ) -> Result<T, ApiError> {
        let left = self.at_ms.saturating_sub(clock.now_ms());
        let sleep = clock.sleep(std::time::Duration::from_millis(left));
        match futures::future::select(std::pin::pin!(work), sleep).await {
            futures::future::Either::Left((out, _)) => Ok(out),
            futures::future::Either::Right(_) => Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "The image generation did not finish within {} s (IMAGE_TIMEOUT).",
                    self.secs
                ),
            )
            .code("timeout")),
        }
    }
}

async fn run(
    inner: Arc<AppInner>,
    lease: Lease,
    job: ImageRequest,
    media_base: String,
    progress: Progress,
) -> Result<Output, ApiError> {
    progress.line(format!(
        "Image generation started on account {}.",
        util::mask_email(&lease.account.email)
    ));
    let result = inner
        .generator
        .generate_image_with_failover(&inner.pool, lease, &job, &media_base, &progress)
        .await;
    result.map_err(|e| {
        let err = ApiError::from(e);
        progress.line(format!("Error: {}", err.message));
        err
    })
}

/// The largest result [`output_bytes`] reads (a 4K image is some 20 MB).
const MAX_RESULT_BYTES: usize = 64 << 20;

/// The bytes of a generation's result at `url`, for answers that carry them (`b64_json`,
/// Gemini's `inlineData`): a `data:` URL decoded, the gateway's own `/media/{id}` read from
/// its store, anything else fetched from upstream (the link came from Flow, so the ordinary
/// client is used), following up to three redirects.
///
/// # Errors
/// 502 when the result cannot be read.
pub(crate) async fn output_bytes(inner: &AppInner, url: &str) -> Result<Bytes, ApiError> {
    let unreadable = |why: &str| {
        ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("The generated image could not be read: {why}."),
        )
    };
    if url.starts_with("data:") {
        return super::inputs::decode_data_url(url, MAX_RESULT_BYTES)
            .map_err(|_| unreadable("a malformed data URL"));
    }
    let at = url::Url::parse(url).map_err(|_| unreadable("not a URL"))?;
    if let Some(id) = super::inputs::own_media_id(&at, inner.config.public_base_url.as_deref()) {
        let read = inner.deps.media.get(id, None).await;
        let object = read
            .ok()
            .and_then(|r| r.found())
            .ok_or_else(|| unreadable("it is no longer in the media store"))?;
        return object
            .collect()
            .await
            .map_err(|_| unreadable("the media store failed"));
    }
    let resp = get_following_redirects(&*inner.deps.http, at.as_str(), &HeaderMap::new(), |_| true)
        .await
        .map_err(|e| unreadable(&e.to_string()))?;
    read_capped(resp, MAX_RESULT_BYTES)
        .await
        .map_err(|e| unreadable(&e.to_string()))
}
