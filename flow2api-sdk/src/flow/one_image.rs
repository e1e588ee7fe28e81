//! [`FlowClient::image`]: one image from the typed client alone — a project (create-project)
//! unless one is given, a captcha token for it, and the generation (generate-image) — for
//! programs that use Flow without the gateway (see `docs/upstream.md#create-project` and
//! `docs/upstream.md#generate-image`). One attempt, no upsample, no account pool: the gateway's pipeline
//! (`generate`) adds those.

use crate::models::{ImageAspect, ImageModel};
use crate::seams::{CaptchaAction, CaptchaError, CaptchaRequest, CaptchaSolver};
use crate::secret::Secret;
use crate::util;

use super::headers::project_page;
use super::{
    session_id, FlowClient, FlowError, GeneratedImage, ImageGeneration, RECAPTCHA_SITE_KEY,
};

/// Upstream `imageModelName` of Gemini 3.1 Flash Image, the default of [`ImagePrompt`].
pub const DEFAULT_IMAGE_MODEL: &str = "NARWHAL";

/// Title of the project [`FlowClient::image`] creates when the prompt names none.
pub const IMAGE_PROJECT_TITLE: &str = "flow2api image";

/// What [`FlowClient::image`] draws: a prompt, with defaults for everything else (Gemini 3.1
/// Flash Image, landscape, a new project, a random seed).
///
/// ```
/// use flow2api_sdk::flow::ImagePrompt;
/// use flow2api_sdk::models::{find_image, ImageAspect};
///
/// let quick = ImagePrompt::new("a lighthouse at dawn");
/// let square = ImagePrompt::new("a lighthouse at dawn").aspect(ImageAspect::Square);
/// let pro = ImagePrompt::new("a lighthouse at dawn")
///     .model(find_image("gemini-3.0-pro-image-portrait").unwrap())
///     .project("an-existing-project-id")
///     .seed(42);
/// # let _ = (quick, square, pro);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ImagePrompt {
    /// The prompt.
    pub prompt: String,
    /// Upstream `imageModelName` (default [`DEFAULT_IMAGE_MODEL`]).
    pub model: String,
    /// Aspect ratio (default landscape).
    pub aspect: ImageAspect,
    /// A Flow project to generate in; `None` creates one (titled [`IMAGE_PROJECT_TITLE`]).
    pub project_id: Option<String>,
    /// Seed 1…999999; `None` picks one at random.
    pub seed: Option<u32>,
}

impl ImagePrompt {
    /// `prompt` with every default.
    pub fn new(prompt: impl Into<String>) -> Self {
        Self {
            prompt: prompt.into(),
            model: DEFAULT_IMAGE_MODEL.to_owned(),
            aspect: ImageAspect::Landscape,
            project_id: None,
            seed: None,
        }
    }

    /// The upstream model and aspect of a catalogue entry (see [`crate::models::find_image`]).
    /// Its upsample size is not applied: [`FlowClient::upsample_image`] does that.
    pub fn model(mut self, model: &ImageModel) -> Self {
        self.model = model.upstream.to_owned();
        self.aspect = model.aspect;
        self
    }

    /// The aspect ratio.
    pub fn aspect(mut self, aspect: ImageAspect) -> Self {
        self.aspect = aspect;
        self
    }

    /// Generates in an existing project (e.g. from [`FlowClient::create_project`]) rather
    /// than a new one.
    pub fn project(mut self, project_id: impl Into<String>) -> Self {
        self.project_id = Some(project_id.into());
        self
    }

    /// A fixed seed (clamped to 1…999999).
    pub fn seed(mut self, seed: u32) -> Self {
        self.seed = Some(seed.clamp(1, 999_999));
        self
    }
}

