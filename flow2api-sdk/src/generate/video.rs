//! The video pipeline (§5.3–§5.5): tier key adjustment, uploads, submit with retries, the
//! polling loop with its limits, the final URL (E16, else the E17 bytes stored as media), and
//! a real 1080p/4K upsample (the original's BUG in §5.5 returned the unscaled video).

use std::time::Duration;

use crate::flow::session_id;
use crate::flow::video::{VideoInput, VideoOperation, VideoSubmit};
use crate::models::{adjust_key_for_tier, single_image_key, VideoModel, VideoType, VideoUpsample};
use crate::pool::Lease;
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

/// The polling limits of §5.4.
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

/// Checks the image count against the model's rules (§5.3 step 2).
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

impl Generator {
    /// Runs the video pipeline on one leased account and returns the video URL.
    ///
    /// # Errors
    /// [`GenerateError`]: captcha/upstream budgets spent, a failed or stuck operation, or no
    /// URL for the result.
    pub async fn generate_video(
        &self,
        lease: &Lease,
        request: &VideoRequest,
        media_base: &str,
        poll: PollSettings,
        progress: &Progress,
    ) -> Result<Output, GenerateError> {
        let model = request.model;
        let (mut key, note) = adjust_key_for_tier(model, lease.account.tier);
        if let Some(note) = note {
            progress.line(note);
        }
        let project_id = lease.project_id.clone();
        let at = &lease.token.at;
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
                    .upload_image(at, &project_id, image)
                    .await
                    .map_err(GenerateError::Upstream)?;
                ids.push(id);
            }
        }
        let input = match (model.video_type, ids.as_slice()) {
            (VideoType::I2v, [start]) => {
                key = single_image_key(&key);
                VideoInput::StartImage(start.clone())
            }
            (VideoType::I2v, [start, end]) => VideoInput::StartEndImage(start.clone(), end.clone()),
            (VideoType::R2v | VideoType::Omni, refs) if !refs.is_empty() => {
                key = model.key_for_images(refs.len()).to_owned();
                VideoInput::ReferenceImages(refs.to_vec())
            }
            (VideoType::Extend, _) => match &request.extend_source {
                Some(source) => VideoInput::Extend(source.clone()),
                None => {
                    return Err(failed(
                        "an extend model needs the source video's media id".into(),
                    ))
                }
            },
            _ => VideoInput::Text,
        };
        progress.line("Submitting the video generation...");
        let operations = self
            .submit_video_with_retry(
                lease,
                &project_id,
                &key,
                model.aspect.wire(),
                &request.prompt,
                &input,
            )
            .await?;
        progress.line("Video generation running...");
        let max_attempts = if model.upsample.is_some() {
            poll.max_attempts * 3
        } else {
            poll.max_attempts
        };
        let done = self
            .poll_video(lease, &project_id, operations, poll, max_attempts, progress)
            .await?;
        let mut url = self
            .resolve_video(lease, &done, media_base, progress)
            .await?;
        if let Some(target) = model.upsample {
            match self
                .upsample_video(lease, &project_id, &done, &url, target, poll, progress)
                .await
            {
                Ok(Some(upsampled)) => url = upsampled,
                Ok(None) => {}
                Err(e) => progress.line(format!(
                    "Upscale failed ({e}); returning the original video."
                )),
            }
        }
        Ok(Output { url, kind: "video" })
    }

    async fn submit_video_with_retry(
        &self,
        lease: &Lease,
        project_id: &str,
        key: &str,
        aspect: &str,
        prompt: &str,
        input: &VideoInput,
    ) -> Result<Vec<VideoOperation>, GenerateError> {
        // One session and batch per call; a new captcha and seed per attempt (§1.10).
        let sid = session_id(self.clock.now_ms());
        let batch_id = util::uuid_v4();
        let workflow_id = util::uuid_v4();
        let mut budget = Budget {
            upstream: self.max_retries,
            captcha: self.captcha_max_retries,
        };
        loop {
            let step = match self.solve(project_id, CaptchaAction::VideoGeneration).await {
                Err(c) => self.judge(&mut budget, Err(c)),
                Ok(solution) => {
                    let submit = VideoSubmit {
                        project_id,
                        model_key: key,
                        aspect,
                        prompt,
                        input,
                        captcha_token: &solution.token,
                        user_agent: &solution.user_agent,
                        session_id: &sid,
                        batch_id: &batch_id,
                        workflow_id: &workflow_id,
                        seed: (util::random_u64() % 99_999) as u32 + 1,
                        tier: lease.account.tier,
                    };
                    match self.flow.submit_video(&lease.token.at, &submit).await {
                        Ok(ops) => Step::Done(ops),
                        Err(e) => self.judge(&mut budget, Ok(e)),
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

    /// Polls until the first operation succeeds (§5.4): sleep first, progress every 7 polls,
    /// `FAILED`/`…ERROR…` end it, `ACTIVE` past the limit and too many poll errors too.
    async fn poll_video(
        &self,
        lease: &Lease,
        project_id: &str,
        mut operations: Vec<VideoOperation>,
        poll: PollSettings,
        max_attempts: u32,
        progress: &Progress,
    ) -> Result<VideoOperation, GenerateError> {
        let mut errors = 0;
        let mut last_error = String::new();
        for attempt in 0..max_attempts {
            self.clock.sleep(poll.interval).await;
            if attempt % 7 == 0 {
                let pct = ((u64::from(attempt) * 100) / u64::from(max_attempts.max(1))).min(95);
                progress.line(format!("Progress: {pct}%"));
            }
            let polled = match self
                .flow
                .video_status(&lease.token.at, &operations, project_id)
                .await
            {
                Ok(ops) => ops,
                Err(e) => {
                    errors += 1;
                    last_error = e.to_string();
                    if errors >= poll.max_poll_errors {
                        return Err(failed(format!("video status kept failing: {e}")));
                    }
                    continue;
                }
            };
            let Some(op) = polled.first().cloned() else {
                errors += 1;
                last_error = "empty status response".to_owned();
                if errors >= poll.max_poll_errors {
                    return Err(failed("video status kept answering nothing".into()));
                }
                continue;
            };
            errors = 0;
            if op.is_successful() {
                return Ok(op);
            }
            if op.is_failed() {
                let (code, message) = op
                    .error
                    .clone()
                    .unwrap_or(("unknown".into(), "unknown error".into()));
                return Err(failed(format!(
                    "video generation failed: {message} (code: {code})"
                )));
            }
            if op.is_error() {
                return Err(failed(format!("video generation failed: {}", op.status)));
            }
            if op.is_active() && attempt > poll.active_limit {
                return Err(GenerateError::VideoTimeout(format!(
                    "the operation stayed ACTIVE for more than {} polls",
                    poll.active_limit
                )));
            }
            operations = polled;
        }
        Err(GenerateError::VideoTimeout(if last_error.is_empty() {
            format!("no result after {max_attempts} polls")
        } else {
            format!("no result after {max_attempts} polls; last error: {last_error}")
        }))
    }

    /// The final URL (E16); when it is empty, the bytes (E17) stored as media.
    async fn resolve_video(
        &self,
        lease: &Lease,
        done: &VideoOperation,
        media_base: &str,
        progress: &Progress,
    ) -> Result<String, GenerateError> {
        let name = done.reference();
        match self.flow.media_url(&lease.account.st, name).await {
            Ok(Some(url)) => return Ok(url),
            Ok(None) => {}
            Err(e) => {
                return Err(failed(format!(
                    "the video is ready but its URL could not be read: {e}"
                )))
            }
        }
        progress.line("Video ready; downloading it...");
        let bytes = self
            .flow
            .media_bytes(&lease.token.at, name)
            .await
            .map_err(|e| failed(format!("the video is ready but has no URL: {e}")))?;
        let id = self
            .media
            .put(Media {
                content_type: "video/mp4".to_owned(),
                bytes,
            })
            .await
            .map_err(|e| failed(format!("storing the video failed: {e}")))?;
        Ok(format!("{}/media/{id}", media_base.trim_end_matches('/')))
    }

    /// Submits the upsample of a finished video and polls it to its own URL.
    #[allow(clippy::too_many_arguments)]
    async fn upsample_video(
        &self,
        lease: &Lease,
        project_id: &str,
        done: &VideoOperation,
        url: &str,
        target: VideoUpsample,
        poll: PollSettings,
        progress: &Progress,
    ) -> Result<Option<String>, GenerateError> {
        progress.line(format!("Video ready; upscaling to {}...", target.label()));
        // The upsample input is the UUID in the video URL, else the media name (§5.5).
        let source = media_uuid(url).unwrap_or_else(|| done.reference().to_owned());
        let aspect = done
            .aspect_ratio
            .clone()
            .unwrap_or_else(|| "VIDEO_ASPECT_RATIO_LANDSCAPE".to_owned());
        let input = VideoInput::Upsample {
            source,
            resolution: target.wire().to_owned(),
        };
        let ops = self
            .submit_video_with_retry(lease, project_id, target.model_key(), &aspect, "", &input)
            .await?;
        progress.line("Upscale submitted; polling...");
        let up = self
            .poll_video(
                lease,
                project_id,
                ops,
                poll,
                poll.max_attempts * 3,
                progress,
            )
            .await?;
        let upsampled = self.resolve_video(lease, &up, "", progress).await?;
        Ok(Some(upsampled))
    }
}

/// The UUID in `/video/<uuid>` of a media URL.
pub fn media_uuid(url: &str) -> Option<String> {
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
