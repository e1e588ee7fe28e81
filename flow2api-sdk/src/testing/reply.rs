//! Response builders: JSON, Google error bodies, YesCaptcha errors, and injected faults.

use http::header::{HeaderValue, CONTENT_TYPE};
use http::StatusCode;
use serde_json::{json, Value};

use super::{Endpoint, Fault};
use crate::seams::{Bytes, HttpResponse};

/// A response with `content_type`; an invalid status becomes 500.
pub(super) fn raw(status: u16, content_type: &'static str, body: impl Into<Bytes>) -> HttpResponse {
    let mut response = HttpResponse::new(body.into());
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// A JSON response.
pub(super) fn json(status: u16, value: &Value) -> HttpResponse {
    raw(
        status,
        "application/json; charset=UTF-8",
        value.to_string().into_bytes(),
    )
}

/// The Google status name for an HTTP code.
pub(super) fn google_status_name(code: u16) -> &'static str {
    match code {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        409 => "ABORTED",
        429 => "RESOURCE_EXHAUSTED",
        500 => "INTERNAL",
        503 => "UNAVAILABLE",
        504 => "DEADLINE_EXCEEDED",
        _ => "UNKNOWN",
    }
}

/// `{"error":{"code","message","status"[,"details":[{"@type","reason"}]]}}` with that status.
pub(super) fn google_error(code: u16, message: &str, reason: Option<&str>) -> HttpResponse {
    let code = if StatusCode::from_u16(code).is_ok() {
        code
    } else {
        500
    };
    let mut error = json!({
        "code": code,
        "message": message,
        "status": google_status_name(code),
    });
    if let Some(reason) = reason {
        error["details"] = json!([{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": reason,
        }]);
    }
    json(code, &json!({ "error": error }))
}

/// 401 for a missing, unknown or expired AT (or ST).
pub(super) fn unauthenticated() -> HttpResponse {
    google_error(401, "Request had invalid authentication credentials.", None)
}

/// 400 `INVALID_ARGUMENT` with a message.
pub(super) fn invalid_argument(message: &str) -> HttpResponse {
    google_error(400, message, None)
}

/// 400 for a body that is not JSON.
pub(super) fn invalid_json() -> HttpResponse {
    invalid_argument("Invalid JSON payload received. Unexpected token.")
}

/// 403 for a project the caller does not own.
pub(super) fn permission_denied() -> HttpResponse {
    google_error(403, "The caller does not have permission", None)
}

/// The reCAPTCHA rejection (`docs/upstream.md#recaptcha`).
pub(super) fn unusual_activity() -> HttpResponse {
    google_error(
        403,
        "reCAPTCHA evaluation failed",
        Some("PUBLIC_ERROR_UNUSUAL_ACTIVITY"),
    )
}

/// 404 with a Google error body.
pub(super) fn not_found() -> HttpResponse {
    google_error(404, "Requested entity was not found.", None)
}

/// A YesCaptcha error answer (HTTP 200).
pub(super) fn captcha_error(code: &str, description: &str) -> HttpResponse {
    json(
        200,
        &json!({"errorId": 1, "errorCode": code, "errorDescription": description}),
    )
}

/// `{"errorId":0,"status":"processing"}`.
pub(super) fn captcha_processing() -> HttpResponse {
    json(200, &json!({"errorId": 0, "status": "processing"}))
}

/// The answer for an injected fault, or `None` when the fault does not apply to `endpoint` and
/// the call proceeds normally (latency, and captcha faults off the captcha endpoints; an
/// unsolvable fault on `CreateTask` proceeds and marks the task).
pub(super) fn fault_response(endpoint: Endpoint, fault: &Fault) -> Option<HttpResponse> {
    match fault {
        Fault::Status {
            status,
            reason,
            message,
        } => Some(google_error(*status, message, reason.as_deref())),
        Fault::MalformedJson => Some(raw(
            200,
            "application/json; charset=UTF-8",
            &b"{\"media\": ["[..],
        )),
        Fault::Latency(_) => None,
        Fault::CaptchaUnsolvable => (endpoint == Endpoint::GetTaskResult).then(captcha_processing),
        Fault::CaptchaError => matches!(endpoint, Endpoint::CreateTask | Endpoint::GetTaskResult)
            .then(|| {
                captcha_error(
                    "ERROR_NO_SLOT_AVAILABLE",
                    "No idle workers are available at the moment, please try again later",
                )
            }),
    }
}
