//! Video endpoints (video-submit to media-bytes, `docs/upstream.md#video-submit`): submit bodies
//! per kind, the tolerant normalisation of the two response shapes Google has used (`operations`
//! and `workflows`/`media`), status polling, the final media URL and the media-bytes fallback.
//! Build and parse are pure. (concat-submit and concat-status, concatenation, are in
//! [`super::concat`].)

use base64::Engine as _;
use http::Method;
use serde_json::{json, Value};

use crate::models::Tier;
use crate::seams::{Bytes, HttpRequest, HttpResponse, TransportError};
use crate::secret::Secret;

use super::{headers, request, timeouts, with_bearer, FlowClient, FlowError};

/// Default status when a response names none.
pub const STATUS_PENDING: &str = "MEDIA_GENERATION_STATUS_PENDING";

/// What a submit generates from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum VideoInput {
    /// video-submit-text: text only (also R2V and omni without images).
    Text,
    /// video-submit-start-image: a first frame.
    StartImage {
        /// Uploaded media id.
        start: String,
    },
    /// video-submit-start-end-image: first and last frames.
    StartEndImage {
        /// First frame media id.
        start: String,
        /// Last frame media id.
        end: String,
    },
    /// video-submit-reference-images: up to 3 reference images.
    ReferenceImages {
        /// Uploaded media ids.
        refs: Vec<String>,
    },
    /// video-submit-extend: extend a generated video.
    Extend {
        /// Source video media id.
        source: String,
    },
    /// video-submit-upsample: upsample a generated video to `resolution`
    /// (`VIDEO_RESOLUTION_1080P`/`_4K`).
    Upsample {
        /// Source video media id.
        source: String,
        /// Target resolution.
        resolution: String,
    },
}

impl VideoInput {
    fn path(&self) -> &'static str {
        match self {
            Self::Text => "video:batchAsyncGenerateVideoText",
            Self::StartImage { .. } => "video:batchAsyncGenerateVideoStartImage",
            Self::StartEndImage { .. } => "video:batchAsyncGenerateVideoStartAndEndImage",
            Self::ReferenceImages { .. } => "video:batchAsyncGenerateVideoReferenceImages",
            Self::Extend { .. } => "video:batchAsyncGenerateVideoExtendVideo",
            Self::Upsample { .. } => "video:batchAsyncGenerateVideoUpsampleVideo",
        }
    }
}

/// One video submit (per attempt: a new captcha token and seed; per call: one session and
/// batch id).
#[derive(Debug, Clone)]
pub struct VideoSubmit<'a> {
    /// Flow project.
    pub project_id: &'a str,
    /// `videoModelKey` (already adjusted to the account's tier).
    pub model_key: &'a str,
    /// `VIDEO_ASPECT_RATIO_…`.
    pub aspect: &'a str,
    /// Prompt (unused by upsample).
    pub prompt: &'a str,
    /// What to generate from.
    pub input: &'a VideoInput,
    /// reCAPTCHA token (action `VIDEO_GENERATION`).
    pub captcha_token: &'a Secret,
    /// The solver's User-Agent.
    pub user_agent: &'a str,
    /// The rest of the solver's browser identity, sent alike.
    pub identity: &'a crate::seams::BrowserIdentity,
    /// `;<epoch-ms>`, one per call.
    pub session_id: &'a str,
    /// UUID v4, one per call.
    pub batch_id: &'a str,
    /// UUID v4 for extend's `workflowId` / upsample's `sceneId`.
    pub workflow_id: &'a str,
    /// 1…99999, one per attempt.
    pub seed: u32,
    /// The account's tier.
    pub tier: Tier,
}

/// A video operation, normalised from either response shape.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct VideoOperation {
    /// `operation.name` (the task id).
    pub name: String,
    /// The media name, used to poll and to resolve the URL.
    pub media_name: Option<String>,
    /// Project of the media.
    pub project_id: Option<String>,
    /// `MEDIA_GENERATION_STATUS_…`.
    pub status: String,
    /// Scene or workflow id.
    pub scene_id: Option<String>,
    /// `VIDEO_ASPECT_RATIO_…` of the result, when known.
    pub aspect_ratio: Option<String>,
    /// A URL embedded in the response (the second choice for delivery:
    /// `docs/upstream.md#video-url-resolution`).
    pub embedded_url: Option<String>,
    /// `(code, message)` of a failed operation.
    pub error: Option<(String, String)>,
}

