//! Admin routes of tenant keys (`/api/keys…`, see [`crate::tenants`]): create (the key shown
//! once), list, change, revoke, and usage per day.

use http::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::seams::Bytes;
use crate::tenants::{KeyChange, NewKey, Tenant, MAX_USAGE_DAYS};
use crate::util;

use super::error::ApiError;
use super::{json_response, AppInner, Body};

/// A key as the admin routes show it: never the key itself, nor its hash.
fn view(t: &Tenant) -> Value {
    json!({
        "id": t.id,
        "object": "api_key",
        "name": t.name,
        "prefix": t.prefix,
        "quota": t.quota,
        "models": t.models,
        "created_at": util::format_rfc3339(t.created_at_ms),
        "updated_at": util::format_rfc3339(t.updated_at_ms),
    })
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}")))
}

fn reply(status: StatusCode, v: &Value) -> Response<Body> {
    json_response(status, Bytes::from(v.to_string()))
}

impl AppInner {
    /// `/api/keys…` (the segments after `keys`), behind the admin session.
    pub(super) async fn keys_route(
        &self,
        method: &Method,
        rest: &[&str],
        req: &Request<Bytes>,
    ) -> Result<Response<Body>, ApiError> {
        let known = matches!(
            (method, rest),
            (&Method::GET | &Method::POST, [])
                | (
                    &Method::GET | &Method::PUT | &Method::PATCH | &Method::DELETE,
                    [_]
                )
                | (&Method::GET, [_, "usage"])
        );
        if !known {
            return Err(ApiError::not_found(format!(
                "No route for {method} /api/keys/{}",
                rest.join("/")
            )));
        }
        self.require_admin(req).await?;
        let tenants = &self.tenants;
        match (method, rest) {
            (&Method::POST, []) => {
                let new: NewKey = parse(req.body())?;
                let created = tenants.create(new).await?;
                let mut v = view(&created.tenant);
                // The one time the key is shown.
                v["key"] = json!(created.key.expose());
                Ok(reply(StatusCode::CREATED, &v))
            }
            (&Method::GET, []) => {
                let data: Vec<Value> = tenants.list().await?.iter().map(view).collect();
                Ok(reply(
                    StatusCode::OK,
                    &json!({"object": "list", "data": data}),
                ))
            }
            (&Method::GET, [id]) => Ok(reply(StatusCode::OK, &view(&tenants.get(id).await?))),
            (&Method::PUT | &Method::PATCH, [id]) => {
                let change: KeyChange = parse(req.body())?;
                let t = tenants.update(id, change).await?;
                Ok(reply(StatusCode::OK, &view(&t)))
            }
            (&Method::DELETE, [id]) => {
                tenants.delete(id).await?;
                Ok(reply(
                    StatusCode::OK,
                    &json!({"id": id, "object": "api_key.deleted", "deleted": true}),
                ))
            }
            (_, [id, "usage"]) => {
                let days = tenants.usage(id).await?;
                Ok(reply(
                    StatusCode::OK,
                    &json!({"id": id, "period_days": MAX_USAGE_DAYS, "days": days}),
                ))
            }
            _ => Err(ApiError::not_found("No such admin route.")),
        }
    }
}
