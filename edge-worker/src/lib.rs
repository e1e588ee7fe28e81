//! flow2api on Cloudflare Workers: the SDK's [`App`](flow2api_sdk::App) behind
//! `#[event(fetch)]`, with its seams implemented over Workers primitives:
//!
//! | seam | here |
//! |---|---|
//! | `HttpClient` | `fetch` with manual redirects, subrequests counted (`fetch_http`) |
//! | `Storage` (accounts, media) | the KV namespace `KV` (`kv_storage`) |
//! | `Storage` (admin sessions) | the `StoreObject` named `admin-sessions` (`do_storage`) |
//! | `Coordinator` | one `AccountObject` per account (`coordinator`, `account_object`) |
//! | `Clock` | `Date.now()` and `setTimeout` (`clock`) |
//!
//! Every module but [`protocol`] talks to the Workers runtime and builds for wasm32 only: on
//! the host the SDK's seams require `Send` futures, which JS-backed futures are not. On the
//! host the crate is the plain-Rust [`protocol`] and its tests.

pub mod protocol;

#[cfg(target_arch = "wasm32")]
mod account_object;
#[cfg(target_arch = "wasm32")]
mod clock;
#[cfg(target_arch = "wasm32")]
mod coordinator;
#[cfg(target_arch = "wasm32")]
mod do_client;
#[cfg(target_arch = "wasm32")]
mod do_storage;
#[cfg(target_arch = "wasm32")]
mod fetch_http;
#[cfg(target_arch = "wasm32")]
mod kv_storage;
#[cfg(target_arch = "wasm32")]
mod store_object;

#[cfg(target_arch = "wasm32")]
pub use account_object::AccountObject;
#[cfg(target_arch = "wasm32")]
pub use store_object::StoreObject;

#[cfg(target_arch = "wasm32")]
mod entry {
    use std::collections::HashMap;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use flow2api_sdk::memory::StorageMediaStore;
    use flow2api_sdk::seams::{BoxStream, Bytes, Storage};
    use flow2api_sdk::{App, Body, Config, Deps};
    use futures::{Stream, StreamExt};
    use worker::{
        console_log, event, Env, Headers, HttpRequest, Response, ResponseBuilder, Result,
    };

    use crate::clock::WorkerClock;
    use crate::coordinator::DoCoordinator;
    use crate::do_storage::DoStorage;
    use crate::fetch_http::{FetchHttp, Subrequests};
    use crate::kv_storage::KvStorage;

    /// The `StoreObject` instance that holds admin sessions.
    const SESSIONS: &str = "admin-sessions";

    #[event(fetch)]
    async fn fetch(req: HttpRequest, env: Env, _ctx: worker::Context) -> Result<Response> {
        let request = read_request(req).await?;
        let config = config(&env);
        let subrequests = Subrequests::default();
        let deps = deps(&env, &config, &subrequests)?;
        let response = App::new(config, deps).handle(request).await;
        to_worker_response(response, subrequests)
    }

    /// The configuration from `[vars]`, secrets and `.dev.vars`: every name the SDK reads.
    fn config(env: &Env) -> Config {
        // Secrets and vars are the same kind of string binding, so `var` reads both.
        let values: HashMap<&str, String> = Config::NAMES
            .iter()
            .filter_map(|&name| Some((name, env.var(name).ok()?.to_string())))
            .collect();
        Config::from_lookup(|name| values.get(name).cloned())
    }

    // One thread on wasm32: the seams need no `Send` there, and `Deps` holds them in `Arc`s so
    // that it is one type on both targets.
    #[allow(clippy::arc_with_non_send_sync)]
    fn deps(env: &Env, config: &Config, subrequests: &Subrequests) -> Result<Deps> {
        let kv: Arc<dyn Storage> = Arc::new(KvStorage::new(env.kv("KV")?));
        let sessions =
            DoStorage::new(&env.durable_object("STORE")?, SESSIONS, subrequests.clone())?;
        let coordinator = DoCoordinator::new(env.durable_object("ACCOUNTS")?, subrequests.clone());
        Ok(Deps {
            http: Arc::new(FetchHttp::new(subrequests.clone())),
            storage: kv.clone(),
            sessions: Arc::new(sessions),
            coordinator: Arc::new(coordinator),
            clock: Arc::new(WorkerClock),
            media: Arc::new(StorageMediaStore::new(kv, Some(config.media_ttl))),
            captcha: None,
        })
    }

    /// The incoming request with its whole body read.
    async fn read_request(req: HttpRequest) -> Result<http::Request<Bytes>> {
        let (parts, mut body) = req.into_parts();
        let mut bytes = Vec::new();
        while let Some(chunk) = body.next().await {
            bytes.extend_from_slice(&chunk?);
        }
        Ok(http::Request::from_parts(parts, Bytes::from(bytes)))
    }

    /// The SDK's response as a Workers response: same status and headers; a whole body as
    /// bytes, a stream as a `ReadableStream` fed chunk by chunk as the SDK yields them.
    fn to_worker_response(
        response: http::Response<Body>,
        subrequests: Subrequests,
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
            Body::Stream(stream) => builder.from_stream(
                LogWhenDone {
                    inner: stream,
                    subrequests: Some(subrequests),
                }
                .map(Ok::<Bytes, worker::Error>),
            ),
        }
    }

    fn log_subrequests(subrequests: &Subrequests) {
        console_log!("subrequests={}", subrequests.get());
    }

    /// Passes a response stream through and logs the invocation's subrequests when it ends,
    /// or when it is dropped early (the client went away).
    struct LogWhenDone {
        inner: BoxStream<'static, Bytes>,
        subrequests: Option<Subrequests>,
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

        fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Bytes>> {
            let item = futures::ready!(self.inner.poll_next_unpin(cx));
            if item.is_none() {
                self.log_once();
            }
            Poll::Ready(item)
        }
    }

    impl Drop for LogWhenDone {
        fn drop(&mut self) {
            self.log_once();
        }
    }
}
