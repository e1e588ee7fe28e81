//! The media seam's types: streamed uploads and reads, byte ranges, per-object TTLs.
//! [`MediaStore`] serves generated media at `GET /media/{id}`, which answers `Range:` requests
//! with `206 Partial Content` (and `416` when the range is past the end).

use std::ops::Range;
use std::time::Duration;

use futures::StreamExt;

use super::{boxed_stream, BoxFuture, BoxStream, Bytes, MaybeSend, MaybeSync, StorageError};

/// A stored media object given whole (the common case: an image already in memory).
#[derive(Debug, Clone)]
pub struct Media {
    /// MIME type, e.g. `image/jpeg`.
    pub content_type: String,
    /// The bytes.
    pub bytes: Bytes,
}

/// A body of media bytes arriving or leaving chunk by chunk. An `Err` item ends it: the
/// source broke off.
pub type MediaStream = BoxStream<'static, Result<Bytes, StorageError>>;

/// An object to store: its type, its bytes as a stream, and how long to keep it.
pub struct MediaUpload {
    /// MIME type.
    pub content_type: String,
    /// The bytes.
    pub body: MediaStream,
    /// How long to keep it; `None`: the store's default.
    pub ttl: Option<Duration>,
    /// The body's length when known up front (a download's `Content-Length`): a store that
    /// must be told the size before it takes a stream (R2) then streams it, else it buffers.
    pub len: Option<u64>,
}

impl std::fmt::Debug for MediaUpload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaUpload")
            .field("content_type", &self.content_type)
            .field("ttl", &self.ttl)
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

impl MediaUpload {
    /// An upload of `body`, kept for the store's default TTL.
    pub fn new(content_type: impl Into<String>, body: MediaStream) -> Self {
        Self {
            content_type: content_type.into(),
            body,
            ttl: None,
            len: None,
        }
    }

    /// The same, kept for `ttl`.
    #[must_use]
    pub fn with_ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// The same, announcing that the body is `len` bytes long. A body of another length
    /// fails the upload.
    #[must_use]
    pub fn with_len(mut self, len: u64) -> Self {
        self.len = Some(len);
        self
    }
}

impl From<Media> for MediaUpload {
    fn from(m: Media) -> Self {
        let len = m.bytes.len() as u64;
        let chunk = (!m.bytes.is_empty()).then_some(Ok(m.bytes));
        Self::new(m.content_type, boxed_stream(futures::stream::iter(chunk))).with_len(len)
    }
}

/// One byte range asked of an object, as in an HTTP `Range: bytes=` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// From this offset to the end (`bytes=500-`).
    From(u64),
    /// From the first offset to the second, both included (`bytes=0-499`).
    Inclusive(u64, u64),
    /// The last this many bytes (`bytes=-500`).
    Last(u64),
}

impl ByteRange {
    /// Parses a `Range` header value. `None` for anything but one well-formed `bytes` range
    /// (several ranges, other units, malformed): HTTP lets a server ignore those and answer
    /// the whole object.
    pub fn parse_header(value: &str) -> Option<Self> {
        let spec = value.trim().strip_prefix("bytes=")?.trim();
        if spec.contains(',') {
            return None;
        }
        let (first, last) = spec.split_once('-')?;
        let num = |s: &str| -> Option<u64> {
            let s = s.trim();
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        match (first.trim().is_empty(), last.trim().is_empty()) {
            (true, false) => num(last).map(Self::Last),
            (false, true) => num(first).map(Self::From),
            (false, false) => {
                let (a, b) = (num(first)?, num(last)?);
                (a <= b).then_some(Self::Inclusive(a, b))
            }
            (true, true) => None,
        }
    }

    /// The half-open span of an object of `total` bytes this range covers (an end past the
    /// object is cut to it); `None` when no byte of it is in the object.
    pub fn resolve(self, total: u64) -> Option<Range<u64>> {
        let span = match self {
            Self::From(a) => a..total,
            Self::Inclusive(a, b) => a..b.saturating_add(1).min(total),
            Self::Last(n) => total.saturating_sub(n)..total,
        };
        (span.start < span.end).then_some(span)
    }
}

/// An object read from a [`MediaStore`]: its type and size, and the bytes asked for.
pub struct MediaObject {
    /// MIME type.
    pub content_type: String,
    /// The whole object's length.
    pub total_len: u64,
    /// The span of the object `body` carries: `0..total_len` unless a range was asked.
    pub range: Range<u64>,
    /// The bytes of `range`, in order.
    pub body: MediaStream,
}

impl std::fmt::Debug for MediaObject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaObject")
            .field("content_type", &self.content_type)
            .field("total_len", &self.total_len)
            .field("range", &self.range)
            .finish_non_exhaustive()
    }
}

