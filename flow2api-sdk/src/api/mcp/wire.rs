//! The JSON-RPC 2.0 and MCP shapes the endpoint reads and writes, named as the MCP schema
//! names them (`InitializeResult`, `CallToolResult`, …) so a reader can grep the spec.
//! Incoming messages are parsed tolerantly (unknown fields ignored); what goes out is exactly
//! the schema's camelCase.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// JSON-RPC: the body is not JSON.
pub(crate) const PARSE_ERROR: i64 = -32700;
/// JSON-RPC: the body is JSON but not a valid message (or a batch, which we refuse).
pub(crate) const INVALID_REQUEST: i64 = -32600;
/// JSON-RPC: no such method.
pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
/// JSON-RPC: the method's params are wrong (an unknown tool, bad arguments).
pub(crate) const INVALID_PARAMS: i64 = -32602;

/// One message a client POSTs, before it is told apart (request, notification, response).
#[derive(Debug, Deserialize)]
struct RawMessage {
    jsonrpc: String,
    /// Absent for a notification; `Some(Value::Null)` for an explicit `null`, which is
    /// not a valid MCP request id.
    #[serde(default, deserialize_with = "present")]
    id: Option<Value>,
    method: Option<String>,
    params: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    result: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    error: Option<Value>,
}

/// A field that is there, even as `null` (serde's `Option` would make `null` absent).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// A message told apart.
#[derive(Debug, PartialEq)]
pub(crate) enum Incoming {
    /// A request: it gets a response with its `id`.
    Request {
        id: Value,
        method: String,
        params: Option<Value>,
    },
    /// A notification (`notifications/initialized`, `notifications/cancelled`, …): no answer
    /// but `202 Accepted`.
    Notification,
    /// A response to a request of ours (we send none; accepted and dropped all the same).
    Response,
}

/// A JSON-RPC `error` object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct RpcError {
    pub(crate) code: i64,
    pub(crate) message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) data: Option<Value>,
}

impl RpcError {
    pub(crate) fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            data: None,
        }
    }

    pub(crate) fn data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
}

/// Reads one POSTed message.
///
/// # Errors
/// `-32700` for a body that is not JSON, `-32600` for JSON that is not one JSON-RPC 2.0
/// message (batches included: MCP dropped them in 2025-06-18, and a stateless server would
/// have to answer each member anyway).
pub(crate) fn parse(body: &[u8]) -> Result<Incoming, RpcError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        // Read it, so that a malformed array is still a parse error.
        serde_json::from_slice::<serde::de::IgnoredAny>(body)
            .map_err(|e| RpcError::new(PARSE_ERROR, format!("Parse error: {e}")))?;
        return Err(RpcError::new(
            INVALID_REQUEST,
            "JSON-RPC batches are not supported: send one message per POST.",
        ));
    }
    let raw: RawMessage = serde_json::from_slice(body).map_err(|e| {
        if e.classify() == serde_json::error::Category::Data {
            RpcError::new(INVALID_REQUEST, format!("Not a JSON-RPC 2.0 message: {e}"))
        } else {
            RpcError::new(PARSE_ERROR, format!("Parse error: {e}"))
        }
    })?;
    if raw.jsonrpc != "2.0" {
        return Err(RpcError::new(INVALID_REQUEST, "`jsonrpc` must be \"2.0\"."));
    }
    match (raw.method, raw.id) {
        (Some(method), Some(id)) => {
            if !(id.is_string() || id.is_i64() || id.is_u64()) {
                return Err(RpcError::new(
                    INVALID_REQUEST,
                    "A request `id` must be a string or an integer.",
                ));
            }
            if raw.params.as_ref().is_some_and(|p| !p.is_object()) {
                return Err(RpcError::new(
                    INVALID_REQUEST,
                    "`params` must be an object.",
                ));
            }
            Ok(Incoming::Request {
                id,
                method,
                params: raw.params,
            })
        }
        (Some(_), None) => Ok(Incoming::Notification),
        (None, Some(_)) if raw.result.is_some() || raw.error.is_some() => Ok(Incoming::Response),
        _ => Err(RpcError::new(
            INVALID_REQUEST,
            "Not a JSON-RPC request, notification or response: `method` is missing.",
        )),
    }
}

/// A successful response.
#[derive(Debug, Serialize)]
pub(crate) struct RpcResponse<'a, T: Serialize> {
    pub(crate) jsonrpc: &'static str,
    pub(crate) id: &'a Value,
    pub(crate) result: T,
}

/// An error response (`id` is `null` when the request's own could not be read).
#[derive(Debug, Serialize)]
pub(crate) struct RpcErrorResponse<'a, E: Serialize> {
    pub(crate) jsonrpc: &'static str,
    pub(crate) id: &'a Value,
    pub(crate) error: E,
}

/// A notification the server sends (inside an SSE response).
#[derive(Debug, Serialize)]
pub(crate) struct RpcNotification<T: Serialize> {
    pub(crate) jsonrpc: &'static str,
    pub(crate) method: &'static str,
    pub(crate) params: T,
}

/// `initialize` params: only the version matters to a server with no session.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InitializeParams {
    pub(crate) protocol_version: String,
}

