//! [`AppBuilder`]: the gateway assembled from its configuration and seams, with a typed error
//! for every seam left out.

use std::fmt;
use std::sync::Arc;

use crate::config::Config;
use crate::jobs::JobRunner;
use crate::memory::{MemoryCoordinator, MemoryStorage, StorageMediaStore};
use crate::seams::{CaptchaSolver, Clock, Coordinator, HttpClient, MediaStore, Spawn, Storage};
use crate::settings::SettingsCache;

use super::{App, Deps, JobDriver};

/// A seam an [`App`] needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Seam {
    /// [`AppBuilder::http`].
    Http,
    /// [`AppBuilder::clock`].
    Clock,
    /// [`AppBuilder::storage`].
    Storage,
    /// [`AppBuilder::consistent`].
    Consistent,
    /// [`AppBuilder::job_store`].
    JobStore,
    /// [`AppBuilder::coordinator`].
    Coordinator,
    /// [`AppBuilder::media`].
    Media,
    /// [`AppBuilder::job_runner`] or [`AppBuilder::spawner`]: something must run video jobs.
    JobRunner,
}

impl fmt::Display for Seam {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Http => "http (an HttpClient)",
            Self::Clock => "clock",
            Self::Storage => "storage (account records)",
            Self::Consistent => "consistent (strongly consistent records: sessions, settings)",
            Self::JobStore => "job_store (video job records)",
            Self::Coordinator => "coordinator",
            Self::Media => "media",
            Self::JobRunner => "job_runner or spawner (something to run video jobs)",
        })
    }
}

/// Why [`AppBuilder::build`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// These seams were not given (see [`AppBuilder::in_memory`] for tests).
    #[error("the gateway cannot be built without: {}", list(.0))]
    Missing(Vec<Seam>),
}

fn list(seams: &[Seam]) -> String {
    seams
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Assembles an [`App`]: `App::builder(config)`, one call per seam, then [`build`](Self::build).
///
/// ```
/// # use std::sync::Arc;
/// # use std::time::Duration;
/// # use flow2api_sdk::{App, BuildError, Config};
/// # use flow2api_sdk::api::Seam;
/// # use flow2api_sdk::seams::{boxed, BoxFuture, Clock, HttpRequest, HttpResponse, TransportError};
/// # struct SystemClock;
/// # impl Clock for SystemClock {
/// #     fn now_ms(&self) -> u64 { 0 }
/// #     fn sleep(&self, _: Duration) -> BoxFuture<'static, ()> { boxed(async {}) }
/// # }
/// let http = |_req: HttpRequest| async {
///     Err::<HttpResponse, _>(TransportError::new(
///         flow2api_sdk::seams::TransportErrorKind::Connect,
///         "offline",
///     ))
/// };
/// # struct Threads;
/// # impl flow2api_sdk::seams::Spawn for Threads {
/// #     fn spawn(&self, f: BoxFuture<'static, ()>) {
/// #         std::thread::spawn(move || futures::executor::block_on(f));
/// #     }
/// # }
/// let builder = App::builder(Config::default())
///     .http(Arc::new(http))
///     .clock(Arc::new(SystemClock))
///     .in_memory();
/// // Nothing would run video jobs: a typed error, not a gateway whose jobs stay queued.
/// let missing = builder.build().unwrap_err();
/// assert_eq!(missing, BuildError::Missing(vec![Seam::JobRunner]));
///
/// let app = App::builder(Config::default())
///     .http(Arc::new(http))
///     .clock(Arc::new(SystemClock))
///     .spawner(Arc::new(Threads))
///     .in_memory()
///     .build()
///     .expect("every seam is given");
/// # let _ = app;
/// ```
#[must_use]
pub struct AppBuilder {
    config: Config,
    http: Option<Arc<dyn HttpClient>>,
    untrusted_http: Option<Arc<dyn HttpClient>>,
    clock: Option<Arc<dyn Clock>>,
    storage: Option<Arc<dyn Storage>>,
    consistent: Option<Arc<dyn Storage>>,
    job_store: Option<Arc<dyn Storage>>,
    job_shards: Vec<Arc<dyn Storage>>,
    tenant_storage: Option<Arc<dyn Storage>>,
    logs: Option<Arc<dyn crate::seams::LogStore>>,
    coordinator: Option<Arc<dyn Coordinator>>,
    media: Option<Arc<dyn MediaStore>>,
    captcha: Option<Arc<dyn CaptchaSolver>>,
    captcha_stats: Option<Arc<crate::captcha::CaptchaStats>>,
    browser_hub: Option<Arc<dyn crate::captcha::BrowserHub>>,
    spawner: Option<Arc<dyn Spawn>>,
    runner: Option<Arc<dyn JobRunner>>,
    settings: Option<Arc<SettingsCache>>,
    in_memory: bool,
}

impl fmt::Debug for AppBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AppBuilder").finish_non_exhaustive()
    }
}

