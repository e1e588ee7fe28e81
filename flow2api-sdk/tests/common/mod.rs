//! A harness: the App wired to FakeFlow, in memory, on tokio's (pausable) clock.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use flow2api_sdk::memory::{MemoryCoordinator, MemoryStorage};
use flow2api_sdk::seams::{boxed, BoxFuture, Clock};
use flow2api_sdk::testing::{FakeAccount, FakeFlow};
use flow2api_sdk::{App, AppBuilder, Config};
use serde_json::{json, Value};

/// Wall time that follows tokio's clock, so `start_paused` tests skip sleeps.
pub struct TokioClock {
    base_ms: u64,
    start: tokio::time::Instant,
}

impl TokioClock {
    pub fn new() -> Self {
        Self {
            base_ms: 1_764_140_000_000,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now_ms(&self) -> u64 {
        self.base_ms + self.start.elapsed().as_millis() as u64
    }
    fn sleep(&self, d: Duration) -> BoxFuture<'static, ()> {
        boxed(tokio::time::sleep(d))
    }
}

/// Background tasks on tokio (slot release after a client disconnects).
pub struct TokioSpawn;

impl flow2api_sdk::seams::Spawn for TokioSpawn {
    fn spawn(&self, future: BoxFuture<'static, ()>) {
        tokio::spawn(future);
    }
}

pub const API_KEY: &str = "test-api-key";
pub const ST: &str = "st-alice-0123456789abcdef";

pub struct Harness {
    pub app: App,
    pub fake: FakeFlow,
    pub admin: String,
    pub clock: Arc<TokioClock>,
}

pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    /// The `data:` payloads of an SSE body, in order.
    pub fn events(&self) -> Vec<String> {
        self.text()
            .split("\n\n")
            .filter_map(|e| e.strip_prefix("data: "))
            .map(str::to_owned)
            .collect()
    }
}

pub fn config(extra: &[(&str, &str)], fake: &FakeFlow) -> Config {
    let mut env: HashMap<String, String> = HashMap::new();
    for (k, v) in [
        ("API_KEY", API_KEY),
        ("ADMIN_PASSWORD", "secret-pw"),
        ("YESCAPTCHA_API_KEY", "fake-yescaptcha-key"),
        ("CAPTCHA_POLL_INTERVAL", "0.01"),
    ] {
        env.insert(k.into(), v.into());
    }
    env.insert("FLOW_LABS_BASE_URL".into(), fake.labs_base());
    env.insert("FLOW_API_BASE_URL".into(), fake.api_base());
    env.insert("YESCAPTCHA_BASE_URL".into(), fake.yescaptcha_base());
    for (k, v) in extra {
        env.insert((*k).into(), (*v).into());
    }
    Config::from_lookup(|k| env.get(k).cloned()).expect("a valid test configuration")
}

/// The gateway over `fake`, in memory, with jobs run as tokio tasks; tests add or replace
/// seams before `build`.
pub fn builder(config: Config, fake: &FakeFlow, clock: Arc<TokioClock>) -> AppBuilder {
    App::builder(config)
        .http(Arc::new(fake.clone()))
        .clock(clock)
        .spawner(Arc::new(TokioSpawn))
        .in_memory()
}

/// Stores that outlive an app, so a second app over them plays a restarted process.
#[derive(Clone)]
pub struct Stores {
    pub storage: Arc<MemoryStorage>,
    pub sessions: Arc<MemoryStorage>,
    pub jobs: Arc<MemoryStorage>,
    pub coordinator: Arc<MemoryCoordinator>,
}

impl Stores {
    pub fn new(clock: Arc<TokioClock>) -> Self {
        Self {
            storage: Arc::new(MemoryStorage::new(clock.clone())),
            sessions: Arc::new(MemoryStorage::new(clock.clone())),
            jobs: Arc::new(MemoryStorage::new(clock.clone())),
            coordinator: Arc::new(MemoryCoordinator::new(clock)),
        }
    }

    /// `builder` with these stores in place of fresh ones.
    pub fn attach(&self, builder: AppBuilder) -> AppBuilder {
        builder
            .storage(self.storage.clone())
            .consistent(self.sessions.clone())
            .job_store(self.jobs.clone())
            .coordinator(self.coordinator.clone())
    }
}

