//! The `remote_browser` method (`docs/upstream.md#remote-browser`, dossier §10.4): a browser
//! service the operator runs elsewhere solves in a real browser and reports that browser's
//! fingerprint, which the submit then presents. Besides `solve`, the service hears how each
//! submit ended (`finish`, `error`), is warned of coming solves (`prefill`, at most once per
//! project, action and account every [`PREFILL_EVERY`]) and answers a `health` probe.

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::seams::{
    boxed, BoxFuture, Bytes, CaptchaAction, CaptchaError, CaptchaErrorKind, CaptchaRequest,
    CaptchaSolution, CaptchaSolver, Clock, HttpClient,
};
use crate::secret::Secret;
use crate::transport::{send_with_timeout, FALLBACK_USER_AGENT};

use wire::{ErrorBody, Health, SessionError, SessionFinish, SolveRequest, Solved};

/// The `CAPTCHA_METHOD` word.
pub const METHOD: &str = "remote_browser";
/// Prefills for one (project, action, account) are sent at most this often.
pub const PREFILL_EVERY: Duration = Duration::from_secs(8);
/// Deadline of `finish`, `error` and `prefill`, whose answers are ignored.
const FEEDBACK_TIMEOUT: Duration = Duration::from_secs(5);
/// Deadline of the `health` probe.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);
/// The shortest solve deadline, whatever `REMOTE_BROWSER_TIMEOUT` says.
const MIN_SOLVE_TIMEOUT: Duration = Duration::from_secs(12);

/// The remote browser service's settings (`REMOTE_BROWSER_*`).
#[derive(Debug, Clone)]
pub struct RemoteBrowserConfig {
    /// Base URL (`http(s)://host[:port]`, optionally with a path); unset, every solve fails
    /// at once as not configured.
    pub base_url: Option<String>,
    /// The service's Bearer key; unset, likewise.
    pub api_key: Option<Secret>,
    /// `REMOTE_BROWSER_TIMEOUT`: the solve deadline before the per-action caps.
    pub timeout: Duration,
}

impl From<&crate::config::Config> for RemoteBrowserConfig {
    fn from(config: &crate::config::Config) -> Self {
        Self {
            base_url: config.remote_browser_base_url.clone(),
            api_key: config.remote_browser_api_key.clone(),
            timeout: config.remote_browser_timeout,
        }
    }
}

/// A reachable service's answer to the health probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteBrowserHealth {
    /// 2xx and not `{"ok": false}`.
    pub up: bool,
    /// How long the probe took.
    pub latency_ms: u64,
}

/// The `remote_browser` solver.
pub struct RemoteBrowser {
    http: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
    base_url: String,
    api_key: Option<Secret>,
    timeout: Duration,
    /// Holds when each (project, action, account) was last prefilled: it outlives this
    /// solver, which is rebuilt with every configuration (at the edge, every request).
    stamps: Arc<super::CaptchaStats>,
}

