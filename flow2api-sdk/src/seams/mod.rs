//! The traits through which the SDK reaches the outside world, and the one place that decides
//! whether their futures are `Send`.
//!
//! Every seam method returns a [`BoxFuture`]. On the host that alias is a `Send` boxed future, so
//! the SDK runs on multi-threaded executors; on `wasm32` it is a local boxed future, so Workers
//! bindings (which are `!Send`) implement the same traits without wrappers. This module is the
//! only one in the SDK that names the wasm target.

use std::fmt;
use std::future::Future;
use std::time::Duration;

pub use bytes::Bytes;

#[cfg(not(target_arch = "wasm32"))]
mod send {
    /// `Send` on the host, nothing on wasm32.
    pub trait MaybeSend: Send {}
    impl<T: Send + ?Sized> MaybeSend for T {}
    /// `Sync` on the host, nothing on wasm32.
    pub trait MaybeSync: Sync {}
    impl<T: Sync + ?Sized> MaybeSync for T {}
    /// A boxed future: `Send` on the host, local on wasm32.
    pub type BoxFuture<'a, T> = futures::future::BoxFuture<'a, T>;
    /// A boxed stream: `Send` on the host, local on wasm32.
    pub type BoxStream<'a, T> = futures::stream::BoxStream<'a, T>;
}

#[cfg(target_arch = "wasm32")]
mod send {
    /// `Send` on the host, nothing on wasm32.
    pub trait MaybeSend {}
    impl<T: ?Sized> MaybeSend for T {}
    /// `Sync` on the host, nothing on wasm32.
    pub trait MaybeSync {}
    impl<T: ?Sized> MaybeSync for T {}
    /// A boxed future: `Send` on the host, local on wasm32.
    pub type BoxFuture<'a, T> = futures::future::LocalBoxFuture<'a, T>;
    /// A boxed stream: `Send` on the host, local on wasm32.
    pub type BoxStream<'a, T> = futures::stream::LocalBoxStream<'a, T>;
}

pub use send::{BoxFuture, BoxStream, MaybeSend, MaybeSync};

/// Boxes a future into a [`BoxFuture`] on either target.
pub fn boxed<'a, F>(future: F) -> BoxFuture<'a, F::Output>
where
    F: Future + MaybeSend + 'a,
{
    Box::pin(future)
}

/// Boxes a stream into a [`BoxStream`] on either target.
pub fn boxed_stream<'a, S>(stream: S) -> BoxStream<'a, S::Item>
where
    S: futures::Stream + MaybeSend + 'a,
{
    Box::pin(stream)
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

/// One outgoing HTTP request: `http` types with a byte body.
pub type HttpRequest = http::Request<Bytes>;
/// One HTTP response: `http` types with a byte body.
pub type HttpResponse = http::Response<Bytes>;
/// One HTTP response whose body arrives as a stream of byte chunks, for bodies too large to
/// buffer (a generated MP4 passed through to the client).
///
/// A chunk that is `Err` means the body broke off after the head was received; nothing follows
/// it. Dropping the stream abandons the rest of the body.
pub type HttpStreamResponse = http::Response<BoxStream<'static, Result<Bytes, TransportError>>>;

/// How one request leaves the host, set as an `http` extension on an [`HttpRequest`] by the
/// code that decides (an account's proxy or relay, the media proxy); a request without one
/// leaves as its client's defaults say. `egress::EgressHttp` turns [`Egress::Relay`] into a
/// signed request to the relay; a native client honours [`Egress::Proxy`]; a client that
/// cannot use a proxy (Workers' `fetch`) must fail the request, never send it directly.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Egress {
    /// Straight to the destination, whatever the defaults say.
    Direct,
    /// Through this proxy (a canonical `crate::proxy_url` URL: http, https, socks5, socks5h).
    Proxy(std::sync::Arc<str>),
    /// Through an egress relay (`flow2api-server --relay`).
    Relay(RelayRoute),
}

/// Where a relay listens and the secret that signs requests to it.
#[derive(Clone, PartialEq, Eq)]
pub struct RelayRoute {
    /// The relay's base URL (`http(s)://host:port`).
    pub url: std::sync::Arc<str>,
    /// Its `RELAY_SECRET`.
    pub secret: crate::secret::Secret,
}

