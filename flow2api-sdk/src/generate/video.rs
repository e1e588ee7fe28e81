//! The video pipeline (`docs/upstream.md#video-pipeline`): tier key adjustment, uploads, submit
//! with retries, the polling loop with its limits, the final URL (media-url-redirect, else the
//! media-bytes answer stored as media), and a real 1080p/4K upsample (the original's bug returned
//! the unscaled video).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::flow::session_id;
use crate::flow::video::{VideoInput, VideoOperation, VideoSubmit};
use crate::flow::warm_up::WarmUp;
use crate::models::{adjust_key_for_tier, single_image_key, VideoModel, VideoType, VideoUpsample};
use crate::pool::{Account, Lease, TokenState};
use crate::seams::{Bytes, CaptchaAction, Media};
use crate::util;

use super::{Budget, GenerateError, Generator, Output, Progress, Step};

/// One video generation.
#[derive(Debug, Clone)]
pub struct VideoRequest {
    /// The resolved model.
    pub model: &'static VideoModel,
    /// The prompt.
    pub prompt: String,
    /// Frames or reference images, already loaded and counted (see [`check_image_count`]).
    pub images: Vec<Bytes>,
    /// For extend models: the media id of the video to extend.
    pub extend_source: Option<String>,
}

/// The polling limits (`docs/upstream.md#video-pipeline`).
#[derive(Debug, Clone, Copy)]
pub struct PollSettings {
    /// Sleep before each status call (`POLL_INTERVAL`).
    pub interval: Duration,
    /// Status calls before giving up (tripled for models with an upsample step).
    pub max_attempts: u32,
    /// An operation still `ACTIVE` after this many polls is abandoned (`PENDING` is not).
    pub active_limit: u32,
    /// Consecutive failed status calls that end the job.
    pub max_poll_errors: u32,
}

impl PollSettings {
    /// Polls every `interval` for at most `timeout` (`POLL_INTERVAL`, `VIDEO_TIMEOUT`); a
    /// zero interval keeps the default count of polls.
    pub fn within(interval: Duration, timeout: Duration) -> Self {
        let default = Self::default();
        let max_attempts = if interval.is_zero() {
            default.max_attempts
        } else {
            let n = timeout.as_secs_f64() / interval.as_secs_f64();
            n.ceil().clamp(1.0, 1_000_000.0) as u32
        };
        Self {
            interval,
            max_attempts,
            ..default
        }
    }
}

impl Default for PollSettings {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(3),
            max_attempts: 200,
            active_limit: 80,
            max_poll_errors: 3,
        }
    }
}

/// Checks the image count against the model's rules (`docs/upstream.md#video-pipeline`).
///
/// # Errors
/// A message for a 400 when the count is outside the model's range.
pub fn check_image_count(model: &VideoModel, count: usize) -> Result<(), String> {
    if model.accepts_image_count(count) {
        return Ok(());
    }
    Err(match model.video_type {
        VideoType::I2v if model.min_images == model.max_images => format!(
            "The model {} needs exactly {} image(s); {count} given.",
            model.id, model.min_images
        ),
        VideoType::I2v => format!(
            "The model {} needs {}–{} images (first frame, optional last frame); {count} given.",
            model.id, model.min_images, model.max_images
        ),
        _ => format!(
            "The model {} accepts at most {} reference images; {count} given.",
            model.id, model.max_images
        ),
    })
}

/// A video generation failed after it was submitted.
fn failed(message: String) -> GenerateError {
    GenerateError::VideoFailed(message)
}

/// The account side of one job step: tier and credentials, and the project.
#[derive(Debug, Clone, Copy)]
pub struct JobContext<'a> {
    /// The account (its tier and session token).
    pub account: &'a Account,
    /// A fresh access token.
    pub token: &'a TokenState,
    /// The job's project.
    pub project_id: &'a str,
}

impl<'a> From<&'a Lease> for JobContext<'a> {
    fn from(lease: &'a Lease) -> Self {
        Self {
            account: &lease.account,
            token: &lease.token,
            project_id: &lease.project_id,
        }
    }
}

