//! The typed Flow client: one method per upstream endpoint, each written as build → send →
//! parse, with build and parse pure (see the `build_*`/`parse_*` functions).

pub mod concat;
mod error;
pub(crate) mod headers;
mod one_image;
pub mod video;
pub mod warm_up;
pub(crate) mod wire;

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use http::header::{HeaderMap, HeaderValue};
use http::Method;

use crate::models::{ImageAspect, Tier};
use crate::seams::{
    BrowserIdentity, Bytes, Clock, HttpClient, HttpRequest, HttpResponse, TransportError,
    TransportErrorKind,
};
use crate::secret::Secret;
use crate::transport::{json_body, request, send_with_timeout};
use crate::util;

pub use error::{Blame, FlowError};
pub use one_image::{ImageError, ImagePrompt, DEFAULT_IMAGE_MODEL, IMAGE_PROJECT_TITLE};
use wire::*;

/// reCAPTCHA Enterprise site key of Flow.
pub const RECAPTCHA_SITE_KEY: &str = "6LdsFiUsAAAAAIjVDZcuLhaHiDn5nnHVXVRQGeMV";
const TOOL: &str = "PINHOLE";
const RECAPTCHA_APP: &str = "RECAPTCHA_APPLICATION_TYPE_WEB";
const SESSION_COOKIE: &str = "__Secure-next-auth.session-token";

/// Per-call timeouts (`docs/upstream.md#common-request-rules`).
pub mod timeouts {
    use std::time::Duration;
    /// session-to-access-token, credits.
    pub const CONTROL: Duration = Duration::from_secs(10);
    /// create-project.
    pub const CREATE_PROJECT: Duration = Duration::from_secs(15);
    /// upload-image.
    pub const UPLOAD: Duration = Duration::from_secs(120);
    /// generate-image, per attempt.
    pub const GENERATE_IMAGE: Duration = Duration::from_secs(40);
    /// upsample-image.
    pub const UPSAMPLE_IMAGE: Duration = Duration::from_secs(300);
    /// the video submits, per attempt.
    pub const VIDEO_SUBMIT: Duration = Duration::from_secs(75);
    /// video-status.
    pub const VIDEO_POLL: Duration = Duration::from_secs(45);
    /// media-bytes.
    pub const MEDIA_BYTES: Duration = Duration::from_secs(120);
    /// concat-submit (the original's default `flow.timeout`).
    pub const CONCAT_SUBMIT: Duration = Duration::from_secs(120);
    /// concat-status.
    pub const CONCAT_STATUS: Duration = Duration::from_secs(300);
}

/// session-to-access-token result: a session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The access token.
    pub access_token: Secret,
    /// Its expiry (Unix ms), when Google said.
    pub expires_ms: Option<u64>,
    /// Account email.
    pub email: Option<String>,
    /// Display name (defaults to the email's local part).
    pub name: Option<String>,
}

/// credits result.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Credits {
    /// Remaining credits.
    pub credits: i64,
    /// Paygate tier.
    pub tier: Tier,
}

/// generate-image inputs.
#[derive(Debug, Clone)]
pub struct ImageGeneration<'a> {
    /// Flow project.
    pub project_id: &'a str,
    /// `imageModelName`.
    pub model: &'a str,
    /// Aspect ratio.
    pub aspect: ImageAspect,
    /// Prompt.
    pub prompt: &'a str,
    /// Uploaded reference media ids.
    pub image_inputs: &'a [String],
    /// reCAPTCHA token.
    pub captcha_token: &'a Secret,
    /// The solver's User-Agent (the submit must use it).
    pub user_agent: &'a str,
    /// The rest of the solver's browser identity, sent alike.
    pub identity: &'a BrowserIdentity,
    /// `;<epoch-ms>` for this attempt.
    pub session_id: &'a str,
    /// Seed 1…999999.
    pub seed: u32,
}

/// generate-image result.
#[derive(Debug, Clone)]
pub struct GeneratedImage {
    /// Media id (for upsampling).
    pub media_id: Option<String>,
    /// Signed image URL.
    pub url: String,
}