impl AppBuilder {
    pub(super) fn new(config: Config) -> Self {
        Self {
            config,
            http: None,
            untrusted_http: None,
            clock: None,
            storage: None,
            consistent: None,
            job_store: None,
            job_shards: Vec::new(),
            tenant_storage: None,
            logs: None,
            coordinator: None,
            media: None,
            captcha: None,
            captcha_stats: None,
            browser_hub: None,
            spawner: None,
            runner: None,
            settings: None,
            in_memory: false,
        }
    }

    /// Outgoing HTTP: Flow, the captcha provider, client image URLs. Required.
    pub fn http(mut self, http: Arc<dyn HttpClient>) -> Self {
        self.http = Some(http);
        self
    }

    /// Outgoing HTTP to URLs that clients give (image URLs): a client that refuses to connect
    /// to any non-public address ([`crate::public_ip`]), names included, checking the address
    /// it connects to (natively `native::PublicOnlyHttp`). The gateway checks literal
    /// addresses and every redirect hop itself; only a resolver can check names. Without one,
    /// [`http`](Self::http) is used: right where the platform refuses private destinations
    /// itself (Cloudflare Workers), a hole where it does not. Unused while
    /// `ALLOW_PRIVATE_IMAGE_URLS` is set.
    pub fn untrusted_http(mut self, http: Arc<dyn HttpClient>) -> Self {
        self.untrusted_http = Some(http);
        self
    }