/// Why [`FlowClient::image`] failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// Flow refused or failed the project (create-project) or the generation
    /// (generate-image); see [`FlowError::blame`].
    #[error(transparent)]
    Flow(#[from] FlowError),
    /// The captcha solver gave no token.
    #[error(transparent)]
    Captcha(#[from] CaptchaError),
}

impl FlowClient {
    /// Generates one image: creates a project with the session token `st` unless `prompt`
    /// names one (create-project), has `captcha` solve a reCAPTCHA token for the project's
    /// page, and generates with the access token `at` (generate-image, with the solver's
    /// User-Agent). One attempt; the returned URL is Flow's signed link.
    ///
    /// # Errors
    /// [`ImageError::Captcha`] when the solver fails; [`ImageError::Flow`] when Flow refuses
    /// (captcha rejected, quota, content policy, a dead token…) or cannot be reached.
    pub async fn image(
        &self,
        st: &Secret,
        at: &Secret,
        captcha: &dyn CaptchaSolver,
        prompt: &ImagePrompt,
    ) -> Result<GeneratedImage, ImageError> {
        let project_id = match &prompt.project_id {
            Some(id) => id.clone(),
            None => self.create_project(st, IMAGE_PROJECT_TITLE).await?,
        };
        let solution = captcha
            .solve(&CaptchaRequest {
                site_key: RECAPTCHA_SITE_KEY.to_owned(),
                page_url: project_page(&project_id),
                action: CaptchaAction::ImageGeneration,
                page_action: None,
                project_id: project_id.clone(),
                account_id: None,
                egress: None,
            })
            .await?;
        let generation = ImageGeneration {
            project_id: &project_id,
            model: &prompt.model,
            aspect: prompt.aspect,
            prompt: &prompt.prompt,
            image_inputs: &[],
            captcha_token: &solution.token,
            user_agent: &solution.user_agent,
            identity: &solution.identity,
            session_id: &session_id(self.clock().now_ms()),
            seed: prompt
                .seed
                .unwrap_or_else(|| (util::random_u64() % 999_999) as u32 + 1),
        };
        Ok(self.generate_image(at, &generation).await?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use futures::executor::block_on;

    use super::*;
    use crate::seams::{boxed, BoxFuture, Bytes, CaptchaSolution, HttpRequest, TransportError};

    /// A clock at a fixed time that never sleeps.
    struct Still;

    impl crate::seams::Clock for Still {
        fn now_ms(&self) -> u64 {
            1_700_000_000_000
        }
        fn sleep(&self, _: std::time::Duration) -> BoxFuture<'static, ()> {
            boxed(std::future::pending())
        }
    }

    /// A solver that hands out one fixed token and records the page it was asked for.
    struct Solver(std::sync::Mutex<Vec<String>>);

    impl CaptchaSolver for Solver {
        fn solve<'a>(
            &'a self,
            request: &'a CaptchaRequest,
        ) -> BoxFuture<'a, Result<CaptchaSolution, CaptchaError>> {
            self.0.lock().unwrap().push(request.page_url.clone());
            boxed(async {
                Ok(CaptchaSolution {
                    token: Secret::new("captcha-token"),
                    user_agent: "solver-agent".to_owned(),
                    method: "test".to_owned(),
                    identity: Default::default(),
                    proxy_url: None,
                    session_id: None,
                })
            })
        }
    }

    fn answer(status: u16, body: &str) -> Result<crate::seams::HttpResponse, TransportError> {
        let mut resp = http::Response::new(Bytes::from(body.to_owned()));
        *resp.status_mut() = http::StatusCode::from_u16(status).unwrap();
        Ok(resp)
    }

    /// A fake Flow answering create-project and generate-image, recording each request's URL and body.
    fn flow(seen: Arc<std::sync::Mutex<Vec<(String, String)>>>) -> FlowClient {
        let http = move |req: HttpRequest| {
            let uri = req.uri().to_string();
            let body = String::from_utf8_lossy(req.body()).into_owned();
            seen.lock().unwrap().push((uri.clone(), body));
            async move {
                if uri.contains("createProject") {
                    answer(
                        200,
                        r#"{"result":{"data":{"json":{"result":{"projectId":"p-new"}}}}}"#,
                    )
                } else {
                    answer(
                        200,
                        r#"{"media":[{"name":"m1","image":{"generatedImage":{"fifeUrl":"https://img/1.png"}}}]}"#,
                    )
                }
            }
        };
        FlowClient::new(
            Arc::new(http),
            Arc::new(Still),
            "https://labs/fx/api",
            "https://api/v1",
        )
    }

    #[test]
    fn builder_defaults_and_overrides() {
        let p = ImagePrompt::new("cat");
        assert_eq!(
            (p.model.as_str(), p.aspect, &p.project_id, p.seed),
            (DEFAULT_IMAGE_MODEL, ImageAspect::Landscape, &None, None)
        );
        let pro = crate::models::find_image("gemini-3.0-pro-image-portrait-4k").unwrap();
        let p = ImagePrompt::new("cat").model(pro).project("p1").seed(0);
        assert_eq!(
            (p.model.as_str(), p.aspect, p.project_id.as_deref(), p.seed),
            ("GEM_PIX_2", ImageAspect::Portrait, Some("p1"), Some(1))
        );
    }

    #[test]
    fn creates_a_project_solves_for_its_page_and_generates_there() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let solver = Solver(Default::default());
        let client = flow(seen.clone());
        let img = block_on(client.image(
            &Secret::new("st"),
            &Secret::new("at"),
            &solver,
            &ImagePrompt::new("a lighthouse").seed(7),
        ))
        .unwrap();
        assert_eq!(img.url, "https://img/1.png");
        assert_eq!(img.media_id.as_deref(), Some("m1"));
        assert_eq!(*solver.0.lock().unwrap(), [project_page("p-new")]);
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        assert!(seen[0].0.contains("createProject"), "{seen:?}");
        assert!(seen[0].1.contains(IMAGE_PROJECT_TITLE));
        let (url, body) = &seen[1];
        assert_eq!(
            url,
            "https://api/v1/projects/p-new/flowMedia:batchGenerateImages"
        );
        for part in [
            "\"captcha-token\"",
            "\"NARWHAL\"",
            "\"a lighthouse\"",
            "\"seed\":7",
        ] {
            assert!(body.contains(part), "{part} in {body}");
        }
    }

    #[test]
    fn a_given_project_is_used_and_failures_keep_their_kind() {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let solver = Solver(Default::default());
        let client = flow(seen.clone());
        let prompt = ImagePrompt::new("x").project("p-old");
        block_on(client.image(&Secret::new("st"), &Secret::new("at"), &solver, &prompt)).unwrap();
        assert_eq!(seen.lock().unwrap().len(), 1, "no project created");
        assert!(seen.lock().unwrap()[0].0.contains("/projects/p-old/"));

        struct NoToken;
        impl CaptchaSolver for NoToken {
            fn solve<'a>(
                &'a self,
                _: &'a CaptchaRequest,
            ) -> BoxFuture<'a, Result<CaptchaSolution, CaptchaError>> {
                boxed(async {
                    Err(CaptchaError::new(
                        crate::seams::CaptchaErrorKind::NoCapacity,
                        "no slot",
                    ))
                })
            }
        }
        let err = block_on(client.image(&Secret::new("st"), &Secret::new("at"), &NoToken, &prompt))
            .unwrap_err();
        assert!(matches!(err, ImageError::Captcha(_)), "{err:?}");
        let _: &dyn std::error::Error = &err;

        let refusing = FlowClient::new(
            Arc::new(|_: HttpRequest| async {
                answer(
                    403,
                    r#"{"error":{"code":403,"message":"no","status":"PERMISSION_DENIED"}}"#,
                )
            }),
            Arc::new(Still),
            "https://labs",
            "https://api",
        );
        let err =
            block_on(refusing.image(&Secret::new("st"), &Secret::new("at"), &solver, &prompt))
                .unwrap_err();
        assert!(matches!(err, ImageError::Flow(_)), "{err:?}");
    }
}
