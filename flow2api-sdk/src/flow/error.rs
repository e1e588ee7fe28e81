//! The upstream error: an opaque value with predicates the pool and the pipeline classify by,
//! keeping the evidence (status, Google's reason, raw body) but never a token or a URL.

use std::fmt;

use crate::seams::{TransportError, TransportErrorKind};

use super::wire::GoogleErrorBody;

/// Flow's reason when reCAPTCHA scored the request as a bot.
pub const REASON_UNUSUAL_ACTIVITY: &str = "PUBLIC_ERROR_UNUSUAL_ACTIVITY";
/// Flow's reason when the account's quota is spent.
pub const REASON_QUOTA_REACHED: &str = "PUBLIC_ERROR_USER_QUOTA_REACHED";
/// Flow's reason when the prompt or output breaks the content policy.
pub const REASON_UNSAFE_GENERATION: &str = "PUBLIC_ERROR_UNSAFE_GENERATION";
/// Flow's reason when an uploaded image shows a minor.
pub const REASON_MINOR_UPLOAD: &str = "PUBLIC_ERROR_MINOR_UPLOAD";

/// Whose fault a failure is; this alone decides what happens to the request and the account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blame {
    /// The client's request (content policy, invalid argument): final, never counted.
    Client,
    /// The captcha: retried with a new token within its own budget, never counted.
    Captcha,
    /// The account's quota is spent: it cools down; the request moves to another account.
    Quota,
    /// A plain rate limit (no quota reason): retried within the upstream budget like
    /// `Upstream`; once that is spent, a short cooldown and the request moves to another
    /// account. Never counted.
    RateLimited,
    /// Google or the network (a truncated body included): retried, then on another account;
    /// never counted.
    Upstream,
    /// The credentials were refused: the token is refreshed (the account expires if its ST
    /// is dead); the request moves to another account.
    Auth,
    /// Something about this account (permission, project): counted against it.
    Account,
}

impl Blame {
    /// Its name in metrics labels: `client`, `captcha`, `quota`, `rate_limited`,
    /// `upstream`, `auth`, `account`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client",
            Self::Captcha => "captcha",
            Self::Quota => "quota",
            Self::RateLimited => "rate_limited",
            Self::Upstream => "upstream",
            Self::Auth => "auth",
            Self::Account => "account",
        }
    }

    /// Whether trying another account may help.
    pub fn try_another_account(self) -> bool {
        !matches!(self, Self::Client | Self::Captcha)
    }
}

/// A failed upstream call. Its `Debug` leaves the response body out (see the impl).
#[derive(Clone)]
pub struct FlowError {
    endpoint: &'static str,
    kind: Kind,
}

#[derive(Clone)]
enum Kind {
    /// Google answered with an error status.
    Status {
        status: u16,
        reason: Option<String>,
        google_status: Option<String>,
        message: String,
        body: String,
    },
    /// No response.
    Transport(TransportError),
    /// A 2xx body we could not use.
    Parse { message: String, body: String },
}

use crate::util::truncate;

impl FlowError {
    /// An error from an HTTP status and body (Google's error format or anything else).
    pub fn from_status(endpoint: &'static str, status: u16, body: &[u8]) -> Self {
        let text = String::from_utf8_lossy(body);
        let parsed = serde_json::from_slice::<GoogleErrorBody>(body)
            .ok()
            .and_then(|b| b.error);
        let (reason, google_status, message) = match parsed {
            Some(e) => {
                let reason = e
                    .details
                    .iter()
                    .find_map(|d| d.get("reason").and_then(|r| r.as_str()).map(str::to_owned));
                (reason, e.status, e.message.unwrap_or_default())
            }
            None => (None, None, truncate(text.trim(), 200)),
        };
        Self {
            endpoint,
            kind: Kind::Status {
                status,
                reason,
                google_status,
                message,
                body: truncate(&text, 2048),
            },
        }
    }

    /// An error for a call that got no response.
    pub fn transport(endpoint: &'static str, e: TransportError) -> Self {
        Self {
            endpoint,
            kind: Kind::Transport(e),
        }
    }

    /// An error for a success response we could not use.
    pub fn parse(endpoint: &'static str, message: impl Into<String>, body: &[u8]) -> Self {
        Self {
            endpoint,
            kind: Kind::Parse {
                message: message.into(),
                body: truncate(&String::from_utf8_lossy(body), 2048),
            },
        }
    }

