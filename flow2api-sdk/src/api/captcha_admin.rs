//! Captcha admin routes: `GET`/`POST /api/captcha/config` (the original's captcha settings,
//! over the settings store), `GET /api/captcha/stats` (the accounting of [`CaptchaStats`]) and
//! `POST /api/captcha/score-test` (solve one token with the configured methods for a
//! score-checking site and ask that site for the token's score: the original's intent; its
//! own helper always answered 500).
//!
//! [`CaptchaStats`]: crate::captcha::CaptchaStats

use http::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::seams::{Bytes, CaptchaAction, CaptchaRequest};
use crate::transport::{send_with_timeout, timeouts};

use super::error::ApiError;
use super::{json_response, AppInner, Body};

/// The score test's defaults: the antcpt score detector, whose verify page answers a token's
/// score (as the original's defaults).
const DEFAULT_SCORE_SITE_URL: &str = "https://antcpt.com/score_detector/";
const DEFAULT_SCORE_SITE_KEY: &str = "6LcR_okUAAAAAPYrPe-HK_0RULO1aZM15ENyM-Mf";
const DEFAULT_SCORE_VERIFY_URL: &str = "https://antcpt.com/score_detector/verify.php";
const DEFAULT_SCORE_ACTION: &str = "homepage";

/// `POST /api/captcha/score-test`, every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ScoreTestBody {
    website_url: Option<String>,
    website_key: Option<String>,
    action: Option<String>,
    verify_url: Option<String>,
    enterprise: Option<bool>,
}

/// The fields of `GET`/`POST /api/captcha/config` (the original's names) and the settings
/// they are.
const CONFIG_FIELDS: &[(&str, &str)] = &[
    ("captcha_method", "CAPTCHA_METHOD"),
    ("yescaptcha_api_key", "YESCAPTCHA_API_KEY"),
    ("yescaptcha_base_url", "YESCAPTCHA_BASE_URL"),
    ("yescaptcha_task_type", "YESCAPTCHA_TASK_TYPE"),
    ("capmonster_api_key", "CAPMONSTER_API_KEY"),
    ("capmonster_base_url", "CAPMONSTER_BASE_URL"),
    ("ezcaptcha_api_key", "EZCAPTCHA_API_KEY"),
    ("ezcaptcha_base_url", "EZCAPTCHA_BASE_URL"),
    ("capsolver_api_key", "CAPSOLVER_API_KEY"),
    ("capsolver_base_url", "CAPSOLVER_BASE_URL"),
    ("remote_browser_base_url", "REMOTE_BROWSER_BASE_URL"),
    ("remote_browser_api_key", "REMOTE_BROWSER_API_KEY"),
    ("remote_browser_timeout", "REMOTE_BROWSER_TIMEOUT"),
    ("captcha_poll_interval", "CAPTCHA_POLL_INTERVAL"),
    ("captcha_max_polls", "CAPTCHA_MAX_POLLS"),
];

/// The original's fields for its in-process browser modes, which this gateway does not have:
/// accepted and ignored, so that a script that sends the whole form keeps working.
const BROWSER_MODE_FIELDS: &[&str] = &[
    "browser_proxy_enabled",
    "browser_proxy_url",
    "browser_count",
    "personal_project_pool_size",
    "personal_max_resident_tabs",
    "browser_personal_fresh_restart_every_n_solves",
    "personal_idle_tab_ttl_seconds",
];

/// The routes under `/api/captcha/` this module answers (admin session checked by the caller).
pub(super) fn is_captcha_route(method: &Method, segments: &[&str]) -> bool {
    matches!(
        (method, segments),
        (&Method::GET, ["captcha", "stats"])
            | (&Method::POST, ["captcha", "score-test"])
            | (&Method::GET | &Method::POST, ["captcha", "config"])
    )
}

use super::admin::bad_request as refused;

fn is_secret(name: &str) -> bool {
    name.ends_with("_API_KEY")
}

