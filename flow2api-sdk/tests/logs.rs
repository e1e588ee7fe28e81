//! The request log in process, through `App::handle` against FakeFlow: the rows of the
//! routes the end-to-end tests do not reach (Gemini, MCP, a stream that fails, a client that
//! goes away mid-stream, no account), and what is not logged (reads, MCP's other methods).

mod common;

use std::time::Duration;

use common::*;
use flow2api_sdk::testing::{Endpoint, Fault};
use futures::StreamExt;
use serde_json::{json, Value};

const IMAGE: &str = "gemini-3.1-flash-image-landscape";

/// The log's rows, newest first, once there are `n` (rows are written in the background).
async fn rows(h: &Harness, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        let r = h.admin_call("GET", "/api/logs", None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        let list = v.as_array().unwrap().clone();
        if list.len() >= n {
            assert_eq!(list.len(), n, "{v}");
            return list;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("fewer than {n} rows");
}

#[tokio::test(start_paused = true)]
async fn gemini_and_mcp_generations_are_logged_and_reads_are_not() {
    let h = harness().await;
    let auth = format!("Bearer {API_KEY}");
    let r = h
        .api(
            "POST",
            &format!("/v1beta/models/{IMAGE}:generateContent"),
            Some(json!({"contents": [{"parts": [{"text": "a gemini cat"}]}]})),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let mcp = |body: Value| {
        let auth = auth.clone();
        let h = &h;
        async move {
            h.call(
                "POST",
                "/mcp",
                &[
                    ("authorization", &auth),
                    ("accept", "application/json, text/event-stream"),
                    ("mcp-protocol-version", "2025-11-25"),
                ],
                Some(body),
            )
            .await
        }
    };
    let listed = mcp(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    let called = mcp(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
        "params": {"name": "generate_image", "arguments": {"prompt": "an mcp dog"}}}))
    .await;
    assert_eq!(called.status, 200, "{}", called.text());
    let refused = mcp(json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
        "params": {"name": "generate_image", "arguments": {"prompt": "x", "model": "nope-model"}}}))
    .await;
    assert!(refused.json()["error"].is_object(), "{}", refused.text());
    // Reads are not generations.
    assert_eq!(h.api("GET", "/v1/models", None).await.status, 200);

    let list = rows(&h, 3).await;
    let (failed, mcp_row, gemini) = (&list[0], &list[1], &list[2]);
    assert_eq!(gemini["model"], IMAGE, "{gemini}");
    assert_eq!(gemini["operation"], "generate_image");
    assert_eq!(gemini["status_code"], 200);
    assert_eq!(gemini["token_email"], "alice@example.com");
    assert_eq!(mcp_row["operation"], "generate_image", "{mcp_row}");
    assert_eq!(mcp_row["status_code"], 200);
    assert_eq!(mcp_row["key"], "root");
    assert_eq!(failed["model"], "nope-model", "{failed}");
    assert!(failed["status_code"].as_u64().unwrap() >= 400, "{failed}");
    assert!(failed["error_summary"]
        .as_str()
        .unwrap()
        .contains("nope-model"));
    let detail = h
        .admin_call("GET", &format!("/api/logs/{}", mcp_row["id"]), None)
        .await
        .json();
    let request: Value = serde_json::from_str(detail["request_body"].as_str().unwrap()).unwrap();
    assert_eq!(request["prompt"], "an mcp dog", "{detail}");
    let detail = h
        .admin_call("GET", &format!("/api/logs/{}", gemini["id"]), None)
        .await
        .json();
    let request: Value = serde_json::from_str(detail["request_body"].as_str().unwrap()).unwrap();
    assert_eq!(request["prompt"], "a gemini cat", "{detail}");
    // Gemini answers with the bytes inline; the log keeps none of them.
    assert!(
        detail["response_body"].as_str().unwrap().len() < 1000,
        "{detail}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stream_that_fails_is_logged_with_the_failure() {
    let h = harness().await;
    h.fake
        .inject_forever(Endpoint::GenerateImage, Fault::internal());
    let r = h
        .chat(json!({"model": IMAGE, "stream": true, "messages": user(json!("x"))}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let list = rows(&h, 1).await;
    let row = &list[0];
    assert!(row["status_code"].as_u64().unwrap() >= 500, "{row}");
    assert_eq!(row["status_text"], "failed");
    assert!(row["progress"].as_u64().unwrap() < 100, "{row}");
    assert!(row["error_summary"].is_string(), "{row}");
    let stats = h.admin_call("GET", "/api/stats", None).await.json();
    assert_eq!(stats["today_errors"], 1, "{stats}");
    assert_eq!(stats["today_images"], 0, "{stats}");
}

#[tokio::test(start_paused = true)]
async fn a_client_that_goes_away_mid_stream_is_logged_as_499() {
    let h = harness_with(&[("CAPTCHA_POLL_INTERVAL", "5")], Some("PAYGATE_TIER_TWO")).await;
    h.fake.set_captcha_polls_before_ready(3);
    let req = http::Request::post("/v1/chat/completions")
        .header("host", "gateway.test")
        .header("authorization", format!("Bearer {API_KEY}"))
        .body(bytes::Bytes::from(
            json!({"model": IMAGE, "stream": true, "messages": user(json!("x"))}).to_string(),
        ))
        .unwrap();
    let resp = h.app.handle(req).await;
    assert_eq!(resp.status(), 200);
    let flow2api_sdk::Body::Stream(mut body) = resp.into_body() else {
        panic!("a stream")
    };
    assert!(body.next().await.is_some());
    drop(body);
    let list = rows(&h, 1).await;
    assert_eq!(list[0]["status_code"], 499, "{}", list[0]);
    assert_eq!(list[0]["status_text"], "cancelled");
}

#[tokio::test(start_paused = true)]
async fn no_account_is_logged_as_503() {
    let h = harness_with(&[("SLOT_WAIT_TIMEOUT", "0")], None).await;
    let r = h
        .chat(json!({"model": IMAGE, "messages": user(json!("x"))}))
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    let list = rows(&h, 1).await;
    assert_eq!(list[0]["status_code"], 503, "{}", list[0]);
    assert_eq!(list[0]["operation"], "generate_image");
    assert!(list[0]["token_id"].is_null());
    assert!(list[0]["error_summary"].is_string());
}
