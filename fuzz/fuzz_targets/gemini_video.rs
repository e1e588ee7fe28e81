//! Gemini and Vertex AI video requests through `App::handle`: `predictLongRunning` bodies
//! (instances, inline images, parameters) on both path shapes, and `fetchPredictOperation`.
//! The first byte picks the route and the model.

#![no_main]

use flow2api_fuzz::{app, handle, request};
use flow2api_sdk::seams::Bytes;
use libfuzzer_sys::fuzz_target;

const MODELS: [&str; 4] = [
    "veo-3.1-generate-preview",
    "veo-3.1-fast-generate-preview",
    "veo-3.1-lite-generate-preview",
    "veo-2.0-generate-001",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let model = MODELS[usize::from(pick & 3)];
    let uri = match (pick >> 2) % 4 {
        0 => format!("/v1beta/models/{model}:predictLongRunning"),
        1 => format!("/v1beta1/publishers/google/models/{model}:predictLongRunning"),
        2 => format!(
            "/v1/projects/p/locations/us-central1/publishers/google/models/{model}:predictLongRunning"
        ),
        _ => format!("/v1beta1/publishers/google/models/{model}:fetchPredictOperation"),
    };
    let app = app();
    let req = request(
        "POST",
        &uri,
        Some("application/json"),
        Bytes::copy_from_slice(body),
    );
    let resp = handle(&app, req);
    assert!(!resp.status().is_success(), "{uri}: {}", resp.status());
});