/// upsample-image inputs.
#[derive(Debug, Clone)]
pub struct ImageUpsample<'a> {
    /// Project of the generation.
    pub project_id: &'a str,
    /// generate-image media id.
    pub media_id: &'a str,
    /// `UPSAMPLE_IMAGE_RESOLUTION_…`.
    pub target: &'a str,
    /// reCAPTCHA token.
    pub captcha_token: &'a Secret,
    /// The solver's User-Agent.
    pub user_agent: &'a str,
    /// The rest of the solver's browser identity, sent alike.
    pub identity: &'a BrowserIdentity,
    /// The generation's session id.
    pub session_id: &'a str,
    /// The account's tier.
    pub tier: Tier,
}

/// The Flow client over an [`HttpClient`].
#[derive(Clone)]
pub struct FlowClient {
    http: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
    labs_base: String,
    api_base: String,
    /// Set on every request this client sends (an account's own egress); `None`: the HTTP
    /// client's defaults.
    egress: Option<crate::seams::Egress>,
}

impl std::fmt::Debug for FlowClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowClient")
            .field("labs_base", &self.labs_base)
            .field("api_base", &self.api_base)
            .finish_non_exhaustive()
    }
}

/// `;<epoch-ms>`, Flow's session id format.
pub(crate) fn session_id(now_ms: u64) -> String {
    format!(";{now_ms}")
}

/// MIME type by magic bytes (`docs/upstream.md#upload-image`); unknown or short input is
/// `image/jpeg`.
pub(crate) fn sniff_mime(bytes: &[u8]) -> &'static str {
    if bytes.len() < 12 {
        return "image/jpeg";
    }
    if &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        "image/webp"
    } else if bytes.starts_with(b"\x89PNG") {
        "image/png"
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        "image/jpeg"
    } else if bytes.starts_with(b"GIF87a") || bytes.starts_with(b"GIF89a") {
        "image/gif"
    } else if bytes.starts_with(b"BM") {
        "image/bmp"
    } else if bytes.starts_with(&[0, 0, 0, 0x0C, 0x6A, 0x50]) {
        "image/jp2"
    } else {
        "image/jpeg"
    }
}

fn with_bearer(mut h: HeaderMap, at: &Secret) -> HeaderMap {
    if let Ok(v) = HeaderValue::from_str(&format!("Bearer {}", at.expose())) {
        h.insert(http::header::AUTHORIZATION, v);
    }
    h
}

fn with_session_cookie(mut h: HeaderMap, st: &Secret) -> HeaderMap {
    if let Ok(v) = HeaderValue::from_str(&format!("{SESSION_COOKIE}={}", st.expose())) {
        h.insert(http::header::COOKIE, v);
    }
    h
}

/// Parses a 2xx body. A body that ends before its JSON does (cut off in transit, as Google's
/// front end sometimes answers) is a transport failure, not a parse one: nothing usable arrived,
/// so it is retried like a dropped connection and never read as a change of Google's format.
fn parse_json<T: serde::de::DeserializeOwned>(
    endpoint: &'static str,
    resp: &HttpResponse,
) -> Result<T, FlowError> {
    serde_json::from_slice(resp.body()).map_err(|e| {
        if e.is_eof() {
            FlowError::transport(
                endpoint,
                TransportError::new(
                    TransportErrorKind::Other,
                    format!("the response body was cut off: {e}"),
                ),
            )
        } else {
            FlowError::parse(endpoint, format!("invalid JSON: {e}"), resp.body())
        }
    })
}

fn check_status(endpoint: &'static str, resp: &HttpResponse) -> Result<(), FlowError> {
    let status = resp.status().as_u16();
    if status >= 400 {
        return Err(FlowError::from_status(endpoint, status, resp.body()));
    }
    Ok(())
}

fn recaptcha<'a>(token: &'a Secret) -> Option<RecaptchaContext<'a>> {
    Some(RecaptchaContext {
        token: token.expose(),
        application_type: RECAPTCHA_APP,
    })
}

