//! The Token Updater extension's routes (`zy6p/Flow2API-Token-Updater`), with the original's
//! paths and shapes so that the extension users run today works unchanged:
//!
//! - `GET`/`POST /api/plugin/config` (admin session): the connection token, the URL to push
//!   to, and `auto_enable_on_update`. `{"connection_token": ""}` draws a new token. The one
//!   admin response that shows a secret in clear: the extension reads the token from it.
//! - `POST /api/plugin/update-token` (`Authorization: Bearer <connection token>`):
//!   `{"session_token"}` → the account with the session's email takes it, else one is added.
//! - `POST /api/plugin/check-tokens` (connection token): the accounts' health, no secrets.
//! - `POST /api/tokens/st2at` (admin session): `{"st"}` → `{"success","email","expires"}`;
//!   the extension checks a cookie with it before it pushes. Unlike the original it does not
//!   answer the access token: nothing needs it, and no route hands out secrets it need not.
//!
//! The connection token lives in the strongly consistent store (`Deps::sessions`), so a
//! token drawn on one process or isolate is the one every other checks, at once. It is
//! compared in constant time. The routes' refusals are the admin API's
//! `{"success": false, "message"}` with the right status, which the extension shows.

use http::{header, Method, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::flow::FlowError;
use crate::pool::records::Pushed;
use crate::pool::{Account, PoolError};
use crate::seams::{Bytes, Storage, StorageError};
use crate::secret::Secret;
use crate::util;

use super::error::ApiError;
use super::{json_response, AppInner, Body};

/// The record of the plugin settings in the strongly consistent store.
const PLUGIN_KEY: &str = "plugin:config";
/// Fewest characters of a connection token the admin chooses: enough that guessing one is
/// hopeless, since the routes it opens are not throttled.
pub(crate) const MIN_TOKEN_CHARS: usize = 32;
/// Most characters of a connection token (it travels in a header).
const MAX_TOKEN_CHARS: usize = 256;
/// Bytes of randomness in a drawn connection token (the original's `token_urlsafe(32)`).
const TOKEN_BYTES: usize = 32;

/// The plugin settings as stored. No `Debug`: it holds the connection token.
#[derive(Clone, Serialize, Deserialize)]
struct PluginConfig {
    /// `None`: none set yet; the push routes refuse everyone.
    #[serde(default)]
    connection_token: Option<Secret>,
    /// Whether a pushed ST enables its account again (the original's default: on).
    #[serde(default = "yes")]
    auto_enable_on_update: bool,
    /// When it was last changed (Unix ms).
    #[serde(default)]
    updated_at_ms: u64,
}

fn yes() -> bool {
    true
}

impl Default for PluginConfig {
    fn default() -> Self {
        Self {
            connection_token: None,
            auto_enable_on_update: true,
            updated_at_ms: 0,
        }
    }
}

async fn load(store: &dyn Storage) -> Result<PluginConfig, StorageError> {
    match store.get(PLUGIN_KEY).await? {
        None => Ok(PluginConfig::default()),
        Some(raw) => serde_json::from_slice(&raw)
            .map_err(|e| StorageError(format!("plugin settings unreadable: {e}"))),
    }
}

async fn save(store: &dyn Storage, config: &PluginConfig) -> Result<(), StorageError> {
    let bytes =
        serde_json::to_vec(config).map_err(|e| StorageError(format!("plugin settings: {e}")))?;
    store.put(PLUGIN_KEY, Bytes::from(bytes), None).await
}

/// Why a plugin route did not do what was asked.
enum Failure {
    /// A refusal, answered in the admin API's `{"success": false, "message"}` shape (which
    /// the extension shows its user).
    Refused(StatusCode, String),
    /// Anything else (a store that cannot be reached), in the usual error shape.
    Api(ApiError),
}

impl Failure {
    fn bad(message: impl Into<String>) -> Self {
        Self::Refused(StatusCode::BAD_REQUEST, message.into())
    }

    /// The answer: a refusal is a response, the rest stays an error for the caller.
    fn answer(self) -> Result<Response<Body>, ApiError> {
        match self {
            Self::Refused(status, message) => Ok(json_response(
                status,
                Bytes::from(json!({"success": false, "message": message}).to_string()),
            )),
            Self::Api(e) => Err(e),
        }
    }
}

impl<E: Into<ApiError>> From<E> for Failure {
    fn from(e: E) -> Self {
        Self::Api(e.into())
    }
}

/// What the route bodies return.
type Outcome = Result<Response<Body>, Failure>;

fn ok(v: Value) -> Response<Body> {
    json_response(StatusCode::OK, Bytes::from(v.to_string()))
}

/// The body as a JSON object; an empty body reads as `{}` when `empty_ok`. Field values are
/// never echoed in the messages (one may be a session token).
fn object(body: &[u8], empty_ok: bool) -> Result<Map<String, Value>, Failure> {
    if empty_ok && body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Failure::bad("The body must be a JSON object.")),
        Err(e) => Err(Failure::bad(format!("Invalid JSON body: {e}"))),
    }
}

