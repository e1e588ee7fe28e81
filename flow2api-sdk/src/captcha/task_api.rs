//! The task-API solvers (`docs/upstream.md#recaptcha`, dossier §10.2): YesCaptcha, CapMonster,
//! EzCaptcha and CapSolver speak the same anti-captcha style JSON API — `createTask`, then
//! `getTaskResult` polling — and differ only in base URL, key, task type and `minScore`, which
//! [`Provider`] holds. The solver's User-Agent is returned so the submit can reuse it.

use std::sync::Arc;
use std::time::Duration;

use http::Method;

use crate::seams::{
    boxed, BoxFuture, Bytes, CaptchaError, CaptchaErrorKind, CaptchaRequest, CaptchaSolution,
    CaptchaSolver, Clock, HttpClient,
};
use crate::secret::Secret;
use crate::transport::{send_with_timeout, timeouts, FALLBACK_USER_AGENT};

use wire::{CaptchaTask, CreateTaskRequest, TaskResponse, TaskResultRequest};

/// The YesCaptcha task types the original accepts; anything else falls back to the default.
pub const YESCAPTCHA_TASK_TYPES: &[&str] = &[
    "RecaptchaV3TaskProxyless",
    "RecaptchaV3TaskProxylessM1",
    "RecaptchaV3TaskProxylessM1S7",
    "RecaptchaV3TaskProxylessM1S9",
];

/// Delays before retrying `createTask` when YesCaptcha has no free slot.
const NO_SLOT_DELAYS: [u64; 4] = [3, 5, 8, 13];

/// Provider error codes that mean "no capacity now" rather than "this task failed".
const NO_CAPACITY_CODES: &[&str] = &[
    "ERROR_NO_SLOT_AVAILABLE",
    "ERROR_NO_SLOT_AVAILABLE_BLOCK",
    "ERROR_ZERO_BALANCE",
    "ERROR_INSUFFICIENT_BALANCE",
];

/// A task-API captcha provider (dossier §10.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Provider {
    /// YesCaptcha: configurable task type, `minScore` for M1S7/M1S9, retries when no slot is free.
    YesCaptcha,
    /// CapMonster Cloud: `RecaptchaV3TaskProxyless`.
    CapMonster,
    /// EzCaptcha: `ReCaptchaV3TaskProxylessS9`.
    EzCaptcha,
    /// CapSolver: `ReCaptchaV3EnterpriseTaskProxyLess`.
    CapSolver,
}

impl Provider {
    /// Every task-API provider.
    pub const ALL: [Provider; 4] = [
        Self::YesCaptcha,
        Self::CapMonster,
        Self::EzCaptcha,
        Self::CapSolver,
    ];

    /// The `CAPTCHA_METHOD` word (`yescaptcha`…).
    pub fn method(self) -> &'static str {
        match self {
            Self::YesCaptcha => "yescaptcha",
            Self::CapMonster => "capmonster",
            Self::EzCaptcha => "ezcaptcha",
            Self::CapSolver => "capsolver",
        }
    }

    /// The provider a `CAPTCHA_METHOD` word names, if it is a task API.
    pub fn from_method(method: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.method() == method)
    }

    /// The setting that holds its key (named in "not configured" errors, never the key).
    pub fn key_setting(self) -> &'static str {
        match self {
            Self::YesCaptcha => "YESCAPTCHA_API_KEY",
            Self::CapMonster => "CAPMONSTER_API_KEY",
            Self::EzCaptcha => "EZCAPTCHA_API_KEY",
            Self::CapSolver => "CAPSOLVER_API_KEY",
        }
    }

    /// The generation task type; YesCaptcha's is configurable, the others' fixed.
    pub fn default_task_type(self) -> &'static str {
        match self {
            Self::YesCaptcha => crate::config::DEFAULT_YESCAPTCHA_TASK_TYPE,
            Self::CapMonster => "RecaptchaV3TaskProxyless",
            Self::EzCaptcha => "ReCaptchaV3TaskProxylessS9",
            Self::CapSolver => "ReCaptchaV3EnterpriseTaskProxyLess",
        }
    }

    /// `minScore` sent with `task_type`: only YesCaptcha's M1S7 (0.7) and M1S9 (0.9) ask for one.
    pub fn min_score(self, task_type: &str) -> Option<f64> {
        match (self, task_type) {
            (Self::YesCaptcha, "RecaptchaV3TaskProxylessM1S7") => Some(0.7),
            (Self::YesCaptcha, "RecaptchaV3TaskProxylessM1S9") => Some(0.9),
            _ => None,
        }
    }

    /// Whether `ERROR_NO_SLOT_AVAILABLE` on `createTask` is waited out (YesCaptcha only, as
    /// the original does); elsewhere it ends the solve so a chain can move on.
    fn waits_for_a_slot(self) -> bool {
        self == Self::YesCaptcha
    }
}

