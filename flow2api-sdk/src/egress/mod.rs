//! How upstream calls leave the host: directly, through a proxy, or through an egress relay
//! (`docs/egress.md`).
//!
//! The code that decides sets an [`Egress`] extension on a request (an account's own proxy or
//! relay, the media proxy, a solver's named proxy); [`EgressHttp`], which wraps the host's
//! [`HttpClient`] for every upstream call, fills in the configured default (`EGRESS_RELAY_URL`,
//! else `PROXY_URL`) for requests without one and turns [`Egress::Relay`] into a signed request
//! to the relay ([`relay`]). A proxy is left to the host's client, which either honours it
//! (natively) or fails the request (Workers cannot use proxies); nothing falls back to a
//! direct call.

pub mod relay;

use std::sync::Arc;

use crate::config::Config;
use crate::seams::{
    boxed, BoxFuture, Clock, Egress, HttpClient, HttpRequest, HttpResponse, HttpStreamResponse,
    RelayRoute, TransportError, TransportErrorKind,
};
use crate::secret::Secret;

/// The default egress `config` names: its relay (`EGRESS_RELAY_URL` with
/// `EGRESS_RELAY_SECRET`), else its proxy (`PROXY_URL`), else none (direct).
pub fn default_egress(config: &Config) -> Option<Egress> {
    match (&config.egress_relay_url, &config.egress_relay_secret) {
        (Some(url), Some(secret)) => Some(Egress::Relay(RelayRoute {
            url: Arc::from(url.as_str()),
            secret: secret.clone(),
        })),
        _ => config
            .proxy_url
            .as_ref()
            .map(|p| Egress::Proxy(Arc::from(p.expose()))),
    }
}

/// The egress of one account's calls when it names its own: its relay (URL and secret), else
/// its proxy; `None` leaves the configured default.
pub fn account_egress(
    relay_url: Option<&str>,
    relay_secret: Option<&Secret>,
    proxy_url: Option<&Secret>,
) -> Option<Egress> {
    match (relay_url, relay_secret) {
        (Some(url), Some(secret)) => Some(Egress::Relay(RelayRoute {
            url: Arc::from(url),
            secret: secret.clone(),
        })),
        _ => proxy_url.map(|p| Egress::Proxy(Arc::from(p.expose()))),
    }
}

/// The egress a solver named for the submit (`CaptchaSolution::proxy_url`): `""` is direct;
/// anything else a proxy, normalised (`None` when it is not a proxy address).
pub fn solver_egress(proxy_url: &str) -> Option<Egress> {
    if proxy_url.trim().is_empty() {
        return Some(Egress::Direct);
    }
    crate::proxy_url::normalize(proxy_url)
        .ok()
        .flatten()
        .map(|p| Egress::Proxy(Arc::from(p)))
}

/// The [`HttpClient`] every upstream call goes through: applies the default egress to requests
/// that carry none and sends [`Egress::Relay`] requests to their relay, signed. A request with
/// neither an egress nor a default passes straight to the inner client (no allocation).
#[derive(Clone)]
pub struct EgressHttp {
    inner: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
    default: Option<Egress>,
}

impl std::fmt::Debug for EgressHttp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EgressHttp")
            .field("default", &self.default)
            .finish_non_exhaustive()
    }
}

/// Where one request goes after [`EgressHttp`] looked at it.
enum Routed {
    /// To the inner client as it is (perhaps with a proxy extension).
    Pass(HttpRequest),
    /// To a relay, already signed.
    Relay(HttpRequest),
}

impl EgressHttp {
    /// Wraps `inner` with `default` for requests that name no egress.
    pub fn new(inner: Arc<dyn HttpClient>, clock: Arc<dyn Clock>, default: Option<Egress>) -> Self {
        Self {
            inner,
            clock,
            default,
        }
    }

    /// Wraps `inner` with the default egress of `config` ([`default_egress`]).
    pub fn from_config(inner: Arc<dyn HttpClient>, clock: Arc<dyn Clock>, config: &Config) -> Self {
        Self::new(inner, clock, default_egress(config))
    }

    fn route(&self, mut req: HttpRequest) -> Result<Routed, TransportError> {
        let egress = match req.extensions_mut().remove::<Egress>() {
            Some(e) => Some(e),
            None => self.default.clone(),
        };
        match egress {
            None | Some(Egress::Direct) => Ok(Routed::Pass(req)),
            Some(Egress::Proxy(p)) => {
                req.extensions_mut().insert(Egress::Proxy(p));
                Ok(Routed::Pass(req))
            }
            Some(Egress::Relay(route)) => {
                let now_secs = self.clock.now_ms() / 1000;
                let nonce = crate::util::random_hex(16);
                relay::sign(req, &route, now_secs, &nonce).map(Routed::Relay)
            }
        }
    }

    fn needs_routing(&self, req: &HttpRequest) -> bool {
        self.default.is_some() || req.extensions().get::<Egress>().is_some()
    }
}

/// A relay's failure to forward: the transport error the caller sees.
fn relay_down(e: TransportError) -> TransportError {
    let kind = match e.kind {
        TransportErrorKind::Timeout => TransportErrorKind::Timeout,
        _ => TransportErrorKind::Egress,
    };
    TransportError::new(kind, format!("egress relay: {}", e.message))
}

