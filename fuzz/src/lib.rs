//! What the fuzz targets share: a gateway whose seams all answer at once, and the checks every
//! response must pass.
//!
//! The gateway has no account and no network (every outgoing call fails to connect) and runs on
//! a [`ManualClock`], whose sleeps return at once: a request is parsed and checked in full, then
//! fails at the account pool, and nothing ever waits. So one poll of [`App::handle`] must give
//! the answer; a request still pending after it would be a hang on client input.

use std::sync::Arc;
use std::time::Duration;

use flow2api_sdk::http::{header, Request, Response};
use flow2api_sdk::memory::ManualClock;
use flow2api_sdk::seams::{
    boxed, BoxFuture, Bytes, Clock, HttpRequest, HttpResponse, Spawn, TransportError,
    TransportErrorKind,
};
use flow2api_sdk::{App, AppBuilder, Body, Config};
use futures::FutureExt;

/// The API key the gateway expects; [`request`] sends it.
pub const API_KEY: &str = "fuzz-api-key";

/// The admin password (plain text, so a login costs no bcrypt round).
pub const ADMIN_PASSWORD: &str = "fuzz-admin-password";

/// A start time for the clocks (late 2025), so no expiry arithmetic sees time zero.
pub const NOW_MS: u64 = 1_764_140_000_000;

/// Runs nothing: with no account no job is ever created, and slot clean-up is the lease's.
struct NoSpawn;

impl Spawn for NoSpawn {
    fn spawn(&self, _future: BoxFuture<'static, ()>) {}
}

/// A clock whose sleeps never end, for calls that must be decided by the first answer (a
/// [`ManualClock`]'s instant sleep could race a call's timeout).
pub struct FrozenClock;

impl Clock for FrozenClock {
    fn now_ms(&self) -> u64 {
        NOW_MS
    }

    fn sleep(&self, _duration: Duration) -> BoxFuture<'static, ()> {
        boxed(futures::future::pending())
    }
}

/// Every outgoing call fails to connect at once (client image URLs, captcha, Flow).
pub async fn offline(_req: HttpRequest) -> Result<HttpResponse, TransportError> {
    Err(TransportError::new(TransportErrorKind::Connect, "offline"))
}

/// The gateway's configuration: defaults, [`API_KEY`] and [`ADMIN_PASSWORD`].
pub fn config() -> Config {
    Config::from_lookup(|k| match k {
        "API_KEY" => Some(API_KEY.to_owned()),
        "ADMIN_PASSWORD" => Some(ADMIN_PASSWORD.to_owned()),
        _ => None,
    })
    .expect("a valid configuration")
}

/// The builder of the gateway described above; a target may add seams before `build`.
pub fn builder() -> AppBuilder {
    App::builder(config())
        .http(Arc::new(offline))
        .clock(Arc::new(ManualClock::new(NOW_MS)))
        .spawner(Arc::new(NoSpawn))
        .in_memory()
}

/// The gateway described above.
pub fn app() -> App {
    builder().build().expect("every seam is given")
}

/// A request with the API key, `content_type` (when given) and `body`.
pub fn request(method: &str, uri: &str, content_type: Option<&str>, body: Bytes) -> Request<Bytes> {
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::AUTHORIZATION, format!("Bearer {API_KEY}"));
    if let Some(ct) = content_type {
        b = b.header(header::CONTENT_TYPE, ct);
    }
    b.body(body).expect("a valid request head")
}

/// The answer to `req`, from one poll (see the module's doc), checked as every answer must be:
/// never a 500, and a whole body that is JSON by its type, or an error's (a 416 has none),
/// parses as JSON.
pub fn handle(app: &App, req: Request<Bytes>) -> Response<Body> {
    let resp = app
        .handle(req)
        .now_or_never()
        .expect("the gateway waited on nothing, so it must answer at once");
    let status = resp.status();
    assert!(
        status != 500,
        "a request must never cause an internal error: {:?}",
        resp.body()
    );
    if let Body::Full(b) = resp.body() {
        let json = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        let error = status.is_client_error() || status.is_server_error();
        if json || (error && !b.is_empty()) {
            assert!(
                serde_json::from_slice::<serde_json::Value>(b).is_ok(),
                "status {status}: the body is not JSON: {}",
                String::from_utf8_lossy(b)
            );
        }
    }
    resp
}

/// A body whole; a stream must be ready to the end (it is only read from memory here).
pub fn collect(body: Body) -> Bytes {
    body.collect()
        .now_or_never()
        .expect("a body read from memory is ready at once")
}

/// Splits `data` at its first `\n`: a short header line (a content type, a path) and the rest.
pub fn split_line(data: &[u8]) -> (&str, &[u8]) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (
            std::str::from_utf8(&data[..i]).unwrap_or(""),
            &data[i + 1..],
        ),
        None => ("", data),
    }
}
