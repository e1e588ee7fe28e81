//! Video jobs over HTTP: the OpenAI Videos API (`/v1/videos`…), and what it shares with chat
//! completions for video models (`openai.rs`) and the Gemini operations (`gemini_video.rs`):
//! resolving the model, starting a job, reading it, serving its MP4.

use std::sync::Arc;

use futures::StreamExt;
use http::{header, HeaderValue, Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::generate::video::{check_image_count, VideoRequest};
use crate::jobs::{is_job_id, JobRecord, JobStatus, NewJob, Order};
use crate::models::{self, find_video_alias, ResolveHints, VideoModel};
use crate::seams::{boxed_stream, Bytes};
use crate::util;

use super::caller::Caller;
use super::error::ApiError;
use super::{json_response, AppInner, Body};

/// A video generation as the client asked for it, before a job exists.
pub(crate) struct VideoAsk {
    /// The name the client used.
    pub(crate) model_name: String,
    pub(crate) model: &'static VideoModel,
    pub(crate) prompt: String,
    pub(crate) images: Vec<Bytes>,
    pub(crate) extend_source: Option<String>,
    /// The request field the images came in, for errors about them.
    pub(crate) images_param: &'static str,
}

/// Resolves a video model name with hints and an optional length in seconds: an alias with
/// a `_<n>s` sibling switches to it; otherwise the model's own length must match.
pub(crate) fn resolve_video_model(
    name: &str,
    hints: &ResolveHints,
    seconds: Option<u8>,
    first_image: Option<&[u8]>,
) -> Result<&'static VideoModel, ApiError> {
    let timed = seconds
        .map(|s| format!("{name}_{s}s"))
        .filter(|n| find_video_alias(n).is_some());
    let name_used = timed.as_deref().unwrap_or(name);
    let model = models::resolve_video(name_used, hints, first_image)
        .ok_or_else(|| ApiError::model_not_found(name))?;
    if let Some(s) = seconds {
        if model.duration_secs() != s {
            return Err(ApiError::bad_request(format!(
                "The model {} makes {}-second videos; `seconds` was {s}.",
                model.id,
                model.duration_secs()
            ))
            .param("seconds"));
        }
    }
    Ok(model)
}

impl AppInner {
    /// Checks the images and the caller's quotas, creates the job (the caller's) and
    /// schedules its first step.
    pub(crate) async fn start_video(
        &self,
        ask: VideoAsk,
        media_base: String,
        idempotency: Option<(String, String)>,
        caller: &Caller,
    ) -> Result<JobRecord, ApiError> {
        let log = caller.log();
        if let Some(d) = log {
            d.video(ask.model.video_type == models::VideoType::Extend);
            d.request(&ask.prompt, !ask.images.is_empty());
        }
        check_image_count(ask.model, ask.images.len())
            .map_err(|m| ApiError::bad_request(m).param(ask.images_param))?;
        if ask.model.video_type == models::VideoType::Extend && ask.extend_source.is_none() {
            return Err(ApiError::bad_request(
                "An extend model needs the source video: pass `extend://<mediaGenerationId>` as an image URL.",
            ));
        }
        let tenant = match caller.tenant() {
            None => None,
            Some(t) => {
                t.check_model(ask.model.id)?;
                let work = crate::tenants::Work::Video {
                    seconds: u32::from(ask.model.duration_secs()),
                };
                Some(
                    self.tenants
                        .admit(t, work, self.pool.settings().video_lease)
                        .await?,
                )
            }
        };
        let new = NewJob {
            request: VideoRequest {
                model: ask.model,
                prompt: ask.prompt,
                images: ask.images,
                extend_source: ask.extend_source,
            },
            requested_model: ask.model_name,
            media_base,
            idempotency,
            tenant,
        };
        let record = self.jobs.start(&*self.runner, new).await?;
        // The job writes the request's log row at its end.
        if let Some(d) = log {
            d.defer();
        }
        Ok(record)
    }

