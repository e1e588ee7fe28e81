//! The image pipeline (`docs/upstream.md#image-pipeline`): upload references, generate with
//! retries, upsample, store.

use std::time::Duration;

use base64::Engine as _;

use crate::flow::Blame;
use crate::flow::{session_id, ImageGeneration, ImageUpsample};
use crate::models::ImageModel;
use crate::pool::Lease;
use crate::seams::{Bytes, CaptchaAction, Media};
use crate::secret::Secret;
use crate::util;

use super::{Budget, GenerateError, Generator, Output, Progress, Step};

/// One image generation.
#[derive(Debug, Clone)]
pub struct ImageRequest {
    /// The resolved model.
    pub model: &'static ImageModel,
    /// The prompt.
    pub prompt: String,
    /// Reference images, already loaded and checked.
    pub images: Vec<Bytes>,
}

impl Generator {
    /// Runs the image pipeline on one leased account and returns the image URL. Only captcha
    /// failures, upstream ones (5xx, network, a body cut off) and plain 429s are retried here;
    /// the rest end the attempt so that the caller can move to another account. `media_base` is the
    /// public base URL under which `/media/{id}` is served.
    ///
    /// # Errors
    /// [`GenerateError`] once the retry budgets are spent or on a final upstream refusal.
    pub async fn generate_image(
        &self,
        lease: &Lease,
        request: &ImageRequest,
        media_base: &str,
        progress: &Progress,
    ) -> Result<Output, GenerateError> {
        // Every call of this generation leaves the account's way (its proxy or relay).
        self.for_account(&lease.account)
            .generate_image_here(lease, request, media_base, progress)
            .await
    }

    async fn generate_image_here(
        &self,
        lease: &Lease,
        request: &ImageRequest,
        media_base: &str,
        progress: &Progress,
    ) -> Result<Output, GenerateError> {
        let project_id = lease.project_id.clone();
        if project_id.is_empty() {
            return Err(GenerateError::NoProject);
        }
        let at = lease.token.at.clone();
        let account = &lease.account;
        self.prefill(account, &project_id, CaptchaAction::ImageGeneration)
            .await;

        let mut inputs = Vec::with_capacity(request.images.len());
        if !request.images.is_empty() {
            let n = request.images.len();
            progress.line(format!("Uploading {n} reference image(s)..."));
            for (i, image) in request.images.iter().enumerate() {
                let id = self.upload_with_retry(&at, &project_id, image).await?;
                inputs.push(id);
                progress.line(format!("Uploaded image {}/{n}", i + 1));
            }
            progress.line("Reference images uploaded; solving the captcha...");
        } else {
            progress.line("Solving the captcha and submitting the image request...");
        }

        let mut budget = Budget {
            upstream: self.max_retries,
            captcha: self.captcha_max_retries,
        };
        let (generated, sid) = loop {
            let sid = session_id(self.clock.now_ms());
            let step = match self
                .solve(account, &project_id, CaptchaAction::ImageGeneration)
                .await
            {
                Err(c) => self.judge(&mut budget, Err(c)),
                Ok(solution) => {
                    let g = ImageGeneration {
                        project_id: &project_id,
                        model: request.model.upstream,
                        aspect: request.model.aspect,
                        prompt: &request.prompt,
                        image_inputs: &inputs,
                        captcha_token: &solution.token,
                        user_agent: &solution.user_agent,
                        identity: &solution.identity,
                        session_id: &sid,
                        seed: (util::random_u64() % 999_999) as u32 + 1,
                    };
                    let out = self.submit_flow(&solution).generate_image(&at, &g).await;
                    self.finish(account, &solution, &out).await;
                    match out {
                        Ok(img) => Step::Done(img),
                        Err(e) => {
                            self.note_submit(&account.id, &solution, &e);
                            self.judge(&mut budget, Ok(e))
                        }
                    }
                }
            };
            match step {
                Step::Done(img) => break (img, sid),
                Step::Fail(e) => return Err(e),
                Step::Retry(why) => {
                    progress.line(format!("{why}..."));
                    self.clock.sleep(Duration::from_secs(1)).await;
                }
            }
        };
        progress.line("Image generated.");

        if let (Some(target), Some(media_id)) =
            (request.model.upsample, generated.media_id.as_deref())
        {
            let label = target.label();
            progress.line(format!("Upscaling the image to {label}..."));
            match self
                .upsample_with_retry(account, &at, &project_id, media_id, target.wire(), &sid)
                .await
            {
                Ok(bytes) => {
                    progress.line(format!("Image upscaled to {label}; storing it..."));
                    let url = self.store_image(bytes, media_base, progress).await;
                    return Ok(Output {
                        url,
                        kind: "image",
                        media_id: None,
                    });
                }
                Err(e) => {
                    progress.line(format!(
                        "Upscale failed ({e}); returning the original image."
                    ));
                }
            }
        }
        let url = self
            .keep(generated.url, media_base, "image/jpeg", progress)
            .await;
        progress.line("Returning the image link...");
        Ok(Output {
            url,
            kind: "image",
            media_id: None,
        })
    }

