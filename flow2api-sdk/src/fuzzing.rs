//! Entry points for the fuzz targets in `fuzz/` (cargo feature `fuzzing`, off by default and
//! never in a host's build): thin wrappers over parsers of untrusted bytes that are internal to
//! the SDK, so that fuzzing them makes no module public. Not a stable API.
//!
//! What is public already is fuzzed through its own API: [`App::handle`](crate::App::handle)
//! for request bodies, the `FlowClient::parse_*` functions and the client's calls for upstream
//! responses, [`image_dimensions`](crate::models::image_dimensions),
//! [`ByteRange::parse_header`](crate::seams::ByteRange::parse_header) and
//! [`FlowError::from_status`](crate::flow::FlowError::from_status).

use serde_json::Value;

use crate::api::ApiError;
use crate::flow::video::VideoOperation;
use crate::seams::Bytes;

/// A client's `data:<mime>;base64,<data>` image URL decoded, at most `max_bytes` long.
///
/// # Errors
/// The 400 a client would get.
pub fn decode_data_url(uri: &str, max_bytes: usize) -> Result<Bytes, ApiError> {
    crate::api::decode_data_url(uri, max_bytes)
}

/// The MIME type upload-image is told for an image, by its magic bytes.
pub fn sniff_mime(bytes: &[u8]) -> &'static str {
    crate::flow::sniff_mime(bytes)
}

/// An upstream RFC 3339 timestamp as Unix milliseconds (session expiry).
pub fn parse_rfc3339_ms(s: &str) -> Option<u64> {
    crate::util::parse_rfc3339_ms(s)
}

/// Unix milliseconds as the RFC 3339 text [`parse_rfc3339_ms`] reads back.
pub fn format_rfc3339(ms: u64) -> String {
    crate::util::format_rfc3339(ms)
}

/// The headers of a generation call sent with the captcha solver's User-Agent (any text the
/// provider returns), with the client hints derived from it.
pub fn generation_headers(user_agent: &str) -> http::HeaderMap {
    crate::flow::headers::profile_m(user_agent)
}

/// The media UUID in an upstream video URL (`…/video/<uuid>…`).
pub fn media_uuid(url: &str) -> Option<String> {
    crate::generate::video::media_uuid(url)
}

/// A video-submit or video-status response body, normalised to operations.
pub fn normalize_operations(v: &Value, request_pid: &str) -> Vec<VideoOperation> {
    crate::flow::video::normalize_operations(v, request_pid)
}
