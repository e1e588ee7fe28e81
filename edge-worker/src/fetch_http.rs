//! [`HttpClient`] over the Workers `fetch`, and the per-invocation subrequest counter.

use std::cell::Cell;
use std::rc::Rc;

use flow2api_sdk::seams::{
    boxed, boxed_stream, BoxFuture, BoxStream, Bytes, Egress, HttpClient, HttpRequest,
    HttpResponse, HttpStreamResponse, TransportError, TransportErrorKind,
};
use futures::StreamExt;
use worker::js_sys::Uint8Array;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::wasm_bindgen_futures::JsFuture;
use worker::{web_sys, AbortController, ByteStream, Response, ResponseBody};

use crate::js::{copy_headers, js_text};
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

fn to_web_request(
    request: HttpRequest,
    signal: &web_sys::AbortSignal,
) -> Result<web_sys::Request, TransportError> {
    let (parts, body) = request.into_parts();
    let invalid = |_| other("invalid request");
    let headers = web_sys::Headers::new().map_err(invalid)?;
    for (name, value) in &parts.headers {
        let value = value
            .to_str()
            .map_err(|_| other(format!("request header {name} is not visible ASCII")))?;
        // Not the runtime's message: it could quote the value (a token).
        headers
            .append(name.as_str(), value)
            .map_err(|_| other(format!("request header {name} was refused")))?;
    }
    let init = web_sys::RequestInit::new();
    init.set_method(parts.method.as_str());
    init.set_headers(&headers);
    init.set_redirect(web_sys::RequestRedirect::Manual);
    init.set_signal(Some(signal));
    // GET and HEAD may not carry a body, not even an empty one.
    if !body.is_empty() {
        init.set_body(&Uint8Array::from(body.as_ref()));
    }
    web_sys::Request::new_with_str_and_init(&parts.uri.to_string(), &init)
        .map_err(|e| other(format!("invalid request: {}", redact(&js_text(&e)))))
}

/// Sends `request` with redirects not followed; returns the response once its head has
/// arrived, and the guard that aborts the fetch if dropped before the body is read.
///
/// Straight on the runtime's `fetch` and `Response`: `worker::Response` would wrap the reply
/// anew and read a whole body chunk by chunk through a stream reader, where `arrayBuffer()`
/// is one call (the image generate call's reply is read whole on every image).
async fn fetch(request: HttpRequest) -> Result<(web_sys::Response, AbortOnDrop), TransportError> {
    let controller = AbortController::default();
    let request = to_web_request(request, &controller.signal())?;
    let abort = AbortOnDrop(Some(controller));
    let connect = |e: JsValue| {
        TransportError::new(
            TransportErrorKind::Connect,
            format!("fetch failed: {}", redact(&js_text(&e))),
        )
    };
    let global: web_sys::WorkerGlobalScope = worker::js_sys::global().unchecked_into();
    let response = JsFuture::from(global.fetch_with_request(&request))
        .await
        .map_err(connect)?
        .unchecked_into();
    Ok((response, abort))
}

/// The status and headers of `response` on `body`.
fn with_head<B>(
    response: &web_sys::Response,
    body: B,
) -> Result<http::Response<B>, TransportError> {
    let mut builder = http::Response::builder().status(response.status());
    if let Some(map) = builder.headers_mut() {
        copy_headers(response.headers(), map);
    }
    builder
        .body(body)
        .map_err(|_| other("the response status is invalid"))
}

fn body_error(e: worker::Error) -> TransportError {
    other(format!(
        "reading the response body failed: {}",
        redact(&e.to_string())
    ))
}

async fn send(request: HttpRequest) -> Result<HttpResponse, TransportError> {
    let (response, mut abort) = fetch(request).await?;
    let out = with_head(&response, ())?;
    let read = |e: JsValue| {
        other(format!(
            "reading the response body failed: {}",
            redact(&js_text(&e))
        ))
    };
    let buffer = JsFuture::from(response.array_buffer().map_err(read)?)
        .await
        .map_err(read)?;
    let body = Uint8Array::new(&buffer).to_vec();
    // The body is read: nothing left to abort.
    abort.0 = None;
    Ok(out.map(|()| Bytes::from(body)))
}

async fn send_streaming(request: HttpRequest) -> Result<HttpStreamResponse, TransportError> {
    let (response, mut abort) = fetch(request).await?;
    let out = with_head(&response, ())?;
    let mut response = Response::from(response);
    let body: BoxStream<'static, Result<Bytes, TransportError>> = match response.body() {
        ResponseBody::Stream(_) => {
            let chunks = response.stream().map_err(body_error)?;
            boxed_stream(futures::stream::unfold(
                Some((chunks, abort)),
                |state: Option<(ByteStream, AbortOnDrop)>| async move {
                    let (mut chunks, mut abort) = state?;
                    match chunks.next().await {
                        Some(Ok(chunk)) => Some((Ok(Bytes::from(chunk)), Some((chunks, abort)))),
                        Some(Err(e)) => Some((Err(body_error(e)), None)),
                        None => {
                            // The body is read: nothing left to abort.
                            abort.0 = None;
                            None
                        }
                    }
                },
            ))
        }
        // Not expected from `fetch`, but a buffered or absent body is a stream too.
        ResponseBody::Body(bytes) => {
            abort.0 = None;
            let chunk = (!bytes.is_empty()).then(|| Ok(Bytes::from(bytes.clone())));
            boxed_stream(futures::stream::iter(chunk))
        }
        ResponseBody::Empty => {
            abort.0 = None;
            boxed_stream(futures::stream::empty())
        }
    };
    Ok(out.map(|()| body))
}

/// Workers cannot send through a proxy: a request that must (an account's or the global
/// proxy) fails rather than leave directly. Relayed requests arrive already rewritten.
fn refuse_proxy(request: &HttpRequest) -> Result<(), TransportError> {
    match request.extensions().get::<Egress>() {
        Some(Egress::Proxy(_)) => Err(TransportError::new(
            TransportErrorKind::Egress,
            "a proxy cannot be used at the edge; set EGRESS_RELAY_URL to a relay instead",
        )),
        _ => Ok(()),
    }
}

impl HttpClient for FetchHttp {
    fn call(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        if let Err(e) = refuse_proxy(&request) {
            return boxed(async move { Err(e) });
        }
        self.subrequests.add();
        boxed(send(request))
    }

    /// Passes the fetch's `ReadableStream` on chunk by chunk. Dropping the stream before its
    /// end aborts the fetch, so the upstream transfer stops with the client.
    fn call_streaming(
        &self,
        request: HttpRequest,
    ) -> BoxFuture<'_, Result<HttpStreamResponse, TransportError>> {
        if let Err(e) = refuse_proxy(&request) {
            return boxed(async move { Err(e) });
        }
        self.subrequests.add();
        boxed(send_streaming(request))
    }
}