/// Where a video job is. Serialisable, so a host can keep the job in storage between steps
/// (a Durable Object alarm per step at the edge).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "phase", rename_all = "snake_case")]
pub enum JobPhase {
    /// Submit next (the generation, or its upsample).
    Submit {
        /// Submitting the upsample of a finished video.
        upscaling: bool,
    },
    /// Poll next.
    Poll {
        /// Polling the upsample.
        upscaling: bool,
        /// The operations to poll.
        operations: Vec<VideoOperation>,
        /// Polls made.
        attempt: u32,
        /// Polls allowed.
        max_attempts: u32,
        /// Consecutive failed polls.
        errors: u32,
    },
    /// Submit the concatenation of an extend model's source and its new clip (concat-submit).
    Concat {
        /// The source video's media id.
        source: String,
        /// The new clip's media id.
        clip: String,
    },
    /// Poll the concatenation (concat-status).
    ConcatPoll {
        /// The concat-submit operation.
        operation: String,
        /// Polls made.
        attempt: u32,
    },
    /// Finished.
    Done {
        /// The video URL.
        url: String,
    },
}

/// A video job: everything needed to take its next step, and nothing tied to a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VideoJob {
    /// Public model id.
    pub model: String,
    /// Prompt.
    pub prompt: String,
    /// The upstream key of the next submit (tier-adjusted).
    pub key: String,
    /// `VIDEO_ASPECT_RATIO_…` of the next submit.
    pub aspect: String,
    /// What the next submit generates from.
    pub input: VideoInput,
    /// The upsample step still to do (`1080p`/`4k`).
    pub upsample: Option<String>,
    /// The generated video's URL, once known (kept as the fallback if the upsample fails).
    pub url: Option<String>,
    /// Rough progress, 0–100.
    pub progress: u8,
    /// The next step.
    pub phase: JobPhase,
    /// The media id of the latest finished video (`video_media_id`,
    /// `docs/upstream.md#video-url-resolution`).
    #[serde(default)]
    pub media_id: Option<String>,
}

impl VideoJob {
    /// The final URL, when the job is done.
    pub fn result(&self) -> Option<&str> {
        match &self.phase {
            JobPhase::Done { url } => Some(url),
            _ => None,
        }
    }
}

impl Generator {
    /// Starts a video job on an account: the tier key adjustment, the uploads (done now, so the
    /// job record carries media ids, never image bytes) and the submit input.
    ///
    /// # Errors
    /// Upload failures; an extend model without a source.
    pub async fn start_video_job(
        &self,
        ctx: JobContext<'_>,
        request: &VideoRequest,
        progress: &Progress,
    ) -> Result<VideoJob, GenerateError> {
        // Every call of this job leaves the account's way (its proxy or relay).
        self.for_account(ctx.account)
            .start_video_job_here(ctx, request, progress)
            .await
    }

    async fn start_video_job_here(
        &self,
        ctx: JobContext<'_>,
        request: &VideoRequest,
        progress: &Progress,
    ) -> Result<VideoJob, GenerateError> {
        let model = request.model;
        let (mut key, note) = adjust_key_for_tier(model, ctx.account.tier);
        if let Some(note) = note {
            progress.line(note);
        }
        let images: &[Bytes] = if model.video_type.ignores_images() {
            if !request.images.is_empty() {
                progress.line("This model does not take images; they are ignored.");
            }
            &[]
        } else {
            &request.images
        };
        let mut ids = Vec::with_capacity(images.len());
        if !images.is_empty() {
            progress.line(format!("Uploading {} image(s)...", images.len()));
            for image in images {
                let id = self
                    .flow
                    .upload_image(&ctx.token.at, ctx.project_id, image)
                    .await
                    .map_err(GenerateError::Upstream)?;
                ids.push(id);
            }
        }
        let input = match (model.video_type, ids.as_slice()) {
            (VideoType::I2v, [start]) => {
                key = single_image_key(&key);
                VideoInput::StartImage {
                    start: start.clone(),
                }
            }
            (VideoType::I2v, [start, end]) => VideoInput::StartEndImage {
                start: start.clone(),
                end: end.clone(),
            },
            (VideoType::R2v | VideoType::Omni, refs) if !refs.is_empty() => {
                // Omni switches to its reference-image key; r2v keeps the tier-adjusted key.
                if model.images_key.is_some() {
                    key = model.key_for_images(refs.len()).to_owned();
                }
                VideoInput::ReferenceImages {
                    refs: refs.to_vec(),
                }
            }
            (VideoType::Extend, _) => match &request.extend_source {
                Some(source) => VideoInput::Extend {
                    source: source.clone(),
                },
                None => {
                    return Err(failed(
                        "an extend model needs the source video's media id".into(),
                    ))
                }
            },
            _ => VideoInput::Text,
        };
        Ok(VideoJob {
            model: model.id.to_owned(),
            prompt: request.prompt.clone(),
            key,
            aspect: model.aspect.wire().to_owned(),
            input,
            upsample: model.upsample.map(|u| u.slug().to_owned()),
            url: None,
            progress: 0,
            phase: JobPhase::Submit { upscaling: false },
            media_id: None,
        })
    }

