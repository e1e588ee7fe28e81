//! The tools: what `tools/list` shows, and each `tools/call` run through the pipeline its REST
//! route uses (no second generation path): `generate_image` as `/v1/images/generations` with
//! `b64_json` ([`ImageRun`], [`output_bytes`]), `generate_video` as `POST /v1/videos`
//! ([`AppInner::start_video`]), `get_video` as `GET /v1/videos/{id}`, `list_models` as
//! `GET /v1/models`. A tenant's key gets the same model patterns, quotas and job scoping.

use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::error::ApiError;
use crate::api::generation::{output_bytes, ImageRun};
use crate::api::sse::{data, sse_response, Encoder, EventStream};
use crate::api::videos::{resolve_video_model, valid_id, VideoAsk};
use crate::api::{images, inputs, openai, Body};
use crate::generate::{ImageRequest, Output, Progress};
use crate::jobs::{JobRecord, JobStatus};
use crate::models::{self, ResolveHints};
use crate::seams::{boxed, boxed_stream, media};

use super::wire::{self, CallToolResult, Content, RpcError, Tool, ToolAnnotations};
use super::{response_json, Answer, Call, Version};

/// The video model when a call names none (as `POST /v1/videos`).
const DEFAULT_VIDEO_MODEL: &str = "veo_3_1_t2v_fast";

/// Why a call did not produce a result: the client asked wrongly (a JSON-RPC error), or the
/// tool ran and failed (a result with `isError`, for the model to read).
enum Refusal {
    Invalid(ApiError),
    Failed(ApiError),
}

impl Refusal {
    /// A refusal from a step that both checks input and does work: the client's mistakes
    /// (400, 404, 413, 422) are invalid arguments, the rest a failure of the tool.
    fn by_status(e: ApiError) -> Self {
        match e.status.as_u16() {
            400 | 404 | 413 | 422 => Self::Invalid(e),
            _ => Self::Failed(e),
        }
    }
}

fn invalid(param: &str, message: impl Into<String>) -> Refusal {
    Refusal::Invalid(ApiError::bad_request(message).param(param))
}

/// `tools/list`.
pub(super) fn list() -> Vec<Tool> {
    let images = json!({
        "type": "array",
        "items": {"type": "string"},
        "description": "Reference images: http(s) URLs, data URLs (data:image/png;base64,…) or bare base64.",
    });
    vec![
        Tool {
            name: "generate_image",
            title: "Generate an image",
            description: "Generates one image from a prompt (optionally guided by reference images) and returns it, with a link to it.",
            input_schema: json!({
                "type": "object",
                "properties": {
                    "prompt": {"type": "string", "description": "What the image shows."},
                    "model": {"type": "string", "description": format!("An image model id or alias (list_models); default {}.", images::DEFAULT_MODEL)},
                    "aspect_ratio": {"type": "string", "enum": ["16:9", "9:16", "1:1", "4:3", "3:4"]},
                    "resolution": {"type": "string", "enum": ["1k", "2k", "4k"], "description": "2k and 4k where the model family offers them."},
                    "images": images,
                },
                "required": ["prompt"],
                "additionalProperties": false,
            }),
            output_schema: Some(json!({
                "type": "object",
                "properties": {
                    "url": {"type": ["string", "null"]},
                    "mimeType": {"type": "string"},
                    "model": {"type": "string"},
                    "width": {"type": ["integer", "null"]},
                    "height": {"type": ["integer", "null"]},
                },
                "required": ["url", "mimeType", "model"],
            })),
            annotations: ToolAnnotations {
                read_only_hint: false,
                open_world_hint: true,
            },
        },
        Tool {
            name: "generate_video",
            title: "Generate a video",
            description: "Starts a Veo video job from a prompt (and optional frames or reference images) and returns its id and links. Videos take minutes: follow the job with get_video, or send a progress token to receive progress notifications until it ends.",
            input_schema: json!({
                "type": "object",
                "properties": {
                    "prompt": {"type": "string", "description": "What the video shows."},
                    "model": {"type": "string", "description": format!("A video model id or alias (list_models); default {DEFAULT_VIDEO_MODEL}.")},
                    "aspect_ratio": {"type": "string", "enum": ["16:9", "9:16"]},
                    "seconds": {"type": "integer", "enum": [4, 6, 8], "description": "Length, for models that offer a choice."},
                    "images": images,
                },
                "required": ["prompt"],
                "additionalProperties": false,
            }),
            output_schema: Some(video_schema()),
            annotations: ToolAnnotations {
                read_only_hint: false,
                open_world_hint: true,
            },
        },
        Tool {
            name: "get_video",
            title: "Get a video job",
            description: "A video job's status and progress, and the link to its MP4 once it is completed.",
            input_schema: json!({
                "type": "object",
                "properties": {"id": {"type": "string", "description": "The id generate_video returned."}},
                "required": ["id"],
                "additionalProperties": false,
            }),
            output_schema: Some(video_schema()),
            annotations: ToolAnnotations {
                read_only_hint: true,
                open_world_hint: false,
            },
        },
        Tool {
            name: "list_models",
            title: "List models",
            description: "The image and video models this API key may use.",
            input_schema: json!({
                "type": "object",
                "properties": {"kind": {"type": "string", "enum": ["image", "video"]}},
                "additionalProperties": false,
            }),
            output_schema: Some(json!({
                "type": "object",
                "properties": {"models": {"type": "array", "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string"},
                        "kind": {"type": "string"},
                        "description": {"type": "string"},
                    },
                    "required": ["id", "kind"],
                }}},
                "required": ["models"],
            })),
            annotations: ToolAnnotations {
                read_only_hint: true,
                open_world_hint: false,
            },
        },
    ]
}

