//! Client-visible failures. Every one has a status and a message and renders itself in the
//! client's dialect: OpenAI `{"error":{message,type,param,code}}`, Gemini
//! `{"error":{code,message,status}}`, or a JSON-RPC error response for MCP clients.

use http::{HeaderValue, Response, StatusCode};
use serde_json::json;

use crate::generate::GenerateError;
use crate::jobs::{FailureKind, JobError, JobFailure};
use crate::pool::{NoAccount, PoolError};
use crate::seams::StorageError;
use crate::tenants::TenantError;

use super::body::Body;
use super::mcp::RpcError;

/// Which error shape the client expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// OpenAI `{"error":{message,type,param,code}}`.
    OpenAi,
    /// Gemini `{"error":{code,message,status}}`.
    Gemini,
    /// JSON-RPC 2.0 (the MCP endpoint): `{"jsonrpc":"2.0","id":null,"error":{code,message,data}}`.
    JsonRpc,
}

/// A failure to show a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Human-readable message (never a secret).
    pub message: String,
    /// OpenAI `code`, e.g. `model_not_found`.
    pub code: Option<&'static str>,
    /// OpenAI `param`, when one field is at fault.
    pub param: Option<String>,
    /// Seconds for `Retry-After`.
    pub retry_after: Option<u32>,
}

impl ApiError {
    /// An error with a status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            code: None,
            param: None,
            retry_after: None,
        }
    }

    /// Sets the OpenAI `code`.
    pub fn code(mut self, code: &'static str) -> Self {
        self.code = Some(code);
        self
    }

    /// Sets the OpenAI `param`.
    pub fn param(mut self, param: impl Into<String>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// Sets `Retry-After`.
    pub fn retry_after(mut self, secs: u32) -> Self {
        self.retry_after = Some(secs);
        self
    }

    /// 400 `invalid_request_error`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401 for a missing or wrong API key.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message).code("invalid_api_key")
    }

    /// 404 `model_not_found`.
    pub fn model_not_found(model: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("The model `{model}` does not exist."),
        )
        .code("model_not_found")
        .param("model")
    }

    /// 404 for an unknown route or record.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message).code("not_found")
    }

    /// 503 when a store cannot be reached; the client may retry shortly.
    pub fn storage_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Storage is unavailable; try again shortly.",
        )
        .retry_after(5)
    }

    /// 500 with a generic message; the detail is for logs only.
    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Internal error; see the server log.",
        )
    }

    /// OpenAI `type` for the status (`insufficient_quota` for a used-up quota, as OpenAI
    /// types it).
    pub fn openai_type(&self) -> &'static str {
        if self.code == Some("insufficient_quota") {
            return "insufficient_quota";
        }
        match self.status.as_u16() {
            401 => "authentication_error",
            403 => "permission_error",
            404 => "invalid_request_error",
            429 => "rate_limit_error",
            s if s >= 500 => "server_error",
            _ => "invalid_request_error",
        }
    }

    /// Gemini `status` for the HTTP code.
    pub fn gemini_status(&self) -> &'static str {
        match self.status.as_u16() {
            400 => "INVALID_ARGUMENT",
            401 => "UNAUTHENTICATED",
            403 => "PERMISSION_DENIED",
            404 => "NOT_FOUND",
            409 => "ABORTED",
            429 => "RESOURCE_EXHAUSTED",
            500 => "INTERNAL",
            502 | 503 => "UNAVAILABLE",
            504 => "DEADLINE_EXCEEDED",
            _ => "UNKNOWN",
        }
    }

    /// The JSON-RPC `error` object (`{code, message, data}`): the one place an `ApiError` gets
    /// a JSON-RPC code. What the client asked for was wrong (400, 404, 422): `-32602`, invalid
    /// params; a body too large (413): `-32600`, invalid request; anything else is `-32000`, a
    /// server-defined error. `data` keeps the HTTP status and the OpenAI `type`, `code` and
    /// `param`, so a program can tell a used-up quota from a missing account.
    pub(crate) fn jsonrpc_error(&self) -> RpcError {
        let code = match self.status.as_u16() {
            400 | 404 | 422 => -32602,
            413 => -32600,
            _ => -32000,
        };
        RpcError::new(code, self.message.clone()).data(json!({
            "status": self.status.as_u16(),
            "type": self.openai_type(),
            "code": self.code,
            "param": self.param,
        }))
    }

    /// The JSON body in `dialect`.
    pub fn body_json(&self, dialect: Dialect) -> serde_json::Value {
        match dialect {
            Dialect::OpenAi => json!({"error": {
                "message": self.message,
                "type": self.openai_type(),
                "param": self.param,
                "code": self.code,
            }}),
            Dialect::Gemini => json!({"error": {
                "code": self.status.as_u16(),
                "message": self.message,
                "status": self.gemini_status(),
            }}),
            // Refused before the message was read: there is no id to answer.
            Dialect::JsonRpc => json!({
                "jsonrpc": "2.0",
                "id": null,
                "error": serde_json::to_value(self.jsonrpc_error()).unwrap_or_default(),
            }),
        }
    }

    /// The whole response in `dialect`.
    pub fn into_response(self, dialect: Dialect) -> Response<Body> {
        let body = self.body_json(dialect).to_string();
        let mut resp = Response::new(Body::from(body));
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(s) = self.retry_after {
            h.insert(http::header::RETRY_AFTER, HeaderValue::from(s));
        }
        // RFC 6750 §3: MCP clients look here to learn how to authenticate.
        if dialect == Dialect::JsonRpc && self.status == StatusCode::UNAUTHORIZED {
            h.insert(
                http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}

impl From<NoAccount> for ApiError {
    fn from(n: NoAccount) -> Self {
        match n {
            NoAccount::TierTooLow { .. } => {
                Self::new(StatusCode::FORBIDDEN, n.to_string()).code("tier_required")
            }
            _ => {
                let retry = n.retry_after_secs();
                Self::new(StatusCode::SERVICE_UNAVAILABLE, n.to_string())
                    .code("no_account_available")
                    .retry_after(retry)
            }
        }
    }
}

impl From<crate::util::RandomnessError> for ApiError {
    /// Nothing secret is minted from a failed source: the request fails instead.
    fn from(e: crate::util::RandomnessError) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("Internal error: {e}."),
        )
        .code("randomness_unavailable")
    }
}

