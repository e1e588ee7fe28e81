//! [`HttpClient`] over the Workers `fetch`, and the per-invocation subrequest counter.

use std::cell::Cell;
use std::rc::Rc;

use flow2api_sdk::seams::{
    boxed, BoxFuture, Bytes, HttpClient, HttpRequest, HttpResponse, TransportError,
    TransportErrorKind,
};
use http::{HeaderName, HeaderValue};
use worker::js_sys::Uint8Array;
use worker::{AbortController, Fetch, Headers, Method, Request, RequestInit, RequestRedirect};

use crate::protocol::redact;

/// Subrequests (outgoing fetches and Durable Object calls) made by one invocation. Cloned into
/// every client that calls out; the fetch handler logs the total when the response is done.
#[derive(Debug, Clone, Default)]
pub struct Subrequests(Rc<Cell<u32>>);

impl Subrequests {
    /// Counts one subrequest.
    pub fn add(&self) {
        self.0.set(self.0.get().saturating_add(1));
    }

    /// The count so far.
    pub fn get(&self) -> u32 {
        self.0.get()
    }
}

/// Outgoing HTTP through `fetch`, redirects not followed (the SDK follows them itself).
#[derive(Debug)]
pub struct FetchHttp {
    subrequests: Subrequests,
}

impl FetchHttp {
    /// A client counting into `subrequests`.
    pub fn new(subrequests: Subrequests) -> Self {
        Self { subrequests }
    }
}

fn other(message: impl Into<String>) -> TransportError {
    TransportError::new(TransportErrorKind::Other, message)
}

/// Aborts the fetch when the SDK drops the call (a timeout won the race), so the upstream
/// request does not run on unobserved.
struct AbortOnDrop(Option<AbortController>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            c.abort();
        }
    }
}

fn to_worker_request(request: HttpRequest) -> Result<Request, TransportError> {
    let (parts, body) = request.into_parts();
    let headers = Headers::new();
    for (name, value) in &parts.headers {
        let value = value
            .to_str()
            .map_err(|_| other(format!("request header {name} is not visible ASCII")))?;
        // Not the runtime's message: it could quote the value (a token).
        headers
            .append(name.as_str(), value)
            .map_err(|_| other(format!("request header {name} was refused")))?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::from(parts.method.as_str().to_owned()))
        .with_headers(headers)
        .with_redirect(RequestRedirect::Manual)
        // GET and HEAD may not carry a body, not even an empty one.
        .with_body((!body.is_empty()).then(|| Uint8Array::from(body.as_ref()).into()));
    Request::new_with_init(&parts.uri.to_string(), &init)
        .map_err(|e| other(format!("invalid request: {}", redact(&e.to_string()))))
}

async fn send(request: HttpRequest) -> Result<HttpResponse, TransportError> {
    let request = to_worker_request(request)?;
    let controller = AbortController::default();
    let signal = controller.signal();
    let mut abort = AbortOnDrop(Some(controller));
    let mut response = Fetch::Request(request)
        .send_with_signal(&signal)
        .await
        .map_err(|e| {
            TransportError::new(
                TransportErrorKind::Connect,
                format!("fetch failed: {}", redact(&e.to_string())),
            )
        })?;
    let mut builder = http::Response::builder().status(response.status_code());
    if let Some(map) = builder.headers_mut() {
        for (name, value) in response.headers().entries() {
            // Workers headers are always valid ByteStrings; skip anything `http` still rejects.
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                map.append(n, v);
            }
        }
    }
    let body = response.bytes().await.map_err(|e| {
        other(format!(
            "reading the response body failed: {}",
            redact(&e.to_string())
        ))
    })?;
    // The body is read: nothing left to abort.
    abort.0 = None;
    builder
        .body(Bytes::from(body))
        .map_err(|_| other("the response status is invalid"))
}

impl HttpClient for FetchHttp {
    fn call(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        self.subrequests.add();
        boxed(send(request))
    }
}
