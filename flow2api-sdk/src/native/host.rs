//! [`Host`]: the whole gateway on this machine, assembled from the native seams.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::{
    refresh_periodically, serve_with, DirMediaStore, FileSnapshot, ReqwestHttp, ServeOptions,
    TokioClock, TokioSpawn,
};
use crate::memory::{MemoryCoordinator, MemoryStorage, StorageMediaStore};
use crate::{App, BuildError, Clock, Config, MediaStore};

/// How often the state file is written when something changed.
const SAVE_EVERY: Duration = Duration::from_secs(5);
/// Default of [`HostOptions::refresh_interval`].
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(600);

/// Where and how a [`Host`] keeps its state, beside the gateway's [`Config`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HostOptions {
    /// The data directory (state and generated media); `None` keeps everything in memory, lost
    /// on exit. `DATA_DIR` in [`HostOptions::from_env`].
    pub data_dir: Option<PathBuf>,
    /// Time between background passes that refresh access tokens about to expire and the
    /// credits of resting accounts; zero turns them off. `REFRESH_INTERVAL` (seconds, default
    /// 600).
    pub refresh_interval: Duration,
}

impl Default for HostOptions {
    fn default() -> Self {
        Self {
            data_dir: None,
            refresh_interval: DEFAULT_REFRESH_INTERVAL,
        }
    }
}

impl HostOptions {
    /// Everything in memory, the default refresh interval.
    pub fn in_memory() -> Self {
        Self::default()
    }

    /// State under `dir`.
    pub fn with_data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Reads `DATA_DIR` and `REFRESH_INTERVAL` from the environment.
    ///
    /// # Errors
    /// [`HostError::Setting`] when `REFRESH_INTERVAL` is not a number of seconds.
    pub fn from_env() -> Result<Self, HostError> {
        let env = |name: &str| {
            std::env::var(name)
                .ok()
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let refresh_interval = match env("REFRESH_INTERVAL") {
            None => DEFAULT_REFRESH_INTERVAL,
            Some(v) => v
                .parse::<f64>()
                .ok()
                .filter(|s| (0.0..=86_400.0 * 365.0).contains(s))
                .map(Duration::from_secs_f64)
                .ok_or_else(|| HostError::Setting {
                    name: "REFRESH_INTERVAL",
                    problem: format!("{v:?} is not a number of seconds from 0 to 31536000"),
                })?,
        };
        Ok(Self {
            data_dir: env("DATA_DIR").map(PathBuf::from),
            refresh_interval,
        })
    }
}

/// Why a [`Host`] could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HostError {
    /// A host setting is invalid.
    #[error("{name}: {problem}")]
    Setting {
        /// The variable.
        name: &'static str,
        /// What is wrong and what it accepts.
        problem: String,
    },
    /// The state in the data directory could not be read or written.
    #[error("state in {path}: {source}")]
    State {
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        source: std::io::Error,
    },
    /// The HTTP client could not be built (no TLS backend).
    #[error("HTTP client: {0}")]
    Http(#[from] reqwest::Error),
    /// A seam is missing (a bug of the host; see [`BuildError`]).
    #[error("{0}")]
    Build(#[from] BuildError),
    /// Serving failed.
    #[error("server: {0}")]
    Serve(std::io::Error),
}

/// The whole gateway on this machine: reqwest for upstream calls, tokio for time and
/// background work, state and media under a data directory, and the account pool's background
/// refresh. [`Host::serve`] answers HTTP until a shutdown signal.
pub struct Host {
    app: App,
    snapshot: Option<Arc<FileSnapshot>>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host").finish_non_exhaustive()
    }
}

impl Host {
    /// Opens the state in `options.data_dir`, builds the gateway, resumes unfinished video jobs
    /// and starts the background refresh. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`HostError`] when the state cannot be opened or the HTTP client cannot be built.
    pub async fn open(config: Config, options: HostOptions) -> Result<Self, HostError> {
        let clock: Arc<dyn Clock> = Arc::new(TokioClock);
        let storage = Arc::new(MemoryStorage::new(clock.clone()));
        let snapshot = match &options.data_dir {
            Some(dir) => Some(Arc::new(FileSnapshot::open(dir, storage.clone()).map_err(
                |source| HostError::State {
                    path: dir.clone(),
                    source,
                },
            )?)),
            None => None,
        };
        let media: Arc<dyn MediaStore> = match &options.data_dir {
            Some(dir) => {
                let path = dir.join("media");
                Arc::new(
                    DirMediaStore::open(&path, config.media_ttl)
                        .map_err(|source| HostError::State { path, source })?,
                )
            }
            None => Arc::new(StorageMediaStore::new(
                Arc::new(MemoryStorage::new(clock.clone())),
                Some(config.media_ttl),
            )),
        };
        let app = App::builder(config)
            .http(Arc::new(ReqwestHttp::new()?))
            .clock(clock.clone())
            // Video jobs share the (optionally file-backed) store, so a restart resumes them.
            .job_store(storage.clone())
            .storage(storage)
            .consistent(Arc::new(MemoryStorage::new(clock.clone())))
            .coordinator(Arc::new(MemoryCoordinator::new(clock)))
            .media(media)
            .spawner(Arc::new(TokioSpawn))
            .build()?;
        match app.resume_jobs().await {
            Ok(0) => {}
            Ok(n) => eprintln!("resumed {n} unfinished video job(s)"),
            Err(e) => eprintln!("warning: cannot resume video jobs: {e}"),
        }
        let mut tasks = vec![tokio::spawn(refresh_periodically(
            app.clone(),
            options.refresh_interval,
        ))];
        if let Some(s) = &snapshot {
            tasks.push(tokio::spawn(s.clone().autosave(SAVE_EVERY)));
        }
        Ok(Self {
            app,
            snapshot,
            tasks,
        })
    }

    /// The gateway, to answer requests through another server (see [`super::handle`]).
    pub fn app(&self) -> &App {
        &self.app
    }

    /// Serves on `listener` until `shutdown` resolves (e.g. [`super::shutdown_signal`]), then
    /// lets open responses finish and [closes](Host::close) the host.
    ///
    /// # Errors
    /// [`HostError::Serve`] when the server cannot run; [`HostError::State`] when the state
    /// cannot be saved at the end.
    pub async fn serve(
        self,
        listener: TcpListener,
        options: ServeOptions,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> Result<(), HostError> {
        serve_with(self.app.clone(), listener, options, shutdown)
            .await
            .map_err(HostError::Serve)?;
        self.close().await
    }

    /// Stops the background work and writes what is not yet on disk.
    ///
    /// # Errors
    /// [`HostError::State`] when the state cannot be saved.
    pub async fn close(self) -> Result<(), HostError> {
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
        if let Some(snapshot) = self.snapshot {
            snapshot.save().map_err(|source| HostError::State {
                path: snapshot.path().to_owned(),
                source,
            })?;
        }
        Ok(())
    }
}
