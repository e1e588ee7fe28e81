//! The egress relay's wire format (`docs/egress.md#the-header-format`): how a request is
//! signed for the relay ([`sign`], both hosts) and how the relay checks it ([`verify`],
//! [`NonceCache`], the native `flow2api-server --relay`).
//!
//! A relayed request is the original request (same method, headers and body) sent to
//! `{relay}/relay` with these headers:
//!
//! | header | value |
//! |---|---|
//! | `X-Relay-Url` | the absolute upstream URL |
//! | `X-Relay-Timestamp` | Unix seconds when signed |
//! | `X-Relay-Nonce` | 16–64 characters `[0-9A-Za-z_-]`, never used twice |
//! | `X-Relay-Signature` | `v1=` and the lower-case hex HMAC-SHA256, keyed with the secret, of the canonical string |
//! | `X-Relay-Body-Sha256` | optional: the lower-case hex SHA-256 of the body (what the canonical string holds) |
//!
//! The canonical string is five lines joined by `\n`, no trailing newline:
//! `v1`, the method (upper case), the upstream URL exactly as in `X-Relay-Url`, the timestamp,
//! the nonce, and the lower-case hex SHA-256 of the body (of the empty string when there is
//! none). The relay accepts a timestamp within ±[`WINDOW_SECS`] of its clock and a nonce it
//! has not seen within that window. Its own refusals carry `X-Relay-Error` (a code) and a
//! JSON body; an upstream answer never does.

use std::collections::HashMap;
use std::collections::VecDeque;

use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue, StatusCode};
use sha2::{Digest, Sha256};

use crate::seams::{HttpRequest, RelayRoute, TransportError, TransportErrorKind};

/// The upstream URL.
pub const HEADER_URL: &str = "x-relay-url";
/// Unix seconds when the request was signed.
pub const HEADER_TIMESTAMP: &str = "x-relay-timestamp";
/// A one-time value.
pub const HEADER_NONCE: &str = "x-relay-nonce";
/// `v1=<hex HMAC-SHA256>`.
pub const HEADER_SIGNATURE: &str = "x-relay-signature";
/// The body's SHA-256 (lower-case hex), as signed: lets the relay check the signature before
/// the body has arrived and stream it on, holding back its last chunk until the hash matches.
pub const HEADER_BODY_SHA256: &str = "x-relay-body-sha256";
/// On the relay's own refusals: why (a [`RelayRefusal::code`]).
pub const HEADER_ERROR: &str = "x-relay-error";
/// The path requests are sent to on the relay.
pub const RELAY_PATH: &str = "/relay";
/// How far a timestamp may be from the relay's clock, either way.
pub const WINDOW_SECS: u64 = 60;

type HmacSha256 = Hmac<Sha256>;

/// The string the signature covers (see the module docs).
pub fn canonical(method: &str, url: &str, timestamp: u64, nonce: &str, body: &[u8]) -> String {
    canonical_hashed(method, url, timestamp, nonce, &body_sha256(body))
}

/// [`canonical`] with the body's hash already computed (lower-case hex SHA-256).
pub fn canonical_hashed(
    method: &str,
    url: &str,
    timestamp: u64,
    nonce: &str,
    body_hash: &str,
) -> String {
    format!("v1\n{method}\n{url}\n{timestamp}\n{nonce}\n{body_hash}")
}

/// The lower-case hex SHA-256 of `body`.
pub fn body_sha256(body: &[u8]) -> String {
    crate::util::hex(&Sha256::digest(body))
}

fn mac(secret: &[u8]) -> HmacSha256 {
    // HMAC takes a key of any length.
    HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC accepts any key"))
}

/// The `X-Relay-Signature` value for these parts.
pub fn signature(
    secret: &str,
    method: &str,
    url: &str,
    timestamp: u64,
    nonce: &str,
    body: &[u8],
) -> String {
    let mut m = mac(secret.as_bytes());
    m.update(canonical(method, url, timestamp, nonce, body).as_bytes());
    format!("v1={}", crate::util::hex(&m.finalize().into_bytes()))
}

