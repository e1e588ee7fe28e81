//! Small conversions between the runtime's JS values and Rust ones, shared by the request
//! entry, the fetch client and the Durable Object client.

use http::{HeaderMap, HeaderName, HeaderValue};
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::{web_sys, Headers};

/// A runtime error as text (its message, or what JS makes of it).
pub fn js_text(e: &JsValue) -> String {
    e.as_string()
        .or_else(|| {
            e.dyn_ref::<worker::js_sys::Error>()
                .map(|e| String::from(e.message()))
        })
        .unwrap_or_else(|| format!("{e:?}"))
}

/// Appends every header of `headers` to `map`. The runtime's headers are valid ByteStrings;
/// anything `http` still rejects is skipped.
pub fn copy_headers(headers: web_sys::Headers, map: &mut HeaderMap) {
    for (name, value) in Headers(headers).entries() {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            map.append(n, v);
        }
    }
}
