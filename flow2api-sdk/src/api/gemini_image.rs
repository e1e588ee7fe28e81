//! Gemini image generation: `models/{model}:generateContent` and `:streamGenerateContent`
//! (under `/v1beta/`, `/v1/` — google-genai 3.x's default — and the Vertex AI paths), and the
//! Gemini model list and lookup for image and video models.
//!
//! Bodies follow protobuf's JSON mapping, which takes lowerCamelCase and the proto's
//! snake_case names alike (google-genai 3.x sends `inlineData` with `mime_type`). The prompt
//! is the last user turn's text; its `inlineData` and `fileData` parts are the reference
//! images (`fileData` URLs through the same guarded fetcher as every image URL). The answer
//! carries the image's bytes as `inlineData`; a stream sends progress as parts marked
//! `"thought": true`, then the image, and no `[DONE]`.

use std::sync::Arc;

use base64::Engine as _;
use http::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::generate::{ImageRequest, Progress};
use crate::models::{self, ResolveHints};
use crate::seams::{boxed, boxed_stream, Bytes};

use super::caller::Caller;
use super::error::{ApiError, Dialect};
use super::generation::{output_bytes, ImageRun};
use super::sse::{data, sse_response, Encoder, EventStream};
use super::{json_response, AppInner, Body};

