//! flow2api on Cloudflare Workers: the SDK's [`App`](flow2api_sdk::App) behind
//! `#[event(fetch)]`, its background refresh behind `#[event(scheduled)]`, with its seams
//! implemented over Workers primitives:
//!
//! | seam | here |
//! |---|---|
//! | `HttpClient` | `fetch` with manual redirects, subrequests counted (`fetch_http`) |
//! | `Storage` (accounts and their index) | the `StoreObject` named `accounts` (`do_storage`: strongly consistent, conditional writes) behind the SDK's `CachingStorage`, its cache kept per isolate; records an earlier version kept in KV are copied in once |
//! | `MediaStore` | the R2 bucket `MEDIA` (`r2_media`: streamed, ranged reads, expired objects deleted by the cron); without that binding, the SDK's `StorageMediaStore` over the KV namespace `KV` |
//! | `Storage` (admin sessions) | the `StoreObject` named `admin-sessions` (`do_storage`) |
//! | `Coordinator` | one `AccountObject` per account (`coordinator`, `account_object`) |
//! | `Storage` (video jobs) | job records spread over 16 `StoreObject`s, `video-jobs-0` … `video-jobs-15`, by a hash of the job id; their listing and `Idempotency-Key` entries in the one named `video-jobs` (`do_storage`) |
//! | `Storage` (tenant keys) | the `StoreObject` named `api-keys` for the key records, one named `tenant-{id}` per key for its counters and leases (`tenant_storage`) |
//! | `LogStore` (request logs and counters) | the `LogObject` named `logs` and its SQLite storage, running the SDK's log SQL; one call per generation request, written through `waitUntil` (`log_object`) |
//! | `JobRunner` | one `JobObject` per video job, stepping it from its alarm (`job_runner`, `job_object`) |
//! | `BrowserHub` (the `extension` captcha method) | the `CaptchaHubObject`s: `/captcha_ws` sockets accepted with the WebSocket Hibernation API in one object per route key (and a directory of the keys served), each solve a fetch to the account's key's object (`captcha_hub`) |
//! | `Spawn` | the fetch event's `waitUntil` (`spawn`); a streamed response also holds the invocation open with it until the stream ends or is dropped |
//! | `Clock` | `Date.now()` and `setTimeout` (`clock`) |
//!
//! The `Config` is read from the environment once per isolate; runtime settings (overrides in
//! the `StoreObject` named `admin-sessions`) are re-read at most once a second.
//!
//! Every module but [`protocol`] talks to the Workers runtime and builds for wasm32 only: on
//! the host the SDK's seams require `Send` futures, which JS-backed futures are not. On the
//! host the crate is the plain-Rust [`protocol`] and its tests.

pub mod protocol;

#[cfg(target_arch = "wasm32")]
mod account_object;
#[cfg(target_arch = "wasm32")]
mod captcha_hub;
#[cfg(target_arch = "wasm32")]
mod clock;
#[cfg(all(target_arch = "wasm32", feature = "conformance"))]
mod conformance;
#[cfg(target_arch = "wasm32")]
mod coordinator;
#[cfg(target_arch = "wasm32")]
mod do_client;
#[cfg(target_arch = "wasm32")]
mod do_storage;
#[cfg(target_arch = "wasm32")]
mod fetch_http;
#[cfg(target_arch = "wasm32")]
mod job_object;
#[cfg(target_arch = "wasm32")]
mod job_runner;
#[cfg(target_arch = "wasm32")]
mod js;
#[cfg(target_arch = "wasm32")]
mod kv_storage;
#[cfg(target_arch = "wasm32")]
mod log_object;
#[cfg(target_arch = "wasm32")]
mod r2_media;
#[cfg(target_arch = "wasm32")]
mod spawn;
#[cfg(target_arch = "wasm32")]
mod store_object;
#[cfg(target_arch = "wasm32")]
mod tenant_storage;

#[cfg(target_arch = "wasm32")]
pub use account_object::AccountObject;
#[cfg(target_arch = "wasm32")]
pub use captcha_hub::CaptchaHubObject;
#[cfg(target_arch = "wasm32")]
pub use job_object::JobObject;
#[cfg(target_arch = "wasm32")]
pub use log_object::LogObject;
#[cfg(target_arch = "wasm32")]
pub use store_object::StoreObject;