impl fmt::Debug for Egress {
    /// Never shows a proxy's credentials or the relay's secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Direct => f.write_str("Direct"),
            Self::Proxy(p) => write!(f, "Proxy({})", crate::proxy_url::mask(p)),
            Self::Relay(r) => write!(f, "Relay({})", r.url),
        }
    }
}

impl fmt::Debug for RelayRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RelayRoute")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// A failure to complete an HTTP exchange (no response was received).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct TransportError {
    /// What went wrong.
    pub kind: TransportErrorKind,
    /// Details from the backend, free of credentials.
    pub message: String,
}

/// The class of a [`TransportError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// The exchange took longer than allowed.
    Timeout,
    /// The connection could not be made or broke.
    Connect,
    /// Anything else (invalid request, body read failure…).
    Other,
    /// The request's egress (its relay or proxy) could not be used: down, refusing the
    /// signature, or not possible on this host. An upstream failure that is nobody's account's
    /// fault, answered 503 with `Retry-After`; never a reason to send the request directly.
    Egress,
}

impl fmt::Display for TransportErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Timeout => "timeout",
            Self::Connect => "connection failed",
            Self::Other => "transport error",
            Self::Egress => "egress unavailable",
        })
    }
}

impl TransportError {
    /// Builds an error of `kind` with a message.
    pub fn new(kind: TransportErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// One HTTP exchange. Implementations must not follow redirects (the SDK decides, so that an
/// image URL cannot redirect to a private address) and need not apply timeouts (the SDK races
/// every call against [`Clock::sleep`]).
///
/// Any `Fn(HttpRequest) -> impl Future<Output = Result<HttpResponse, TransportError>>` is a client,
/// so a test fake is just a closure.
pub trait HttpClient: MaybeSend + MaybeSync {
    /// Sends `request` and returns the whole response.
    fn call(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>>;

    /// Sends `request` and returns the response as soon as its head has arrived, the body as a
    /// stream of chunks, so a large body can be passed on without buffering it whole.
    ///
    /// The same rules as [`call`](HttpClient::call) apply: redirects are not followed (a 3xx is
    /// returned as is) and no timeout is applied, neither to the head nor between chunks; the
    /// caller races each step against [`Clock::sleep`] as it sees fit.
    ///
    /// The default implementation awaits [`call`](HttpClient::call) and yields the whole body as
    /// one chunk (no chunk when it is empty), so closures and fakes support streaming callers
    /// unchanged; backends that can stream override it.
    fn call_streaming(
        &self,
        request: HttpRequest,
    ) -> BoxFuture<'_, Result<HttpStreamResponse, TransportError>> {
        let response = self.call(request);
        boxed(async move {
            let (parts, body) = response.await?.into_parts();
            let chunk = (!body.is_empty()).then_some(Ok(body));
            Ok(http::Response::from_parts(
                parts,
                boxed_stream(futures::stream::iter(chunk)),
            ))
        })
    }
}

impl<F, Fut> HttpClient for F
where
    F: Fn(HttpRequest) -> Fut + MaybeSend + MaybeSync,
    Fut: Future<Output = Result<HttpResponse, TransportError>> + MaybeSend + 'static,
{
    fn call(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        boxed(self(request))
    }
}

// ---------------------------------------------------------------------------------------------
// Storage
// ---------------------------------------------------------------------------------------------

/// A failure of a storage or coordination backend.
#[derive(Debug, Clone, thiserror::Error)]
#[error("storage backend: {0}")]
pub struct StorageError(pub String);

impl StorageError {
    /// The error of a backend asked for something its [`Capabilities`] do not offer.
    pub fn unsupported(what: &str) -> Self {
        Self(format!("{what} are not supported by this backend"))
    }
}

/// The most keys one [`Storage::list`] call returns: Workers KV's own page size, so that every
/// backend pages the same way.
pub const MAX_LIST_LIMIT: usize = 1000;

/// One page of keys from [`Storage::list`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListPage {
    /// Keys in key order (UTF-8 byte order), at most the `limit` asked for. A page may hold
    /// fewer keys than the limit (even none) and still have a `cursor`.
    pub keys: Vec<String>,
    /// Where the next page starts; `None` when this was the last page. Opaque: pass it back
    /// to [`Storage::list`] with the same prefix.
    pub cursor: Option<String>,
}

/// What a conditional write ([`Storage::put_if`]) expects to find under its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    /// No live value (absent or expired).
    Absent,
    /// Exactly these bytes.
    Value(Bytes),
}