impl VideoOperation {
    /// Finished successfully.
    pub fn is_successful(&self) -> bool {
        self.status == "MEDIA_GENERATION_STATUS_SUCCESSFUL"
    }
    /// Finished with a failure.
    pub fn is_failed(&self) -> bool {
        self.status == "MEDIA_GENERATION_STATUS_FAILED"
    }
    /// An `…_ERROR…` status.
    pub fn is_error(&self) -> bool {
        self.status.starts_with("MEDIA_GENERATION_STATUS_ERROR")
    }
    /// Running.
    pub fn is_active(&self) -> bool {
        self.status == "MEDIA_GENERATION_STATUS_ACTIVE"
    }
    /// The name to poll and resolve by.
    pub fn reference(&self) -> &str {
        self.media_name.as_deref().unwrap_or(&self.name)
    }
}

pub(super) fn str_at<'a>(v: &'a Value, pointers: &[&str]) -> Option<&'a str> {
    pointers.iter().find_map(|p| {
        v.pointer(p)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    })
}

/// The first value under one of `keys`, searched depth-first, that looks like a URL.
fn find_url(v: &Value, keys: &[&str]) -> Option<String> {
    match v {
        Value::Object(map) => {
            for k in keys {
                if let Some(s) = map.get(*k).and_then(Value::as_str) {
                    if s.starts_with("http://") || s.starts_with("https://") || s.starts_with('/') {
                        return Some(s.to_owned());
                    }
                }
            }
            map.values().find_map(|child| find_url(child, keys))
        }
        Value::Array(items) => items.iter().find_map(|child| find_url(child, keys)),
        _ => None,
    }
}

fn find_str(v: &Value, key: &str) -> Option<String> {
    match v {
        Value::Object(map) => map
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| map.values().find_map(|c| find_str(c, key))),
        Value::Array(items) => items.iter().find_map(|c| find_str(c, key)),
        _ => None,
    }
}

fn operation_from_media(m: &Value, request_pid: &str) -> VideoOperation {
    let media_name = str_at(m, &["/name"]).map(str::to_owned);
    let status = str_at(
        m,
        &[
            "/mediaMetadata/mediaStatus/mediaGenerationStatus",
            "/mediaMetadata/mediaStatus/status",
            "/mediaStatus/mediaGenerationStatus",
            "/mediaStatus/status",
            "/status",
        ],
    )
    .unwrap_or(STATUS_PENDING)
    .to_owned();
    let video = m.get("video").cloned().unwrap_or(Value::Null);
    let url_keys = ["fifeUrl", "videoUrl", "outputUri", "downloadUri"];
    let embedded_url = find_url(&video, &url_keys)
        .or_else(|| find_url(m, &url_keys))
        .or_else(|| find_url(&video, &["uri", "url"]));
    let aspect_ratio = str_at(
        &video,
        &[
            "/generatedVideo/aspectRatio",
            "/aspectRatio",
            "/videoAspectRatio",
        ],
    )
    .map(str::to_owned)
    .or_else(|| {
        m.get("mediaMetadata")
            .and_then(|md| find_str(md, "videoAspectRatio"))
    });
    let error = m
        .pointer("/mediaMetadata/mediaStatus/error")
        .or_else(|| m.pointer("/mediaStatus/error"))
        .filter(|e| e.is_object())
        .map(error_pair);
    VideoOperation {
        name: str_at(m, &["/video/operation/name"])
            .map(str::to_owned)
            .or_else(|| media_name.clone())
            .unwrap_or_default(),
        project_id: str_at(m, &["/projectId"])
            .map(str::to_owned)
            .or_else(|| Some(request_pid.to_owned())),
        media_name,
        status,
        scene_id: str_at(m, &["/sceneId", "/workflowId", "/video/operation/sceneId"])
            .map(str::to_owned),
        aspect_ratio,
        embedded_url,
        error,
    }
}

