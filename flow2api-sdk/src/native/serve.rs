//! [`serve`]: the SDK's [`App`] behind a hyper 1 HTTP/1.1 server.

use std::convert::Infallible;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use crate::api::ClientAddr;
use crate::seams::BoxStream;
use crate::{App, Body};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use http::{header, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;

use super::request_log::{LogFormat, RequestLog};

/// Default of [`ServeOptions::body_read_timeout`].
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// Default of [`ServeOptions::max_connections`].
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// How [`serve_with`] runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// One line per request on stderr (request id, method, path, status, duration; never
    /// queries, headers or bodies). Default on.
    pub log_requests: bool,
    /// The shape of the request lines (`LOG_FORMAT`); default text.
    pub log_format: LogFormat,
    /// How long a client may take to send a request head; default 30 s.
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request body, from the end of its head; default
    /// 60 s (`BODY_READ_TIMEOUT` in [`ServeOptions::from_env`]). Slower bodies get 408.
    pub body_read_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog until one closes. Default
    /// 1024 (`MAX_CONNECTIONS`).
    pub max_connections: usize,
    /// After the shutdown signal, how long open responses (streams) may take to finish before
    /// [`serve_with`] returns anyway; default 30 s.
    pub shutdown_grace: Duration,
}

impl Default for ServeOptions {
    fn default() -> Self {
        Self {
            log_requests: true,
            log_format: LogFormat::Text,
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Serves `app` on `listener` until Ctrl-C or SIGTERM, with [`ServeOptions::default`].
///
/// # Errors
///
/// When the request log's thread cannot be started.
pub async fn serve(app: App, listener: TcpListener) -> io::Result<()> {
    serve_with(app, listener, ServeOptions::default(), shutdown_signal()).await
}

/// Resolves on Ctrl-C or (on Unix) SIGTERM. A signal that cannot be listened to never fires.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// Serves `app` on `listener` (HTTP/1.1, keep-alive, `TCP_NODELAY`) until `shutdown` resolves,
/// then stops accepting, lets open responses finish for up to
/// [`ServeOptions::shutdown_grace`], and returns.
///
/// Each request is first checked from its head ([`App::check_head`]: route, API key, announced
/// length), then its body is collected (at most [`App::body_limit`], within
/// [`ServeOptions::body_read_timeout`]) and handed to [`App::handle`] with the connection's peer address as its
/// [`ClientAddr`]; a [`Body::Stream`]
/// answer is forwarded chunk by chunk as it is produced. At most
/// [`ServeOptions::max_connections`] connections are served at once.
///
/// # Errors
///
/// When the request log's thread cannot be started.
pub async fn serve_with(
    app: App,
    listener: TcpListener,
    options: ServeOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> io::Result<()> {
    let log = if options.log_requests {
        Some(RequestLog::start(options.log_format)?)
    } else {
        None
    };
    let ctx = Arc::new(Ctx {
        app,
        log: log.clone(),
        body_read_timeout: options.body_read_timeout,
    });
    let slots = Arc::new(tokio::sync::Semaphore::new(options.max_connections.max(1)));
    let mut http = http1::Builder::new();
    http.keep_alive(true)
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    // Connections watch `stop`; upgradeable connections are shut down gracefully by hand
    // (hyper-util's `GracefulShutdown` does not take them).
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut conns = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        // A connection is accepted only once one of the slots is free: the rest wait in the
        // kernel's backlog instead of costing a task and buffers each.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => slot,
            () = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: back off instead of spinning.
                if !is_connection_error(&e) {
                    tracing::error!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let ctx = ctx.clone();
        let conn = http.serve_connection(
            TokioIo::new(stream),
            service_fn(move |req| serve_one(ctx.clone(), peer.ip(), req)),
        );
        // Upgrades (WebSocket routes) stay possible on every connection.
        let conn = conn.with_upgrades();
        let mut stop = stop_rx.clone();
        conns.spawn(async move {
            let _slot = slot;
            let mut conn = std::pin::pin!(conn);
            // Client resets and timeouts end a connection; nothing to report.
            tokio::select! {
                _ = conn.as_mut() => return,
                _ = stop.wait_for(|stop| *stop) => {}
            }
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        });
        // Reap finished connections so the set stays as large as the open ones.
        while conns.try_join_next().is_some() {}
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(options.shutdown_grace, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if let Some(log) = &log {
        log.flush();
    }
    Ok(())
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

struct Ctx {
    app: App,
    log: Option<RequestLog>,
    body_read_timeout: Duration,
}

/// The body of a response [`handle`] produced: the app's bytes at once, or its chunks as
/// they are produced. An [`http_body::Body`], so hyper, axum and tower can send it.
pub struct ResponseBody(Inner);

enum Inner {
    Full(Full<Bytes>),
    Stream(StreamBody<Frames>),
}

impl std::fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseBody").finish_non_exhaustive()
    }
}

impl http_body::Body for ResponseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match &mut self.0 {
            Inner::Full(body) => Pin::new(body).poll_frame(cx),
            Inner::Stream(body) => Pin::new(body).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::Full(body) => http_body::Body::is_end_stream(body),
            Inner::Stream(body) => http_body::Body::is_end_stream(body),
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match &self.0 {
            Inner::Full(body) => http_body::Body::size_hint(body),
            Inner::Stream(body) => http_body::Body::size_hint(body),
        }
    }
}

/// Answers one request of any [`http_body::Body`] with `app`: refused from its head when it can
/// be ([`App::check_head`]), else its body is collected (at most [`App::body_limit`], else 413
/// in the client's error shape; within [`DEFAULT_BODY_READ_TIMEOUT`], else 408), handed to
/// [`App::handle`], and its answer returned as a [`ResponseBody`]. This is what
/// [`serve_with`] does per request; an app that has its own server (axum, say) mounts the
/// gateway with it, inserting the client's [`ClientAddr`] into the request's extensions first
/// (axum: from `ConnectInfo`) so that failed admin logins are counted per client rather than
/// under one shared address.
pub async fn handle<B>(app: &App, req: Request<B>) -> Response<ResponseBody>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    handle_logged(app, req, DEFAULT_BODY_READ_TIMEOUT, None).await
}

async fn handle_logged<B>(
    app: &App,
    req: Request<B>,
    body_read_timeout: Duration,
    seen: Option<Seen>,
) -> Response<ResponseBody>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (mut parts, body) = req.into_parts();
    // Refused from the head (bad key, unknown route, declared too large): the body is never
    // read.
    let response = match app.check_head(&mut parts).await {
        // The unread body would be taken for the next request: the connection ends here, and
        // says so, so that a client does not send its next request down it.
        Some(rejected) if carries_body(&parts) => closing(rejected),
        Some(rejected) => rejected,
        None => {
            let limit = app.body_limit(&parts);
            let read = tokio::time::timeout(body_read_timeout, read_body(body, limit)).await;
            match read {
                Ok(Ok(bytes)) => app.handle(Request::from_parts(parts, bytes)).await,
                Ok(Err(Rejection::TooLarge)) => closing(app.body_too_large(&parts)),
                Ok(Err(rejection)) => rejection.response(),
                Err(_) => Rejection::Slow.response(),
            }
        }
    };
    let (parts, body) = response.into_parts();
    let request_id = parts.headers.get(crate::api::REQUEST_ID_HEADER);
    let body = match body {
        Body::Full(bytes) => {
            if let Some(seen) = seen {
                seen.write(parts.status, request_id);
            }
            Inner::Full(Full::new(bytes))
        }
        Body::Stream(chunks) => Inner::Stream(StreamBody::new(Frames {
            chunks,
            done: seen.map(|seen| Done {
                seen: Some(seen),
                status: parts.status,
                request_id: request_id.cloned(),
            }),
        })),
    };
    Response::from_parts(parts, ResponseBody(body))
}

async fn serve_one(
    ctx: Arc<Ctx>,
    peer: IpAddr,
    mut req: Request<Incoming>,
) -> Result<Response<ResponseBody>, Infallible> {
    // Who is asking, for the admin login throttle.
    req.extensions_mut().insert(ClientAddr(peer));
    // What the log line needs, kept before the request moves into the app (cheap clones).
    let seen = ctx.log.as_ref().map(|log| Seen {
        log: log.clone(),
        method: req.method().clone(),
        uri: req.uri().clone(),
        started: Instant::now(),
    });
    // The extension captcha method's WebSocket (§10.5), when the browsers connect here.
    if req.uri().path() == super::captcha_ws::PATH {
        if let Some(board) = ctx.app.switchboard() {
            let response = super::captcha_ws::upgrade(&ctx.app, board, req);
            if let Some(seen) = seen {
                seen.write(response.status(), None);
            }
            return Ok(response.map(|b| ResponseBody(Inner::Full(Full::new(b)))));
        }
    }
    Ok(handle_logged(&ctx.app, req, ctx.body_read_timeout, seen).await)
}

/// Why a request body was not read.
enum Rejection {
    TooLarge,
    Unreadable,
    Slow,
}

async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, Rejection>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    if body.is_end_stream() {
        return Ok(Bytes::new());
    }
    if body.size_hint().exact().is_some_and(|n| n > limit as u64) {
        return Err(Rejection::TooLarge);
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(Rejection::TooLarge),
        Err(_) => Err(Rejection::Unreadable),
    }
}

impl Rejection {
    /// The answer to a body that could not be read, or not in time (413 comes from the app,
    /// in the client's dialect).
    fn response(&self) -> Response<Body> {
        let (status, message, code) = match self {
            Self::TooLarge | Self::Unreadable => (
                StatusCode::BAD_REQUEST,
                "The request body could not be read.",
                "invalid_body",
            ),
            Self::Slow => (
                StatusCode::REQUEST_TIMEOUT,
                "The request body did not arrive in time.",
                "request_timeout",
            ),
        };
        let body = serde_json::json!({"error": {
            "message": message,
            "type": "invalid_request_error",
            "param": null,
            "code": code,
        }});
        let mut response = Response::new(Body::from(body.to_string()));
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        closing(response)
    }
}

/// Whether a request head announces a body: a non-zero `Content-Length`, or any
/// `Transfer-Encoding`.
fn carries_body(parts: &http::request::Parts) -> bool {
    parts.headers.contains_key(header::TRANSFER_ENCODING)
        || parts
            .headers
            .get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0")
}

/// `response` with `Connection: close`: the rest of the body is not read, so the connection
/// cannot be reused.
fn closing(mut response: Response<Body>) -> Response<Body> {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A request as the log line needs it.
struct Seen {
    log: RequestLog,
    method: Method,
    uri: Uri,
    started: Instant,
}

impl Seen {
    fn write(self, status: StatusCode, request_id: Option<&HeaderValue>) {
        self.log
            .line(&self.method, &self.uri, status, self.started, request_id);
    }
}

/// Writes the log line of a streamed response when the stream ends or is dropped (client gone),
/// so its time is the whole response's.
struct Done {
    seen: Option<Seen>,
    status: StatusCode,
    request_id: Option<HeaderValue>,
}

impl Drop for Done {
    fn drop(&mut self) {
        if let Some(seen) = self.seen.take() {
            seen.write(self.status, self.request_id.as_ref());
        }
    }
}

/// The SDK's chunk stream as HTTP data frames, empty chunks skipped.
struct Frames {
    chunks: BoxStream<'static, Bytes>,
    done: Option<Done>,
}

impl Stream for Frames {
    type Item = Result<Frame<Bytes>, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            match ready!(self.chunks.poll_next_unpin(cx)) {
                Some(chunk) if chunk.is_empty() => continue,
                Some(chunk) => return Poll::Ready(Some(Ok(Frame::data(chunk)))),
                None => {
                    self.done = None;
                    return Poll::Ready(None);
                }
            }
        }
    }
}
