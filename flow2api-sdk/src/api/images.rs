//! OpenAI's Images API: `POST /v1/images/generations` (JSON), `POST /v1/images/edits`
//! (multipart `image` / `image[]` files, or JSON with data or http(s) URLs), and
//! `POST /v1/images/variations`, which Flow cannot do (400 saying what to use instead).
//!
//! Each of the `n` images (1–4) is its own generation on its own account slot, run side by
//! side; the tenant's quota counts each. `size` picks the aspect (the nearest of Flow's five),
//! `quality` the resolution as chat completions map it (`medium` → 2K, `high` → 4K, on the
//! model families that offer them). Answers carry `url` (default) or `b64_json`; `stream: true`
//! sends one `image_generation.completed` (or `image_edit.completed`) event per image, with
//! `: keep-alive` comments while the images are made (Flow has no partial images).

use std::sync::Arc;

use base64::Engine as _;
use http::{header, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::generate::{ImageRequest, Output, Progress};
use crate::models::{self, ResolveHints};
use crate::seams::{boxed, boxed_stream, Bytes};

use super::caller::Caller;
use super::error::ApiError;
use super::generation::{output_bytes, ImageRun};
use super::sse::{data, sse_response, Encoder, EventStream};
use super::{json_response, AppInner, Body};

/// The model when the request names none.
pub(crate) const DEFAULT_MODEL: &str = "gemini-3.1-flash-image";
/// The most images one request may ask for.
const MAX_N: u32 = 4;

/// Which route a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `/v1/images/generations`.
    Generation,
    /// `/v1/images/edits`.
    Edit,
}

impl Kind {
    fn event(self) -> &'static str {
        match self {
            Self::Generation => "image_generation.completed",
            Self::Edit => "image_edit.completed",
        }
    }
}

/// How the images come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Url,
    B64,
}

/// A JSON request body, as the openai SDK and other clients send it. Unknown fields
/// (`background`, `moderation`, `user`, `output_compression`, …) are accepted and ignored.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct JsonBody {
    model: Option<String>,
    prompt: Option<String>,
    n: Option<i64>,
    size: Option<String>,
    quality: Option<String>,
    response_format: Option<String>,
    stream: Option<bool>,
    mask: Option<Value>,
    /// Edits: one image (a data or http(s) URL) or several.
    image: Option<OneOrMany>,
    /// Edits, the newer JSON form: `[{"image_url": "…"}]`.
    images: Vec<ImageRef>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(ImageRef),
    Many(Vec<ImageRef>),
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ImageRef {
    Uri(String),
    Object { image_url: ImageUrl },
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ImageUrl {
    Uri(String),
    Object { url: String },
}

impl ImageRef {
    fn into_uri(self) -> String {
        match self {
            Self::Uri(u)
            | Self::Object {
                image_url: ImageUrl::Uri(u) | ImageUrl::Object { url: u },
            } => u,
        }
    }
}

/// The request's fields, from JSON or multipart.
#[derive(Debug, Default)]
struct Fields {
    model: Option<String>,
    prompt: Option<String>,
    n: Option<String>,
    size: Option<String>,
    quality: Option<String>,
    response_format: Option<String>,
    stream: Option<String>,
    has_mask: bool,
    image_uris: Vec<String>,
    files: Vec<Bytes>,
}

fn field_error(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message).param(param)
}

fn parse_json(body: &[u8]) -> Result<Fields, ApiError> {
    let b: JsonBody = serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!("The request body is not a valid JSON object: {e}"))
    })?;
    let mut image_uris: Vec<String> = match b.image {
        None => Vec::new(),
        Some(OneOrMany::One(r)) => vec![r.into_uri()],
        Some(OneOrMany::Many(rs)) => rs.into_iter().map(ImageRef::into_uri).collect(),
    };
    image_uris.extend(b.images.into_iter().map(ImageRef::into_uri));
    Ok(Fields {
        model: b.model,
        prompt: b.prompt,
        n: b.n.map(|n| n.to_string()),
        size: b.size,
        quality: b.quality,
        response_format: b.response_format,
        stream: b.stream.map(|s| s.to_string()),
        has_mask: b.mask.is_some_and(|m| !m.is_null()),
        image_uris,
        files: Vec::new(),
    })
}