impl HttpClient for EgressHttp {
    fn call(&self, req: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        if !self.needs_routing(&req) {
            return self.inner.call(req);
        }
        match self.route(req) {
            Ok(Routed::Pass(req)) => self.inner.call(req),
            Ok(Routed::Relay(req)) => boxed(async move {
                let resp = self.inner.call(req).await.map_err(relay_down)?;
                relay::check_response(resp.status(), resp.headers())?;
                Ok(resp)
            }),
            Err(e) => boxed(async move { Err(e) }),
        }
    }

    fn call_streaming(
        &self,
        req: HttpRequest,
    ) -> BoxFuture<'_, Result<HttpStreamResponse, TransportError>> {
        if !self.needs_routing(&req) {
            return self.inner.call_streaming(req);
        }
        match self.route(req) {
            Ok(Routed::Pass(req)) => self.inner.call_streaming(req),
            Ok(Routed::Relay(req)) => boxed(async move {
                let resp = self.inner.call_streaming(req).await.map_err(relay_down)?;
                relay::check_response(resp.status(), resp.headers())?;
                Ok(resp)
            }),
            Err(e) => boxed(async move { Err(e) }),
        }
    }
}

/// An [`HttpClient`] sending every request through `egress` over another client, for code
/// that builds its requests out of reach (following redirects): the extension is set on each.
pub struct Via<'a> {
    inner: &'a dyn HttpClient,
    egress: Egress,
}

impl std::fmt::Debug for Via<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Via")
            .field("egress", &self.egress)
            .finish_non_exhaustive()
    }
}

impl<'a> Via<'a> {
    /// `inner` with every request sent through `egress`.
    pub fn new(inner: &'a dyn HttpClient, egress: Egress) -> Self {
        Self { inner, egress }
    }
}

impl HttpClient for Via<'_> {
    fn call(&self, mut req: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        req.extensions_mut().insert(self.egress.clone());
        self.inner.call(req)
    }

    fn call_streaming(
        &self,
        mut req: HttpRequest,
    ) -> BoxFuture<'_, Result<HttpStreamResponse, TransportError>> {
        req.extensions_mut().insert(self.egress.clone());
        self.inner.call_streaming(req)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use futures::executor::block_on;

    use super::*;
    use crate::seams::Bytes;

    struct Fixed;
    impl Clock for Fixed {
        fn now_ms(&self) -> u64 {
            1_700_000_000_000
        }
        fn sleep(&self, _: Duration) -> BoxFuture<'static, ()> {
            boxed(async {})
        }
    }

    type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

    fn recorder(seen: Seen) -> Arc<dyn HttpClient> {
        Arc::new(move |req: HttpRequest| {
            let proxy = match req.extensions().get::<Egress>() {
                Some(Egress::Proxy(p)) => Some(p.to_string()),
                _ => None,
            };
            seen.lock().unwrap().push((req.uri().to_string(), proxy));
            async { Ok::<_, TransportError>(http::Response::new(Bytes::new())) }
        })
    }

    fn get(url: &str) -> HttpRequest {
        http::Request::get(url).body(Bytes::new()).unwrap()
    }

    #[test]
    fn the_default_applies_unless_the_request_names_its_own() {
        let seen = Seen::default();
        let http = EgressHttp::new(
            recorder(seen.clone()),
            Arc::new(Fixed),
            Some(Egress::Proxy(Arc::from("http://global:1"))),
        );
        block_on(http.call(get("https://a.example/x"))).unwrap();
        let mut own = get("https://a.example/y");
        own.extensions_mut()
            .insert(Egress::Proxy(Arc::from("socks5://mine:2")));
        block_on(http.call(own)).unwrap();
        let mut direct = get("https://a.example/z");
        direct.extensions_mut().insert(Egress::Direct);
        block_on(http.call(direct)).unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen[0].1.as_deref(), Some("http://global:1"));
        assert_eq!(seen[1].1.as_deref(), Some("socks5://mine:2"));
        assert_eq!(seen[2].1, None);
    }

    #[test]
    fn a_relay_egress_goes_to_the_relay_signed() {
        let seen = Seen::default();
        let http = EgressHttp::new(
            recorder(seen.clone()),
            Arc::new(Fixed),
            Some(Egress::Relay(RelayRoute {
                url: Arc::from("http://relay.example:9000"),
                secret: Secret::new("s3cret"),
            })),
        );
        block_on(http.call(get("https://a.example/x?q=1"))).unwrap();
        assert_eq!(seen.lock().unwrap()[0].0, "http://relay.example:9000/relay");
    }

    #[test]
    fn a_relay_that_is_down_is_an_egress_error() {
        let down: Arc<dyn HttpClient> = Arc::new(|_: HttpRequest| async {
            Err::<HttpResponse, _>(TransportError::new(TransportErrorKind::Connect, "refused"))
        });
        let http = EgressHttp::new(
            down,
            Arc::new(Fixed),
            Some(Egress::Relay(RelayRoute {
                url: Arc::from("http://relay.example:9000"),
                secret: Secret::new("s3cret"),
            })),
        );
        let e = block_on(http.call(get("https://a.example/x"))).unwrap_err();
        assert_eq!(e.kind, TransportErrorKind::Egress);
    }
}
