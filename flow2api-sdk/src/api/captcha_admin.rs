//! Captcha admin routes: `GET /api/captcha/stats` (the accounting of [`CaptchaStats`]) and
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

/// The routes under `/api/captcha/` this module answers (admin session checked by the caller).
pub(super) fn is_captcha_route(method: &Method, segments: &[&str]) -> bool {
    matches!(
        (method, segments),
        (&Method::GET, ["captcha", "stats"]) | (&Method::POST, ["captcha", "score-test"])
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
            _ => self.score_test(req.body()).await,
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