fn error_pair(e: &Value) -> (String, String) {
    let code = match e.get("code") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => "unknown".to_owned(),
    };
    let message = e
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("unknown error")
        .to_owned();
    (code, message)
}

/// Normalises a submit or status response (`docs/upstream.md#video-submit`): `operations[]`
/// enriched from same-named `media[]` items, or the media items themselves.
pub(crate) fn normalize_operations(v: &Value, request_pid: &str) -> Vec<VideoOperation> {
    let media: Vec<VideoOperation> = v
        .get("media")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|m| operation_from_media(m, request_pid))
                .collect()
        })
        .unwrap_or_default();
    let Some(ops) = v
        .get("operations")
        .and_then(Value::as_array)
        .filter(|o| !o.is_empty())
    else {
        return media;
    };
    ops.iter()
        .map(|o| {
            let name = str_at(o, &["/operation/name", "/name"])
                .unwrap_or_default()
                .to_owned();
            let from_media = media
                .iter()
                .find(|m| m.name == name || m.media_name.as_deref() == Some(name.as_str()));
            let status = str_at(o, &["/status"]).map(str::to_owned);
            let error = o
                .pointer("/operation/error")
                .filter(|e| e.is_object())
                .map(error_pair);
            let base = from_media.cloned().unwrap_or_default();
            VideoOperation {
                media_name: str_at(o, &["/mediaName", "/operation/metadata/video/mediaName"])
                    .map(str::to_owned)
                    .or(base.media_name),
                project_id: str_at(o, &["/projectId", "/operation/projectId"])
                    .map(str::to_owned)
                    .or(base.project_id)
                    .or_else(|| Some(request_pid.to_owned())),
                status: status.unwrap_or(if base.status.is_empty() {
                    STATUS_PENDING.to_owned()
                } else {
                    base.status
                }),
                scene_id: str_at(o, &["/sceneId"])
                    .map(str::to_owned)
                    .or(base.scene_id),
                aspect_ratio: str_at(o, &["/operation/metadata/video/aspectRatio"])
                    .map(str::to_owned)
                    .or(base.aspect_ratio),
                embedded_url: find_url(o, &["fifeUrl", "videoUrl", "outputUri", "downloadUri"])
                    .or(base.embedded_url),
                error: error.or(base.error),
                name,
            }
        })
        .collect()
}

impl FlowClient {
    /// Builds a video submit (`docs/upstream.md#video-submit`) for `s.input`'s kind.
    pub fn build_video_submit(
        &self,
        at: &Secret,
        s: &VideoSubmit<'_>,
    ) -> Result<HttpRequest, TransportError> {
        let client_context = json!({
            "recaptchaContext": {"token": s.captcha_token.expose(), "applicationType": "RECAPTCHA_APPLICATION_TYPE_WEB"},
            "sessionId": s.session_id,
            "projectId": s.project_id,
            "tool": "PINHOLE",
            "userPaygateTier": s.tier.as_paygate(),
        });
        let generation_context =
            json!({"batchId": s.batch_id, "audioFailurePreference": "BLOCK_SILENCED_VIDEOS"});
        let text_input = json!({"structuredPrompt": {"parts": [{"text": s.prompt}]}});
        let mut req = json!({
            "aspectRatio": s.aspect,
            "seed": s.seed,
            "textInput": text_input,
            "videoModelKey": s.model_key,
            "metadata": {},
        });
        match s.input {
            VideoInput::Text => {}
            VideoInput::StartImage { start } => req["startImage"] = json!({"mediaId": start}),
            VideoInput::StartEndImage { start, end } => {
                req["startImage"] = json!({"mediaId": start});
                req["endImage"] = json!({"mediaId": end});
            }
            VideoInput::ReferenceImages { refs } => {
                req["referenceImages"] = refs
                    .iter()
                    .map(|r| json!({"imageUsageType": "IMAGE_USAGE_TYPE_ASSET", "mediaId": r}))
                    .collect();
            }
            VideoInput::Extend { source } => {
                req["videoInput"] = json!({"mediaId": source});
                req["metadata"] = json!({"workflowId": s.workflow_id});
            }
            VideoInput::Upsample { source, resolution } => {
                req = json!({
                    "aspectRatio": s.aspect,
                    "resolution": resolution,
                    "seed": s.seed,
                    "videoInput": {"mediaId": source},
                    "videoModelKey": s.model_key,
                    "metadata": {"sceneId": s.workflow_id},
                });
            }
        }
        let body = json!({
            "mediaGenerationContext": generation_context,
            "clientContext": client_context,
            "requests": [req],
            "useV2ModelConfig": true,
        });
        let h = with_bearer(
            headers::with_identity(headers::profile_m(s.user_agent), s.identity),
            at,
        );
        let url = format!("{}/{}", self.api_base, s.input.path());
        request(Method::POST, &url, h, Bytes::from(body.to_string()))
    }

