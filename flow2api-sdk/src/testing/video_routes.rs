//! The fake video endpoints: the video submits to concat-status (`docs/upstream.md#video-submit`
//! on), the MP4 host and the warm-up calls.

use base64::Engine as _;
use http::header::{HeaderValue, LOCATION};
use http::{Method, StatusCode};
use serde_json::{json, Map, Value};

use super::reply::{self, json as reply_json};
use super::routes::{captcha_ok_for, require_at, str_at, Ctx, Incoming};
use super::state::State;
use super::video::{fake_mp4, Concatenation, FakeVideo, VideoKind, VideoOutcome, VideoRedirect};
use super::video::{VideoShape, VideoState};
use super::{Endpoint, SESSION_COOKIE};
use crate::seams::{Bytes, HttpResponse};
use crate::util;

const PENDING: &str = "MEDIA_GENERATION_STATUS_PENDING";
const SUCCESSFUL: &str = "MEDIA_GENERATION_STATUS_SUCCESSFUL";
const FAILED: &str = "MEDIA_GENERATION_STATUS_FAILED";

/// The video endpoint a path names, if any.
pub(super) fn classify(method: &Method, path: &str) -> Option<Endpoint> {
    let get = method == Method::GET;
    let post = method == Method::POST;
    let submits = [
        ("batchAsyncGenerateVideoText", Endpoint::GenerateVideoText),
        (
            "batchAsyncGenerateVideoStartImage",
            Endpoint::GenerateVideoStartImage,
        ),
        (
            "batchAsyncGenerateVideoStartAndEndImage",
            Endpoint::GenerateVideoStartEndImage,
        ),
        (
            "batchAsyncGenerateVideoReferenceImages",
            Endpoint::GenerateVideoReferenceImages,
        ),
        ("batchAsyncGenerateVideoExtendVideo", Endpoint::ExtendVideo),
        (
            "batchAsyncGenerateVideoUpsampleVideo",
            Endpoint::UpsampleVideo,
        ),
        (
            "batchCheckAsyncVideoGenerationStatus",
            Endpoint::CheckVideoStatus,
        ),
    ];
    if post {
        if let Some((_, method)) = path.rsplit_once("/video:") {
            return submits.iter().find(|(m, _)| *m == method).map(|(_, e)| *e);
        }
        if path.ends_with(":runVideoFxConcatenation") {
            return Some(Endpoint::Concatenate);
        }
        if path.ends_with(":runVideoFxCheckConcatenationStatus") {
            return Some(Endpoint::ConcatenationStatus);
        }
        if path.ends_with("/trpc/general.submitBatchLog") || path.ends_with(":checkAppAvailability")
        {
            return Some(Endpoint::WarmUp);
        }
    }
    if get {
        if path.ends_with("/trpc/media.getMediaUrlRedirect") {
            return Some(Endpoint::MediaUrlRedirect);
        }
        if [
            "/trpc/general.fetchUserPreferences",
            "/trpc/videoFx.getFlowAppConfig",
            "/trpc/videoFx.getUserSettings",
        ]
        .iter()
        .any(|w| path.ends_with(w))
        {
            return Some(Endpoint::WarmUp);
        }
        if video_file_id(path).is_some() {
            return Some(Endpoint::VideoFile);
        }
        if media_name(path).is_some() {
            return Some(Endpoint::MediaBytes);
        }
    }
    None
}

/// The `{id}` of `…/videos/{id}.mp4`.
fn video_file_id(path: &str) -> Option<&str> {
    let (_, file) = path.rsplit_once("/videos/")?;
    let id = file.strip_suffix(".mp4")?;
    (!id.is_empty() && !id.contains('/')).then_some(id)
}

/// The `{name}` of `…/media/{name}`.
fn media_name(path: &str) -> Option<&str> {
    let (_, name) = path.rsplit_once("/media/")?;
    (!name.is_empty() && !name.contains('/')).then_some(name)
}

