//! What a failed job records, and why a job could not be created. The jobs layer classifies
//! its own failures; the API layer turns a [`FailureKind`] into a status and an error body for
//! each client dialect, in one place (`api/error.rs`).

use serde::{Deserialize, Serialize};

use crate::generate::GenerateError;
use crate::pool::PoolError;
use crate::seams::StorageError;

/// What kind of failure ended a job. Stored in the record as its `code` (the snake-case name),
/// which is also the machine-readable `code` clients see.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FailureKind {
    /// The captcha provider produced no token within the attempts allowed.
    CaptchaFailed,
    /// Google refused the prompt, an image or the result on content grounds.
    ContentPolicyViolation,
    /// An upstream call timed out.
    UpstreamTimeout,
    /// The account's Flow quota is spent.
    InsufficientQuota,
    /// Google kept rejecting the captcha tokens.
    UpstreamCaptchaRejected,
    /// Any other upstream failure (server errors or rate limits once the retries are spent, a
    /// cut-off or unusable answer, refused credentials…).
    UpstreamError,
    /// Google reported the video failed, or its result could not be fetched.
    VideoFailed,
    /// The video did not finish within the polls allowed.
    VideoTimeout,
    /// The job's account is gone, or its session no longer yields an access token.
    #[serde(alias = "session_token_rejected", alias = "not_found")]
    AccountUnavailable,
    /// The account store failed while the job stepped.
    StorageUnavailable,
    /// The egress relay (or proxy) upstream calls must leave through is down or refused
    /// them: an upstream failure, nobody's account at fault; retried later.
    EgressUnavailable,
    /// Anything else (and codes this version does not know, in records written by another).
    #[serde(rename = "video_generation_failed", other)]
    Other,
}

impl FailureKind {
    /// The stored and client-visible name, e.g. `video_failed`.
    pub fn code(self) -> &'static str {
        match self {
            Self::CaptchaFailed => "captcha_failed",
            Self::ContentPolicyViolation => "content_policy_violation",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::InsufficientQuota => "insufficient_quota",
            Self::UpstreamCaptchaRejected => "upstream_captcha_rejected",
            Self::UpstreamError => "upstream_error",
            Self::VideoFailed => "video_failed",
            Self::VideoTimeout => "video_timeout",
            Self::AccountUnavailable => "account_unavailable",
            Self::StorageUnavailable => "storage_unavailable",
            Self::EgressUnavailable => "egress_unavailable",
            Self::Other => "video_generation_failed",
        }
    }
}

/// Why a job failed: its kind, a message safe to show a client (never a secret), and Google's
/// reason when the upstream gave one (e.g. `PUBLIC_ERROR_UNSAFE_GENERATION`).
///
/// Stored in the job record as `{"code", "message", "upstream_reason"?}`. Records written
/// before this type existed also carry an HTTP `status`, which is ignored: the status follows
/// from the kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{message}")]
pub struct JobFailure {
    /// What kind of failure it was.
    #[serde(rename = "code")]
    pub kind: FailureKind,
    /// What happened, in words a client may see.
    pub message: String,
    /// Google's `details[].reason`, when the failure came from an upstream answer that had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_reason: Option<String>,
}

impl JobFailure {
    /// A failure of `kind` with `message`.
    pub fn new(kind: FailureKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            upstream_reason: None,
        }
    }

    /// The machine-readable code ([`FailureKind::code`]).
    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    /// The job's account could not be read any more.
    pub(crate) fn account_lost(e: &PoolError) -> Self {
        Self::new(
            FailureKind::AccountUnavailable,
            format!("The job's account is no longer available: {e}"),
        )
    }

    /// The job's account could not get a working access token for a step.
    pub(crate) fn token_refresh(e: &PoolError) -> Self {
        match e {
            PoolError::Storage(_) => Self::new(
                FailureKind::StorageUnavailable,
                "Storage is unavailable; retry shortly.",
            ),
            _ => Self::new(
                FailureKind::AccountUnavailable,
                format!("The job's account could not refresh its access token: {e}"),
            ),
        }
    }
}