    /// Takes one bounded step of a job — a submit (with its captcha and retries), one status
    /// poll, or resolving the URL — and says when to take the next (`None`: done).
    ///
    /// # Errors
    /// A failed, stuck or unreachable generation. A failing upsample is not an error: the
    /// job finishes with the original video.
    pub async fn advance_video_job(
        &self,
        ctx: JobContext<'_>,
        job: &mut VideoJob,
        media_base: &str,
        poll: PollSettings,
        progress: &Progress,
    ) -> Result<Option<Duration>, GenerateError> {
        self.for_account(ctx.account)
            .advance_video_job_here(ctx, job, media_base, poll, progress)
            .await
    }

    async fn advance_video_job_here(
        &self,
        ctx: JobContext<'_>,
        job: &mut VideoJob,
        media_base: &str,
        poll: PollSettings,
        progress: &Progress,
    ) -> Result<Option<Duration>, GenerateError> {
        let was_done = matches!(job.phase, JobPhase::Done { .. });
        let next = self
            .advance_phase(ctx, job, media_base, poll, progress)
            .await?;
        // Whichever way the job ended (the video, its upscale, a fallback to the original),
        // the link it ends with is the one kept (`MEDIA_CACHE`).
        if let (false, JobPhase::Done { url }) = (was_done, &mut job.phase) {
            *url = self
                .keep(std::mem::take(url), media_base, "video/mp4", progress)
                .await;
        }
        Ok(next)
    }

