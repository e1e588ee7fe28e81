//! The original's admin config routes, under its paths, aliases and shapes, over the settings
//! store (so every process and isolate sees a change within a second): the admin config and
//! API key, generation timeouts and retries, the call mode, cache, token refresh, system info
//! and stats, and per-account `refresh-credits` / `refresh-at`.
//!
//! Where the original is loose this is not: secrets are masked, a validation error is HTTP
//! 400 with `{"success": false, "message"}`, and each change lands in the audit list
//! ([`super::audit`]).

use std::collections::BTreeMap;

use http::{Method, Request, Response, StatusCode};
use serde_json::{json, Map, Value};

use crate::config::{Config, Strategy};
use crate::pool::PoolError;
use crate::seams::Bytes;
use crate::settings::SettingsError;

use super::audit::{noted, AuditNote};
use super::error::ApiError;
use super::{json_response, AppInner, Body};

/// The routes this module answers (admin session checked by the caller).
pub(super) fn is_compat_route(method: &Method, segments: &[&str]) -> bool {
    matches!(
        (method, segments),
        (
            &Method::GET | &Method::POST,
            ["admin", "config"]
                | ["config", "generation"]
                | ["generation", "timeout"]
                | ["call-logic", "config"]
                | ["token-refresh", "config"]
                | ["cache", "config"]
        ) | (
            &Method::POST,
            ["admin", "apikey"]
                | ["token-refresh", "enabled"]
                | ["cache", "enabled" | "base-url"]
                | ["tokens", _, "refresh-credits" | "refresh-at"]
        ) | (&Method::GET, ["system", "info"] | ["stats"] | ["audit"])
    )
}

fn ok(v: &Value) -> Response<Body> {
    json_response(StatusCode::OK, Bytes::from(v.to_string()))
}

use super::admin::bad_request as refused;

/// The body's JSON object, or why not (a 400).
fn object(body: &[u8]) -> Result<Map<String, Value>, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err("The body must be a JSON object.".to_owned()),
    }
}

/// A whole number (a JSON integer, an integral float or a numeric string, as the original's
/// models coerce), or the refusal naming `field`.
fn whole(field: &str, v: &Value) -> Result<i64, String> {
    let n = match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    };
    n.ok_or_else(|| format!("`{field}` must be a whole number."))
}

/// A positive number of seconds (integer or fraction), or the refusal naming `field`.
fn seconds(field: &str, v: &Value) -> Result<f64, String> {
    let n = match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    n.filter(|f| f.is_finite() && *f > 0.0)
        .ok_or_else(|| format!("`{field}` must be a positive number of seconds."))
}

/// `true`/`false`, or the refusal naming `field`.
fn flag(field: &str, v: &Value) -> Result<bool, String> {
    v.as_bool()
        .ok_or_else(|| format!("`{field}` must be true or false."))
}

/// Seconds as JSON: a whole number when whole.
fn secs_value(d: std::time::Duration) -> Value {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        json!(d.as_secs())
    } else {
        json!(s)
    }
}

fn call_mode(s: Strategy) -> &'static str {
    match s {
        Strategy::LeastLoaded => "default",
        Strategy::RoundRobin => "polling",
        Strategy::CreditAware => "credit_aware",
    }
}

/// The value, or the handler answers the refusal (a 400).
macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(message) => return Ok(refused(message)),
        }
    };
}

impl AppInner {
    pub(super) async fn compat_route(
        &self,
        method: &Method,
        segments: &[&str],
        req: &Request<Bytes>,
    ) -> Result<Response<Body>, ApiError> {
        let body = req.body();
        match (method, segments) {
            (&Method::GET, ["admin", "config"]) => Ok(self.admin_config()),
            (&Method::POST, ["admin", "config"]) => self.change_admin_config(body).await,
            (&Method::POST, ["admin", "apikey"]) => self.change_api_key(body).await,
            (&Method::GET, ["config", "generation"] | ["generation", "timeout"]) => Ok(ok(
                &json!({"success": true, "config": generation_view(&self.config)}),
            )),
            (&Method::POST, ["config", "generation"] | ["generation", "timeout"]) => {
                self.change_generation(body).await
            }
            (&Method::GET, ["call-logic", "config"]) => Ok(ok(
                &json!({"success": true, "config": call_logic_view(&self.config)}),
            )),
            (&Method::POST, ["call-logic", "config"]) => self.change_call_logic(body).await,
            (&Method::GET, ["token-refresh", "config"]) => Ok(ok(
                &json!({"success": true, "config": token_refresh_view()}),
            )),
            (&Method::POST, ["token-refresh", action]) => self.change_token_refresh(action, body),
            (&Method::GET, ["cache", "config"]) => Ok(ok(&json!({
                "success": true,
                "config": cache_view(&self.config, &self.public_base(req)),
            }))),
            (&Method::POST, ["cache", action]) => self.change_cache(action, body, req).await,
            (&Method::GET, ["system", "info"]) => self.system_info().await,
            (&Method::GET, ["stats"]) => self.stats().await,
            (&Method::GET, ["audit"]) => self.audit_list(req.uri()).await,
            (&Method::POST, ["tokens", id, action]) => self.refresh_account(id, action).await,
            _ => Err(ApiError::not_found("No such admin route.")),
        }
    }

