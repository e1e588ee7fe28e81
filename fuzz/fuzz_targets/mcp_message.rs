//! MCP messages (`POST /mcp`, JSON-RPC 2.0) through `App::handle`: the input's first line is
//! the `MCP-Protocol-Version` header (none when empty), the rest the body. Whatever the body,
//! the answer is a JSON-RPC response or error (200), `202` for a notification, or `400`.

#![no_main]

use flow2api_fuzz::{app, handle, request, split_line};
use flow2api_sdk::seams::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (version, body) = split_line(data);
    let app = app();
    let mut req = request(
        "POST",
        "/mcp",
        Some("application/json"),
        Bytes::copy_from_slice(body),
    );
    if let Ok(v) = flow2api_sdk::http::HeaderValue::from_str(version) {
        if !version.is_empty() {
            req.headers_mut().insert("mcp-protocol-version", v);
        }
    }
    let resp = handle(&app, req);
    let status = resp.status().as_u16();
    assert!(matches!(status, 200 | 202 | 400), "{status}");
});
