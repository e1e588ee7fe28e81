//! Gemini Veo (a client-facing API, see the README): `POST
//! /v1beta/models/{model}:predictLongRunning` starts a job and answers a long-running operation;
//! `GET /v1beta/{operation name}` reads it; `GET /v1beta/models` lists what it serves.
//!
//! The same SDK (google-genai) sends video generation through Vertex AI: with
//! `vertexai=True`, an API key and the gateway as `base_url`, it calls
//! `POST /v1beta1/publishers/google/models/{model}:predictLongRunning` and reads the operation
//! with `POST …/models/{model}:fetchPredictOperation {"operationName"}`. Both are served, each
//! with its own result shape.

use std::sync::Arc;

use base64::Engine as _;
use http::{Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::jobs::{JobRecord, JobStatus};
use crate::models::ResolveHints;
use crate::seams::Bytes;

use super::caller::Caller;
use super::error::ApiError;
use super::videos::{resolve_video_model, VideoAsk};
use super::{json_response, AppInner, Body};

/// The Flow alias a Gemini Veo model name stands for, by what the instance carries.
fn flow_alias(model: &str, images: usize, reference: bool) -> Option<&'static str> {
    let family = if model.contains("lite") {
        "lite"
    } else if model.contains("fast") {
        "fast"
    } else {
        "quality"
    };
    // Only the Veo 3.1 names: older Veo versions are not on Flow.
    if !model.starts_with("veo-3.1-") {
        return None;
    }
    Some(match (family, images, reference) {
        ("lite", 0, _) => "veo_3_1_t2v_lite",
        ("lite", 1, false) => "veo_3_1_i2v_lite",
        ("lite", _, false) => "veo_3_1_interpolation_lite",
        (_, _, true) => "veo_3_1_r2v_fast",
        ("fast", 0, _) => "veo_3_1_t2v_fast",
        ("fast", _, _) => "veo_3_1_i2v_s_fast_fl",
        (_, 0, _) => "veo_3_1_t2v",
        _ => "veo_3_1_i2v_s",
    })
}

/// Which API a request came through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Flavour {
    /// The Gemini API (`/v1beta/models/…`).
    Gemini,
    /// Vertex AI, with the resource prefix before `models/` (`publishers/google/`, possibly
    /// after `projects/…/locations/…/`).
    Vertex(String),
}

impl Flavour {
    pub(crate) fn from_prefix(prefix: &str) -> Self {
        if prefix.is_empty() {
            Self::Gemini
        } else {
            Self::Vertex(prefix.to_owned())
        }
    }

    fn prefix(&self) -> &str {
        match self {
            Self::Gemini => "",
            Self::Vertex(p) => p,
        }
    }
}

fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}

/// An inline image: `{bytesBase64Encoded, mimeType}` (or the `inlineData` shape), at most
/// `max` bytes decoded.
fn image_bytes(v: &Value, what: &str, max: usize) -> Result<Bytes, ApiError> {
    let b64 = v
        .get("bytesBase64Encoded")
        .or_else(|| v.get("imageBytes"))
        .or_else(|| v.get("inlineData").and_then(|d| d.get("data")))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            bad(format!(
                "`{what}` needs `bytesBase64Encoded` (inline image bytes); gcsUri is not supported."
            ))
        })?
        .trim();
    let too_large = || bad(format!("`{what}` is larger than {max} bytes."));
    // base64 expands by 4/3: refuse before decoding what cannot fit.
    if b64.len() / 4 * 3 > max + 3 {
        return Err(too_large());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| bad(format!("`{what}.bytesBase64Encoded` is not valid base64.")))?;
    if bytes.len() > max {
        return Err(too_large());
    }
    Ok(Bytes::from(bytes))
}

/// The Gemini names of Veo 3.1 that `predictLongRunning` takes besides Flow's own ids.
const GEMINI_VIDEO_MODELS: [&str; 3] = [
    "veo-3.1-generate-preview",
    "veo-3.1-fast-generate-preview",
    "veo-3.1-lite-generate-preview",
];

