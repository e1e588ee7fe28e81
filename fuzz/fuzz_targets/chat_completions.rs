//! `POST /v1/chat/completions` bodies through the gateway's real entry point, `App::handle`:
//! JSON, messages and parts, image data URLs and URLs, markdown images of earlier messages,
//! model and aspect hints. Every body gets an answer at once, never a 500.

#![no_main]

use flow2api_fuzz::{app, handle, request};
use flow2api_sdk::seams::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let app = app();
    let req = request(
        "POST",
        "/v1/chat/completions",
        Some("application/json"),
        Bytes::copy_from_slice(data),
    );
    let resp = handle(&app, req);
    // No account exists, so nothing can succeed.
    assert!(!resp.status().is_success(), "{}", resp.status());
});
