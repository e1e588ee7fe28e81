//! Admin routes: login and logout, the password, runtime settings, and the account list (add
//! by ST, list masked, delete).

use std::time::Duration;

use http::{header, Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::pool::import::ImportProgress;
use crate::pool::records::{AccountSettings, ImportItem};
use crate::pool::{Account, AccountStatus, PoolError};
use crate::seams::Bytes;
use crate::secret::Secret;
use crate::settings::SettingsError;
use crate::util;

use super::admin_auth::{self, Stored, CREDENTIALS_KEY};
use super::audit::{noted, AuditNote};
use super::client_addr;
use super::error::ApiError;
use super::login_throttle::{Admission, Attempt, LoginThrottle};
use super::{json_response, AppInner, Body};

/// How long an admin session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

/// `POST /api/admin/change-password`.
#[derive(Deserialize)]
struct ChangePasswordBody {
    old_password: String,
    new_password: String,
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

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))
}

/// `?limit=&cursor=` of a paged listing: `None` when neither is given (the whole list, as
/// the original answers), else the page size (default 100, at most
/// [`crate::pool::MAX_PAGE`]) and the cursor.
fn page_query(uri: &http::Uri) -> Result<Option<(usize, Option<String>)>, ApiError> {
    let mut limit = None;
    let mut cursor = None;
    for (k, v) in url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()) {
        match &*k {
            "limit" => {
                let max = crate::pool::MAX_PAGE;
                limit = Some(
                    v.parse::<usize>()
                        .ok()
                        .filter(|n| (1..=max).contains(n))
                        .ok_or_else(|| {
                            ApiError::bad_request(format!("`limit` must be 1–{max}."))
                                .param("limit")
                        })?,
                );
            }
            "cursor" if !v.is_empty() => cursor = Some(v.into_owned()),
            "cursor" => cursor = Some(String::new()),
            _ => {}
        }
    }
    if limit.is_none() && cursor.is_none() {
        return Ok(None);
    }
    Ok(Some((
        limit.unwrap_or(100),
        cursor.filter(|c| !c.is_empty()),
    )))
}

fn ok(v: Value) -> Response<Body> {
    json_response(StatusCode::OK, Bytes::from(v.to_string()))
}

fn refused(status: StatusCode, message: String) -> Response<Body> {
    json_response(
        status,
        Bytes::from(json!({"success": false, "message": message}).to_string()),
    )
}