impl Expect {
    /// Whether a key whose live value is `current` (`None`: absent or expired) holds what
    /// this expects: the one comparison every backend's [`Storage::put_if`] makes.
    pub fn matches(&self, current: Option<&[u8]>) -> bool {
        match (self, current) {
            (Self::Absent, None) => true,
            (Self::Value(want), Some(have)) => want[..] == *have,
            _ => false,
        }
    }
}

/// How soon a backend's readers see a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// A read that starts after a write ended sees it (read-your-writes, for every reader).
    Strong,
    /// Readers may see older values for a while (KV: about 60 s across locations).
    Eventual,
}

/// What a [`Storage`] backend guarantees, for code that must choose what to put where. The
/// conformance suite (`conformance`, feature `conformance`) checks each backend against
/// what it claims here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// [`Storage::put_if`] works and is atomic.
    pub conditional_writes: bool,
    /// Whether reads see every earlier write.
    pub consistency: Consistency,
    /// The shortest TTL the backend keeps; a shorter one is rounded up to it (KV: 60 s).
    pub min_ttl: Option<Duration>,
    /// A [`Storage::list`] cursor is the last key of the page before, so that any key given
    /// as the cursor starts a listing just after it: paging from a client's "after this id"
    /// costs one call (KV's cursors are opaque: no).
    pub key_cursors: bool,
}

impl Capabilities {
    /// Strongly consistent, with atomic conditional writes, any TTL and key cursors.
    pub const fn strong() -> Self {
        Self {
            conditional_writes: true,
            consistency: Consistency::Strong,
            min_ttl: None,
            key_cursors: true,
        }
    }

    /// Eventually consistent, without conditional writes, any TTL, opaque cursors.
    pub const fn eventual() -> Self {
        Self {
            conditional_writes: false,
            consistency: Consistency::Eventual,
            min_ttl: None,
            key_cursors: false,
        }
    }

    /// The same with `key_cursors` set.
    #[must_use]
    pub const fn with_key_cursors(mut self, yes: bool) -> Self {
        self.key_cursors = yes;
        self
    }

    /// The same with a minimum TTL.
    #[must_use]
    pub const fn with_min_ttl(mut self, min_ttl: Duration) -> Self {
        self.min_ttl = Some(min_ttl);
        self
    }

    /// The same with `conditional_writes` set.
    #[must_use]
    pub const fn with_conditional_writes(mut self, yes: bool) -> Self {
        self.conditional_writes = yes;
        self
    }

    /// The same with `consistency` set.
    #[must_use]
    pub const fn with_consistency(mut self, consistency: Consistency) -> Self {
        self.consistency = consistency;
        self
    }

    /// How long an entry written with `ttl` actually lives: `ttl` rounded up to `min_ttl`.
    pub fn effective_ttl(&self, ttl: Duration) -> Duration {
        self.min_ttl.map_or(ttl, |min| ttl.max(min))
    }
}

