//! [`ReqwestHttp`]: the SDK's [`HttpClient`] over reqwest.

use std::collections::HashMap;
use std::error::Error as _;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::seams::{
    boxed, boxed_stream, BoxFuture, Egress, HttpRequest, HttpResponse, HttpStreamResponse,
    TransportError, TransportErrorKind,
};
use crate::HttpClient;

/// One `reqwest::Client` per proxy a request named, built on first use and kept.
type Proxied = Arc<std::sync::Mutex<HashMap<Arc<str>, reqwest::Client>>>;

/// An [`HttpClient`] over one shared `reqwest::Client`: pooled keep-alive connections, rustls,
/// no redirects (the SDK decides), no overall timeout (the SDK races every call against its
/// own deadline). Cheap to clone.
///
/// A request carrying [`Egress::Proxy`] goes through that proxy (HTTP, HTTPS, SOCKS5 or
/// SOCKS5h) on a client of its own, built once per proxy and kept; a request without one
/// uses the shared client, with no lookup.
#[derive(Clone)]
pub struct ReqwestHttp {
    client: reqwest::Client,
    proxied: Proxied,
}

impl std::fmt::Debug for ReqwestHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReqwestHttp").finish_non_exhaustive()
    }
}

/// The builder of every client: no redirects, pooled connections, a connect deadline.
fn builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(32)
        .tcp_nodelay(true)
        .tcp_keepalive(Duration::from_secs(60))
        .connect_timeout(Duration::from_secs(15))
}

/// A client that sends everything through `proxy` (a canonical `crate::proxy_url` URL).
///
/// # Errors
/// [`TransportErrorKind::Egress`] when the proxy URL is unusable; the message never repeats it.
pub fn proxied_client(proxy: &str) -> Result<reqwest::Client, TransportError> {
    let unusable = |what: &str| {
        TransportError::new(
            TransportErrorKind::Egress,
            format!("proxy {}: {what}", crate::proxy_url::mask(proxy)),
        )
    };
    let proxy = reqwest::Proxy::all(proxy).map_err(|_| unusable("not a usable proxy URL"))?;
    builder()
        .proxy(proxy)
        .build()
        .map_err(|_| unusable("the client could not be built"))
}

impl ReqwestHttp {
    /// Builds the client.
    ///
    /// # Errors
    ///
    /// When the TLS backend cannot be initialised.
    pub fn new() -> Result<Self, reqwest::Error> {
        Ok(Self::from_client(builder().build()?))
    }

    /// Wraps a client built elsewhere. It must not follow redirects.
    pub fn from_client(client: reqwest::Client) -> Self {
        Self {
            client,
            proxied: Proxied::default(),
        }
    }

    /// The client for `request`'s egress: the shared one (borrowed), or its proxy's.
    fn client_for(
        &self,
        request: &HttpRequest,
    ) -> Result<std::borrow::Cow<'_, reqwest::Client>, TransportError> {
        use std::borrow::Cow;
        match request.extensions().get::<Egress>() {
            None | Some(Egress::Direct) => Ok(Cow::Borrowed(&self.client)),
            Some(Egress::Proxy(proxy)) => {
                let mut cache = match self.proxied.lock() {
                    Ok(c) => c,
                    Err(poisoned) => poisoned.into_inner(),
                };
                if let Some(c) = cache.get(proxy) {
                    return Ok(Cow::Owned(c.clone()));
                }
                let client = proxied_client(proxy)?;
                cache.insert(proxy.clone(), client.clone());
                Ok(Cow::Owned(client))
            }
            Some(_) => Err(TransportError::new(
                TransportErrorKind::Egress,
                "a relay egress must be sent through egress::EgressHttp",
            )),
        }
    }

    /// Sends `request` and returns the response once its head has arrived.
    async fn execute(&self, request: HttpRequest) -> Result<reqwest::Response, TransportError> {
        let proxy = match request.extensions().get::<Egress>() {
            Some(Egress::Proxy(p)) => Some(p.clone()),
            _ => None,
        };
        let client = self.client_for(&request)?;
        let request = reqwest::Request::try_from(request).map_err(transport_error)?;
        match proxy {
            None => client.execute(request).await.map_err(transport_error),
            Some(proxy) => client.execute(request).await.map_err(|e| {
                let mut e = transport_error(e);
                // A proxy that cannot be reached is the egress's failure, not the upstream's.
                if e.kind == TransportErrorKind::Connect {
                    e.kind = TransportErrorKind::Egress;
                }
                e.message = scrub(&e.message, &proxy);
                e
            }),
        }
    }
}

/// `message` without `proxy`'s credentials, should the backend have named them.
fn scrub(message: &str, proxy: &str) -> String {
    let mut out = message.replace(proxy, &crate::proxy_url::mask(proxy));
    if let Ok(u) = url::Url::parse(proxy) {
        for part in [u.username(), u.password().unwrap_or_default()] {
            if part.len() >= 3 {
                out = out.replace(part, "***");
            }
        }
    }
    out
}

/// Moves the status, headers and version of `response` onto `body`.
fn with_head<B>(response: &mut reqwest::Response, body: B) -> http::Response<B> {
    let mut out = http::Response::new(body);
    *out.status_mut() = response.status();
    *out.headers_mut() = std::mem::take(response.headers_mut());
    *out.version_mut() = response.version();
    out
}

impl HttpClient for ReqwestHttp {
    fn call(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        boxed(async move {
            let mut response = self.execute(request).await?;
            let out = with_head(&mut response, ());
            let body = response.bytes().await.map_err(transport_error)?;
            Ok(out.map(|()| body))
        })
    }

