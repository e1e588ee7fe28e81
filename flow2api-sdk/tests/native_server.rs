//! The native server over real HTTP: `serve_with` on 127.0.0.1:0 in-process, the SDK's
//! `FakeFlow` as the upstream, reqwest as the client.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use flow2api_sdk::native::{
    refresh_periodically, report_line, serve_with, ServeOptions, TokioClock, TokioSpawn,
};
use flow2api_sdk::pool::records::AccountSettings;
use flow2api_sdk::testing::{Endpoint, FakeAccount, FakeFlow, DEFAULT_YESCAPTCHA_KEY};
use flow2api_sdk::{App, Clock, Config, Secret};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const API_KEY: &str = "test-api-key";
const ADMIN_PASSWORD: &str = "test-admin-password";
const ST: &str = "st-for-the-native-server-test";

struct Server {
    base: String,
    app: App,
    fake: FakeFlow,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(api_key: Option<&str>) -> Self {
        Self::start_with(api_key, &[]).await
    }

    /// With more settings (`NAME`, value).
    async fn start_with(api_key: Option<&str>, extra: &[(&str, &str)]) -> Self {
        Self::start_full(api_key, extra, None).await
    }

    /// With more settings and the client for client-given URLs.
    async fn start_full(
        api_key: Option<&str>,
        extra: &[(&str, &str)],
        untrusted: Option<Arc<dyn flow2api_sdk::HttpClient>>,
    ) -> Self {
        let clock: Arc<dyn Clock> = Arc::new(TokioClock);
        let fake = FakeFlow::new("http://fake.flow.test", clock.clone());
        fake.set_captcha_polls_before_ready(0);
        let mut vars = vec![
            ("ADMIN_PASSWORD", ADMIN_PASSWORD.to_owned()),
            ("FLOW_LABS_BASE_URL", fake.labs_base()),
            ("FLOW_API_BASE_URL", fake.api_base()),
            ("YESCAPTCHA_BASE_URL", fake.yescaptcha_base()),
            ("YESCAPTCHA_API_KEY", DEFAULT_YESCAPTCHA_KEY.to_owned()),
            ("CAPTCHA_POLL_INTERVAL", "0.01".to_owned()),
            ("KEEPALIVE_INTERVAL", "0.1".to_owned()),
        ];
        if let Some(k) = api_key {
            vars.push(("API_KEY", k.to_owned()));
        }
        vars.extend(extra.iter().map(|(n, v)| (*n, (*v).to_owned())));
        let config =
            Config::from_lookup(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone()))
                .expect("a valid configuration");
        let mut builder = App::builder(config)
            .http(Arc::new(fake.clone()))
            .clock(clock)
            .spawner(Arc::new(TokioSpawn))
            .in_memory();
        if let Some(untrusted) = untrusted {
            builder = builder.untrusted_http(untrusted);
        }
        let app = builder.build().expect("every seam");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let options = ServeOptions {
            log_requests: false,
            shutdown_grace: Duration::from_secs(2),
            ..ServeOptions::default()
        };
        let task = tokio::spawn(serve_with(app.clone(), listener, options, async {
            let _ = stopped.await;
        }));
        Self {
            base: format!("http://{addr}"),
            app,
            fake,
            stop: Some(stop),
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server and checks that it returns promptly.
    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(5), self.task)
            .await
            .expect("serve_with returns after the shutdown signal")
            .unwrap()
            .unwrap();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

#[tokio::test]
async fn health_and_api_key_checks() {
    let server = Server::start(Some(API_KEY)).await;
    let c = client();

    let r = c.get(server.url("/health")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["status"], "ok");

    let r = c.get(server.url("/v1/models")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["message"].is_string(), "{body}");

    let r = c
        .get(server.url("/v1/models"))
        .bearer_auth("wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let r = c
        .get(server.url("/v1/models"))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["object"], "list");
    assert!(!body["data"].as_array().unwrap().is_empty());

    let r = c
        .get(server.url("/v1/models"))
        .header("x-goog-api-key", API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Many requests on one kept-alive connection.
    for _ in 0..50 {
        let r = c
            .get(server.url("/v1/models"))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap();
    }
    server.stop().await;
}

#[tokio::test]
async fn without_api_key_the_api_answers_503() {
    let server = Server::start(None).await;
    let r = client()
        .get(server.url("/v1/models"))
        .bearer_auth("anything")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "api_key_not_configured");
    server.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_413_in_the_openai_shape() {
    let server = Server::start_with(Some(API_KEY), &[("MAX_REQUEST_BYTES", "65536")]).await;
    // Announced: refused from the head.
    let r = client()
        .post(server.url("/v1/chat/completions"))
        .bearer_auth(API_KEY)
        .header("content-type", "application/json")
        .body(vec![b' '; 70_000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        body,
        json!({"error": {
            "message": "The request body is larger than 65536 bytes (MAX_REQUEST_BYTES).",
            "type": "invalid_request_error",
            "param": null,
            "code": "request_too_large",
        }})
    );
    // Not announced (chunked): cut off once it runs past the limit.
    let chunks = futures::stream::iter(
        (0..20).map(|_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b' '; 8192]))),
    );
    let r = client()
        .post(server.url("/v1/chat/completions"))
        .bearer_auth(API_KEY)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    // The admin login takes small bodies only.
    let r = client()
        .post(server.url("/api/login"))
        .body(vec![b' '; 65 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);

    // A body within the limit reaches the app (which rejects the JSON in its own words).
    let r = client()
        .post(server.url("/v1/chat/completions"))
        .bearer_auth(API_KEY)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    server.stop().await;
}

#[tokio::test]
async fn a_streamed_image_generation_arrives_in_chunks() {
    let server = Server::start(Some(API_KEY)).await;
    server
        .fake
        .add_account(FakeAccount::new(ST, "alice@example.com"));
    let c = client();

    let login: Value = c
        .post(server.url("/api/login"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().expect("login token").to_owned();

    let r = c
        .post(server.url("/api/tokens"))
        .bearer_auth(&token)
        .json(&json!({"st": ST}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    let mut r = c
        .post(server.url("/v1/chat/completions"))
        .bearer_auth(API_KEY)
        .json(&json!({
            "model": "gemini-3.1-flash-image-landscape",
            "stream": true,
            "messages": [{"role": "user", "content": "a lighthouse at dusk"}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let mut chunks = Vec::new();
    while let Some(chunk) = r.chunk().await.unwrap() {
        chunks.push(String::from_utf8(chunk.to_vec()).unwrap());
    }
    let all = chunks.concat();
    assert!(chunks.len() > 1, "one chunk only: {all}");
    assert!(all.contains("![Generated Image]("), "{all}");
    assert!(all.trim_end().ends_with("data: [DONE]"), "{all}");
    // The progress lines came before the final content, each as its own event.
    let first_image = all.find("![Generated Image](").unwrap();
    assert!(all[..first_image].contains("reasoning_content"), "{all}");
    server.stop().await;
}

/// `ReqwestHttp` hands redirects back to the SDK instead of following them, and classifies a
/// refused connection as `Connect`.
#[tokio::test]
async fn reqwest_http_does_not_follow_redirects() {
    use flow2api_sdk::native::ReqwestHttp;
    use flow2api_sdk::seams::TransportErrorKind;
    use flow2api_sdk::HttpClient;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).await;
        s.write_all(b"HTTP/1.1 302 Found\r\nlocation: http://169.254.169.254/\r\ncontent-length: 2\r\n\r\nno")
            .await
            .unwrap();
    });
    let http = ReqwestHttp::new().unwrap();
    let request = http::Request::get(format!("http://{addr}/img?key=secret"))
        .body(bytes::Bytes::new())
        .unwrap();
    let response = http.call(request).await.unwrap();
    assert_eq!(response.status(), 302);
    assert_eq!(response.headers()["location"], "http://169.254.169.254/");
    assert_eq!(response.body(), &b"no"[..]);

    // Port 1 on loopback: nothing listens there.
    let request = http::Request::get("http://127.0.0.1:1/x?key=secret")
        .body(bytes::Bytes::new())
        .unwrap();
    let err = http.call(request).await.unwrap_err();
    assert_eq!(err.kind, TransportErrorKind::Connect, "{err}");
    assert!(!err.message.contains("secret"), "{err}");
}

/// Polls `check` every 20 ms for up to 5 s.
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..250 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("timed out waiting until {what}");
}

/// A client that goes away mid-stream gets its slot released at once by a `TokioSpawn` task,
/// not when the lease lapses (10 minutes by default).
#[tokio::test]
async fn a_client_that_goes_away_frees_its_slot() {
    let server = Server::start(Some(API_KEY)).await;
    server
        .fake
        .add_account(FakeAccount::new(ST, "alice@example.com"));
    let account = server
        .app
        .pool()
        .add(Secret::new(ST), &AccountSettings::default())
        .await
        .unwrap();
    // Slow enough to be interrupted: 0.01 s per captcha poll.
    server.fake.set_captcha_polls_before_ready(500);

    let mut r = client()
        .post(server.url("/v1/chat/completions"))
        .bearer_auth(API_KEY)
        .json(&json!({
            "model": "gemini-3.1-flash-image-landscape",
            "stream": true,
            "messages": [{"role": "user", "content": "a lighthouse at dusk"}],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.chunk().await.unwrap().expect("a first chunk");
    let pool = server.app.pool().clone();
    eventually("the generation holds a slot", || async {
        pool.status(&account.id).await.unwrap().image_in_flight == 1
    })
    .await;
    drop(r);
    eventually("the slot is released", || async {
        pool.status(&account.id).await.unwrap().image_in_flight == 0
    })
    .await;
    server.stop().await;
}

/// The background pass refreshes a token that expires within two hours, and reports it.
#[tokio::test]
async fn the_background_pass_refreshes_expiring_tokens() {
    let server = Server::start(Some(API_KEY)).await;
    server
        .fake
        .add_account(FakeAccount::new(ST, "alice@example.com"));
    server.fake.set_at_lifetime(Duration::from_secs(90 * 60));
    let pool = server.app.pool().clone();
    pool.add(Secret::new(ST), &AccountSettings::default())
        .await
        .unwrap();
    let sessions = || server.fake.requests_to(Endpoint::Session).len();
    assert_eq!(sessions(), 1, "adding the account exchanged the ST once");

    let report = pool.refresh_due().await;
    let line = report_line(&report);
    assert_eq!(
        line,
        "refresh: checked=1 refreshed=1 expired=0 cooldowns_cleared=0 failed=0 index_repairs=0"
    );
    assert!(!line.contains(ST));
    assert_eq!(sessions(), 2);

    // The timer runs the same pass again and again (every token still expires within 2 h).
    let task = tokio::spawn(refresh_periodically(
        server.app.clone(),
        Duration::from_millis(50),
    ));
    eventually("the timer ran two passes", || async { sessions() >= 4 }).await;
    task.abort();
    server.stop().await;
}

/// A request with a bad key that announces a large body (50 MB, under the limit) is refused
/// from its head: the answer comes while the client has sent only the head, so the body was
/// never read.
#[tokio::test]
async fn a_bad_key_is_refused_before_the_body_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let server = Server::start(Some(API_KEY)).await;
    let addr = server
        .url("")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer wrong\r\n\
         content-type: application/json\r\ncontent-length: 50000000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // Not one byte of the 50 MB body is sent: a server that waited for it would never answer.
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(30), stream.read(&mut buf))
        .await
        .expect("an answer without the body")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 401"), "{text}");
    assert!(text.contains("incorrect api key"), "{text}");
    // The body is left unread, so the connection cannot carry another request: the answer
    // says so (else a client reuses it and its next request is lost).
    assert!(text.contains("connection: close"), "{text}");

    // Refused from a head without a body: the connection stays open for the next request.
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head =
        format!("GET /v1/models HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer wrong\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let n = tokio::time::timeout(std::time::Duration::from_secs(30), stream.read(&mut buf))
        .await
        .expect("an answer")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 401"), "{text}");
    assert!(!text.contains("connection: close"), "{text}");

    // The same with the right key but a body over the limit: 413 from the head alone.
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {API_KEY}\r\n\
         content-length: 104857600000\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let n = tokio::time::timeout(std::time::Duration::from_secs(30), stream.read(&mut buf))
        .await
        .expect("an answer without the body")
        .unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    server.stop().await;
}

/// A probe on loopback that answers every connection with a small PNG and counts them.
async fn probe() -> (u16, Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = hits.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf).await;
                let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x02\0\0\0";
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: image/png\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    png.len()
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(png).await;
            });
        }
    });
    (port, hits)
}

fn image_chat(url: &str) -> Value {
    json!({
        "model": "gemini-3.1-flash-image-landscape",
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "a cat"},
            {"type": "image_url", "image_url": {"url": url}},
        ]}],
    })
}

