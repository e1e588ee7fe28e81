//! OpenAI dialect: `GET /v1/models` and `POST /v1/chat/completions`.

use std::sync::{Arc, OnceLock};

use http::{HeaderValue, Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::generate::video::media_uuid;
use crate::generate::{ImageRequest, Output, Progress};
use crate::models;
use crate::seams::{boxed, boxed_stream, Bytes};
use crate::util;

use super::caller::Caller;
use super::error::{ApiError, Dialect};
use super::generation::ImageRun;
use super::markup;
use super::sse::{data, sse_response, Encoder, EventStream};
use super::videos::{resolve_video_model, VideoAsk};
use super::{json_response, AppInner, Body};

/// One model of the catalogue, as the model lists show it.
pub(crate) struct CatalogueEntry {
    pub(crate) id: &'static str,
    /// `image` or `video`.
    pub(crate) kind: &'static str,
    pub(crate) description: String,
}

/// Every model, images first (the catalogue is static).
fn catalogue() -> impl Iterator<Item = CatalogueEntry> {
    let images = models::image_models().iter().map(|m| CatalogueEntry {
        id: m.id,
        kind: "image",
        description: models::model_description(m.id),
    });
    let videos = models::video_models().iter().map(|m| CatalogueEntry {
        id: m.id,
        kind: "video",
        description: m.description(),
    });
    images.chain(videos)
}

/// Whether the caller sees every model: the root key, or a tenant whose patterns are all `*`.
fn sees_all(caller: &Caller) -> bool {
    caller
        .tenant()
        .is_none_or(|t| t.models.iter().all(|p| p == "*"))
}

/// The models the caller may use: every one for the root key, those its patterns allow for a
/// tenant's key (what `GET /v1/models` and MCP's `list_models` list).
pub(crate) fn visible_models(caller: &Caller) -> impl Iterator<Item = CatalogueEntry> + '_ {
    let all = sees_all(caller);
    catalogue().filter(move |m| all || caller.tenant().is_some_and(|t| t.allows_model(m.id)))
}

/// `GET /v1/models`: every model for the root key (built once, since the catalogue is
/// static), the models its patterns allow for a tenant's key.
pub(crate) fn models_response(caller: &Caller) -> Response<Body> {
    static BODY: OnceLock<Bytes> = OnceLock::new();
    let list = |models: &mut dyn Iterator<Item = CatalogueEntry>| {
        let data: Vec<Value> = models
            .map(|m| {
                json!({
                    "id": m.id,
                    "object": "model",
                    "created": 1_764_140_000,
                    "owned_by": "flow2api",
                    "description": m.description,
                })
            })
            .collect();
        Bytes::from(json!({"object": "list", "data": data}).to_string())
    };
    let body = if sees_all(caller) {
        BODY.get_or_init(|| list(&mut catalogue())).clone()
    } else {
        list(&mut visible_models(caller))
    };
    json_response(StatusCode::OK, body)
}

/// `GET /v1/models/{id}`: one model (OpenAI's `models.retrieve`), 404 for an unknown id or
/// one outside a tenant's patterns.
pub(crate) fn model_response(caller: &Caller, id: &str) -> Result<Response<Body>, ApiError> {
    let description = if models::image_models().iter().any(|m| m.id == id) {
        models::model_description(id)
    } else if let Some(family) = models::find_image_alias(id) {
        family.description.to_owned()
    } else if let Some(m) = models::video_models().iter().find(|m| m.id == id) {
        m.description()
    } else {
        return Err(ApiError::model_not_found(id));
    };
    // An alias is allowed when one of its ids is.
    let allowed = |t: &crate::tenants::Tenant| match models::find_image_alias(id) {
        Some(family) => family.models().any(|m| t.allows_model(m.id)),
        None => t.allows_model(id),
    };
    if caller.tenant().is_some_and(|t| !allowed(t)) {
        return Err(ApiError::model_not_found(id));
    }
    let body = json!({
        "id": id,
        "object": "model",
        "created": 1_764_140_000,
        "owned_by": "flow2api",
        "description": description,
    });
    Ok(json_response(StatusCode::OK, Bytes::from(body.to_string())))
}

/// A chat completion request, checked and typed.
struct ChatRequest {
    model_name: String,
    stream: bool,
    include_usage: bool,
    prompt: String,
    image_uris: Vec<String>,
    /// The last image the assistant returned earlier in the conversation, if any.
    history_image: Option<String>,
    hints: models::ResolveHints,
}

fn field_error(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message).param(param)
}