impl MediaObject {
    /// Reads the whole body.
    ///
    /// # Errors
    /// The stream's error, if it broke off.
    pub async fn collect(mut self) -> Result<Bytes, StorageError> {
        let mut out =
            Vec::with_capacity(usize::try_from(self.range.end - self.range.start).unwrap_or(0));
        while let Some(chunk) = self.body.next().await {
            out.extend_from_slice(&chunk?);
        }
        Ok(Bytes::from(out))
    }

    /// Whether the body is less than the whole object.
    pub fn is_partial(&self) -> bool {
        self.range != (0..self.total_len)
    }
}

/// What a [`MediaStore::get`] found.
#[derive(Debug)]
pub enum MediaRead {
    /// No such object, or it expired.
    Missing,
    /// The object exists but the range asked lies past its end.
    Unsatisfiable {
        /// The object's length.
        total_len: u64,
    },
    /// The object, with the bytes asked for.
    Found(MediaObject),
}

impl MediaRead {
    /// The object, if found.
    pub fn found(self) -> Option<MediaObject> {
        match self {
            Self::Found(o) => Some(o),
            _ => None,
        }
    }
}

/// Stores generated media and serves it back, whole or by range, at `GET /media/{id}`.
/// Bodies move as streams both ways, so a large video need not sit in memory whole.
///
/// Objects are immutable: an id always names the same bytes, so `/media/{id}` can use the id
/// as its `ETag`.
pub trait MediaStore: MaybeSend + MaybeSync {
    /// Stores `upload` (consuming its stream) and returns its id (URL-safe, unguessable). The
    /// object is readable once this returns, for its TTL.
    fn put(&self, upload: MediaUpload) -> BoxFuture<'_, Result<String, StorageError>>;
    /// Reads an object, or the `range` of it.
    fn get<'a>(
        &'a self,
        id: &'a str,
        range: Option<ByteRange>,
    ) -> BoxFuture<'a, Result<MediaRead, StorageError>>;

    /// Deletes objects whose TTL has passed and returns how many it deleted. Hosts call it
    /// periodically (the cron at the edge, a background task natively). An expired object is
    /// never served either way; this frees the space. The default does nothing: for stores
    /// whose backend expires entries itself.
    fn purge_expired(&self) -> BoxFuture<'_, Result<u64, StorageError>> {
        super::boxed(async { Ok(0) })
    }
}