async fn parse_multipart(body: Bytes, boundary: String) -> Result<Fields, ApiError> {
    let bad = |e: multer::Error| ApiError::bad_request(format!("Malformed multipart body: {e}"));
    let stream = futures::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut f = Fields::default();
    while let Some(field) = form.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_owned();
        let is_file = field.file_name().is_some();
        let data = field.bytes().await.map_err(bad)?;
        let text = || Some(String::from_utf8_lossy(&data).trim().to_owned());
        match name.as_str() {
            "model" => f.model = text(),
            "prompt" => f.prompt = text(),
            "n" => f.n = text(),
            "size" => f.size = text(),
            "quality" => f.quality = text(),
            "response_format" => f.response_format = text(),
            "stream" => f.stream = text(),
            "mask" => f.has_mask = true,
            "image" | "image[]" if is_file => f.files.push(data),
            "image" | "image[]" => f.image_uris.extend(text()),
            _ => {}
        }
    }
    Ok(f)
}

/// A request checked and typed.
#[derive(Debug)]
struct ImagesRequest {
    model_name: String,
    prompt: String,
    n: u32,
    format: Format,
    stream: bool,
    hints: ResolveHints,
    /// The `size` asked for, echoed back (`None` for `auto` or none).
    size: Option<String>,
    quality: &'static str,
    image_uris: Vec<String>,
    files: Vec<Bytes>,
}

fn check(f: Fields, kind: Kind, max_prompt_chars: usize) -> Result<ImagesRequest, ApiError> {
    if f.has_mask {
        return Err(field_error(
            "mask",
            "Flow cannot edit inside a mask: leave `mask` out and say in the prompt what to change.",
        ));
    }
    let prompt = f
        .prompt
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .ok_or_else(|| field_error("prompt", "`prompt` is required."))?;
    super::inputs::check_prompt_len(&prompt, max_prompt_chars, "prompt")?;
    let n = match f.n.as_deref() {
        None => 1,
        Some(raw) => raw
            .trim()
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=MAX_N).contains(n))
            .ok_or_else(|| field_error("n", format!("`n` must be 1–{MAX_N}; got `{raw}`.")))?,
    };
    let format = match f.response_format.as_deref().map(str::trim) {
        None | Some("" | "url") => Format::Url,
        Some("b64_json") => Format::B64,
        Some(other) => {
            return Err(field_error(
                "response_format",
                format!("`response_format` must be `url` or `b64_json`; got `{other}`."),
            ))
        }
    };
    let stream = match f.stream.as_deref().map(str::trim) {
        None | Some("" | "false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(field_error(
                "stream",
                format!("`stream` must be true or false; got `{other}`."),
            ))
        }
    };
    let mut hints = ResolveHints::default();
    let size = match f.size.as_deref().map(str::trim) {
        None | Some("" | "auto") => None,
        Some(s) => {
            let aspect = models::size_to_aspect(s)
                .map(|a| a.slug().to_owned())
                .or_else(|| models::normalize_aspect(s).filter(|a| is_aspect_slug(a)));
            let Some(aspect) = aspect else {
                return Err(field_error(
                    "size",
                    format!(
                        "`size` must be `auto` or WIDTHxHEIGHT (1024x1024, 1536x1024, 1024x1536, 1792x1024, 1024x1792, …) or an aspect ratio (16:9, 9:16, 1:1, 4:3, 3:4); got `{s}`."
                    ),
                ));
            };
            hints.aspect = Some(aspect);
            Some(s.to_owned())
        }
    };
    let quality = match f.quality.as_deref().map(|q| q.trim().to_lowercase()) {
        None => "auto",
        Some(q) => {
            hints.size = models::quality_to_size(&q);
            match q.as_str() {
                "" | "auto" => "auto",
                "low" | "standard" => "low",
                "medium" => "medium",
                "high" | "hd" => "high",
                _ if hints.size.is_some() => "auto",
                _ => {
                    return Err(field_error(
                        "quality",
                        format!(
                            "`quality` must be auto, low, medium (2K) or high (4K); got `{q}`."
                        ),
                    ))
                }
            }
        }
    };
    if kind == Kind::Edit && f.image_uris.is_empty() && f.files.is_empty() {
        return Err(field_error(
            "image",
            "`image` is required: one or more image files (or data/http(s) URLs) to edit.",
        ));
    }
    Ok(ImagesRequest {
        model_name: f
            .model
            .map(|m| m.trim().to_owned())
            .filter(|m| !m.is_empty())
            .unwrap_or_else(|| DEFAULT_MODEL.to_owned()),
        prompt,
        n,
        format,
        stream,
        hints,
        size,
        quality,
        image_uris: f.image_uris,
        files: f.files,
    })
}