    /// Streams the body chunk by chunk as hyper receives it (`Response::chunk`, the loop behind
    /// reqwest's `bytes_stream`, which would need its `stream` feature and `tokio-util`).
    /// Dropping the stream drops the connection's body, which stops the transfer.
    fn call_streaming(
        &self,
        request: HttpRequest,
    ) -> BoxFuture<'_, Result<HttpStreamResponse, TransportError>> {
        boxed(async move {
            let mut response = self.execute(request).await?;
            let out = with_head(&mut response, ());
            // `Some(response)` while the body may have more; `None` after the end or an error.
            let chunks = futures::stream::unfold(Some(response), |state| async move {
                let mut response = state?;
                match response.chunk().await {
                    Ok(Some(chunk)) => Some((Ok(chunk), Some(response))),
                    Ok(None) => None,
                    Err(e) => Some((Err(transport_error(e)), None)),
                }
            });
            Ok(out.map(|()| boxed_stream(chunks)))
        })
    }
}

/// Classifies a reqwest error; the message is the error chain without the URL (which may carry
/// keys in its query).
fn transport_error(e: reqwest::Error) -> TransportError {
    let kind = if e.is_timeout() {
        TransportErrorKind::Timeout
    } else if e.is_connect() || e.is_request() {
        TransportErrorKind::Connect
    } else {
        TransportErrorKind::Other
    };
    let e = e.without_url();
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = s.source();
    }
    TransportError::new(kind, message)
}

/// Looks up the addresses of a host name: the system resolver by default
/// ([`PublicOnlyHttp::new`]); tests and embedders with their own DNS give another
/// ([`PublicOnlyHttp::with_lookup`]).
#[cfg(feature = "tokio")]
pub type Lookup = Arc<
    dyn Fn(String) -> crate::seams::BoxFuture<'static, std::io::Result<Vec<IpAddr>>> + Send + Sync,
>;

/// The [`HttpClient`] for URLs that clients give (image URLs): it connects to public
/// addresses only ([`crate::public_ip::is_public`]). A literal address in the URL is checked
/// before anything is sent; a name is resolved, every address it resolves to is checked (one
/// non-public address refuses the name), and the connection goes to those checked addresses
/// alone, so a name that resolves differently a moment later (DNS rebinding) cannot switch
/// it. No proxy is used (a proxy would resolve the name itself). Redirects are not followed;
/// the gateway follows them through this client, so every hop is checked again.
#[cfg(feature = "tokio")]
#[derive(Clone)]
pub struct PublicOnlyHttp {
    inner: ReqwestHttp,
}

#[cfg(feature = "tokio")]
impl std::fmt::Debug for PublicOnlyHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicOnlyHttp").finish_non_exhaustive()
    }
}

#[cfg(feature = "tokio")]
impl PublicOnlyHttp {
    /// Over the system resolver. Must be used inside a tokio runtime.
    ///
    /// # Errors
    /// When the TLS backend cannot be initialised.
    pub fn new() -> Result<Self, reqwest::Error> {
        Self::with_lookup(Arc::new(|name: String| {
            crate::seams::boxed(async move {
                let addrs = tokio::net::lookup_host((name.as_str(), 0)).await?;
                Ok(addrs.map(|a| a.ip()).collect())
            })
        }))
    }

    /// Over `lookup` instead of the system resolver.
    ///
    /// # Errors
    /// When the TLS backend cannot be initialised.
    pub fn with_lookup(lookup: Lookup) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(PublicOnly { lookup }))
            .pool_idle_timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self {
            inner: ReqwestHttp::from_client(client),
        })
    }

    /// Refuses a request whose URL names a non-public address literally (the resolver is not
    /// asked for those).
    fn check(request: &HttpRequest) -> Result<(), TransportError> {
        let refused = || {
            TransportError::new(
                TransportErrorKind::Connect,
                "refused: the destination is not a public address",
            )
        };
        let host = request.uri().host().ok_or_else(refused)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        match host.parse::<IpAddr>() {
            Ok(ip) if !crate::public_ip::is_public(ip) => Err(refused()),
            _ => Ok(()),
        }
    }
}

#[cfg(feature = "tokio")]
impl HttpClient for PublicOnlyHttp {
    fn call(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        match Self::check(&request) {
            Ok(()) => self.inner.call(request),
            Err(e) => boxed(async move { Err(e) }),
        }
    }

    fn call_streaming(
        &self,
        request: HttpRequest,
    ) -> BoxFuture<'_, Result<HttpStreamResponse, TransportError>> {
        match Self::check(&request) {
            Ok(()) => self.inner.call_streaming(request),
            Err(e) => boxed(async move { Err(e) }),
        }
    }
}

/// The resolver of [`PublicOnlyHttp`]: its lookup's addresses, all of them public, or an error.
#[cfg(feature = "tokio")]
struct PublicOnly {
    lookup: Lookup,
}

#[cfg(feature = "tokio")]
impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let lookup = (self.lookup)(name.as_str().to_owned());
        Box::pin(async move {
            let addrs = lookup.await?;
            if addrs.is_empty() {
                return Err("the name has no address".into());
            }
            if addrs.iter().any(|ip| !crate::public_ip::is_public(*ip)) {
                return Err("refused: the name resolves to a non-public address".into());
            }
            let addrs: reqwest::dns::Addrs =
                Box::new(addrs.into_iter().map(|ip| std::net::SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}
