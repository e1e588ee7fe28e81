//! Image headers: dimensions (PNG, JPEG with EXIF, GIF, WebP, BMP), the aspect drawn from them,
//! the upload MIME type, and the model an image steers an alias to.

#![no_main]

use flow2api_sdk::fuzzing::sniff_mime;
use flow2api_sdk::models::ResolveHints;
use flow2api_sdk::models::{aspect_from_image, image_dimensions, nearest_aspect, resolve_image};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dims = image_dimensions(data);
    if let Some((w, h)) = dims {
        assert!(w > 0 && h > 0, "a zero dimension is no dimension: {w}x{h}");
    }
    assert_eq!(
        aspect_from_image(data),
        dims.map(|(w, h)| nearest_aspect(w, h))
    );
    let mime = sniff_mime(data);
    assert!(mime.starts_with("image/"), "{mime}");
    // An alias follows the image's aspect; an exact id never does.
    let hints = ResolveHints::default();
    let alias = resolve_image("gemini-3.1-flash-image", &hints, Some(data));
    assert!(alias.is_some());
    let exact = resolve_image("gemini-3.1-flash-image-square", &hints, Some(data));
    assert_eq!(exact.map(|m| m.id), Some("gemini-3.1-flash-image-square"));
});