/// Answers a video endpoint.
pub(super) fn handle(
    st: &mut State,
    ctx: &Ctx<'_>,
    endpoint: Endpoint,
    req: &Incoming,
) -> HttpResponse {
    let kind = match endpoint {
        Endpoint::GenerateVideoText => VideoKind::Text,
        Endpoint::GenerateVideoStartImage => VideoKind::StartImage,
        Endpoint::GenerateVideoStartEndImage => VideoKind::StartEndImage,
        Endpoint::GenerateVideoReferenceImages => VideoKind::ReferenceImages,
        Endpoint::ExtendVideo => VideoKind::Extend,
        Endpoint::UpsampleVideo => VideoKind::Upsample,
        Endpoint::CheckVideoStatus => return check_status(st, ctx, req),
        Endpoint::MediaUrlRedirect => return media_url_redirect(st, ctx, req),
        Endpoint::MediaBytes => return media_bytes(st, ctx, req),
        Endpoint::Concatenate => return concatenate(st, ctx, req),
        Endpoint::ConcatenationStatus => return concatenation_status(st, ctx, req),
        Endpoint::VideoFile => return video_file(st, req),
        Endpoint::WarmUp => return reply_json(200, &json!({})),
        _ => return reply::not_found(),
    };
    submit(st, ctx, endpoint, kind, req)
}

// ---------------------------------------------------------------------------------------------
// The video submits
// ---------------------------------------------------------------------------------------------

/// The video submits: checks AT, project, captcha and body, then records one operation per request.
fn submit(
    st: &mut State,
    ctx: &Ctx<'_>,
    ep: Endpoint,
    kind: VideoKind,
    req: &Incoming,
) -> HttpResponse {
    let Some(email) = require_at(st, ctx, ep, req) else {
        return reply::unauthenticated();
    };
    let Some(body) = &req.json else {
        return reply::invalid_json();
    };
    let pid = str_at(body, "/clientContext/projectId")
        .unwrap_or_default()
        .to_owned();
    if !st.owns_project(&email, &pid) {
        st.reject(
            ep,
            format!("clientContext.projectId {pid:?} is not {email}'s"),
        );
        return reply::permission_denied();
    }
    if !captcha_ok_for(st, ep, body.get("clientContext"), req, "VIDEO_GENERATION") {
        return reply::unusual_activity();
    }
    let parsed = check_envelope(body).and_then(|requests| {
        requests
            .iter()
            .enumerate()
            .map(|(i, r)| parse_request(&st.video, st, &email, &pid, kind, i, r))
            .collect::<Result<Vec<_>, _>>()
    });
    let mut videos = match parsed {
        Ok(videos) => videos,
        Err(why) => {
            st.reject(ep, why.clone());
            return reply::invalid_argument(&why);
        }
    };
    for v in &mut videos {
        if let Some(outcome) = st.video.next_outcomes.pop_front() {
            v.outcome = outcome;
        }
    }
    let credits = st
        .accounts
        .iter()
        .find(|a| a.account.email == email)
        .map_or(0, |a| a.account.credits);
    let answer = match st.video.shape {
        VideoShape::Operations => json!({
            "operations": videos.iter().map(|v| json!({
                "operation": {"name": v.name},
                "sceneId": v.scene_id,
                "status": PENDING,
            })).collect::<Vec<_>>(),
            "remainingCredits": credits,
        }),
        VideoShape::Workflows => json!({
            "remainingCredits": credits,
            "workflows": videos.iter().map(|v| json!({
                "name": v.scene_id,
                "metadata": {"primaryMediaId": v.name},
                "projectId": v.project_id,
            })).collect::<Vec<_>>(),
            "media": videos.iter().map(|v| json!({
                "name": v.name,
                "projectId": v.project_id,
                "mediaMetadata": {"mediaStatus": {"mediaGenerationStatus": PENDING}},
            })).collect::<Vec<_>>(),
        }),
    };
    st.video.videos.extend(videos);
    reply_json(200, &answer)
}

/// The video-submit envelope (`docs/upstream.md#video-submit`): `mediaGenerationContext`,
/// `clientContext`, `useV2ModelConfig`, non-empty `requests`.
fn check_envelope(body: &Value) -> Result<&Vec<Value>, String> {
    if str_at(body, "/mediaGenerationContext/batchId").is_none_or(str::is_empty) {
        return Err("mediaGenerationContext.batchId is required".to_owned());
    }
    if str_at(body, "/mediaGenerationContext/audioFailurePreference").is_none() {
        return Err("mediaGenerationContext.audioFailurePreference is required".to_owned());
    }
    if str_at(body, "/clientContext/tool") != Some("PINHOLE") {
        return Err("clientContext.tool must be PINHOLE".to_owned());
    }
    if str_at(body, "/clientContext/sessionId").is_none() {
        return Err("clientContext.sessionId is required".to_owned());
    }
    if !str_at(body, "/clientContext/userPaygateTier")
        .is_some_and(|t| t.starts_with("PAYGATE_TIER_"))
    {
        return Err("clientContext.userPaygateTier must be a PAYGATE_TIER_*".to_owned());
    }
    if body.get("useV2ModelConfig") != Some(&Value::Bool(true)) {
        return Err("useV2ModelConfig must be true".to_owned());
    }
    body.get("requests")
        .and_then(Value::as_array)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| "requests must not be empty".to_owned())
}