/// `req` rewritten for `route`'s relay: the same method, headers and body, sent to
/// `{relay}/relay` with the four `X-Relay-*` headers (`Host` dropped).
///
/// # Errors
/// [`TransportErrorKind::Egress`] when the relay URL does not make a valid URI.
pub fn sign(
    mut req: HttpRequest,
    route: &RelayRoute,
    now_secs: u64,
    nonce: &str,
) -> Result<HttpRequest, TransportError> {
    let target = req.uri().to_string();
    let relay = format!("{}{RELAY_PATH}", route.url.trim_end_matches('/'));
    let body_hash = body_sha256(req.body());
    let mut m = mac(route.secret.expose().as_bytes());
    m.update(
        canonical_hashed(req.method().as_str(), &target, now_secs, nonce, &body_hash).as_bytes(),
    );
    let sig = format!("v1={}", crate::util::hex(&m.finalize().into_bytes()));
    let bad = |what: &str| {
        TransportError::new(
            TransportErrorKind::Egress,
            format!("egress relay: invalid {what}"),
        )
    };
    *req.uri_mut() = relay.parse().map_err(|_| bad("relay URL"))?;
    let h = req.headers_mut();
    h.remove(http::header::HOST);
    h.insert(
        HEADER_URL,
        HeaderValue::from_str(&target).map_err(|_| bad("upstream URL"))?,
    );
    h.insert(HEADER_TIMESTAMP, HeaderValue::from(now_secs));
    h.insert(
        HEADER_NONCE,
        HeaderValue::from_str(nonce).map_err(|_| bad("nonce"))?,
    );
    h.insert(
        HEADER_SIGNATURE,
        HeaderValue::from_str(&sig).map_err(|_| bad("signature"))?,
    );
    h.insert(
        HEADER_BODY_SHA256,
        HeaderValue::from_str(&body_hash).map_err(|_| bad("body hash"))?,
    );
    Ok(req)
}

/// A relay's answer is an upstream one unless it carries `X-Relay-Error`.
///
/// # Errors
/// The relay's refusal as [`TransportErrorKind::Egress`] (a timeout reaching the upstream as
/// [`TransportErrorKind::Timeout`]).
pub fn check_response(status: StatusCode, headers: &HeaderMap) -> Result<(), TransportError> {
    let Some(code) = headers.get(HEADER_ERROR) else {
        return Ok(());
    };
    let code = code.to_str().unwrap_or("unknown");
    let kind = if code == RelayRefusal::UpstreamTimeout.code() {
        TransportErrorKind::Timeout
    } else {
        TransportErrorKind::Egress
    };
    Err(TransportError::new(
        kind,
        format!(
            "egress relay refused the request: {code} (HTTP {})",
            status.as_u16()
        ),
    ))
}

/// Why the relay did not forward a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RelayRefusal {
    /// A header is missing or malformed.
    #[error("missing or malformed X-Relay-* headers")]
    Malformed,
    /// The signature does not match.
    #[error("bad signature")]
    BadSignature,
    /// The timestamp is outside the window.
    #[error("timestamp outside the allowed window")]
    Stale,
    /// The nonce was seen before.
    #[error("nonce already used")]
    Replayed,
    /// The upstream host is not on the allow-list.
    #[error("host not allowed")]
    ForbiddenHost,
    /// The upstream could not be reached.
    #[error("upstream unreachable")]
    UpstreamUnreachable,
    /// The upstream did not answer in time.
    #[error("upstream timed out")]
    UpstreamTimeout,
    /// The request body is larger than the relay accepts.
    #[error("request body too large")]
    TooLarge,
}

impl RelayRefusal {
    /// The `X-Relay-Error` code.
    pub fn code(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::BadSignature => "bad_signature",
            Self::Stale => "stale",
            Self::Replayed => "replayed",
            Self::ForbiddenHost => "forbidden_host",
            Self::UpstreamUnreachable => "upstream_unreachable",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::TooLarge => "too_large",
        }
    }

    /// The relay's HTTP status for it: 401 for authentication, 403 for the allow-list, 400
    /// malformed, 413 too large, 502/504 upstream.
    pub fn status(self) -> StatusCode {
        match self {
            Self::Malformed => StatusCode::BAD_REQUEST,
            Self::BadSignature | Self::Stale | Self::Replayed => StatusCode::UNAUTHORIZED,
            Self::ForbiddenHost => StatusCode::FORBIDDEN,
            Self::UpstreamUnreachable => StatusCode::BAD_GATEWAY,
            Self::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        }
    }
}

