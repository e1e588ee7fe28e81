//! Proxy admin routes (the original's shapes, `docs/egress.md`): `GET /api/proxy/config`,
//! `GET /api/config/proxy`, `POST /api/proxy/config` = `POST /api/config/proxy` (stored as the
//! `PROXY_URL` and `MEDIA_PROXY_URL` settings, every input normalised; a refusal is HTTP 400
//! `{"success": false, "message"}`), and `POST /api/proxy/test` (one GET through a proxy).
//! Proxy URLs are secrets: answers show them masked.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::proxy_url;
use crate::seams::{Bytes, Egress};
use crate::settings::SettingsError;
use crate::transport::send_with_timeout;

use super::error::ApiError;
use super::{json_response, AppInner, Body};

/// `POST /api/proxy/config`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ProxyConfigBody {
    proxy_enabled: Option<bool>,
    proxy_url: Option<String>,
    media_proxy_enabled: Option<bool>,
    media_proxy_url: Option<String>,
}

/// `POST /api/proxy/test`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ProxyTestBody {
    proxy_url: Option<String>,
    test_url: Option<String>,
    timeout_seconds: Option<f64>,
}

/// The routes this module answers (admin session checked by the caller).
pub(super) fn is_proxy_route(method: &Method, segments: &[&str]) -> bool {
    matches!(
        (method, segments),
        (
            &Method::GET | &Method::POST,
            ["proxy", "config"] | ["config", "proxy"]
        ) | (&Method::POST, ["proxy", "test"])
    )
}

fn answer(status: StatusCode, v: &Value) -> Response<Body> {
    json_response(status, Bytes::from(v.to_string()))
}

use super::admin::bad_request as refused;

/// `raw` normalised, or `current` when `raw` is `current`'s masked form (a console posting
/// back what it was shown); `Ok(None)` clears.
fn normalized(name: &str, raw: &str, current: Option<&str>) -> Result<Option<String>, String> {
    if let Some(c) = current.filter(|c| crate::settings::is_shown_secret(name, raw, Some(c))) {
        return Ok(Some(c.to_owned()));
    }
    proxy_url::normalize(raw).map_err(|e| e.to_string())
}

const MAX_REDIRECTS: usize = 5;

impl AppInner {
    pub(super) async fn proxy_route(
        &self,
        method: &Method,
        segments: &[&str],
        req: &Request<Bytes>,
    ) -> Result<Response<Body>, ApiError> {
        match (method, segments) {
            (&Method::GET, ["proxy", "config"]) => {
                let (enabled, url, media_enabled, media_url) = self.proxy_view();
                Ok(answer(
                    StatusCode::OK,
                    &json!({
                        "proxy_enabled": enabled,
                        "proxy_url": url,
                        "media_proxy_enabled": media_enabled,
                        "media_proxy_url": media_url,
                    }),
                ))
            }
            (&Method::GET, ["config", "proxy"]) => {
                let (enabled, url, media_enabled, media_url) = self.proxy_view();
                Ok(answer(
                    StatusCode::OK,
                    &json!({"success": true, "config": {
                        "enabled": enabled,
                        "proxy_url": url,
                        "media_proxy_enabled": media_enabled,
                        "media_proxy_url": media_url,
                    }}),
                ))
            }
            (&Method::POST, ["proxy", "test"]) => self.proxy_test(req.body()).await,
            _ => self.save_proxy_config(req.body()).await,
        }
    }

    /// Enabled flags and masked URLs of `PROXY_URL` and `MEDIA_PROXY_URL`.
    fn proxy_view(&self) -> (bool, Option<String>, bool, Option<String>) {
        let mask =
            |s: &Option<crate::secret::Secret>| s.as_ref().map(|p| proxy_url::mask(p.expose()));
        (
            self.config.proxy_url.is_some(),
            mask(&self.config.proxy_url),
            self.config.media_proxy_url.is_some(),
            mask(&self.config.media_proxy_url),
        )
    }