/// `requests[i]` of a submit of `kind`, as an operation.
fn parse_request(
    video: &VideoState,
    st: &State,
    email: &str,
    pid: &str,
    kind: VideoKind,
    i: usize,
    r: &Value,
) -> Result<FakeVideo, String> {
    let at = |field: &str| format!("requests[{i}].{field}");
    let aspect_ratio = str_at(r, "/aspectRatio")
        .filter(|a| a.starts_with("VIDEO_ASPECT_RATIO_"))
        .ok_or_else(|| format!("{} must be a VIDEO_ASPECT_RATIO_*", at("aspectRatio")))?;
    let seed = r
        .get("seed")
        .and_then(Value::as_i64)
        .ok_or_else(|| format!("{} must be an integer", at("seed")))?;
    let model_key = str_at(r, "/videoModelKey")
        .filter(|m| !m.is_empty())
        .ok_or_else(|| format!("{} is required", at("videoModelKey")))?;
    if !r.get("metadata").is_some_and(Value::is_object) {
        return Err(format!("{} must be an object", at("metadata")));
    }
    let prompt = if kind == VideoKind::Upsample {
        String::new()
    } else {
        let parts = r
            .pointer("/textInput/structuredPrompt/parts")
            .and_then(Value::as_array)
            .filter(|p| !p.is_empty())
            .ok_or_else(|| format!("{} is required", at("textInput.structuredPrompt.parts")))?;
        parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect()
    };
    let uploaded = |field: &str, pointer: &str| -> Result<String, String> {
        let id = str_at(r, pointer).unwrap_or_default();
        if st
            .uploads
            .iter()
            .any(|u| u.media_id == id && u.email == email)
        {
            Ok(id.to_owned())
        } else {
            Err(format!(
                "{} {id:?} is not a media item uploaded by this user",
                at(field)
            ))
        }
    };
    let own_video = |pointer: &str| -> Result<String, String> {
        let id = str_at(r, pointer).unwrap_or_default();
        if video
            .video(id)
            .is_some_and(|v| v.email == email && v.is_successful())
        {
            Ok(id.to_owned())
        } else {
            Err(format!(
                "{} {id:?} is not a finished video of this user",
                at("videoInput.mediaId")
            ))
        }
    };
    let mut resolution = None;
    let sources = match kind {
        VideoKind::Text => Vec::new(),
        VideoKind::StartImage => vec![uploaded("startImage.mediaId", "/startImage/mediaId")?],
        VideoKind::StartEndImage => vec![
            uploaded("startImage.mediaId", "/startImage/mediaId")?,
            uploaded("endImage.mediaId", "/endImage/mediaId")?,
        ],
        VideoKind::ReferenceImages => {
            let refs = r
                .get("referenceImages")
                .and_then(Value::as_array)
                .filter(|refs| (1..=3).contains(&refs.len()))
                .ok_or_else(|| format!("{} must hold 1 to 3 images", at("referenceImages")))?;
            let mut ids = Vec::with_capacity(refs.len());
            for (j, reference) in refs.iter().enumerate() {
                if str_at(reference, "/imageUsageType") != Some("IMAGE_USAGE_TYPE_ASSET") {
                    return Err(format!(
                        "{} must be IMAGE_USAGE_TYPE_ASSET",
                        at(&format!("referenceImages[{j}].imageUsageType"))
                    ));
                }
                let field = format!("referenceImages[{j}].mediaId");
                ids.push(uploaded(&field, &format!("/referenceImages/{j}/mediaId"))?);
            }
            ids
        }
        VideoKind::Extend => {
            if str_at(r, "/metadata/workflowId").is_none() {
                return Err(format!("{} is required", at("metadata.workflowId")));
            }
            vec![own_video("/videoInput/mediaId")?]
        }
        VideoKind::Upsample => {
            let res = str_at(r, "/resolution")
                .filter(|r| ["VIDEO_RESOLUTION_4K", "VIDEO_RESOLUTION_1080P"].contains(r))
                .ok_or_else(|| {
                    format!(
                        "{} must be VIDEO_RESOLUTION_4K or VIDEO_RESOLUTION_1080P",
                        at("resolution")
                    )
                })?;
            resolution = Some(res.to_owned());
            if str_at(r, "/metadata/sceneId").is_none() {
                return Err(format!("{} is required", at("metadata.sceneId")));
            }
            vec![own_video("/videoInput/mediaId")?]
        }
    };
    Ok(FakeVideo {
        name: util::uuid_v4(),
        scene_id: util::uuid_v4(),
        email: email.to_owned(),
        project_id: pid.to_owned(),
        kind,
        model_key: model_key.to_owned(),
        aspect_ratio: aspect_ratio.to_owned(),
        prompt,
        seed,
        resolution,
        sources,
        polls: 0,
        pending_polls: video.pending_polls,
        active_polls: video.active_polls,
        outcome: VideoOutcome::Successful,
    })
}