/// A string field: `Ok(None)` when absent or null, 400 when of another type.
fn string_field<'a>(m: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, Failure> {
    match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(Failure::bad(format!("`{name}` must be a string."))),
    }
}

/// The connection token a request carries: `Authorization: Bearer <token>`, or the raw
/// header value (the original accepts both).
fn presented_token(req: &Request<Bytes>) -> Option<&str> {
    let v = req
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let token = v.strip_prefix("Bearer ").map_or(v, str::trim);
    (!token.is_empty()).then_some(token)
}

/// Whether a chosen connection token is fit: 32–256 printable ASCII characters, no spaces.
fn check_chosen(token: &str) -> Result<(), String> {
    let n = token.chars().count();
    if !(MIN_TOKEN_CHARS..=MAX_TOKEN_CHARS).contains(&n) {
        return Err(format!(
            "`connection_token` must have {MIN_TOKEN_CHARS}–{MAX_TOKEN_CHARS} characters \
             (send \"\" to draw one)."
        ));
    }
    if !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(
            "`connection_token` may hold printable ASCII characters only, no spaces.".to_owned(),
        );
    }
    Ok(())
}

/// How the extension and the admin see an account's health (no secrets).
fn health(a: &Account, last_used_ms: Option<u64>, now_ms: u64) -> Value {
    json!({
        "id": a.id,
        "email": a.email,
        "is_active": a.active,
        "status": a.state_label(),
        "status_reason": a.status_reason,
        "status_at": a.status_at_ms.map(util::format_rfc3339),
        "needs_refresh": a.needs_refresh(now_ms),
        "at_expires": a.at_expires_ms.map(util::format_rfc3339),
        "last_used_at": last_used_ms.filter(|ms| *ms > 0).map(util::format_rfc3339),
        // The original's protocol-refresh fields: this gateway refreshes by session only.
        "protocol_mode": "session",
        "auto_refresh_enabled": false,
        "refresh_interval_minutes": Value::Null,
        "last_st_refresh_at": Value::Null,
        "last_st_refresh_result": Value::Null,
        "credits": a.credits,
    })
}

/// The answer to a failed session exchange: 400 when Google refused the ST (the
/// extension then drops that cookie), 502 when Google could not be asked.
fn exchange_failed(e: &FlowError) -> Failure {
    if e.is_auth() {
        Failure::bad(
            "Invalid session token: it does not yield an access token (signed out or expired).",
        )
    } else {
        Failure::Refused(
            StatusCode::BAD_GATEWAY,
            format!("The session token could not be checked: {e}"),
        )
    }
}

impl AppInner {
    /// `GET`/`POST /api/plugin/config`, with an admin session.
    pub(super) async fn plugin_config(
        &self,
        method: &Method,
        req: &Request<Bytes>,
    ) -> Result<Response<Body>, ApiError> {
        self.plugin_config_inner(method, req)
            .await
            .or_else(Failure::answer)
    }