fn is_number(name: &str) -> bool {
    matches!(
        name,
        "REMOTE_BROWSER_TIMEOUT" | "CAPTCHA_POLL_INTERVAL" | "CAPTCHA_MAX_POLLS"
    )
}

fn ok(v: &Value) -> Response<Body> {
    json_response(StatusCode::OK, Bytes::from(v.to_string()))
}

/// An `http(s)://` URL without credentials, or a 400 naming `field`.
fn http_url(field: &str, raw: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "`{field}` must be an http:// or https:// URL without credentials."
        ))
        .param(field)
    };
    let url = url::Url::parse(raw.trim()).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || !url.username().is_empty()
        || url.password().is_some()
    {
        return Err(bad());
    }
    Ok(url.to_string())
}

impl AppInner {
    pub(super) async fn captcha_route(
        &self,
        method: &Method,
        segments: &[&str],
        req: &Request<Bytes>,
    ) -> Result<Response<Body>, ApiError> {
        match (method, segments) {
            (&Method::GET, ["captcha", "stats"]) => self.captcha_stats().await,
            (&Method::GET, ["captcha", "config"]) => self.captcha_config().await,
            (&Method::POST, ["captcha", "config"]) => self.change_captcha_config(req.body()).await,
            _ => self.score_test(req.body()).await,
        }
    }

    /// The captcha settings under the original's field names; secrets masked, numbers as
    /// numbers.
    async fn captcha_config(&self) -> Result<Response<Body>, ApiError> {
        let overrides = crate::settings::load(&*self.deps.sessions)
            .await
            .map_err(|_| ApiError::storage_unavailable())?;
        let views = crate::settings::view(self.settings.base(), &overrides);
        let mut out = serde_json::Map::new();
        out.insert("success".into(), json!(true));
        for (field, name) in CONFIG_FIELDS {
            let value = views
                .iter()
                .find(|v| v.name == *name)
                .and_then(|v| v.value.clone());
            let value = match value {
                Some(v) if is_number(name) => match (v.parse::<i64>(), v.parse::<f64>()) {
                    (Ok(n), _) => json!(n),
                    (_, Ok(n)) => json!(n),
                    _ => json!(v),
                },
                Some(v) => json!(v),
                None if is_secret(name) => json!(""),
                None => Value::Null,
            };
            out.insert((*field).to_owned(), value);
        }
        Ok(ok(&Value::Object(out)))
    }