#[cfg(target_arch = "wasm32")]
pub(crate) mod entry {
    use std::cell::OnceCell;
    use std::collections::HashMap;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use bytes::BytesMut;
    use flow2api_sdk::api::{ApiError, ClientAddr, Dialect};
    use flow2api_sdk::cache::{CachingStorage, StorageCache};
    use flow2api_sdk::config::ConfigError;
    use flow2api_sdk::memory::StorageMediaStore;
    use flow2api_sdk::seams::{boxed, BoxStream, Bytes, MediaStore, Spawn, Storage};
    use flow2api_sdk::settings::SettingsCache;
    use flow2api_sdk::{App, Body, Config};
    use futures::channel::oneshot;
    use futures::stream::Fuse;
    use futures::{Stream, StreamExt};
    use worker::js_sys::Uint8Array;
    use worker::wasm_bindgen_futures::JsFuture;
    use worker::{
        console_error, console_log, event, web_sys, Env, Headers, Response, ResponseBuilder,
        Result, ScheduleContext, ScheduledEvent,
    };

    use crate::clock::WorkerClock;
    use crate::coordinator::DoCoordinator;
    use crate::do_storage::DoStorage;
    use crate::fetch_http::{FetchHttp, Subrequests};
    use crate::job_runner::DoJobRunner;
    use crate::kv_storage::KvStorage;
    use crate::r2_media::R2MediaStore;
    use crate::spawn::WaitUntil;
    use crate::tenant_storage::TenantStorage;

    /// The `StoreObject` instance that holds admin sessions.
    const SESSIONS: &str = "admin-sessions";
    /// The `StoreObject` instance that holds the video jobs' listings and idempotency keys.
    const VIDEO_JOBS: &str = "video-jobs";
    /// How many `StoreObject` instances (`video-jobs-0` …) the job records are spread over.
    /// Never change it while jobs live (7 days): each record's place follows from it.
    const JOB_SHARDS: usize = 16;
    /// The `StoreObject` instance that holds account records and the pool's index.
    const ACCOUNTS: &str = "accounts";

    // Per isolate: an isolate serves many requests, one at a time per thread, and its
    // bindings' values do not change under it (a new deployment is a new isolate).
    thread_local! {
        /// The configuration from the environment (or why it is invalid) and the runtime
        /// settings on top of it.
        static SETTINGS: OnceCell<std::result::Result<Arc<SettingsCache>, ConfigError>> =
            const { OnceCell::new() };
        static ACCOUNT_CACHE: OnceCell<Arc<StorageCache>> = const { OnceCell::new() };
        // Captcha counters live as long as the isolate, not the per-request app.
        static CAPTCHA_STATS: OnceCell<Arc<flow2api_sdk::captcha::CaptchaStats>> =
            const { OnceCell::new() };
        /// Whether this isolate saw the account records of KV adopted (one read, then never).
        static ADOPTED: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
        /// `SUBREQUEST_LOG_THRESHOLD`: invocations with at least this many subrequests are
        /// logged (default 25, half the free plan's 50; 0 logs every invocation). A log line
        /// costs about as much CPU as a whole small request under `wrangler dev`.
        static LOG_THRESHOLD: OnceCell<u32> = const { OnceCell::new() };
    }