/// Durable records under string keys. Values are opaque bytes (the SDK stores JSON).
///
/// Backends: memory or files natively, KV or Durable Object storage at the edge. What each
/// one guarantees beyond the methods' contracts is in its [`Capabilities`]; the conformance
/// suite pins both.
pub trait Storage: MaybeSend + MaybeSync {
    /// What this backend guarantees.
    fn capabilities(&self) -> Capabilities;
    /// Reads a value, `None` when absent or expired.
    fn get<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<Option<Bytes>, StorageError>>;
    /// Writes a value; with `ttl` it disappears after that long (rounded up to the backend's
    /// [`Capabilities::min_ttl`]).
    fn put<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
    ) -> BoxFuture<'a, Result<(), StorageError>>;
    /// Writes a value only when the key holds what `expect` says, atomically; `Ok(false)` when
    /// it did not (nothing written). Backends without [`Capabilities::conditional_writes`]
    /// answer an error (the default).
    fn put_if<'a>(
        &'a self,
        key: &'a str,
        value: Bytes,
        ttl: Option<Duration>,
        expect: Expect,
    ) -> BoxFuture<'a, Result<bool, StorageError>> {
        let _ = (key, value, ttl, expect);
        boxed(async { Err(StorageError::unsupported("conditional writes")) })
    }
    /// Deletes a value (absent keys are not an error).
    fn delete<'a>(&'a self, key: &'a str) -> BoxFuture<'a, Result<(), StorageError>>;
    /// One page of the live keys that start with `prefix`, in key order: at most `limit`
    /// keys (clamped to `1..=`[`MAX_LIST_LIMIT`]), after `cursor` (from the previous page;
    /// `None` for the first). [`list_all`] collects every page.
    fn list<'a>(
        &'a self,
        prefix: &'a str,
        limit: usize,
        cursor: Option<&'a str>,
    ) -> BoxFuture<'a, Result<ListPage, StorageError>>;
    /// Reads several values, in the order of `keys`. The default reads them one by one;
    /// backends where each read is a round trip answer in one.
    fn get_many<'a>(
        &'a self,
        keys: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<Option<Bytes>>, StorageError>> {
        boxed(async move {
            let mut out = Vec::with_capacity(keys.len());
            for k in keys {
                out.push(self.get(k).await?);
            }
            Ok(out)
        })
    }
}

/// Every live key under `prefix`, in key order, reading page after page of
/// [`MAX_LIST_LIMIT`] keys.
///
/// # Errors
/// The first failing page's error.
pub async fn list_all<S: Storage + ?Sized>(
    storage: &S,
    prefix: &str,
) -> Result<Vec<String>, StorageError> {
    let mut keys = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let page = storage
            .list(prefix, MAX_LIST_LIMIT, cursor.as_deref())
            .await?;
        keys.extend(page.keys);
        match page.cursor {
            // A cursor that does not move would loop forever: treat it as the end.
            Some(next) if cursor.as_deref() != Some(next.as_str()) => cursor = Some(next),
            _ => break,
        }
    }
    Ok(keys)
}

/// Clamps a `limit` given to [`Storage::list`] to `1..=`[`MAX_LIST_LIMIT`], for backends.
pub fn clamp_list_limit(limit: usize) -> usize {
    limit.clamp(1, MAX_LIST_LIMIT)
}

// ---------------------------------------------------------------------------------------------
// Media
// ---------------------------------------------------------------------------------------------

pub mod media;

pub use media::{ByteRange, Media, MediaObject, MediaRead, MediaStore, MediaStream, MediaUpload};

// ---------------------------------------------------------------------------------------------
// Request logs
// ---------------------------------------------------------------------------------------------

pub mod logs;

pub use logs::{LogFilter, LogRecord, LogStore, Retention};

mod update;

pub(crate) use update::update_json;

// ---------------------------------------------------------------------------------------------
// Coordination
// ---------------------------------------------------------------------------------------------

/// A held slot; release it when the generation ends.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SlotLease {
    /// The account that holds it.
    pub account_id: String,
    /// The lease id within that account.
    pub lease_id: String,
}

pub use crate::coordination::{AccountCommand, AccountReply, SlotKind, SlotRequest};

/// Strongly consistent per-account state: concurrency slots held as leases, the access token
/// and its single-flight refresh lock, consecutive errors and cooldown.
///
/// Every implementation keeps one [`crate::coordination::AccountState`] per account and calls
/// its `apply` for each command, atomically per account: natively an in-process table, at the
/// edge one Durable Object per account.
pub trait Coordinator: MaybeSend + MaybeSync {
    /// Applies one command to one account's state.
    fn apply<'a>(
        &'a self,
        account_id: &'a str,
        command: AccountCommand,
    ) -> BoxFuture<'a, Result<AccountReply, StorageError>>;
}