/// The models `predictLongRunning` serves (the Gemini Veo names, then every Flow video id) in
/// Gemini's shape; for a tenant's key only those its patterns allow (a Gemini name by the
/// Flow model a text prompt resolves it to).
pub(crate) fn video_model_entries(caller: &Caller) -> Vec<Value> {
    let allowed = |id: &str| caller.tenant().is_none_or(|t| t.allows_model(id));
    let entry = |name: &str, description: String| {
        json!({
            "name": format!("models/{name}"),
            "version": "3.1",
            "displayName": name,
            "description": description,
            "inputTokenLimit": 0,
            "outputTokenLimit": 0,
            "supportedGenerationMethods": ["predictLongRunning"],
        })
    };
    let gemini = GEMINI_VIDEO_MODELS.iter().filter_map(|name| {
        let alias = flow_alias(name, 0, false)?;
        let model = resolve_video_model(alias, &ResolveHints::default(), None, None).ok()?;
        allowed(model.id).then(|| entry(name, format!("Veo 3.1 on Google Flow ({alias})")))
    });
    let flow = crate::models::video_models()
        .iter()
        .filter(|m| allowed(m.id))
        .map(|m| entry(m.id, m.description()));
    gemini.chain(flow).collect()
}

/// `GET /v1beta/models` (and `GET /v1/models` asked with `x-goog-api-key`): the image
/// models (`generateContent`), then the video models (`predictLongRunning`), in one page.
pub(crate) fn list_models(caller: &Caller) -> Response<Body> {
    let mut models = super::gemini_image::image_model_entries(caller);
    models.extend(video_model_entries(caller));
    json_response(
        StatusCode::OK,
        Bytes::from(json!({ "models": models }).to_string()),
    )
}

/// `POST /v1beta/models/{model}:predictLongRunning`.
pub(crate) async fn predict_long_running(
    inner: Arc<AppInner>,
    req: Request<Bytes>,
    model_name: &str,
    flavour: Flavour,
    caller: &Caller,
) -> Result<Response<Body>, ApiError> {
    let v: Value = serde_json::from_slice(req.body())
        .map_err(|e| bad(format!("Invalid JSON payload: {e}")))?;
    let instance = v
        .get("instances")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .ok_or_else(|| bad("`instances` must hold one instance."))?;
    let prompt = instance
        .get("prompt")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| bad("`instances[0].prompt` is required."))?
        .to_owned();
    super::inputs::check_prompt_len(&prompt, inner.config.max_prompt_chars, "instances")?;
    let max = inner.config.max_image_bytes;
    let mut images = Vec::new();
    if let Some(img) = instance.get("image").filter(|i| !i.is_null()) {
        images.push(image_bytes(img, "image", max)?);
    }
    if let Some(img) = instance.get("lastFrame").filter(|i| !i.is_null()) {
        if images.is_empty() {
            return Err(bad("`lastFrame` needs `image` (the first frame) too."));
        }
        images.push(image_bytes(img, "lastFrame", max)?);
    }
    let refs = instance
        .get("referenceImages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if refs.len() > inner.config.max_images {
        return Err(bad(format!(
            "At most {} reference images per request.",
            inner.config.max_images
        )));
    }
    if !refs.is_empty() && !images.is_empty() {
        return Err(bad(
            "Use either `image`/`lastFrame` or `referenceImages`, not both.",
        ));
    }
    for r in &refs {
        let img = r.get("image").unwrap_or(r);
        images.push(image_bytes(img, "referenceImages[].image", max)?);
    }
    if instance.get("video").is_some_and(|v| !v.is_null()) {
        return Err(bad(
            "Video extension by upload is not supported; use a Flow extend model through chat completions.",
        ));
    }
    let params = v.get("parameters").cloned().unwrap_or(Value::Null);
    if let Some(n) = params.get("sampleCount").and_then(Value::as_u64) {
        if n != 1 {
            return Err(bad("`sampleCount` must be 1."));
        }
    }
    let seconds = match params.get("durationSeconds") {
        None | Some(Value::Null) => None,
        Some(d) => Some(
            d.as_u64()
                .or_else(|| d.as_str().and_then(|s| s.parse().ok()))
                .filter(|n| matches!(n, 4 | 6 | 8))
                .ok_or_else(|| bad("`durationSeconds` must be 4, 6 or 8."))? as u8,
        ),
    };
    let hints = ResolveHints {
        aspect: params
            .get("aspectRatio")
            .and_then(Value::as_str)
            .map(str::to_owned),
        size: params
            .get("resolution")
            .and_then(Value::as_str)
            .filter(|r| !r.eq_ignore_ascii_case("720p"))
            .map(str::to_ascii_lowercase),
    };
    let alias = flow_alias(model_name, images.len(), !refs.is_empty());
    let name = alias.unwrap_or(model_name);
    let model = resolve_video_model(name, &hints, seconds, images.first().map(|b| &b[..]))
        .map_err(|e| {
            if e.status == StatusCode::NOT_FOUND {
                ApiError::not_found(format!(
                    "models/{model_name} is not found for predictLongRunning."
                ))
            } else {
                e
            }
        })?;
    let ask = VideoAsk {
        model_name: model_name.to_owned(),
        model,
        prompt,
        images,
        extend_source: None,
        images_param: "instances",
    };
    let media_base = inner.public_base(&req);
    let record = inner
        .start_video(ask, media_base.clone(), None, caller)
        .await?;
    Ok(operation_response(&record, &media_base, &flavour))
}

