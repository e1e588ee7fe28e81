//! [`ReqwestHttp`]: the SDK's [`HttpClient`] over reqwest.

use std::error::Error as _;
use std::time::Duration;

use crate::seams::{
    boxed, boxed_stream, BoxFuture, HttpRequest, HttpResponse, HttpStreamResponse, TransportError,
    TransportErrorKind,
};
use crate::HttpClient;

/// An [`HttpClient`] over one shared `reqwest::Client`: pooled keep-alive connections, rustls,
/// no redirects (the SDK decides), no overall timeout (the SDK races every call against its
/// own deadline). Cheap to clone.
#[derive(Debug, Clone)]
pub struct ReqwestHttp {
    client: reqwest::Client,
}

impl ReqwestHttp {
    /// Builds the client.
    ///
    /// # Errors
    ///
    /// When the TLS backend cannot be initialised.
    pub fn new() -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(32)
            .tcp_nodelay(true)
            .tcp_keepalive(Duration::from_secs(60))
            .connect_timeout(Duration::from_secs(15))
            .build()?;
        Ok(Self { client })
    }

    /// Wraps a client built elsewhere. It must not follow redirects.
    pub fn from_client(client: reqwest::Client) -> Self {
        Self { client }
    }

    /// Sends `request` and returns the response once its head has arrived.
    async fn execute(&self, request: HttpRequest) -> Result<reqwest::Response, TransportError> {
        let request = reqwest::Request::try_from(request).map_err(transport_error)?;
        self.client.execute(request).await.map_err(transport_error)
    }
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