fn video_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "id": {"type": "string"},
            "status": {"type": "string", "enum": ["queued", "in_progress", "completed", "failed"]},
            "progress": {"type": "integer"},
            "model": {"type": "string"},
            "url": {"type": ["string", "null"], "description": "The MP4, once completed."},
            "content_url": {"type": "string", "description": "GET with the API key: the MP4 once completed."},
            "error": {"type": ["object", "null"]},
        },
        "required": ["id", "status", "progress", "content_url"],
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageArgs {
    prompt: String,
    model: Option<String>,
    aspect_ratio: Option<String>,
    resolution: Option<String>,
    #[serde(default)]
    images: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VideoArgs {
    prompt: String,
    model: Option<String>,
    aspect_ratio: Option<String>,
    seconds: Option<u8>,
    #[serde(default)]
    images: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct GetVideoArgs {
    id: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListModelsArgs {
    kind: Option<ModelKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ModelKind {
    Image,
    Video,
}

impl ModelKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
        }
    }
}

/// A tool's arguments typed; serde's message (with the field) on failure.
fn arguments<T: DeserializeOwned>(tool: &str, args: Value) -> Result<T, RpcError> {
    serde_json::from_value(args).map_err(|e| {
        RpcError::new(
            wire::INVALID_PARAMS,
            format!("Invalid arguments for `{tool}`: {e}"),
        )
    })
}

/// `tools/call`.
pub(super) async fn call(call: Call, params: Value) -> Result<Answer, RpcError> {
    let p: wire::CallToolParams = serde_json::from_value(params).map_err(|e| {
        RpcError::new(
            wire::INVALID_PARAMS,
            format!("Invalid tools/call params: {e}"),
        )
    })?;
    let args = match p.arguments {
        None | Some(Value::Null) => json!({}),
        Some(a) => a,
    };
    let token = p
        .meta
        .and_then(|m| m.progress_token)
        .filter(|t| t.is_string() || t.is_i64() || t.is_u64());
    // A generation tool's call is a generation request: it gets a log row.
    let log = call.caller.log().cloned();
    if let Some(d) = &log {
        let model = args.get("model").and_then(Value::as_str);
        match p.name.as_str() {
            "generate_image" => {
                d.operation(crate::logs::LogKind::Image);
                d.model(model.unwrap_or(images::DEFAULT_MODEL));
            }
            "generate_video" => {
                d.video(false);
                d.model(model.unwrap_or(DEFAULT_VIDEO_MODEL));
            }
            _ => {}
        }
    }
    let outcome = match p.name.as_str() {
        "generate_image" => generate_image(&call, arguments(&p.name, args)?)
            .await
            .map(Answer::json),
        "generate_video" => generate_video(call, arguments(&p.name, args)?, token).await,
        "get_video" => get_video(&call, arguments(&p.name, args)?)
            .await
            .map(Answer::json),
        "list_models" => Ok(Answer::json(list_models(&call, arguments(&p.name, args)?))),
        other => {
            return Err(RpcError::new(
                wire::INVALID_PARAMS,
                format!("Unknown tool `{other}`: see tools/list."),
            ))
        }
    };
    if let (Some(d), Err(Refusal::Invalid(e) | Refusal::Failed(e))) = (&log, &outcome) {
        d.failed(e);
    }
    match outcome {
        Ok(answer) => Ok(answer),
        Err(Refusal::Invalid(e)) => Err(e.jsonrpc_error()),
        Err(Refusal::Failed(e)) => Ok(Answer::json(CallToolResult::failed(e.message))),
    }
}

/// A prompt trimmed and within `MAX_PROMPT_CHARS`.
fn prompt_of(call: &Call, raw: &str) -> Result<String, Refusal> {
    let prompt = raw.trim();
    if prompt.is_empty() {
        return Err(invalid("prompt", "`prompt` must not be empty."));
    }
    inputs::check_prompt_len(prompt, call.inner.config.max_prompt_chars, "prompt")
        .map_err(Refusal::Invalid)?;
    Ok(prompt.to_owned())
}

/// The model name asked for, or `default`.
fn model_name(raw: Option<String>, default: &str) -> String {
    raw.map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

/// The reference images as URIs [`AppInner::load_images`] reads: a bare base64 string
/// becomes a data URL (its real type is read from the bytes later).
fn image_uris(call: &Call, images: &[String]) -> Result<Vec<String>, Refusal> {
    let max = call.inner.config.max_images;
    if images.len() > max {
        return Err(invalid("images", format!("At most {max} images per call.")));
    }
    Ok(images
        .iter()
        .map(|s| s.trim())
        .map(|s| {
            if s.starts_with("data:") || s.contains("://") {
                s.to_owned()
            } else {
                format!("data:image/png;base64,{s}")
            }
        })
        .collect())
}

/// `generate_image`: one image, as `/v1/images/generations` with `b64_json` makes it.
async fn generate_image(call: &Call, a: ImageArgs) -> Result<CallToolResult, Refusal> {
    let inner = &call.inner;
    let started = inner.deps.clock.now_ms();
    let prompt = prompt_of(call, &a.prompt)?;
    let mut hints = ResolveHints::default();
    if let Some(raw) = a.aspect_ratio.as_deref() {
        let aspect = models::normalize_aspect(raw).filter(|s| {
            matches!(
                s.as_str(),
                "landscape" | "portrait" | "square" | "four-three" | "three-four"
            )
        });
        let Some(aspect) = aspect else {
            return Err(invalid(
                "aspect_ratio",
                format!("`aspect_ratio` must be 16:9, 9:16, 1:1, 4:3 or 3:4; got `{raw}`."),
            ));
        };
        hints.aspect = Some(aspect);
    }
    if let Some(raw) = a.resolution.as_deref() {
        let size = models::quality_to_size(raw).filter(|s| s != "1080p");
        let Some(size) = size else {
            return Err(invalid(
                "resolution",
                format!("`resolution` must be 1k, 2k or 4k; got `{raw}`."),
            ));
        };
        hints.size = Some(size);
    }
    let name = model_name(a.model, images::DEFAULT_MODEL);
    let Some(model) = models::resolve_image(&name, &hints, None) else {
        if models::resolve_video(&name, &hints, None).is_some() {
            return Err(invalid(
                "model",
                format!("`{name}` is a video model: use generate_video."),
            ));
        }
        return Err(Refusal::Invalid(ApiError::model_not_found(&name)));
    };
    // A model the key may not use fails before any image is fetched.
    if let Some(t) = call.caller.tenant() {
        t.check_model(model.id)
            .map_err(|e| Refusal::Failed(e.into()))?;
    }
    let uris = image_uris(call, &a.images)?;
    let images = inner
        .load_images(&uris, "images")
        .await
        .map_err(Refusal::Invalid)?;
    // Without an aspect, the first image's shape picks it (as the Images API does).
    let model = images
        .first()
        .and_then(|first| models::resolve_image(&name, &hints, Some(first)))
        .unwrap_or(model);
    let run = ImageRun::start(inner, &call.caller, model, started)
        .await
        .map_err(Refusal::Failed)?;
    let job = ImageRequest {
        model,
        prompt,
        images,
    };
    let output = run
        .finish(job, call.base.clone(), Progress::discard())
        .await
        .map_err(Refusal::Failed)?;
    let bytes = output_bytes(inner, &output.url)
        .await
        .map_err(Refusal::Failed)?;
    Ok(image_result(call.version, model.id, &output, &bytes))
}

/// An image's result: the image itself, its link as text (and as a resource link for clients
/// that know them), and the same facts as structured content.
fn image_result(version: Version, model: &str, output: &Output, bytes: &[u8]) -> CallToolResult {
    let mime_type = media::sniff_media_type(bytes)
        .filter(|m| m.starts_with("image/"))
        .unwrap_or("image/png");
    let (width, height) = models::image_dimensions(bytes).unzip();
    // A result kept inline (a data URL) has no link worth repeating.
    let url = (!output.url.starts_with("data:")).then(|| output.url.clone());
    let mut content = vec![Content::Image {
        data: base64::engine::general_purpose::STANDARD.encode(bytes),
        mime_type,
    }];
    let size = match (width, height) {
        (Some(w), Some(h)) => format!("{w}x{h} "),
        _ => String::new(),
    };
    let text = match &url {
        Some(u) => format!("Generated a {size}image with {model}: {u}"),
        None => format!("Generated a {size}image with {model}."),
    };
    content.push(Content::Text { text });
    if let (Some(u), true) = (&url, version.has_resource_links()) {
        content.push(Content::ResourceLink {
            uri: u.clone(),
            name: "generated image".to_owned(),
            mime_type: Some(mime_type),
        });
    }
    CallToolResult {
        content,
        structured_content: Some(json!({
            "url": url,
            "mimeType": mime_type,
            "model": model,
            "width": width,
            "height": height,
        })),
        is_error: false,
    }
}

/// `generate_video`: a job started as `POST /v1/videos` starts one; with a progress token
/// (and a client that takes an event stream) followed to its end, as a streamed chat
/// completion of a video model follows it.
async fn generate_video(call: Call, a: VideoArgs, token: Option<Value>) -> Result<Answer, Refusal> {
    let inner = call.inner.clone();
    let prompt = prompt_of(&call, &a.prompt)?;
    let mut hints = ResolveHints::default();
    if let Some(raw) = a.aspect_ratio.as_deref() {
        match models::normalize_aspect(raw).as_deref() {
            Some("landscape" | "portrait") => hints.aspect = Some(raw.trim().to_owned()),
            _ => {
                return Err(invalid(
                    "aspect_ratio",
                    format!("`aspect_ratio` must be 16:9 or 9:16; got `{raw}`."),
                ))
            }
        }
    }
    if let Some(s) = a.seconds.filter(|s| !matches!(s, 4 | 6 | 8)) {
        return Err(invalid(
            "seconds",
            format!("`seconds` must be 4, 6 or 8; got {s}."),
        ));
    }
    let name = model_name(a.model, DEFAULT_VIDEO_MODEL);
    if models::resolve_image(&name, &hints, None).is_some() {
        return Err(invalid(
            "model",
            format!("`{name}` is an image model: use generate_image."),
        ));
    }
    let uris = image_uris(&call, &a.images)?;
    let images = inner
        .load_images(&uris, "images")
        .await
        .map_err(Refusal::Invalid)?;
    let first = images.first().map(|b| &b[..]);
    let model = resolve_video_model(&name, &hints, a.seconds, first).map_err(Refusal::Invalid)?;
    let ask = VideoAsk {
        model_name: name,
        model,
        prompt,
        images,
        extend_source: None,
        images_param: "images",
    };
    let record = inner
        .start_video(ask, call.base.clone(), None, &call.caller)
        .await
        .map_err(Refusal::by_status)?;
    let Some(token) = token.filter(|_| call.accepts_sse) else {
        return Ok(Answer::json(video_result(call.version, &record)));
    };
    let (progress, lines) = Progress::channel();
    let clock = inner.deps.clock.clone();
    let interval = inner.config.keepalive_interval;
    let follow = {
        let record = record.clone();
        boxed(async move {
            let followed = inner.jobs.follow(&*inner.runner, record, &progress).await;
            followed.map_err(ApiError::from)
        })
    };
    let encoder = ProgressEncoder {
        id: call.id,
        token,
        sent: 0,
        version: call.version,
        record,
    };
    let stream = EventStream::new(follow, lines, encoder, clock, interval);
    Ok(Answer::Stream(sse_response(Body::Stream(boxed_stream(
        stream,
    )))))
}

/// `get_video`: a job the caller may see (another tenant's is as unknown as one that never
/// was).
async fn get_video(call: &Call, a: GetVideoArgs) -> Result<CallToolResult, Refusal> {
    let id = valid_id(a.id.trim()).map_err(Refusal::Invalid)?;
    let record = call
        .inner
        .read_job(id, &call.caller)
        .await
        .map_err(Refusal::by_status)?;
    Ok(video_result(call.version, &record))
}

/// A job as a tool result: its state in words and as structured content, and the MP4's link
/// once there is one.
fn video_result(version: Version, r: &JobRecord) -> CallToolResult {
    let content_url = format!(
        "{}/v1/videos/{}/content",
        r.media_base.trim_end_matches('/'),
        r.id
    );
    let id = &r.id;
    let text = match (r.status, &r.url, &r.failure) {
        (JobStatus::Completed, Some(url), _) => format!("Video {id} is completed: {url}"),
        (JobStatus::Failed, _, failure) => format!(
            "Video {id} failed: {}",
            failure
                .as_ref()
                .map_or("no reason was given.", |f| f.message.as_str())
        ),
        (status, _, _) => format!(
            "Video {id} is {} ({}%). Call get_video with this id to follow it; once completed, the MP4 is at {content_url} (GET with this API key).",
            status.as_str(),
            r.progress
        ),
    };
    let mut content = vec![Content::Text { text }];
    if let (JobStatus::Completed, Some(url), true) =
        (r.status, &r.url, version.has_resource_links())
    {
        content.push(Content::ResourceLink {
            uri: url.clone(),
            name: format!("video {id}"),
            mime_type: Some("video/mp4"),
        });
    }
    CallToolResult {
        content,
        structured_content: Some(json!({
            "id": r.id,
            "status": r.status.as_str(),
            "progress": r.progress,
            "model": r.model,
            "url": r.url,
            "content_url": content_url,
            "error": r.failure.as_ref().map(|f| json!({"code": f.code(), "message": f.message})),
        })),
        is_error: false,
    }
}

/// `list_models`.
fn list_models(call: &Call, a: ListModelsArgs) -> CallToolResult {
    let models: Vec<_> = openai::visible_models(&call.caller)
        .filter(|m| a.kind.is_none_or(|k| k.as_str() == m.kind))
        .collect();
    let text = models
        .iter()
        .map(|m| format!("{} ({}): {}", m.id, m.kind, m.description))
        .collect::<Vec<_>>()
        .join("\n");
    let listed: Vec<Value> = models
        .iter()
        .map(|m| json!({"id": m.id, "kind": m.kind, "description": m.description}))
        .collect();
    CallToolResult {
        content: vec![Content::Text { text }],
        structured_content: Some(json!({ "models": listed })),
        is_error: false,
    }
}

/// `notifications/progress` for each line the job writes, then the call's response.
struct ProgressEncoder {
    id: Value,
    token: Value,
    /// Notifications sent: the `progress` value, which must grow with each one.
    sent: u64,
    version: Version,
    record: JobRecord,
}

impl ProgressEncoder {
    fn notify(&mut self, message: &str) -> String {
        self.sent += 1;
        let n = wire::RpcNotification {
            jsonrpc: "2.0",
            method: "notifications/progress",
            params: wire::ProgressParams {
                progress_token: &self.token,
                progress: self.sent,
                message,
            },
        };
        data(&serde_json::to_string(&n).unwrap_or_default())
    }
}

impl Encoder for ProgressEncoder {
    type Outcome = Result<Output, ApiError>;

    fn start(&mut self) -> Option<String> {
        let line = format!("Video job {} started.", self.record.id);
        Some(self.notify(&line))
    }

    fn progress(&mut self, line: &str) -> String {
        self.notify(line.trim())
    }

    fn finish(&mut self, outcome: Self::Outcome) -> String {
        let result = match outcome {
            Ok(output) => {
                // The job as it ended (following it read the final record).
                let mut done = self.record.clone();
                done.status = JobStatus::Completed;
                done.progress = 100;
                done.url = Some(output.url);
                video_result(self.version, &done)
            }
            Err(e) => {
                CallToolResult::failed(format!("Video {} failed: {}", self.record.id, e.message))
            }
        };
        data(&response_json(&self.id, &result))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_are_checked_by_their_types() {
        let e = arguments::<ImageArgs>("generate_image", json!({})).unwrap_err();
        assert_eq!(e.code, wire::INVALID_PARAMS);
        assert!(e.message.contains("prompt"), "{}", e.message);
        let e = arguments::<VideoArgs>("generate_video", json!({"prompt": "x", "seconds": "8"}))
            .unwrap_err();
        assert!(
            e.message.contains("seconds") || e.message.contains("u8"),
            "{}",
            e.message
        );
        assert!(arguments::<ImageArgs>("generate_image", json!({"prompt": "x", "n": 2})).is_err());
        let a: ImageArgs =
            arguments("generate_image", json!({"prompt": "x", "images": ["AA=="]})).unwrap();
        assert_eq!(a.images, ["AA=="]);
        let k: ListModelsArgs = arguments("list_models", json!({"kind": "video"})).unwrap();
        assert_eq!(k.kind, Some(ModelKind::Video));
    }

    #[test]
    fn every_tool_has_an_object_schema() {
        let tools = list();
        assert_eq!(tools.len(), 4);
        for t in tools {
            assert_eq!(t.input_schema["type"], "object", "{}", t.name);
        }
    }
}