    async fn advance_phase(
        &self,
        ctx: JobContext<'_>,
        job: &mut VideoJob,
        media_base: &str,
        poll: PollSettings,
        progress: &Progress,
    ) -> Result<Option<Duration>, GenerateError> {
        match job.phase.clone() {
            JobPhase::Done { .. } => Ok(None),
            JobPhase::Concat { source, clip } => {
                progress.line("Extension ready; joining it to the source video...");
                match self.flow.concat_videos(&ctx.token.at, &source, &clip).await {
                    Ok(Some(operation)) => {
                        progress.line("Concatenation submitted; waiting for it...");
                        job.phase = JobPhase::ConcatPoll {
                            operation,
                            attempt: 0,
                        };
                        Ok(Some(poll.interval))
                    }
                    Ok(None) => Ok(keep_clip(
                        job,
                        "no concatenation task was created",
                        progress,
                    )),
                    Err(e) => Ok(keep_clip(job, &e.to_string(), progress)),
                }
            }
            JobPhase::ConcatPoll { operation, attempt } => {
                if attempt >= CONCAT_MAX_POLLS {
                    return Ok(keep_clip(job, "the concatenation timed out", progress));
                }
                let status = match self.flow.concat_status(&ctx.token.at, &operation).await {
                    Ok(s) => s,
                    Err(e) => return Ok(keep_clip(job, &e.to_string(), progress)),
                };
                if status.is_failed() {
                    let why = format!("the concatenation failed: {}", status.status);
                    return Ok(keep_clip(job, &why, progress));
                }
                let successful = status.is_successful();
                let url = match (status.output_uri, status.encoded_video) {
                    (Some(uri), _) => Some(uri),
                    (None, Some(bytes)) if successful => {
                        let media = Media {
                            content_type: "video/mp4".to_owned(),
                            bytes,
                        };
                        match self.store(media.into()).await {
                            Ok(id) => {
                                Some(format!("{}/media/{id}", media_base.trim_end_matches('/')))
                            }
                            Err(e) => return Ok(keep_clip(job, &e.to_string(), progress)),
                        }
                    }
                    _ if successful => {
                        return Ok(keep_clip(job, "the concatenation has no URL", progress))
                    }
                    _ => None,
                };
                match url {
                    Some(url) => {
                        progress.line("Concatenation done: the whole video is ready.");
                        job.progress = 100;
                        job.phase = JobPhase::Done { url };
                        Ok(None)
                    }
                    None => {
                        job.phase = JobPhase::ConcatPoll {
                            operation,
                            attempt: attempt + 1,
                        };
                        Ok(Some(poll.interval))
                    }
                }
            }
            JobPhase::Submit { upscaling } => {
                progress.line(if upscaling {
                    "Submitting the upscale..."
                } else {
                    "Submitting the video generation..."
                });
                match self.submit_video_with_retry(ctx, job).await {
                    Ok(operations) => {
                        let max_attempts = if job.upsample.is_some() || upscaling {
                            poll.max_attempts * 3
                        } else {
                            poll.max_attempts
                        };
                        job.phase = JobPhase::Poll {
                            upscaling,
                            operations,
                            attempt: 0,
                            max_attempts,
                            errors: 0,
                        };
                        progress.line(if upscaling {
                            "Upscale running..."
                        } else {
                            "Video generation running..."
                        });
                        Ok(Some(poll.interval))
                    }
                    Err(e) => fallback(job, upscaling, e, progress),
                }
            }
            JobPhase::Poll {
                upscaling,
                operations,
                attempt,
                max_attempts,
                errors,
            } => {
                if attempt >= max_attempts {
                    let e = GenerateError::VideoTimeout(format!(
                        "no result after {max_attempts} polls"
                    ));
                    return fallback(job, upscaling, e, progress);
                }
                if attempt % 7 == 0 {
                    let pct =
                        ((u64::from(attempt) * 100) / u64::from(max_attempts.max(1))).min(95) as u8;
                    job.progress = job.progress.max(pct);
                    progress.line(format!("Progress: {pct}%"));
                }
                let next = |operations, errors| JobPhase::Poll {
                    upscaling,
                    operations,
                    attempt: attempt + 1,
                    max_attempts,
                    errors,
                };
                let polled = self
                    .flow
                    .video_status(&ctx.token.at, &operations, ctx.project_id)
                    .await;
                let op = match polled {
                    Ok(ops) if !ops.is_empty() => ops,
                    Ok(_) | Err(_) => {
                        let why = match polled {
                            Err(e) => e.to_string(),
                            Ok(_) => "an empty status response".to_owned(),
                        };
                        if errors + 1 >= poll.max_poll_errors {
                            return fallback(
                                job,
                                upscaling,
                                failed(format!("video status kept failing: {why}")),
                                progress,
                            );
                        }
                        job.phase = next(operations, errors + 1);
                        return Ok(Some(poll.interval));
                    }
                };
                let first = op[0].clone();
                if first.is_successful() {
                    return self
                        .finish_operation(ctx, job, &first, upscaling, media_base, progress)
                        .await;
                }
                if first.is_failed() {
                    let (code, message) = first
                        .error
                        .clone()
                        .unwrap_or(("unknown".into(), "unknown error".into()));
                    let e = failed(format!("video generation failed: {message} (code: {code})"));
                    return fallback(job, upscaling, e, progress);
                }
                if first.is_error() {
                    return fallback(
                        job,
                        upscaling,
                        failed(format!("video generation failed: {}", first.status)),
                        progress,
                    );
                }
                if first.is_active() && attempt > poll.active_limit {
                    let e = GenerateError::VideoTimeout(format!(
                        "the operation stayed ACTIVE for more than {} polls",
                        poll.active_limit
                    ));
                    return fallback(job, upscaling, e, progress);
                }
                job.phase = next(op, 0);
                Ok(Some(poll.interval))
            }
        }
    }