    async fn plugin_config_inner(&self, method: &Method, req: &Request<Bytes>) -> Outcome {
        let store = &*self.deps.sessions;
        let mut config = load(store)
            .await
            .map_err(|_| ApiError::storage_unavailable())?;
        if method == Method::POST {
            let body = object(req.body(), false)?;
            let chosen = string_field(&body, "connection_token")?.map(str::trim);
            let auto_enable = match body.get("auto_enable_on_update") {
                None | Some(Value::Null) => None,
                Some(Value::Bool(b)) => Some(*b),
                Some(_) => {
                    return Err(Failure::bad(
                        "`auto_enable_on_update` must be true or false.",
                    ))
                }
            };
            let token = match (chosen, config.connection_token.take()) {
                // Absent: kept, or drawn if there is none yet; "": drawn anew.
                (None, Some(current)) => current,
                (None | Some(""), _) => Secret::new(util::secret_hex(TOKEN_BYTES)?),
                (Some(t), _) => {
                    check_chosen(t).map_err(Failure::bad)?;
                    Secret::new(t)
                }
            };
            config.connection_token = Some(token);
            if let Some(b) = auto_enable {
                config.auto_enable_on_update = b;
            }
            config.updated_at_ms = self.deps.clock.now_ms();
            save(store, &config)
                .await
                .map_err(|_| ApiError::storage_unavailable())?;
        }
        let token = config
            .connection_token
            .as_ref()
            .map_or("", Secret::expose)
            .to_owned();
        let view = json!({
            "connection_token": token,
            "connection_url": format!("{}/api/plugin/update-token", self.public_base(req)),
            "auto_enable_on_update": config.auto_enable_on_update,
        });
        if method == Method::POST {
            // The extension reads `connection_token` at the top level of this answer.
            return Ok(ok(json!({
                "success": true,
                "message": "Plugin settings saved.",
                "connection_token": token,
                "auto_enable_on_update": config.auto_enable_on_update,
                "config": view,
            })));
        }
        Ok(ok(json!({"success": true, "config": view})))
    }