fn parse_chat(body: &[u8], max_prompt_chars: usize) -> Result<ChatRequest, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("The request body is not valid JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::bad_request("The request body must be a JSON object."))?;
    let model_name = match obj.get("model") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
        Some(Value::String(_)) | None => return Err(field_error("model", "`model` is required.")),
        Some(_) => return Err(field_error("model", "`model` must be a string.")),
    };
    let stream = match obj.get("stream") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(field_error("stream", "`stream` must be a boolean.")),
    };
    let include_usage = obj
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let messages = match obj.get("messages") {
        Some(Value::Array(m)) if !m.is_empty() => m,
        Some(Value::Array(_)) | None => {
            return Err(field_error(
                "messages",
                "`messages` must be a non-empty array.",
            ))
        }
        Some(_) => return Err(field_error("messages", "`messages` must be an array.")),
    };
    let (last, earlier) = messages
        .split_last()
        .ok_or_else(|| field_error("messages", "`messages` is empty."))?;
    let (prompt, mut image_uris) = read_message(last)?;
    if image_uris.is_empty() {
        // Deprecated top-level `image`.
        if let Some(Value::String(s)) = obj.get("image") {
            image_uris.push(s.clone());
        }
    }
    if prompt.is_empty() {
        return Err(field_error(
            "messages",
            "The prompt is empty: the last message has no text.",
        ));
    }
    super::inputs::check_prompt_len(&prompt, max_prompt_chars, "messages")?;
    // Continuous conversation (`docs/upstream.md#image-pipeline`): the last image the
    // assistant returned, and only that one (each would be another fetch).
    let history_image = earlier
        .iter()
        .rev()
        .filter(|m| m.get("role").and_then(Value::as_str) == Some("assistant"))
        .filter_map(|m| m.get("content").and_then(Value::as_str))
        .find_map(|text| markdown_images(text).pop());
    Ok(ChatRequest {
        model_name,
        stream,
        include_usage,
        prompt,
        image_uris,
        history_image,
        hints: models::hints_from_body(&v),
    })
}

/// Text and image URIs of one message.
fn read_message(m: &Value) -> Result<(String, Vec<String>), ApiError> {
    let Some(m) = m.as_object() else {
        return Err(field_error("messages", "Each message must be an object."));
    };
    match m.get("content") {
        Some(Value::String(s)) => Ok((s.trim().to_owned(), Vec::new())),
        Some(Value::Array(parts)) => {
            let mut texts = Vec::new();
            let mut images = Vec::new();
            for part in parts {
                match part.get("type").and_then(Value::as_str) {
                    Some("text") => match part.get("text") {
                        Some(Value::String(t)) => {
                            let t = t.trim();
                            if !t.is_empty() {
                                texts.push(t.to_owned());
                            }
                        }
                        _ => {
                            return Err(field_error(
                                "messages",
                                "A text part needs a string `text`.",
                            ))
                        }
                    },
                    Some("image_url") => {
                        let url = match part.get("image_url") {
                            Some(Value::String(s)) => Some(s.as_str()),
                            Some(Value::Object(o)) => o.get("url").and_then(Value::as_str),
                            _ => None,
                        };
                        match url {
                            Some(u) if !u.trim().is_empty() => images.push(u.trim().to_owned()),
                            _ => {
                                return Err(field_error(
                                    "messages",
                                    "An image_url part needs `image_url.url` as a string.",
                                ))
                            }
                        }
                    }
                    _ => {
                        return Err(field_error(
                            "messages",
                            "Content parts must be of type `text` or `image_url`.",
                        ))
                    }
                }
            }
            Ok((texts.join("\n"), images))
        }
        Some(Value::Null) | None => Ok((String::new(), Vec::new())),
        Some(_) => Err(field_error(
            "messages",
            "Message `content` must be a string or an array of parts.",
        )),
    }
}

/// `![alt](url)` targets in order.
fn markdown_images(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("![") {
        rest = &rest[i + 2..];
        let Some(close) = rest.find("](") else { break };
        rest = &rest[close + 2..];
        let Some(end) = rest.find(')') else { break };
        let url = rest[..end].trim();
        if url.starts_with("http") || url.starts_with("data:image") {
            out.push(url.to_owned());
        }
        rest = &rest[end + 1..];
    }
    out
}

