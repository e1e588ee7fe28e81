//! The control API under `/_fake/`, so that the loopback server needs no logic of its own.

use std::time::Duration;

use http::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::reply::{self, json as reply_json};
use super::{Endpoint, FakeAccount, FakeFlow, Fault, VideoRedirect, VideoShape};
use crate::seams::{Bytes, HttpResponse};

/// The part of `path` after `/_fake/`, when it is a control path.
pub(super) fn control_path(path: &str) -> Option<&str> {
    path.find("/_fake/").map(|i| &path[i + "/_fake/".len()..])
}

/// Answers one control call.
pub(super) fn handle(fake: &FakeFlow, method: &Method, rest: &str, body: &Bytes) -> HttpResponse {
    let post = method == Method::POST;
    let get = method == Method::GET;
    let result = match rest.trim_end_matches('/') {
        "accounts" if post => parse(body).and_then(|v| add_account(fake, v)),
        "faults" if post => parse(body).and_then(|v| add_fault(fake, &v)),
        "captcha" if post => parse(body).and_then(|v| {
            let polls =
                u32_field(&v, "polls_before_ready")?.ok_or("polls_before_ready is required")?;
            fake.set_captcha_polls_before_ready(polls);
            Ok(ok())
        }),
        "browser_token" if post => parse(body).and_then(|v| {
            let action = v
                .get("action")
                .and_then(Value::as_str)
                .ok_or("action is required")?;
            Ok(json!({"token": fake.browser_token(action)}))
        }),
        "config" if post => parse(body).and_then(|v| configure(fake, &v)),
        "video" if post => parse(body).and_then(|v| configure_video(fake, &v)),
        "expire_st" if post => parse(body).and_then(|v| {
            let st = v
                .get("st")
                .and_then(Value::as_str)
                .ok_or("st is required")?;
            fake.expire_st(st);
            Ok(ok())
        }),
        "revoke_grant" if post => parse(body).and_then(|v| {
            let st = v
                .get("st")
                .and_then(Value::as_str)
                .ok_or("st is required")?;
            fake.revoke_grant(st);
            Ok(ok())
        }),
        "reset" if post => {
            fake.reset();
            Ok(ok())
        }
        "requests" if get => serde_json::to_value(fake.requests()).map_err(|e| e.to_string()),
        "stats" if get => Ok(json!({
            "max_in_flight": fake.max_in_flight(),
            "generated": fake.lock().generated.len(),
            "rejections": fake.rejections(),
        })),
        _ => return reply::not_found(),
    };
    match result {
        Ok(value) => reply_json(200, &value),
        Err(message) => reply::invalid_argument(&message),
    }
}

fn ok() -> Value {
    json!({"ok": true})
}

fn parse(body: &Bytes) -> Result<Value, String> {
    serde_json::from_slice(body).map_err(|_| "Invalid JSON payload received.".to_owned())
}

fn u32_field(v: &Value, name: &str) -> Result<Option<u32>, String> {
    match v.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(n) => n
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| format!("{name} must be a non-negative integer")),
    }
}

#[derive(Deserialize)]
struct AccountBody {
    st: String,
    email: String,
    name: Option<String>,
    tier: Option<String>,
    credits: Option<i64>,
}

fn add_account(fake: &FakeFlow, v: Value) -> Result<Value, String> {
    let body: AccountBody = serde_json::from_value(v).map_err(|e| e.to_string())?;
    if body.st.is_empty() || body.email.is_empty() {
        return Err("st and email must not be empty".to_owned());
    }
    let mut account = FakeAccount::new(body.st, body.email);
    if let Some(name) = body.name {
        account.name = name;
    }
    if let Some(tier) = body.tier {
        account.tier = tier;
    }
    if let Some(credits) = body.credits {
        account.credits = credits;
    }
    fake.add_account(account);
    Ok(ok())
}

fn add_fault(fake: &FakeFlow, v: &Value) -> Result<Value, String> {
    let endpoint: Endpoint = serde_json::from_value(v.get("endpoint").cloned().unwrap_or_default())
        .map_err(|_| "endpoint must be one of session, credits, create_project, upload_image, generate_image, upsample_image, create_task, get_task_result, fife, generate_video_text, generate_video_start_image, generate_video_start_end_image, generate_video_reference_images, extend_video, upsample_video, check_video_status, media_url_redirect, media_bytes, concatenate, concatenation_status, video_file, warm_up, unknown".to_owned())?;
    let fault = match v.get("kind").and_then(Value::as_str) {
        None | Some("status") => {
            let status = v
                .get("status")
                .and_then(Value::as_u64)
                .and_then(|s| u16::try_from(s).ok())
                .filter(|s| (100..=999).contains(s))
                .ok_or("status (100..=999) is required without kind")?;
            let message = v
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_owned)
                .unwrap_or_else(|| default_message(status).to_owned());
            Fault::Status {
                status,
                reason: v.get("reason").and_then(Value::as_str).map(str::to_owned),
                message,
            }
        }
        Some("quota") => Fault::quota(),
        Some("rate_limited") => Fault::rate_limited(),
        Some("unusual_activity") => Fault::unusual_activity(),
        Some("unsafe_generation") => Fault::unsafe_generation(),
        Some("internal") => Fault::internal(),
        Some("malformed_json") => Fault::MalformedJson,
        Some("captcha_unsolvable") => Fault::CaptchaUnsolvable,
        Some("captcha_error") => Fault::CaptchaError,
        Some("latency") => {
            let ms = v
                .get("latency_ms")
                .and_then(Value::as_u64)
                .ok_or("latency_ms is required for kind latency")?;
            Fault::Latency(Duration::from_millis(ms))
        }
        Some(other) => return Err(format!("unknown fault kind {other:?}")),
    };
    // `email`: only calls made with that account's access token.
    let email = v.get("email").and_then(Value::as_str);
    match v.get("percent") {
        None | Some(Value::Null) => {
            let times = u32_field(v, "times")?.unwrap_or(1);
            match email {
                Some(e) => fake.inject_for_account(e, endpoint, fault, times),
                None => fake.inject(endpoint, fault, times),
            }
        }
        Some(p) => {
            let percent = p
                .as_u64()
                .filter(|p| *p <= 100)
                .ok_or("percent must be an integer 0..=100")?;
            match email {
                Some(e) => fake.inject_rate_for_account(e, endpoint, fault, percent as u8),
                None => fake.inject_rate(endpoint, fault, percent as u8),
            }
        }
    }

    Ok(ok())
}