    /// Changes the captcha settings given (all optional; `null` goes back to the default), as
    /// one settings update. A secret sent back as it was shown (masked) is left as it is
    /// ([`crate::settings`] sees to that).
    async fn change_captcha_config(&self, body: &[u8]) -> Result<Response<Body>, ApiError> {
        let Ok(Value::Object(fields)) = serde_json::from_slice::<Value>(body) else {
            return Ok(refused("The body must be a JSON object."));
        };
        let mut changes = std::collections::BTreeMap::new();
        for (field, value) in &fields {
            if BROWSER_MODE_FIELDS.contains(&field.as_str()) {
                continue;
            }
            let Some((_, name)) = CONFIG_FIELDS.iter().find(|(f, _)| f == field) else {
                return Ok(refused(format!("Unknown field `{field}`.")));
            };
            let value = match value {
                Value::Null => None,
                Value::String(s) if s.trim().is_empty() => None,
                Value::String(s) => Some(s.trim().to_owned()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                _ => return Ok(refused(format!("`{field}` must be a string or a number."))),
            };
            changes.insert((*name).to_owned(), value);
        }
        // As the original: remote_browser is only chosen together with its service.
        let method = changes
            .get("CAPTCHA_METHOD")
            .cloned()
            .unwrap_or_else(|| Some(self.config.captcha_method.clone()))
            .unwrap_or_default();
        if method
            .split(',')
            .any(|m| m.trim() == crate::captcha::REMOTE_BROWSER)
        {
            let set = |name: &str, current: bool| match changes.get(name) {
                Some(v) => v.is_some(),
                None => current,
            };
            let url = set(
                "REMOTE_BROWSER_BASE_URL",
                self.config.remote_browser_base_url.is_some(),
            );
            let key = set(
                "REMOTE_BROWSER_API_KEY",
                self.config.remote_browser_api_key.is_some(),
            );
            if !(url && key) {
                return Ok(refused(
                    "remote_browser needs remote_browser_base_url and remote_browser_api_key.",
                ));
            }
        }
        let now = self.deps.clock.now_ms();
        match self
            .settings
            .update(&*self.deps.sessions, &changes, None, now)
            .await
        {
            Ok(o) => {
                let note = super::audit::AuditNote {
                    settings: changes.into_keys().collect(),
                    account: None,
                };
                let resp = ok(&json!({
                    "success": true,
                    "message": "Captcha settings saved.",
                    "version": o.version,
                }));
                Ok(super::audit::noted(resp, note))
            }
            Err(crate::settings::SettingsError::Invalid(e)) => Ok(refused(e.to_string())),
            Err(_) => Err(ApiError::storage_unavailable()),
        }
    }

    /// Per method and per account: solves, failures (by kind), latency and Google's
    /// rejections, every process's and isolate's together.
    async fn captcha_stats(&self) -> Result<Response<Body>, ApiError> {
        // This process's latest counts first, then every process's totals.
        let store = &*self.deps.sessions;
        let stats = &self.deps.captcha_stats;
        let _ = stats
            .flush_if_due(store, self.deps.clock.now_ms(), true)
            .await;
        let view = crate::captcha::load_shared(store).await?;
        // Emails make the per-account rows readable; a pool that cannot be listed leaves ids.
        let emails: std::collections::HashMap<String, String> = self
            .pool
            .list()
            .await
            .map(|accounts| accounts.into_iter().map(|a| (a.id, a.email)).collect())
            .unwrap_or_default();
        let accounts: Vec<Value> = view
            .accounts
            .iter()
            .map(|(id, c)| {
                let mut row = serde_json::to_value(c).unwrap_or_default();
                if let Value::Object(o) = &mut row {
                    o.insert("id".into(), json!(id));
                    o.insert("email".into(), json!(emails.get(id)));
                }
                row
            })
            .collect();
        let methods = crate::captcha::methods(&self.config);
        let mut out = json!({
            "success": true,
            "scope": "shared",
            "methods": methods,
            "solvers": view.solvers,
            "accounts": accounts,
        });
        if methods.contains(&crate::captcha::REMOTE_BROWSER) {
            let browser = self.remote_browser();
            out["remote_browser"] = match browser.health().await {
                Ok(h) => json!({"configured": true, "up": h.up, "latency_ms": h.latency_ms}),
                Err(_) => json!({"configured": false, "up": false}),
            };
        }
        Ok(ok(&out))
    }

    /// A client of the configured remote browser service, for its probe and score test.
    fn remote_browser(&self) -> crate::captcha::RemoteBrowser {
        crate::captcha::RemoteBrowser::new(
            self.deps.http.clone(),
            self.deps.clock.clone(),
            (&*self.config).into(),
        )
    }

    /// Solves one token with the configured methods for the given site and POSTs
    /// `{"g-recaptcha-response": token}` to the verify URL, answering its verdict and score.
    async fn score_test(&self, body: &[u8]) -> Result<Response<Body>, ApiError> {
        let body: ScoreTestBody = if body.iter().all(u8::is_ascii_whitespace) {
            ScoreTestBody::default()
        } else {
            serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))?
        };
        let page_url = http_url(
            "website_url",
            body.website_url
                .as_deref()
                .unwrap_or(DEFAULT_SCORE_SITE_URL),
        )?;
        let verify_url = http_url(
            "verify_url",
            body.verify_url
                .as_deref()
                .unwrap_or(DEFAULT_SCORE_VERIFY_URL),
        )?;
        let site_key = body
            .website_key
            .as_deref()
            .map(str::trim)
            .unwrap_or(DEFAULT_SCORE_SITE_KEY);
        let action = body
            .action
            .as_deref()
            .map(str::trim)
            .unwrap_or(DEFAULT_SCORE_ACTION);
        for (field, v) in [("website_key", site_key), ("action", action)] {
            if v.is_empty() || v.len() > 200 {
                return Err(ApiError::bad_request(format!(
                    "`{field}` must be 1 to 200 characters."
                ))
                .param(field));
            }
        }
        // A browser service verifies in its own browser, where the score is made (§10.4).
        if crate::captcha::methods(&self.config).first() == Some(&crate::captcha::REMOTE_BROWSER) {
            let asked = json!({
                "website_url": page_url,
                "website_key": site_key,
                "verify_url": verify_url,
                "action": action,
                "enterprise": body.enterprise.unwrap_or(false),
            });
            return Ok(ok(
                &match self.remote_browser().custom_score(&asked).await {
                    Ok(mut answer) => {
                        answer.insert("method".into(), json!(crate::captcha::REMOTE_BROWSER));
                        let verified = answer
                            .get("verify_result")
                            .and_then(|r| r.get("success"))
                            .and_then(Value::as_bool)
                            .unwrap_or(false);
                        answer.entry("success").or_insert(json!(verified));
                        // A token is single-use and this one was spent; it is no one's business.
                        answer.remove("token");
                        Value::Object(answer)
                    }
                    Err(e) => json!({
                        "success": false,
                        "method": crate::captcha::REMOTE_BROWSER,
                        "message": e.message,
                        "website_url": page_url,
                        "action": action,
                    }),
                },
            ));
        }
        let request = CaptchaRequest {
            site_key: site_key.to_owned(),
            page_url: page_url.clone(),
            action: CaptchaAction::ImageGeneration,
            page_action: Some(action.to_owned()),
            project_id: String::new(),
            account_id: None,
            egress: None,
            route_key: None,
        };
        let clock = &self.deps.clock;
        let started = clock.now_ms();
        let solved = self.generator.captcha.solve(&request).await;
        let token_elapsed_ms = clock.now_ms().saturating_sub(started);
        let solution = match solved {
            Ok(s) => s,
            Err(e) => {
                return Ok(ok(&json!({
                    "success": false,
                    "message": e.message,
                    "token_elapsed_ms": token_elapsed_ms,
                    "website_url": page_url,
                    "action": action,
                })));
            }
        };
        let verify = http::Request::builder()
            .method(Method::POST)
            .uri(&verify_url)
            .header("content-type", "application/json")
            .body(Bytes::from(
                json!({"g-recaptcha-response": solution.token.expose()}).to_string(),
            ))
            .map_err(|_| {
                ApiError::bad_request("`verify_url` is not usable.").param("verify_url")
            })?;
        let started = clock.now_ms();
        let answer = send_with_timeout(&*self.deps.http, &**clock, verify, timeouts::CAPTCHA).await;
        let verify_elapsed_ms = clock.now_ms().saturating_sub(started);
        let (status, result) = match answer {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let result = serde_json::from_slice::<Value>(resp.body()).unwrap_or_else(|_| {
                    let text = String::from_utf8_lossy(resp.body());
                    Value::String(text.chars().take(500).collect())
                });
                (Some(status), result)
            }
            Err(e) => (None, json!({"error": e.to_string()})),
        };
        let verified = result.get("success").and_then(Value::as_bool) == Some(true);
        Ok(ok(&json!({
            "success": status.is_some_and(|s| (200..300).contains(&s)) && verified,
            "method": solution.method,
            "website_url": page_url,
            "website_key": site_key,
            "action": action,
            "enterprise": body.enterprise.unwrap_or(false),
            "token_elapsed_ms": token_elapsed_ms,
            "token_length": solution.token.expose().len(),
            "verify_url": verify_url,
            "verify_http_status": status,
            "verify_elapsed_ms": verify_elapsed_ms,
            "verify_result": result,
            "score": result.get("score").and_then(Value::as_f64),
        })))
    }
}