impl FlowClient {
    /// A client for the given base URLs (`FLOW_LABS_BASE_URL`, `FLOW_API_BASE_URL`).
    pub fn new(
        http: Arc<dyn HttpClient>,
        clock: Arc<dyn Clock>,
        labs_base: &str,
        api_base: &str,
    ) -> Self {
        Self {
            http,
            clock,
            labs_base: labs_base.trim_end_matches('/').to_owned(),
            api_base: api_base.trim_end_matches('/').to_owned(),
            egress: None,
        }
    }

    /// The same client sending every request through `egress` (an account's proxy or relay,
    /// or the one a captcha solver named for the submit).
    #[must_use]
    pub fn with_egress(&self, egress: crate::seams::Egress) -> Self {
        Self {
            egress: Some(egress),
            ..self.clone()
        }
    }

    /// The clock this client times out with.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The HTTP client it sends with (also what fetches Flow's result links).
    pub(crate) fn http(&self) -> &Arc<dyn HttpClient> {
        &self.http
    }

    /// Sends one request with a deadline and maps every failure to a [`FlowError`].
    async fn send(
        &self,
        endpoint: &'static str,
        req: Result<HttpRequest, TransportError>,
        timeout: Duration,
    ) -> Result<HttpResponse, FlowError> {
        let mut req = req.map_err(|e| FlowError::transport(endpoint, e))?;
        if let Some(egress) = &self.egress {
            req.extensions_mut().insert(egress.clone());
        }
        let resp = send_with_timeout(&*self.http, &*self.clock, req, timeout)
            .await
            .map_err(|e| FlowError::transport(endpoint, e))?;
        check_status(endpoint, &resp)?;
        Ok(resp)
    }

    // ---- session-to-access-token ----------------------------------------------------------------

    /// Builds session-to-access-token `GET {labs}/auth/session`.
    pub fn build_session(&self, st: &Secret) -> Result<HttpRequest, TransportError> {
        let h = with_session_cookie(headers::profile_d(headers::FALLBACK_USER_AGENT, None), st);
        request(
            Method::GET,
            &format!("{}/auth/session", self.labs_base),
            h,
            Bytes::new(),
        )
    }

    /// Parses session-to-access-token. An ST that no longer works answers `{}`: that is an auth
    /// error.
    pub fn parse_session(resp: &HttpResponse) -> Result<Session, FlowError> {
        let s: SessionResponse = parse_json("session", resp)?;
        let Some(at) = s.access_token.filter(|a| !a.is_empty()) else {
            return Err(FlowError::from_status(
                "session",
                401,
                br#"{"error":{"code":401,"message":"session token no longer yields an access token","status":"UNAUTHENTICATED"}}"#,
            ));
        };
        let user = s.user.unwrap_or_default();
        let name = user.name.or_else(|| {
            user.email
                .as_deref()
                .and_then(|e| e.split('@').next())
                .map(str::to_owned)
        });
        Ok(Session {
            access_token: Secret::new(at),
            expires_ms: s.expires.as_deref().and_then(util::parse_rfc3339_ms),
            email: user.email,
            name,
        })
    }

    /// session-to-access-token: exchanges a session token for an access token.
    ///
    /// # Errors
    /// [`FlowError::is_auth`] when the ST is no longer valid; transport and parse errors.
    pub async fn session(&self, st: &Secret) -> Result<Session, FlowError> {
        let resp = self
            .send("session", self.build_session(st), timeouts::CONTROL)
            .await?;
        Self::parse_session(&resp)
    }

    // ---- credits --------------------------------------------------------------------------------

    /// Builds credits `GET {api}/credits`.
    pub fn build_credits(&self, at: &Secret) -> Result<HttpRequest, TransportError> {
        let h = with_bearer(headers::profile_d(headers::FALLBACK_USER_AGENT, None), at);
        request(
            Method::GET,
            &format!("{}/credits", self.api_base),
            h,
            Bytes::new(),
        )
    }

