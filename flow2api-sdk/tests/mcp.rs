//! The MCP endpoint (`/mcp`) in process, through `App::handle` against FakeFlow: the
//! handshake, the tool list, each tool, progress over SSE, and the protocol's edges (what is
//! refused with 4xx, what is a JSON-RPC error at 200, what is a tool result with `isError`).

mod common;

use base64::Engine as _;
use common::*;
use flow2api_sdk::testing::{Endpoint, Fault};
use serde_json::{json, Value};

const ULTRA: &str = "PAYGATE_TIER_TWO";

async fn setup() -> Harness {
    harness_with(&[("POLL_INTERVAL", "0.01")], Some(ULTRA)).await
}

/// POSTs one message to `/mcp` with the key and the headers an MCP client sends.
async fn post(h: &Harness, body: &str, extra: &[(&str, &str)]) -> Reply {
    let auth = format!("Bearer {API_KEY}");
    let mut headers = vec![
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
        ("accept", "application/json, text/event-stream"),
    ];
    if !extra.iter().any(|(k, _)| *k == "mcp-protocol-version") {
        headers.push(("mcp-protocol-version", "2025-11-25"));
    }
    headers.extend_from_slice(extra);
    h.raw(
        "POST",
        "/mcp",
        &headers,
        bytes::Bytes::from(body.to_owned()),
    )
    .await
}

/// A request's result (asserting a 200 JSON success).
async fn request(h: &Harness, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    let r = post(h, &body.to_string(), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.headers["content-type"], "application/json");
    let v = r.json();
    assert_eq!(v["id"], 1, "{v}");
    assert!(v.get("error").is_none(), "{v}");
    v["result"].clone()
}

/// A request's JSON-RPC error (asserting the HTTP status).
async fn error(h: &Harness, body: &str, status: u16) -> Value {
    let r = post(h, body, &[]).await;
    assert_eq!(r.status, status, "{}", r.text());
    let v = r.json();
    assert_eq!(v["jsonrpc"], "2.0");
    v["error"].clone()
}

async fn call(h: &Harness, name: &str, arguments: Value) -> Value {
    request(
        h,
        "tools/call",
        json!({"name": name, "arguments": arguments}),
    )
    .await
}

#[tokio::test(start_paused = true)]
async fn handshake_and_tool_list() {
    let h = setup().await;
    let init = request(
        &h,
        "initialize",
        json!({"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
    )
    .await;
    assert_eq!(init["protocolVersion"], "2025-06-18");
    assert_eq!(init["capabilities"]["tools"]["listChanged"], false);
    assert_eq!(init["serverInfo"]["name"], "flow2api");
    // No session: nothing to remember the client by.
    let r = post(
        &h,
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2030-01-01"}}"#,
        &[],
    )
    .await;
    assert!(!r.headers.contains_key("mcp-session-id"));
    assert_eq!(r.json()["result"]["protocolVersion"], "2025-11-25");
    let tools = request(&h, "tools/list", json!({})).await;
    let names: Vec<&str> = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "generate_image",
            "generate_video",
            "get_video",
            "list_models"
        ]
    );
    assert_eq!(request(&h, "ping", json!({})).await, json!({}));
}

#[tokio::test(start_paused = true)]
async fn generate_image_returns_the_bytes_and_the_link() {
    let h = setup().await;
    let result = call(
        &h,
        "generate_image",
        json!({"prompt": "a red apple", "aspect_ratio": "1:1"}),
    )
    .await;
    assert_eq!(result["isError"], false, "{result}");
    let content = result["content"].as_array().unwrap();
    assert_eq!(content[0]["type"], "image");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(content[0]["data"].as_str().unwrap())
        .unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "{:?}", &bytes[..8]);
    assert_eq!(content[0]["mimeType"], "image/png");
    let url = result["structuredContent"]["url"].as_str().unwrap();
    assert!(content[1]["text"].as_str().unwrap().contains(url));
    assert_eq!(content[2]["type"], "resource_link");
    assert_eq!(content[2]["uri"], url);
    let gens = h.fake.requests_to(Endpoint::GenerateImage);
    assert_eq!(
        gens[0].json.as_ref().unwrap()["requests"][0]["imageAspectRatio"],
        "IMAGE_ASPECT_RATIO_SQUARE"
    );
    // A 2025-03-26 client gets no resource link (its schema has none).
    let r = post(
        &h,
        &json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": "generate_image", "arguments": {"prompt": "x"}}})
        .to_string(),
        &[("mcp-protocol-version", "2025-03-26")],
    )
    .await;
    let types: Vec<Value> = r.json()["result"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["type"].clone())
        .collect();
    assert_eq!(types, [json!("image"), json!("text")]);
}

#[tokio::test(start_paused = true)]
async fn a_failed_generation_is_a_tool_error_for_the_model_to_read() {
    let h = setup().await;
    h.fake
        .inject(Endpoint::GenerateImage, Fault::unsafe_generation(), 1);
    let result = call(&h, "generate_image", json!({"prompt": "x"})).await;
    assert_eq!(result["isError"], true, "{result}");
    assert_eq!(result["content"][0]["type"], "text");
}