    /// A finished operation: resolve its URL; then either the upsample comes next or the job
    /// is done.
    async fn finish_operation(
        &self,
        ctx: JobContext<'_>,
        job: &mut VideoJob,
        done: &VideoOperation,
        upscaling: bool,
        media_base: &str,
        progress: &Progress,
    ) -> Result<Option<Duration>, GenerateError> {
        let url = match self.resolve_video(ctx, done, media_base, progress).await {
            Ok(url) => url,
            Err(e) => return fallback(job, upscaling, e, progress),
        };
        let target = job.upsample.as_deref().and_then(VideoUpsample::from_slug);
        // `docs/upstream.md#video-url-resolution`: the UUID in the URL, else the media name.
        let media_id = media_uuid(&url).unwrap_or_else(|| done.reference().to_owned());
        job.media_id = Some(media_id.clone());
        if let (false, VideoInput::Extend { source }) = (upscaling, &job.input) {
            // Extend models deliver the source and the new clip joined (concat-submit and
            // concat-status).
            job.phase = JobPhase::Concat {
                source: source.clone(),
                clip: media_id,
            };
            job.url = Some(url);
            return Ok(Some(Duration::ZERO));
        }
        match (upscaling, target) {
            (false, Some(target)) => {
                progress.line(format!("Video ready; upscaling to {}...", target.label()));
                // The upsample input is the UUID in the video URL, else the media name
                // (`docs/upstream.md#video-url-resolution`).
                let source = media_id;
                job.aspect = done
                    .aspect_ratio
                    .clone()
                    .unwrap_or_else(|| job.aspect.clone());
                job.key = target.model_key().to_owned();
                job.input = VideoInput::Upsample {
                    source,
                    resolution: target.wire().to_owned(),
                };
                job.url = Some(url);
                job.phase = JobPhase::Submit { upscaling: true };
                Ok(Some(Duration::ZERO))
            }
            _ => {
                job.url.get_or_insert_with(|| url.clone());
                job.progress = 100;
                job.phase = JobPhase::Done { url };
                Ok(None)
            }
        }
    }

    /// Runs a whole video job in this request (steps back to back, sleeping in between).
    ///
    /// # Errors
    /// As [`Generator::advance_video_job`].
    pub async fn generate_video(
        &self,
        lease: &Lease,
        request: &VideoRequest,
        media_base: &str,
        poll: PollSettings,
        progress: &Progress,
    ) -> Result<Output, GenerateError> {
        let ctx = JobContext::from(lease);
        let mut job = self.start_video_job(ctx, request, progress).await?;
        while let Some(wait) = self
            .advance_video_job(ctx, &mut job, media_base, poll, progress)
            .await?
        {
            if !wait.is_zero() {
                self.clock.sleep(wait).await;
            }
        }
        Ok(Output {
            url: job.result().unwrap_or_default().to_owned(),
            kind: "video",
            media_id: job.media_id,
        })
    }

    async fn submit_video_with_retry(
        &self,
        ctx: JobContext<'_>,
        job: &VideoJob,
    ) -> Result<Vec<VideoOperation>, GenerateError> {
        // One session and batch per call; a new captcha and seed per attempt
        // (`docs/upstream.md#video-submit`).
        let sid = session_id(self.clock.now_ms());
        let batch_id = util::uuid_v4();
        let workflow_id = util::uuid_v4();
        let mut budget = Budget {
            upstream: self.max_retries,
            captcha: self.captcha_max_retries,
        };
        self.prefill(ctx.account, ctx.project_id, CaptchaAction::VideoGeneration)
            .await;
        let mut warmed_up = false;
        loop {
            let step = match self
                .solve(ctx.account, ctx.project_id, CaptchaAction::VideoGeneration)
                .await
            {
                Err(c) => self.judge(&mut budget, Err(c)),
                Ok(solution) => {
                    // Once per call, after the first token: what the web app sends before a
                    // submit (five calls at most, inside this step's subrequest budget).
                    if !std::mem::replace(&mut warmed_up, true) {
                        let st = &ctx.account.st;
                        self.flow
                            .warm_up(&WarmUp {
                                st: (!st.is_empty()).then_some(st),
                                project_id: ctx.project_id,
                                user_agent: &solution.user_agent,
                                identity: &solution.identity,
                                session_id: &sid,
                                now_ms: self.clock.now_ms(),
                            })
                            .await;
                    }
                    let submit = VideoSubmit {
                        project_id: ctx.project_id,
                        model_key: &job.key,
                        aspect: &job.aspect,
                        prompt: &job.prompt,
                        input: &job.input,
                        captcha_token: &solution.token,
                        user_agent: &solution.user_agent,
                        identity: &solution.identity,
                        session_id: &sid,
                        batch_id: &batch_id,
                        workflow_id: &workflow_id,
                        seed: (util::random_u64() % 99_999) as u32 + 1,
                        tier: ctx.account.tier,
                    };
                    let out = self
                        .submit_flow(&solution)
                        .submit_video(&ctx.token.at, &submit)
                        .await;
                    self.finish(ctx.account, &solution, &out).await;
                    match out {
                        Ok(ops) => Step::Done(ops),
                        Err(e) => {
                            self.note_submit(&ctx.account.id, &solution, &e);
                            self.judge(&mut budget, Ok(e))
                        }
                    }
                }
            };
            match step {
                Step::Done(ops) => return Ok(ops),
                Step::Fail(e) => return Err(e),
                Step::Retry(_) => self.clock.sleep(Duration::from_secs(1)).await,
            }
        }
    }