/// `POST /v1/chat/completions`. Everything that can fail before generation (parsing, model,
/// images, account) fails here as a plain error response; later failures go in the stream.
pub(crate) async fn chat_completions(
    inner: Arc<AppInner>,
    req: Request<Bytes>,
    caller: Caller,
) -> Result<Response<Body>, ApiError> {
    let chat = parse_chat(req.body(), inner.config.max_prompt_chars)?;
    // Unknown names fail before any image is fetched.
    let Some(mut model) = models::resolve_image(&chat.model_name, &chat.hints, None) else {
        if models::resolve_video(&chat.model_name, &chat.hints, None).is_some() {
            return chat_video(inner, &req, chat, &caller).await;
        }
        return Err(ApiError::model_not_found(&chat.model_name));
    };
    // And a model the key may not use, before any image is fetched too.
    if let Some(t) = caller.tenant() {
        t.check_model(model.id)?;
    }
    if chat.image_uris.len() > inner.config.max_images {
        return Err(field_error(
            "messages",
            format!("At most {} images per request.", inner.config.max_images),
        ));
    }
    let started = inner.deps.clock.now_ms();
    // The history image counts towards the limit: it is only used when there is room.
    let history = chat
        .history_image
        .as_deref()
        .filter(|_| chat.image_uris.len() < inner.config.max_images);
    let (images, history) =
        futures::future::join(inner.load_images(&chat.image_uris, "messages"), async {
            match history {
                Some(uri) => inner.load_optional_image(uri).await,
                None => None,
            }
        })
        .await;
    let mut images = images?;
    if let Some(h) = history {
        images.insert(0, h);
    }
    if let Some(first) = images.first() {
        if let Some(m) = models::resolve_image(&chat.model_name, &chat.hints, Some(first)) {
            model = m;
        }
    }
    let run = ImageRun::start(&inner, &caller, model, started).await?;
    let media_base = inner.public_base(&req);
    let job = ImageRequest {
        model,
        prompt: chat.prompt,
        images,
    };
    let id = format!("chatcmpl-{}", util::random_hex(12));
    let created = inner.deps.clock.now_ms() / 1000;
    let meta = Meta {
        id,
        created,
        model: chat.model_name,
    };
    if chat.stream {
        let (progress, lines) = Progress::channel();
        let clock = inner.deps.clock.clone();
        let interval = inner.config.keepalive_interval;
        let pipeline = boxed(run.finish(job, media_base, progress));
        let encoder = ChatEncoder::new(meta, chat.include_usage);
        let stream = EventStream::new(pipeline, lines, encoder, clock, interval);
        Ok(sse_response(Body::Stream(boxed_stream(stream))))
    } else {
        let output = run.finish(job, media_base, Progress::discard()).await;
        Ok(completion_response(&meta, final_content(&output?)))
    }
}

/// A non-streaming `chat.completion` with `content`.
fn completion_response(meta: &Meta, content: String) -> Response<Body> {
    let body = json!({
        "id": meta.id,
        "object": "chat.completion",
        "created": meta.created,
        "model": meta.model,
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": content},
            "finish_reason": "stop",
        }],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    });
    json_response(StatusCode::OK, Bytes::from(body.to_string()))
}

/// The final chunk's content: markdown for an image, the `<video>` tag
/// (`docs/upstream.md#video-url-resolution`) for a video.
fn final_content(output: &Output) -> String {
    if output.kind == "video" {
        video_html(&output.url, output.media_id.as_deref())
    } else {
        format!("![Generated Image]({})", markup::markdown_url(&output.url))
    }
}

/// The `<video>` tag of a chat stream's final chunk (`docs/upstream.md#video-url-resolution`);
/// `media_id` is the job's `video_media_id` (else the UUID in the URL).
fn video_html(url: &str, media_id: Option<&str>) -> String {
    let media_id = media_id
        .map(str::to_owned)
        .or_else(|| media_uuid(url))
        .unwrap_or_default();
    format!(
        "<video src='{}' data-media-id='{}' controls style='max-width:100%'></video>",
        markup::attr(url),
        markup::attr(&media_id)
    )
}

/// The non-streaming chat content: a fenced HTML block.
fn video_block(url: &str) -> String {
    format!(
        "```html\n<video src='{}' controls></video>\n```",
        markup::attr(url)
    )
}

/// Chat completions for a video model: the job is created now (so every failure before it
/// exists is a plain error response) and the response follows it.
async fn chat_video(
    inner: Arc<AppInner>,
    req: &Request<Bytes>,
    chat: ChatRequest,
    caller: &Caller,
) -> Result<Response<Body>, ApiError> {
    let mut extend_source = None;
    let mut uris = Vec::new();
    for uri in &chat.image_uris {
        match uri.strip_prefix("extend://") {
            Some(id) if !id.trim().is_empty() => extend_source = Some(id.trim().to_owned()),
            Some(_) => {
                return Err(ApiError::bad_request("`extend://` needs a media id.").param("messages"))
            }
            None => uris.push(uri.clone()),
        }
    }
    if uris.len() > inner.config.max_images {
        return Err(ApiError::bad_request(format!(
            "At most {} images per request.",
            inner.config.max_images
        ))
        .param("messages"));
    }
    let images = inner.load_images(&uris, "messages").await?;
    let model = resolve_video_model(
        &chat.model_name,
        &chat.hints,
        None,
        images.first().map(|b| &b[..]),
    )?;
    let ask = VideoAsk {
        model_name: chat.model_name.clone(),
        model,
        prompt: chat.prompt,
        images,
        extend_source,
        images_param: "messages",
    };
    let record = inner
        .start_video(ask, inner.public_base(req), None, caller)
        .await?;
    let meta = Meta {
        id: format!("chatcmpl-{}", record.id),
        created: record.created_at_ms / 1000,
        model: chat.model_name,
    };
    let job_id = HeaderValue::from_str(&record.id).ok();
    let mut resp = if chat.stream {
        let (progress, lines) = Progress::channel();
        let clock = inner.deps.clock.clone();
        let interval = inner.config.keepalive_interval;
        let follow = {
            let inner = inner.clone();
            boxed(async move {
                let followed = inner.jobs.follow(&*inner.runner, record, &progress).await;
                followed.map_err(ApiError::from)
            })
        };
        let encoder = ChatEncoder::new(meta, chat.include_usage);
        let stream = EventStream::new(follow, lines, encoder, clock, interval);
        sse_response(Body::Stream(boxed_stream(stream)))
    } else {
        let output = inner
            .jobs
            .follow(&*inner.runner, record, &Progress::discard())
            .await?;
        completion_response(&meta, video_block(&output.url))
    };
    if let Some(v) = job_id {
        resp.headers_mut().insert("x-video-id", v);
    }
    Ok(resp)
}