// ---------------------------------------------------------------------------------------------
// video-status
// ---------------------------------------------------------------------------------------------

/// The names a poll asks about: `media[].name`, or `operations[]` (`mediaName` ‖ `name` ‖
/// `operation.name`).
fn poll_names(body: &Value) -> Option<Vec<String>> {
    let names: Vec<String> = if let Some(media) = body.get("media").and_then(Value::as_array) {
        media
            .iter()
            .filter_map(|m| str_at(m, "/name"))
            .map(str::to_owned)
            .collect()
    } else {
        body.get("operations")
            .and_then(Value::as_array)?
            .iter()
            .filter_map(|o| {
                str_at(o, "/mediaName")
                    .or_else(|| str_at(o, "/name"))
                    .or_else(|| str_at(o, "/operation/name"))
            })
            .map(str::to_owned)
            .collect()
    };
    (!names.is_empty()).then_some(names)
}

/// video-status: counts one poll per named operation and answers their status.
fn check_status(st: &mut State, ctx: &Ctx<'_>, req: &Incoming) -> HttpResponse {
    let ep = Endpoint::CheckVideoStatus;
    let Some(email) = require_at(st, ctx, ep, req) else {
        return reply::unauthenticated();
    };
    let Some(body) = &req.json else {
        return reply::invalid_json();
    };
    let Some(names) = poll_names(body) else {
        st.reject(ep, "no media[].name nor operations[] in the poll");
        return reply::invalid_argument("media must name at least one operation");
    };
    let mut videos = Vec::with_capacity(names.len());
    for name in &names {
        match st.video.videos.iter_mut().find(|v| &v.name == name) {
            Some(v) if v.email == email => {
                v.polls += 1;
                videos.push(v.clone());
            }
            Some(_) => {
                st.reject(ep, format!("operation {name} is not {email}'s"));
                return reply::permission_denied();
            }
            None => {
                st.reject(ep, format!("unknown operation {name}"));
                return reply::not_found();
            }
        }
    }
    let media: Vec<Value> = videos.iter().map(|v| media_item(ctx, v)).collect();
    let mut answer = match st.video.shape {
        VideoShape::Operations => json!({
            "operations": videos.iter().map(|v| legacy_operation(ctx, v)).collect::<Vec<_>>(),
            "media": media,
        }),
        VideoShape::Workflows => json!({ "media": media }),
    };
    if !st.video.fife {
        strip_key(&mut answer, "fifeUrl");
    }
    reply_json(200, &answer)
}

/// Removes `key` from every object in `v`.
fn strip_key(v: &mut Value, key: &str) {
    match v {
        Value::Object(map) => {
            map.remove(key);
            map.values_mut().for_each(|c| strip_key(c, key));
        }
        Value::Array(items) => items.iter_mut().for_each(|c| strip_key(c, key)),
        _ => {}
    }
}

/// The embedded `fifeUrl` (not the delivery URL: it carries a token).
fn fife_url(ctx: &Ctx<'_>, v: &FakeVideo) -> String {
    format!("{}/videos/{}.mp4?token=fake-fife", ctx.public_base, v.name)
}

fn error_object(v: &FakeVideo) -> Option<Value> {
    match (&v.outcome, v.status()) {
        (VideoOutcome::Failed { code, message }, FAILED) => {
            Some(json!({"code": code, "message": message}))
        }
        _ => None,
    }
}