    async fn save_proxy_config(&self, body: &[u8]) -> Result<Response<Body>, ApiError> {
        let body: ProxyConfigBody = match serde_json::from_slice(body) {
            Ok(b) => b,
            Err(e) => return Ok(refused(format!("Invalid JSON body: {e}"))),
        };
        let current = self.config.proxy_url.as_ref().map(|s| s.expose());
        let current_media = self.config.media_proxy_url.as_ref().map(|s| s.expose());
        let mut changes: BTreeMap<String, Option<String>> = BTreeMap::new();
        // The request proxy: on with a URL, else off (the original: an omitted URL clears).
        let proxy = match (body.proxy_enabled, body.proxy_url.as_deref()) {
            (Some(false), _) | (_, None) => None,
            (_, Some(raw)) => match normalized("PROXY_URL", raw, current) {
                Ok(p) => p,
                Err(e) => return Ok(refused(format!("proxy_url: {e}"))),
            },
        };
        if body.proxy_enabled == Some(true) && proxy.is_none() {
            return Ok(refused(
                "proxy_url: a proxy address is needed to enable the proxy",
            ));
        }
        changes.insert("PROXY_URL".into(), proxy);
        // The media proxy: omitted fields keep what is stored.
        match (body.media_proxy_enabled, body.media_proxy_url.as_deref()) {
            (Some(false), _) => {
                changes.insert("MEDIA_PROXY_URL".into(), None);
            }
            (_, Some(raw)) => match normalized("MEDIA_PROXY_URL", raw, current_media) {
                Ok(p) => {
                    if body.media_proxy_enabled == Some(true) && p.is_none() {
                        return Ok(refused(
                            "media_proxy_url: a proxy address is needed to enable the media proxy",
                        ));
                    }
                    changes.insert("MEDIA_PROXY_URL".into(), p);
                }
                Err(e) => return Ok(refused(format!("media_proxy_url: {e}"))),
            },
            (Some(true), None) if current_media.is_none() => {
                return Ok(refused(
                    "media_proxy_url: a proxy address is needed to enable the media proxy",
                ));
            }
            _ => {}
        }
        let now = self.deps.clock.now_ms();
        match self
            .settings
            .update(&*self.deps.sessions, &changes, None, now)
            .await
        {
            Ok(_) => Ok(answer(
                StatusCode::OK,
                &json!({"success": true, "message": "Proxy configuration updated."}),
            )),
            Err(SettingsError::Invalid(e)) => Ok(refused(e.to_string())),
            Err(_) => Err(ApiError::storage_unavailable()),
        }
    }

    /// One GET of `test_url` (default `https://labs.google/`) through the proxy given (else
    /// the configured egress), redirects followed, within `timeout_seconds` (5–60, default 15).
    async fn proxy_test(&self, body: &[u8]) -> Result<Response<Body>, ApiError> {
        let body: ProxyTestBody = if body.iter().all(u8::is_ascii_whitespace) {
            ProxyTestBody::default()
        } else {
            match serde_json::from_slice(body) {
                Ok(b) => b,
                Err(e) => return Ok(refused(format!("Invalid JSON body: {e}"))),
            }
        };
        let egress = match body.proxy_url.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(raw) => match proxy_url::normalize(raw) {
                Ok(Some(p)) => Some(Egress::Proxy(Arc::from(p))),
                Ok(None) => None,
                Err(e) => return Ok(refused(format!("proxy_url: {e}"))),
            },
        };
        let test_url = body
            .test_url
            .unwrap_or_else(|| "https://labs.google/".to_owned());
        let Ok(mut at) = url::Url::parse(test_url.trim()) else {
            return Ok(refused("test_url: an http:// or https:// URL is needed"));
        };
        if !matches!(at.scheme(), "http" | "https") || at.host_str().is_none() {
            return Ok(refused("test_url: an http:// or https:// URL is needed"));
        }
        let secs = body.timeout_seconds.unwrap_or(15.0);
        if !(5.0..=60.0).contains(&secs) {
            return Ok(refused("timeout_seconds: from 5 to 60"));
        }
        let timeout = Duration::from_secs_f64(secs);
        let clock = &self.deps.clock;
        let started = clock.now_ms();
        let mut outcome = Err(String::from("too many redirects"));
        for _ in 0..=MAX_REDIRECTS {
            let mut req = match http::Request::get(at.as_str()).body(Bytes::new()) {
                Ok(r) => r,
                Err(_) => return Ok(refused("test_url: not a valid URL")),
            };
            req.headers_mut().insert(
                http::header::USER_AGENT,
                http::HeaderValue::from_static(crate::transport::FALLBACK_USER_AGENT),
            );
            if let Some(e) = &egress {
                req.extensions_mut().insert(e.clone());
            }
            match send_with_timeout(&*self.deps.http, &**clock, req, timeout).await {
                Err(e) => {
                    outcome = Err(e.to_string());
                    break;
                }
                Ok(resp) if resp.status().is_redirection() => {
                    let next = resp
                        .headers()
                        .get(http::header::LOCATION)
                        .and_then(|l| l.to_str().ok())
                        .and_then(|l| at.join(l).ok());
                    match next {
                        Some(n) => at = n,
                        None => {
                            outcome = Ok(resp.status().as_u16());
                            break;
                        }
                    }
                }
                Ok(resp) => {
                    outcome = Ok(resp.status().as_u16());
                    break;
                }
            }
        }
        let elapsed_ms = clock.now_ms().saturating_sub(started);
        let v = match outcome {
            Ok(status) => json!({
                "success": (200..400).contains(&status),
                "message": format!("HTTP {status} through the proxy"),
                "test_url": test_url,
                "final_url": at.as_str(),
                "status_code": status,
                "elapsed_ms": elapsed_ms,
            }),
            Err(e) => json!({
                "success": false,
                "message": format!("The request through the proxy failed: {e}"),
                "test_url": test_url,
                "elapsed_ms": elapsed_ms,
            }),
        };
        Ok(answer(StatusCode::OK, &v))
    }
}