    #[event(fetch)]
    async fn fetch(req: web_sys::Request, env: Env, ctx: worker::Context) -> Result<Response> {
        let mut parts = request_head(&req)?;
        // For the subrequest log line: method and path only (a query may carry `key=`).
        let route = format!("{} {}", parts.method, parts.uri.path());
        LOG_THRESHOLD.with(|t| {
            t.get_or_init(|| {
                env.var("SUBREQUEST_LOG_THRESHOLD")
                    .ok()
                    .and_then(|v| v.to_string().trim().parse().ok())
                    .unwrap_or(25)
            });
        });
        let subrequests = Subrequests::default();
        let wait_until = Arc::new(WaitUntil::new(ctx));
        if let Err(e) = settings(&env) {
            // Every request says why, in the client's error shape, until the deployment is fixed.
            console_error!("{e}");
            let response = ApiError::new(http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
                .code("invalid_configuration")
                .into_response(Dialect::OpenAi);
            return to_worker_response(response, (route, subrequests), &*wait_until);
        }
        let app = app(&env, &subrequests, Some(wait_until.clone()))?;
        adopt_kv_accounts(&app, &env).await;
        // Test-only: the conformance route exists in the `conformance` build alone.
        #[cfg(feature = "conformance")]
        if let Some(rest) = parts.uri.path().strip_prefix(crate::conformance::PREFIX) {
            let rest = rest.to_owned();
            let body = read_body(&req, usize::MAX).await?.unwrap_or_default();
            return crate::conformance::handle(&env, &rest, &String::from_utf8_lossy(&body)).await;
        }
        // The extension captcha method's WebSocket (§10.5): only the root key attaches.
        if parts.uri.path() == "/captcha_ws" {
            let allowed = app.captcha_ws_allowed(&parts.headers, &parts.uri);
            return crate::captcha_hub::upgrade(&env, req, allowed).await;
        }
        // Refused from the head (bad key, unknown route, declared too large): the body is
        // never read.
        if let Some(rejected) = app.check_head(&mut parts).await {
            return to_worker_response(rejected, (route, subrequests), &*wait_until);
        }
        let limit = app.body_limit(&parts);
        let Some(body) = read_body(&req, limit).await? else {
            let response = app.body_too_large(&parts);
            return to_worker_response(response, (route, subrequests), &*wait_until);
        };
        let request = http::Request::from_parts(parts, body);
        let response = app.handle(request).await;
        to_worker_response(response, (route, subrequests), &*wait_until)
    }

    /// The cron trigger (`[triggers]` in wrangler.toml): refreshes tokens before they expire
    /// and credits of resting accounts.
    #[event(scheduled)]
    async fn scheduled(event: ScheduledEvent, env: Env, _ctx: ScheduleContext) {
        let subrequests = Subrequests::default();
        // The pass awaits all its work itself: nothing to run in the background.
        let app = match app(&env, &subrequests, None) {
            Ok(app) => app,
            Err(e) => {
                console_error!("refresh cron={}: cannot start: {e}", event.cron());
                return;
            }
        };
        adopt_kv_accounts(&app, &env).await;
        match app.pool().refresh_due().await {
            Ok(r) => console_log!(
                "refresh cron={} {r} subrequests={}",
                event.cron(),
                subrequests.get()
            ),

            Err(e) => console_error!(
                "refresh cron={} failed: {e} subrequests={}",
                event.cron(),
                subrequests.get()
            ),
        }
        match app.purge_media().await {
            Ok(n) => console_log!("media cron={} purged={n}", event.cron()),
            Err(e) => console_error!("media cron={} purge failed: {e}", event.cron()),
        }
    }

    /// The gateway for one invocation, over this isolate's configuration and account cache.
    #[allow(clippy::arc_with_non_send_sync)] // one thread on wasm32, as for `deps`
    pub(crate) fn app(
        env: &Env,
        subrequests: &Subrequests,
        spawner: Option<Arc<dyn Spawn>>,
    ) -> Result<App> {
        let settings = settings(env).map_err(|e| worker::Error::RustError(e.to_string()))?;
        let config = settings.base();
        let cache = ACCOUNT_CACHE.with(|c| {
            c.get_or_init(|| {
                Arc::new(StorageCache::new(
                    Arc::new(WorkerClock),
                    config.account_cache_ttl,
                ))
            })
            .clone()
        });
        let kv: Arc<dyn Storage> = Arc::new(KvStorage::new(env.kv("KV")?));
        let store = env.durable_object("STORE")?;
        let accounts = DoStorage::new(store.clone(), ACCOUNTS, subrequests.clone());
        let sessions = DoStorage::new(store.clone(), SESSIONS, subrequests.clone());
        let coordinator = DoCoordinator::new(env.durable_object("ACCOUNTS")?, subrequests.clone());
        let jobs = DoStorage::new(store.clone(), VIDEO_JOBS, subrequests.clone());
        let job_shards: Vec<Arc<dyn Storage>> = (0..JOB_SHARDS)
            .map(|i| {
                let name = format!("{VIDEO_JOBS}-{i}");
                Arc::new(DoStorage::new(store.clone(), name, subrequests.clone()))
                    as Arc<dyn Storage>
            })
            .collect();
        let tenants = TenantStorage::new(store, subrequests.clone());
        let runner = DoJobRunner::new(env.durable_object("JOBS")?, subrequests.clone());
        let mut builder = App::builder(config.clone())
            .settings_cache(settings.clone())
            .http(Arc::new(FetchHttp::new(subrequests.clone())))
            .clock(Arc::new(WorkerClock))
            .storage(Arc::new(CachingStorage::new(Arc::new(accounts), cache)))
            .consistent(Arc::new(sessions))
            .coordinator(Arc::new(coordinator))
            .media(media_store(env, kv, config.media_ttl))
            .job_store(Arc::new(jobs))
            .job_record_shards(job_shards)
            .tenant_storage(Arc::new(tenants))
            .logs(Arc::new(crate::log_object::store(
                env.durable_object(crate::log_object::BINDING)?,
                crate::log_object::INSTANCE,
                subrequests.clone(),
            )))
            .job_runner(Arc::new(runner))
            .browser_hub(Arc::new(crate::captcha_hub::DoBrowserHub::new(
                env.durable_object(crate::captcha_hub::BINDING)?,
                subrequests.clone(),
            )))
            .captcha_stats(CAPTCHA_STATS.with(|s| s.get_or_init(Arc::default).clone()));
        if let Some(spawner) = spawner {
            builder = builder.spawner(spawner);
        }
        builder
            .build()
            .map_err(|e| worker::Error::RustError(e.to_string()))
    }

    /// The media store: the R2 bucket `MEDIA`, or KV for a deployment without that binding.
    #[allow(clippy::arc_with_non_send_sync)] // one thread on wasm32, as for `deps`
    fn media_store(
        env: &Env,
        kv: Arc<dyn Storage>,
        ttl: std::time::Duration,
    ) -> Arc<dyn MediaStore> {
        match env.bucket("MEDIA") {
            Ok(bucket) => Arc::new(R2MediaStore::new(bucket, ttl)),
            // Uncached: media ids are unique and read about once, caching would only hold memory.
            Err(_) => Arc::new(StorageMediaStore::new(kv, Some(ttl))),
        }
    }

    /// Account records used to live in KV (eventually consistent, no conditional write):
    /// copies them into the `accounts` object once per deployment, checked once per isolate.
    /// A failure is logged and tried again by the next invocation.
    async fn adopt_kv_accounts(app: &App, env: &Env) {
        if ADOPTED.with(std::cell::Cell::get) {
            return;
        }
        let Ok(kv) = env.kv("KV") else { return };
        match app.pool().adopt_records(&KvStorage::new(kv)).await {
            Ok(n) => {
                if n > 0 {
                    console_log!("adopted {n} account records from KV");
                }
                ADOPTED.with(|a| a.set(true));
            }
            Err(e) => console_error!("adopting account records from KV: {e}"),
        }
    }

    /// This isolate's settings: the configuration from `[vars]`, secrets and `.dev.vars`
    /// (every name the SDK reads), read once, with the runtime overrides on top.
    fn settings(env: &Env) -> std::result::Result<Arc<SettingsCache>, ConfigError> {
        SETTINGS.with(|s| {
            s.get_or_init(|| {
                // Secrets and vars are the same kind of string binding, so `var` reads both.
                let values: HashMap<&str, String> = Config::names()
                    .filter_map(|name| Some((name, env.var(name).ok()?.to_string())))
                    .collect();
                Config::from_lookup(|name| values.get(name).cloned())
                    .map(|c| Arc::new(SettingsCache::new(c)))
            })
            .clone()
        })
    }

    /// A request's method, URL and headers, read straight off the runtime's `Request` (the
    /// body stays unread until [`read_body`]), and the client's address: `CF-Connecting-IP`,
    /// which Cloudflare sets on every request it hands a Worker (a client's own is replaced).
    fn request_head(req: &web_sys::Request) -> Result<http::request::Parts> {
        let mut builder = http::Request::builder()
            .method(req.method().as_str())
            .uri(req.url());
        if let Some(map) = builder.headers_mut() {
            crate::js::copy_headers(req.headers(), map);
        }
        let mut parts = builder.body(())?.into_parts().0;
        let client = parts
            .headers
            .get("cf-connecting-ip")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        if let Some(ip) = client {
            parts.extensions.insert(ClientAddr(ip));
        }
        Ok(parts)
    }

    /// A request's whole body, or `None` when it runs past `limit` bytes. A body of announced
    /// length (already checked against the limit from the head; the runtime holds a body to
    /// its `Content-Length`) comes in one `arrayBuffer()` call, since a stream reader would take
    /// a promise round trip per chunk; one of unknown length is read chunk by chunk and kept
    /// only up to the limit, so it never has to fit in the isolate whole.
    async fn read_body(req: &web_sys::Request, limit: usize) -> Result<Option<Bytes>> {
        if req.body().is_none() {
            return Ok(Some(Bytes::new()));
        }
        if req.headers().has("content-length")? {
            let buffer = JsFuture::from(req.array_buffer()?).await?;
            let bytes = Uint8Array::new(&buffer).to_vec();
            return Ok((bytes.len() <= limit).then(|| Bytes::from(bytes)));
        }
        let mut chunks = worker::Request::from(Clone::clone(req)).stream()?;
        let mut body = Some(BytesMut::new());
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk?;
            // Past the limit the rest is read and dropped: memory stays bounded, and the
            // connection is left clean for the runtime (an unread remainder stalls it).
            if let Some(b) = &mut body {
                if b.len() + chunk.len() > limit {
                    body = None;
                } else {
                    b.extend_from_slice(&chunk);
                }
            }
        }
        Ok(body.map(BytesMut::freeze))
    }