impl std::fmt::Debug for RemoteBrowser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteBrowser")
            .field("base_url", &self.base_url)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl RemoteBrowser {
    /// A solver over `http`.
    pub fn new(
        http: Arc<dyn HttpClient>,
        clock: Arc<dyn Clock>,
        config: RemoteBrowserConfig,
    ) -> Self {
        Self {
            http,
            clock,
            base_url: config
                .base_url
                .unwrap_or_default()
                .trim_end_matches('/')
                .to_owned(),
            api_key: config.api_key.filter(|k| !k.is_empty()),
            timeout: config.timeout,
            stamps: Arc::default(),
        }
    }

    /// The same solver keeping its prefill stamps in `stats` (which outlive it).
    #[must_use]
    pub fn with_stats(mut self, stats: Arc<super::CaptchaStats>) -> Self {
        self.stamps = stats;
        self
    }

    /// Whether both the base URL and the key are set.
    pub fn is_configured(&self) -> bool {
        !self.base_url.is_empty() && self.api_key.is_some()
    }

    /// The solve deadline for `action`: `REMOTE_BROWSER_TIMEOUT` capped at 35 s (image) or
    /// 45 s (video), never under 12 s.
    pub fn solve_timeout(&self, action: CaptchaAction) -> Duration {
        let cap = match action {
            CaptchaAction::ImageGeneration => Duration::from_secs(35),
            CaptchaAction::VideoGeneration => Duration::from_secs(45),
        };
        self.timeout.min(cap).max(MIN_SOLVE_TIMEOUT)
    }

    fn fail(kind: CaptchaErrorKind, message: impl std::fmt::Display) -> CaptchaError {
        CaptchaError::new(kind, format!("{METHOD}: {message}"))
    }

    /// Sends one call and returns the status and body; a 4xx/5xx becomes the service's own
    /// `detail`/`message` (or body) as a [`CaptchaErrorKind::Provider`] error, 429 and 503 as
    /// [`CaptchaErrorKind::NoCapacity`].
    async fn call<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        timeout: Duration,
    ) -> Result<Bytes, CaptchaError> {
        let Some(key) = self.api_key.as_ref().filter(|_| !self.base_url.is_empty()) else {
            return Err(Self::fail(
                CaptchaErrorKind::NotConfigured,
                "REMOTE_BROWSER_BASE_URL and REMOTE_BROWSER_API_KEY must both be set",
            ));
        };
        let url = format!("{}{path}", self.base_url);
        let mut req = http::Request::builder()
            .method(method)
            .uri(&url)
            .header("accept", "application/json")
            .header("authorization", format!("Bearer {}", key.expose()));
        if body.is_some() {
            req = req.header("content-type", "application/json; charset=utf-8");
        }
        let body = body.map_or_else(Bytes::new, crate::transport::json_body);
        let mut req = req
            .body(body)
            .map_err(|_| Self::fail(CaptchaErrorKind::NotConfigured, "invalid base URL"))?;
        if let Some(v) = req.headers_mut().get_mut("authorization") {
            v.set_sensitive(true);
        }
        // The service is the operator's own: reached directly, never through the Flow calls'
        // proxy or relay (§10.4). The proxy its fingerprint names is for the submit.
        req.extensions_mut().insert(crate::seams::Egress::Direct);
        let resp = send_with_timeout(&*self.http, &*self.clock, req, timeout)
            .await
            .map_err(|e| Self::fail(CaptchaErrorKind::Provider, format!("{path}: {e}")))?;
        let status = resp.status().as_u16();
        if status >= 400 {
            let kind = match status {
                429 | 503 => CaptchaErrorKind::NoCapacity,
                _ => CaptchaErrorKind::Provider,
            };
            return Err(Self::fail(
                kind,
                format!(
                    "request failed: HTTP {status}: {}",
                    ErrorBody::detail(resp.body())
                ),
            ));
        }
        Ok(resp.into_body())
    }

    /// [`call`](Self::call), its body read as a JSON object of type `T`.
    async fn call_json<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        timeout: Duration,
    ) -> Result<T, CaptchaError> {
        let bytes = self.call(method, path, body, timeout).await?;
        serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes)
            .ok()
            .and_then(|object| serde_json::from_value(object.into()).ok())
            .ok_or_else(|| Self::fail(CaptchaErrorKind::Provider, "malformed response"))
    }

    async fn solve_inner(&self, request: &CaptchaRequest) -> Result<CaptchaSolution, CaptchaError> {
        let body = SolveRequest {
            project_id: &request.project_id,
            action: request.action_name(),
            token_id: request.account_id.as_deref(),
        };
        let timeout = self.solve_timeout(request.action);
        let solved: Solved = self
            .call_json(Method::POST, "/api/v1/solve", Some(&body), timeout)
            .await?;
        let (Some(token), Some(session_id)) = (
            solved.token.filter(|t| !t.is_empty()),
            solved.session_id.filter(|s| !s.is_empty()),
        ) else {
            return Err(Self::fail(
                CaptchaErrorKind::NoToken,
                "the service answered without a token or session_id",
            ));
        };
        let fingerprint = solved.fingerprint.unwrap_or_default();
        Ok(CaptchaSolution {
            token: Secret::new(token),
            user_agent: fingerprint
                .user_agent
                .clone()
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| FALLBACK_USER_AGENT.to_owned()),
            method: METHOD.to_owned(),
            proxy_url: fingerprint.proxy_url.clone(),
            identity: fingerprint.into_identity(),
            session_id: Some(session_id),
        })
    }

    /// `finish` after every submit, then `error` when it failed; answers are ignored.
    async fn finish_inner(&self, solution: &CaptchaSolution, failure: Option<&str>) {
        let Some(session) = solution.session_id.as_deref() else {
            return;
        };
        let session = url::form_urlencoded::byte_serialize(session.as_bytes()).collect::<String>();
        let finish = SessionFinish {
            status: if failure.is_some() {
                "error"
            } else {
                "success"
            },
        };
        let path = format!("/api/v1/sessions/{session}/finish");
        let _ = self
            .call(Method::POST, &path, Some(&finish), FEEDBACK_TIMEOUT)
            .await;
        if let Some(reason) = failure {
            let path = format!("/api/v1/sessions/{session}/error");
            let body = SessionError {
                error_reason: reason,
            };
            let _ = self
                .call(Method::POST, &path, Some(&body), FEEDBACK_TIMEOUT)
                .await;
        }
    }

    async fn prefill_inner(&self, request: &CaptchaRequest) {
        if !self.is_configured() || request.project_id.is_empty() {
            return;
        }
        let account = request.account_id.as_deref().unwrap_or_default();
        let key = format!(
            "{}\u{0}{}\u{0}{account}",
            request.project_id,
            request.action_name()
        );
        if !self
            .stamps
            .prefill_due(&key, self.clock.now_ms(), PREFILL_EVERY)
        {
            return;
        }
        let body = SolveRequest {
            project_id: &request.project_id,
            action: request.action_name(),
            token_id: request.account_id.as_deref(),
        };
        let _ = self
            .call(
                Method::POST,
                "/api/v1/prefill",
                Some(&body),
                FEEDBACK_TIMEOUT,
            )
            .await;
    }

    /// Probes `GET /api/v1/health` (3 s).
    ///
    /// # Errors
    /// Not configured, or the service is unreachable.
    pub async fn health(&self) -> Result<RemoteBrowserHealth, CaptchaError> {
        let started = self.clock.now_ms();
        let out = self
            .call::<()>(Method::GET, "/api/v1/health", None, HEALTH_TIMEOUT)
            .await;
        let latency_ms = self.clock.now_ms().saturating_sub(started);
        match out {
            Ok(body) => Ok(RemoteBrowserHealth {
                up: serde_json::from_slice::<Health>(&body).map_or(true, |h| h.ok != Some(false)),
                latency_ms,
            }),
            Err(e) if e.kind == CaptchaErrorKind::NotConfigured => Err(e),
            Err(_) => Ok(RemoteBrowserHealth {
                up: false,
                latency_ms,
            }),
        }
    }

    /// Asks the service to solve for another site and verify the token there itself
    /// (`POST /api/v1/custom-score`, the admin score test); its answer as it gave it.
    ///
    /// # Errors
    /// Not configured, unreachable, an HTTP error or a body that is not a JSON object.
    pub async fn custom_score(
        &self,
        body: &serde_json::Value,
    ) -> Result<serde_json::Map<String, serde_json::Value>, CaptchaError> {
        self.call_json(
            Method::POST,
            "/api/v1/custom-score",
            Some(body),
            self.timeout.max(MIN_SOLVE_TIMEOUT),
        )
        .await
    }
}