/// Runs a future to completion in the background, beyond the request that started it
/// (`tokio::spawn` natively, `waitUntil` at the edge). Used to release a slot when a client
/// disconnects mid-generation.
pub trait Spawn: MaybeSend + MaybeSync {
    /// Starts `future`.
    fn spawn(&self, future: BoxFuture<'static, ()>);
}

// ---------------------------------------------------------------------------------------------
// Clock
// ---------------------------------------------------------------------------------------------

/// Wall-clock time and sleeping, injected so the SDK needs no runtime and tests control time.
pub trait Clock: MaybeSend + MaybeSync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// Resolves after `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

// ---------------------------------------------------------------------------------------------
// Captcha
// ---------------------------------------------------------------------------------------------

/// The reCAPTCHA action a token is solved for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptchaAction {
    /// Image generation and image upsample.
    ImageGeneration,
    /// Every video submit.
    VideoGeneration,
}

impl CaptchaAction {
    /// The action name Google expects.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ImageGeneration => "IMAGE_GENERATION",
            Self::VideoGeneration => "VIDEO_GENERATION",
        }
    }
}

/// What to solve: one reCAPTCHA Enterprise token for (site key, page URL, action).
#[derive(Debug, Clone)]
pub struct CaptchaRequest {
    /// reCAPTCHA site key.
    pub site_key: String,
    /// The page the token is for (the Flow project page).
    pub page_url: String,
    /// The action.
    pub action: CaptchaAction,
    /// Another site's own action name in place of `action`'s (the admin score test solves
    /// for a score-checking site); `None` for Flow.
    pub page_action: Option<String>,
    /// The Flow project the token is for (empty for another site); a browser service opens
    /// its page.
    pub project_id: String,
    /// The account the token is for, when there is one (a browser service keeps one profile
    /// per account).
    pub account_id: Option<String>,
    /// How the solver's own calls leave (the attempt's egress, which the submit uses too);
    /// `None`: the client's defaults.
    pub egress: Option<Egress>,
    /// The account's `extension_route_key`, which picks the browser of the `extension` method
    /// (§10.5); `None` where no account is involved.
    pub route_key: Option<String>,
}

impl CaptchaRequest {
    /// The action name to solve for: `page_action`, else `action`'s.
    pub fn action_name(&self) -> &str {
        self.page_action
            .as_deref()
            .unwrap_or_else(|| self.action.as_str())
    }
}

/// A solved token and the browser identity that solved it, which the submit must reuse.
#[derive(Debug, Clone)]
pub struct CaptchaSolution {
    /// The reCAPTCHA token.
    pub token: crate::secret::Secret,
    /// The User-Agent the solver used; the submit sends the same one.
    pub user_agent: String,
    /// The method that solved it (`capsolver`…), so that Google's verdict on the token is
    /// booked against the right solver.
    pub method: String,
    /// The rest of the solving browser's identity (client hints, language, cookies), which
    /// the submit also sends; empty for solvers that report only a User-Agent.
    pub identity: BrowserIdentity,
    /// The egress the submit must use when the solver names one (`Some("")` = direct); `None`
    /// leaves the choice to the gateway.
    pub proxy_url: Option<String>,
    /// The solver's handle on this solve (a browser service's session), for
    /// [`CaptchaSolver::finish`].
    pub session_id: Option<String>,
}

/// What a browser-based solver reports of the browser it solved in, beyond the User-Agent
/// (`docs/upstream.md#remote-browser`): Google scores the token against the browser, so the
/// submit presents the same client hints, language and Google cookies.
#[derive(Debug, Clone, Default)]
pub struct BrowserIdentity {
    /// `Accept-Language`.
    pub accept_language: Option<String>,
    /// `sec-ch-ua`.
    pub sec_ch_ua: Option<String>,
    /// `sec-ch-ua-mobile`.
    pub sec_ch_ua_mobile: Option<String>,
    /// `sec-ch-ua-platform`.
    pub sec_ch_ua_platform: Option<String>,
    /// The browser's Google session cookies as one `Cookie` header value (`a=1; b=2`), sent
    /// with the submit. A secret: never logged.
    pub cookies: Option<crate::secret::Secret>,
}

/// Why a solver gave no token. A method chain moves on to its next method on every kind: each
/// says "this method cannot help now", none says "no method can".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CaptchaErrorKind {
    /// The method lacks what it needs (no API key…); no call was made.
    NotConfigured,
    /// The provider has no capacity (no free slot, no balance, no connected browser).
    NoCapacity,
    /// The provider refused or failed the task (an `errorId`, an HTTP error).
    Provider,
    /// No token within the polling budget.
    NoToken,
    /// The solver could not be reached through the attempt's egress (its relay or proxy is
    /// down or refused the request).
    Egress,
}