fn is_aspect_slug(s: &str) -> bool {
    matches!(
        s,
        "landscape" | "portrait" | "square" | "four-three" | "three-four"
    )
}

/// Reads the request's fields from its JSON or multipart body.
async fn fields_of(req: &Request<Bytes>) -> Result<Fields, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if content_type.starts_with("multipart/form-data") {
        let boundary = multer::parse_boundary(content_type)
            .map_err(|e| ApiError::bad_request(format!("Malformed multipart body: {e}")))?;
        parse_multipart(req.body().clone(), boundary).await
    } else {
        parse_json(req.body())
    }
}

/// `POST /v1/images/variations`: Flow makes no variations.
pub(crate) fn variations() -> ApiError {
    ApiError::bad_request(
        "Flow cannot make variations of an image. Use POST /v1/images/edits with the image and a prompt describing the variation.",
    )
}

/// One finished image, as the response needs it.
struct Made {
    url: String,
    bytes: Option<Bytes>,
}

/// `POST /v1/images/generations` and `POST /v1/images/edits`.
pub(crate) async fn create(
    inner: Arc<AppInner>,
    req: Request<Bytes>,
    caller: Caller,
    kind: Kind,
) -> Result<Response<Body>, ApiError> {
    let started = inner.deps.clock.now_ms();
    let ask = check(fields_of(&req).await?, kind, inner.config.max_prompt_chars)?;
    // Unknown names, and a model the key may not use, fail before any image is fetched.
    let Some(model) = models::resolve_image(&ask.model_name, &ask.hints, None) else {
        if models::resolve_video(&ask.model_name, &ask.hints, None).is_some() {
            return Err(field_error(
                "model",
                format!(
                    "`{}` is a video model: use POST /v1/videos for videos.",
                    ask.model_name
                ),
            ));
        }
        return Err(ApiError::model_not_found(&ask.model_name));
    };
    if let Some(t) = caller.tenant() {
        t.check_model(model.id)?;
    }
    let count = ask.image_uris.len() + ask.files.len();
    if count > inner.config.max_images {
        return Err(field_error(
            "image",
            format!("At most {} images per request.", inner.config.max_images),
        ));
    }
    let max = inner.config.max_image_bytes;
    if ask.files.iter().any(|f| f.len() > max) {
        return Err(field_error(
            "image",
            format!("Image is larger than {max} bytes."),
        ));
    }
    let mut images = ask.files.clone();
    images.extend(inner.load_images(&ask.image_uris, "image").await?);
    // Without a size, the first image's shape picks the aspect.
    let model = match images.first() {
        Some(first) => {
            models::resolve_image(&ask.model_name, &ask.hints, Some(first)).unwrap_or(model)
        }
        None => model,
    };
    let media_base = inner.public_base(&req);
    let job = ImageRequest {
        model,
        prompt: ask.prompt.clone(),
        images,
    };
    let want_bytes = ask.format == Format::B64 || ask.stream;
    let created = inner.deps.clock.now_ms() / 1000;
    let meta = Meta {
        created,
        size: ask.size.clone(),
        quality: ask.quality,
        kind,
    };
    if ask.stream {
        // The slots first: a request no account can take gets its status, not a stream.
        let runs = start_all(&inner, &caller, model, started, ask.n).await?;
        let (progress, lines) = Progress::channel();
        let clock = inner.deps.clock.clone();
        let interval = inner.config.keepalive_interval;
        let pipeline = boxed(finish_all(
            inner, runs, job, media_base, progress, want_bytes,
        ));
        let stream = EventStream::new(pipeline, lines, StreamEncoder { meta }, clock, interval);
        return Ok(sse_response(Body::Stream(boxed_stream(stream))));
    }
    let runs = start_all(&inner, &caller, model, started, ask.n).await?;
    let made = finish_all(
        inner,
        runs,
        job,
        media_base,
        Progress::discard(),
        want_bytes,
    )
    .await?;
    let data: Vec<Value> = made
        .iter()
        .map(|m| match (&m.bytes, ask.format) {
            (Some(b), Format::B64) => json!({"b64_json": b64(b)}),
            _ => json!({"url": m.url}),
        })
        .collect();
    let mut body = json!({"created": created, "data": data});
    if let Some(format) = made
        .iter()
        .find_map(|m| m.bytes.as_deref())
        .and_then(format_of)
    {
        body["output_format"] = json!(format);
    }
    if let Some(size) = meta.size_of(made.iter().find_map(|m| m.bytes.as_deref())) {
        body["size"] = json!(size);
    }
    if meta.quality != "auto" {
        body["quality"] = json!(meta.quality);
    }
    Ok(json_response(StatusCode::OK, Bytes::from(body.to_string())))
}