/// A legacy `operations[]` item; `operation.metadata.video` once SUCCESSFUL.
fn legacy_operation(ctx: &Ctx<'_>, v: &FakeVideo) -> Value {
    let status = v.status();
    let mut operation = Map::new();
    operation.insert("name".into(), json!(v.name));
    if status == SUCCESSFUL {
        operation.insert(
            "metadata".into(),
            json!({
                "@type": "type.googleapis.com/google.internal.labs.aisandbox.v1.Media",
                "name": v.name,
                "video": {
                    "seed": v.seed,
                    "mediaName": v.name,
                    "mediaGenerationId": v.name,
                    "prompt": v.prompt,
                    "fifeUrl": fife_url(ctx, v),
                    "mediaVisibility": "PRIVATE",
                    "servingBaseUri": format!("{}/videos/{}.mp4", ctx.public_base, v.name),
                    "model": v.model_key,
                    "isLooped": false,
                    "aspectRatio": v.aspect_ratio,
                },
            }),
        );
    }
    if let Some(error) = error_object(v) {
        operation.insert("error".into(), error);
    }
    json!({
        "operation": operation,
        "sceneId": v.scene_id,
        "mediaGenerationId": v.name,
        "status": status,
    })
}

/// A media-centric `media[]` item (`docs/upstream.md#video-status`); `video` once SUCCESSFUL.
fn media_item(ctx: &Ctx<'_>, v: &FakeVideo) -> Value {
    let status = v.status();
    let mut media_status = Map::new();
    media_status.insert("mediaGenerationStatus".into(), json!(status));
    if let Some(error) = error_object(v) {
        media_status.insert("error".into(), error);
    }
    let mut item = json!({
        "name": v.name,
        "projectId": v.project_id,
        "workflowId": v.scene_id,
        "mediaMetadata": {
            "mediaStatus": media_status,
            "requestData": {"videoGenerationRequestData": {"videoModelControlInput": {
                "videoModelName": v.model_key,
                "videoAspectRatio": v.aspect_ratio,
            }}},
        },
    });
    if status == SUCCESSFUL {
        item["video"] = json!({
            "fifeUrl": fife_url(ctx, v),
            "generatedVideo": {
                "aspectRatio": v.aspect_ratio,
                "model": v.model_key,
                "seed": v.seed,
                "prompt": v.prompt,
            },
            "dimensions": {"length": "8s"},
        });
    }
    item
}

// ---------------------------------------------------------------------------------------------
// media-url-redirect, media-bytes and the MP4 host
// ---------------------------------------------------------------------------------------------

