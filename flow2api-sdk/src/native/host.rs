//! [`Host`]: the whole gateway on this machine, assembled from the native seams.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::{
    purge_media_periodically, refresh_periodically, serve_with, DirMediaStore, PublicOnlyHttp,
    ReqwestHttp, ServeOptions, SqliteCoordinator, SqliteDb, SqliteError, TokioClock, TokioSpawn,
    DB_FILE,
};
use crate::cache::{CachingStorage, StorageCache};
use crate::memory::{MemoryCoordinator, MemoryStorage, StorageMediaStore};
use crate::{App, BuildError, Clock, Config, Coordinator, MediaStore, Storage};

/// Default of [`HostOptions::data_dir`] in [`HostOptions::from_env`].
pub const DEFAULT_DATA_DIR: &str = "./data";
/// Default of [`HostOptions::refresh_interval`].
pub const DEFAULT_REFRESH_INTERVAL: Duration = Duration::from_secs(600);

/// Where and how a [`Host`] keeps its state, beside the gateway's [`Config`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct HostOptions {
    /// The data directory: the database `flow2api.db` (accounts, their cooldowns and error
    /// counts, admin sessions, video jobs) and `media/`. `None` keeps everything in memory,
    /// lost on exit. `DATA_DIR` in [`HostOptions::from_env`] (default `./data`).
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

    /// Reads `DATA_DIR` (default `./data`) and `REFRESH_INTERVAL` from the environment.
    ///
    /// # Errors
    /// [`HostError::Setting`] when `REFRESH_INTERVAL` is not a number of seconds.
    pub fn from_env() -> Result<Self, HostError> {
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
            data_dir: Some(PathBuf::from(
                env("DATA_DIR").unwrap_or_else(|| DEFAULT_DATA_DIR.to_owned()),
            )),
            refresh_interval,
        })
    }
}

impl ServeOptions {
    /// [`ServeOptions::default`] with `LOG_REQUESTS` (`0`/`false`/`no`/`off` turns the request
    /// lines off), `BODY_READ_TIMEOUT` (seconds, default 60) and `MAX_CONNECTIONS` (default
    /// 1024) from the environment.
    ///
    /// # Errors
    /// [`HostError::Setting`] naming a value that does not parse or is out of range.
    pub fn from_env() -> Result<Self, HostError> {
        let mut options = Self::default();
        if let Some(v) = env("LOG_REQUESTS").map(|v| v.to_ascii_lowercase()) {
            options.log_requests = match v.as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => {
                    return Err(HostError::Setting {
                        name: "LOG_REQUESTS",
                        problem: format!("{v:?} is not true or false"),
                    })
                }
            };
        }
        if let Some(v) = env("BODY_READ_TIMEOUT") {
            options.body_read_timeout = v
                .parse::<f64>()
                .ok()
                .filter(|s| (1.0..=3600.0).contains(s))
                .map(Duration::from_secs_f64)
                .ok_or_else(|| HostError::Setting {
                    name: "BODY_READ_TIMEOUT",
                    problem: format!("{v:?} is not a number of seconds from 1 to 3600"),
                })?;
        }
        if let Some(v) = env("MAX_CONNECTIONS") {
            options.max_connections = v
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=1_000_000).contains(n))
                .ok_or_else(|| HostError::Setting {
                    name: "MAX_CONNECTIONS",
                    problem: format!("{v:?} is not a whole number from 1 to 1000000"),
                })?;
        }
        Ok(options)
    }
}