    /// Parses credits.
    pub fn parse_credits(resp: &HttpResponse) -> Result<Credits, FlowError> {
        let c: CreditsResponse = parse_json("credits", resp)?;
        Ok(Credits {
            credits: c.credits.unwrap_or(0.0) as i64,
            tier: Tier::from_paygate(c.user_paygate_tier.as_deref()),
        })
    }

    /// credits: credits and tier.
    ///
    /// # Errors
    /// [`FlowError::is_auth`] for a dead AT; transport and parse errors.
    pub async fn credits(&self, at: &Secret) -> Result<Credits, FlowError> {
        let resp = self
            .send("credits", self.build_credits(at), timeouts::CONTROL)
            .await?;
        Self::parse_credits(&resp)
    }

    // ---- create-project -------------------------------------------------------------------------

    /// Builds create-project `POST {labs}/trpc/project.createProject`.
    pub fn build_create_project(
        &self,
        st: &Secret,
        title: &str,
    ) -> Result<HttpRequest, TransportError> {
        let h = with_session_cookie(headers::profile_d(headers::FALLBACK_USER_AGENT, None), st);
        let body = json_body(&CreateProjectRequest {
            json: CreateProjectJson {
                project_title: title,
                tool_name: TOOL,
            },
        });
        request(
            Method::POST,
            &format!("{}/trpc/project.createProject", self.labs_base),
            h,
            body,
        )
    }