/// What [`verify`] read from a request's headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// The upstream URL.
    pub url: url::Url,
    /// The timestamp.
    pub timestamp: u64,
    /// The nonce.
    pub nonce: String,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, RelayRefusal> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(RelayRefusal::Malformed)
}

/// Checks a relayed request's headers and body against `secret` at `now_secs`: well-formed,
/// signed, within the window. The nonce is the caller's to check ([`NonceCache`]), after this.
///
/// # Errors
/// The [`RelayRefusal`].
pub fn verify(
    secret: &str,
    method: &str,
    headers: &HeaderMap,
    body: &[u8],
    now_secs: u64,
) -> Result<Signed, RelayRefusal> {
    verify_hashed(secret, method, headers, &body_sha256(body), now_secs)
}

/// [`verify`] against a body hash given ahead of the body (`X-Relay-Body-Sha256`); the caller
/// then checks that the body it forwards has that hash before the body is complete.
///
/// # Errors
/// The [`RelayRefusal`].
pub fn verify_hashed(
    secret: &str,
    method: &str,
    headers: &HeaderMap,
    body_hash: &str,
    now_secs: u64,
) -> Result<Signed, RelayRefusal> {
    let raw_url = header(headers, HEADER_URL)?;
    let timestamp: u64 = header(headers, HEADER_TIMESTAMP)?
        .parse()
        .map_err(|_| RelayRefusal::Malformed)?;
    let nonce = header(headers, HEADER_NONCE)?;
    if !(16..=64).contains(&nonce.len())
        || !nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(RelayRefusal::Malformed);
    }
    let given = header(headers, HEADER_SIGNATURE)?
        .strip_prefix("v1=")
        .ok_or(RelayRefusal::Malformed)?;
    let given = decode_hex(given).ok_or(RelayRefusal::BadSignature)?;
    let mut m = mac(secret.as_bytes());
    m.update(canonical_hashed(method, raw_url, timestamp, nonce, body_hash).as_bytes());
    // Constant-time comparison.
    m.verify_slice(&given)
        .map_err(|_| RelayRefusal::BadSignature)?;
    if now_secs.abs_diff(timestamp) > WINDOW_SECS {
        return Err(RelayRefusal::Stale);
    }
    let url = url::Url::parse(raw_url).map_err(|_| RelayRefusal::Malformed)?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(RelayRefusal::Malformed);
    }
    Ok(Signed {
        url,
        timestamp,
        nonce: nonce.to_owned(),
    })
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The nonces a relay accepted within the window: one is never accepted twice. Entries older
/// than twice the window are dropped as new ones arrive (their timestamps are refused anyway).
#[derive(Debug, Default)]
pub struct NonceCache {
    seen: HashMap<String, u64>,
    order: VecDeque<(u64, String)>,
}

impl NonceCache {
    /// The most nonces kept; beyond it the oldest go first (a flood cannot grow memory).
    pub const MAX: usize = 1_000_000;

    /// Records `nonce` seen at `now_secs`; `false` when it was seen before.
    pub fn accept(&mut self, nonce: &str, now_secs: u64) -> bool {
        while let Some((at, _)) = self.order.front() {
            if now_secs.saturating_sub(*at) <= 2 * WINDOW_SECS && self.order.len() < Self::MAX {
                break;
            }
            if let Some((_, old)) = self.order.pop_front() {
                self.seen.remove(&old);
            }
        }
        if self.seen.contains_key(nonce) {
            return false;
        }
        self.seen.insert(nonce.to_owned(), now_secs);
        self.order.push_back((now_secs, nonce.to_owned()));
        true
    }
}

