//! The native host: the seams over tokio, reqwest, hyper and files, behind cargo features that
//! are all off by default (so the wasm build pulls none of them).
//!
//! | feature | what it brings |
//! |---|---|
//! | `reqwest` | [`ReqwestHttp`]: the [`HttpClient`](crate::HttpClient) over one pooled `reqwest::Client` that never follows redirects; with `tokio`, [`PublicOnlyHttp`] for client-given URLs (public addresses only, names checked by their resolved addresses) |
//! | `tokio` | [`TokioClock`], [`TokioSpawn`], [`refresh_periodically`], [`DirMediaStore`] (media as files with a TTL) |
//! | `sqlite` | [`SqliteDb`]: one SQLite file holding [`SqliteStorage`] namespaces and the [`SqliteCoordinator`]'s durable account states (implies `tokio`) |
//! | `server` | [`serve`] / [`serve_with`]: a hyper HTTP/1.1 server with graceful shutdown and upgrades, and `/captcha_ws` for the `extension` captcha method; [`handle`] to mount the gateway in another server |
//! | `reqwest` + `tokio` | `FlowClient::native` and `YesCaptcha::native`: the typed clients from a [`Config`](crate::Config) |
//! | `server` + `reqwest` | [`serve_relay`]: the egress relay (`flow2api-server --relay`, `docs/egress.md`) |
//! | `native` | all of the above and [`Host`]: the whole gateway from a [`Config`](crate::Config) and a data directory |
//!
//! An app on tokio embeds the gateway with [`Host::open`] and [`Host::serve`]; see the README's
//! "Use it as a library".

#[cfg(feature = "tokio")]
mod background;
#[cfg(feature = "server")]
mod captcha_ws;
#[cfg(all(feature = "reqwest", feature = "tokio"))]
mod clients;
#[cfg(feature = "tokio")]
mod clock;
#[cfg(feature = "native")]
mod host;
#[cfg(feature = "reqwest")]
mod http;
#[cfg(feature = "tokio")]
mod media_dir;
#[cfg(all(feature = "server", feature = "reqwest"))]
mod relay;
#[cfg(feature = "server")]
mod request_log;
#[cfg(feature = "server")]
mod serve;
#[cfg(feature = "sqlite")]
mod sqlite;

#[cfg(feature = "tokio")]
pub use background::{
    media_purge_interval, purge_media_periodically, refresh_periodically, report_line, TokioSpawn,
};
#[cfg(feature = "tokio")]
pub use clock::TokioClock;
#[cfg(feature = "native")]
pub use host::{Host, HostError, HostOptions, DEFAULT_DATA_DIR};
#[cfg(feature = "reqwest")]
pub use http::ReqwestHttp;
#[cfg(all(feature = "reqwest", feature = "tokio"))]
pub use http::{Lookup, PublicOnlyHttp};
#[cfg(feature = "tokio")]
pub use media_dir::DirMediaStore;
#[cfg(all(feature = "server", feature = "reqwest"))]
pub use relay::{serve_relay, RelayConfigError, RelayOptions, MAX_RELAY_BODY};
#[cfg(feature = "server")]
pub use serve::{
    handle, serve, serve_with, shutdown_signal, ResponseBody, ServeOptions,
    DEFAULT_BODY_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
};
#[cfg(feature = "sqlite")]
pub use sqlite::{
    ImportReport, SqliteCoordinator, SqliteDb, SqliteError, SqliteLogStore, SqliteLogs,
    SqliteStorage, DB_FILE, SNAPSHOT_FILE,
};