    /// Parses create-project: the id at `result.data.json.result.projectId`.
    pub fn parse_create_project(resp: &HttpResponse) -> Result<String, FlowError> {
        let v: serde_json::Value = parse_json("create_project", resp)?;
        v.pointer("/result/data/json/result/projectId")
            .and_then(|p| p.as_str())
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| FlowError::parse("create_project", "missing projectId", resp.body()))
    }

    /// create-project: creates a Flow project and returns its id.
    ///
    /// # Errors
    /// Upstream, transport and parse errors.
    pub async fn create_project(&self, st: &Secret, title: &str) -> Result<String, FlowError> {
        let resp = self
            .send(
                "create_project",
                self.build_create_project(st, title),
                timeouts::CREATE_PROJECT,
            )
            .await?;
        Self::parse_create_project(&resp)
    }

    // ---- upload-image ---------------------------------------------------------------------------

    /// Builds upload-image `POST {api}/flow/uploadImage`.
    pub fn build_upload_image(
        &self,
        at: &Secret,
        project_id: &str,
        image: &[u8],
        now_ms: u64,
    ) -> Result<HttpRequest, TransportError> {
        let mime = sniff_mime(image);
        let ext = if mime.contains("png") { "png" } else { "jpg" };
        let sid = session_id(now_ms);
        let body = json_body(&UploadImageRequest {
            client_context: ClientContext {
                recaptcha_context: None,
                session_id: &sid,
                project_id: Some(project_id),
                tool: TOOL,
                user_paygate_tier: None,
            },
            file_name: format!("flow2api_upload_{now_ms}.{ext}"),
            image_bytes: base64::engine::general_purpose::STANDARD.encode(image),
            is_hidden: false,
            is_user_uploaded: true,
            mime_type: mime,
        });
        let h = with_bearer(
            headers::profile_d(headers::FALLBACK_USER_AGENT, Some(project_id)),
            at,
        );
        request(
            Method::POST,
            &format!("{}/flow/uploadImage", self.api_base),
            h,
            body,
        )
    }

    /// Parses upload-image: `media.name` (object or array), else
    /// `mediaGenerationId.mediaGenerationId`.
    pub fn parse_upload_image(resp: &HttpResponse) -> Result<String, FlowError> {
        let r: UploadImageResponse = parse_json("upload_image", resp)?;
        let from_media = match &r.media {
            Some(serde_json::Value::Array(items)) => items.iter().find_map(|m| {
                m.get("name")
                    .and_then(|n| n.as_str())
                    .filter(|n| !n.is_empty())
            }),
            Some(m) => m
                .get("name")
                .and_then(|n| n.as_str())
                .filter(|n| !n.is_empty()),
            None => None,
        };
        from_media
            .or_else(|| {
                r.media_generation_id
                    .as_ref()
                    .and_then(|m| m.get("mediaGenerationId"))
                    .and_then(|n| n.as_str())
                    .filter(|n| !n.is_empty())
            })
            .map(str::to_owned)
            .ok_or_else(|| FlowError::parse("upload_image", "missing media id", resp.body()))
    }

    /// upload-image: uploads a reference image into a project and returns its media id.
    ///
    /// # Errors
    /// Upstream, transport and parse errors.
    pub async fn upload_image(
        &self,
        at: &Secret,
        project_id: &str,
        image: &[u8],
    ) -> Result<String, FlowError> {
        let req = self.build_upload_image(at, project_id, image, self.clock.now_ms());
        let resp = self.send("upload_image", req, timeouts::UPLOAD).await?;
        Self::parse_upload_image(&resp)
    }

    // ---- generate-image -------------------------------------------------------------------------

    /// Builds generate-image `POST {api}/projects/{PID}/flowMedia:batchGenerateImages`.
    pub fn build_generate_image(
        &self,
        at: &Secret,
        g: &ImageGeneration<'_>,
    ) -> Result<HttpRequest, TransportError> {
        let ctx = ClientContext {
            recaptcha_context: recaptcha(g.captcha_token),
            session_id: g.session_id,
            project_id: Some(g.project_id),
            tool: TOOL,
            user_paygate_tier: None,
        };
        let body = json_body(&GenerateImagesRequest {
            client_context: ctx.clone(),
            media_generation_context: MediaGenerationContext {
                batch_id: util::uuid_v4(),
            },
            use_new_media: true,
            requests: vec![ImageGenerationRequest {
                client_context: ctx,
                seed: g.seed,
                image_model_name: g.model,
                image_aspect_ratio: g.aspect.wire(),
                structured_prompt: StructuredPrompt {
                    parts: vec![TextPart { text: g.prompt }],
                },
                image_inputs: g
                    .image_inputs
                    .iter()
                    .map(|name| ImageInput {
                        name,
                        image_input_type: "IMAGE_INPUT_TYPE_REFERENCE",
                    })
                    .collect(),
            }],
        });
        let h = with_bearer(
            headers::with_identity(headers::profile_m(g.user_agent), g.identity),
            at,
        );
        let url = format!(
            "{}/projects/{}/flowMedia:batchGenerateImages",
            self.api_base, g.project_id
        );
        request(Method::POST, &url, h, body)
    }

    /// Parses generate-image: the first media's id and `fifeUrl`.
    pub fn parse_generate_image(resp: &HttpResponse) -> Result<GeneratedImage, FlowError> {
        let r: GenerateImagesResponse = parse_json("generate_image", resp)?;
        let Some(first) = r.media.into_iter().next() else {
            return Err(FlowError::parse(
                "generate_image",
                "empty result: no media",
                resp.body(),
            ));
        };
        let url = first
            .image
            .and_then(|i| i.generated_image)
            .and_then(|g| g.fife_url)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| FlowError::parse("generate_image", "missing fifeUrl", resp.body()))?;
        Ok(GeneratedImage {
            media_id: first.name,
            url,
        })
    }

    /// generate-image: generates one image.
    ///
    /// # Errors
    /// Upstream (captcha rejection, quota, content policy…), transport and parse errors.
    pub async fn generate_image(
        &self,
        at: &Secret,
        g: &ImageGeneration<'_>,
    ) -> Result<GeneratedImage, FlowError> {
        let resp = self
            .send(
                "generate_image",
                self.build_generate_image(at, g),
                timeouts::GENERATE_IMAGE,
            )
            .await?;
        Self::parse_generate_image(&resp)
    }

    // ---- upsample-image -------------------------------------------------------------------------

    /// Builds upsample-image `POST {api}/flow/upsampleImage`.
    pub fn build_upsample_image(
        &self,
        at: &Secret,
        u: &ImageUpsample<'_>,
    ) -> Result<HttpRequest, TransportError> {
        let body = json_body(&UpsampleImageRequest {
            media_id: u.media_id,
            target_resolution: u.target,
            client_context: ClientContext {
                recaptcha_context: recaptcha(u.captcha_token),
                session_id: u.session_id,
                project_id: Some(u.project_id),
                tool: TOOL,
                user_paygate_tier: Some(u.tier.as_paygate()),
            },
        });
        let h = with_bearer(
            headers::with_identity(
                headers::profile_d(u.user_agent, Some(u.project_id)),
                u.identity,
            ),
            at,
        );
        request(
            Method::POST,
            &format!("{}/flow/upsampleImage", self.api_base),
            h,
            body,
        )
    }

    /// Parses upsample-image: the decoded image bytes. An empty `encodedImage` is an error.
    pub fn parse_upsample_image(resp: &HttpResponse) -> Result<Bytes, FlowError> {
        let r: UpsampleImageResponse = parse_json("upsample_image", resp)?;
        let b64 = r.encoded_image.unwrap_or_default();
        if b64.is_empty() {
            return Err(FlowError::parse(
                "upsample_image",
                "empty encodedImage",
                resp.body(),
            ));
        }
        base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map(Bytes::from)
            .map_err(|e| FlowError::parse("upsample_image", format!("invalid base64: {e}"), b""))
    }

    /// upsample-image: upsamples a generated image to 2K or 4K and returns the JPEG bytes.
    ///
    /// # Errors
    /// Upstream, transport and parse errors.
    pub async fn upsample_image(
        &self,
        at: &Secret,
        u: &ImageUpsample<'_>,
    ) -> Result<Bytes, FlowError> {
        let resp = self
            .send(
                "upsample_image",
                self.build_upsample_image(at, u),
                timeouts::UPSAMPLE_IMAGE,
            )
            .await?;
        Self::parse_upsample_image(&resp)
    }
}