    /// Reads a job the caller may see (scheduling it again if its driver seems to have
    /// stopped); another tenant's job is as absent as one that never was.
    pub(crate) async fn read_job(&self, id: &str, caller: &Caller) -> Result<JobRecord, ApiError> {
        self.jobs
            .get_and_recover(&*self.runner, id)
            .await?
            .filter(|r| caller.may_see(r.owner.as_deref()))
            .ok_or_else(|| ApiError::not_found(format!("No video with id `{id}`.")))
    }

    /// The MP4 of a completed job: from the media store, or streamed from upstream.
    pub(crate) async fn video_content(
        &self,
        record: &JobRecord,
    ) -> Result<Response<Body>, ApiError> {
        let url = match (&record.status, &record.url) {
            (JobStatus::Completed, Some(url)) => url.clone(),
            (JobStatus::Failed, _) => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    "The video failed; it has no content.",
                )
                .code("video_failed"))
            }
            _ => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!(
                        "The video is not ready yet (status {}).",
                        record.status.as_str()
                    ),
                )
                .code("video_not_ready"))
            }
        };
        let own = format!("{}/media/", record.media_base.trim_end_matches('/'));
        if let Some(id) = url.strip_prefix(&own) {
            return self.serve_media(id, &http::HeaderMap::new()).await;
        }
        self.stream_upstream(&url).await
    }

    /// Passes an upstream MP4 through chunk by chunk (following up to three redirects).
    async fn stream_upstream(&self, url: &str) -> Result<Response<Body>, ApiError> {
        let unavailable = |why: String| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                format!("The video could not be fetched from upstream: {why}"),
            )
        };
        let resp = crate::transport::get_following_redirects(
            &*self.deps.http,
            url,
            &http::HeaderMap::new(),
            |_| true,
        )
        .await
        .map_err(|e| unavailable(e.to_string()))?;
        let (parts, body) = resp.into_parts();
        let mut out = Response::new(Body::Stream(boxed_stream(
            body.take_while(|c| futures::future::ready(c.is_ok()))
                .filter_map(|c| futures::future::ready(c.ok())),
        )));
        let h = out.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("video/mp4"));
        if let Some(len) = parts.headers.get(header::CONTENT_LENGTH) {
            h.insert(header::CONTENT_LENGTH, len.clone());
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// OpenAI Videos
// ---------------------------------------------------------------------------------------------

/// The OpenAI video object.
pub(crate) fn video_object(r: &JobRecord) -> Value {
    let mut v = json!({
        "id": r.id,
        "object": "video",
        "model": r.model,
        "status": r.status.as_str(),
        "progress": r.progress,
        "created_at": r.created_at_ms / 1000,
        "completed_at": r.completed_at_ms.map(|ms| ms / 1000),
        "expires_at": null,
        "seconds": r.seconds.to_string(),
        "size": r.size(),
        "prompt": r.prompt,
        "remixed_from_video_id": null,
        "error": r.failure.as_ref().map(|f| json!({"code": f.code(), "message": f.message})),
    });
    if let Some(url) = &r.url {
        v["url"] = json!(url);
    }
    v
}

/// One form or JSON field of a create request.
struct CreateFields {
    model: Option<String>,
    prompt: Option<String>,
    seconds: Option<String>,
    size: Option<String>,
    image_uris: Vec<String>,
    images: Vec<Bytes>,
}

fn field_error(param: &str, message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message).param(param)
}

fn parse_json_create(body: &[u8]) -> Result<CreateFields, ApiError> {
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("The request body is not valid JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| ApiError::bad_request("The request body must be a JSON object."))?;
    let text = |name: &str| -> Result<Option<String>, ApiError> {
        match obj.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) if name == "seconds" => Ok(Some(n.to_string())),
            Some(_) => Err(field_error(name, format!("`{name}` must be a string."))),
        }
    };
    let mut image_uris = Vec::new();
    let refs = match obj.get("input_reference") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.clone(),
        Some(other) => vec![other.clone()],
    };
    for r in refs {
        let uri = match &r {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o
                .get("image_url")
                .and_then(|u| u.as_str().or_else(|| u.get("url").and_then(Value::as_str)))
                .map(str::to_owned),
            _ => None,
        };
        match uri {
            Some(u) if !u.trim().is_empty() => image_uris.push(u),
            _ => {
                return Err(field_error(
                    "input_reference",
                    "`input_reference` must be `{\"image_url\": \"…\"}` (a data: or http(s) URL); uploaded files go in a multipart request.",
                ))
            }
        }
    }
    Ok(CreateFields {
        model: text("model")?,
        prompt: text("prompt")?,
        seconds: text("seconds")?,
        size: text("size")?,
        image_uris,
        images: Vec::new(),
    })
}

