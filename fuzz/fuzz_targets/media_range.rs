//! `Range` headers: `ByteRange::parse_header` and `resolve` directly, then `GET /media/{id}`
//! through `App::handle` on a stored object split in small pieces, checking that a partial
//! answer's `Content-Range`, `Content-Length` and bytes agree with the object.

#![no_main]

use std::sync::Arc;

use flow2api_fuzz::{builder, collect, handle, request, NOW_MS};
use flow2api_sdk::http::header;
use flow2api_sdk::memory::{ManualClock, MemoryStorage, StorageMediaStore};
use flow2api_sdk::seams::{ByteRange, Bytes, Media, MediaStore, MediaUpload};
use futures::FutureExt;
use libfuzzer_sys::fuzz_target;

/// The stored object: 1000 bytes in pieces of 64, so ranges cross piece boundaries.
const LEN: u64 = 1000;

fn object() -> Vec<u8> {
    (0..LEN).map(|i| (i * 7 % 251) as u8).collect()
}

fuzz_target!(|data: &[u8]| {
    let value = String::from_utf8_lossy(data);
    let parsed = ByteRange::parse_header(&value);
    if let Some(r) = parsed {
        for total in [0, 1, LEN, u64::MAX] {
            if let Some(span) = r.resolve(total) {
                assert!(span.start < span.end && span.end <= total, "{r:?} {span:?}");
            }
        }
    }
    let Ok(range_header) = flow2api_sdk::http::HeaderValue::from_bytes(data) else {
        return;
    };
    // What the gateway reads: a header that is not visible ASCII counts as absent.
    let parsed = range_header.to_str().ok().and_then(ByteRange::parse_header);

    let clock = Arc::new(ManualClock::new(NOW_MS));
    let media = Arc::new(
        StorageMediaStore::new(Arc::new(MemoryStorage::new(clock.clone())), None)
            .with_chunk_size(64),
    );
    let upload = MediaUpload::from(Media {
        content_type: "video/mp4".into(),
        bytes: Bytes::from(object()),
    });
    let id = media
        .put(upload)
        .now_or_never()
        .expect("memory answers at once")
        .expect("stored");
    let app = builder().clock(clock).media(media).build().expect("built");
    let mut req = request("GET", &format!("/media/{id}"), None, Bytes::new());
    req.headers_mut().insert(header::RANGE, range_header);
    let resp = handle(&app, req);
    let (parts, body) = resp.into_parts();
    let h = &parts.headers;
    let text = |name| h.get(name).and_then(|v| v.to_str().ok());
    match parts.status.as_u16() {
        200 => {
            assert!(
                parsed.is_none_or(|r| r.resolve(LEN) == Some(0..LEN)),
                "{parsed:?}"
            );
            assert_eq!(collect(body), object());
        }
        206 => {
            let span = parsed
                .and_then(|r| r.resolve(LEN))
                .expect("a satisfiable range");
            assert_eq!(
                text(header::CONTENT_RANGE),
                Some(format!("bytes {}-{}/{LEN}", span.start, span.end - 1).as_str())
            );
            assert_eq!(
                text(header::CONTENT_LENGTH),
                Some((span.end - span.start).to_string().as_str())
            );
            let whole = object();
            assert_eq!(collect(body), whole[span.start as usize..span.end as usize]);
        }
        416 => {
            assert!(
                parsed.is_some_and(|r| r.resolve(LEN).is_none()),
                "{parsed:?}"
            );
            assert_eq!(
                text(header::CONTENT_RANGE),
                Some(format!("bytes */{LEN}").as_str())
            );
        }
        s => panic!("unexpected status {s}"),
    }
});