impl CaptchaSolver for RemoteBrowser {
    fn solve<'a>(
        &'a self,
        request: &'a CaptchaRequest,
    ) -> BoxFuture<'a, Result<CaptchaSolution, CaptchaError>> {
        boxed(self.solve_inner(request))
    }

    fn finish<'a>(
        &'a self,
        solution: &'a CaptchaSolution,
        failure: Option<&'a str>,
    ) -> BoxFuture<'a, ()> {
        boxed(self.finish_inner(solution, failure))
    }

    fn prefill<'a>(&'a self, request: &'a CaptchaRequest) -> BoxFuture<'a, ()> {
        boxed(self.prefill_inner(request))
    }
}

/// The service's JSON, parsed tolerantly (every field optional, unknown ones ignored).
mod wire {
    use serde::{Deserialize, Serialize};

    use crate::seams::BrowserIdentity;
    use crate::secret::Secret;

    /// `solve` and `prefill` bodies.
    #[derive(Serialize)]
    pub(super) struct SolveRequest<'a> {
        pub(super) project_id: &'a str,
        pub(super) action: &'a str,
        /// The account's id (the original sends its integer row id; ours are strings).
        pub(super) token_id: Option<&'a str>,
    }

    #[derive(Serialize)]
    pub(super) struct SessionFinish {
        pub(super) status: &'static str,
    }

    #[derive(Serialize)]
    pub(super) struct SessionError<'a> {
        pub(super) error_reason: &'a str,
    }

    #[derive(Deserialize)]
    pub(super) struct Solved {
        #[serde(default)]
        pub(super) token: Option<String>,
        #[serde(default, deserialize_with = "lenient_string")]
        pub(super) session_id: Option<String>,
        #[serde(default, deserialize_with = "lenient")]
        pub(super) fingerprint: Option<Fingerprint>,
    }

    /// The keys of `fingerprint` the submit honours.
    #[derive(Deserialize, Default)]
    #[serde(default)]
    pub(super) struct Fingerprint {
        #[serde(deserialize_with = "lenient_string")]
        pub(super) user_agent: Option<String>,
        #[serde(deserialize_with = "lenient_string")]
        pub(super) accept_language: Option<String>,
        #[serde(deserialize_with = "lenient_string")]
        pub(super) language: Option<String>,
        #[serde(deserialize_with = "lenient_string")]
        pub(super) sec_ch_ua: Option<String>,
        #[serde(deserialize_with = "lenient_string")]
        pub(super) sec_ch_ua_mobile: Option<String>,
        #[serde(deserialize_with = "lenient_string")]
        pub(super) sec_ch_ua_platform: Option<String>,
        /// Present (even `""`, meaning direct) forces the submit's egress.
        #[serde(deserialize_with = "lenient_string")]
        pub(super) proxy_url: Option<String>,
        #[serde(deserialize_with = "lenient")]
        pub(super) session_cookies: Option<serde_json::Map<String, serde_json::Value>>,
    }

    impl Fingerprint {
        /// The headers part; the cookies as one `Cookie` value, names and values that could
        /// not be a cookie dropped.
        pub(super) fn into_identity(self) -> BrowserIdentity {
            let cookies = self
                .session_cookies
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(name, value)| {
                    let value = match value {
                        serde_json::Value::String(s) => s,
                        serde_json::Value::Number(n) => n.to_string(),
                        _ => return None,
                    };
                    let fits = |s: &str| {
                        !s.is_empty()
                            && s.bytes()
                                .all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b','))
                    };
                    (fits(&name) && !name.contains('=') && (value.is_empty() || fits(&value)))
                        .then(|| format!("{name}={value}"))
                })
                .collect::<Vec<_>>()
                .join("; ");
            BrowserIdentity {
                accept_language: self.accept_language.or(self.language),
                sec_ch_ua: self.sec_ch_ua,
                sec_ch_ua_mobile: self.sec_ch_ua_mobile,
                sec_ch_ua_platform: self.sec_ch_ua_platform,
                cookies: (!cookies.is_empty()).then(|| Secret::new(cookies)),
            }
        }
    }

    #[derive(Deserialize)]
    pub(super) struct Health {
        #[serde(default, deserialize_with = "lenient")]
        pub(super) ok: Option<bool>,
    }

    /// An error body's `detail` or `message`, else the body itself (shortened).
    #[derive(Deserialize, Default)]
    #[serde(default)]
    pub(super) struct ErrorBody {
        #[serde(deserialize_with = "lenient")]
        detail: Option<serde_json::Value>,
        #[serde(deserialize_with = "lenient_string")]
        message: Option<String>,
    }

    impl ErrorBody {
        pub(super) fn detail(body: &[u8]) -> String {
            let parsed = serde_json::from_slice::<ErrorBody>(body).unwrap_or_default();
            let text = match (parsed.detail, parsed.message) {
                (Some(serde_json::Value::String(s)), _) => s,
                (Some(v), _) if !v.is_null() => v.to_string(),
                (_, Some(m)) => m,
                _ => String::from_utf8_lossy(body).into_owned(),
            };
            crate::util::truncate(text.trim(), 300)
        }
    }

    /// `T`, or `None` when the value has another shape.
    fn lenient<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
    where
        D: serde::Deserializer<'de>,
        T: serde::de::DeserializeOwned,
    {
        let v = serde_json::Value::deserialize(d)?;
        Ok(serde_json::from_value(v).ok())
    }

    /// A string, a number as its text, or `None`.
    fn lenient_string<'de, D>(d: D) -> Result<Option<String>, D::Error>
    where
        D: serde::Deserializer<'de>,
    {
        Ok(match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Some(s),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_are_read_tolerantly() {
        let s: Solved = serde_json::from_str(
            r#"{"token":"t","session_id":7,"fingerprint":{"user_agent":"UA","language":"de-DE",
            "sec_ch_ua_mobile":"?0","proxy_url":"","session_cookies":{"NID":"1","SID":"a b","x":null},
            "unknown":[1]}}"#,
        )
        .unwrap();
        assert_eq!(s.session_id.as_deref(), Some("7"));
        let f = s.fingerprint.unwrap();
        assert_eq!(f.proxy_url.as_deref(), Some(""));
        let id = f.into_identity();
        assert_eq!(id.accept_language.as_deref(), Some("de-DE"));
        // `a b` cannot be a cookie value, null is no value: only NID is kept.
        assert_eq!(id.cookies.unwrap().expose(), "NID=1");
        let s: Solved = serde_json::from_str(r#"{"token":"t","fingerprint":"nonsense"}"#).unwrap();
        assert!(s.fingerprint.is_none() && s.session_id.is_none());
    }

    #[test]
    fn error_details_come_from_detail_or_message() {
        assert_eq!(
            ErrorBody::detail(br#"{"detail":"no browser"}"#),
            "no browser"
        );
        assert_eq!(ErrorBody::detail(br#"{"message":"busy"}"#), "busy");
        assert_eq!(ErrorBody::detail(b"plain text"), "plain text");
    }
}