impl CaptchaErrorKind {
    /// A stable snake_case name, for stats.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotConfigured => "not_configured",
            Self::NoCapacity => "no_capacity",
            Self::Provider => "provider",
            Self::NoToken => "no_token",
            Self::Egress => "egress",
        }
    }
}

/// A captcha provider failure. Never counted against an account.
#[derive(Debug, Clone, thiserror::Error)]
#[error("captcha solver: {message}")]
pub struct CaptchaError {
    /// Why.
    pub kind: CaptchaErrorKind,
    /// What happened, free of the solver key.
    pub message: String,
}

impl CaptchaError {
    /// A failure of `kind` described by `message` (which must not contain a secret).
    pub fn new(kind: CaptchaErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

/// Produces reCAPTCHA tokens.
pub trait CaptchaSolver: MaybeSend + MaybeSync {
    /// Solves one token.
    fn solve<'a>(
        &'a self,
        request: &'a CaptchaRequest,
    ) -> BoxFuture<'a, Result<CaptchaSolution, CaptchaError>>;

    /// Tells the solver how the submit that used `solution` ended (`failure`: why it failed,
    /// `None` on success), so that a browser service can release or recycle its session.
    /// Best effort: errors are the solver's to swallow. Task APIs take no feedback.
    fn finish<'a>(
        &'a self,
        solution: &'a CaptchaSolution,
        failure: Option<&'a str>,
    ) -> BoxFuture<'a, ()> {
        let _ = (solution, failure);
        boxed(async {})
    }

    /// Warns the solver that a solve for `request` is coming, so a browser service can open
    /// the page ahead of time. Best effort, and rate-limited by the solver.
    fn prefill<'a>(&'a self, request: &'a CaptchaRequest) -> BoxFuture<'a, ()> {
        let _ = request;
        boxed(async {})
    }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;
    use futures::StreamExt;

    use super::*;

    /// A closure client that answers every request with `body` and a marker header.
    fn fixed(body: &'static [u8]) -> impl HttpClient {
        move |request: HttpRequest| async move {
            assert_eq!(request.uri(), "https://example.test/video.mp4");
            let mut response = http::Response::new(Bytes::from_static(body));
            *response.status_mut() = http::StatusCode::PARTIAL_CONTENT;
            response
                .headers_mut()
                .insert("content-type", http::HeaderValue::from_static("video/mp4"));
            Ok::<_, TransportError>(response)
        }
    }

    fn request() -> HttpRequest {
        http::Request::get("https://example.test/video.mp4")
            .body(Bytes::new())
            .expect("a valid request")
    }

    #[test]
    fn default_call_streaming_yields_the_whole_body_as_one_chunk() {
        let client = fixed(b"0123456789");
        let response = block_on(client.call_streaming(request())).expect("a response");
        assert_eq!(response.status(), http::StatusCode::PARTIAL_CONTENT);
        assert_eq!(response.headers()["content-type"], "video/mp4");
        let chunks: Vec<_> = block_on(response.into_body().collect());
        assert_eq!(chunks.len(), 1);
        assert_eq!(
            chunks[0].as_ref().expect("no error"),
            &Bytes::from_static(b"0123456789")
        );
    }

    #[test]
    fn default_call_streaming_yields_no_chunk_for_an_empty_body() {
        let client = fixed(b"");
        let response = block_on(client.call_streaming(request())).expect("a response");
        let chunks: Vec<_> = block_on(response.into_body().collect());
        assert!(chunks.is_empty());
    }

    #[test]
    fn default_call_streaming_passes_transport_errors_through() {
        let client = |_: HttpRequest| async {
            Err::<HttpResponse, _>(TransportError::new(TransportErrorKind::Connect, "refused"))
        };
        let Err(error) = block_on(client.call_streaming(request())) else {
            panic!("expected a transport error");
        };
        assert_eq!(error.kind, TransportErrorKind::Connect);
    }
}