/// Google's usual message for a status.
fn default_message(status: u16) -> &'static str {
    match status {
        400 => "Request contains an invalid argument.",
        401 => "Request had invalid authentication credentials.",
        403 => "The caller does not have permission",
        404 => "Requested entity was not found.",
        429 => "Resource has been exhausted (e.g. check quota).",
        503 => "The service is currently unavailable.",
        504 => "Deadline expired before operation could complete.",
        _ => "Internal error encountered.",
    }
}

fn configure(fake: &FakeFlow, v: &Value) -> Result<Value, String> {
    if let Some(polls) = u32_field(v, "polls_before_ready")? {
        fake.set_captcha_polls_before_ready(polls);
    }
    if let Some(ms) = v.get("at_lifetime_ms") {
        let ms = ms.as_u64().ok_or("at_lifetime_ms must be an integer")?;
        fake.set_at_lifetime(Duration::from_millis(ms));
    }
    if let Some(key) = v.get("yescaptcha_key") {
        fake.set_yescaptcha_key(key.as_str().ok_or("yescaptcha_key must be a string")?);
    }
    if let Some(keys) = v.get("solver_keys") {
        let keys = keys.as_object().ok_or("solver_keys must be an object")?;
        for (solver, key) in keys {
            fake.set_solver_key(solver, key.as_str().ok_or("solver keys must be strings")?);
        }
    }
    if let Some(faults) = v.get("solver_faults") {
        let faults = faults
            .as_object()
            .ok_or("solver_faults must be an object")?;
        for (solver, fault) in faults {
            let fault: Option<super::SolverFault> = serde_json::from_value(fault.clone())
                .map_err(|_| "solver faults are zero_balance, no_slot, poll_error or null")?;
            fake.set_solver_fault(solver, fault);
        }
    }
    if let Some(array) = v.get("upload_response_array") {
        fake.set_upload_response_array(
            array
                .as_bool()
                .ok_or("upload_response_array must be a boolean")?,
        );
    }
    Ok(ok())
}

/// `POST /_fake/video`: `{"pending_polls","active_polls","concat_polls","redirect":"ok|empty|lost",
/// "fife":bool,"shape":"operations|workflows","fail_next":{"code","message"},"error_status_next":"…"}`, all
/// optional (`pending_polls` and `active_polls` default to the current values when only one is
/// given).
fn configure_video(fake: &FakeFlow, v: &Value) -> Result<Value, String> {
    let pending = u32_field(v, "pending_polls")?;
    let active = u32_field(v, "active_polls")?;
    if pending.is_some() || active.is_some() {
        let (cur_pending, cur_active) = {
            let st = fake.lock();
            (st.video.pending_polls, st.video.active_polls)
        };
        fake.set_video_polls(pending.unwrap_or(cur_pending), active.unwrap_or(cur_active));
    }
    if let Some(polls) = u32_field(v, "concat_polls")? {
        fake.set_concat_polls(polls);
    }
    if let Some(redirect) = v.get("redirect") {
        let redirect: VideoRedirect = serde_json::from_value(redirect.clone())
            .map_err(|_| "redirect must be ok, empty or lost".to_owned())?;
        fake.set_video_redirect(redirect);
    }
    if let Some(fife) = v.get("fife") {
        fake.set_video_fife(fife.as_bool().ok_or("fife must be a boolean")?);
    }
    if let Some(shape) = v.get("shape") {
        let shape: VideoShape = serde_json::from_value(shape.clone())
            .map_err(|_| "shape must be operations or workflows".to_owned())?;
        fake.set_video_shape(shape);
    }
    if let Some(fail) = v.get("fail_next").filter(|f| !f.is_null()) {
        let code = fail.get("code").and_then(Value::as_i64).unwrap_or(13);
        let message = fail
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or("Video generation failed.");
        fake.fail_next_video(code, message);
    }
    if let Some(status) = v.get("error_status_next").filter(|s| !s.is_null()) {
        let status = status
            .as_str()
            .filter(|s| s.starts_with("MEDIA_GENERATION_STATUS_"))
            .ok_or("error_status_next must be a MEDIA_GENERATION_STATUS_* string")?;
        fake.error_status_next_video(status);
    }
    Ok(ok())
}