async fn parse_multipart_create(body: Bytes, boundary: String) -> Result<CreateFields, ApiError> {
    let bad = |e: multer::Error| ApiError::bad_request(format!("Malformed multipart body: {e}"));
    let stream = futures::stream::once(async move { Ok::<Bytes, std::io::Error>(body) });
    let mut form = multer::Multipart::new(stream, boundary);
    let mut fields = CreateFields {
        model: None,
        prompt: None,
        seconds: None,
        size: None,
        image_uris: Vec::new(),
        images: Vec::new(),
    };
    while let Some(field) = form.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_owned();
        let is_file = field.file_name().is_some();
        let data = field.bytes().await.map_err(bad)?;
        let as_text = || String::from_utf8_lossy(&data).into_owned();
        match name.as_str() {
            "model" => fields.model = Some(as_text()),
            "prompt" => fields.prompt = Some(as_text()),
            "seconds" => fields.seconds = Some(as_text()),
            "size" => fields.size = Some(as_text()),
            "input_reference" | "input_reference[]" if is_file => fields.images.push(data),
            "input_reference" | "input_reference[]" => fields.image_uris.push(as_text()),
            _ => {}
        }
    }
    Ok(fields)
}

/// `size` → a video aspect hint: taller than wide is portrait.
fn size_hint(size: &str) -> Result<&'static str, ApiError> {
    let bad = || {
        field_error(
            "size",
            format!("`size` must be WIDTHxHEIGHT, e.g. 1280x720 or 720x1280; got `{size}`."),
        )
    };
    let (w, h) = size.trim().split_once(['x', 'X']).ok_or_else(bad)?;
    let (w, h): (u32, u32) = (
        w.trim().parse().map_err(|_| bad())?,
        h.trim().parse().map_err(|_| bad())?,
    );
    Ok(if h > w { "9:16" } else { "16:9" })
}

/// `POST /v1/videos`.
pub(crate) async fn create(
    inner: Arc<AppInner>,
    req: Request<Bytes>,
    caller: &Caller,
) -> Result<Response<Body>, ApiError> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut fields = if content_type.starts_with("multipart/form-data") {
        let boundary = multer::parse_boundary(&content_type)
            .map_err(|e| ApiError::bad_request(format!("Malformed multipart body: {e}")))?;
        parse_multipart_create(req.body().clone(), boundary).await?
    } else {
        parse_json_create(req.body())?
    };
    let prompt = fields
        .prompt
        .take()
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .ok_or_else(|| field_error("prompt", "`prompt` is required."))?;
    super::inputs::check_prompt_len(&prompt, inner.config.max_prompt_chars, "prompt")?;
    let model_name = fields
        .model
        .take()
        .map(|m| m.trim().to_owned())
        .filter(|m| !m.is_empty())
        .unwrap_or_else(|| "veo_3_1_t2v_fast".to_owned());
    let seconds = match fields.seconds.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => Some(
            s.parse::<u8>()
                .ok()
                .filter(|n| matches!(n, 4 | 6 | 8))
                .ok_or_else(|| {
                    field_error(
                        "seconds",
                        format!("`seconds` must be \"4\", \"6\" or \"8\"; got `{s}`."),
                    )
                })?,
        ),
    };
    let hints = ResolveHints {
        aspect: match fields.size.as_deref() {
            Some(s) => Some(size_hint(s)?.to_owned()),
            None => None,
        },
        size: None,
    };
    if fields.images.len() + fields.image_uris.len() > inner.config.max_images {
        return Err(field_error(
            "input_reference",
            format!("At most {} images per request.", inner.config.max_images),
        ));
    }
    let max = inner.config.max_image_bytes;
    if fields.images.iter().any(|f| f.len() > max) {
        return Err(field_error(
            "input_reference",
            format!("Image is larger than {max} bytes."),
        ));
    }
    let mut images = std::mem::take(&mut fields.images);
    images.extend(
        inner
            .load_images(&fields.image_uris, "input_reference")
            .await?,
    );
    let model = resolve_video_model(&model_name, &hints, seconds, images.first().map(|b| &b[..]))?;
    let idempotency = req
        .headers()
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(|k| (k.to_owned(), util::hex(&crate::jobs::sha256(req.body()))));
    let ask = VideoAsk {
        model_name,
        model,
        prompt,
        images,
        extend_source: None,
        images_param: "input_reference",
    };
    let record = inner
        .start_video(ask, inner.public_base(&req), idempotency, caller)
        .await?;
    Ok(json_response(
        StatusCode::OK,
        Bytes::from(video_object(&record).to_string()),
    ))
}