impl From<StorageError> for ApiError {
    /// The detail stays in the server's logs: a backend message may name internal keys.
    fn from(_: StorageError) -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Storage is unavailable; try again.",
        )
        .retry_after(5)
    }
}

impl From<PoolError> for ApiError {
    fn from(e: PoolError) -> Self {
        match e {
            PoolError::Unavailable(n) => n.into(),
            PoolError::Duplicate(_) => {
                Self::new(StatusCode::CONFLICT, e.to_string()).code("duplicate")
            }
            PoolError::Rejected(_) => {
                Self::bad_request(e.to_string()).code("session_token_rejected")
            }
            PoolError::NotFound(_) => Self::not_found(e.to_string()),
            PoolError::Invalid(_) => Self::bad_request(e.to_string()),
            PoolError::Storage(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Storage is unavailable; retry shortly.",
            )
            .code("storage_unavailable")
            .retry_after(5),
        }
    }
}

impl From<&JobFailure> for ApiError {
    /// The one place a classified failure gets its HTTP status, `code` and `Retry-After`
    /// (see `docs/upstream.md#what-the-client-sees`).
    fn from(f: &JobFailure) -> Self {
        let (status, retry_after) = match f.kind {
            FailureKind::CaptchaFailed | FailureKind::UpstreamCaptchaRejected => {
                (StatusCode::SERVICE_UNAVAILABLE, Some(10))
            }
            FailureKind::ContentPolicyViolation => (StatusCode::BAD_REQUEST, None),
            FailureKind::UpstreamTimeout | FailureKind::VideoTimeout => {
                (StatusCode::GATEWAY_TIMEOUT, None)
            }
            FailureKind::InsufficientQuota => (StatusCode::TOO_MANY_REQUESTS, Some(60)),
            FailureKind::UpstreamError | FailureKind::VideoFailed => {
                (StatusCode::BAD_GATEWAY, None)
            }
            FailureKind::AccountUnavailable => (StatusCode::SERVICE_UNAVAILABLE, None),
            FailureKind::StorageUnavailable => (StatusCode::SERVICE_UNAVAILABLE, Some(5)),
            FailureKind::EgressUnavailable => (StatusCode::SERVICE_UNAVAILABLE, Some(30)),
            FailureKind::Other => (StatusCode::INTERNAL_SERVER_ERROR, None),
        };
        let mut e = Self::new(status, f.message.clone()).code(f.code());
        e.retry_after = retry_after;
        e
    }
}

impl From<GenerateError> for ApiError {
    /// Classified as a job's failure would be ([`JobFailure`]), then mapped as one.
    fn from(e: GenerateError) -> Self {
        Self::from(&JobFailure::from(&e))
    }
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::NoAccount(e) => e.into(),
            JobError::Start(e) => e.into(),
            JobError::IdempotencyConflict => {
                Self::new(StatusCode::CONFLICT, e.to_string()).code("idempotency_key_reused")
            }
            JobError::Storage(e) => e.into(),
            JobError::Failed(f) => Self::from(&f),
            JobError::Gone => Self::new(StatusCode::GONE, e.to_string()),
        }
    }
}

impl From<TenantError> for ApiError {
    /// The one place a tenant's refusal gets its status and code.
    fn from(e: TenantError) -> Self {
        match e {
            TenantError::NotFound(_) => Self::not_found(format!("{e}.")),
            TenantError::Invalid(m) => Self::bad_request(m),
            TenantError::ModelNotAllowed(ref model) => Self::new(
                StatusCode::FORBIDDEN,
                format!("This API key may not use the model `{model}`."),
            )
            .code("model_not_allowed")
            .param("model"),
            TenantError::QuotaExceeded {
                retry_after_secs, ..
            } => Self::new(StatusCode::TOO_MANY_REQUESTS, format!("{e}."))
                .code("insufficient_quota")
                .retry_after(retry_after_secs),
            TenantError::TooManyJobs { .. } => {
                Self::new(StatusCode::TOO_MANY_REQUESTS, format!("{e}."))
                    .code("rate_limit_exceeded")
                    .retry_after(5)
            }
            TenantError::Randomness(r) => r.into(),
            TenantError::Storage(s) => s.into(),
        }
    }
}