    /// The SDK's response as a Workers response: same status and headers; a whole body as
    /// bytes, a stream as a `ReadableStream` fed chunk by chunk as the SDK yields them.
    ///
    /// A streamed body also holds the invocation open (`waitUntil`) until the stream ends or is
    /// dropped. Without that, a client that goes away ends the invocation while the stream
    /// waits for its next chunk: its timers never fire, the pending read never completes, the
    /// runtime never cancels the stream, and the generation is neither finished nor dropped
    /// (so its slot stays held until the lease lapses). Held open, the next chunk completes
    /// the read, the runtime cancels the stream, and dropping it releases the slot.
    fn to_worker_response(
        response: http::Response<Body>,
        subrequests: (String, Subrequests),
        spawner: &dyn Spawn,
    ) -> Result<Response> {
        let (parts, body) = response.into_parts();
        let headers = Headers::new();
        for (name, value) in &parts.headers {
            // The SDK only writes ASCII header values.
            if let Ok(value) = value.to_str() {
                headers.append(name.as_str(), value)?;
            }
        }
        let builder = ResponseBuilder::new()
            .with_status(parts.status.as_u16())
            .with_headers(headers);
        match body {
            Body::Full(bytes) => {
                log_subrequests(&subrequests);
                // A 204 may not have a body at all, not even an empty one.
                Ok(if bytes.is_empty() {
                    builder.empty()
                } else {
                    builder.fixed(bytes.into())
                })
            }
            Body::Stream(stream) => {
                let (open, closed) = oneshot::channel::<()>();
                spawner.spawn(boxed(async move {
                    // Resolves (cancelled) when the stream drops its sender.
                    let _ = closed.await;
                }));
                builder.from_stream(
                    LogWhenDone {
                        inner: stream.fuse(),
                        subrequests: Some(subrequests),
                        _open: open,
                    }
                    .map(Ok::<Bytes, worker::Error>),
                )
            }
        }
    }