#[tokio::test(start_paused = true)]
async fn generate_video_streams_progress_then_the_result() {
    let h = setup().await;
    let body = json!({"jsonrpc": "2.0", "id": "v1", "method": "tools/call",
        "params": {"name": "generate_video", "arguments": {"prompt": "waves"},
                   "_meta": {"progressToken": "tok"}}});
    let r = post(&h, &body.to_string(), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.headers["content-type"], "text/event-stream");
    let events: Vec<Value> = r
        .events()
        .iter()
        .map(|e| serde_json::from_str(e).unwrap())
        .collect();
    let (last, progress) = events.split_last().unwrap();
    assert!(!progress.is_empty());
    for (i, p) in progress.iter().enumerate() {
        assert_eq!(p["method"], "notifications/progress", "{p}");
        assert_eq!(p["params"]["progressToken"], "tok");
        assert_eq!(p["params"]["progress"], i as u64 + 1);
    }
    assert_eq!(last["id"], "v1");
    let video = &last["result"]["structuredContent"];
    assert_eq!(video["status"], "completed", "{last}");
    let id = video["id"].as_str().unwrap();
    // get_video reads the same job; another client without a token gets the id at once.
    let got = call(&h, "get_video", json!({"id": id})).await;
    assert_eq!(got["structuredContent"]["status"], "completed");
    assert_eq!(got["structuredContent"]["url"], video["url"]);
    let started = call(&h, "generate_video", json!({"prompt": "more waves"})).await;
    assert_eq!(started["isError"], false, "{started}");
    assert!(started["structuredContent"]["content_url"]
        .as_str()
        .unwrap()
        .ends_with("/content"));
}

#[tokio::test(start_paused = true)]
async fn list_models_lists_the_catalogue() {
    let h = setup().await;
    let all = call(&h, "list_models", json!({})).await;
    let listed = h.api("GET", "/v1/models", None).await.json();
    assert_eq!(
        all["structuredContent"]["models"].as_array().unwrap().len(),
        listed["data"].as_array().unwrap().len()
    );
    let images = call(&h, "list_models", json!({"kind": "image"})).await;
    assert!(images["structuredContent"]["models"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["kind"] == "image"));
}

#[tokio::test(start_paused = true)]
async fn protocol_edges() {
    let h = setup().await;
    // Bodies that are not one message: 400.
    assert_eq!(error(&h, "{nope", 400).await["code"], -32700);
    assert_eq!(
        error(&h, r#"[{"jsonrpc":"2.0","id":1,"method":"ping"}]"#, 400).await["code"],
        -32600
    );
    assert_eq!(error(&h, r#"{"id":1}"#, 400).await["code"], -32600);
    let r = post(
        &h,
        r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#,
        &[("mcp-protocol-version", "2099-01-01")],
    )
    .await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["data"]["requested"], "2099-01-01");
    // Well-formed requests that fail: 200 with the error.
    let e = error(
        &h,
        r#"{"jsonrpc":"2.0","id":1,"method":"prompts/list"}"#,
        200,
    )
    .await;
    assert_eq!(e["code"], -32601);
    for args in [
        json!({"name": "nope", "arguments": {}}),
        json!({"name": "generate_image", "arguments": {}}),
        json!({"name": "generate_image", "arguments": {"prompt": "x", "model": "nope"}}),
        json!({"name": "generate_video", "arguments": {"prompt": "x", "aspect_ratio": "1:1"}}),
        json!({"name": "get_video", "arguments": {"id": "video_abc"}}),
        json!({"arguments": {}}),
    ] {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": args});
        let e = error(&h, &body.to_string(), 200).await;
        assert_eq!(e["code"], -32602, "{args}: {e}");
    }
    assert!(h.fake.requests_to(Endpoint::GenerateImage).is_empty());
    // Notifications and responses: 202, no body.
    for body in [
        r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
        r#"{"jsonrpc":"2.0","id":5,"result":{}}"#,
    ] {
        let r = post(&h, body, &[]).await;
        assert_eq!(r.status, 202);
        assert!(r.body.is_empty());
    }
    // No stream and no session: GET and DELETE are 405.
    for method in ["GET", "DELETE"] {
        let auth = format!("Bearer {API_KEY}");
        let r = h
            .raw(
                method,
                "/mcp",
                &[("authorization", &auth)],
                Default::default(),
            )
            .await;
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.headers["allow"], "POST");
    }
    // Without the key: 401, in JSON-RPC, with the scheme to use.
    let r = h
        .raw(
            "POST",
            "/mcp",
            &[],
            bytes::Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#),
        )
        .await;
    assert_eq!(r.status, 401);
    assert_eq!(r.headers["www-authenticate"], "Bearer");
    assert_eq!(r.json()["error"]["data"]["status"], 401);
    assert_eq!(r.json()["id"], Value::Null);
}