/// An app with one Ultra account added through the admin API.
pub async fn harness() -> Harness {
    harness_with(&[], Some("PAYGATE_TIER_TWO")).await
}

pub async fn harness_with(extra: &[(&str, &str)], tier: Option<&str>) -> Harness {
    let clock = Arc::new(TokioClock::new());
    let fake = FakeFlow::new("https://fake.flow.test", clock.clone());
    let mut acct = FakeAccount::new(ST, "alice@example.com");
    if let Some(t) = tier {
        acct.tier = t.to_owned();
    }
    fake.add_account(acct);
    let config = config(extra, &fake);
    let app = builder(config, &fake, clock.clone()).build().unwrap();
    if extra.iter().any(|(k, _)| *k == "ADMIN_PASSWORD") {
        // The caller tests another password and logs in itself.
        return Harness {
            app,
            fake,
            admin: String::new(),
            clock,
        };
    }
    let h = logged_in(app, fake, clock).await;
    if tier.is_some() {
        let added = h
            .admin_call("POST", "/api/tokens", Some(json!({"st": ST})))
            .await;
        assert_eq!(added.status, 200, "{}", added.text());
    }
    h.fake.clear_requests();
    h
}

/// A harness over `app`, logged in as the admin.
pub async fn logged_in(app: App, fake: FakeFlow, clock: Arc<TokioClock>) -> Harness {
    let mut h = Harness {
        app,
        fake,
        admin: String::new(),
        clock,
    };
    let login = h
        .call(
            "POST",
            "/api/login",
            &[],
            Some(json!({"username": "admin", "password": "secret-pw"})),
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.text());
    h.admin = login.json()["token"].as_str().unwrap().to_owned();
    h
}

impl Harness {
    /// Adds an account to the fake and to the gateway (with extra admin fields); its id.
    pub async fn add_account(
        &self,
        st: &str,
        email: &str,
        tier: &str,
        credits: i64,
        extra: Value,
    ) -> String {
        let mut acct = FakeAccount::new(st, email);
        acct.tier = tier.to_owned();
        acct.credits = credits;
        self.fake.add_account(acct);
        let mut body = json!({"st": st});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let r = self.admin_call("POST", "/api/tokens", Some(body)).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["token"]["id"].as_str().unwrap().to_owned()
    }

    /// `GET /api/tokens` as a map from email to the account view.
    pub async fn accounts(&self) -> HashMap<String, Value> {
        let r = self.admin_call("GET", "/api/tokens", None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["email"].as_str().unwrap().to_owned(), a.clone()))
            .collect()
    }

    pub async fn call(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Reply {
        self.raw(
            method,
            path,
            headers,
            body.map(|b| Bytes::from(b.to_string())).unwrap_or_default(),
        )
        .await
    }

    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> Reply {
        let mut b = http::Request::builder()
            .method(method)
            .uri(path)
            .header("host", "gateway.test");
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let resp = self.app.handle(b.body(body).unwrap()).await;
        let (parts, body) = resp.into_parts();
        Reply {
            status: parts.status.as_u16(),
            headers: parts.headers,
            body: body.collect().await,
        }
    }

    pub async fn admin_call(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let auth = format!("Bearer {}", self.admin);
        self.call(method, path, &[("authorization", &auth)], body)
            .await
    }

    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> Reply {
        let auth = format!("Bearer {API_KEY}");
        self.call(method, path, &[("authorization", &auth)], body)
            .await
    }

    pub async fn chat(&self, body: Value) -> Reply {
        self.api("POST", "/v1/chat/completions", Some(body)).await
    }
}

pub fn user(content: Value) -> Value {
    json!([{"role": "user", "content": content}])
}

/// The `(url)` of `![Generated Image](url)`.
pub fn image_url(markdown: &str) -> String {
    let start = markdown.find("](").expect("markdown image") + 2;
    markdown[start..markdown.len() - 1].to_owned()
}

pub fn assert_error(r: &Reply, status: u16, code: Option<&str>) -> Value {
    assert_eq!(r.status, status, "{}", r.text());
    let v = r.json();
    let e = &v["error"];
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(e["type"].is_string(), "{v}");
    if let Some(c) = code {
        assert_eq!(e["code"], c, "{v}");
    }
    v
}