/// Whether `id` has the shape of a media id any store hands out: 16 to 64 ASCII letters and
/// digits (safe in a path and as a key). Says nothing of whether it exists.
pub fn is_media_id_shape(id: &str) -> bool {
    (16..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Hex digits of the expiry at the start of an [`expiring_media_id`]: fixed width, so such
/// ids sort by expiry (Unix ms in 12 hex digits lasts until the year 10889).
const EXPIRY_DIGITS: usize = 12;

/// A new media id that carries its object's expiry, `expires_ms` (Unix ms): 12 hex digits of
/// it, then 32 random ones (128 bits: unguessable). For stores that list their keys in order
/// (R2): ids sort by expiry, so a purge reads only the expired ones, and a read can tell an
/// object expired without fetching anything.
///
/// # Errors
/// When the platform has no randomness.
pub fn expiring_media_id(expires_ms: u64) -> Result<String, StorageError> {
    let random = crate::util::secret_hex(16).map_err(|e| StorageError(e.to_string()))?;
    Ok(format!(
        "{:0width$x}{random}",
        expires_ms.min(0xFFFF_FFFF_FFFF),
        width = EXPIRY_DIGITS
    ))
}

/// The expiry (Unix ms) an [`expiring_media_id`] carries; `None` for anything else.
pub fn media_id_expiry(id: &str) -> Option<u64> {
    let well_formed = id.len() == EXPIRY_DIGITS + 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    well_formed
        .then(|| u64::from_str_radix(&id[..EXPIRY_DIGITS], 16).ok())
        .flatten()
}

/// The media type of an object by its first bytes: the image and video formats the gateway
/// stores (PNG, JPEG, WebP, GIF, BMP, MP4/MOV, WebM). `None` for anything else.
pub fn sniff_media_type(head: &[u8]) -> Option<&'static str> {
    let at = |offset: usize, magic: &[u8]| {
        head.get(offset..offset + magic.len())
            .is_some_and(|b| b == magic)
    };
    if at(0, b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if at(0, &[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if at(0, b"RIFF") && at(8, b"WEBP") {
        Some("image/webp")
    } else if at(0, b"GIF87a") || at(0, b"GIF89a") {
        Some("image/gif")
    } else if at(0, b"BM") && head.len() >= 14 {
        Some("image/bmp")
    } else if at(4, b"ftypqt") {
        Some("video/quicktime")
    } else if at(4, b"ftyp") {
        Some("video/mp4")
    } else if at(0, &[0x1A, 0x45, 0xDF, 0xA3]) {
        Some("video/webm")
    } else {
        None
    }
}

/// True for the types [`sniff_media_type`] can name: what `/media` may declare without
/// having seen the bytes (a range that does not start at 0).
pub fn is_known_media_type(content_type: &str) -> bool {
    matches!(
        content_type,
        "image/png"
            | "image/jpeg"
            | "image/webp"
            | "image/gif"
            | "image/bmp"
            | "video/mp4"
            | "video/quicktime"
            | "video/webm"
    )
}

/// The bytes of `span` out of `chunks`, given as (offset, bytes) in order: for stores that
/// keep an object in pieces.
pub(crate) fn slice_chunk(chunk: &Bytes, chunk_start: u64, span: &Range<u64>) -> Bytes {
    let len = chunk.len() as u64;
    let from = span.start.saturating_sub(chunk_start).min(len);
    let to = span.end.saturating_sub(chunk_start).min(len);
    chunk.slice(from as usize..to as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_come_from_the_bytes() {
        assert_eq!(
            sniff_media_type(b"\x89PNG\r\n\x1a\n...."),
            Some("image/png")
        );
        assert_eq!(
            sniff_media_type(&[0xFF, 0xD8, 0xFF, 0xE0]),
            Some("image/jpeg")
        );
        assert_eq!(
            sniff_media_type(b"RIFF\0\0\0\0WEBPVP8 "),
            Some("image/webp")
        );
        assert_eq!(sniff_media_type(b"\0\0\0\x18ftypisom"), Some("video/mp4"));
        assert_eq!(sniff_media_type(b"<html><script>"), None);
        assert_eq!(sniff_media_type(b"RIFF"), None);
        assert_eq!(sniff_media_type(b""), None);
        assert!(is_known_media_type("video/mp4"));
        assert!(!is_known_media_type("text/html"));
    }

    #[test]
    fn range_headers_parse_like_http() {
        use ByteRange::*;
        assert_eq!(
            ByteRange::parse_header("bytes=0-499"),
            Some(Inclusive(0, 499))
        );
        assert_eq!(ByteRange::parse_header("bytes=500-"), Some(From(500)));
        assert_eq!(ByteRange::parse_header("bytes=-500"), Some(Last(500)));
        assert_eq!(
            ByteRange::parse_header(" bytes= 1 - 2 "),
            Some(Inclusive(1, 2))
        );
        for ignored in [
            "bytes=5-1",
            "bytes=0-1,3-4",
            "items=0-1",
            "bytes=-",
            "bytes=a-b",
            "bytes=+1-2",
        ] {
            assert_eq!(ByteRange::parse_header(ignored), None, "{ignored}");
        }
    }

    #[test]
    fn ranges_resolve_against_the_length() {
        use ByteRange::*;
        assert_eq!(Inclusive(0, 499).resolve(1000), Some(0..500));
        assert_eq!(Inclusive(900, 5000).resolve(1000), Some(900..1000));
        assert_eq!(From(999).resolve(1000), Some(999..1000));
        assert_eq!(From(1000).resolve(1000), None);
        assert_eq!(Last(10).resolve(1000), Some(990..1000));
        assert_eq!(Last(5000).resolve(1000), Some(0..1000));
        assert_eq!(Last(0).resolve(1000), None);
        assert_eq!(From(0).resolve(0), None);
    }

    #[test]
    fn expiring_ids_carry_their_expiry_and_sort_by_it() {
        let a = expiring_media_id(1_700_000_000_000).unwrap();
        let b = expiring_media_id(1_700_000_000_001).unwrap();
        let c = expiring_media_id(99_999_999_999_999).unwrap();
        assert_eq!(a.len(), 44);
        assert!(is_media_id_shape(&a));
        assert_eq!(media_id_expiry(&a), Some(1_700_000_000_000));
        assert_eq!(media_id_expiry(&c), Some(99_999_999_999_999));
        assert!(a < b && b < c, "ids sort by expiry");
        assert_ne!(a[12..], expiring_media_id(1_700_000_000_000).unwrap()[12..]);
        for bad in [
            "",
            "0123456789abcdef0123456789abcdef",
            &a.to_uppercase(),
            &a[1..],
        ] {
            assert_eq!(media_id_expiry(bad), None, "{bad}");
        }
    }

    #[test]
    fn chunks_are_sliced_to_the_span() {
        let c = Bytes::from_static(b"0123456789");
        assert_eq!(slice_chunk(&c, 100, &(103..105)), Bytes::from_static(b"34"));
        assert_eq!(slice_chunk(&c, 100, &(90..200)), c);
        assert_eq!(slice_chunk(&c, 100, &(0..50)), Bytes::new());
    }
}
