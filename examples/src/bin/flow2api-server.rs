//! The native flow2api server: the SDK's [`App`] on hyper, reqwest and in-memory storage.
//!
//! Run with `cargo run --release -p flow2api-examples --bin flow2api-server`
//!
//! Configuration comes from the environment: every name in [`Config::NAMES`] (at least
//! `API_KEY`; `ADMIN_PASSWORD` to add accounts), plus
//!
//! - `LISTEN_ADDR`: where to listen (default `127.0.0.1:8000`);
//! - `DATA_DIR`: keep accounts in `<DATA_DIR>/store.json` across restarts (saved every 5 s when
//!   changed, and at shutdown) and generated media in `<DATA_DIR>/media`; without it everything
//!   is in memory and lost on exit;
//! - `LOG_REQUESTS`: `0`/`false`/`off` turns the per-request line on stderr off;
//! - `REFRESH_INTERVAL`: seconds between background passes that refresh access tokens
//!   expiring within two hours and the credits of resting accounts (default 600; `0` turns
//!   them off). Each pass writes one line of counts to stderr.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use flow2api_examples::{
    refresh_periodically, serve_with, shutdown_signal, DirMediaStore, FileSnapshot, ReqwestHttp,
    ServeOptions, TokioClock, TokioSpawn,
};
use flow2api_sdk::memory::{MemoryCoordinator, MemoryStorage, StorageMediaStore};
use flow2api_sdk::{App, Clock, Config, Deps, MediaStore};

const DEFAULT_LISTEN_ADDR: &str = "127.0.0.1:8000";
const SAVE_EVERY: Duration = Duration::from_secs(5);
const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(600);

type Error = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run()) {
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

/// `REFRESH_INTERVAL` in seconds (fractions allowed), [`DEFAULT_REFRESH_INTERVAL`] when unset.
fn refresh_interval() -> Result<Duration, Error> {
    let Some(v) = env("REFRESH_INTERVAL") else {
        return Ok(DEFAULT_REFRESH_INTERVAL);
    };
    v.parse::<f64>()
        .ok()
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("REFRESH_INTERVAL must be a number of seconds, not {v:?}").into())
}

async fn run() -> Result<(), Error> {
    let config = Config::from_lookup(|k| std::env::var(k).ok());
    if config.api_key.is_none() {
        eprintln!("warning: API_KEY is not set; /v1 routes answer 503 until it is");
    }
    let addr = env("LISTEN_ADDR").unwrap_or_else(|| DEFAULT_LISTEN_ADDR.to_owned());
    let options = ServeOptions {
        log_requests: !env("LOG_REQUESTS").is_some_and(|v| {
            matches!(
                v.to_ascii_lowercase().as_str(),
                "0" | "false" | "no" | "off"
            )
        }),
        ..ServeOptions::default()
    };

    let clock: Arc<dyn Clock> = Arc::new(TokioClock);
    let storage = Arc::new(MemoryStorage::new(clock.clone()));
    let data_dir = env("DATA_DIR").map(PathBuf::from);
    let snapshot = match &data_dir {
        Some(dir) => {
            let s = FileSnapshot::open(dir, storage.clone())
                .map_err(|e| format!("cannot load the store from {}: {e}", dir.display()))?;
            Some(Arc::new(s))
        }
        None => None,
    };
    let media: Arc<dyn MediaStore> = match &data_dir {
        Some(dir) => {
            let media_dir = dir.join("media");
            Arc::new(
                DirMediaStore::open(&media_dir, config.media_ttl)
                    .map_err(|e| format!("cannot use {}: {e}", media_dir.display()))?,
            )
        }
        None => Arc::new(StorageMediaStore::new(
            Arc::new(MemoryStorage::new(clock.clone())),
            Some(config.media_ttl),
        )),
    };
    let deps = Deps {
        http: Arc::new(ReqwestHttp::new()?),
        // Video jobs share the (optionally file-backed) store, so a restart resumes them.
        jobs: storage.clone(),
        runner: None,
        storage,
        sessions: Arc::new(MemoryStorage::new(clock.clone())),
        coordinator: Arc::new(MemoryCoordinator::new(clock.clone())),
        clock,
        media,
        captcha: None,
        spawner: Some(Arc::new(TokioSpawn)),
    };
    let app = App::new(config, deps);
    let refresh_every = refresh_interval()?;

    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on http://{}", listener.local_addr()?)?;
        out.flush()?;
    }

    let autosave = snapshot
        .clone()
        .map(|s| tokio::spawn(s.autosave(SAVE_EVERY)));
    match app.resume_jobs().await {
        Ok(0) => {}
        Ok(n) => eprintln!("resumed {n} unfinished video job(s)"),
        Err(e) => eprintln!("warning: cannot resume video jobs: {e}"),
    }
    let refresh = tokio::spawn(refresh_periodically(app.clone(), refresh_every));
    serve_with(app, listener, options, shutdown_signal()).await?;
    refresh.abort();
    if let (Some(task), Some(snapshot)) = (autosave, snapshot) {
        task.abort();
        let _ = task.await;
        snapshot
            .save()
            .map_err(|e| format!("cannot save {}: {e}", snapshot.path().display()))?;
    }
    Ok(())
}