/// `tools/call` params.
#[derive(Debug, Deserialize)]
pub(crate) struct CallToolParams {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) arguments: Option<Value>,
    #[serde(rename = "_meta", default)]
    pub(crate) meta: Option<RequestMeta>,
}

/// A request's `_meta`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RequestMeta {
    /// A string or an integer: echoed in each `notifications/progress`.
    #[serde(default)]
    pub(crate) progress_token: Option<Value>,
}

/// `InitializeResult`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct InitializeResult {
    pub(crate) protocol_version: &'static str,
    pub(crate) capabilities: ServerCapabilities,
    pub(crate) server_info: Implementation,
    pub(crate) instructions: &'static str,
}

/// `ServerCapabilities`: tools only.
#[derive(Debug, Serialize)]
pub(crate) struct ServerCapabilities {
    pub(crate) tools: ToolsCapability,
}

/// `ServerCapabilities.tools`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ToolsCapability {
    pub(crate) list_changed: bool,
}

/// `Implementation` (`serverInfo`).
#[derive(Debug, Serialize)]
pub(crate) struct Implementation {
    pub(crate) name: &'static str,
    pub(crate) title: &'static str,
    pub(crate) version: &'static str,
}

/// `Tool`, as `tools/list` lists it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Tool {
    pub(crate) name: &'static str,
    pub(crate) title: &'static str,
    pub(crate) description: &'static str,
    pub(crate) input_schema: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) output_schema: Option<Value>,
    pub(crate) annotations: ToolAnnotations,
}

/// `ToolAnnotations`: hints for the client's UI and its approval prompts.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ToolAnnotations {
    pub(crate) read_only_hint: bool,
    pub(crate) open_world_hint: bool,
}

/// `ListToolsResult` (one page: there are four tools).
#[derive(Debug, Serialize)]
pub(crate) struct ListToolsResult {
    pub(crate) tools: Vec<Tool>,
}

/// `CallToolResult`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct CallToolResult {
    pub(crate) content: Vec<Content>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) structured_content: Option<Value>,
    pub(crate) is_error: bool,
}

impl CallToolResult {
    /// A tool that ran and failed: the text tells the model why (MCP's convention, so that
    /// the model sees it rather than the client's error handler).
    pub(crate) fn failed(text: impl Into<String>) -> Self {
        Self {
            content: vec![Content::Text { text: text.into() }],
            structured_content: None,
            is_error: true,
        }
    }
}

/// One content block of a tool result.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Content {
    /// `TextContent`.
    Text { text: String },
    /// `ImageContent`: base64 bytes.
    Image {
        data: String,
        #[serde(rename = "mimeType")]
        mime_type: &'static str,
    },
    /// `ResourceLink` (2025-06-18 and later).
    ResourceLink {
        uri: String,
        name: String,
        #[serde(rename = "mimeType", skip_serializing_if = "Option::is_none")]
        mime_type: Option<&'static str>,
    },
}

/// `ProgressNotification` params.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProgressParams<'a> {
    pub(crate) progress_token: &'a Value,
    pub(crate) progress: u64,
    pub(crate) message: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tells_messages_apart() {
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#),
            Ok(Incoming::Request {
                id: json!(1),
                method: "ping".into(),
                params: None
            })
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#),
            Ok(Incoming::Notification)
        );
        assert_eq!(
            parse(br#"{"jsonrpc":"2.0","id":"a","result":{}}"#),
            Ok(Incoming::Response)
        );
    }

    #[test]
    fn refuses_what_is_not_one_message() {
        let code = |body: &[u8]| parse(body).unwrap_err().code;
        assert_eq!(code(b"{not json"), PARSE_ERROR);
        assert_eq!(code(b""), PARSE_ERROR);
        assert_eq!(code(b"[{\"jsonrpc\":\"2.0\""), PARSE_ERROR);
        assert_eq!(
            code(br#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#),
            INVALID_REQUEST
        );
        assert_eq!(code(br#""ping""#), INVALID_REQUEST);
        assert_eq!(code(br#"{"id":1,"method":"ping"}"#), INVALID_REQUEST);
        assert_eq!(
            code(br#"{"jsonrpc":"1.0","id":1,"method":"ping"}"#),
            INVALID_REQUEST
        );
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#),
            INVALID_REQUEST
        );
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","id":1.5,"method":"ping"}"#),
            INVALID_REQUEST
        );
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","id":1,"method":7}"#),
            INVALID_REQUEST
        );
        assert_eq!(
            code(br#"{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}"#),
            INVALID_REQUEST
        );
        assert_eq!(code(br#"{"jsonrpc":"2.0","id":1}"#), INVALID_REQUEST);
    }

    #[test]
    fn content_blocks_use_the_schema_names() {
        let v = serde_json::to_value(CallToolResult {
            content: vec![
                Content::Image {
                    data: "AA==".into(),
                    mime_type: "image/png",
                },
                Content::ResourceLink {
                    uri: "http://x/media/1".into(),
                    name: "image".into(),
                    mime_type: None,
                },
            ],
            structured_content: None,
            is_error: false,
        })
        .unwrap();
        assert_eq!(
            v,
            json!({"content": [
                {"type": "image", "data": "AA==", "mimeType": "image/png"},
                {"type": "resource_link", "uri": "http://x/media/1", "name": "image"},
            ], "isError": false})
        );
    }
}