/// Admits and takes a slot for each of the `n` images, side by side; on a refusal, the
/// slots already taken go back (their runs are dropped).
async fn start_all(
    inner: &Arc<AppInner>,
    caller: &Caller,
    model: &'static models::ImageModel,
    started: u64,
    n: u32,
) -> Result<Vec<ImageRun>, ApiError> {
    let starts = (0..n).map(|_| ImageRun::start(inner, caller, model, started));
    // What could start runs: `n` asks for up to that many.
    successes(futures::future::join_all(starts).await)
}

/// The successes, unless there are none: then the first failure.
fn successes<T>(results: Vec<Result<T, ApiError>>) -> Result<Vec<T>, ApiError> {
    let mut ok = Vec::with_capacity(results.len());
    let mut first_error = None;
    for r in results {
        match r {
            Ok(v) => ok.push(v),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match (ok.is_empty(), first_error) {
        (true, Some(e)) => Err(e),
        _ => Ok(ok),
    }
}

/// Runs every image to its end, side by side; the ones that failed are left out unless
/// all did (then the first failure).
async fn finish_all(
    inner: Arc<AppInner>,
    runs: Vec<ImageRun>,
    job: ImageRequest,
    media_base: String,
    progress: Progress,
    want_bytes: bool,
) -> Result<Vec<Made>, ApiError> {
    let work = runs.into_iter().map(|run| {
        let (inner, job, media_base, progress) = (
            inner.clone(),
            job.clone(),
            media_base.clone(),
            progress.clone(),
        );
        async move {
            let output: Output = run.finish(job, media_base, progress).await?;
            let bytes = if want_bytes {
                Some(output_bytes(&inner, &output.url).await?)
            } else {
                None
            };
            Ok::<_, ApiError>(Made {
                url: output.url,
                bytes,
            })
        }
    });
    successes(futures::future::join_all(work).await)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `png`, `jpeg` or `webp`, by the bytes (nothing is transcoded).
fn format_of(bytes: &[u8]) -> Option<&'static str> {
    match crate::seams::media::sniff_media_type(bytes)? {
        "image/png" => Some("png"),
        "image/jpeg" => Some("jpeg"),
        "image/webp" => Some("webp"),
        "image/gif" => Some("gif"),
        _ => None,
    }
}

/// What every answer of one request shares.
struct Meta {
    created: u64,
    size: Option<String>,
    quality: &'static str,
    kind: Kind,
}

impl Meta {
    /// The size asked for, else the image's own.
    fn size_of(&self, bytes: Option<&[u8]>) -> Option<String> {
        self.size.clone().or_else(|| {
            let (w, h) = models::image_dimensions(bytes?)?;
            Some(format!("{w}x{h}"))
        })
    }
}

/// `image_generation.completed` / `image_edit.completed` events, one per image.
struct StreamEncoder {
    meta: Meta,
}

impl Encoder for StreamEncoder {
    type Outcome = Result<Vec<Made>, ApiError>;

    fn start(&mut self) -> Option<String> {
        None
    }

    /// Flow has no partial images: progress goes out as SSE comments, which clients skip.
    fn progress(&mut self, line: &str) -> String {
        format!(": {}\n\n", line.replace(['\r', '\n'], " "))
    }

    fn finish(&mut self, outcome: Self::Outcome) -> String {
        let made = match outcome {
            Ok(made) => made,
            Err(e) => {
                let body = e.body_json(super::error::Dialect::OpenAi);
                return format!("event: error\n{}", data(&body.to_string()));
            }
        };
        let mut out = String::new();
        for m in made {
            let bytes = m.bytes.unwrap_or_default();
            let event = json!({
                "type": self.meta.kind.event(),
                "b64_json": b64(&bytes),
                "created_at": self.meta.created,
                "size": self.meta.size_of(Some(&bytes)).unwrap_or_else(|| "auto".to_owned()),
                "quality": self.meta.quality,
                "background": "auto",
                "output_format": format_of(&bytes).unwrap_or("png"),
                "usage": {
                    "input_tokens": 0,
                    "input_tokens_details": {"image_tokens": 0, "text_tokens": 0},
                    "output_tokens": 0,
                    "total_tokens": 0,
                },
            });
            out.push_str(&format!("event: {}\n", self.meta.kind.event()));
            out.push_str(&data(&event.to_string()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(json: &str) -> Result<ImagesRequest, ApiError> {
        check(parse_json(json.as_bytes())?, Kind::Generation, 10_000)
    }

    #[test]
    fn defaults_and_mappings() {
        let r = fields(r#"{"prompt":"a cat"}"#).unwrap();
        assert_eq!(
            (r.model_name.as_str(), r.n, r.format),
            (DEFAULT_MODEL, 1, Format::Url)
        );
        let r = fields(r#"{"prompt":"a cat","size":"1024x1536","quality":"high","n":2,"response_format":"b64_json"}"#).unwrap();
        // 2:3 is nearest to 3:4 among Flow's aspects.
        assert_eq!(r.hints.aspect.as_deref(), Some("three-four"));
        assert_eq!(r.hints.size.as_deref(), Some("4k"));
        assert_eq!((r.n, r.format, r.quality), (2, Format::B64, "high"));
        let r = fields(r#"{"prompt":"a cat","size":"1024x1792"}"#).unwrap();
        assert_eq!(r.hints.aspect.as_deref(), Some("portrait"));
        let r = fields(r#"{"prompt":"x","size":"auto","background":"opaque","user":"u"}"#).unwrap();
        assert_eq!(r.size, None);
    }

    #[test]
    fn bad_fields_name_their_param() {
        for (body, param) in [
            (r#"{"n":1}"#, "prompt"),
            (r#"{"prompt":"x","n":5}"#, "n"),
            (r#"{"prompt":"x","n":0}"#, "n"),
            (r#"{"prompt":"x","size":"huge"}"#, "size"),
            (
                r#"{"prompt":"x","response_format":"gif"}"#,
                "response_format",
            ),
            (r#"{"prompt":"x","quality":"ultra-max"}"#, "quality"),
            (
                r#"{"prompt":"x","mask":"data:image/png;base64,AA=="}"#,
                "mask",
            ),
        ] {
            let e = fields(body).unwrap_err();
            assert_eq!(e.param.as_deref(), Some(param), "{body}: {e:?}");
        }
        let e = check(parse_json(br#"{"prompt":"x"}"#).unwrap(), Kind::Edit, 100).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("image"));
    }

    #[test]
    fn edit_images_in_every_json_form() {
        let f = parse_json(
            br#"{"prompt":"x","image":["data:image/png;base64,AA==","https://a/b.png"],"images":[{"image_url":"https://c/d.png"},{"image_url":{"url":"https://e/f.png"}}]}"#,
        )
        .unwrap();
        assert_eq!(f.image_uris.len(), 4);
        assert_eq!(f.image_uris[3], "https://e/f.png");
    }
}