/// SSRF: an image URL whose *name* resolves to 127.0.0.1 is refused and never fetched (the
/// resolver is overridden for the test); the client learns nothing of why. The same probe is
/// reachable where private addresses are allowed, so the refusal is the guard's doing.
#[tokio::test]
async fn an_image_url_whose_name_resolves_to_loopback_is_never_fetched() {
    use flow2api_sdk::native::{Lookup, PublicOnlyHttp};
    let (port, hits) = probe().await;
    let lookup: Lookup = Arc::new(|name: String| {
        flow2api_sdk::seams::boxed(async move {
            match name.as_str() {
                "images.rebind.test" => Ok(vec!["127.0.0.1".parse().unwrap()]),
                "mixed.rebind.test" => Ok(vec![
                    "93.184.215.14".parse().unwrap(),
                    "10.0.0.7".parse().unwrap(),
                ]),
                _ => Err(std::io::Error::other("no such name")),
            }
        })
    });
    let untrusted = Arc::new(PublicOnlyHttp::with_lookup(lookup).unwrap());
    let server = Server::start_full(Some(API_KEY), &[], Some(untrusted)).await;
    for host in ["images.rebind.test", "mixed.rebind.test"] {
        let url = format!("http://{host}:{port}/cat.png");
        let r = client()
            .post(server.url("/v1/chat/completions"))
            .bearer_auth(API_KEY)
            .json(&image_chat(&url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        let body: Value = r.json().await.unwrap();
        let message = body["error"]["message"].as_str().unwrap();
        assert_eq!(
            message,
            format!("The image URL could not be fetched: {url}"),
            "nothing about the inside"
        );
    }
    // Literal addresses, in every spelling, are refused before any lookup.
    for url in [
        format!("http://127.0.0.1:{port}/a.png"),
        format!("http://2130706433:{port}/a.png"),
        format!("http://[::ffff:127.0.0.1]:{port}/a.png"),
    ] {
        let r = client()
            .post(server.url("/v1/chat/completions"))
            .bearer_auth(API_KEY)
            .json(&image_chat(&url))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{url}");
    }
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0);
    server.stop().await;

    // The control: the probe does answer and count a client that is allowed to reach it.
    use flow2api_sdk::HttpClient as _;
    let direct = flow2api_sdk::native::ReqwestHttp::new().unwrap();
    let request = http::Request::get(format!("http://127.0.0.1:{port}/cat.png"))
        .body(bytes::Bytes::new())
        .unwrap();
    let response = direct.call(request).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1);
}