/// `POST …/models/{model}:fetchPredictOperation` `{"operationName"}` (Vertex AI).
pub(crate) async fn fetch_predict_operation(
    inner: &AppInner,
    req: &Request<Bytes>,
    flavour: Flavour,
    caller: &Caller,
) -> Result<Response<Body>, ApiError> {
    let v: Value = serde_json::from_slice(req.body())
        .map_err(|e| bad(format!("Invalid JSON payload: {e}")))?;
    let name = v
        .get("operationName")
        .and_then(Value::as_str)
        .ok_or_else(|| bad("`operationName` is required."))?;
    let id = name.rsplit('/').next().unwrap_or_default();
    get_operation(inner, req, id, flavour, caller).await
}

/// `GET /v1beta/models/{model}/operations/{id}` (or `/v1beta/operations/{id}`).
pub(crate) async fn get_operation(
    inner: &AppInner,
    req: &Request<Bytes>,
    id: &str,
    flavour: Flavour,
    caller: &Caller,
) -> Result<Response<Body>, ApiError> {
    let record = inner.read_job(id, caller).await.map_err(|e| {
        if e.status == StatusCode::NOT_FOUND {
            ApiError::not_found(format!("Operation `{id}` not found."))
        } else {
            e
        }
    })?;
    Ok(operation_response(
        &record,
        &inner.public_base(req),
        &flavour,
    ))
}

/// The operation's resource name.
fn operation_name(r: &JobRecord, flavour: &Flavour) -> String {
    format!("{}models/{}/operations/{}", flavour.prefix(), r.model, r.id)
}

fn operation_response(r: &JobRecord, base: &str, flavour: &Flavour) -> Response<Body> {
    let mut op = json!({
        "name": operation_name(r, flavour),
        "metadata": {
            "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningMetadata",
            "progressPercent": r.progress,
        },
    });
    match r.status {
        JobStatus::Completed => {
            // A link to the gateway, which serves it with the API key.
            let uri = format!(
                "{}/v1beta/files/{}:download?alt=media",
                base.trim_end_matches('/'),
                r.id
            );
            op["done"] = json!(true);
            op["response"] = match flavour {
                Flavour::Gemini => json!({
                    "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse",
                    "generateVideoResponse": {"generatedSamples": [{"video": {"uri": uri}}]},
                }),
                Flavour::Vertex(_) => json!({
                    "@type": "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse",
                    "videos": [{"gcsUri": uri, "mimeType": "video/mp4"}],
                }),
            };
        }
        JobStatus::Failed => {
            let e = r
                .failure
                .as_ref()
                .map(ApiError::from)
                .unwrap_or_else(ApiError::internal);
            op["done"] = json!(true);
            op["error"] = e.body_json(super::Dialect::Gemini)["error"].clone();
        }
        _ => op["done"] = json!(false),
    }
    json_response(StatusCode::OK, Bytes::from(op.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemini_names_map_to_flow_aliases() {
        assert_eq!(
            flow_alias("veo-3.1-fast-generate-preview", 0, false),
            Some("veo_3_1_t2v_fast")
        );
        assert_eq!(
            flow_alias("veo-3.1-generate-preview", 2, false),
            Some("veo_3_1_i2v_s")
        );
        assert_eq!(
            flow_alias("veo-3.1-lite-generate-preview", 2, false),
            Some("veo_3_1_interpolation_lite")
        );
        assert_eq!(
            flow_alias("veo-3.1-generate-preview", 3, true),
            Some("veo_3_1_r2v_fast")
        );
        assert_eq!(flow_alias("veo_3_1_t2v_fast", 0, false), None);
        assert_eq!(flow_alias("veo-2.0-generate-001", 0, false), None);
    }
}
