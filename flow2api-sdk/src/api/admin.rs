//! Admin routes: login, and the account list (add by ST, list masked, delete).

use std::time::Duration;

use http::{header, Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Digest;

use crate::pool::records::{AccountSettings, ImportItem};
use crate::pool::{Account, AccountStatus, PoolError};
use crate::seams::Bytes;
use crate::secret::Secret;
use crate::settings::SettingsError;
use crate::util;

use super::error::ApiError;
use super::{json_response, AppInner, Body};

/// How long an admin session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

#[derive(Deserialize)]
struct AddTokenBody {
    st: String,
    #[serde(flatten)]
    settings: AccountSettings,
}

#[derive(Deserialize)]
struct UpdateTokenBody {
    #[serde(default)]
    st: Option<String>,
    #[serde(flatten)]
    settings: AccountSettings,
}

/// `PATCH /api/settings`: `{"values": {"NAME": "value" | null}, "version": n?}`.
#[derive(Deserialize)]
struct SettingsBody {
    values: std::collections::BTreeMap<String, Option<String>>,
    #[serde(default)]
    version: Option<u64>,
}

#[derive(Deserialize)]
struct ImportBody {
    tokens: Vec<ImportItem>,
}

fn session_key(token: &str) -> String {
    // Only a hash of the token is stored, so a storage dump yields no usable session.
    format!(
        "admin-session:{}",
        util::hex(&sha2::Sha256::digest(token.as_bytes()))
    )
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))
}

fn ok(v: Value) -> Response<Body> {
    json_response(StatusCode::OK, Bytes::from(v.to_string()))
}

/// Checks a password against `ADMIN_PASSWORD`: a bcrypt hash (`$2a$`/`$2b$`/`$2y$`) or plain
/// text compared in constant time.
pub fn verify_password(configured: &Secret, given: &str) -> bool {
    let c = configured.expose();
    if c.starts_with("$2a$") || c.starts_with("$2b$") || c.starts_with("$2y$") {
        bcrypt::verify(given, c).unwrap_or(false)
    } else {
        configured.ct_eq(given)
    }
}

fn refused(status: StatusCode, message: String) -> Response<Body> {
    json_response(
        status,
        Bytes::from(json!({"success": false, "message": message}).to_string()),
    )
}

impl AppInner {
    /// Validates and stores runtime settings. A refusal is `{"success": false, "message"}`
    /// (400 invalid, 409 changed meanwhile), the shape the original's admin routes use.
    async fn change_settings(&self, req: &Request<Bytes>) -> Result<Response<Body>, ApiError> {
        let body: SettingsBody = parse_json(req.body())?;
        let now = self.deps.clock.now_ms();
        match self
            .settings
            .update(&*self.deps.sessions, &body.values, body.version, now)
            .await
        {
            Ok(o) => Ok(ok(json!({"success": true, "version": o.version}))),
            Err(SettingsError::Invalid(e)) => Ok(refused(StatusCode::BAD_REQUEST, e.to_string())),
            Err(e @ SettingsError::Conflict { .. }) => {
                Ok(refused(StatusCode::CONFLICT, e.to_string()))
            }
            Err(_) => Err(ApiError::storage_unavailable()),
        }
    }

