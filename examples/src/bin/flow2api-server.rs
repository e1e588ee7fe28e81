//! The native flow2api server: a thin `main` over the SDK's `native` feature.
//!
//! Run with `cargo run --release -p flow2api-examples --bin flow2api-server`
//!
//! Configuration comes from the environment: every setting in `flow2api_sdk::config::SETTINGS` (at least
//! `API_KEY`; `ADMIN_PASSWORD` to add accounts), plus
//!
//! - `LISTEN_ADDR`: where to listen (default `127.0.0.1:8000`);
//! - `DATA_DIR`: the directory of the state database (`flow2api.db`: accounts with their
//!   cooldowns and error counts, admin sessions, video jobs) and of generated media (default
//!   `./data`); an old `store.json` found there is imported once;
//! - `LOG_REQUESTS`: `0`/`false`/`off` turns the per-request line on stderr off;
//! - `LOG_FORMAT`: `text` (default) or `json` (one JSON object per line), for the request
//!   lines and every other log event; `RUST_LOG`: which events (default `info`;
//!   `flow2api::request=off` drops the request lines alone);
//! - `BODY_READ_TIMEOUT`: seconds a client may take to send a request body (default 60; 408
//!   beyond); `MAX_CONNECTIONS`: connections served at once (default 1024);
//! - `REFRESH_INTERVAL`: seconds between background passes that refresh access tokens
//!   expiring within two hours and the credits of resting accounts (default 600; `0` turns
//!   them off). Each pass writes one line of counts to stderr.
//!
//! With `--relay` it runs the egress relay instead of the gateway (`docs/egress.md`): it
//! listens on `LISTEN_ADDR` and forwards requests a gateway signed with `RELAY_SECRET` to the
//! hosts of `FLOW_LABS_BASE_URL`, `FLOW_API_BASE_URL`, the solvers' `*_BASE_URL` and
//! `RELAY_ALLOW_HOSTS` (comma-separated), through `RELAY_PROXY_URL` when set.

use std::io::Write as _;
use std::process::ExitCode;

use flow2api_sdk::native::{
    init_logging, serve_relay, shutdown_signal, Host, HostOptions, LogFormat, RelayOptions,
    ServeOptions,
};
use flow2api_sdk::Config;

const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:8000";

type Error = Box<dyn std::error::Error>;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flow2api-server: {e}");
            ExitCode::FAILURE
        }
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

async fn run() -> Result<(), Error> {
    init_logging(LogFormat::from_env()?)?;
    // An invalid setting stops the server here, with every problem named.
    let config = Config::from_lookup(|k| std::env::var(k).ok())?;
    if std::env::args().skip(1).any(|a| a == "--relay") {
        return relay(&config).await;
    }
    if config.api_key.is_none() {
        flow2api_sdk::native::log_warning("API_KEY is not set; /v1 routes answer 503 until it is");
    }
    let options = HostOptions::from_env()?;
    let addr = env("LISTEN_ADDR").unwrap_or_else(|| DEFAULT_LISTEN_ADDR.to_owned());
    let serve = ServeOptions::from_env()?;
    let host = Host::open(config, options).await?;
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{}", listener.local_addr()?)?;
        out.flush()?;
    }
    host.serve(listener, serve, shutdown_signal()).await?;
    Ok(())
}

/// `--relay`: the egress relay alone.
async fn relay(config: &Config) -> Result<(), Error> {
    let options = RelayOptions::from_lookup(config, |k| std::env::var(k).ok())?;
    let addr = env("LISTEN_ADDR").unwrap_or_else(|| DEFAULT_LISTEN_ADDR.to_owned());
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "relay listening on http://{} for {}",
            listener.local_addr()?,
            options.allow_hosts.join(", ")
        )?;
        out.flush()?;
    }
    serve_relay(listener, options, shutdown_signal()).await?;
    Ok(())
}