    /// `POST /api/plugin/update-token` and `POST /api/plugin/check-tokens`, with the
    /// connection token.
    pub(super) async fn plugin_push_route(
        &self,
        method: &Method,
        action: &str,
        req: &Request<Bytes>,
    ) -> Result<Response<Body>, ApiError> {
        if method != Method::POST {
            return Err(ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("{method} is not allowed here; use POST."),
            ));
        }
        self.plugin_push_inner(action, req)
            .await
            .or_else(Failure::answer)
    }

    async fn plugin_push_inner(&self, action: &str, req: &Request<Bytes>) -> Outcome {
        let config = load(&*self.deps.sessions)
            .await
            .map_err(|_| ApiError::storage_unavailable())?;
        let authorized = match (&config.connection_token, presented_token(req)) {
            (Some(expected), Some(given)) => expected.ct_eq(given),
            _ => false,
        };
        if !authorized {
            return Err(Failure::Refused(
                StatusCode::UNAUTHORIZED,
                "Invalid connection token (see GET /api/plugin/config).".to_owned(),
            ));
        }
        match action {
            "update-token" => {
                self.plugin_update_token(req, config.auto_enable_on_update)
                    .await
            }
            _ => self.plugin_check_tokens(req).await,
        }
    }

    async fn plugin_update_token(&self, req: &Request<Bytes>, auto_enable: bool) -> Outcome {
        let body = object(req.body(), false)?;
        let st = match string_field(&body, "session_token")? {
            Some(st) if !st.trim().is_empty() => Secret::new(st.trim()),
            _ => return Err(Failure::bad("Missing session_token.")),
        };
        let pushed = match self.pool.push_session(st, auto_enable).await {
            Ok(p) => p,
            Err(PoolError::Rejected(e)) if e.endpoint() == "session" => {
                return Err(exchange_failed(&e))
            }
            Err(PoolError::Rejected(e)) => {
                return Err(Failure::Refused(
                    StatusCode::BAD_GATEWAY,
                    format!("Google failed while the account was set up: {e}"),
                ))
            }
            Err(PoolError::Invalid(m)) => return Err(Failure::bad(m)),
            Err(PoolError::Duplicate(holder)) => {
                return Err(Failure::Refused(
                    StatusCode::CONFLICT,
                    format!(
                    "Another account ({holder}) holds this session token under a different email."
                ),
                ))
            }
            Err(e) => return Err(e.into()),
        };
        Ok(ok(pushed_view(&pushed)))
    }

    async fn plugin_check_tokens(&self, req: &Request<Bytes>) -> Outcome {
        let body = object(req.body(), true)?;
        let not_a_list = || Failure::bad("`emails` must be a list of strings.");
        let wanted: Option<Vec<String>> = match body.get("emails") {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => Some(
                items
                    .iter()
                    .map(|item| item.as_str().map(|e| e.trim().to_lowercase()))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(not_a_list)?,
            ),
            Some(_) => return Err(not_a_list()),
        };
        let accounts: Vec<Account> = self
            .pool
            .list()
            .await
            .map_err(PoolError::from)?
            .into_iter()
            .filter(|a| {
                wanted
                    .as_ref()
                    .is_none_or(|w| w.contains(&a.email.to_lowercase()))
            })
            .collect();
        let statuses =
            futures::future::join_all(accounts.iter().map(|a| self.pool.status(&a.id))).await;
        let now = self.deps.clock.now_ms();
        let tokens: Vec<Value> = accounts
            .iter()
            .zip(statuses)
            .map(|(a, s)| health(a, s.ok().map(|s| s.last_used_ms), now))
            .collect();
        Ok(ok(json!({"success": true, "tokens": tokens})))
    }

    /// `POST /api/tokens/st2at`, with an admin session: what a session token is worth,
    /// without adding it.
    pub(super) async fn st_to_at(&self, req: &Request<Bytes>) -> Result<Response<Body>, ApiError> {
        self.st_to_at_inner(req).await.or_else(Failure::answer)
    }

    async fn st_to_at_inner(&self, req: &Request<Bytes>) -> Outcome {
        let body = object(req.body(), false)?;
        let st = match string_field(&body, "st")? {
            Some(st) if !st.trim().is_empty() => Secret::new(st.trim()),
            _ => return Err(Failure::bad("Missing st.")),
        };
        let session = self
            .pool
            .flow
            .session(&st)
            .await
            .map_err(|e| exchange_failed(&e))?;
        Ok(ok(json!({
            "success": true,
            "message": "ST converted to AT successfully",
            "email": session.email,
            "name": session.name,
            "expires": session.expires_ms.map(util::format_rfc3339),
        })))
    }
}

/// The answer to a push, in the original's shape (`action`, `token_id`, a message naming
/// the email, which the extension reads back), with the account's resulting status.
fn pushed_view(p: &Pushed) -> Value {
    let a = &p.account;
    let mut v = if p.added {
        json!({
            "success": true,
            "message": format!("Token added for {}", a.email),
            "action": "added",
        })
    } else if p.enabled {
        json!({
            "success": true,
            "message": format!("Token updated and auto-enabled for {}", a.email),
            "action": "updated",
            "auto_enabled": true,
        })
    } else {
        json!({
            "success": true,
            "message": format!("Token updated for {}", a.email),
            "action": "updated",
            "auto_enabled": false,
        })
    };
    if let Some(m) = v.as_object_mut() {
        m.insert("token_id".into(), json!(a.id));
        m.insert("email".into(), json!(a.email));
        m.insert("status".into(), json!(a.state_label()));
        m.insert("status_reason".into(), json!(a.status_reason));
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chosen_tokens_are_long_and_printable() {
        assert!(check_chosen(&"a".repeat(MIN_TOKEN_CHARS)).is_ok());
        assert!(check_chosen(&"a".repeat(MIN_TOKEN_CHARS - 1)).is_err());
        assert!(check_chosen(&"a".repeat(MAX_TOKEN_CHARS + 1)).is_err());
        assert!(check_chosen(&format!("{} b", "a".repeat(40))).is_err());
        assert!(check_chosen(&format!("{}é", "a".repeat(40))).is_err());
    }

    #[test]
    fn stored_settings_default_to_auto_enable() {
        let c: PluginConfig = serde_json::from_str("{}").unwrap();
        assert!(c.auto_enable_on_update && c.connection_token.is_none());
    }
}