    /// Which upstream call failed (`generate_image`, `session`…).
    pub fn endpoint(&self) -> &'static str {
        self.endpoint
    }

    /// The HTTP status, when Google answered.
    pub fn status(&self) -> Option<u16> {
        match &self.kind {
            Kind::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Google's `details[].reason`, e.g. `PUBLIC_ERROR_UNUSUAL_ACTIVITY`.
    pub fn reason(&self) -> Option<&str> {
        match &self.kind {
            Kind::Status { reason, .. } => reason.as_deref(),
            _ => None,
        }
    }

    /// Google's message.
    pub fn message(&self) -> &str {
        match &self.kind {
            Kind::Status { message, .. } => message,
            Kind::Transport(e) => &e.message,
            Kind::Parse { message, .. } => message,
        }
    }

    /// The raw response body (truncated), for diagnosis.
    pub fn body(&self) -> Option<&str> {
        match &self.kind {
            Kind::Status { body, .. } | Kind::Parse { body, .. } => Some(body),
            Kind::Transport(_) => None,
        }
    }

    fn google_status(&self) -> Option<&str> {
        match &self.kind {
            Kind::Status { google_status, .. } => google_status.as_deref(),
            _ => None,
        }
    }

    /// The call timed out.
    pub fn is_timeout(&self) -> bool {
        matches!(&self.kind, Kind::Transport(e) if e.kind == TransportErrorKind::Timeout)
    }

    /// The request's egress (relay or proxy) could not be used: no answer from upstream at
    /// all, and nobody's account at fault.
    pub fn is_egress(&self) -> bool {
        matches!(&self.kind, Kind::Transport(e) if e.kind == TransportErrorKind::Egress)
    }

    /// No response at all (connection, DNS, timeout).
    pub fn is_transport(&self) -> bool {
        matches!(self.kind, Kind::Transport(_))
    }

    /// reCAPTCHA scored the request as a bot: the captcha's fault, not the account's.
    pub fn is_captcha_rejected(&self) -> bool {
        self.reason() == Some(REASON_UNUSUAL_ACTIVITY)
            || self
                .message()
                .to_ascii_lowercase()
                .contains("recaptcha evaluation failed")
    }

    /// The account's quota is spent.
    pub fn is_quota_exhausted(&self) -> bool {
        self.reason() == Some(REASON_QUOTA_REACHED)
    }

    /// Rate limited (429 or `RESOURCE_EXHAUSTED`), quota included.
    pub fn is_rate_limited(&self) -> bool {
        self.status() == Some(429)
            || self.google_status() == Some("RESOURCE_EXHAUSTED")
            || self.is_quota_exhausted()
    }

    /// Google refused the prompt or the output on content grounds.
    pub fn is_content_policy(&self) -> bool {
        matches!(
            self.reason(),
            Some(REASON_UNSAFE_GENERATION | REASON_MINOR_UPLOAD)
        )
    }

    /// The credentials were refused (401 / `UNAUTHENTICATED`).
    pub fn is_auth(&self) -> bool {
        self.status() == Some(401) || self.google_status() == Some("UNAUTHENTICATED")
    }

    /// Google's answer was unusable (malformed or missing fields).
    pub fn is_parse(&self) -> bool {
        matches!(self.kind, Kind::Parse { .. })
    }

    /// Worth another attempt with a fresh captcha: captcha rejections, rate limits, server
    /// errors, transport failures and garbled answers. Client mistakes (`INVALID_ARGUMENT`) and
    /// content-policy refusals are final.
    pub fn is_retryable(&self) -> bool {
        if self.is_content_policy() {
            return false;
        }
        match &self.kind {
            Kind::Transport(_) | Kind::Parse { .. } => true,
            Kind::Status { status, .. } => {
                *status >= 500 || *status == 429 || self.is_captcha_rejected() || *status == 408
            }
        }
    }

    /// Whose fault the failure is.
    pub fn blame(&self) -> Blame {
        if self.is_content_policy() {
            Blame::Client
        } else if self.is_captcha_rejected() {
            Blame::Captcha
        } else if self.is_quota_exhausted() {
            Blame::Quota
        } else if self.is_auth() {
            Blame::Auth
        } else if self.is_rate_limited() {
            Blame::RateLimited
        } else {
            match &self.kind {
                Kind::Transport(_) | Kind::Parse { .. } => Blame::Upstream,
                Kind::Status { status, .. } if *status >= 500 || *status == 408 => Blame::Upstream,
                Kind::Status {
                    status: 400 | 413 | 422,
                    ..
                } => Blame::Client,
                Kind::Status { .. } => Blame::Account,
            }
        }
    }

    /// A short text for clients and logs: `HTTP 403 PUBLIC_ERROR_UNUSUAL_ACTIVITY: message`.
    pub fn summary(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            Kind::Status {
                status,
                reason,
                message,
                ..
            } => {
                write!(f, "{}: HTTP {status}", self.endpoint)?;
                if let Some(r) = reason {
                    write!(f, " {r}")?;
                }
                if !message.is_empty() {
                    write!(f, ": {message}")?;
                }
                Ok(())
            }
            Kind::Transport(e) => write!(f, "{}: {e}", self.endpoint),
            Kind::Parse { message, .. } => {
                write!(f, "{}: unexpected response: {message}", self.endpoint)
            }
        }
    }
}

/// Endpoint, status, reason and message, never the response body: a body can hold signed
/// media URLs or megabytes of base64, and `{:?}` of an error ends up in logs. [`FlowError::body`]
/// gives it to code that means to look.
impl fmt::Debug for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("FlowError");
        d.field("endpoint", &self.endpoint);
        match &self.kind {
            Kind::Status {
                status,
                reason,
                google_status,
                message,
                body: _,
            } => d
                .field("status", status)
                .field("reason", reason)
                .field("google_status", google_status)
                .field("message", message),
            Kind::Transport(e) => d.field("transport", e),
            Kind::Parse { message, body: _ } => d.field("parse", message),
        };
        d.finish_non_exhaustive()
    }
}

