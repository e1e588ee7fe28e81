//! `FlowClient` as a library: exchange a session token (ST) for an access token, then read
//! the account's credits and tier (see `docs/upstream.md#session-to-access-token` and
//! `docs/upstream.md#credits`).
//!
//! Run with `cargo run -p flow2api-examples --example flow_client -- <ST>`
//!
//! The ST may also come from `FLOW_ST` (it then stays out of the process list).
//! `FLOW_LABS_BASE_URL` and `FLOW_API_BASE_URL` point the client elsewhere, e.g. at
//! `flow2api-fake-upstream`.

use std::process::ExitCode;
use std::sync::Arc;

use flow2api_sdk::config::{DEFAULT_API_BASE_URL, DEFAULT_LABS_BASE_URL};
use flow2api_sdk::native::{ReqwestHttp, TokioClock};
use flow2api_sdk::{FlowClient, Secret};

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().trim_end_matches('/').to_owned())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| default.to_owned())
}

#[tokio::main]
async fn main() -> ExitCode {
    let Some(st) = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("FLOW_ST").ok())
    else {
        eprintln!("usage: flow_client <ST>   (or set FLOW_ST)");
        return ExitCode::from(2);
    };
    let st = Secret::new(st.trim());
    let http = match ReqwestHttp::new() {
        Ok(h) => h,
        Err(e) => {
            eprintln!("cannot build the HTTP client: {e}");
            return ExitCode::FAILURE;
        }
    };
    let flow = FlowClient::new(
        Arc::new(http),
        Arc::new(TokioClock),
        &env_or("FLOW_LABS_BASE_URL", DEFAULT_LABS_BASE_URL),
        &env_or("FLOW_API_BASE_URL", DEFAULT_API_BASE_URL),
    );

    // session-to-access-token: ST → AT.
    let session = match flow.session(&st).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("session (ST → AT) failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    // credits and tier.
    let credits = match flow.credits(&session.access_token).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("credits failed: {e}");
            return ExitCode::FAILURE;
        }
    };

    println!(
        "email:   {}",
        session.email.as_deref().unwrap_or("(unknown)")
    );
    println!("tier:    {}", credits.tier.label());
    println!("credits: {}", credits.credits);
    println!("AT:      {}", session.access_token.masked());
    if let Some(exp) = session.expires_ms {
        println!("expires: {exp} (Unix ms)");
    }
    ExitCode::SUCCESS
}
