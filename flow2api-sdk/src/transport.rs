//! Sending one HTTP request over the [`HttpClient`] seam: building it, racing it against a
//! deadline on the [`Clock`], and the browser User-Agent that calls without a better one send.
//! The Flow client, the captcha solvers and the API's image fetching all send through here; this
//! module knows nothing of any of them (see `docs/upstream.md#common-request-rules`).

use std::time::Duration;

use futures::future::{select, Either};
use http::header::HeaderMap;
use http::Method;

use crate::seams::{
    Bytes, Clock, HttpClient, HttpRequest, HttpResponse, HttpStreamResponse, TransportError,
    TransportErrorKind,
};

/// The User-Agent of calls that have no other (a recent desktop Chrome on Windows): Flow calls
/// made without a captcha token, the captcha task itself, and fetching a client's image URL.
pub const FALLBACK_USER_AGENT: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/149.0.0.0 Safari/537.36";

/// Deadlines of the calls that are not Flow's (Flow's own are `flow::timeouts`; client image
/// URLs share one deadline per request, `IMAGE_FETCH_TIMEOUT`).
pub mod timeouts {
    use std::time::Duration;
    /// Each call to the captcha provider (`createTask`, `getTaskResult`).
    pub const CAPTCHA: Duration = Duration::from_secs(30);
}

/// An [`HttpRequest`] with these parts; a URL that does not parse is a [`TransportError`] of
/// kind [`TransportErrorKind::Other`] (nothing was sent).
pub(crate) fn request(
    method: Method,
    url: &str,
    headers: HeaderMap,
    body: Bytes,
) -> Result<HttpRequest, TransportError> {
    let mut req = http::Request::builder()
        .method(method)
        .uri(url)
        .body(body)
        .map_err(|e| {
            TransportError::new(TransportErrorKind::Other, format!("invalid request: {e}"))
        })?;
    *req.headers_mut() = headers;
    Ok(req)
}

/// `v` as a JSON body.
pub(crate) fn json_body<T: serde::Serialize>(v: &T) -> Bytes {
    // Serialising our own wire structs cannot fail.
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

/// Redirects [`get_following_redirects`] follows before it gives up.
const MAX_REDIRECTS: usize = 3;

/// Why [`get_following_redirects`] or [`read_capped`] has no body to give.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    /// The URL (or a redirect's `Location`) is not an http(s) one.
    #[error("not a URL")]
    BadUrl,
    /// The caller's check refused this hop's URL.
    #[error("{0} is not allowed")]
    Refused(url::Url),
    /// No answer.
    #[error("{0}")]
    Transport(#[from] TransportError),
    /// A 3xx without a usable `Location`.
    #[error("a redirect without a location")]
    NoLocation,
    /// More than [`MAX_REDIRECTS`] redirects.
    #[error("too many redirects")]
    TooManyRedirects,
    /// The final answer was not a success.
    #[error("HTTP {0}")]
    Status(u16),
    /// The body is longer than the cap (announced or read).
    #[error("it is larger than {0} bytes")]
    TooLarge(usize),
    /// The body broke off.
    #[error("the download broke off")]
    BrokenOff,
}

/// GETs `url` over `http` with `headers`, following up to three redirects (signed result
/// links redirect; so do image hosts), and returns the first success with its body still
/// streaming. Every hop, the first included, must be http(s) and pass `allow` (the SSRF check
/// of client-given URLs; `|_| true` for links that came from upstream).
///
/// # Errors
/// [`FetchError`].
pub(crate) async fn get_following_redirects(
    http: &dyn HttpClient,
    url: &str,
    headers: &HeaderMap,
    allow: impl Fn(&url::Url) -> bool,
) -> Result<HttpStreamResponse, FetchError> {
    let mut at = url::Url::parse(url).map_err(|_| FetchError::BadUrl)?;
    for _ in 0..=MAX_REDIRECTS {
        if !matches!(at.scheme(), "http" | "https") {
            return Err(FetchError::BadUrl);
        }
        if !allow(&at) {
            return Err(FetchError::Refused(at));
        }
        let mut req = http::Request::get(at.as_str())
            .body(Bytes::new())
            .map_err(|_| FetchError::BadUrl)?;
        req.headers_mut().extend(headers.clone());
        let resp = http.call_streaming(req).await?;
        let status = resp.status();
        if status.is_redirection() {
            at = resp
                .headers()
                .get(http::header::LOCATION)
                .and_then(|l| l.to_str().ok())
                .and_then(|l| at.join(l).ok())
                .ok_or(FetchError::NoLocation)?;
            continue;
        }
        if !status.is_success() {
            return Err(FetchError::Status(status.as_u16()));
        }
        return Ok(resp);
    }
    Err(FetchError::TooManyRedirects)
}

/// Reads a streamed body whole, refusing one that announces (`Content-Length`) or turns out
/// to be longer than `max` bytes as soon as it does: a lying or silent sender is cut off.
///
/// # Errors
/// [`FetchError::TooLarge`], [`FetchError::BrokenOff`].
pub(crate) async fn read_capped(resp: HttpStreamResponse, max: usize) -> Result<Bytes, FetchError> {
    let announced = resp
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if announced.is_some_and(|n| n > max as u64) {
        return Err(FetchError::TooLarge(max));
    }
    let mut body = resp.into_body();
    let mut out = bytes::BytesMut::new();
    while let Some(chunk) = futures::StreamExt::next(&mut body).await {
        let chunk = chunk.map_err(|_| FetchError::BrokenOff)?;
        if out.len() + chunk.len() > max {
            return Err(FetchError::TooLarge(max));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out.freeze())
}

/// Races one exchange against a deadline on `clock`.
///
/// # Errors
/// The client's [`TransportError`], or one of kind [`TransportErrorKind::Timeout`] when no
/// answer came within `timeout`.
pub async fn send_with_timeout(
    http: &dyn HttpClient,
    clock: &dyn Clock,
    req: HttpRequest,
    timeout: Duration,
) -> Result<HttpResponse, TransportError> {
    let call = http.call(req);
    let deadline = clock.sleep(timeout);
    match select(call, deadline).await {
        Either::Left((r, _)) => r,
        Either::Right(_) => Err(TransportError::new(
            TransportErrorKind::Timeout,
            format!("no answer within {} s", timeout.as_secs()),
        )),
    }
}