/// A client whose every call fails to connect, for the tests of the pure build and parse
/// functions.
#[cfg(test)]
pub(crate) fn offline_client() -> FlowClient {
    let http = |_req: HttpRequest| async {
        Err::<HttpResponse, _>(TransportError::new(
            crate::seams::TransportErrorKind::Connect,
            "offline",
        ))
    };
    FlowClient::new(
        Arc::new(http),
        Arc::new(crate::memory::ManualClock::new(0)),
        "https://labs/fx/api/",
        "https://api/v1",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client() -> FlowClient {
        super::offline_client()
    }

    fn resp(status: u16, body: &str) -> HttpResponse {
        http::Response::builder()
            .status(status)
            .body(Bytes::from(body.to_owned()))
            .unwrap()
    }

    #[test]
    fn builds_generate_image_per_spec() {
        let token = Secret::new("tok");
        let req = client()
            .build_generate_image(
                &Secret::new("ya29.at"),
                &ImageGeneration {
                    project_id: "pid",
                    model: "NARWHAL",
                    aspect: ImageAspect::Square,
                    prompt: "a cat",
                    image_inputs: &["m1".to_owned()],
                    captcha_token: &token,
                    user_agent: "UA/1 Chrome/147.0",
                    identity: &BrowserIdentity::default(),
                    session_id: ";1",
                    seed: 7,
                },
            )
            .unwrap();
        assert_eq!(
            req.uri(),
            "https://api/v1/projects/pid/flowMedia:batchGenerateImages"
        );
        assert_eq!(req.headers()["authorization"], "Bearer ya29.at");
        assert_eq!(req.headers()["user-agent"], "UA/1 Chrome/147.0");
        let v: serde_json::Value = serde_json::from_slice(req.body()).unwrap();
        assert_eq!(v["clientContext"]["recaptchaContext"]["token"], "tok");
        assert_eq!(v["clientContext"], v["requests"][0]["clientContext"]);
        assert_eq!(v["useNewMedia"], true);
        assert_eq!(
            v["requests"][0]["imageAspectRatio"],
            "IMAGE_ASPECT_RATIO_SQUARE"
        );
        assert_eq!(
            v["requests"][0]["structuredPrompt"]["parts"][0]["text"],
            "a cat"
        );
        assert_eq!(
            v["requests"][0]["imageInputs"][0]["imageInputType"],
            "IMAGE_INPUT_TYPE_REFERENCE"
        );
        assert!(v["clientContext"].get("userPaygateTier").is_none());
        assert_eq!(
            v["mediaGenerationContext"]["batchId"]
                .as_str()
                .unwrap()
                .len(),
            36
        );
    }

    #[test]
    fn parses_tolerantly() {
        let s = FlowClient::parse_session(&resp(
            200,
            r#"{"user":{"email":"a@b.c"},"expires":"2025-11-15T04:46:04.000Z","access_token":"ya29.x","extra":1}"#,
        ))
        .unwrap();
        assert_eq!(s.name.as_deref(), Some("a"));
        assert_eq!(s.expires_ms, Some(1_763_181_964_000));
        assert!(FlowClient::parse_session(&resp(200, "{}"))
            .unwrap_err()
            .is_auth());
        assert_eq!(
            FlowClient::parse_credits(&resp(
                200,
                r#"{"credits":920,"userPaygateTier":"PAYGATE_TIER_ONE"}"#
            ))
            .unwrap(),
            Credits {
                credits: 920,
                tier: Tier::Pro
            }
        );
        assert_eq!(
            FlowClient::parse_credits(&resp(200, "{}")).unwrap().tier,
            Tier::Free
        );
        assert_eq!(
            FlowClient::parse_upload_image(&resp(200, r#"{"media":[{"name":""},{"name":"m2"}]}"#))
                .unwrap(),
            "m2"
        );
        assert_eq!(
            FlowClient::parse_upload_image(&resp(
                200,
                r#"{"mediaGenerationId":{"mediaGenerationId":"g"}}"#
            ))
            .unwrap(),
            "g"
        );
        // An empty legacy id is no id (found by the `flow_responses` fuzz target).
        assert!(FlowClient::parse_upload_image(&resp(
            200,
            r#"{"mediaGenerationId":{"mediaGenerationId":""}}"#
        ))
        .unwrap_err()
        .is_parse());
        assert!(
            FlowClient::parse_generate_image(&resp(200, r#"{"media":[]}"#))
                .unwrap_err()
                .is_parse()
        );
        // A body cut off mid-JSON is a transport failure (retried, never the account's fault);
        // a body that is complete but not JSON stays a parse failure.
        let cut = FlowClient::parse_generate_image(&resp(200, r#"{"media": ["#)).unwrap_err();
        assert!(cut.is_transport() && !cut.is_parse(), "{cut}");
        assert_eq!(cut.blame(), Blame::Upstream);
        assert!(cut.to_string().contains("cut off"), "{cut}");
        let html = FlowClient::parse_generate_image(&resp(200, "<html>")).unwrap_err();
        assert!(html.is_parse() && !html.is_transport(), "{html}");
        let g = FlowClient::parse_generate_image(&resp(
            200,
            r#"{"media":[{"name":"m","image":{"generatedImage":{"fifeUrl":"https://x/y"}}}]}"#,
        ))
        .unwrap();
        assert_eq!(
            (g.media_id.as_deref(), g.url.as_str()),
            (Some("m"), "https://x/y")
        );
        assert!(FlowClient::parse_upsample_image(&resp(200, r#"{"encodedImage":""}"#)).is_err());
        assert_eq!(
            FlowClient::parse_create_project(&resp(
                200,
                r#"{"result":{"data":{"json":{"result":{"projectId":"p"}}}}}"#
            ))
            .unwrap(),
            "p"
        );
    }

    #[test]
    fn sniffs_mime() {
        assert_eq!(sniff_mime(b"\x89PNG\r\n\x1a\n0000"), "image/png");
        assert_eq!(sniff_mime(b"RIFF0000WEBPVP8 "), "image/webp");
        assert_eq!(sniff_mime(b"abc"), "image/jpeg");
    }
}