/// A 400 in the admin API's `{"success": false, "message"}` shape (the admin routes' answer to
/// bad input, where the original sometimes said 200).
pub(super) fn bad_request(message: impl Into<String>) -> Response<Body> {
    refused(StatusCode::BAD_REQUEST, message.into())
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
            Ok(o) => {
                let note = AuditNote {
                    settings: body.values.into_keys().collect(),
                    account: None,
                };
                Ok(noted(
                    ok(json!({"success": true, "version": o.version})),
                    note,
                ))
            }
            Err(SettingsError::Invalid(e)) => Ok(refused(StatusCode::BAD_REQUEST, e.to_string())),
            Err(e @ SettingsError::Conflict { .. }) => {
                Ok(refused(StatusCode::CONFLICT, e.to_string()))
            }
            Err(_) => Err(ApiError::storage_unavailable()),
        }
    }

    fn throttle(&self) -> LoginThrottle<'_> {
        LoginThrottle::new(&*self.deps.sessions, (&*self.config).into())
    }

    /// Admits one password check from this request's client (see `login_throttle`), or
    /// answers 429 with `Retry-After` while its address, or everyone, is locked out.
    async fn admit_password_check(&self, req: &Request<Bytes>) -> Result<Attempt, ApiError> {
        let ip = client_addr::client_ip(
            req.headers(),
            req.extensions(),
            self.config.trust_forwarded_headers,
        );
        let now = self.deps.clock.now_ms();
        match self.throttle().admit(&client_addr::bucket(ip), now).await {
            Ok(Admission::Admitted(attempt)) => Ok(attempt),
            Ok(Admission::Locked { retry_after_secs }) => Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!("Too many failed admin logins; try again in {retry_after_secs} seconds."),
            )
            .code("too_many_login_attempts")
            .retry_after(retry_after_secs)),
            Err(_) => Err(session_storage_unavailable()),
        }
    }

    /// The admitted check was right: its failure is taken back. A store failure here only
    /// leaves the count one high, so it does not fail the request.
    async fn password_check_passed(&self, attempt: Attempt) {
        let now = self.deps.clock.now_ms();
        let _ = self.throttle().succeeded(attempt, now).await;
    }

    fn configured_password(&self) -> Result<&Secret, ApiError> {
        self.config.admin_password.as_ref().ok_or_else(|| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "ADMIN_PASSWORD is not configured on this server.",
            )
            .code("admin_not_configured")
        })
    }

    pub(crate) async fn login(&self, req: &Request<Bytes>) -> Result<Response<Body>, ApiError> {
        let configured = self.configured_password()?;
        let body: LoginBody = parse_json(req.body())?;
        // Before the password is looked at: a locked-out client costs no bcrypt.
        let attempt = self.admit_password_check(req).await?;
        let stored = admin_auth::load(&*self.deps.sessions)
            .await
            .map_err(|_| session_storage_unavailable())?;
        // Both checks always run, so timing does not tell which one failed.
        let user_ok = Secret::new(self.config.admin_username.clone()).ct_eq(&body.username);
        let pass_ok = stored.verify(configured, &body.password);
        if !(user_ok && pass_ok) {
            return Err(
                ApiError::new(StatusCode::UNAUTHORIZED, "Invalid credentials.")
                    .code("invalid_credentials"),
            );
        }
        self.password_check_passed(attempt).await;
        let token = util::secret_hex(32)?;
        self.deps
            .sessions
            .put(
                &admin_auth::session_key(&token),
                admin_auth::session_record(stored.credentials.epoch),
                Some(SESSION_TTL),
            )
            .await
            .map_err(|_| session_storage_unavailable())?;
        Ok(ok(json!({
            "success": true,
            "token": token,
            "username": self.config.admin_username,
            "expires_in": SESSION_TTL.as_secs(),
        })))
    }

    /// `POST /api/logout`: the session of the token given ends.
    async fn logout(&self, token: &str) -> Result<Response<Body>, ApiError> {
        self.deps
            .sessions
            .delete(&admin_auth::session_key(token))
            .await
            .map_err(|_| session_storage_unavailable())?;
        Ok(ok(json!({"success": true, "message": "Logged out."})))
    }

    /// `POST /api/admin/change-password`: checks the old password (throttled like a login),
    /// stores a bcrypt hash of the new one, which overrides `ADMIN_PASSWORD` from then on, and
    /// ends every admin session. A refusal is `{"success": false, "message"}` (400 for a wrong
    /// old password or an unfit new one, 409 when another change came first).
    async fn change_password(&self, req: &Request<Bytes>) -> Result<Response<Body>, ApiError> {
        let configured = self.configured_password()?;
        let body: ChangePasswordBody = parse_json(req.body())?;
        let new = &body.new_password;
        if new.chars().count() < admin_auth::MIN_PASSWORD_CHARS {
            return Ok(refused(
                StatusCode::BAD_REQUEST,
                format!(
                    "The new password must have at least {} characters.",
                    admin_auth::MIN_PASSWORD_CHARS
                ),
            ));
        }
        if new.len() > admin_auth::MAX_PASSWORD_BYTES {
            return Ok(refused(
                StatusCode::BAD_REQUEST,
                format!(
                    "The new password must be at most {} bytes long (bcrypt reads no further).",
                    admin_auth::MAX_PASSWORD_BYTES
                ),
            ));
        }
        let attempt = self.admit_password_check(req).await?;
        let stored = admin_auth::load(&*self.deps.sessions)
            .await
            .map_err(|_| session_storage_unavailable())?;
        if !stored.verify(configured, &body.old_password) {
            return Ok(refused(
                StatusCode::BAD_REQUEST,
                "The old password is wrong.".to_owned(),
            ));
        }
        self.password_check_passed(attempt).await;
        let hash = admin_auth::hash_password(new, self.config.admin_password_cost).map_err(
            |e| match e {
                admin_auth::HashError::Randomness(e) => ApiError::from(e),
                admin_auth::HashError::Bcrypt(_) => ApiError::internal(),
            },
        )?;
        let now = self.deps.clock.now_ms();
        match admin_auth::replace_password(&*self.deps.sessions, &stored, hash, now).await {
            Ok(true) => Ok(ok(json!({
                "success": true,
                "message": "Password changed; every admin session has ended, log in again.",
            }))),
            Ok(false) => Ok(refused(
                StatusCode::CONFLICT,
                "The password was changed meanwhile; log in again.".to_owned(),
            )),
            Err(_) => Err(session_storage_unavailable()),
        }
    }

    /// The bearer token of a live admin session: its record exists and was opened in the
    /// current epoch (a password change ends every earlier one).
    pub(super) async fn require_admin<'r>(
        &self,
        req: &'r Request<Bytes>,
    ) -> Result<&'r str, ApiError> {
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
        if self.admin_session_live(token).await? {
            Ok(token)
        } else {
            Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "Invalid or expired admin token.",
            ))
        }
    }

    /// Whether `token` is a live admin session: its record exists and was opened in the
    /// current epoch (a password change ends every earlier one).
    ///
    /// # Errors
    /// 503 when the session store cannot be read.
    pub(super) async fn admin_session_live(&self, token: &str) -> Result<bool, ApiError> {
        // One round trip for both records (one Durable Object call at the edge).
        let keys = [admin_auth::session_key(token), CREDENTIALS_KEY.to_owned()];
        let mut records = self
            .deps
            .sessions
            .get_many(&keys)
            .await
            .map_err(|_| session_storage_unavailable())?
            .into_iter();
        let (session, credentials) = (records.next().flatten(), records.next().flatten());
        let epoch = Stored::from_record(credentials)
            .map_err(|_| session_storage_unavailable())?
            .credentials
            .epoch;
        Ok(session
            .as_deref()
            .and_then(admin_auth::session_epoch)
            .is_some_and(|e| e == epoch))
    }

    pub(crate) async fn admin_route(
        &self,
        method: &Method,
        segments: &[&str],
        req: &Request<Bytes>,
    ) -> Result<Response<Body>, ApiError> {
        if let ["keys", rest @ ..] = segments {
            let result = self.keys_route(method, rest, req).await;
            return self.audited(method, segments, result).await;
        }
        // The extension's push routes take the connection token, not an admin session.
        if let ["plugin", action @ ("update-token" | "check-tokens")] = segments {
            return self.plugin_push_route(method, action, req).await;
        }
        // Unknown admin paths are 404 whoever asks; known ones need a session.
        let known = matches!(
            (method, segments),
            (&Method::GET | &Method::POST, ["tokens"])
                | (
                    &Method::POST,
                    ["logout"] | ["admin", "logout" | "change-password" | "password"]
                )
                | (
                    &Method::GET | &Method::POST | &Method::PUT | &Method::PATCH,
                    ["settings"]
                )
                | (&Method::POST, ["tokens", "import" | "st2at"])
                | (&Method::GET | &Method::POST, ["plugin", "config"])
                | (&Method::GET, ["tokens", "import", _])
                | (&Method::GET, ["tokens", "export"])
                | (&Method::POST, ["tokens", "refresh-due"])
                | (&Method::PUT | &Method::DELETE, ["tokens", _])
                | (
                    &Method::POST,
                    ["tokens", _, "enable" | "disable" | "refresh"]
                )
        ) || super::captcha_admin::is_captcha_route(method, segments)
            || super::admin_compat::is_compat_route(method, segments)
            || super::proxy_admin::is_proxy_route(method, segments)
            || super::logs::is_logs_route(method, segments);
        if !known {
            return Err(ApiError::not_found(format!(
                "No route for {method} /api/{}",
                segments.join("/")
            )));
        }
        let token = self.require_admin(req).await?;
        let pool = &self.pool;
        let result = match (method, segments) {
            // First: other arms match some of these paths by shape.
            (_, segs) if super::logs::is_logs_route(method, segs) => {
                self.logs_route(method, segs, req).await
            }
            (_, segs) if super::admin_compat::is_compat_route(method, segs) => {
                self.compat_route(method, segs, req).await
            }
            (_, ["captcha", ..]) => self.captcha_route(method, segments, req).await,
            (_, ["proxy" | "config", _]) => self.proxy_route(method, segments, req).await,
            (_, ["logout"] | ["admin", "logout"]) => self.logout(token).await,
            (_, ["admin", "change-password" | "password"]) => self.change_password(req).await,
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
            (_, ["plugin", "config"]) => self.plugin_config(method, req).await,
            (&Method::POST, ["tokens", "st2at"]) => self.st_to_at(req).await,
            (&Method::GET, ["tokens"]) => match page_query(req.uri())? {
                // The original's shape: every account, newest first.
                None => {
                    let accounts = pool.list().await.map_err(PoolError::from)?;
                    let out = self.account_views(accounts.iter().rev()).await;
                    Ok(ok(Value::Array(out)))
                }
                Some((limit, cursor)) => {
                    let (accounts, next) =
                        pool.list_page(limit, cursor.as_deref())
                            .await
                            .map_err(|_| {
                                ApiError::bad_request("`cursor` is not one this listing gave.")
                                    .param("cursor")
                            })?;
                    let out = self.account_views(accounts.iter()).await;
                    Ok(ok(json!({"tokens": out, "next_cursor": next})))
                }
            },
            (&Method::POST, ["tokens"]) => {
                let body: AddTokenBody = parse_json(req.body())?;
                let account = pool.add(Secret::new(body.st), &body.settings).await?;
                let note = AuditNote {
                    settings: Vec::new(),
                    account: Some(account.id.clone()),
                };
                let resp = ok(json!({
                    "success": true,
                    "message": "Account added.",
                    "token": self.account_view(&account, None),
                }));
                Ok(noted(resp, note))
            }
            (&Method::POST, ["tokens", "import"]) => {
                let body: ImportBody = parse_json(req.body())?;
                if body.tokens.len() > pool.settings().import_batch_size {
                    // Too many for one request (at the edge: its subrequests): stored and
                    // carried on by the job runner, one batch per step.
                    let progress = pool
                        .start_import(&body.tokens)
                        .await
                        .map_err(PoolError::from)?;
                    self.runner
                        .schedule(&progress.import_id, Duration::ZERO)
                        .await
                        .map_err(PoolError::from)?;
                    return Ok(json_response(
                        StatusCode::ACCEPTED,
                        Bytes::from(import_view(&progress).to_string()),
                    ));
                }
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
            (&Method::GET, ["tokens", "import", id]) => {
                match pool.import_progress(id).await.map_err(PoolError::from)? {
                    Some(progress) => Ok(ok(import_view(&progress))),
                    None => Err(ApiError::not_found(format!("No import with id {id}."))),
                }
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
                    "index_repairs": r.index_repairs,
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
        };
        self.audited(method, segments, result).await
    }

    /// An account as the admin API shows it: secrets masked, hot state included.
    /// The views of `accounts`, each with its hot state (asked of every account at once).
    async fn account_views(&self, accounts: impl Iterator<Item = &Account>) -> Vec<Value> {
        let accounts: Vec<&Account> = accounts.collect();
        let statuses =
            futures::future::join_all(accounts.iter().map(|a| self.pool.status(&a.id))).await;
        accounts
            .iter()
            .zip(statuses)
            .map(|(a, s)| self.account_view(a, s.ok().as_ref()))
            .collect()
    }

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
            "captcha_method": a.captcha_method,
            "extension_route_key": a.extension_route_key,
            "proxy_url": a.proxy_url.as_ref().map(|p| crate::proxy_url::mask(p.expose())),
            "egress_relay_url": a.egress_relay_url,
            "egress_relay_secret": a.egress_relay_secret.as_ref().map(|_| "***"),
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

/// A background import's progress as the admin API shows it.
fn import_view(p: &ImportProgress) -> Value {
    json!({
        "success": true,
        "import_id": p.import_id,
        "status": p.status,
        "total": p.total,
        "done": p.done,
        "added": p.added,
        "updated": p.updated,
        "errors": p.errors,
    })
}

fn session_storage_unavailable() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "Session storage is unavailable.",
    )
    .retry_after(5)
}