/// A task-API solver for one [`Provider`].
pub struct TaskApiSolver {
    http: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
    provider: Provider,
    base_url: String,
    api_key: Option<Secret>,
    task_type: String,
    poll_interval: Duration,
    max_polls: u32,
}

/// The YesCaptcha solver: a [`TaskApiSolver`] for [`Provider::YesCaptcha`].
pub type YesCaptcha = TaskApiSolver;
/// The YesCaptcha settings: a [`TaskApiConfig`].
pub type YesCaptchaConfig = TaskApiConfig;

impl std::fmt::Debug for TaskApiSolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskApiSolver")
            .field("provider", &self.provider)
            .field("base_url", &self.base_url)
            .field("task_type", &self.task_type)
            .finish_non_exhaustive()
    }
}

/// One provider's settings.
#[derive(Debug, Clone)]
pub struct TaskApiConfig {
    /// Which provider.
    pub provider: Provider,
    /// API base URL.
    pub base_url: String,
    /// `clientKey`; without it every solve fails at once, without a call.
    pub api_key: Option<Secret>,
    /// Task type: YesCaptcha's is normalised to a known one, the others always use their own.
    pub task_type: String,
    /// Sleep between `getTaskResult` polls.
    pub poll_interval: Duration,
    /// Polls before giving up.
    pub max_polls: u32,
}

impl TaskApiConfig {
    /// `provider`'s `*_API_KEY` / `*_BASE_URL` settings and the shared `CAPTCHA_*` ones.
    pub fn for_provider(provider: Provider, config: &crate::config::Config) -> Self {
        let (base_url, api_key) = match provider {
            Provider::YesCaptcha => (&config.yescaptcha_base_url, &config.yescaptcha_api_key),
            Provider::CapMonster => (&config.capmonster_base_url, &config.capmonster_api_key),
            Provider::EzCaptcha => (&config.ezcaptcha_base_url, &config.ezcaptcha_api_key),
            Provider::CapSolver => (&config.capsolver_base_url, &config.capsolver_api_key),
        };
        let task_type = match provider {
            Provider::YesCaptcha => config.yescaptcha_task_type.clone(),
            other => other.default_task_type().to_owned(),
        };
        Self {
            provider,
            base_url: base_url.clone(),
            api_key: api_key.clone(),
            task_type,
            poll_interval: config.captcha_poll_interval,
            max_polls: config.captcha_max_polls,
        }
    }
}

impl From<&crate::config::Config> for TaskApiConfig {
    /// The YesCaptcha settings (`YESCAPTCHA_*`, `CAPTCHA_*`).
    fn from(config: &crate::config::Config) -> Self {
        Self::for_provider(Provider::YesCaptcha, config)
    }
}

impl TaskApiSolver {
    /// A solver over `http`.
    pub fn new(http: Arc<dyn HttpClient>, clock: Arc<dyn Clock>, config: TaskApiConfig) -> Self {
        let provider = config.provider;
        let task_type = match provider {
            Provider::YesCaptcha if YESCAPTCHA_TASK_TYPES.contains(&config.task_type.as_str()) => {
                config.task_type
            }
            Provider::YesCaptcha => crate::config::DEFAULT_YESCAPTCHA_TASK_TYPE.to_owned(),
            _ if config.task_type.is_empty() => provider.default_task_type().to_owned(),
            _ => config.task_type,
        };
        Self {
            http,
            clock,
            provider,
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            api_key: config.api_key,
            task_type,
            poll_interval: config.poll_interval,
            max_polls: config.max_polls.max(1),
        }
    }

    /// The provider.
    pub fn provider(&self) -> Provider {
        self.provider
    }

    /// Whether a key is set (without one every solve fails at once).
    pub fn is_configured(&self) -> bool {
        self.api_key.as_ref().is_some_and(|k| !k.is_empty())
    }

