//! The egress relay (`flow2api-server --relay`, `docs/egress.md`): a small HTTP server that
//! forwards requests signed by a gateway ([`crate::egress::relay`]) to the upstream hosts it
//! allows, from the machine it runs on, streaming each answer back.
//!
//! Each request is checked before anything leaves: the four `X-Relay-*` headers, the HMAC over
//! method, URL, timestamp, nonce and body hash with `RELAY_SECRET` (401), a timestamp within
//! ±60 s and a nonce never seen before (401), and the target's host on the allow-list (403).
//! Refusals carry `X-Relay-Error`. Nothing logs a body, a header value or a query.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::egress::relay::{self, NonceCache, RelayRefusal};
use crate::secret::Secret;

/// The largest request body the relay forwards (it hashes the body before sending it on).
pub const MAX_RELAY_BODY: usize = 64 * 1024 * 1024;

/// What the relay needs, from the same variables as the server's.
#[derive(Clone)]
pub struct RelayOptions {
    /// `RELAY_SECRET`: the key of every signature.
    pub secret: Secret,
    /// The hosts it forwards to: those of the configured upstream and solver base URLs and
    /// `RELAY_ALLOW_HOSTS`.
    pub allow_hosts: Vec<String>,
    /// `RELAY_PROXY_URL`: its own upstream proxy (normalised), if any.
    pub proxy: Option<Secret>,
    /// Print one line per request on stderr (method, host, status, time; never a path).
    pub log_requests: bool,
}

impl std::fmt::Debug for RelayOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RelayOptions")
            .field("allow_hosts", &self.allow_hosts)
            .field(
                "proxy",
                &self
                    .proxy
                    .as_ref()
                    .map(|p| crate::proxy_url::mask(p.expose())),
            )
            .field("log_requests", &self.log_requests)
            .finish_non_exhaustive()
    }
}

/// A relay setting that cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayConfigError {
    /// `RELAY_SECRET` is unset or shorter than 16 characters.
    #[error("RELAY_SECRET must be set to at least 16 characters")]
    Secret,
    /// `RELAY_PROXY_URL` is not a proxy address.
    #[error("RELAY_PROXY_URL: {0}")]
    Proxy(crate::proxy_url::ProxyFormatError),
    /// An entry of `RELAY_ALLOW_HOSTS` is not a host name.
    #[error("RELAY_ALLOW_HOSTS: {0:?} is not a host name")]
    Host(String),
    /// The HTTP client could not be built.
    #[error("the relay's HTTP client: {0}")]
    Client(String),
}

