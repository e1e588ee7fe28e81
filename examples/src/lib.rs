//! Native implementations of the `flow2api-sdk` seams, shared by the binaries of this package.
//!
//! This package is the only place where tokio, hyper and reqwest meet the SDK:
//!
//! - [`ReqwestHttp`]: the [`HttpClient`](flow2api_sdk::HttpClient) over one pooled
//!   `reqwest::Client` that never follows redirects;
//! - [`TokioClock`]: the [`Clock`](flow2api_sdk::Clock) on the system time and tokio timers;
//! - [`FileSnapshot`]: persistence of a [`MemoryStorage`](flow2api_sdk::memory::MemoryStorage)
//!   to `<dir>/store.json`;
//! - [`DirMediaStore`]: generated media as files with a TTL;
//! - [`TokioSpawn`]: the [`Spawn`](flow2api_sdk::seams::Spawn) on `tokio::spawn`, and
//!   [`refresh_periodically`]: the account pool's background refresh on a timer;
//! - [`serve`] / [`serve_with`]: a hyper 1 HTTP/1.1 server that feeds each request to
//!   [`App::handle`](flow2api_sdk::App::handle) and streams its answer.

#![warn(missing_docs)]

mod background;
mod clock;
mod http_client;
mod media_dir;
mod request_log;
mod serve;
mod snapshot;

pub use background::{refresh_periodically, report_line, TokioSpawn};
pub use clock::TokioClock;
pub use http_client::ReqwestHttp;
pub use media_dir::DirMediaStore;
pub use serve::{serve, serve_with, shutdown_signal, ServeOptions, MAX_BODY_BYTES};
pub use snapshot::FileSnapshot;