    /// The final URL: media-url-redirect, else the status's own `fifeUrl`, else the bytes
    /// (media-bytes) stored as media.
    async fn resolve_video(
        &self,
        ctx: JobContext<'_>,
        done: &VideoOperation,
        media_base: &str,
        progress: &Progress,
    ) -> Result<String, GenerateError> {
        let name = done.reference();
        let redirect = match self.flow.media_url(&ctx.account.st, name).await {
            Ok(Some(url)) => return Ok(url),
            Ok(None) => "an empty redirect".to_owned(),
            Err(e) => e.to_string(),
        };
        // Then the URL the status carried, then the bytes themselves.
        if let Some(url) = &done.embedded_url {
            return Ok(url.clone());
        }
        progress.line("Video ready; downloading it...");
        let bytes = self.flow.media_bytes(&ctx.token.at, name).await.map_err(|e| {
            failed(format!(
                "the video is ready but has no URL ({redirect}) and its bytes could not be read: {e}"
            ))
        })?;
        let id = self
            .store(
                Media {
                    content_type: "video/mp4".to_owned(),
                    bytes,
                }
                .into(),
            )
            .await
            .map_err(|e| failed(format!("storing the video failed: {e}")))?;
        Ok(format!("{}/media/{id}", media_base.trim_end_matches('/')))
    }
}

/// concat-status polls before the concatenation is abandoned (300 s at the default 3 s,
/// `docs/upstream.md#concat-status`).
const CONCAT_MAX_POLLS: u32 = 100;

/// A failed concatenation ends the job with the extension clip alone.
fn keep_clip(job: &mut VideoJob, why: &str, progress: &Progress) -> Option<Duration> {
    progress.line(format!(
        "Concatenation failed ({why}); returning the extension clip."
    ));
    job.progress = 100;
    job.phase = JobPhase::Done {
        url: job.url.clone().unwrap_or_default(),
    };
    None
}

/// A failure while upscaling ends the job with the original video; any other is the job's.
fn fallback(
    job: &mut VideoJob,
    upscaling: bool,
    e: GenerateError,
    progress: &Progress,
) -> Result<Option<Duration>, GenerateError> {
    match (upscaling, job.url.clone()) {
        (true, Some(url)) => {
            progress.line(format!(
                "Upscale failed ({e}); returning the original video."
            ));
            job.progress = 100;
            job.phase = JobPhase::Done { url };
            Ok(None)
        }
        _ => Err(e),
    }
}

/// The UUID in `/video/<uuid>` of a media URL.
pub(crate) fn media_uuid(url: &str) -> Option<String> {
    let rest = &url[url.find("/video/")? + "/video/".len()..];
    let id: String = rest.chars().take(36).collect();
    let looks_like_uuid = id.len() == 36
        && id.chars().enumerate().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    looks_like_uuid.then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_uuid_from_url() {
        assert_eq!(
            media_uuid(
                "https://flow-content.google/video/11111111-1111-1111-1111-111111111111?token=abc"
            )
            .as_deref(),
            Some("11111111-1111-1111-1111-111111111111")
        );
        assert_eq!(media_uuid("https://x/video/short"), None);
        assert_eq!(media_uuid("https://x/y"), None);
    }

    #[test]
    fn image_counts() {
        let lite = crate::models::find_video("veo_3_1_i2v_lite_landscape").unwrap();
        assert!(check_image_count(lite, 1).is_ok());
        assert!(check_image_count(lite, 2)
            .unwrap_err()
            .contains("exactly 1"));
        let r2v = crate::models::find_video("veo_3_1_r2v_fast").unwrap();
        assert!(check_image_count(r2v, 3).is_ok());
        assert!(check_image_count(r2v, 4).unwrap_err().contains("at most 3"));
    }
}