    /// `minScore` for a YesCaptcha task type: 0.7 for M1S7, 0.9 for M1S9, none otherwise.
    pub fn min_score(task_type: &str) -> Option<f64> {
        Provider::YesCaptcha.min_score(task_type)
    }

    fn fail(&self, kind: CaptchaErrorKind, message: impl std::fmt::Display) -> CaptchaError {
        CaptchaError::new(kind, format!("{}: {message}", self.provider.method()))
    }

    /// POSTs `body` to `path`, leaving through `egress` (the attempt's, which its submit
    /// uses too) when given.
    async fn post<T: serde::Serialize>(
        &self,
        path: &str,
        body: &T,
        egress: Option<&crate::seams::Egress>,
    ) -> Result<TaskResponse, CaptchaError> {
        let provider_error = |m: String| self.fail(CaptchaErrorKind::Provider, m);
        let mut req = http::Request::builder()
            .method(Method::POST)
            .uri(format!("{}/{path}", self.base_url))
            .header("content-type", "application/json")
            .body(Bytes::from(serde_json::to_vec(body).unwrap_or_default()))
            .map_err(|e| provider_error(format!("invalid captcha URL: {e}")))?;
        if let Some(egress) = egress {
            req.extensions_mut().insert(egress.clone());
        }
        let resp = send_with_timeout(&*self.http, &*self.clock, req, timeouts::CAPTCHA)
            .await
            .map_err(|e| {
                let kind = match e.kind {
                    crate::seams::TransportErrorKind::Egress => CaptchaErrorKind::Egress,
                    _ => CaptchaErrorKind::Provider,
                };
                self.fail(kind, format!("{path}: {e}"))
            })?;
        if !resp.status().is_success() {
            return Err(provider_error(format!(
                "{path}: HTTP {}",
                resp.status().as_u16()
            )));
        }
        serde_json::from_slice(resp.body())
            .map_err(|e| provider_error(format!("{path}: invalid JSON: {e}")))
    }

    /// The error for a refusal carrying `errorCode`/`errorDescription`.
    fn refused(&self, step: &str, r: TaskResponse) -> CaptchaError {
        let code = r.error_code.unwrap_or_default();
        let kind = if NO_CAPACITY_CODES.contains(&code.as_str()) {
            CaptchaErrorKind::NoCapacity
        } else {
            CaptchaErrorKind::Provider
        };
        let desc = r.error_description.unwrap_or_default();
        let code = if code.is_empty() {
            format!("errorId {}", r.error_id.unwrap_or_default())
        } else {
            code
        };
        self.fail(kind, format!("{step} refused: {code} {desc}").trim())
    }

    async fn create_task(
        &self,
        key: &Secret,
        request: &CaptchaRequest,
    ) -> Result<String, CaptchaError> {
        let body = CreateTaskRequest {
            client_key: key.expose(),
            task: CaptchaTask {
                website_url: &request.page_url,
                website_key: &request.site_key,
                kind: &self.task_type,
                page_action: request.action_name(),
                user_agent: FALLBACK_USER_AGENT,
                min_score: self.provider.min_score(&self.task_type),
            },
        };
        let mut attempt = 0;
        loop {
            let r = self
                .post("createTask", &body, request.egress.as_ref())
                .await?;
            if let Some(id) = r.task_id.as_ref().and_then(task_id_string) {
                return Ok(id);
            }
            let delay = match r.error_code.as_deref() {
                _ if !self.provider.waits_for_a_slot() => None,
                Some("ERROR_NO_SLOT_AVAILABLE_BLOCK") => Some(20),
                Some("ERROR_NO_SLOT_AVAILABLE") => NO_SLOT_DELAYS.get(attempt).copied(),
                _ => None,
            };
            match delay {
                Some(secs) if attempt < NO_SLOT_DELAYS.len() => {
                    attempt += 1;
                    self.clock.sleep(Duration::from_secs(secs)).await;
                }
                _ => return Err(self.refused("createTask", r)),
            }
        }
    }

