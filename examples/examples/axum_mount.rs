//! The gateway inside an existing axum app, under the path prefix `/flow`.
//!
//! Run with `API_KEY=sk-local cargo run -p flow2api-examples --example axum_mount`
//!
//! The app answers `GET /` itself; everything under `/flow` is the gateway, so
//! `GET /flow/v1/models`, `POST /flow/v1/chat/completions`, `GET /flow/media/{id}`… Settings
//! come from the environment as for `flow2api-server` (`API_KEY`, `ADMIN_PASSWORD`,
//! `FLOW_*_BASE_URL`, `YESCAPTCHA_*`…, `DATA_DIR`, `LISTEN_ADDR`, default `127.0.0.1:8000`).
//!
//! The gateway's own links (generated `/media/{id}` files, video content, Gemini file
//! downloads) are built on `PUBLIC_BASE_URL`, which may carry a path. Unset, this example sets
//! it to `http://{LISTEN_ADDR}/flow`; behind a proxy, set it to the address clients use.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::handler::Handler as _;
use axum::http::Response;
use axum::routing::get;
use axum::Router;
use flow2api_sdk::api::ClientAddr;
use flow2api_sdk::native::{handle, shutdown_signal, Host, HostOptions, ResponseBody};
use flow2api_sdk::{App, Config};

/// Where the gateway is mounted.
const PREFIX: &str = "/flow";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::var("LISTEN_ADDR").unwrap_or_else(|_| "127.0.0.1:8000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let here = format!("http://{}{PREFIX}", listener.local_addr()?);
    // Every setting from the environment; PUBLIC_BASE_URL defaults to where the gateway is.
    let config = Config::from_lookup(|name| match std::env::var(name).ok() {
        None if name == "PUBLIC_BASE_URL" => Some(here.clone()),
        value => value,
    })?;
    let host = Host::open(config, HostOptions::from_env()?).await?;

    let app = Router::new()
        // The app's own routes…
        .route(
            "/",
            get(|| async { "the host app; the gateway is under /flow\n" }),
        )
        // …and the gateway. `nest_service` strips `/flow` before the gateway sees the path.
        .nest_service(PREFIX, gateway.with_state(host.app().clone()));

    println!(
        "listening on http://{} (the gateway at {here})",
        listener.local_addr()?
    );
    // With each connection's peer address, which the gateway counts failed admin logins by.
    let app = app.into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    host.close().await?;
    Ok(())
}

/// Hands one request to the gateway: refused from its head (bad key, unknown route) before
/// the body is read, else the body read up to the gateway's limit; the answer streams
/// back as the gateway produces it (event streams, video bytes). The client's address goes
/// along, so that failed admin logins are throttled per client.
async fn gateway(
    State(app): State<App>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
) -> Response<ResponseBody> {
    request.extensions_mut().insert(ClientAddr(peer.ip()));
    handle(&app, request).await
}
