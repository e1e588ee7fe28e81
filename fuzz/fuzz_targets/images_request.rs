//! OpenAI Images API requests through `App::handle`: `POST /v1/images/generations` and
//! `/v1/images/edits`, JSON or `multipart/form-data` (parsed by multer). The first byte picks
//! the route; the first line after it is the `Content-Type` (with the multipart boundary),
//! the rest the body.

#![no_main]

use flow2api_fuzz::{app, handle, request, split_line};
use flow2api_sdk::seams::Bytes;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let uri = match pick % 3 {
        0 => "/v1/images/generations",
        1 => "/v1/images/edits",
        _ => "/v1/images/variations",
    };
    let (content_type, body) = split_line(rest);
    let content_type = (!content_type.is_empty()
        && flow2api_sdk::http::HeaderValue::from_str(content_type).is_ok())
    .then_some(content_type);
    let app = app();
    let req = request("POST", uri, content_type, Bytes::copy_from_slice(body));
    let resp = handle(&app, req);
    // The fuzz app has no account: nothing can succeed.
    assert!(!resp.status().is_success(), "{uri}: {}", resp.status());
});
