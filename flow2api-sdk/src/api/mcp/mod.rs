//! The MCP endpoint, `/mcp`: Model Context Protocol over Streamable HTTP, so that an MCP
//! client (an agent, Claude Desktop through a bridge, the `mcp` Python SDK) can generate
//! images and videos as tools. Tools: `generate_image`, `generate_video`, `get_video`,
//! `list_models` (see [`tools`]); they run the same pipelines as the OpenAI and Gemini routes.
//!
//! **Stateless.** The server issues no `Mcp-Session-Id`: every POST carries one JSON-RPC
//! message and is answered on its own, so nothing about a client is kept between requests and
//! no Durable Object is needed at the edge (a video job's state lives where every job's does).
//! `initialize` answers with the client's protocol version when it is one we speak
//! (2024-11-05, 2025-03-26, 2025-06-18, 2025-11-25), else our latest; later requests name
//! theirs in `MCP-Protocol-Version` (absent: 2025-03-26, as the transport says), and an
//! unknown one is refused with 400.
//!
//! **Transport.** `POST /mcp` with a request: `application/json`, except a `tools/call` of
//! `generate_video` whose `_meta.progressToken` is set, which answers `text/event-stream`:
//! `notifications/progress` while the job runs (`: keep-alive` comments between), then the
//! response as the last event. With a notification or a response: `202 Accepted`, no body.
//! `GET /mcp` (a standalone server stream) and `DELETE /mcp` (ending a session) are `405`:
//! there is nothing to push and no session to end. The key is the API key, as a Bearer token
//! (or any form the other routes take); without one, `401` with `WWW-Authenticate: Bearer`.
//!
//! **Errors.** A body that is not JSON is `400` with `-32700`; JSON that is not one JSON-RPC
//! message (batches included: 2025-06-18 dropped them) is `400` with `-32600`. A well-formed
//! request is answered `200` even when it fails, as JSON-RPC intends and as clients of every
//! SDK read it: an unknown method `-32601`, an unknown tool or bad arguments `-32602`. A tool
//! that ran and failed (upstream error, content policy, no account, quota) is a result with
//! `isError: true` and the reason as text, so that the model reads it.

mod tools;
mod wire;

use std::sync::Arc;

use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use serde::Serialize;
use serde_json::Value;

use crate::seams::Bytes;

use super::caller::Caller;
use super::{json_response, AppInner, Body};
use wire::Incoming;
pub(crate) use wire::RpcError;

/// The protocol revisions the endpoint speaks, oldest first.
const VERSIONS: [&str; 4] = ["2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25"];
/// What a request without `MCP-Protocol-Version` is taken to speak (the transport's rule).
const DEFAULT_VERSION: &str = "2025-03-26";

/// What the client reads first, to know when to use the tools.
const INSTRUCTIONS: &str =
    "Generates images (Gemini / Imagen) and videos (Veo) through Google Flow. \
generate_image returns the image itself and a link. generate_video starts a job and returns its id \
at once (or, when the call carries a progress token, reports progress until the video is done); \
get_video tells a job's status and, once it is completed, the link to the MP4. list_models names \
the models this key may use.";

/// A protocol revision the client speaks, for the features that depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Version(usize);

impl Version {
    fn of(name: &str) -> Option<Self> {
        VERSIONS.iter().position(|v| *v == name).map(Self)
    }

    /// Resource links in tool results came with 2025-06-18.
    pub(crate) fn has_resource_links(self) -> bool {
        self >= Self(2)
    }
}

/// `/mcp`, any method.
pub(crate) async fn handle(
    inner: Arc<AppInner>,
    req: Request<Bytes>,
    caller: Caller,
) -> Response<Body> {
    if req.method() != Method::POST {
        let mut resp = rpc_error_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &Value::Null,
            RpcError::new(
                wire::INVALID_REQUEST,
                format!(
                    "{} is not allowed: this server is stateless and offers no stream of its own; POST one JSON-RPC message at a time.",
                    req.method()
                ),
            ),
        );
        resp.headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return resp;
    }
    let version = match version_of(req.headers()) {
        Ok(v) => v,
        Err(e) => return rpc_error_response(StatusCode::BAD_REQUEST, &Value::Null, e),
    };
    let (id, method, params) = match wire::parse(req.body()) {
        Ok(Incoming::Request { id, method, params }) => (id, method, params),
        Ok(Incoming::Notification | Incoming::Response) => {
            return Response::builder()
                .status(StatusCode::ACCEPTED)
                .body(Body::empty())
                .unwrap_or_else(|_| Response::new(Body::empty()))
        }
        Err(e) => return rpc_error_response(StatusCode::BAD_REQUEST, &Value::Null, e),
    };
    let params = params.unwrap_or_else(|| Value::Object(Default::default()));
    let outcome = match method.as_str() {
        "initialize" => initialize(params).map(Answer::json),
        "ping" => Ok(Answer::json(serde_json::json!({}))),
        "tools/list" => Ok(Answer::json(wire::ListToolsResult {
            tools: tools::list(),
        })),
        "tools/call" => {
            let call = Call {
                // Before `inner` moves in (fields are evaluated in order).
                base: inner.public_base(&req),
                inner,
                caller,
                version,
                accepts_sse: accepts_sse(req.headers()),
                id: id.clone(),
            };
            tools::call(call, params).await
        }
        other => Err(RpcError::new(
            wire::METHOD_NOT_FOUND,
            format!("Method not found: `{other}`."),
        )),
    };
    match outcome {
        Ok(Answer::Json(result)) => rpc_response(&id, &result),
        Ok(Answer::Stream(resp)) => resp,
        Err(e) => rpc_error_response(StatusCode::OK, &id, e),
    }
}