/// What every chunk of one completion repeats.
struct Meta {
    id: String,
    created: u64,
    model: String,
}

/// Chat completion chunks.
struct ChatEncoder {
    meta: Meta,
    include_usage: bool,
}

impl ChatEncoder {
    fn new(meta: Meta, include_usage: bool) -> Self {
        Self {
            meta,
            include_usage,
        }
    }

    fn chunk(&self, delta: Value, finish: Option<&str>) -> String {
        let v = json!({
            "id": self.meta.id,
            "object": "chat.completion.chunk",
            "created": self.meta.created,
            "model": self.meta.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        });
        data(&v.to_string())
    }
}

impl Encoder for ChatEncoder {
    type Outcome = Result<Output, ApiError>;

    fn start(&mut self) -> Option<String> {
        Some(self.chunk(json!({"role": "assistant", "content": ""}), None))
    }

    fn progress(&mut self, line: &str) -> String {
        self.chunk(json!({"reasoning_content": line}), None)
    }

    fn finish(&mut self, outcome: Self::Outcome) -> String {
        let mut out = match outcome {
            Ok(o) => self.chunk(json!({"content": final_content(&o)}), Some("stop")),
            Err(e) => data(&e.body_json(Dialect::OpenAi).to_string()),
        };
        if self.include_usage {
            let v = json!({
                "id": self.meta.id,
                "object": "chat.completion.chunk",
                "created": self.meta.created,
                "model": self.meta.model,
                "choices": [],
                "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
            });
            out.push_str(&data(&v.to_string()));
        }
        out.push_str("data: [DONE]\n\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates() {
        let ok = parse_chat(
            br#"{"model":"m","stream":true,"messages":[{"role":"assistant","content":"![x](https://a/1.png) ![y](https://a/2.png)"},{"role":"user","content":[{"type":"text","text":" a cat "},{"type":"image_url","image_url":{"url":"data:image/png;base64,AA=="}}]}]}"#,
            100,
        )
        .ok()
        .unwrap();
        assert_eq!(ok.prompt, "a cat");
        assert!(ok.stream);
        assert_eq!(ok.image_uris.len(), 1);
        // Only the last image the assistant returned.
        assert_eq!(ok.history_image.as_deref(), Some("https://a/2.png"));

        for (body, param) in [
            (&b"{not json"[..], None),
            (br#"[]"#, None),
            (
                br#"{"messages":[{"role":"user","content":"x"}]}"#,
                Some("model"),
            ),
            (
                br#"{"model":5,"messages":[{"role":"user","content":"x"}]}"#,
                Some("model"),
            ),
            (br#"{"model":"m","messages":[]}"#, Some("messages")),
            (br#"{"model":"m","messages":"hi"}"#, Some("messages")),
            (
                br#"{"model":"m","stream":"yes","messages":[{"role":"user","content":"x"}]}"#,
                Some("stream"),
            ),
            (
                br#"{"model":"m","messages":[{"role":"user","content":"   "}]}"#,
                Some("messages"),
            ),
            (
                br#"{"model":"m","messages":[{"role":"user","content":[{"type":"audio"}]}]}"#,
                Some("messages"),
            ),
        ] {
            let e = parse_chat(body, 100).err().unwrap();
            assert_eq!(
                e.status,
                StatusCode::BAD_REQUEST,
                "{}",
                String::from_utf8_lossy(body)
            );
            assert_eq!(e.param.as_deref(), param);
        }
        let e = parse_chat(
            br#"{"model":"m","messages":[{"role":"user","content":"aaaa"}]}"#,
            3,
        )
        .err()
        .unwrap();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }
}
