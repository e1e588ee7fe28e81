//! Gemini `generateContent` and `streamGenerateContent` bodies through `App::handle`
//! (contents, parts in camelCase or snake_case, inline images, systemInstruction,
//! generationConfig). The first byte picks the path shape and the model.

#![no_main]

use flow2api_fuzz::{app, handle, request};
use flow2api_sdk::seams::Bytes;
use libfuzzer_sys::fuzz_target;

const MODELS: [&str; 4] = [
    "gemini-3.1-flash-image",
    "imagen-4.0-generate-preview-portrait",
    "gemini-3.0-pro-image-square-4k",
    "veo-3.1-generate-preview",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let model = MODELS[usize::from(pick & 3)];
    let action = if pick & 4 == 0 {
        "generateContent"
    } else {
        "streamGenerateContent"
    };
    let uri = match (pick >> 3) % 3 {
        0 => format!("/v1beta/models/{model}:{action}"),
        1 => format!("/v1/models/{model}:{action}"),
        _ => format!("/v1/publishers/google/models/{model}:{action}"),
    };
    let app = app();
    let req = request(
        "POST",
        &uri,
        Some("application/json"),
        Bytes::copy_from_slice(body),
    );
    let resp = handle(&app, req);
    // The fuzz app has no account: nothing can succeed.
    assert!(!resp.status().is_success(), "{uri}: {}", resp.status());
});