    fn log_subrequests((route, subrequests): &(String, Subrequests)) {
        let n = subrequests.get();
        let threshold = LOG_THRESHOLD.with(|t| t.get().copied().unwrap_or(25));
        if n >= threshold {
            console_log!("{route} subrequests={n}");
        }
    }

    /// Passes a response stream through and logs the invocation's subrequests when it ends,
    /// or when it is dropped early (the client went away).
    struct LogWhenDone {
        /// Fused: a batch may see its end before the runtime asks for the next chunk.
        inner: Fuse<BoxStream<'static, Bytes>>,
        /// The route and its counter, until logged.
        subrequests: Option<(String, Subrequests)>,
        /// Keeps the invocation open while the stream lives (see [`to_worker_response`]).
        _open: oneshot::Sender<()>,
    }

    impl LogWhenDone {
        fn log_once(&mut self) {
            if let Some(s) = self.subrequests.take() {
                log_subrequests(&s);
            }
        }
    }

    impl Stream for LogWhenDone {
        type Item = Bytes;

        /// Every chunk that is ready now, as one: each chunk handed to the runtime costs a
        /// pull of the `ReadableStream` (a promise round trip through the executor), and an
        /// SSE answer often has several frames ready at once (its end: the last progress
        /// lines, the content, `[DONE]`).
        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
            let Some(first) = futures::ready!(self.inner.poll_next_unpin(cx)) else {
                self.log_once();
                return Poll::Ready(None);
            };
            let mut batch: Option<BytesMut> = None;
            while let Poll::Ready(Some(more)) = self.inner.poll_next_unpin(cx) {
                batch
                    .get_or_insert_with(|| BytesMut::from(&first[..]))
                    .extend_from_slice(&more);
            }
            Poll::Ready(Some(batch.map_or(first, BytesMut::freeze)))
        }
    }

    impl Drop for LogWhenDone {
        fn drop(&mut self) {
            self.log_once();
        }
    }
}
