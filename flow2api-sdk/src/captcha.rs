//! reCAPTCHA solving through task-API providers (`docs/upstream.md#recaptcha`): `createTask`, then
//! `getTaskResult` polling. The solver's User-Agent is returned so the submit can reuse it.

use std::sync::Arc;
use std::time::Duration;

use http::Method;

use crate::seams::{
    boxed, BoxFuture, Bytes, CaptchaError, CaptchaRequest, CaptchaSolution, CaptchaSolver, Clock,
    HttpClient,
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

/// A YesCaptcha (anti-captcha style) task-API solver.
pub struct YesCaptcha {
    http: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
    base_url: String,
    api_key: Option<Secret>,
    task_type: String,
    poll_interval: Duration,
    max_polls: u32,
}

impl std::fmt::Debug for YesCaptcha {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YesCaptcha")
            .field("base_url", &self.base_url)
            .field("task_type", &self.task_type)
            .finish_non_exhaustive()
    }
}

/// YesCaptcha settings.
#[derive(Debug, Clone)]
pub struct YesCaptchaConfig {
    /// API base URL.
    pub base_url: String,
    /// `clientKey`; without it every solve fails at once.
    pub api_key: Option<Secret>,
    /// Task type (normalised to a known one).
    pub task_type: String,
    /// Sleep between `getTaskResult` polls.
    pub poll_interval: Duration,
    /// Polls before giving up.
    pub max_polls: u32,
}

impl From<&crate::config::Config> for YesCaptchaConfig {
    /// The `YESCAPTCHA_*` and `CAPTCHA_*` settings.
    fn from(config: &crate::config::Config) -> Self {
        Self {
            base_url: config.yescaptcha_base_url.clone(),
            api_key: config.yescaptcha_api_key.clone(),
            task_type: config.yescaptcha_task_type.clone(),
            poll_interval: config.captcha_poll_interval,
            max_polls: config.captcha_max_polls,
        }
    }
}

impl YesCaptcha {
    /// A solver over `http`.
    pub fn new(http: Arc<dyn HttpClient>, clock: Arc<dyn Clock>, config: YesCaptchaConfig) -> Self {
        let task_type = if YESCAPTCHA_TASK_TYPES.contains(&config.task_type.as_str()) {
            config.task_type
        } else {
            crate::config::DEFAULT_YESCAPTCHA_TASK_TYPE.to_owned()
        };
        Self {
            http,
            clock,
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            api_key: config.api_key,
            task_type,
            poll_interval: config.poll_interval,
            max_polls: config.max_polls.max(1),
        }
    }

    /// `minScore` for the task type: 0.7 for M1S7, 0.9 for M1S9, none otherwise.
    pub fn min_score(task_type: &str) -> Option<f64> {
        match task_type {
            "RecaptchaV3TaskProxylessM1S7" => Some(0.7),
            "RecaptchaV3TaskProxylessM1S9" => Some(0.9),
            _ => None,
        }
    }

    async fn post<T: serde::Serialize>(
        &self,
        path: &str,
        body: &T,
    ) -> Result<TaskResponse, CaptchaError> {
        let req = http::Request::builder()
            .method(Method::POST)
            .uri(format!("{}/{path}", self.base_url))
            .header("content-type", "application/json")
            .body(Bytes::from(serde_json::to_vec(body).unwrap_or_default()))
            .map_err(|e| fail(format!("invalid captcha URL: {e}")))?;
        let resp = send_with_timeout(&*self.http, &*self.clock, req, timeouts::CAPTCHA)
            .await
            .map_err(|e| fail(format!("{path}: {e}")))?;
        if !resp.status().is_success() {
            return Err(fail(format!("{path}: HTTP {}", resp.status().as_u16())));
        }
        serde_json::from_slice(resp.body()).map_err(|e| fail(format!("{path}: invalid JSON: {e}")))
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
                page_action: request.action.as_str(),
                user_agent: FALLBACK_USER_AGENT,
                min_score: Self::min_score(&self.task_type),
            },
        };
        let mut attempt = 0;
        loop {
            let r = self.post("createTask", &body).await?;
            if let Some(id) = r.task_id.as_ref().and_then(task_id_string) {
                return Ok(id);
            }
            let code = r.error_code.unwrap_or_default();
            let delay = match code.as_str() {
                "ERROR_NO_SLOT_AVAILABLE_BLOCK" => Some(20),
                "ERROR_NO_SLOT_AVAILABLE" => NO_SLOT_DELAYS.get(attempt).copied(),
                _ => None,
            };
            match delay {
                Some(secs) if attempt < NO_SLOT_DELAYS.len() => {
                    attempt += 1;
                    self.clock.sleep(Duration::from_secs(secs)).await;
                }
                _ => {
                    let desc = r.error_description.unwrap_or_default();
                    return Err(fail(
                        format!("createTask refused: {code} {desc}")
                            .trim()
                            .to_owned(),
                    ));
                }
            }
        }
    }

    async fn solve_inner(&self, request: &CaptchaRequest) -> Result<CaptchaSolution, CaptchaError> {
        let Some(key) = self.api_key.as_ref().filter(|k| !k.is_empty()) else {
            return Err(fail("YESCAPTCHA_API_KEY is not set".to_owned()));
        };
        let task_id = self.create_task(key, request).await?;
        let body = TaskResultRequest {
            client_key: key.expose(),
            task_id: &task_id,
        };
        for _ in 0..self.max_polls {
            // A failed poll is polled again, as the original does, until the budget runs out.
            if let Ok(r) = self.post("getTaskResult", &body).await {
                if r.status.as_deref() == Some("ready") {
                    let solution = r.solution.unwrap_or_default();
                    if let Some(token) = solution.g_recaptcha_response.filter(|t| !t.is_empty()) {
                        return Ok(CaptchaSolution {
                            token: Secret::new(token),
                            user_agent: solution
                                .user_agent
                                .filter(|u| !u.is_empty())
                                .unwrap_or_else(|| FALLBACK_USER_AGENT.to_owned()),
                        });
                    }
                }
            }
            self.clock.sleep(self.poll_interval).await;
        }
        Err(fail(format!("no token after {} polls", self.max_polls)))
    }
}

fn task_id_string(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn fail(message: String) -> CaptchaError {
    CaptchaError {
        message: format!("yescaptcha: {message}"),
    }
}

impl CaptchaSolver for YesCaptcha {
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
        /// 0 on success.
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
        /// The solver's UA.
        pub user_agent: Option<String>,
    }
}