impl RelayOptions {
    /// Reads `RELAY_SECRET`, `RELAY_ALLOW_HOSTS`, `RELAY_PROXY_URL` and `LOG_REQUESTS`
    /// through `lookup`; the base URLs' hosts come from `config`.
    ///
    /// # Errors
    /// [`RelayConfigError`].
    pub fn from_lookup(
        config: &Config,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, RelayConfigError> {
        let get = |n: &str| {
            lookup(n)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let secret = get("RELAY_SECRET")
            .filter(|s| s.len() >= 16)
            .ok_or(RelayConfigError::Secret)?;
        let proxy = match get("RELAY_PROXY_URL") {
            Some(raw) => crate::proxy_url::normalize(&raw)
                .map_err(RelayConfigError::Proxy)?
                .map(Secret::new),
            None => None,
        };
        let mut allow_hosts: Vec<String> = Vec::new();
        let bases = [
            &config.labs_base_url,
            &config.api_base_url,
            &config.yescaptcha_base_url,
            &config.capmonster_base_url,
            &config.ezcaptcha_base_url,
            &config.capsolver_base_url,
        ];
        for base in bases {
            if let Some(h) = url::Url::parse(base)
                .ok()
                .and_then(|u| u.host_str().map(str::to_owned))
            {
                allow_hosts.push(h.to_ascii_lowercase());
            }
        }
        for entry in get("RELAY_ALLOW_HOSTS").unwrap_or_default().split(',') {
            let h = entry.trim().to_ascii_lowercase();
            if h.is_empty() {
                continue;
            }
            let valid = url::Url::parse(&format!("http://{h}/"))
                .ok()
                .and_then(|u| u.host_str().map(|x| x == h))
                .unwrap_or(false);
            if !valid {
                return Err(RelayConfigError::Host(h));
            }
            allow_hosts.push(h);
        }
        allow_hosts.sort();
        allow_hosts.dedup();
        let log_requests = !matches!(
            get("LOG_REQUESTS")
                .map(|v| v.to_ascii_lowercase())
                .as_deref(),
            Some("0" | "false" | "off" | "no")
        );
        Ok(Self {
            secret: Secret::new(secret),
            allow_hosts,
            proxy,
            log_requests,
        })
    }
}

/// The relay's state: its options, client, nonces and counters.
struct Relay {
    options: RelayOptions,
    client: reqwest::Client,
    nonces: Mutex<NonceCache>,
    forwarded: AtomicU64,
    refused: AtomicU64,
}

type RelayBody = http_body_util::Either<
    Full<Bytes>,
    StreamBody<Pin<Box<dyn Stream<Item = Result<Frame<Bytes>, io::Error>> + Send>>>,
>;

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn refusal(r: RelayRefusal) -> Response<RelayBody> {
    let body = serde_json::json!({"error": {"code": r.code(), "message": r.to_string()}});
    let mut resp = Response::new(http_body_util::Either::Left(Full::new(Bytes::from(
        body.to_string(),
    ))));
    *resp.status_mut() = r.status();
    let h = resp.headers_mut();
    h.insert(relay::HEADER_ERROR, HeaderValue::from_static(r.code()));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

fn json(status: StatusCode, v: &serde_json::Value) -> Response<RelayBody> {
    let mut resp = Response::new(http_body_util::Either::Left(Full::new(Bytes::from(
        v.to_string(),
    ))));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Headers that belong to one connection, never forwarded either way.
fn hop_by_hop(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-authenticate"
            | "proxy-authorization"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "host"
            | "content-length"
    ) || name.as_str().starts_with("x-relay-")
}

impl Relay {
    async fn handle(&self, req: Request<Incoming>) -> Response<RelayBody> {
        let started = Instant::now();
        let method = req.method().clone();
        let (resp, host) = self.answer(req).await;
        if resp.headers().contains_key(relay::HEADER_ERROR) {
            self.refused.fetch_add(1, Ordering::Relaxed);
        }
        if self.options.log_requests {
            tracing::info!(
                "relay {method} {} {} {} ms",
                host.as_deref().unwrap_or("-"),
                resp.status().as_u16(),
                started.elapsed().as_millis()
            );
        }
        resp
    }

    async fn answer(&self, req: Request<Incoming>) -> (Response<RelayBody>, Option<String>) {
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/healthz") => {
                let v = serde_json::json!({
                    "ok": true,
                    "forwarded": self.forwarded.load(Ordering::Relaxed),
                    "refused": self.refused.load(Ordering::Relaxed),
                });
                return (json(StatusCode::OK, &v), None);
            }
            (_, relay::RELAY_PATH) => {}
            _ => {
                let v = serde_json::json!({"error": {"code": "not_found", "message": "only /relay and /healthz"}});
                return (json(StatusCode::NOT_FOUND, &v), None);
            }
        }
        let (parts, body) = req.into_parts();
        let now = now_secs();
        // A large body with its hash announced is checked against the signature first and
        // streamed on (`Forward::Streamed`); anything else is read whole and hashed here.
        let (signed, body) = match announced_stream(&parts.headers) {
            Some((hash, length)) => {
                match relay::verify_hashed(
                    self.options.secret.expose(),
                    parts.method.as_str(),
                    &parts.headers,
                    &hash,
                    now,
                ) {
                    Ok(s) => (s, Forward::Streamed(body, hash, length)),
                    Err(r) => return (refusal(r), None),
                }
            }
            None => {
                let body = match Limited::new(body, MAX_RELAY_BODY).collect().await {
                    Ok(b) => b.to_bytes(),
                    Err(_) => return (refusal(RelayRefusal::TooLarge), None),
                };
                match relay::verify(
                    self.options.secret.expose(),
                    parts.method.as_str(),
                    &parts.headers,
                    &body,
                    now,
                ) {
                    Ok(s) => (s, Forward::Whole(body)),
                    Err(r) => return (refusal(r), None),
                }
            }
        };
        let host = signed
            .url
            .host_str()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let accepted = match self.nonces.lock() {
            Ok(mut n) => n.accept(&signed.nonce, now),
            Err(poisoned) => poisoned.into_inner().accept(&signed.nonce, now),
        };
        if !accepted {
            return (refusal(RelayRefusal::Replayed), Some(host));
        }
        if !relay::host_allowed(&self.options.allow_hosts, &host) {
            return (refusal(RelayRefusal::ForbiddenHost), Some(host));
        }
        let mut out = reqwest::Request::new(parts.method.clone(), signed.url);
        let headers: &mut HeaderMap = out.headers_mut();
        for (name, value) in &parts.headers {
            if !hop_by_hop(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        let mismatch = Arc::new(std::sync::atomic::AtomicBool::new(false));
        match body {
            Forward::Whole(body) => {
                if !body.is_empty() || parts.method != Method::GET {
                    *out.body_mut() = Some(reqwest::Body::from(body));
                }
            }
            Forward::Streamed(body, hash, length) => {
                out.headers_mut()
                    .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
                *out.body_mut() = Some(reqwest::Body::wrap_stream(checked(
                    body,
                    hash,
                    mismatch.clone(),
                )));
            }
        }
        self.forwarded.fetch_add(1, Ordering::Relaxed);
        let upstream = match self.client.execute(out).await {
            Ok(r) => r,
            Err(_) if mismatch.load(Ordering::Relaxed) => {
                return (refusal(RelayRefusal::BadSignature), Some(host))
            }
            Err(e) if e.is_timeout() => {
                return (refusal(RelayRefusal::UpstreamTimeout), Some(host))
            }
            Err(_) => return (refusal(RelayRefusal::UpstreamUnreachable), Some(host)),
        };
        let mut resp = Response::builder().status(upstream.status());
        for (name, value) in upstream.headers() {
            if !hop_by_hop(name) || name == header::CONTENT_LENGTH {
                resp = resp.header(name, value);
            }
        }
        let chunks = upstream
            .bytes_stream()
            .map(|c| c.map(Frame::data).map_err(io::Error::other));
        let body: Pin<Box<dyn Stream<Item = _> + Send>> = Box::pin(chunks);
        let resp = resp
            .body(http_body_util::Either::Right(StreamBody::new(body)))
            .unwrap_or_else(|_| refusal(RelayRefusal::UpstreamUnreachable));
        (resp, Some(host))
    }
}

/// Bodies at least this large, announced with `Content-Length` and `X-Relay-Body-Sha256`, are
/// streamed on rather than read whole first.
const STREAM_FROM: u64 = 64 * 1024;

/// What is forwarded as the body.
enum Forward {
    /// Read whole and checked.
    Whole(Bytes),
    /// Streamed, checked against the announced hash as it passes (with its length).
    Streamed(Incoming, String, u64),
}

/// The announced hash and length of a body to stream: both headers present, the hash
/// well-formed, the length from [`STREAM_FROM`] to [`MAX_RELAY_BODY`].
fn announced_stream(headers: &HeaderMap) -> Option<(String, u64)> {
    let hash = headers
        .get(relay::HEADER_BODY_SHA256)?
        .to_str()
        .ok()?
        .trim();
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let length: u64 = headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    (STREAM_FROM..=MAX_RELAY_BODY as u64)
        .contains(&length)
        .then(|| (hash.to_ascii_lowercase(), length))
}

/// `body` passed on chunk by chunk while hashed, its last chunk held back until the hash is
/// known: a body whose hash is not the signed one ends in an error before the upstream has it
/// whole (and `mismatch` is set), so nothing unsigned is ever delivered complete.
fn checked(
    body: Incoming,
    expected: String,
    mismatch: Arc<std::sync::atomic::AtomicBool>,
) -> impl Stream<Item = Result<Bytes, io::Error>> + Send + 'static {
    use sha2::Digest;
    struct State {
        body: Option<Incoming>,
        hasher: sha2::Sha256,
        held: Option<Bytes>,
        expected: String,
        mismatch: Arc<std::sync::atomic::AtomicBool>,
    }
    let state = State {
        body: Some(body),
        hasher: sha2::Sha256::new(),
        held: None,
        expected,
        mismatch,
    };
    futures::stream::unfold(state, |mut st| async move {
        loop {
            let Some(body) = st.body.as_mut() else {
                // The end was checked: release what was held, then stop.
                return st.held.take().map(|b| (Ok(b), st));
            };
            match body.frame().await {
                Some(Ok(frame)) => {
                    let Ok(data) = frame.into_data() else {
                        continue;
                    };
                    if data.is_empty() {
                        continue;
                    }
                    st.hasher.update(&data);
                    if let Some(prev) = st.held.replace(data) {
                        return Some((Ok(prev), st));
                    }
                }
                Some(Err(e)) => {
                    st.body = None;
                    st.held = None;
                    return Some((Err(io::Error::other(e)), st));
                }
                None => {
                    st.body = None;
                    let got = crate::util::hex(&std::mem::take(&mut st.hasher).finalize());
                    if got != st.expected {
                        st.mismatch.store(true, Ordering::Relaxed);
                        st.held = None;
                        let e = io::Error::other("the body is not the one signed");
                        return Some((Err(e), st));
                    }
                }
            }
        }
    })
}

/// Serves the relay on `listener` until `shutdown` resolves.
///
/// # Errors
/// [`RelayConfigError::Client`] when its HTTP client cannot be built (TLS, proxy).
pub async fn serve_relay(
    listener: TcpListener,
    options: RelayOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), RelayConfigError> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(15));
    if let Some(p) = &options.proxy {
        let proxy = reqwest::Proxy::all(p.expose())
            .map_err(|_| RelayConfigError::Client("RELAY_PROXY_URL is not usable".into()))?;
        builder = builder.proxy(proxy);
    }
    let client = builder
        .build()
        .map_err(|e| RelayConfigError::Client(e.to_string()))?;
    let relay = Arc::new(Relay {
        options,
        client,
        nonces: Mutex::new(NonceCache::default()),
        forwarded: AtomicU64::new(0),
        refused: AtomicU64::new(0),
    });
    let mut http = http1::Builder::new();
    http.keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(30));
    let mut conns = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let Ok((stream, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let relay = relay.clone();
        let conn = http.serve_connection(
            TokioIo::new(stream),
            service_fn(move |req| {
                let relay = relay.clone();
                async move { Ok::<_, Infallible>(relay.handle(req).await) }
            }),
        );
        conns.spawn(async move {
            let _ = conn.await;
        });
        while conns.try_join_next().is_some() {}
    }
    conns.abort_all();
    Ok(())
}