/// A `GenerateContentRequest`; unknown fields (`safetySettings`, `tools`, …) are ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct GenerateContentRequest {
    contents: Vec<Content>,
    #[serde(alias = "system_instruction")]
    system_instruction: Option<Content>,
    #[serde(alias = "generation_config")]
    generation_config: Option<GenerationConfig>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Content {
    role: Option<String>,
    parts: Vec<Part>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Part {
    text: Option<String>,
    #[serde(alias = "inline_data")]
    inline_data: Option<Blob>,
    #[serde(alias = "file_data")]
    file_data: Option<FileData>,
    thought: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Blob {
    data: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct FileData {
    #[serde(alias = "file_uri")]
    file_uri: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct GenerationConfig {
    #[serde(alias = "image_config")]
    image_config: Option<ImageConfig>,
    #[serde(alias = "candidate_count")]
    candidate_count: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct ImageConfig {
    #[serde(alias = "aspect_ratio")]
    aspect_ratio: Option<String>,
    #[serde(alias = "image_size")]
    image_size: Option<String>,
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}

/// A request checked: the prompt, the images still to load, the hints for the model.
#[derive(Debug)]
struct Ask {
    prompt: String,
    inline: Vec<Bytes>,
    uris: Vec<String>,
    hints: ResolveHints,
}

fn parse(body: &[u8], max_prompt_chars: usize, max_bytes: usize) -> Result<Ask, ApiError> {
    let r: GenerateContentRequest =
        serde_json::from_slice(body).map_err(|e| bad(format!("Invalid JSON payload: {e}")))?;
    if r.contents.is_empty() {
        return Err(bad("`contents` must not be empty."));
    }
    if let Some(role) = r.contents.iter().find_map(|c| {
        c.role
            .as_deref()
            .filter(|role| !matches!(*role, "user" | "model" | ""))
    }) {
        return Err(bad(format!(
            "`contents[].role` must be `user` or `model`; got `{role}`."
        )));
    }
    // The last user turn (or the last turn) is the ask.
    let target = r
        .contents
        .iter()
        .rev()
        .find(|c| {
            c.role
                .as_deref()
                .is_none_or(|role| role == "user" || role.is_empty())
        })
        .or_else(|| r.contents.last())
        .ok_or_else(|| bad("`contents` must not be empty."))?;
    let text: Vec<&str> = target
        .parts
        .iter()
        .filter(|p| p.thought != Some(true))
        .filter_map(|p| p.text.as_deref().map(str::trim))
        .filter(|t| !t.is_empty())
        .collect();
    let mut prompt = sanitize_prompt(&text.join("\n"));
    let system = r
        .system_instruction
        .iter()
        .flat_map(|c| &c.parts)
        .filter_map(|p| p.text.as_deref())
        .collect::<Vec<_>>()
        .join("\n");
    if let Some(system) = usable_system(&system) {
        prompt = if prompt.is_empty() {
            system
        } else {
            format!("{system}\n\n{prompt}")
        };
    }
    if prompt.trim().is_empty() {
        return Err(bad(
            "The prompt is empty: the last user turn has no text part.",
        ));
    }
    super::inputs::check_prompt_len(&prompt, max_prompt_chars, "contents")?;
    let mut inline = Vec::new();
    let mut uris = Vec::new();
    for p in &target.parts {
        if let Some(blob) = &p.inline_data {
            inline.push(decode(&blob.data, max_bytes)?);
        }
        if let Some(f) = &p.file_data {
            if f.file_uri.trim().is_empty() {
                return Err(bad("`fileData.fileUri` must not be empty."));
            }
            uris.push(f.file_uri.trim().to_owned());
        }
    }
    let config = r.generation_config.unwrap_or_default();
    if config.candidate_count.is_some_and(|n| n > 1) {
        return Err(bad("`candidateCount` must be 1."));
    }
    let image = config.image_config.unwrap_or_default();
    let hints = ResolveHints {
        aspect: image.aspect_ratio.as_deref().and_then(aspect_hint),
        size: image.image_size.as_deref().and_then(models::normalize_size),
    };
    Ok(Ask {
        prompt,
        inline,
        uris,
        hints,
    })
}

/// An `aspectRatio` as Flow's aspect: the five it has by name, any other `W:H` (`2:3`,
/// `21:9`) to the nearest of them.
fn aspect_hint(raw: &str) -> Option<String> {
    let normal = models::normalize_aspect(raw)?;
    if matches!(
        normal.as_str(),
        "landscape" | "portrait" | "square" | "four-three" | "three-four"
    ) {
        return Some(normal);
    }
    let (w, h) = normal.split_once(':')?;
    let (w, h) = (w.parse::<u32>().ok()?, h.parse::<u32>().ok()?);
    (w > 0 && h > 0).then(|| models::nearest_aspect(w, h).slug().to_owned())
}

fn decode(b64: &str, max: usize) -> Result<Bytes, ApiError> {
    let b64 = b64.trim();
    let too_large = || bad(format!("An inline image is larger than {max} bytes."));
    if b64.len() / 4 * 3 > max + 3 {
        return Err(too_large());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(b64))
        .map_err(|_| bad("`inlineData.data` is not valid base64."))?;
    if bytes.len() > max {
        return Err(too_large());
    }
    if bytes.is_empty() {
        return Err(bad("`inlineData.data` is empty."));
    }
    Ok(Bytes::from(bytes))
}

/// Lines agent frameworks put in every prompt, which mean nothing to an image model.
const BOILERPLATE: [&str; 5] = [
    "you are a function calling ai model.",
    "you are provided with function signatures within",
    "you may call one or more functions to assist with the user query.",
    "don't make assumptions about what values to plug into functions.",
    "here are the available tools:",
];

/// A media prompt without tool definitions: `<tools>…</tools>` blocks and the boilerplate
/// lines around them dropped, runs of blank lines collapsed.
fn sanitize_prompt(text: &str) -> String {
    let mut rest = text.to_owned();
    loop {
        let lower = rest.to_lowercase();
        let (Some(start), Some(end)) = (lower.find("<tools>"), lower.find("</tools>")) else {
            break;
        };
        if end < start {
            break;
        }
        rest.replace_range(start..end + "</tools>".len(), "");
    }
    let kept: Vec<&str> = rest
        .lines()
        .filter(|line| {
            let l = line.trim().to_lowercase();
            !BOILERPLATE.iter().any(|b| l.starts_with(b))
        })
        .collect();
    let mut out = String::new();
    let mut blank = 0;
    for line in kept {
        if line.trim().is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.trim().to_owned()
}

/// The system instruction, when it reads as one for the image (not an agent's tool set).
fn usable_system(system: &str) -> Option<String> {
    let lower = system.to_lowercase();
    let agentic = [
        "<tools>",
        "</tools>",
        "function calling ai model",
        "function signatures",
        "\"$schema\"",
        "\"additionalproperties\"",
    ];
    if system.chars().count() > 1200 || agentic.iter().any(|a| lower.contains(a)) {
        return None;
    }
    Some(sanitize_prompt(system)).filter(|s| !s.is_empty())
}

/// `POST …/models/{model}:generateContent` (`stream: false`) and `:streamGenerateContent`.
pub(crate) async fn generate_content(
    inner: Arc<AppInner>,
    req: Request<Bytes>,
    model_name: &str,
    caller: &Caller,
    stream: bool,
) -> Result<Response<Body>, ApiError> {
    let started = inner.deps.clock.now_ms();
    let name = model_name.strip_prefix("models/").unwrap_or(model_name);
    let ask = parse(
        req.body(),
        inner.config.max_prompt_chars,
        inner.config.max_image_bytes,
    )?;
    let Some(model) = models::resolve_image(name, &ask.hints, None) else {
        if models::resolve_video(name, &ask.hints, None).is_some() {
            return Err(bad(format!(
                "`{name}` is a video model: use `{name}:predictLongRunning`."
            )));
        }
        return Err(ApiError::model_not_found(name));
    };
    if let Some(t) = caller.tenant() {
        t.check_model(model.id)?;
    }
    if ask.inline.len() + ask.uris.len() > inner.config.max_images {
        return Err(bad(format!(
            "At most {} images per request.",
            inner.config.max_images
        )));
    }
    let mut images = ask.inline;
    images.extend(inner.load_images(&ask.uris, "contents").await?);
    let model = match images.first() {
        Some(first) => models::resolve_image(name, &ask.hints, Some(first)).unwrap_or(model),
        None => model,
    };
    let run = ImageRun::start(&inner, caller, model, started).await?;
    let media_base = inner.public_base(&req);
    let job = ImageRequest {
        model,
        prompt: ask.prompt,
        images,
    };
    let version = model.id;
    if stream {
        let (progress, lines) = Progress::channel();
        let clock = inner.deps.clock.clone();
        let interval = inner.config.keepalive_interval;
        let pipeline = boxed(async move {
            let output = run.finish(job, media_base, progress).await?;
            output_bytes(&inner, &output.url).await
        });
        let encoder = StreamEncoder { version };
        let body = EventStream::new(pipeline, lines, encoder, clock, interval);
        return Ok(sse_response(Body::Stream(boxed_stream(body))));
    }
    let output = run.finish(job, media_base, Progress::discard()).await?;
    let bytes = output_bytes(&inner, &output.url).await?;
    Ok(json_response(
        StatusCode::OK,
        Bytes::from(answer(vec![image_part(&bytes)], true, version).to_string()),
    ))
}

fn image_part(bytes: &[u8]) -> Value {
    let mime = crate::seams::media::sniff_media_type(bytes).unwrap_or("image/png");
    json!({"inlineData": {
        "mimeType": mime,
        "data": base64::engine::general_purpose::STANDARD.encode(bytes),
    }})
}

/// One `GenerateContentResponse` with `parts`, finished (`STOP`) or not.
fn answer(parts: Vec<Value>, finished: bool, version: &str) -> Value {
    let mut candidate = json!({
        "content": {"role": "model", "parts": parts},
        "index": 0,
    });
    if finished {
        candidate["finishReason"] = json!("STOP");
    }
    json!({
        "candidates": [candidate],
        "usageMetadata": {"promptTokenCount": 0, "candidatesTokenCount": 0, "totalTokenCount": 0},
        "modelVersion": version,
    })
}

/// Progress as thought parts, then the image; an error after the start is one event.
struct StreamEncoder {
    version: &'static str,
}

impl Encoder for StreamEncoder {
    type Outcome = Result<Bytes, ApiError>;

    fn start(&mut self) -> Option<String> {
        None
    }

    fn progress(&mut self, line: &str) -> String {
        let part = json!({"text": format!("{line}\n"), "thought": true});
        data(&answer(vec![part], false, self.version).to_string())
    }

    fn finish(&mut self, outcome: Self::Outcome) -> String {
        match outcome {
            Ok(bytes) => data(&answer(vec![image_part(&bytes)], true, self.version).to_string()),
            Err(e) => data(&e.body_json(Dialect::Gemini).to_string()),
        }
    }
}

/// A model in Gemini's listing shape.
fn model_entry(id: &str, description: String, methods: &[&str]) -> Value {
    json!({
        "name": format!("models/{id}"),
        "version": "flow2api",
        "displayName": id,
        "description": description,
        "inputTokenLimit": 0,
        "outputTokenLimit": 0,
        "supportedGenerationMethods": methods,
    })
}

const IMAGE_METHODS: [&str; 2] = ["generateContent", "streamGenerateContent"];

/// Every image model (the aliases first, then each id) the caller may use, in Gemini's shape.
pub(crate) fn image_model_entries(caller: &Caller) -> Vec<Value> {
    let allowed = |id: &str| caller.tenant().is_none_or(|t| t.allows_model(id));
    let aliases = models::image_aliases().iter().filter_map(|f| {
        let any = f.models().any(|m| allowed(m.id));
        any.then(|| model_entry(f.alias, f.description.to_owned(), &IMAGE_METHODS))
    });
    let ids = models::image_models()
        .iter()
        .filter(|m| allowed(m.id))
        .map(|m| model_entry(m.id, models::model_description(m.id), &IMAGE_METHODS));
    aliases.chain(ids).collect()
}

/// `GET …/models/{model}`: one image or video model in Gemini's shape, or 404.
pub(crate) fn get_model(caller: &Caller, name: &str) -> Result<Response<Body>, ApiError> {
    let name = name.strip_prefix("models/").unwrap_or(name);
    let found = image_model_entries(caller)
        .into_iter()
        .chain(super::gemini_video::video_model_entries(caller))
        .find(|m| m["name"].as_str() == Some(&format!("models/{name}")));
    match found {
        Some(m) => Ok(json_response(StatusCode::OK, Bytes::from(m.to_string()))),
        None => Err(ApiError::not_found(format!("Model not found: {name}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_and_camel_case_both_read() {
        let png = base64::engine::general_purpose::STANDARD.encode(b"\x89PNG\r\n\x1a\nabc");
        for body in [
            json!({"contents":[{"role":"user","parts":[{"text":"a cat"},{"inlineData":{"mime_type":"image/png","data":png}}]}],
                   "generationConfig":{"imageConfig":{"aspectRatio":"2:3","imageSize":"2K"}}}),
            json!({"contents":[{"parts":[{"text":"a cat"},{"inline_data":{"mime_type":"image/png","data":png}}]}],
                   "generation_config":{"image_config":{"aspect_ratio":"2:3","image_size":"2K"}}}),
        ] {
            let ask = parse(body.to_string().as_bytes(), 1000, 1 << 20).unwrap();
            assert_eq!(ask.prompt, "a cat");
            assert_eq!(ask.inline.len(), 1);
            assert_eq!(ask.hints.aspect.as_deref(), Some("three-four"));
            assert_eq!(ask.hints.size.as_deref(), Some("2k"));
        }
    }

    #[test]
    fn the_last_user_turn_is_the_ask_and_tools_are_dropped() {
        let body = json!({
        "systemInstruction": {"parts": [{"text": "Photorealistic."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "first"}]},
            {"role": "model", "parts": [{"text": "ok"}]},
            {"role": "user", "parts": [{"text": "You are a function calling AI model.\n<tools>{}</tools>\n\n\n\na fox"}]},
        ]});
        let ask = parse(body.to_string().as_bytes(), 1000, 1 << 20).unwrap();
        assert_eq!(ask.prompt, "Photorealistic.\n\na fox");
        let agentic = json!({"systemInstruction": {"parts": [{"text": "<tools>x</tools>"}]},
                              "contents": [{"parts": [{"text": "a fox"}]}]});
        assert_eq!(
            parse(agentic.to_string().as_bytes(), 1000, 1 << 20)
                .unwrap()
                .prompt,
            "a fox"
        );
    }

    #[test]
    fn bad_bodies() {
        for body in [
            json!({}),
            json!({"contents": []}),
            json!({"contents": [{"role": "system", "parts": [{"text": "x"}]}]}),
            json!({"contents": [{"parts": [{"inlineData": {"data": "AAAA"}}]}]}),
            json!({"contents": [{"parts": [{"text": "x"}, {"inlineData": {"data": "!!"}}]}]}),
            json!({"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"candidateCount": 2}}),
        ] {
            let e = parse(body.to_string().as_bytes(), 1000, 1 << 20).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{body}");
        }
    }
}
