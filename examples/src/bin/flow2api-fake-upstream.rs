//! Run with `cargo run -p flow2api-examples --features fake --bin flow2api-fake-upstream -- --port 9100`
//!
//! Serves the SDK's `FakeFlow` (the fake Google Flow upstream and YesCaptcha) over loopback HTTP.
//! Prints `listening on http://127.0.0.1:PORT` once bound (`--port 0` picks a free port), then
//! point the server under test at:
//!
//! - `FLOW_LABS_BASE_URL=http://127.0.0.1:PORT/fx/api`
//! - `FLOW_API_BASE_URL=http://127.0.0.1:PORT/v1`
//! - `YESCAPTCHA_BASE_URL=http://127.0.0.1:PORT/yescaptcha` (key `fake-yescaptcha-key` unless
//!   `--yescaptcha-key` says otherwise)
//!
//! and drive the fake through its control API (`POST /_fake/accounts`, `/_fake/faults`, …; see
//! `flow2api_sdk::testing`).

use std::convert::Infallible;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use flow2api_sdk::seams::{boxed, BoxFuture, Clock, HttpClient};
use flow2api_sdk::testing::FakeFlow;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Wall-clock time and tokio sleeps.
#[derive(Debug)]
struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        boxed(tokio::time::sleep(duration))
    }
}

struct Args {
    port: u16,
    yescaptcha_key: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        port: 9100,
        yescaptcha_key: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--port" => {
                let v = it.next().ok_or("--port needs a value")?;
                args.port = v.parse().map_err(|_| format!("bad port {v:?}"))?;
            }
            "--yescaptcha-key" => {
                args.yescaptcha_key = Some(it.next().ok_or("--yescaptcha-key needs a value")?);
            }
            "-h" | "--help" => {
                println!("usage: flow2api-fake-upstream [--port N (default 9100, 0 = any)] [--yescaptcha-key KEY]");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?} (try --help)")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("flow2api-fake-upstream: {e}");
            std::process::exit(2);
        }
    };
    let listener = match TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], args.port))).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "flow2api-fake-upstream: cannot bind 127.0.0.1:{}: {e}",
                args.port
            );
            std::process::exit(1);
        }
    };
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(args.port);
    let base = format!("http://127.0.0.1:{port}");
    let fake = FakeFlow::new(&base, Arc::new(SystemClock));
    if let Some(key) = &args.yescaptcha_key {
        fake.set_yescaptcha_key(key);
    }
    println!("listening on {base}");
    let _ = std::io::stdout().flush();

    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = tokio::signal::ctrl_c() => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Typically EMFILE under load: back off briefly instead of spinning.
                eprintln!("flow2api-fake-upstream: accept: {e}");
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let fake = fake.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| serve(fake.clone(), request));
            // Errors here are clients going away mid-request; nothing to do about them.
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// One exchange: hyper request → `http::Request<Bytes>` → `FakeFlow` → hyper response.
async fn serve(
    fake: FakeFlow,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (mut parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => return Ok(plain(StatusCode::BAD_REQUEST, format!("body: {e}"))),
    };
    // Record absolute URLs: origin-form targets get the Host they were sent to.
    if parts.uri.authority().is_none() {
        let host = parts
            .headers
            .get(http::header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("127.0.0.1");
        let target = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        if let Ok(uri) = format!("http://{host}{target}").parse() {
            parts.uri = uri;
        }
    }
    match fake.call(http::Request::from_parts(parts, body)).await {
        Ok(response) => Ok(response.map(Full::new)),
        Err(e) => Ok(plain(StatusCode::BAD_GATEWAY, e.to_string())),
    }
}

fn plain(status: StatusCode, message: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(message)));
    *response.status_mut() = status;
    response
}