/// media-url-redirect: 307 to `<base>/videos/<id>.mp4` (or an empty `Location`), for a finished
/// video of the ST's account.
fn media_url_redirect(st: &mut State, ctx: &Ctx<'_>, req: &Incoming) -> HttpResponse {
    let ep = Endpoint::MediaUrlRedirect;
    let Some(email) = st
        .account_for_st(req.cookie(SESSION_COOKIE))
        .map(|a| a.email.clone())
    else {
        st.reject(ep, "unknown or expired session token");
        return reply::unauthenticated();
    };
    let query: Vec<(String, String)> = url::form_urlencoded::parse(req.query.as_bytes())
        .into_owned()
        .collect();
    let param = |key: &str| {
        query
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    if param("mediaUrlType") != Some("MEDIA_URL_TYPE_FULL_MEDIA") {
        st.reject(ep, "mediaUrlType is not MEDIA_URL_TYPE_FULL_MEDIA");
        return reply::invalid_argument("mediaUrlType must be MEDIA_URL_TYPE_FULL_MEDIA");
    }
    let name = param("name").unwrap_or_default();
    if !st
        .video
        .video(name)
        .is_some_and(|v| v.email == email && v.is_successful())
    {
        st.reject(ep, format!("{name:?} is not a finished video of {email}"));
        return reply::not_found();
    }
    let url = match st.video.redirect {
        VideoRedirect::Ok => format!("{}/videos/{name}.mp4", ctx.public_base),
        VideoRedirect::Empty | VideoRedirect::Lost => String::new(),
    };
    let mut response = reply_json(307, &json!({ "url": url }));
    *response.status_mut() = StatusCode::TEMPORARY_REDIRECT;
    if let Ok(value) = HeaderValue::from_str(&url) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// media-bytes: the video as base64 (without `encodedVideo` when the redirect mode is `Lost`).
fn media_bytes(st: &mut State, ctx: &Ctx<'_>, req: &Incoming) -> HttpResponse {
    let ep = Endpoint::MediaBytes;
    let Some(email) = require_at(st, ctx, ep, req) else {
        return reply::unauthenticated();
    };
    let name = media_name(&req.path).unwrap_or_default();
    let Some(v) = st
        .video
        .video(name)
        .filter(|v| v.email == email && v.is_successful())
        .cloned()
    else {
        st.reject(ep, format!("{name:?} is not a finished video of {email}"));
        return reply::not_found();
    };
    let mut video = json!({
        "seed": v.seed,
        "prompt": v.prompt,
        "model": v.model_key,
        "aspectRatio": v.aspect_ratio,
    });
    if st.video.redirect != VideoRedirect::Lost {
        video["encodedVideo"] =
            json!(base64::engine::general_purpose::STANDARD.encode(fake_mp4(&v.name)));
    }
    reply_json(200, &json!({"name": v.name, "video": video}))
}

/// `GET …/videos/{id}.mp4`: [`fake_mp4`] for a finished video or concatenation, else 404.
fn video_file(st: &mut State, req: &Incoming) -> HttpResponse {
    let id = video_file_id(&req.path).unwrap_or_default();
    if st.video.serves(id) {
        reply::raw(200, "video/mp4", Bytes::from(fake_mp4(id)))
    } else {
        reply::raw(404, "text/plain; charset=UTF-8", &b"Not Found"[..])
    }
}

// ---------------------------------------------------------------------------------------------
// concat-submit, concat-status
// ---------------------------------------------------------------------------------------------

/// concat-submit: `inputVideos` must be ≥ 2 finished videos of the account.
fn concatenate(st: &mut State, ctx: &Ctx<'_>, req: &Incoming) -> HttpResponse {
    let ep = Endpoint::Concatenate;
    let Some(email) = require_at(st, ctx, ep, req) else {
        return reply::unauthenticated();
    };
    let Some(body) = &req.json else {
        return reply::invalid_json();
    };
    let Some(inputs) = body
        .get("inputVideos")
        .and_then(Value::as_array)
        .filter(|i| i.len() >= 2)
    else {
        st.reject(ep, "inputVideos missing or shorter than 2");
        return reply::invalid_argument("inputVideos must hold at least 2 videos");
    };
    let mut ids = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.iter().enumerate() {
        let id = str_at(input, "/mediaGenerationId").unwrap_or_default();
        let ok = st
            .video
            .video(id)
            .is_some_and(|v| v.email == email && v.is_successful());
        let offsets = str_at(input, "/startTimeOffset").is_some()
            && str_at(input, "/endTimeOffset").is_some();
        if !ok || !offsets {
            let why = format!(
                "inputVideos[{i}]: {id:?} is not a finished video of this user, or offsets missing"
            );
            st.reject(ep, why.clone());
            return reply::invalid_argument(&why);
        }
        ids.push(id.to_owned());
    }
    let name = format!("concat-{}", util::random_hex(16));
    let concat = Concatenation {
        email,
        inputs: ids,
        polls: 0,
        polls_needed: st.video.concat_polls,
        output: util::uuid_v4(),
    };
    st.video.concatenations.insert(name.clone(), concat);
    reply_json(200, &json!({"operation": {"operation": {"name": name}}}))
}

/// concat-status: ACTIVE until the configured poll, then SUCCESSFUL with `outputUri`.
fn concatenation_status(st: &mut State, ctx: &Ctx<'_>, req: &Incoming) -> HttpResponse {
    let ep = Endpoint::ConcatenationStatus;
    let Some(email) = require_at(st, ctx, ep, req) else {
        return reply::unauthenticated();
    };
    let Some(body) = &req.json else {
        return reply::invalid_json();
    };
    let name = str_at(body, "/operation/operation/name").unwrap_or_default();
    let Some(concat) = st
        .video
        .concatenations
        .get_mut(name)
        .filter(|c| c.email == email)
    else {
        st.reject(ep, format!("unknown concatenation {name:?}"));
        return reply::not_found();
    };
    concat.polls += 1;
    if concat.polls < concat.polls_needed {
        return reply_json(200, &json!({"status": "MEDIA_GENERATION_STATUS_ACTIVE"}));
    }
    reply_json(
        200,
        &json!({
            "status": SUCCESSFUL,
            "outputUri": format!("{}/videos/{}.mp4", ctx.public_base, concat.output),
            "inputCount": concat.inputs.len(),
        }),
    )
}
