//! `POST /v1/videos` through `App::handle`, JSON or `multipart/form-data` (parsed by multer):
//! the input's first line is the `Content-Type` (with the multipart boundary), the rest the
//! body.

#![no_main]

use flow2api_fuzz::{app, handle, request, split_line};
use flow2api_sdk::seams::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (content_type, body) = split_line(data);
    let content_type = (!content_type.is_empty()
        && flow2api_sdk::http::HeaderValue::from_str(content_type).is_ok())
    .then_some(content_type);
    let app = app();
    let req = request(
        "POST",
        "/v1/videos",
        content_type,
        Bytes::copy_from_slice(body),
    );
    let resp = handle(&app, req);
    assert!(!resp.status().is_success(), "{}", resp.status());
});