/// One `tools/call` and what it needs.
pub(crate) struct Call {
    pub(crate) inner: Arc<AppInner>,
    pub(crate) caller: Caller,
    /// Base URL of the gateway's own links.
    pub(crate) base: String,
    pub(crate) version: Version,
    /// Whether the client takes an SSE response (it must, but one that did not say so gets
    /// JSON).
    pub(crate) accepts_sse: bool,
    /// The request's id, for a streamed response.
    pub(crate) id: Value,
}

/// How a request is answered.
pub(crate) enum Answer {
    /// One JSON-RPC response with this result.
    Json(Value),
    /// A whole HTTP response (an event stream).
    Stream(Response<Body>),
}

impl Answer {
    fn json(result: impl Serialize) -> Self {
        Self::Json(serde_json::to_value(result).unwrap_or(Value::Null))
    }
}

/// `initialize`: our capabilities, and the version both sides will speak.
fn initialize(params: Value) -> Result<wire::InitializeResult, RpcError> {
    let p: wire::InitializeParams = serde_json::from_value(params).map_err(|e| {
        RpcError::new(
            wire::INVALID_PARAMS,
            format!("Invalid initialize params: {e}"),
        )
    })?;
    let protocol_version = VERSIONS
        .iter()
        .find(|v| **v == p.protocol_version)
        .unwrap_or(&VERSIONS[VERSIONS.len() - 1]);
    Ok(wire::InitializeResult {
        protocol_version,
        capabilities: wire::ServerCapabilities {
            tools: wire::ToolsCapability {
                list_changed: false,
            },
        },
        server_info: wire::Implementation {
            name: "flow2api",
            title: "Flow2API",
            version: env!("CARGO_PKG_VERSION"),
        },
        instructions: INSTRUCTIONS,
    })
}

/// The revision a request speaks, from `MCP-Protocol-Version`.
fn version_of(headers: &HeaderMap) -> Result<Version, RpcError> {
    let Some(given) = headers.get("mcp-protocol-version") else {
        return Ok(Version::of(DEFAULT_VERSION).unwrap_or(Version(0)));
    };
    let given = given.to_str().unwrap_or("").trim();
    Version::of(given).ok_or_else(|| {
        RpcError::new(
            wire::INVALID_REQUEST,
            format!("Unsupported MCP-Protocol-Version `{given}`."),
        )
        .data(serde_json::json!({"supported": VERSIONS, "requested": given}))
    })
}

/// Whether `Accept` allows an event stream (no `Accept` allows anything).
fn accepts_sse(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::ACCEPT).iter().peekable();
    if values.peek().is_none() {
        return true;
    }
    values.filter_map(|v| v.to_str().ok()).any(|v| {
        v.split(',').any(|t| {
            let t = t.split(';').next().unwrap_or("").trim();
            t.eq_ignore_ascii_case("text/event-stream") || t == "*/*" || t == "text/*"
        })
    })
}

/// The JSON text of a response with `result`.
pub(crate) fn response_json(id: &Value, result: &impl Serialize) -> String {
    serde_json::to_string(&wire::RpcResponse {
        jsonrpc: "2.0",
        id,
        result,
    })
    .unwrap_or_default()
}

fn rpc_response(id: &Value, result: &Value) -> Response<Body> {
    json_response(StatusCode::OK, Bytes::from(response_json(id, result)))
}

fn rpc_error_response(status: StatusCode, id: &Value, error: RpcError) -> Response<Body> {
    let body = serde_json::to_string(&wire::RpcErrorResponse {
        jsonrpc: "2.0",
        id,
        error,
    })
    .unwrap_or_default();
    json_response(status, Bytes::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        let mut h = HeaderMap::new();
        assert_eq!(version_of(&h).unwrap(), Version(1));
        h.insert(
            "mcp-protocol-version",
            HeaderValue::from_static("2025-06-18"),
        );
        assert!(version_of(&h).unwrap().has_resource_links());
        h.insert(
            "mcp-protocol-version",
            HeaderValue::from_static("2026-07-28"),
        );
        assert_eq!(version_of(&h).unwrap_err().code, wire::INVALID_REQUEST);
        let r = initialize(serde_json::json!({"protocolVersion": "2024-11-05"})).unwrap();
        assert_eq!(r.protocol_version, "2024-11-05");
        let r = initialize(serde_json::json!({"protocolVersion": "1999-01-01"})).unwrap();
        assert_eq!(r.protocol_version, "2025-11-25");
        assert_eq!(
            initialize(serde_json::json!({})).unwrap_err().code,
            wire::INVALID_PARAMS
        );
    }

    #[test]
    fn accept() {
        let mut h = HeaderMap::new();
        assert!(accepts_sse(&h));
        h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!accepts_sse(&h));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        assert!(accepts_sse(&h));
    }
}