impl From<&GenerateError> for JobFailure {
    /// Classifies a generation failure (see `docs/upstream.md#what-the-client-sees`). Image
    /// requests are answered through the same classification, so a failure reads alike
    /// whether it ended a job or a synchronous request.
    fn from(e: &GenerateError) -> Self {
        match e {
            GenerateError::Captcha(c) if c.kind == crate::seams::CaptchaErrorKind::Egress => {
                Self::new(
                    FailureKind::EgressUnavailable,
                    format!("The egress relay or proxy is unavailable: {}", c.message),
                )
            }
            GenerateError::Upstream(f) if f.is_egress() => Self::new(
                FailureKind::EgressUnavailable,
                format!("The egress relay or proxy is unavailable: {f}"),
            ),
            GenerateError::Captcha(c) => Self::new(
                FailureKind::CaptchaFailed,
                format!("Could not obtain a reCAPTCHA token: {}", c.message),
            ),
            GenerateError::Upstream(f) => {
                let (kind, message) = if f.is_content_policy() {
                    (
                        FailureKind::ContentPolicyViolation,
                        format!(
                            "Google refused the content ({}): {}",
                            f.reason().unwrap_or("content policy"),
                            f.message()
                        ),
                    )
                } else if f.is_timeout() {
                    (
                        FailureKind::UpstreamTimeout,
                        format!("Upstream timed out: {f}"),
                    )
                } else if f.is_quota_exhausted() {
                    (
                        FailureKind::InsufficientQuota,
                        format!("Upstream quota exhausted: {f}"),
                    )
                } else if f.is_captcha_rejected() {
                    (
                        FailureKind::UpstreamCaptchaRejected,
                        format!("reCAPTCHA kept failing: {f}"),
                    )
                } else {
                    (FailureKind::UpstreamError, format!("Upstream failed: {f}"))
                };
                Self {
                    kind,
                    message,
                    upstream_reason: f.reason().map(str::to_owned),
                }
            }
            GenerateError::VideoFailed(m) => Self::new(FailureKind::VideoFailed, m.clone()),
            GenerateError::VideoTimeout(m) => Self::new(FailureKind::VideoTimeout, m.clone()),
            GenerateError::NoProject => Self::new(FailureKind::UpstreamError, e.to_string()),
        }
    }
}

/// Why a job could not be created, or ended without a video for its follower.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JobError {
    /// No account could take the job (none active, tier too low, all busy…).
    #[error(transparent)]
    NoAccount(PoolError),
    /// Starting the generation failed (uploading the images, most often).
    #[error(transparent)]
    Start(GenerateError),
    /// The `Idempotency-Key` was used before with a different request body.
    #[error("This Idempotency-Key was already used with a different request body.")]
    IdempotencyConflict,
    /// The job store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The followed job failed.
    #[error(transparent)]
    Failed(JobFailure),
    /// The followed job was deleted.
    #[error("The video job was deleted.")]
    Gone,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_records_written_before_the_kind_existed() {
        let old = br#"{"status":502,"code":"video_failed","message":"boom"}"#;
        let f: JobFailure = serde_json::from_slice(old).unwrap();
        assert_eq!(f, JobFailure::new(FailureKind::VideoFailed, "boom"));
        let old = br#"{"status":400,"code":"session_token_rejected","message":"x"}"#;
        let f: JobFailure = serde_json::from_slice(old).unwrap();
        assert_eq!(f.kind, FailureKind::AccountUnavailable);
        let old = br#"{"status":403,"code":"something_new","message":"x"}"#;
        let f: JobFailure = serde_json::from_slice(old).unwrap();
        assert_eq!(f.kind, FailureKind::Other);
    }

    #[test]
    fn stores_the_kind_as_its_code() {
        for kind in [
            FailureKind::CaptchaFailed,
            FailureKind::ContentPolicyViolation,
            FailureKind::UpstreamTimeout,
            FailureKind::InsufficientQuota,
            FailureKind::UpstreamCaptchaRejected,
            FailureKind::UpstreamError,
            FailureKind::VideoFailed,
            FailureKind::VideoTimeout,
            FailureKind::AccountUnavailable,
            FailureKind::StorageUnavailable,
            FailureKind::Other,
        ] {
            let f = JobFailure::new(kind, "m");
            let v = serde_json::to_value(&f).unwrap();
            assert_eq!(v, serde_json::json!({"code": kind.code(), "message": "m"}));
            assert_eq!(serde_json::from_value::<JobFailure>(v).unwrap(), f);
        }
    }
}
