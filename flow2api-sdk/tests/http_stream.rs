//! `ReqwestHttp::call_streaming` against a tiny hyper server on 127.0.0.1:0 that sends a
//! chunked body of three 1 MiB parts and holds back the last part until the client has read
//! the first two: a client that buffered the whole body would never see them and time out.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use flow2api_sdk::native::ReqwestHttp;
use flow2api_sdk::seams::{HttpRequest, HttpStreamResponse};
use flow2api_sdk::HttpClient;
use futures::StreamExt;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::Notify;

const PART: usize = 1024 * 1024;
const PARTS: usize = 3;

/// Byte `i` of the whole body: a pattern that does not repeat at part boundaries.
fn byte_at(i: usize) -> u8 {
    (i % 251) as u8
}

fn part(n: usize) -> Bytes {
    (n * PART..(n + 1) * PART).map(byte_at).collect()
}

type Body = http_body_util::combinators::BoxBody<Bytes, Infallible>;

/// `/video.mp4` streams the parts, the last one only after `release`; `/redirect` answers 302.
fn respond(request: &http::Request<Incoming>, release: Arc<Notify>) -> http::Response<Body> {
    match request.uri().path() {
        "/video.mp4" => {
            let parts = futures::stream::unfold(0, move |n| {
                let release = release.clone();
                async move {
                    if n == PARTS {
                        return None;
                    }
                    if n == PARTS - 1 {
                        release.notified().await;
                    } else if n > 0 {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Some((Ok::<_, Infallible>(Frame::data(part(n))), n + 1))
                }
            });
            http::Response::builder()
                .header("content-type", "video/mp4")
                .body(BodyExt::boxed(StreamBody::new(parts)))
                .expect("a valid response")
        }
        "/redirect" => http::Response::builder()
            .status(http::StatusCode::FOUND)
            .header("location", "/video.mp4")
            .body(BodyExt::boxed(Full::new(Bytes::new())))
            .expect("a valid response"),
        _ => http::Response::builder()
            .status(http::StatusCode::NOT_FOUND)
            .body(BodyExt::boxed(Full::new(Bytes::new())))
            .expect("a valid response"),
    }
}

/// Starts the server; returns its address and the signal that releases the last part.
async fn start() -> (SocketAddr, Arc<Notify>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let release = Arc::new(Notify::new());
    let server_release = release.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let release = server_release.clone();
            tokio::spawn(async move {
                let service = service_fn(move |request| {
                    let response = respond(&request, release.clone());
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (addr, release)
}

fn get(addr: SocketAddr, path: &str) -> HttpRequest {
    http::Request::get(format!("http://{addr}{path}"))
        .body(Bytes::new())
        .expect("a valid request")
}

async fn call_streaming(client: &ReqwestHttp, request: HttpRequest) -> HttpStreamResponse {
    tokio::time::timeout(Duration::from_secs(10), client.call_streaming(request))
        .await
        .expect("the head arrives before the body is complete")
        .expect("a response")
}

#[tokio::test]
async fn the_body_arrives_in_chunks_before_the_server_has_sent_it_all() {
    let (addr, release) = start().await;
    let client = ReqwestHttp::new().expect("client");
    let response = call_streaming(&client, get(addr, "/video.mp4")).await;
    assert_eq!(response.status(), http::StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "video/mp4");
    assert!(response.headers().get("content-length").is_none());

    let mut body = response.into_body();
    let mut received = Vec::with_capacity(PARTS * PART);
    let mut chunks_before_release = 0;
    // The server holds back the last part: everything before it must arrive on its own.
    while received.len() < (PARTS - 1) * PART {
        let chunk = tokio::time::timeout(Duration::from_secs(10), body.next())
            .await
            .expect("the first parts arrive while the last is held back")
            .expect("the body has not ended")
            .expect("no transport error");
        chunks_before_release += 1;
        received.extend_from_slice(&chunk);
    }
    assert!(
        chunks_before_release > 1,
        "{chunks_before_release} chunk(s) before the release"
    );
    release.notify_one();

    let mut chunks_after_release = 0;
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(10), body.next())
        .await
        .expect("the rest arrives after the release")
    {
        chunks_after_release += 1;
        received.extend_from_slice(&chunk.expect("no transport error"));
    }
    assert!(chunks_after_release >= 1);
    assert_eq!(received.len(), PARTS * PART);
    assert!(
        received.iter().enumerate().all(|(i, b)| *b == byte_at(i)),
        "the bytes are the ones sent, in order"
    );
}

#[tokio::test]
async fn redirects_are_returned_not_followed() {
    let (addr, _release) = start().await;
    let client = ReqwestHttp::new().expect("client");
    let response = call_streaming(&client, get(addr, "/redirect")).await;
    assert_eq!(response.status(), http::StatusCode::FOUND);
    assert_eq!(response.headers()["location"], "/video.mp4");
    let chunks: Vec<_> = response.into_body().collect().await;
    assert!(chunks
        .iter()
        .all(|c| c.as_ref().is_ok_and(|c| c.is_empty())));
}

#[tokio::test]
async fn a_refused_connection_is_a_transport_error() {
    // Bind then drop, so the port is (almost certainly) closed.
    let addr = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind")
        .local_addr()
        .expect("local addr");
    let client = ReqwestHttp::new().expect("client");
    let result = client.call_streaming(get(addr, "/video.mp4")).await;
    let Err(error) = result else {
        panic!("expected a transport error");
    };
    assert_eq!(error.kind, flow2api_sdk::seams::TransportErrorKind::Connect);
}
