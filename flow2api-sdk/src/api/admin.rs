//! Admin routes: login, and the account list (add by ST, list masked, delete).

use std::time::Duration;

use http::{header, Method, Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::Digest;

use crate::pool::Account;
use crate::seams::Bytes;
use crate::secret::Secret;
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

impl AppInner {
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
        let token = util::random_hex(32);
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
            (&Method::GET | &Method::POST, ["tokens"]) | (&Method::DELETE, ["tokens", _])
        );
        if !known {
            return Err(ApiError::not_found(format!(
                "No route for {method} /api/{}",
                segments.join("/")
            )));
        }
        self.require_admin(req).await?;
        match (method, segments) {
            (&Method::GET, ["tokens"]) => {
                let accounts = self
                    .pool
                    .list()
                    .await
                    .map_err(|e| ApiError::from(crate::pool::PoolError::from(e)))?;
                let mut out = Vec::with_capacity(accounts.len());
                for a in accounts.iter().rev() {
                    let in_flight = self.pool.in_flight(&a.id).await.unwrap_or(0);
                    out.push(self.account_view(a, in_flight));
                }
                Ok(ok(Value::Array(out)))
            }
            (&Method::POST, ["tokens"]) => {
                let body: AddTokenBody = parse_json(req.body())?;
                if body.st.trim().is_empty() {
                    return Err(ApiError::bad_request("`st` must not be empty.").param("st"));
                }
                let account = self.pool.add(Secret::new(body.st)).await?;
                Ok(ok(json!({
                    "success": true,
                    "message": "Account added.",
                    "token": self.account_view(&account, 0),
                })))
            }
            (&Method::DELETE, ["tokens", id]) => {
                self.pool.delete(id).await?;
                Ok(ok(json!({"success": true, "message": "Account deleted."})))
            }
            _ => Err(ApiError::not_found("No such admin route.")),
        }
    }

    /// An account as the admin API shows it: secrets masked.
    fn account_view(&self, a: &Account, in_flight: u32) -> Value {
        let now = self.deps.clock.now_ms();
        let status = if a.active {
            "active"
        } else if a
            .status_reason
            .as_deref()
            .is_some_and(|r| r.starts_with("expired"))
        {
            "expired"
        } else {
            "disabled"
        };
        json!({
            "id": a.id,
            "email": a.email,
            "name": a.name,
            "st": a.st.masked(),
            "at": a.at.as_ref().map(Secret::masked),
            "at_expires": a.at_expires_ms.map(util::format_rfc3339),
            "at_expired": a.at_expires_ms.is_some_and(|e| e <= now),
            "at_expiring_within_1h": a.needs_refresh(now),
            "credits": a.credits,
            "user_paygate_tier": a.tier.as_paygate(),
            "tier": a.tier.label(),
            "projects": a.projects,
            "is_active": a.active,
            "status": status,
            "status_reason": a.status_reason,
            "image_enabled": a.image_enabled,
            "video_enabled": a.video_enabled,
            "image_concurrency": a.image_concurrency.map_or(-1, i64::from),
            "video_concurrency": a.video_concurrency.map_or(-1, i64::from),
            "in_flight": in_flight,
            "created_at": util::format_rfc3339(a.created_at_ms),
        })
    }
}