/// `GET /v1/videos/{id}`.
pub(crate) async fn retrieve(
    inner: &AppInner,
    id: &str,
    caller: &Caller,
) -> Result<Response<Body>, ApiError> {
    let record = inner.read_job(id, caller).await?;
    Ok(json_response(
        StatusCode::OK,
        Bytes::from(video_object(&record).to_string()),
    ))
}

/// `GET /v1/videos/{id}/content`.
pub(crate) async fn content(
    inner: &AppInner,
    id: &str,
    caller: &Caller,
) -> Result<Response<Body>, ApiError> {
    let record = inner.read_job(id, caller).await?;
    inner.video_content(&record).await
}

/// `DELETE /v1/videos/{id}`.
pub(crate) async fn delete(
    inner: &AppInner,
    id: &str,
    caller: &Caller,
) -> Result<Response<Body>, ApiError> {
    // Another tenant's job is not there for this caller.
    let visible = inner
        .jobs
        .get(id)
        .await?
        .is_some_and(|r| caller.may_see(r.owner.as_deref()));
    if !visible || !inner.jobs.delete(id).await.map_err(ApiError::from)? {
        return Err(ApiError::not_found(format!("No video with id `{id}`.")));
    }
    let body = json!({"id": id, "object": "video.deleted", "deleted": true});
    Ok(json_response(StatusCode::OK, Bytes::from(body.to_string())))
}

/// `GET /v1/videos?after=&limit=&order=`.
pub(crate) async fn list(
    inner: &AppInner,
    req: &Request<Bytes>,
    caller: &Caller,
) -> Result<Response<Body>, ApiError> {
    let mut after = None;
    let mut limit = 20usize;
    let mut desc = true;
    if let Some(q) = req.uri().query() {
        for (k, v) in url::form_urlencoded::parse(q.as_bytes()) {
            match &*k {
                "after" if !v.is_empty() => after = Some(v.into_owned()),
                "limit" => {
                    limit = v
                        .parse::<usize>()
                        .ok()
                        .filter(|n| (1..=100).contains(n))
                        .ok_or_else(|| field_error("limit", "`limit` must be 1–100."))?
                }
                "order" => {
                    desc = match &*v {
                        "desc" => true,
                        "asc" => false,
                        _ => return Err(field_error("order", "`order` must be asc or desc.")),
                    }
                }
                _ => {}
            }
        }
    }
    // The root key lists every job; a tenant, its own: a page straight from storage.
    let order = if desc { Order::Desc } else { Order::Asc };
    let page = inner
        .jobs
        .page(caller.owner(), order, after.as_deref(), limit)
        .await
        .map_err(ApiError::from)?;
    let data: Vec<Value> = page.jobs.iter().map(video_object).collect();
    let has_more = page.has_more;
    let body = json!({
        "object": "list",
        "data": data,
        "first_id": data.first().map(|v| v["id"].clone()),
        "last_id": data.last().map(|v| v["id"].clone()),
        "has_more": has_more,
    });
    Ok(json_response(StatusCode::OK, Bytes::from(body.to_string())))
}

/// Whether `id` names a job (for routing).
pub(crate) fn valid_id(id: &str) -> Result<&str, ApiError> {
    if is_job_id(id) {
        Ok(id)
    } else {
        Err(ApiError::not_found(format!("No video with id `{id}`.")))
    }
}