/// Whether `host` is one of `allowed` (host names compared case-insensitively, exactly).
pub fn host_allowed(allowed: &[String], host: &str) -> bool {
    allowed.iter().any(|a| a.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::seams::Bytes;
    use crate::secret::Secret;

    fn route() -> RelayRoute {
        RelayRoute {
            url: Arc::from("http://relay.example:9000/"),
            secret: Secret::new("s3cret"),
        }
    }

    fn signed(body: &'static [u8]) -> HttpRequest {
        let req = http::Request::post("https://api.example/v1/x?a=1")
            .header("host", "api.example")
            .header("authorization", "Bearer at")
            .body(Bytes::from_static(body))
            .unwrap();
        sign(req, &route(), 1_000, "0123456789abcdef0123").unwrap()
    }

    #[test]
    fn a_signed_request_verifies_and_keeps_its_headers() {
        let req = signed(b"{\"a\":1}");
        assert_eq!(req.uri(), "http://relay.example:9000/relay");
        assert!(req.headers().get("host").is_none());
        assert_eq!(req.headers()["authorization"], "Bearer at");
        assert_eq!(req.headers()[HEADER_BODY_SHA256], body_sha256(b"{\"a\":1}"));
        let ok = verify("s3cret", "POST", req.headers(), req.body(), 1_030).unwrap();
        assert_eq!(ok.url.as_str(), "https://api.example/v1/x?a=1");
        assert_eq!(ok.nonce, "0123456789abcdef0123");
    }

    #[test]
    fn anything_changed_or_late_is_refused() {
        let req = signed(b"body");
        let h = req.headers();
        assert_eq!(
            verify("other", "POST", h, b"body", 1_000),
            Err(RelayRefusal::BadSignature)
        );
        assert_eq!(
            verify("s3cret", "GET", h, b"body", 1_000),
            Err(RelayRefusal::BadSignature)
        );
        assert_eq!(
            verify("s3cret", "POST", h, b"bodx", 1_000),
            Err(RelayRefusal::BadSignature)
        );
        assert_eq!(
            verify("s3cret", "POST", h, b"body", 1_061),
            Err(RelayRefusal::Stale)
        );
        assert_eq!(
            verify("s3cret", "POST", h, b"body", 939),
            Err(RelayRefusal::Stale)
        );
        let mut other = h.clone();
        other.insert(
            HEADER_URL,
            HeaderValue::from_static("https://evil.example/"),
        );
        assert_eq!(
            verify("s3cret", "POST", &other, b"body", 1_000),
            Err(RelayRefusal::BadSignature)
        );
        other.remove(HEADER_NONCE);
        assert_eq!(
            verify("s3cret", "POST", &other, b"body", 1_000),
            Err(RelayRefusal::Malformed)
        );
    }

    #[test]
    fn the_canonical_string_is_documented_exactly() {
        assert_eq!(
            canonical("GET", "https://h/x", 7, "n", b""),
            "v1\nGET\nhttps://h/x\n7\nn\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            signature("key", "GET", "https://h/x", 7, "n", b"").len(),
            3 + 64
        );
    }

    #[test]
    fn a_nonce_is_accepted_once_and_forgotten_after_the_window() {
        let mut c = NonceCache::default();
        assert!(c.accept("n1", 100));
        assert!(!c.accept("n1", 150));
        assert!(c.accept("n2", 150));
        // Long after, n1 is gone (its timestamp would be refused as stale anyway).
        assert!(c.accept("n3", 100 + 3 * WINDOW_SECS));
        assert!(c.accept("n1", 100 + 3 * WINDOW_SECS));
    }

    #[test]
    fn relay_refusals_become_egress_errors() {
        let mut h = HeaderMap::new();
        assert!(check_response(StatusCode::UNAUTHORIZED, &h).is_ok());
        h.insert(HEADER_ERROR, HeaderValue::from_static("bad_signature"));
        let e = check_response(StatusCode::UNAUTHORIZED, &h).unwrap_err();
        assert_eq!(e.kind, TransportErrorKind::Egress);
        h.insert(HEADER_ERROR, HeaderValue::from_static("upstream_timeout"));
        let e = check_response(StatusCode::GATEWAY_TIMEOUT, &h).unwrap_err();
        assert_eq!(e.kind, TransportErrorKind::Timeout);
    }
}