    /// Parses a submit response: at least one operation.
    pub fn parse_video_submit(
        resp: &HttpResponse,
        request_pid: &str,
    ) -> Result<Vec<VideoOperation>, FlowError> {
        let v: Value = super::parse_json("video_submit", resp)?;
        let ops = normalize_operations(&v, request_pid);
        if ops.is_empty() || ops[0].name.is_empty() {
            return Err(FlowError::parse(
                "video_submit",
                "no operations in the response",
                resp.body(),
            ));
        }
        Ok(ops)
    }

    /// video-submit: submits a video generation.
    ///
    /// # Errors
    /// Upstream (captcha rejection, quota…), transport and parse errors.
    pub async fn submit_video(
        &self,
        at: &Secret,
        s: &VideoSubmit<'_>,
    ) -> Result<Vec<VideoOperation>, FlowError> {
        let resp = self
            .send(
                "video_submit",
                self.build_video_submit(at, s),
                timeouts::VIDEO_SUBMIT,
            )
            .await?;
        Self::parse_video_submit(&resp, s.project_id)
    }

    /// Builds video-status: `{"media":[{"name","projectId"}]}` for the operations that have both.
    pub fn build_video_status(
        &self,
        at: &Secret,
        operations: &[VideoOperation],
        user_agent: &str,
    ) -> Result<HttpRequest, TransportError> {
        let media: Vec<Value> = operations
            .iter()
            .filter_map(|o| {
                Some(json!({"name": o.reference(), "projectId": o.project_id.as_deref()?}))
            })
            .collect();
        let h = with_bearer(headers::profile_m(user_agent), at);
        let url = format!(
            "{}/video:batchCheckAsyncVideoGenerationStatus",
            self.api_base
        );
        request(
            Method::POST,
            &url,
            h,
            Bytes::from(json!({"media": media}).to_string()),
        )
    }

    /// video-status: polls operations.
    ///
    /// # Errors
    /// Upstream, transport and parse errors.
    pub async fn video_status(
        &self,
        at: &Secret,
        operations: &[VideoOperation],
        request_pid: &str,
    ) -> Result<Vec<VideoOperation>, FlowError> {
        let req = self.build_video_status(at, operations, headers::FALLBACK_USER_AGENT);
        let resp = self.send("video_status", req, timeouts::VIDEO_POLL).await?;
        let v: Value = super::parse_json("video_status", &resp)?;
        Ok(normalize_operations(&v, request_pid))
    }