    async fn upload_with_retry(
        &self,
        at: &Secret,
        project_id: &str,
        image: &[u8],
    ) -> Result<String, GenerateError> {
        let mut attempts = self.max_retries;
        loop {
            match self.flow.upload_image(at, project_id, image).await {
                Ok(id) => return Ok(id),
                Err(e) if e.blame() == Blame::Upstream && attempts > 1 => {
                    attempts -= 1;
                    self.clock.sleep(Duration::from_secs(1)).await;
                }
                Err(e) => return Err(GenerateError::Upstream(e)),
            }
        }
    }

    async fn upsample_with_retry(
        &self,
        account: &crate::pool::Account,
        at: &Secret,
        project_id: &str,
        media_id: &str,
        target: &str,
        sid: &str,
    ) -> Result<Bytes, GenerateError> {
        let mut budget = Budget {
            upstream: self.max_retries,
            captcha: self.captcha_max_retries,
        };
        loop {
            let step = match self
                .solve(account, project_id, CaptchaAction::ImageGeneration)
                .await
            {
                Err(c) => self.judge(&mut budget, Err(c)),
                Ok(solution) => {
                    let u = ImageUpsample {
                        project_id,
                        media_id,
                        target,
                        captcha_token: &solution.token,
                        user_agent: &solution.user_agent,
                        identity: &solution.identity,
                        session_id: sid,
                        tier: account.tier,
                    };
                    let out = self.submit_flow(&solution).upsample_image(at, &u).await;
                    self.finish(account, &solution, &out).await;
                    match out {
                        Ok(bytes) => Step::Done(bytes),
                        // An empty image is final (`docs/upstream.md#image-pipeline`): not retried.
                        Err(e) if e.is_parse() => Step::Fail(GenerateError::Upstream(e)),
                        Err(e) => {
                            self.note_submit(&account.id, &solution, &e);
                            self.judge(&mut budget, Ok(e))
                        }
                    }
                }
            };
            match step {
                Step::Done(b) => return Ok(b),
                Step::Fail(e) => return Err(e),
                Step::Retry(_) => self.clock.sleep(Duration::from_secs(1)).await,
            }
        }
    }

    /// Puts upsampled bytes in the media store; if that fails, inlines them as a `data:` URL.
    async fn store_image(&self, bytes: Bytes, media_base: &str, progress: &Progress) -> String {
        let content_type = crate::flow::sniff_mime(&bytes).to_owned();
        match self
            .store(
                Media {
                    content_type: content_type.clone(),
                    bytes: bytes.clone(),
                }
                .into(),
            )
            .await
        {
            Ok(id) => format!("{}/media/{id}", media_base.trim_end_matches('/')),
            Err(e) => {
                progress.line(format!(
                    "Storing failed ({e}); returning the image inline..."
                ));
                format!(
                    "data:{content_type};base64,{}",
                    base64::engine::general_purpose::STANDARD.encode(&bytes)
                )
            }
        }
    }
}