/// A host variable from the environment, trimmed; `None` when unset or empty.
fn env(name: &str) -> Option<String> {
    std::env::var(name)
        .ok()
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
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
    /// The database could not be opened, or an old state file not imported.
    #[error("database: {0}")]
    Database(#[from] SqliteError),
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
    db: Option<SqliteDb>,
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
        let stores = Stores::open(&config, &options, &clock).await?;
        let app = App::builder(config)
            .http(Arc::new(ReqwestHttp::new()?))
            .untrusted_http(Arc::new(PublicOnlyHttp::new()?))
            .clock(clock)
            .storage(stores.storage)
            .consistent(stores.sessions)
            .job_store(stores.jobs)
            .tenant_storage(stores.tenants)
            .logs(stores.logs)
            .coordinator(stores.coordinator)
            .media(stores.media)
            .spawner(Arc::new(TokioSpawn))
            .build()?;
        match app.resume_jobs().await {
            Ok(0) => {}
            Ok(n) => eprintln!("resumed {n} unfinished video job(s)"),
            Err(e) => eprintln!("warning: cannot resume video jobs: {e}"),
        }
        let prefill = app.clone();
        let tasks = vec![
            // The remote browser opens each account's project page before the first request.
            tokio::spawn(async move {
                if let Err(e) = prefill.prefill_captcha().await {
                    eprintln!("warning: cannot prefill the remote browser: {e}");
                }
            }),
            tokio::spawn(refresh_periodically(app.clone(), options.refresh_interval)),
            tokio::spawn(purge_media_periodically(app.clone())),
        ];
        Ok(Self {
            app,
            db: stores.db,
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
    /// [`HostError::Serve`] when the server cannot run.
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

    /// Stops the background work and checkpoints the database (every acknowledged write is
    /// already committed; this only folds the write-ahead log into the database file).
    ///
    /// # Errors
    /// Never at present; the checkpoint's failure is reported on stderr.
    pub async fn close(self) -> Result<(), HostError> {
        for task in &self.tasks {
            task.abort();
        }
        for task in self.tasks {
            let _ = task.await;
        }
        if let Some(db) = self.db {
            if let Err(e) = db.checkpoint().await {
                eprintln!("warning: checkpoint of {}: {e}", db.path().display());
            }
        }
        Ok(())
    }
}

/// Namespaces of the database, one per store the gateway is given.
const RECORDS: &str = "records";
const SESSIONS: &str = "sessions";
const JOBS: &str = "jobs";
const TENANTS: &str = "tenants";

/// Where a key of the old state file goes: it held the job store's keys among the records.
fn snapshot_namespace(key: &str) -> &'static str {
    if crate::jobs::is_job_key(key) {
        JOBS
    } else {
        RECORDS
    }
}

/// The stores of a host: one SQLite database and a media directory under the data directory,
/// or memory without one.
struct Stores {
    storage: Arc<dyn Storage>,
    sessions: Arc<dyn Storage>,
    jobs: Arc<dyn Storage>,
    tenants: Arc<dyn Storage>,
    logs: Arc<dyn crate::seams::LogStore>,
    coordinator: Arc<dyn Coordinator>,
    media: Arc<dyn MediaStore>,
    db: Option<SqliteDb>,
}

impl Stores {
    async fn open(
        config: &Config,
        options: &HostOptions,
        clock: &Arc<dyn Clock>,
    ) -> Result<Self, HostError> {
        let Some(dir) = &options.data_dir else {
            let memory = || Arc::new(MemoryStorage::new(clock.clone()));
            return Ok(Self {
                jobs: memory(),
                tenants: memory(),
                logs: Arc::new(crate::logs::MemoryLogStore::new()),
                storage: memory(),
                sessions: memory(),
                coordinator: Arc::new(MemoryCoordinator::new(clock.clone())),
                media: Arc::new(StorageMediaStore::new(memory(), Some(config.media_ttl))),
                db: None,
            });
        };
        let db = SqliteDb::open_async(dir.join(DB_FILE), clock.clone()).await?;
        if let Some(report) = db.import_snapshot(dir, snapshot_namespace).await? {
            eprintln!(
                "imported the old state file: {} entries ({} already in the database, {} \
                 expired); it is now {}",
                report.imported,
                report.already_present,
                report.expired,
                report.renamed_to.display()
            );
        }
        let media_dir = dir.join("media");
        let media = DirMediaStore::open(&media_dir, config.media_ttl).map_err(|source| {
            HostError::State {
                path: media_dir,
                source,
            }
        })?;
        // Every request reads the account list: answered from memory within
        // ACCOUNT_CACHE_TTL, and this process's own writes drop what they change at once.
        let cache = Arc::new(StorageCache::new(clock.clone(), config.account_cache_ttl));
        Ok(Self {
            storage: Arc::new(CachingStorage::new(Arc::new(db.storage(RECORDS)), cache)),
            sessions: Arc::new(db.storage(SESSIONS)),
            jobs: Arc::new(db.storage(JOBS)),
            tenants: Arc::new(db.storage(TENANTS)),
            logs: Arc::new(db.logs()),
            coordinator: Arc::new(SqliteCoordinator::open(&db).await?),
            media: Arc::new(media),
            db: Some(db),
        })
    }
}