    /// Time. Required.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Account records (read-mostly; KV at the edge).
    pub fn storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = Some(storage);
        self
    }

    /// Strongly consistent records that every instance sees at once: admin sessions and the
    /// runtime settings (a Durable Object at the edge).
    pub fn consistent(mut self, storage: Arc<dyn Storage>) -> Self {
        self.consistent = Some(storage);
        self
    }

    /// Video job records (strongly consistent).
    pub fn job_store(mut self, storage: Arc<dyn Storage>) -> Self {
        self.job_store = Some(storage);
        self
    }

    /// Spreads video job records over these stores (each strongly consistent) by a hash of
    /// the job id, so that no one store takes every job's steps; the job store keeps the
    /// listings and `Idempotency-Key` entries (the edge gives 16 Durable Objects). Keep the
    /// same shards, in the same order, for as long as jobs live (7 days); records stored
    /// before there were shards are moved into them.
    pub fn job_record_shards(mut self, shards: Vec<Arc<dyn Storage>>) -> Self {
        self.job_shards = shards;
        self
    }

    /// Where tenant keys and their counters live ([`crate::tenants`]): a strongly
    /// consistent store (every request with a tenant's key reads it, and quotas must not lose
    /// counts). By default the [`consistent`](Self::consistent) store.
    pub fn tenant_storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.tenant_storage = Some(storage);
        self
    }

    /// Per-account concurrency slots, errors, cooldowns and token refresh.
    pub fn coordinator(mut self, coordinator: Arc<dyn Coordinator>) -> Self {
        self.coordinator = Some(coordinator);
        self
    }

    /// Generated media served at `/media/{id}`.
    pub fn media(mut self, media: Arc<dyn MediaStore>) -> Self {
        self.media = Some(media);
        self
    }

    /// A captcha solver; without one, the one `CAPTCHA_METHOD` names is built over `http`.
    pub fn captcha(mut self, solver: Arc<dyn CaptchaSolver>) -> Self {
        self.captcha = Some(solver);
        self
    }

    /// Where captcha solves are counted (`GET /api/captcha/stats`); a host that builds an
    /// app per request passes one that outlives them. Without one, the app keeps its own.
    pub fn captcha_stats(mut self, stats: Arc<crate::captcha::CaptchaStats>) -> Self {
        self.captcha_stats = Some(stats);
        self
    }

    /// Where the `extension` captcha method finds its browsers (§10.5) when they are not
    /// connected to this process (the edge's Durable Object). Without one, the app keeps a
    /// [`Switchboard`](crate::captcha::Switchboard) of its own, which the host feeds from its
    /// `/captcha_ws` sockets ([`App::switchboard`](super::App::switchboard)).
    pub fn browser_hub(mut self, hub: Arc<dyn crate::captcha::BrowserHub>) -> Self {
        self.browser_hub = Some(hub);
        self
    }

    /// Runs work beyond a request (releasing the slot of a client that went away); without
    /// one, that is left to the slot's lease. With no [`job_runner`](Self::job_runner), video
    /// jobs run as background tasks over it.
    pub fn spawner(mut self, spawner: Arc<dyn Spawn>) -> Self {
        self.spawner = Some(spawner);
        self
    }

    /// Drives video jobs (a Durable Object per job at the edge).
    pub fn job_runner(mut self, runner: Arc<dyn JobRunner>) -> Self {
        self.runner = Some(runner);
        self
    }

    /// A settings cache shared by the apps of one process or isolate, for hosts that build
    /// an [`App`] per request (a Worker): it must be made from the same configuration. Without
    /// one, the app keeps its own.
    pub fn settings_cache(mut self, cache: Arc<SettingsCache>) -> Self {
        self.settings = Some(cache);
        self
    }

    /// Where request logs and their counters go (`GET /api/logs`, `/api/stats`): SQLite
    /// natively, a Durable Object at the edge. Not given, they are kept in memory
    /// ([`crate::logs::MemoryLogStore`]) and lost with the process.
    pub fn logs(mut self, store: Arc<dyn crate::seams::LogStore>) -> Self {
        self.logs = Some(store);
        self
    }

    /// Keeps every store not given in memory (records, sessions, jobs, slots, media), lost
    /// with the process: for tests and embedders that persist nothing. `http`, `clock` and
    /// something to run jobs are still required.
    pub fn in_memory(mut self) -> Self {
        self.in_memory = true;
        self
    }

    /// Builds the gateway.
    ///
    /// # Errors
    /// [`BuildError::Missing`] naming every seam not given.
    // On wasm32 the seams are not `Send` and there is one thread: `Arc` keeps one type for
    // both targets, so clippy's hint to use `Rc` there does not apply.
    #[allow(clippy::arc_with_non_send_sync)]
    pub fn build(self) -> Result<App, BuildError> {
        let mut missing = Vec::new();
        let clock = self.clock.clone();
        let memory = |seam: Seam, missing: &mut Vec<Seam>| -> Option<Arc<dyn Storage>> {
            match (&clock, self.in_memory) {
                (Some(c), true) => Some(Arc::new(MemoryStorage::new(c.clone()))),
                _ => {
                    missing.push(seam);
                    None
                }
            }
        };
        let http = self.http.clone();
        if http.is_none() {
            missing.push(Seam::Http);
        }
        if clock.is_none() {
            missing.push(Seam::Clock);
        }
        let storage = self
            .storage
            .clone()
            .or_else(|| memory(Seam::Storage, &mut missing));
        let consistent = self
            .consistent
            .clone()
            .or_else(|| memory(Seam::Consistent, &mut missing));
        let jobs = self
            .job_store
            .clone()
            .or_else(|| memory(Seam::JobStore, &mut missing));
        let coordinator = self.coordinator.clone().or_else(|| match &clock {
            Some(c) if self.in_memory => {
                Some(Arc::new(MemoryCoordinator::new(c.clone())) as Arc<dyn Coordinator>)
            }
            _ => {
                missing.push(Seam::Coordinator);
                None
            }
        });
        let media = self.media.clone().or_else(|| match &clock {
            Some(c) if self.in_memory => Some(Arc::new(StorageMediaStore::new(
                Arc::new(MemoryStorage::new(c.clone())),
                Some(self.config.media_ttl),
            )) as Arc<dyn MediaStore>),
            _ => {
                missing.push(Seam::Media);
                None
            }
        });
        let driver = match (&self.runner, &self.spawner) {
            (Some(r), _) => Some(JobDriver::Runner(r.clone())),
            (None, Some(s)) => Some(JobDriver::Local(s.clone())),
            (None, None) => {
                missing.push(Seam::JobRunner);
                None
            }
        };
        let (
            Some(http),
            Some(clock),
            Some(storage),
            Some(sessions),
            Some(jobs),
            Some(coordinator),
            Some(media),
            Some(driver),
        ) = (
            http,
            clock,
            storage,
            consistent,
            jobs,
            coordinator,
            media,
            driver,
        )
        else {
            return Err(BuildError::Missing(missing));
        };
        let settings = self
            .settings
            .unwrap_or_else(|| Arc::new(SettingsCache::new(self.config)));
        let (browser_hub, switchboard) = match self.browser_hub {
            Some(hub) => (hub, None),
            None => {
                let board = Arc::new(crate::captcha::Switchboard::new(clock.clone()));
                (
                    board.clone() as Arc<dyn crate::captcha::BrowserHub>,
                    Some(board),
                )
            }
        };
        Ok(App::assemble(
            Deps {
                untrusted_http: self.untrusted_http.unwrap_or_else(|| http.clone()),
                http,
                storage,
                tenants: self.tenant_storage.unwrap_or_else(|| sessions.clone()),
                logs: self
                    .logs
                    .unwrap_or_else(|| Arc::new(crate::logs::MemoryLogStore::new())),
                sessions,
                coordinator,
                clock,
                media,
                captcha: self.captcha,
                captcha_stats: self.captcha_stats.unwrap_or_default(),
                browser_hub,
                switchboard,
                spawner: self.spawner,
                jobs,
                job_shards: self.job_shards,
            },
            driver,
            settings,
        ))
    }
}