    async fn solve_inner(&self, request: &CaptchaRequest) -> Result<CaptchaSolution, CaptchaError> {
        let Some(key) = self.api_key.as_ref().filter(|k| !k.is_empty()) else {
            return Err(self.fail(
                CaptchaErrorKind::NotConfigured,
                format!("{} is not set", self.provider.key_setting()),
            ));
        };
        let task_id = self.create_task(key, request).await?;
        let body = TaskResultRequest {
            client_key: key.expose(),
            task_id: &task_id,
        };
        for _ in 0..self.max_polls {
            match self
                .post("getTaskResult", &body, request.egress.as_ref())
                .await
            {
                // The provider gave up on the task (or refused the key): it will not become
                // ready, so the solve ends with its code instead of polling for two minutes.
                Ok(r) if r.error_id.is_some_and(|id| id != 0) => {
                    return Err(self.refused("getTaskResult", r));
                }
                Ok(r) if r.status.as_deref() == Some("ready") => {
                    let solution = r.solution.unwrap_or_default();
                    // CapSolver's score API names it `token`; accept either.
                    let token = solution
                        .g_recaptcha_response
                        .filter(|t| !t.is_empty())
                        .or(solution.token.filter(|t| !t.is_empty()));
                    if let Some(token) = token {
                        return Ok(CaptchaSolution {
                            token: Secret::new(token),
                            user_agent: solution
                                .user_agent
                                .filter(|u| !u.is_empty())
                                .unwrap_or_else(|| FALLBACK_USER_AGENT.to_owned()),
                            method: self.provider.method().to_owned(),
                            identity: Default::default(),
                            proxy_url: None,
                            session_id: None,
                        });
                    }
                }
                // Not ready yet, or a transport hiccup: poll again until the budget runs out.
                _ => {}
            }
            self.clock.sleep(self.poll_interval).await;
        }
        Err(self.fail(
            CaptchaErrorKind::NoToken,
            format!("no token after {} polls", self.max_polls),
        ))
    }
}

fn task_id_string(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl CaptchaSolver for TaskApiSolver {
    fn solve<'a>(
        &'a self,
        request: &'a CaptchaRequest,
    ) -> BoxFuture<'a, Result<CaptchaSolution, CaptchaError>> {
        boxed(self.solve_inner(request))
    }
}

/// The task API's JSON (YesCaptcha and compatible providers), as they send and expect it.
mod wire {
    use serde::{Deserialize, Serialize};
    use serde_json::Value;

    /// YesCaptcha `createTask` body.
    #[derive(Debug, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct CreateTaskRequest<'a> {
        /// The solver API key.
        pub client_key: &'a str,
        /// The task.
        pub task: CaptchaTask<'a>,
    }

    /// The task of `createTask`.
    #[derive(Debug, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct CaptchaTask<'a> {
        /// Page URL.
        #[serde(rename = "websiteURL")]
        pub website_url: &'a str,
        /// Site key.
        pub website_key: &'a str,
        /// Task type.
        #[serde(rename = "type")]
        pub kind: &'a str,
        /// reCAPTCHA action.
        pub page_action: &'a str,
        /// UA to solve with.
        pub user_agent: &'a str,
        /// 0.7 or 0.9 for the M1S7/M1S9 types.
        #[serde(skip_serializing_if = "Option::is_none")]
        pub min_score: Option<f64>,
    }

    /// `errorId` as a number, a numeric string or anything else (`None`).
    fn lenient_i64<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        Ok(match Value::deserialize(d)? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
    }

    /// `getTaskResult` body.
    #[derive(Debug, Serialize)]
    #[serde(rename_all = "camelCase")]
    pub struct TaskResultRequest<'a> {
        /// The solver API key.
        pub client_key: &'a str,
        /// Task id.
        pub task_id: &'a str,
    }

    /// `createTask` / `getTaskResult` response.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default, rename_all = "camelCase")]
    pub struct TaskResponse {
        /// 0 on success. Tolerant: a number, or absent.
        #[serde(deserialize_with = "lenient_i64")]
        pub error_id: Option<i64>,
        /// e.g. `ERROR_NO_SLOT_AVAILABLE`.
        pub error_code: Option<String>,
        /// Human text.
        pub error_description: Option<String>,
        /// Task id (createTask); a string or a number.
        pub task_id: Option<Value>,
        /// `processing` or `ready`.
        pub status: Option<String>,
        /// The solution when ready.
        pub solution: Option<TaskSolution>,
    }

    /// `solution`.
    #[derive(Debug, Default, Deserialize)]
    #[serde(default, rename_all = "camelCase")]
    pub struct TaskSolution {
        /// The token.
        pub g_recaptcha_response: Option<String>,
        /// The token as some providers' other task types name it.
        pub token: Option<String>,
        /// The solver's UA.
        pub user_agent: Option<String>,
    }
}