    /// Stores `changes` as one settings update; the answer is `done`'s, noted for the audit
    /// with the names changed, or a 400 for an invalid value.
    async fn save(
        &self,
        changes: BTreeMap<String, Option<String>>,
        done: impl FnOnce(&Config) -> Value,
    ) -> Result<Response<Body>, ApiError> {
        if changes.is_empty() {
            // Nothing to store: no new settings version for every process to rebuild on.
            return Ok(ok(&done(&self.config)));
        }
        let now = self.deps.clock.now_ms();
        match self
            .settings
            .update(&*self.deps.sessions, &changes, None, now)
            .await
        {
            Ok(_) => {
                let note = AuditNote {
                    settings: changes.into_keys().collect(),
                    account: None,
                };
                Ok(noted(ok(&done(&self.settings.current())), note))
            }
            Err(SettingsError::Invalid(e)) => Ok(refused(e.to_string())),
            Err(_) => Err(ApiError::storage_unavailable()),
        }
    }

    /// `GET /api/admin/config`: the original's four fields, the API key masked.
    fn admin_config(&self) -> Response<Body> {
        let c = &self.config;
        ok(&json!({
            "admin_username": c.admin_username,
            "api_key": c.api_key.as_ref().map(|k| k.masked()).unwrap_or_default(),
            "error_ban_threshold": c.error_ban_threshold,
            // The original's debug logging writes requests and responses to a file: not built.
            "debug_enabled": false,
        }))
    }

    /// `POST /api/admin/config`: `{"error_ban_threshold": n}` (0 never disables).
    async fn change_admin_config(&self, body: &[u8]) -> Result<Response<Body>, ApiError> {
        let fields = tri!(object(body));
        let Some(v) = fields.get("error_ban_threshold") else {
            return Ok(refused("`error_ban_threshold` is required."));
        };
        let n = tri!(whole("error_ban_threshold", v));
        let changes = BTreeMap::from([("ERROR_BAN_THRESHOLD".to_owned(), Some(n.to_string()))]);
        self.save(
            changes,
            |_| json!({"success": true, "message": "Admin settings saved."}),
        )
        .await
    }