impl std::error::Error for FlowError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blames_the_right_party() {
        let e = |status, body: &[u8]| FlowError::from_status("generate_image", status, body);
        let invalid = br#"{"error":{"code":400,"status":"INVALID_ARGUMENT","message":"bad"}}"#;
        assert_eq!(e(400, invalid).blame(), Blame::Client);
        let perm = br#"{"error":{"code":403,"status":"PERMISSION_DENIED","message":"no"}}"#;
        assert_eq!(e(403, perm).blame(), Blame::Account);
        assert_eq!(e(429, b"{}").blame(), Blame::RateLimited);
        assert_eq!(e(503, b"x").blame(), Blame::Upstream);
        assert_eq!(e(401, b"{}").blame(), Blame::Auth);
        let t = FlowError::transport("g", TransportError::new(TransportErrorKind::Timeout, "t"));
        assert_eq!(t.blame(), Blame::Upstream);
        assert!(!Blame::Captcha.try_another_account() && Blame::Quota.try_another_account());
    }

    #[test]
    fn debug_leaves_the_body_out() {
        let body = br#"{"error":{"code":403,"message":"denied","status":"PERMISSION_DENIED","details":[{"reason":"PUBLIC_ERROR_X"}]},"fifeUrl":"https://signed.example/SECRET-SIGNATURE"}"#;
        let e = FlowError::from_status("generate_image", 403, body);
        assert!(
            e.body().unwrap().contains("SECRET-SIGNATURE"),
            "kept for diagnosis"
        );
        let debug = format!("{e:?}");
        for shown in [
            "generate_image",
            "403",
            "PUBLIC_ERROR_X",
            "PERMISSION_DENIED",
            "denied",
        ] {
            assert!(debug.contains(shown), "{shown} missing from {debug}");
        }
        assert!(!debug.contains("SECRET-SIGNATURE"), "{debug}");
        assert!(!debug.contains("body"), "{debug}");

        let parse = FlowError::parse(
            "generate_image",
            "missing fifeUrl",
            br#"{"media":[{"encodedImage":"SECRET-BASE64"}]}"#,
        );
        let debug = format!("{parse:?}");
        assert!(debug.contains("missing fifeUrl") && debug.contains("generate_image"));
        assert!(!debug.contains("SECRET-BASE64"), "{debug}");

        let t = FlowError::transport(
            "credits",
            TransportError::new(TransportErrorKind::Timeout, "t"),
        );
        assert!(format!("{t:?}").contains("Timeout"), "{t:?}");
    }

    #[test]
    fn classifies_google_errors() {
        let body = br#"{"error":{"code":403,"message":"reCAPTCHA evaluation failed","status":"PERMISSION_DENIED","details":[{"@type":"x","reason":"PUBLIC_ERROR_UNUSUAL_ACTIVITY"}]}}"#;
        let e = FlowError::from_status("generate_image", 403, body);
        assert!(e.is_captcha_rejected() && e.is_retryable() && !e.is_rate_limited());
        assert_eq!(e.reason(), Some(REASON_UNUSUAL_ACTIVITY));
        assert_eq!(
            e.to_string(),
            "generate_image: HTTP 403 PUBLIC_ERROR_UNUSUAL_ACTIVITY: reCAPTCHA evaluation failed"
        );

        let quota = br#"{"error":{"code":429,"message":"Resource has been exhausted (e.g. check quota).","status":"RESOURCE_EXHAUSTED","details":[{"reason":"PUBLIC_ERROR_USER_QUOTA_REACHED"}]}}"#;
        let e = FlowError::from_status("generate_image", 429, quota);
        assert!(e.is_quota_exhausted() && e.is_rate_limited() && e.is_retryable());
        assert_eq!(e.blame(), Blame::Quota);

        let unsafe_ = br#"{"error":{"code":400,"message":"unsafe","status":"INVALID_ARGUMENT","details":[{"reason":"PUBLIC_ERROR_UNSAFE_GENERATION"}]}}"#;
        let e = FlowError::from_status("generate_image", 400, unsafe_);
        assert!(e.is_content_policy() && !e.is_retryable());

        let e = FlowError::from_status(
            "credits",
            401,
            br#"{"error":{"code":401,"status":"UNAUTHENTICATED"}}"#,
        );
        assert!(e.is_auth());

        let e = FlowError::from_status("generate_image", 502, b"<html>bad gateway</html>");
        assert!(e.is_retryable());
        assert_eq!(e.message(), "<html>bad gateway</html>");

        let e = FlowError::from_status(
            "generate_image",
            400,
            br#"{"error":{"code":400,"status":"INVALID_ARGUMENT","message":"bad"}}"#,
        );
        assert!(!e.is_retryable());
    }
}