    /// Builds media-url-redirect `GET {labs}/trpc/media.getMediaUrlRedirect?name=…&mediaUrlType=…`.
    pub fn build_media_url(
        &self,
        st: &Secret,
        media_name: &str,
    ) -> Result<HttpRequest, TransportError> {
        let name: String = url::form_urlencoded::byte_serialize(media_name.as_bytes()).collect();
        let url = format!(
            "{}/trpc/media.getMediaUrlRedirect?name={name}&mediaUrlType=MEDIA_URL_TYPE_FULL_MEDIA",
            self.labs_base
        );
        let mut h = http::HeaderMap::new();
        for (k, v) in [
            ("user-agent", headers::FALLBACK_USER_AGENT),
            ("accept", "*/*"),
            ("sec-ch-ua-mobile", "?0"),
            ("sec-fetch-dest", "empty"),
            ("sec-fetch-mode", "cors"),
            ("sec-fetch-site", "cross-site"),
        ] {
            h.insert(k, http::HeaderValue::from_static(v));
        }
        request(
            Method::GET,
            &url,
            super::with_session_cookie(h, st),
            Bytes::new(),
        )
    }

    /// Parses media-url-redirect: the `Location` of a redirect, resolved against the request URL.
    /// `Ok(None)` for an empty location (the caller then falls back to media-bytes).
    pub fn parse_media_url(
        resp: &HttpResponse,
        request_url: &str,
    ) -> Result<Option<String>, FlowError> {
        if !resp.status().is_redirection() {
            return Err(FlowError::parse(
                "media_url",
                format!(
                    "unexpected status {} (expected a redirect)",
                    resp.status().as_u16()
                ),
                resp.body(),
            ));
        }
        let location = resp
            .headers()
            .get(http::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .unwrap_or("")
            .trim();
        if location.is_empty() {
            return Ok(None);
        }
        let resolved = url::Url::parse(request_url)
            .and_then(|base| base.join(location))
            .map(String::from)
            .unwrap_or_else(|_| location.to_owned());
        Ok(Some(resolved))
    }

    /// media-url-redirect: the final URL of a generated video.
    ///
    /// # Errors
    /// Upstream, transport and unexpected answers.
    pub async fn media_url(
        &self,
        st: &Secret,
        media_name: &str,
    ) -> Result<Option<String>, FlowError> {
        let req = self.build_media_url(st, media_name);
        let url = req
            .as_ref()
            .map(|r| r.uri().to_string())
            .unwrap_or_default();
        let resp = self.send("media_url", req, timeouts::CONTROL).await?;
        Self::parse_media_url(&resp, &url)
    }

    /// Builds media-bytes `GET {api}/media/{name}`.
    pub fn build_media_bytes(
        &self,
        at: &Secret,
        media_name: &str,
    ) -> Result<HttpRequest, TransportError> {
        let h = with_bearer(headers::profile_d(headers::FALLBACK_USER_AGENT, None), at);
        let name: String = url::form_urlencoded::byte_serialize(media_name.as_bytes()).collect();
        request(
            Method::GET,
            &format!("{}/media/{name}", self.api_base),
            h,
            Bytes::new(),
        )
    }

    /// Parses media-bytes: the decoded `video.encodedVideo`.
    pub fn parse_media_bytes(resp: &HttpResponse) -> Result<Bytes, FlowError> {
        let v: Value = super::parse_json("media_bytes", resp)?;
        let b64 = str_at(&v, &["/video/encodedVideo", "/encodedVideo"])
            .ok_or_else(|| FlowError::parse("media_bytes", "missing encodedVideo", b""))?;
        base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map(Bytes::from)
            .map_err(|e| FlowError::parse("media_bytes", format!("invalid base64: {e}"), b""))
    }

    /// media-bytes: the bytes of a generated video (fallback when media-url-redirect gives no URL).
    ///
    /// # Errors
    /// Upstream, transport and parse errors.
    pub async fn media_bytes(&self, at: &Secret, media_name: &str) -> Result<Bytes, FlowError> {
        let resp = self
            .send(
                "media_bytes",
                self.build_media_bytes(at, media_name),
                timeouts::MEDIA_BYTES,
            )
            .await?;
        Self::parse_media_bytes(&resp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IDENTITY: crate::seams::BrowserIdentity = crate::seams::BrowserIdentity {
        accept_language: None,
        sec_ch_ua: None,
        sec_ch_ua_mobile: None,
        sec_ch_ua_platform: None,
        cookies: None,
    };

    fn client() -> FlowClient {
        super::super::offline_client()
    }

    fn submit<'a>(input: &'a VideoInput, token: &'a Secret) -> VideoSubmit<'a> {
        VideoSubmit {
            project_id: "pid",
            model_key: "veo_3_1_t2v_fast",
            aspect: "VIDEO_ASPECT_RATIO_LANDSCAPE",
            prompt: "a cat",
            input,
            captcha_token: token,
            identity: &IDENTITY,
            user_agent: "UA Chrome/147.0",
            session_id: ";1",
            batch_id: "b",
            workflow_id: "w",
            seed: 42,
            tier: Tier::Pro,
        }
    }

    #[test]
    fn submit_bodies_per_kind() {
        let token = Secret::new("tok");
        let at = Secret::new("ya29.x");
        let cases = [
            (VideoInput::Text, "video:batchAsyncGenerateVideoText"),
            (
                VideoInput::StartImage { start: "s".into() },
                "video:batchAsyncGenerateVideoStartImage",
            ),
            (
                VideoInput::StartEndImage {
                    start: "s".into(),
                    end: "e".into(),
                },
                "video:batchAsyncGenerateVideoStartAndEndImage",
            ),
            (
                VideoInput::ReferenceImages {
                    refs: vec!["a".into(), "b".into()],
                },
                "video:batchAsyncGenerateVideoReferenceImages",
            ),
            (
                VideoInput::Extend {
                    source: "src".into(),
                },
                "video:batchAsyncGenerateVideoExtendVideo",
            ),
            (
                VideoInput::Upsample {
                    source: "src".into(),
                    resolution: "VIDEO_RESOLUTION_4K".into(),
                },
                "video:batchAsyncGenerateVideoUpsampleVideo",
            ),
        ];
        for (input, path) in cases {
            let req = client()
                .build_video_submit(&at, &submit(&input, &token))
                .unwrap();
            assert_eq!(req.uri().to_string(), format!("https://api/v1/{path}"));
            let v: Value = serde_json::from_slice(req.body()).unwrap();
            assert_eq!(v["useV2ModelConfig"], true);
            assert_eq!(v["clientContext"]["userPaygateTier"], "PAYGATE_TIER_ONE");
            assert_eq!(v["clientContext"]["recaptchaContext"]["token"], "tok");
            assert_eq!(
                v["mediaGenerationContext"]["audioFailurePreference"],
                "BLOCK_SILENCED_VIDEOS"
            );
            let r = &v["requests"][0];
            match &input {
                VideoInput::Upsample { .. } => {
                    assert!(r.get("textInput").is_none());
                    assert_eq!(r["resolution"], "VIDEO_RESOLUTION_4K");
                    assert_eq!(r["metadata"]["sceneId"], "w");
                }
                _ => assert_eq!(
                    r["textInput"]["structuredPrompt"]["parts"][0]["text"],
                    "a cat"
                ),
            }
            match &input {
                VideoInput::StartEndImage { .. } => assert_eq!(r["endImage"]["mediaId"], "e"),
                VideoInput::ReferenceImages { .. } => {
                    assert_eq!(
                        r["referenceImages"][1]["imageUsageType"],
                        "IMAGE_USAGE_TYPE_ASSET"
                    )
                }
                VideoInput::Extend { .. } => assert_eq!(r["metadata"]["workflowId"], "w"),
                _ => {}
            }
        }
    }

    #[test]
    fn normalises_both_shapes() {
        let media_shape = json!({"remainingCredits": 30,
            "workflows": [{"name": "workflow-1", "metadata": {"primaryMediaId": "media-1"}, "projectId": "project-1"}],
            "media": [{"name": "media-1", "projectId": "project-1",
                "mediaMetadata": {"mediaStatus": {"mediaGenerationStatus": "MEDIA_GENERATION_STATUS_PENDING"}}}]});
        let ops = normalize_operations(&media_shape, "pid");
        assert_eq!(ops.len(), 1);
        assert_eq!(
            (ops[0].name.as_str(), ops[0].reference()),
            ("media-1", "media-1")
        );
        assert_eq!(ops[0].project_id.as_deref(), Some("project-1"));
        assert_eq!(ops[0].status, STATUS_PENDING);

        let legacy = json!({"operations": [{"operation": {"name": "task-1"}, "sceneId": "s", "status": "MEDIA_GENERATION_STATUS_PENDING"}]});
        let ops = normalize_operations(&legacy, "pid");
        assert_eq!(
            (ops[0].name.as_str(), ops[0].project_id.as_deref()),
            ("task-1", Some("pid"))
        );

        let success = json!({"media": [{"name": "media-1", "projectId": "project-1",
            "mediaMetadata": {"mediaStatus": {"mediaGenerationStatus": "MEDIA_GENERATION_STATUS_SUCCESSFUL"}},
            "video": {"fifeUrl": "https://flow-content.google/video/1111?token=abc",
                      "generatedVideo": {"aspectRatio": "VIDEO_ASPECT_RATIO_LANDSCAPE"}}}]});
        let op = &normalize_operations(&success, "pid")[0];
        assert!(op.is_successful());
        assert_eq!(
            op.aspect_ratio.as_deref(),
            Some("VIDEO_ASPECT_RATIO_LANDSCAPE")
        );
        assert!(op
            .embedded_url
            .as_deref()
            .unwrap()
            .starts_with("https://flow-content.google/video/"));

        let failed = json!({"operations": [{"operation": {"name": "t", "error": {"code": 13, "message": "boom"}},
            "status": "MEDIA_GENERATION_STATUS_FAILED"}]});
        let op = &normalize_operations(&failed, "pid")[0];
        assert!(op.is_failed());
        assert_eq!(op.error, Some(("13".into(), "boom".into())));
        assert!(normalize_operations(&json!({}), "pid").is_empty());
    }

    #[test]
    fn status_body_and_media_url() {
        let ops = vec![
            VideoOperation {
                name: "t".into(),
                media_name: Some("m".into()),
                project_id: Some("p".into()),
                ..Default::default()
            },
            VideoOperation {
                name: "x".into(),
                ..Default::default()
            },
        ];
        let req = client()
            .build_video_status(&Secret::new("a"), &ops, "UA")
            .unwrap();
        let v: Value = serde_json::from_slice(req.body()).unwrap();
        assert_eq!(v, json!({"media": [{"name": "m", "projectId": "p"}]}));

        let req = client()
            .build_media_url(&Secret::new("st"), "media/1 x")
            .unwrap();
        assert_eq!(
            req.uri().to_string(),
            "https://labs/fx/api/trpc/media.getMediaUrlRedirect?name=media%2F1+x&mediaUrlType=MEDIA_URL_TYPE_FULL_MEDIA"
        );
        assert!(req.headers()["cookie"]
            .to_str()
            .unwrap()
            .contains("session-token=st"));
        let redirect = http::Response::builder()
            .status(307)
            .header("location", "/video/abc.mp4")
            .body(Bytes::new())
            .unwrap();
        assert_eq!(
            FlowClient::parse_media_url(&redirect, "https://labs/fx/api/trpc/x")
                .unwrap()
                .as_deref(),
            Some("https://labs/video/abc.mp4")
        );
        let empty = http::Response::builder()
            .status(302)
            .body(Bytes::new())
            .unwrap();
        assert_eq!(
            FlowClient::parse_media_url(&empty, "https://labs/").unwrap(),
            None
        );
        let ok = http::Response::builder()
            .status(200)
            .body(Bytes::from_static(b"{}"))
            .unwrap();
        assert!(FlowClient::parse_media_url(&ok, "https://labs/").is_err());

        let bytes = http::Response::builder()
            .status(200)
            .body(Bytes::from(
                json!({"name": "m", "video": {"encodedVideo": "AAEC"}}).to_string(),
            ))
            .unwrap();
        assert_eq!(
            &FlowClient::parse_media_bytes(&bytes).unwrap()[..],
            &[0, 1, 2]
        );
    }
}