    pub(crate) async fn login(&self, req: &Request<Bytes>) -> Result<Response<Body>, ApiError> {
        let Some(password) = &self.config.admin_password else {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ADMIN_PASSWORD is not configured on this server.",
            )
            .code("admin_not_configured"));
        };
        let body: LoginBody = parse_json(req.body())?;
        // Both checks always run, so timing does not tell which one failed.
        let user_ok = Secret::new(self.config.admin_username.clone()).ct_eq(&body.username);
        let pass_ok = verify_password(password, &body.password);
        if !(user_ok && pass_ok) {
            return Err(
                ApiError::new(StatusCode::UNAUTHORIZED, "Invalid credentials.")
                    .code("invalid_credentials"),
            );
        }
        let token = util::secret_hex(32)?;
        self.deps
            .sessions
            .put(
                &session_key(&token),
                Bytes::from_static(b"1"),
                Some(SESSION_TTL),
            )
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Session storage is unavailable.",
                )
                .retry_after(5)
            })?;
        Ok(ok(json!({
            "success": true,
            "token": token,
            "username": self.config.admin_username,
            "expires_in": SESSION_TTL.as_secs(),
        })))
    }

    async fn require_admin(&self, req: &Request<Bytes>) -> Result<(), ApiError> {
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "Missing admin token (POST /api/login).",
                )
            })?;
        match self.deps.sessions.get(&session_key(token)).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "Invalid or expired admin token.",
            )),
            Err(_) => Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Session storage is unavailable.",
            )
            .retry_after(5)),
        }
    }

    pub(crate) async fn admin_route(
        &self,
        method: &Method,
        segments: &[&str],
        req: &Request<Bytes>,
    ) -> Result<Response<Body>, ApiError> {
        // Unknown admin paths are 404 whoever asks; known ones need a session.
        let known = matches!(
            (method, segments),
            (&Method::GET | &Method::POST, ["tokens"])
                | (
                    &Method::GET | &Method::POST | &Method::PUT | &Method::PATCH,
                    ["settings"]
                )
                | (&Method::POST, ["tokens", "import"])
                | (&Method::GET, ["tokens", "export"])
                | (&Method::POST, ["tokens", "refresh-due"])
                | (&Method::PUT | &Method::DELETE, ["tokens", _])
                | (
                    &Method::POST,
                    ["tokens", _, "enable" | "disable" | "refresh"]
                )
        );
        if !known {
            return Err(ApiError::not_found(format!(
                "No route for {method} /api/{}",
                segments.join("/")
            )));
        }
        self.require_admin(req).await?;
        let pool = &self.pool;
        match (method, segments) {
            (&Method::GET, ["settings"]) => {
                let overrides = crate::settings::load(&*self.deps.sessions)
                    .await
                    .map_err(|_| ApiError::storage_unavailable())?;
                Ok(ok(json!({
                    "success": true,
                    "version": overrides.version,
                    "settings": crate::settings::view(self.settings.base(), &overrides),
                })))
            }
            (_, ["settings"]) => self.change_settings(req).await,
            (&Method::GET, ["tokens"]) => {
                let accounts = pool.list().await.map_err(PoolError::from)?;
                let statuses =
                    futures::future::join_all(accounts.iter().map(|a| pool.status(&a.id))).await;
                let out = accounts
                    .iter()
                    .zip(statuses)
                    .rev()
                    .map(|(a, s)| self.account_view(a, s.ok().as_ref()))
                    .collect();
                Ok(ok(Value::Array(out)))
            }
            (&Method::POST, ["tokens"]) => {
                let body: AddTokenBody = parse_json(req.body())?;
                let account = pool.add(Secret::new(body.st), &body.settings).await?;
                Ok(ok(json!({
                    "success": true,
                    "message": "Account added.",
                    "token": self.account_view(&account, None),
                })))
            }
            (&Method::POST, ["tokens", "import"]) => {
                let body: ImportBody = parse_json(req.body())?;
                let report = pool.import(body.tokens).await?;
                let failed = report.errors.len();
                Ok(ok(json!({
                    "success": true,
                    "added": report.added,
                    "updated": report.updated,
                    "errors": if failed == 0 { Value::Null } else { json!(report.errors) },
                    "message": format!("Import finished: {} added, {} updated, {failed} failed.", report.added, report.updated),
                })))
            }
            (&Method::GET, ["tokens", "export"]) => {
                let items = pool.export().await?;
                Ok(ok(serde_json::to_value(items).unwrap_or(Value::Null)))
            }
            (&Method::POST, ["tokens", "refresh-due"]) => {
                let r = pool.refresh_due().await?;
                Ok(ok(json!({
                    "success": true,
                    "checked": r.checked,
                    "refreshed": r.refreshed,
                    "expired": r.expired,
                    "cooldowns_cleared": r.cooldowns_cleared,
                    "failed": r.failed,
                })))
            }
            (&Method::PUT, ["tokens", id]) => {
                let body: UpdateTokenBody = parse_json(req.body())?;
                let account = pool
                    .update(id, body.st.map(Secret::new), &body.settings)
                    .await?;
                let status = pool.status(id).await.ok();
                Ok(ok(
                    json!({"success": true, "message": "Account updated.", "token": self.account_view(&account, status.as_ref())}),
                ))
            }
            (&Method::DELETE, ["tokens", id]) => {
                pool.delete(id).await?;
                Ok(ok(json!({"success": true, "message": "Account deleted."})))
            }
            (&Method::POST, ["tokens", id, action]) => {
                let account = match *action {
                    "enable" => pool.set_active(id, true).await?,
                    "disable" => pool.set_active(id, false).await?,
                    _ => pool.refresh_now(id).await?,
                };
                let status = pool.status(id).await.ok();
                Ok(ok(
                    json!({"success": true, "token": self.account_view(&account, status.as_ref())}),
                ))
            }
            _ => Err(ApiError::not_found("No such admin route.")),
        }
    }

    /// An account as the admin API shows it: secrets masked, hot state included.
    fn account_view(&self, a: &Account, status: Option<&AccountStatus>) -> Value {
        let now = self.deps.clock.now_ms();
        let token = match status {
            Some(s) => crate::pool::tokens::current_token(a, s),
            None => a.recorded_token(),
        };

        let cooling = status.is_some_and(|s| s.cooling_down(now));
        let state = if a.active && cooling {
            "cooling_down"
        } else {
            a.state_label()
        };
        json!({
            "id": a.id,
            "email": a.email,
            "name": a.name,
            "remark": a.remark,
            "st": a.st.masked(),
            "at": token.as_ref().map(|t| t.at.masked()),
            "at_expires": token.as_ref().and_then(|t| t.expires_ms).map(util::format_rfc3339),
            "at_expired": token.as_ref().is_some_and(|t| !t.fresh(now, 0)),
            "at_expiring_within_1h": !token.as_ref().is_some_and(|t| t.fresh(now, crate::pool::REFRESH_MARGIN_MS)),
            "credits": a.credits,
            "user_paygate_tier": a.tier.as_paygate(),
            "tier": a.tier.label(),
            "projects": a.projects,
            "is_active": a.active,
            "status": state,
            "status_reason": a.status_reason,
            "status_at": a.status_at_ms.map(util::format_rfc3339),
            "cooldown_until": status.filter(|_| cooling).map(|s| util::format_rfc3339(s.cooldown_until_ms)),
            "cooldown_reason": status.filter(|_| cooling).and_then(|s| s.cooldown_reason.clone()),
            "image_enabled": a.image_enabled,
            "video_enabled": a.video_enabled,
            "image_concurrency": a.image_concurrency.map_or(-1, i64::from),
            "video_concurrency": a.video_concurrency.map_or(-1, i64::from),
            "in_flight": {
                "image": status.map_or(0, |s| s.image_in_flight),
                "video": status.map_or(0, |s| s.video_in_flight),
            },
            "consecutive_error_count": status.map_or(0, |s| s.consecutive_errors),
            "error_count": status.map_or(0, |s| s.error_count),
            "use_count": status.map_or(0, |s| s.use_count),
            "last_used_at": status.filter(|s| s.last_used_ms > 0).map(|s| util::format_rfc3339(s.last_used_ms)),
            "created_at": util::format_rfc3339(a.created_at_ms),
        })
    }
}