    /// `POST /api/admin/apikey`: `{"new_api_key"}` becomes `API_KEY`, at once here and within
    /// a second everywhere; the old key is refused from then on.
    async fn change_api_key(&self, body: &[u8]) -> Result<Response<Body>, ApiError> {
        let fields = tri!(object(body));
        let key = fields
            .get("new_api_key")
            .and_then(Value::as_str)
            .map(str::trim)
            .unwrap_or_default();
        if key.is_empty() {
            return Ok(refused("`new_api_key` must be a non-empty string."));
        }
        if key.len() > 512 || !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Ok(refused(
                "`new_api_key` must be at most 512 printable ASCII characters without spaces.",
            ));
        }
        let changes = BTreeMap::from([("API_KEY".to_owned(), Some(key.to_owned()))]);
        self.save(changes, |c| {
            json!({
                "success": true,
                "message": "API key updated.",
                "api_key": c.api_key.as_ref().map(|k| k.masked()),
            })
        })
        .await
    }

    /// `POST /api/config/generation` (alias `/api/generation/timeout`): `image_timeout` is
    /// `IMAGE_TIMEOUT`, `video_timeout` is `VIDEO_TIMEOUT` (the original only stored it; here
    /// it bounds a video job's polling), `max_retries` is `FLOW_MAX_RETRIES`.
    async fn change_generation(&self, body: &[u8]) -> Result<Response<Body>, ApiError> {
        let fields = tri!(object(body));
        let mut changes = BTreeMap::new();
        if let Some(v) = fields.get("image_timeout").filter(|v| !v.is_null()) {
            let s = tri!(seconds("image_timeout", v));
            changes.insert("IMAGE_TIMEOUT".to_owned(), Some(s.to_string()));
        }
        if let Some(v) = fields.get("max_retries").filter(|v| !v.is_null()) {
            let n = tri!(whole("max_retries", v));
            if n < 1 {
                return Ok(refused("`max_retries` must be at least 1."));
            }
            changes.insert("FLOW_MAX_RETRIES".to_owned(), Some(n.to_string()));
        }
        if let Some(v) = fields.get("video_timeout").filter(|v| !v.is_null()) {
            let s = tri!(seconds("video_timeout", v));
            changes.insert("VIDEO_TIMEOUT".to_owned(), Some(s.to_string()));
        }
        self.save(changes, |c| {
            json!({
                "success": true,
                "message": "Generation settings saved.",
                "config": generation_view(c),
            })
        })
        .await
    }

    /// `POST /api/call-logic/config`: `call_mode` `default` (least loaded) or `polling`
    /// (round robin); the original's `polling_mode_enabled` flag is read when no mode is given.
    async fn change_call_logic(&self, body: &[u8]) -> Result<Response<Body>, ApiError> {
        let fields = tri!(object(body));
        let strategy = match (fields.get("call_mode"), fields.get("polling_mode_enabled")) {
            (Some(Value::String(m)), _) => match m.trim() {
                "default" => Strategy::LeastLoaded,
                "polling" => Strategy::RoundRobin,
                _ => return Ok(refused("Invalid call_mode: expected default or polling.")),
            },
            (None | Some(Value::Null), Some(Value::Bool(polling))) => {
                if *polling {
                    Strategy::RoundRobin
                } else {
                    Strategy::LeastLoaded
                }
            }
            _ => return Ok(refused("Invalid call_mode: expected default or polling.")),
        };
        let changes = BTreeMap::from([(
            "SELECTION_STRATEGY".to_owned(),
            Some(strategy.as_str().to_owned()),
        )]);
        self.save(changes, |c| {
            json!({
                "success": true,
                "message": "Call mode saved.",
                "config": call_logic_view(c),
            })
        })
        .await
    }

    /// `POST /api/token-refresh/enabled|config`. Access tokens are always refreshed (by the
    /// host's pass: the cron at the edge, a timer natively) and the original's protocol (ST)
    /// refresh is not built, so only requests that ask for what already holds succeed.
    fn change_token_refresh(&self, action: &str, body: &[u8]) -> Result<Response<Body>, ApiError> {
        let fields = tri!(object(body));
        if let Some(v) = fields.get("enabled").filter(|v| !v.is_null()) {
            if tri!(flag("enabled", v)) {
                return Ok(refused(
                    "Protocol (ST) refresh is not built into this version; access tokens are \
                     refreshed automatically.",
                ));
            }
        } else if action == "enabled" {
            return Ok(refused("`enabled` is required."));
        }
        if fields
            .get("refresh_interval_minutes")
            .is_some_and(|v| !v.is_null())
        {
            return Ok(refused(
                "The refresh interval is the host's (the cron schedule at the edge, \
                 --refresh-interval natively), not a runtime setting.",
            ));
        }
        Ok(ok(&json!({
            "success": true,
            "message": "Refresh settings unchanged.",
            "config": token_refresh_view(),
        })))
    }

    /// `POST /api/cache/enabled|config|base-url`: `enabled` is `MEDIA_CACHE`, `timeout`
    /// `MEDIA_TTL` (seconds, at least 1: media is never kept forever), `base_url`
    /// `PUBLIC_BASE_URL` (`""` clears it).
    async fn change_cache(
        &self,
        action: &str,
        body: &[u8],
        req: &Request<Bytes>,
    ) -> Result<Response<Body>, ApiError> {
        let fields = tri!(object(body));
        let mut changes = BTreeMap::new();
        let wants = |f: &str| match action {
            "enabled" => f == "enabled",
            "base-url" => f == "base_url",
            _ => true,
        };
        match fields.get("enabled") {
            Some(v) if wants("enabled") && !v.is_null() => {
                let on = tri!(flag("enabled", v));
                changes.insert("MEDIA_CACHE".to_owned(), Some(on.to_string()));
            }
            None if action == "enabled" => return Ok(refused("`enabled` is required.")),
            _ => {}
        }
        if let Some(v) = fields
            .get("timeout")
            .filter(|v| wants("timeout") && !v.is_null())
        {
            let n = tri!(whole("timeout", v));
            if n < 1 {
                return Ok(refused(
                    "`timeout` must be at least 1 second: media is not kept forever here.",
                ));
            }
            changes.insert("MEDIA_TTL".to_owned(), Some(n.to_string()));
        }
        match fields.get("base_url") {
            Some(Value::String(s)) if wants("base_url") => {
                let s = s.trim();
                let value = (!s.is_empty()).then(|| s.to_owned());
                changes.insert("PUBLIC_BASE_URL".to_owned(), value);
            }
            Some(Value::Null) if wants("base_url") => {
                changes.insert("PUBLIC_BASE_URL".to_owned(), None);
            }
            Some(_) if wants("base_url") => {
                return Ok(refused("`base_url` must be a string."));
            }
            None if action == "base-url" => return Ok(refused("`base_url` is required.")),
            _ => {}
        }
        let derived = self.public_base(req);
        self.save(changes, |c| {
            json!({
                "success": true,
                "message": "Cache settings saved.",
                "config": cache_view(c, &derived),
            })
        })
        .await
    }

    /// `GET /api/system/info`: accounts, active accounts, their credits, the version.
    async fn system_info(&self) -> Result<Response<Body>, ApiError> {
        let accounts = self.pool.list().await.map_err(PoolError::from)?;
        let active = accounts.iter().filter(|a| a.active);
        Ok(ok(&json!({
            "success": true,
            "info": {
                "total_tokens": accounts.len(),
                "active_tokens": active.clone().count(),
                "total_credits": active.map(|a| a.credits.max(0)).sum::<i64>(),
                "version": env!("CARGO_PKG_VERSION"),
            },
        })))
    }

    /// `GET /api/stats`: the original's fields. `total_generations` is the accounts' use
    /// counts; the per-kind, error and today (UTC) fields come from the request log's
    /// counters ([`crate::logs`]), which clearing the log keeps.
    async fn stats(&self) -> Result<Response<Body>, ApiError> {
        let counted = self.log_totals().await?;
        let accounts = self.pool.list().await.map_err(PoolError::from)?;
        let statuses =
            futures::future::join_all(accounts.iter().map(|a| self.pool.status(&a.id))).await;
        let uses: u64 = statuses.into_iter().flatten().map(|s| s.use_count).sum();
        let (total, today) = (counted.total, counted.today);
        Ok(ok(&json!({
            "total_tokens": accounts.len(),
            "active_tokens": accounts.iter().filter(|a| a.active).count(),
            "total_generations": uses,
            "total_images": total.images,
            "total_videos": total.videos,
            "total_errors": total.errors,
            "today_images": today.images,
            "today_videos": today.videos,
            "today_errors": today.errors,
        })))
    }

    /// `POST /api/tokens/{id}/refresh-credits|refresh-at`: a full refresh (access token and
    /// credits), answered in the original's shape; a failure is the pool's error.
    async fn refresh_account(&self, id: &str, action: &str) -> Result<Response<Body>, ApiError> {
        let account = self.pool.refresh_now(id).await?;
        let note = AuditNote {
            settings: Vec::new(),
            account: Some(account.id.clone()),
        };
        let body = if action == "refresh-credits" {
            json!({"success": true, "message": "Credits refreshed.", "credits": account.credits})
        } else {
            let status = self.pool.status(id).await.ok();
            let token = match &status {
                Some(s) => crate::pool::tokens::current_token(&account, s),
                None => account.recorded_token(),
            };
            json!({
                "success": true,
                "message": "Access token refreshed.",
                "token": {
                    "id": account.id,
                    "email": account.email,
                    "at_expires": token
                        .and_then(|t| t.expires_ms)
                        .map(crate::util::format_rfc3339),
                },
            })
        };
        Ok(noted(ok(&body), note))
    }
}

fn generation_view(c: &Config) -> Value {
    json!({
        "image_timeout": secs_value(c.image_timeout),
        "video_timeout": secs_value(c.video_timeout),
        "max_retries": c.max_retries,
    })
}

fn call_logic_view(c: &Config) -> Value {
    json!({
        "call_mode": call_mode(c.selection_strategy),
        "polling_mode_enabled": c.selection_strategy == Strategy::RoundRobin,
        "selection_strategy": c.selection_strategy.as_str(),
    })
}

fn token_refresh_view() -> Value {
    json!({
        "at_auto_refresh_enabled": true,
        "protocol_refresh_enabled": false,
        "refresh_interval_minutes": Value::Null,
    })
}

fn cache_view(c: &Config, derived_base: &str) -> Value {
    json!({
        "enabled": c.media_cache,
        "timeout": c.media_ttl.as_secs(),
        "base_url": c.public_base_url.clone().unwrap_or_default(),
        "effective_base_url": c.public_base_url.clone().unwrap_or_else(|| derived_base.to_owned()),
    })
}
